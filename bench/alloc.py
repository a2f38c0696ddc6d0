"""Heap allocated per DATA packet, on a 64-bit and a 32-bit MicroPython, with a breakdown by
function; also the heap after importing the whole core (`mast.endpoint` and `mast.config`, which
the endpoint imports only where it checks a configuration) and the heap per extra association.

    .venv/bin/python bench/alloc.py [--packets N] [--baseline REV] [--core REV]

Writes the `alloc` section of docs/BENCHMARKS.md, in about 20 s. Columns: each build, with the
core of the work tree ("now"; --core REV: a committed one instead) beside the baseline, the core
of revision BASE_REV (before the allocation work of issue 11), built from git in the same run. The builds: the MicroPython unix port from the
venv (`micropython`, 64-bit) and the wasm32 build from npm (tests/mp32/, 32-bit: 4-byte words,
31-bit small ints, like an ESP32 or RP2040). Both import the same mpy-cross output of firmware/
and tests/core/ (simnet), and run the device module below (MEASURE), compiled to .mpy too.

How it counts. Two endpoints on the simulated network (tests/core/simnet.py), one uplink each,
bring an association up; then node a sends DATA packets to node b, one every 20 ms (50/s), each
delivered at once, b's feedback (KEEPALIVE) delivered back, and either side's due timers run.
b hands DATA to the app through Endpoint.on_data, as the runtime does (no event object; a core
without on_data, the baseline, queues "data" events instead; the breakdown shows what an event
and a payload copy cost). Both hand their packets over as they make them (Endpoint.direct_send,
as the runtime sends: on MicroPython sealed in one reused buffer), to this benchmark's Wire,
which copies each into a buffer it keeps for that length, as a kernel's sendto copies it, and
delivers it later: its copy allocates nothing in steady state (the breakdown's last row). A core
without direct_send, the baseline, queues its packets for datagrams_to_send instead.
`gc.mem_alloc()` deltas around that loop count the heap it allocates (net of blocks the VM frees
explicitly at once, which are reusable at once; a block is 16 B on 32-bit, 32 B on 64-bit): on
the unix port with gc disabled and a heap large enough that it never has to collect; on the wasm
build inside one runPython call, where its collector reclaims nothing anyway. A warm-up of
packets runs first, so only the steady state is counted. The loop's own bookkeeping allocates
nothing (small ints, no new objects; checked: 0 B over 200 rounds on both builds), except its
clock: past 2**30 on 32-bit each `t += step` makes a heap object, as each read of a board's
clock does then; it is counted in the total and shown apart ("clock").

- send: Endpoint.send_data on a (and datagrams_to_send, for a core that queues); receive:
  Endpoint.receive + next_event on b; other: b's feedback to a and due timers; total: all of it,
  per DATA packet.
- Each clock: the association set up and the packets sent with the clock near 10 s, and past
  2**30 ms (12.4 days of uptime), where on 32-bit the clock itself is a heap object.
- Breakdown: each function called alone in a loop with the arguments of the steady state (the
  association's keys, label and next seq), bytes per call, minus the cost of calling an empty
  function the same way.
- Live heap (read after a collection; on the wasm build at the start of a later runPython call,
  the only time it collects): after `import mast.endpoint, mast.config`, in a fresh interpreter; and node a's
  endpoint alone (everything else dropped) with K associations against 1, divided by K - 1.
  "Modules included" counts this benchmark's own module and the simulated network too, and
  jumps by several KB when an import makes the interned-name (qstr) pool take a new chunk.
"""

import argparse
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))
import benchdoc  # noqa: E402
import heap  # noqa: E402  (compile_all: this tree or the baseline's, laid out as the tests do)
import mpy_core  # noqa: E402  (where the 32-bit build is)

ROOT = benchdoc.ROOT
MICROPYTHON = os.path.join(benchdoc.VENV_BIN, "micropython")
MPY_CROSS = os.path.join(benchdoc.VENV_BIN, "mpy-cross")
RUN_STEPS = os.path.join(ROOT, "tests", "mp32", "run_steps.mjs")
COMMAND = ".venv/bin/python bench/alloc.py"

# The baseline column: the core as it was before the allocation work of issue 11 (measured in the
# same run, built from git). Targets (issue 11), per DATA packet sent + received on 32-bit.
BASE_REV = "3609ad941da2da9770575ee9cbdf15007e7c54cd"
TARGET_32, AIM_32 = 1024, 512
PACKETS = 200

HEAP_64 = "32M"  # never has to collect during the loop (gc is disabled there)
HEAP_32 = 80 * 1024  # the first area only; this build grows its heap on demand
WARMUP = 50
STEP_MS = 20
CLOCKS = (("near 10 s", 10000), ("past 2^30 ms (12.4 days)", 2**30 + 10000))
K_ASSOCS = 4
BREAKDOWN_CALLS = 100
TIMEOUT_S = 300

# The device side, compiled to mast_alloc.mpy. Restricted Python: MicroPython >= 1.22 and CPython.
MEASURE = r'''
import gc
import json

import simnet
from mast import wire
from mast.compat import sha256
from mast.events import Event

PAYLOAD = bytes(64)
A_ADDR = ("10.1.0.2", 6278)
B_ADDR = ("10.9.0.1", 6278)  # b0's
_S = {}
_WIRES = {}  # endpoint name -> the Wire its packets go out on (direct_send)


def report(key, value):
    print("RESULT " + json.dumps({key: value}))


def net_with(start, names):
    """Node a (uplink eth) with an association up to each server named in `names` (the first at
    B_ADDR, the others at 10.9.i.1)."""
    net = simnet.Net(start)
    cfg = {}
    for i in range(len(names)):
        cfg[names[i]] = {"addresses": ["10.9.%d.1:6278" % i]}
    net.node("a", simnet.config("a", cfg))
    net.uplink("a", "eth", A_ADDR, delay=1)
    for i in range(len(names)):
        net.node(names[i], simnet.config(names[i], ["a"]))
        net.uplink(names[i], "wan", ("10.9.%d.1" % i, 6278), delay=1)
    for n in names:
        net.nodes["a"].ep.connect(n, net.now)
    net.flush()
    net.run(net.now + 3000)
    for n in names:
        x = net.nodes["a"].ep.association(n)
        y = net.nodes[n].ep.association("a")
        if x is None or y is None or x.state != 2 or y.state != 2:
            raise AssertionError("association a-%s did not come up" % n)
    return net


def keep_endpoint(peers):
    """Set up `peers` associations, then keep only node a's endpoint (in _S); the caller
    collects (at the top level: no stale pointer on the stack keeps the rest alive)."""
    net = net_with(10000, ["b%d" % i for i in range(peers)])
    ep = net.nodes["a"].ep
    if hasattr(ep, "direct_send"):
        ep.direct_send(None)  # (its sender is the simulated network's: that would keep it all)
    _S["ep"] = ep


class Wire:
    """One direction of the network for a core that hands its packets over as it makes them
    (Endpoint.direct_send, as the runtime takes them): each packet copied into a buffer of
    its length, as a kernel's sendto copies it, and delivered later. The buffers are made
    while warming up and reused after, so in steady state the copy allocates nothing
    (checked: the breakdown's last row)."""

    def __init__(self, to, uplink, src):
        self.to, self.uplink, self.src = to, uplink, src
        self.pool = {}  # length -> [bytearray, ...]
        self.used = {}  # length -> how many of them hold packets not yet delivered
        self.q = [None] * 32  # those packets, in order
        self.n = 0

    def sink(self, uplink, dst, data):
        n = len(data)
        pool = self.pool.get(n)
        if pool is None:
            pool = self.pool[n] = []
            self.used[n] = 0
        k = self.used[n]
        if k == len(pool):
            pool.append(bytearray(n))
        buf = pool[k]
        self.used[n] = k + 1
        for i in range(n):
            buf[i] = data[i]
        self.q[self.n] = buf
        self.n += 1

    def deliver(self, now):
        """Deliver what is queued (bounded by the queue's size); -> how many."""
        n = self.n
        for i in range(n):
            self.to.receive(self.uplink, self.src, self.q[i], now)
        self.n = 0
        for k in self.used:  # (iterating keys allocates nothing on MicroPython)
            self.used[k] = 0
        return n


def _to(x, y, uplink, src, now):
    """Deliver x's packets to y: from x's Wire when x sends directly, else from its queue."""
    w = _WIRES.get(x.name)
    if w is not None:
        return w.deliver(now)
    n = 0
    for up, dst, data in x.datagrams_to_send():
        y.receive(uplink, src, data, now)
        n += 1
    return n


def _deliver(a, b, now):
    """Move every queued datagram between a and b (both ways) and run due timers; bounded.
    Returns how many DATA payloads b received meanwhile."""
    moved = 0
    for _ in range(20):
        busy = False
        if _to(a, b, "wan", A_ADDR, now):
            busy = True
        if _to(b, a, "eth", B_ADDR, now):
            busy = True
        x = a.next_timer()
        if x is not None and x <= now:
            a.handle_timer(now)
            busy = True
        x = b.next_timer()
        if x is not None and x <= now:
            b.handle_timer(now)
            busy = True
        e = a.next_event()
        while e is not None:
            e = a.next_event()
        e = b.next_event()
        while e is not None:
            if e.kind == "data":
                moved += 1
            e = b.next_event()
        if not busy:
            return moved
    raise AssertionError("traffic between a and b did not settle")


def label_net(start):
    """A pair whose labels (each side's, in every packet to it) are both >= 2**30, as 3 in 4
    random 32-bit labels are: the first server name of b0..b7 that gives that (the simulated
    endpoints' randomness is deterministic). A core that keeps its labels below 2**30 gets b0."""
    first = None
    for i in range(8):
        name = "b%d" % i
        net = net_with(start, [name])
        x = net.nodes["a"].ep.association(name)
        if x.peer_label >= 0x40000000 and net.nodes[name].ep.association("a").peer_label >= 0x40000000:
            return net, name
        if first is None:
            first = (net, name)
        net = None
    return first


def _sink(peer, payload, ip, uplink, src):
    """The app's side, as the runtime hands DATA over (Endpoint.on_data): no event object,
    the payload a view valid during the call."""
    if len(payload) == len(PAYLOAD) and payload[0] == PAYLOAD[0]:
        _S["sunk"] = _S.get("sunk", 0) + 1


def setup_packets(start, warmup, step):
    net, name = label_net(start)
    a = net.nodes["a"].ep
    b = net.nodes[name].ep
    b.on_data = _sink  # a core without on_data ignores it and queues events, as it always did
    _S["peer"] = name
    if hasattr(a, "direct_send"):  # (a core without it, the baseline, queues its packets)
        wa, wb = Wire(b, "wan", A_ADDR), Wire(a, "eth", B_ADDR)
        _WIRES[a.name], _WIRES[b.name] = wa, wb
        a.direct_send(wa.sink)
        b.direct_send(wb.sink)
    _deliver(a, b, net.now)
    _S["a"], _S["b"], _S["t"] = a, b, net.now
    _S["net"] = net
    packets(warmup, step, False)
    gc.collect()


def packets(n, step, show=True):
    """Send n DATA packets a -> b, each delivered; count the heap allocated."""
    a, b, t = _S["a"], _S["b"], _S["t"]
    payload = PAYLOAD
    alloc = gc.mem_alloc
    send = recv = other = clock = 0
    delivered = 0
    went_down = 0
    start = alloc()
    for i in range(n):
        m = alloc()
        t += step  # (past 2**30 on 32-bit, a new heap object: counted apart, as "clock")
        m0 = alloc()
        clock += m0 - m
        a.send_data(payload, t)
        w = _WIRES.get(a.name)
        out = a.datagrams_to_send() if w is None else None
        m1 = alloc()
        sunk = _S.get("sunk", 0)
        if w is None:
            for up, dst, data in out:
                b.receive("wan", A_ADDR, data, t)
        else:
            w.deliver(t)
        e = b.next_event()
        m2 = alloc()
        if e is not None and e.kind == "data" and e.payload == payload:
            delivered += 1
        delivered += _S.get("sunk", 0) - sunk
        delivered += _deliver(a, b, t)
        m3 = alloc()
        if m0 < m or m1 < m0 or m2 < m1 or m3 < m2:
            went_down += 1
        send += m1 - m0
        recv += m2 - m1
        other += m3 - m2
    total = alloc() - start
    _S["t"] = t
    if show:
        report("packets", {"n": n, "delivered": delivered, "total": total, "send": send,
                           "recv": recv, "other": other, "clock": clock, "went_down": went_down,
                           "label": a.association(_S["peer"]).peer_label,
                           "seq": a.association(_S["peer"]).seq})


def _wire_once(w, pkt):
    """One packet through w's copy, then forgotten (the breakdown's last row)."""
    w.sink("eth", B_ADDR, pkt)
    w.n = 0
    for k in w.used:
        w.used[k] = 0


def _per_call(f, calls):
    alloc = gc.mem_alloc
    m0 = alloc()
    for i in range(calls):
        f()
    return alloc() - m0


def breakdown(calls):
    """Bytes each function allocates called alone (total over `calls` calls; the call of an
    empty function subtracted)."""
    a, b, t = _S["a"], _S["b"], _S["t"]
    x = a.association(_S["peer"])
    y = b.association("a")
    mac, label, seq = x.tx_mac, x.peer_label, x.seq
    small = 0x12345678  # a label below 2**30, for comparison
    payload = PAYLOAD
    h = wire.header(wire.DATA, label, seq)
    pkt = wire.seal(mac, wire.DATA, label, seq, payload)
    pkt_small = wire.header(wire.DATA, small, seq) + payload + bytes(16)
    body = wire.parse(pkt)[3]
    tag = memoryview(pkt)[len(pkt) - 16 :]
    signed = memoryview(pkt)[: len(pkt) - 16]
    buf = bytearray(pkt)
    n = len(buf) - 16
    txbuf = bytearray(2048)  # (wire.MAX_PACKET; the baseline core has no such name)
    wa = _WIRES.get(a.name)
    items = (
        ("wire.header (DATA)", lambda: wire.header(wire.DATA, label, seq)),
        ("wire.header (DATA), label < 2^30", lambda: wire.header(wire.DATA, small, seq)),
        ("crypto.Mac.tag (header, payload, extra)", lambda: mac.tag(h, payload, b"")),
        ("wire.seal (DATA, 64 B payload)", lambda: wire.seal(mac, wire.DATA, label, seq, payload)),
        ("wire.parse (DATA)", lambda: wire.parse(pkt)),
        ("wire.parse (DATA), label < 2^30", lambda: wire.parse(pkt_small)),
        ("crypto.Mac.verify (receiver's key)", lambda: y.rx_mac.verify(tag, signed)),
        ("crypto.Mac.tag_into (the tag written into the packet)", lambda: mac.tag_into(buf, n, h, payload)),
        ("wire.check (receiver's key, the whole packet)", lambda: wire.check(y.rx_mac, pkt, body)),
        ("bytes(body): the payload copy", lambda: bytes(body)),
        ("Event('data', ...)", lambda: Event("data", "a", payload, False)),
        ("(addr[0], addr[1]) and ('up', addr, pkt) tuples", lambda: ((A_ADDR[0], A_ADDR[1]), ("eth", A_ADDR, pkt))),
        ("sha256(64 B): one hash object alone", lambda: sha256(payload)),
        ("two sha256 objects and their digests: the floor of one HMAC with this hashlib",
         lambda: sha256(sha256(payload).digest()).digest()),
        ("wire.seal into the send buffer (DATA, 64 B payload; direct_send on MicroPython)",
         lambda: wire.seal(mac, wire.DATA, label, seq, payload, None, txbuf)),
        ("this benchmark's Wire: its copy of a DATA packet (the network's side, not the core's)",
         lambda: _wire_once(wa, pkt)),
    )
    empty = _per_call(lambda: None, calls)
    out = []
    for name, f in items:
        try:
            f()
            out.append([name, _per_call(f, calls) - empty])
        except Exception as e:  # a core without this function: say so, go on
            out.append([name, "n/a (%s)" % type(e).__name__])
    report("breakdown", {"calls": calls, "items": out, "empty_call": empty, "label": label})
'''


def source_tree(rev, dest):
    """Unpack the device code and core tests of git revision `rev` into dest; return dest."""
    tar = subprocess.run(["git", "-C", ROOT, "archive", "--format=tar", rev, "firmware", "tests/core",
                          "tests/run_core_mpy.py"], capture_output=True, timeout=60)
    if tar.returncode != 0:
        raise RuntimeError("git archive %s failed: %s" % (rev, tar.stderr.decode("utf-8", "replace").strip()))
    with tarfile.open(fileobj=io.BytesIO(tar.stdout)) as t:
        t.extractall(dest)
    return dest


def build(out, root):
    """The firmware and core-test .mpy of the tree at root (heap.compile_all) plus
    mast_alloc.mpy, in out."""
    heap.compile_all(out, root)
    src = out + "-src"
    os.makedirs(src)
    with open(os.path.join(src, "mast_alloc.py"), "w") as f:
        f.write(MEASURE)
    subprocess.run([MPY_CROSS, "-s", "mast_alloc.py", "-o", os.path.join(out, "mast_alloc.mpy"),
                    os.path.join(src, "mast_alloc.py")], check=True, timeout=60)
    shutil.rmtree(src)


def import_steps():
    return ["import gc\ngc.collect()",
            "import gc\n_a = gc.mem_alloc()\nimport mast.endpoint, mast.config\ngc.collect()",
            "import gc, json\nprint('RESULT ' + json.dumps({'import': gc.mem_alloc() - _a}))"]


def assoc_steps(k):
    return ["import mast_alloc\nmast_alloc.keep_endpoint(%d)" % k,
            "import gc\ngc.collect()",
            "import gc, json\nprint('RESULT ' + json.dumps({'live': gc.mem_alloc()}))"]


def packet_steps(start, n):
    return ["import mast_alloc\nmast_alloc.setup_packets(%d, %d, %d)" % (start, WARMUP, STEP_MS),
            "import gc, mast_alloc\ngc.disable()\nmast_alloc.packets(%d, %d)\ngc.enable()" % (n, STEP_MS),
            "import gc, mast_alloc\ngc.disable()\nmast_alloc.breakdown(%d)\ngc.enable()"
            % BREAKDOWN_CALLS]


class Build:
    """One MicroPython build: runs a list of steps in a fresh interpreter, returns RESULTs."""

    def __init__(self, name, bits, argv_for):
        self.name, self.bits, self.argv_for = name, bits, argv_for

    def run(self, out, steps):
        argv, env = self.argv_for(out, steps)
        p = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=TIMEOUT_S)
        if p.returncode != 0:
            raise RuntimeError("%s: exit %d\n%s%s" % (self.name, p.returncode, p.stdout, p.stderr))
        res = {}
        for line in p.stdout.splitlines():
            if line.startswith("RESULT "):
                res.update(json.loads(line[7:]))
        return res


def unix_build():
    if not os.path.exists(MICROPYTHON):
        return None, "no MicroPython unix port in the venv (the wheel is x86_64 only)"

    def argv_for(out, steps):
        # On the unix port gc.collect() takes effect at once: the steps run as one script.
        env = dict(os.environ, MICROPYPATH=out + os.pathsep + ".frozen")
        return [MICROPYTHON, "-X", "heapsize=" + HEAP_64, "-c", "\n".join(steps)], env

    return Build("64-bit", 64, argv_for), None


def wasm_build():
    node, why_not = mpy_core.mp32_node()
    if node is None:
        return None, why_not

    def argv_for(out, steps):
        return [node, RUN_STEPS, "--build", out, "--heapsize", str(HEAP_32)] + steps, None

    return Build("32-bit", 32, argv_for), None


def measure(b, out, n):
    """Every figure of one build on one core (compiled in out)."""
    m = {"import": b.run(out, import_steps())["import"]}
    one = b.run(out, assoc_steps(1))["live"]
    k = b.run(out, assoc_steps(K_ASSOCS))["live"]
    m["endpoint_1"] = one
    m["per_assoc"] = (k - one) / (K_ASSOCS - 1)
    m["clocks"] = []
    for _, start in CLOCKS:
        r = b.run(out, packet_steps(start, n))
        pk = r["packets"]
        if pk["delivered"] != n:
            raise RuntimeError("%s: %d DATA packets delivered, not %d" % (b.name, pk["delivered"], n))
        if pk["went_down"]:
            raise RuntimeError("%s: gc.mem_alloc() went down in %d packets: a collection ran "
                               "during the count" % (b.name, pk["went_down"]))
        m["clocks"].append((pk, r["breakdown"]))
    return m


def fmt_b(x):
    return "%d" % round(x) if isinstance(x, (int, float)) else str(x)


def table(head, cols, rows):
    """Markdown table: rows are (title, [cell per column])."""
    out = ["| %s | %s |" % (head, " | ".join(cols)), "|---|" + "---|" * len(cols)]
    out += ["| %s | %s |" % (title, " | ".join(cells)) for title, cells in rows]
    return out + [""]


def report(results, notes, n, elapsed):
    """results: [(build, core: "baseline" or "now", figures)] -> the section's markdown."""
    cols = ["%s, %s" % (b.name, core) for b, core, _ in results]
    lines = []
    rows_def = (("**sent + received (total)**", "total"), ("sent: send_data (+ datagrams_to_send, if queued)", "send"),
                ("received: receive + next_event", "recv"), ("other: feedback (KEEPALIVE) and timers", "other"),
                ("the clock's own value (the loop's `t += step`, as a board's clock read)", "clock"))
    for ci, (clabel, _) in enumerate(CLOCKS):
        rows = []
        for title, key in rows_def:
            cells = []
            for _, _, m in results:
                v = fmt_b(m["clocks"][ci][0].get(key, 0) / n)
                cells.append("**%s B**" % v if key == "total" else "%s B" % v)
            rows.append((title, cells))
        lines += table("per DATA packet (64 B payload), clock %s" % clabel, cols, rows)
    lines += ["Issue 11's figures (measured before this benchmark, another way): 4,539 B (64-bit) / "
              "2,929 B (a 32-bit i386 build) per packet sent + received. Target on 32-bit: <= %d B; "
              "aim <= %d B." % (TARGET_32, AIM_32), ""]
    for b, core, m in results:
        if b.bits == 32 and core == "now":
            for ci, (clabel, _) in enumerate(CLOCKS):
                pk = m["clocks"][ci][0]
                v = pk["total"] / n
                c = pk.get("clock", 0) / n
                lines += ["32-bit now, clock %s: %s B per packet%s: target (<= %d B) %s; aim (<= %d B) %s."
                          % (clabel, fmt_b(v), ", %s B of it the clock's own value (the core: %s B)" % (
                              fmt_b(c), fmt_b(v - c)) if c else "", TARGET_32,
                             "met" if v <= TARGET_32 else "**not met**", AIM_32,
                             "met" if v <= AIM_32 else "not met"), ""]
    lines += table("live heap", cols, [
        ("after `import mast.endpoint, mast.config` (the whole core)", ["%d B" % m["import"] for _, _, m in results]),
        ("each extra association (node a's endpoint alone, %d against 1)" % K_ASSOCS,
         ["%s B" % fmt_b(m["per_assoc"]) for _, _, m in results]),
        ("node a's endpoint with 1 association, modules included",
         ["%d B" % m["endpoint_1"] for _, _, m in results]),
    ])
    for ci, (clabel, _) in enumerate(CLOCKS):
        names = []
        for _, _, m in results:
            for it in m["clocks"][ci][1]["items"]:
                if it[0] not in names:
                    names.append(it[0])
        rows = []
        for name in names:
            cells = []
            for _, _, m in results:
                got = dict((it[0], it[1]) for it in m["clocks"][ci][1]["items"])
                v = got.get(name, "n/a")
                cells.append(fmt_b(v / BREAKDOWN_CALLS) if isinstance(v, int) else v)
            rows.append((name, cells))
        lines += ["Breakdown, clock %s: bytes per call of each function alone (%d calls; the cost of "
                  "calling an empty function subtracted):" % (clabel, BREAKDOWN_CALLS), ""]
        lines += table("function", cols, rows)
    labels = []
    for b, core, m in results:
        x = m["clocks"][0][0]["label"]
        t = "%s: %d (%s)" % (core, x, "at or above 2^30, a heap object on 32-bit" if x >= 2**30 else "below 2^30")
        if t not in labels:
            labels.append(t)
    lines.append("The label in every DATA header (the receiver's; of the first pair of b0..b7 whose labels are "
                 "both at or above 2^30, as 3 in 4 random 32-bit labels are, else b0's): %s. Ratio 32-bit / "
                 "64-bit, now, total per packet near 10 s: %s." % ("; ".join(labels), ratio(results, n)))
    for note in notes:
        lines += ["", note]
    lines += ["", "Run time %d s." % elapsed, "", "<!-- results: %s -->" % json.dumps(summary_items(results, n))]
    return "\n".join(lines)


def summary_items(results, n):
    """What bench/summary.py shows: the per-packet figure of each build against its target."""
    base = dict((b.bits, m) for b, core, m in results if core == "baseline")
    items = []
    for b, core, m in results:
        if core != "now":
            continue
        v = m["clocks"][0][0]["total"] / n
        was = " (baseline %s B)" % fmt_b(base[b.bits]["clocks"][0][0]["total"] / n) if b.bits in base else ""
        if b.bits == 32:
            # judged at its worse clock (past 2^30 ms a 32-bit board's clock values are heap
            # objects): the target holds after 12.4 days of uptime too, or it is not met
            worst = max(c[0]["total"] for c in m["clocks"]) / n
            items.append({"what": "heap allocated per DATA packet sent + received, 32-bit MicroPython (wasm32)",
                          "target": "≤ %d B (aim ≤ %d B)" % (TARGET_32, AIM_32),
                          "measured": "%s B%s; %s B with the clock past 2^30 ms" % (fmt_b(v), was, fmt_b(worst)),
                          "met": worst <= TARGET_32})
        else:
            items.append({"what": "heap allocated per DATA packet sent + received, 64-bit unix port",
                          "target": "(reported)", "measured": "%s B%s" % (fmt_b(v), was), "met": None})
        items.append({"what": "heap per extra association, %d-bit" % b.bits, "target": "(reported)",
                      "measured": "%s B" % fmt_b(m["per_assoc"]), "met": None})
    return items


def ratio(results, n):
    by = dict((b.bits, m) for b, core, m in results if core == "now")
    if 32 in by and 64 in by:
        return "%.2f" % (by[32]["clocks"][0][0]["total"] / by[64]["clocks"][0][0]["total"])
    return "n/a (one build only)"


def short(rev):
    """The abbreviated commit id of rev (as given when git cannot tell)."""
    p = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short=10", rev + "^{commit}"],
                       capture_output=True, text=True, timeout=30)
    return p.stdout.strip() if p.returncode == 0 else rev


def main(argv=None):
    ap = argparse.ArgumentParser(
        description="Heap allocated per DATA packet on 64- and 32-bit MicroPython.",
        epilog="example: .venv/bin/python bench/alloc.py --packets 500")
    ap.add_argument("--packets", type=int, default=PACKETS, help="DATA packets counted per clock (default %d)" % PACKETS)
    ap.add_argument("--baseline", default=BASE_REV,
                    help="git revision whose core is the baseline column (default %s, the core before the "
                         "allocation work); 'none': no baseline" % BASE_REV[:7])
    ap.add_argument("--core", default=None,
                    help="measure the core of this git revision as 'now' instead of the work tree")
    args = ap.parse_args(argv)
    if args.packets < 1 or args.packets > 20000:
        print("mast: --packets must be 1 to 20000; try the default, %d" % PACKETS, file=sys.stderr)
        return 1
    builds, notes = [], []
    for name, make in (("the unix port (64-bit)", unix_build), ("the wasm32 build (32-bit)", wasm_build)):
        b, why = make()
        if b is None:
            notes.append("Not measured on %s: %s." % (name, why))
            print("bench/alloc.py: %s skipped: %s" % (name, why), file=sys.stderr)
        else:
            builds.append(b)
    if not builds:
        print("bench/alloc.py: no MicroPython to measure on; skipped", file=sys.stderr)
        return 0
    t0 = time.monotonic()
    tmp = tempfile.mkdtemp(prefix="mast-alloc-")
    try:
        cores = []
        if args.baseline != "none":
            try:
                cores.append(("baseline", source_tree(args.baseline, os.path.join(tmp, "tree-baseline"))))
            except RuntimeError as e:
                print("mast: %s; pass --baseline REV with a revision this clone has, or --baseline none"
                      % e, file=sys.stderr)
                return 1
            notes.append("baseline: the core (and simnet) of revision %s, measured in the same run; now: %s."
                         % (short(args.baseline), "revision " + short(args.core) if args.core else "the work tree"))
        try:
            now_root = source_tree(args.core, os.path.join(tmp, "tree-now")) if args.core else ROOT
        except RuntimeError as e:
            print("mast: %s; pass --core with a revision this clone has" % e, file=sys.stderr)
            return 1
        cores.append(("now", now_root))
        results = []
        for core, root in cores:
            out = os.path.join(tmp, "mpy-" + core)
            build(out, root)
            for b in builds:
                try:
                    m = measure(b, out, args.packets)
                except (RuntimeError, KeyError, subprocess.TimeoutExpired) as e:
                    print("mast: measuring the %s core on %s failed; fix the core (the output below says "
                          "where), or measure a committed one with --core REV\n%s" % (core, b.name, e),
                          file=sys.stderr)
                    return 1
                results.append((b, core, m))
                print("%s, %s: %s B per packet (clock near 10 s)" % (
                    b.name, core, fmt_b(m["clocks"][0][0]["total"] / args.packets)), file=sys.stderr)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    results.sort(key=lambda r: (-r[0].bits, r[1] != "baseline"))
    body = report(results, notes, args.packets, time.monotonic() - t0)
    cmd = COMMAND
    if args.packets != PACKETS:
        cmd += " --packets %d" % args.packets
    if args.baseline != BASE_REV:
        cmd += " --baseline %s" % args.baseline
    if args.core:
        cmd += " --core %s" % args.core
    method = "How it counts (bench/alloc.py's docstring): " + __doc__.split("How it counts. ", 1)[1].strip()
    benchdoc.write_section("alloc", "Heap allocated per DATA packet (64-bit and 32-bit MicroPython)", cmd,
                           method + "\n\n" + body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
