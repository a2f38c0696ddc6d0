"""One server, a fleet of peers: what each idle peer costs the server, and whether any cost grows
with the number of peers (issue 16).

    .venv/bin/python bench/scale.py [--sizes 10,100,1000,10000,20000] [--baseline REV] [--real 1000]

Part 1, the sans-IO core on a fake clock. One server (one uplink) and N peers, each with three
uplinks behind NAT (so each path is refreshed every nat_refresh_s = 25 s: the realistic worst
case for an idle fleet), idle apart from their keepalive probes. The peers connect spread over
the first minute; after a warm-up (simulated) the server's own calls (receive, handle_timer,
next_timer, datagrams_to_send) are timed for a window of simulated time:
- server CPU per simulated second (the % of one core an idle fleet of N costs);
- µs per next_timer() (called once per loop turn by a runtime);
- µs per DATA packet the server sends, and per DATA packet it receives;
- memory per association on the server (CPython, objects reachable from it).
The baseline is the same harness run with the core at git revision REV (default: the last
commit before the timer queue), in the same run, at the sizes it can finish (its cost is
O(N) per call, so O(N^2) per second).

Part 2 (--real N, default 1000; needs nothing but loopback): `mast endpoint` (CPython) as the
server, and N peers (one uplink each) in one load process over 127.x.y.z, 60 s of steady state:
server CPU, UDP receive errors (kernel drops), path_down and failover events on the server, DATA
delivered (each peer sends one every 10 s) and the peers' median RTT.

Each worker runs in its own process. Writes the `scale` section of docs/BENCHMARKS.md.
"""

import argparse
import gc
import heapq
import json
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import benchdoc  # noqa: E402

PSK = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
BASELINE_REV = "8d81c0e"  # MAST/1.0 core: next_timer() walks every association
SERVER = ("192.0.2.1", 6278)
DELAY = 5  # ms one way


# ---- part 1: the core on a fake clock ---------------------------------------------------------


def _peer_name(i):
    return "b%05d.fleet.example" % i


def _private(i, k):
    return ("10.%d.%d.%d" % (k, (i >> 8) & 255, i & 255), 6278)


def _public(i, k):
    return ("100.%d.%d.%d" % (64 + k, (i >> 8) & 255, i & 255), 40000 + (i >> 16))


class Sim:
    """Endpoints back to back: a heap of packet deliveries and endpoint timers. Only the
    server's calls are timed."""

    def __init__(self, Endpoint, n, rng):
        self.t = 0
        self.q = []
        self.order = 0
        self.busy = 0.0  # seconds spent in the server's calls
        self.calls = 0
        scfg = {"name": "srv", "peers": {}}
        for i in range(n):
            scfg["peers"][_peer_name(i)] = {"psk": PSK}
        self.server = Endpoint(scfg, rng("srv"))
        self.server.uplink_up("wan", SERVER, 0)
        self.clients = []
        self.where = {}  # public (ip, port) -> (client index, uplink name)
        for i in range(n):
            c = Endpoint({"name": _peer_name(i),
                          "peers": {"srv": {"psk": PSK, "addresses": ["%s:%d" % SERVER]}}},
                         rng(_peer_name(i)))
            for k, up in enumerate(("eth", "wifi", "cell")):
                c.uplink_up(up, _private(i, k), 0, 10 * (k + 1), 0)
                self.where[_public(i, k)] = (i, up)
            self.clients.append(c)
        self.due = {}  # endpoint index (-1: server) -> deadline queued

    def ep(self, i):
        return self.server if i < 0 else self.clients[i]

    def _timer(self, i):
        e = self.ep(i)
        if i < 0:
            t0 = time.perf_counter()
            d = e.next_timer()
            self.busy += time.perf_counter() - t0
        else:
            d = e.next_timer()
        if d is not None and self.due.get(i) != d:
            self.due[i] = d
            self.order += 1
            heapq.heappush(self.q, (d, self.order, 0, i, None, None))

    def _flush(self, i):
        e = self.ep(i)
        if i < 0:
            t0 = time.perf_counter()
            out = e.datagrams_to_send()
            while e.next_event() is not None:  # (a runtime reads them every turn)
                pass
            self.busy += time.perf_counter() - t0
            for up, dst, data in out:
                w = self.where.get(dst)
                if w is not None:
                    self.order += 1
                    heapq.heappush(self.q, (self.t + 2 * DELAY, self.order, 1, w[0], w[1], (SERVER, bytes(data))))
        else:
            while e.next_event() is not None:
                pass
            for up, dst, data in e.datagrams_to_send():
                if dst == SERVER:
                    k = ("eth", "wifi", "cell").index(up)
                    self.order += 1
                    heapq.heappush(self.q, (self.t + 2 * DELAY, self.order, 1, -1, "wan", (_public(i, k), bytes(data))))
        self._timer(i)

    def connect(self, i):
        self.clients[i].connect("srv", self.t)
        self._flush(i)

    def run(self, until, connects=()):
        """Advance to `until`; connects: [(time, client index)] sorted."""
        connects = list(connects)
        ci = 0
        while True:
            nxt = self.q[0][0] if self.q else None
            if ci < len(connects) and (nxt is None or connects[ci][0] <= nxt):
                if connects[ci][0] > until:
                    break
                self.t = max(self.t, connects[ci][0])
                self.connect(connects[ci][1])
                ci += 1
                continue
            if nxt is None or nxt > until:
                break
            t, _, kind, i, up, pkt = heapq.heappop(self.q)
            self.t = max(self.t, t)
            e = self.ep(i)
            if kind == 0:  # a timer
                if self.due.get(i) != t:
                    continue
                del self.due[i]
                if i < 0:
                    t0 = time.perf_counter()
                    e.handle_timer(self.t)
                    self.busy += time.perf_counter() - t0
                    self.calls += 1
                else:
                    e.handle_timer(self.t)
            else:
                src, data = pkt
                if i < 0:
                    t0 = time.perf_counter()
                    e.receive(up, src, data, self.t)
                    self.busy += time.perf_counter() - t0
                    self.calls += 1
                else:
                    e.receive(up, src, data, self.t)
            self._flush(i)
        self.t = until


def _deep_size(roots, skip):
    seen = set(id(x) for x in skip)
    todo = list(roots)
    total = 0
    while todo:
        o = todo.pop()
        if id(o) in seen or isinstance(o, type) or type(o).__name__ in ("module", "function", "builtin_function_or_method"):
            continue
        seen.add(id(o))
        total += sys.getsizeof(o)
        todo.extend(gc.get_referents(o))
    return total


def core_worker(coredir, n, warm_s, window_s):
    sys.path.insert(0, coredir)
    sys.path.insert(1, os.path.join(ROOT, "tests", "core"))
    from mast.endpoint import Endpoint  # noqa: PLC0415
    import simnet  # noqa: PLC0415  (its deterministic random source)

    sim = Sim(Endpoint, n, simnet.Rng)
    spread = 60000
    connects = [(i * spread // max(n, 1), i) for i in range(n)]
    t_build = time.perf_counter()
    sim.run(spread + 5000, connects)
    up = sum(1 for a in sim.server.by_peer.values() if a.state == 2)
    sim.run(spread + warm_s * 1000)
    sim.busy, sim.calls = 0.0, 0
    start = sim.t
    sim.run(start + window_s * 1000)
    busy = sim.busy
    calls = sim.calls
    # next_timer() alone, as a runtime calls it once per loop turn
    srv = sim.server
    k = 2000
    t0 = time.perf_counter()
    for _ in range(k):
        srv.next_timer()
    per_timer = (time.perf_counter() - t0) / k * 1e6
    # DATA: the server sends to one peer, and receives from one
    peer = _peer_name(n // 2)
    payload = bytes(64)
    t0 = time.perf_counter()
    sent = 0
    for j in range(k):
        sent += bool(srv.send_data(payload, sim.t, peer))
        srv.datagrams_to_send()
        srv.next_timer()
    per_tx = (time.perf_counter() - t0) / k * 1e6
    c = sim.clients[n // 2]
    pkts = []
    for j in range(k):
        c.send_data(payload, sim.t)
        for u, dst, data in c.datagrams_to_send():
            k_up = ("eth", "wifi", "cell").index(u)
            pkts.append((_public(n // 2, k_up), bytes(data)))
    before = srv.counters.get("accepted", 0)
    t0 = time.perf_counter()
    for src, data in pkts:
        srv.receive("wan", src, data, sim.t)
        srv.datagrams_to_send()
        while srv.next_event() is not None:
            pass
        srv.next_timer()
    per_rx = (time.perf_counter() - t0) / len(pkts) * 1e6
    delivered = srv.counters.get("accepted", 0) - before
    # the configuration: checking all of it (a start, a reload), and one peer more or less
    # while the others keep their associations (set_peer / remove_peer, no check of the rest)
    from mast import config as mast_config  # noqa: PLC0415

    doc = {"name": "srv", "peers": dict((_peer_name(i), {"psk": PSK}) for i in range(n))}
    t0 = time.perf_counter()
    mast_config.validate(doc)
    s_validate = time.perf_counter() - t0
    ms_add = ms_remove = None
    if hasattr(srv, "set_peer"):
        t0 = time.perf_counter()
        srv.set_peer("newcomer.fleet.example", {"psk": PSK}, sim.t)
        ms_add = (time.perf_counter() - t0) * 1000
        t0 = time.perf_counter()
        srv.remove_peer("newcomer.fleet.example", sim.t)
        ms_remove = (time.perf_counter() - t0) * 1000
    gc.collect()
    mem = _deep_size(list(srv.assocs.values()), [srv, srv.uplinks, srv.prof] + list(srv.uplinks.values()))
    return {"n": n, "up": up, "cpu_pct": 100.0 * busy / window_s, "server_calls_per_s": calls / window_s,
            "us_next_timer": per_timer, "us_data_tx": per_tx, "us_data_rx": per_rx,
            "tx_ok": sent == k, "rx_ok": delivered == len(pkts),
            "bytes_per_assoc": mem // max(len(srv.assocs), 1), "window_s": window_s,
            "s_validate": s_validate, "ms_add_peer": ms_add, "ms_remove_peer": ms_remove,
            "wall_s": time.perf_counter() - t_build}


def extract_core(rev, dest):
    """firmware/mast at git revision rev into dest/mast (the baseline core)."""
    os.makedirs(os.path.join(dest, "mast"))
    names = subprocess.run(["git", "ls-tree", "--name-only", rev, "firmware/mast/"], cwd=ROOT,
                           capture_output=True, text=True, check=True).stdout.split()
    for path in names:
        if path.endswith(".py"):
            src = subprocess.run(["git", "show", "%s:%s" % (rev, path)], cwd=ROOT,
                                 capture_output=True, check=True).stdout
            with open(os.path.join(dest, "mast", os.path.basename(path)), "wb") as f:
                f.write(src)


def run_worker(args, timeout):
    cmd = [sys.executable, os.path.abspath(__file__), "--worker"] + [str(a) for a in args]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None
    if p.returncode != 0:
        sys.stderr.write(p.stderr[-2000:])
        return None
    return json.loads(p.stdout.strip().splitlines()[-1])


# ---- part 2: the real runtime over loopback ---------------------------------------------------


def _proc_cpu(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def udp_errors():
    """The host's UDP (RcvbufErrors, InErrors) so far (/proc/net/snmp: system-wide)."""
    with open("/proc/net/snmp") as f:
        lines = [l.split() for l in f if l.startswith("Udp:")]
    d = dict(zip(lines[0][1:], lines[1][1:]))
    return int(d.get("RcvbufErrors", 0)), int(d.get("InErrors", 0))


def real_worker(n, steady_s):
    """The load process's side: n peers in this process, the server a `mast endpoint`."""
    sys.path[:0] = [os.path.join(ROOT, "firmware"), os.path.join(ROOT, "tests", "core")]
    from mast.endpoint import Endpoint  # noqa: PLC0415
    import selectors  # noqa: PLC0415

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, n + 256)), hard))
    work = tempfile.mkdtemp(prefix="mast-scale-")
    srv_addr = ("127.0.0.1", _free_port())
    peers = {_peer_name(i): {"psk": PSK} for i in range(n)}
    conf = {"mast": {"name": "srv", "peers": peers}, "uplinks": {"wan": {"bind": "%s:%d" % srv_addr}}}
    path = os.path.join(work, "srv.json")
    with open(path, "w") as f:
        json.dump(conf, f)
    mast = os.path.join(ROOT, ".venv", "bin", "mast")
    srv = subprocess.Popen([mast, "endpoint", "--config", path, "--duration", str(steady_s + 120)],
                           stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                           text=True)
    events = {"path_down": 0, "failover": 0, "data": 0}
    import threading  # noqa: PLC0415

    def reader():
        for line in srv.stdout:
            try:
                ev = json.loads(line).get("event")
            except ValueError:
                continue
            if ev in events:
                events[ev] += 1

    threading.Thread(target=reader, daemon=True).start()
    sel = selectors.DefaultSelectors() if False else selectors.DefaultSelector()
    clients, socks = [], {}
    for i in range(n):
        a = ("127.%d.%d.%d" % (1 + (i >> 16), (i >> 8) & 255, (i & 255) or 1), 20000 + (i & 4095))
        c = Endpoint({"name": _peer_name(i), "peers": {"srv": {"psk": PSK, "addresses": ["%s:%d" % srv_addr]}}},
                     os.urandom)
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(a)
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ, i)
        clients.append((c, s))
    t0 = time.monotonic()

    def now():
        return int((time.monotonic() - t0) * 1000)

    q = []
    due = {}

    def flush(i):
        c, s = clients[i]
        for up, dst, data in c.datagrams_to_send():
            try:
                s.sendto(data, dst)
            except OSError:
                pass
        d = c.next_timer()
        if d is not None and due.get(i) != d:
            due[i] = d
            heapq.heappush(q, (d, i))

    for i in range(n):
        c, s = clients[i]
        c.uplink_up("eth", s.getsockname(), now())
    spread_ms = 20000
    order = [(i * spread_ms // n, i) for i in range(n)]
    next_data = {}
    sent_data = 0
    measuring = None
    cpu0 = err0 = None
    end = spread_ms + 40000 + steady_s * 1000
    while now() < end:
        t = now()
        while order and order[0][0] <= t:
            _, i = order.pop(0)
            clients[i][0].connect("srv", t)
            next_data[i] = t + 10000 + (i % 10000)
            flush(i)
        if measuring is None and t >= spread_ms + 40000:
            measuring = t
            cpu0 = _proc_cpu(srv.pid)
            err0 = udp_errors()
            ev0 = dict(events)
            sent_data = 0
        wait = 0.05
        if q:
            wait = max(0.0, min(wait, (q[0][0] - t) / 1000.0))
        for key, _ in sel.select(wait):
            i = key.data
            c, s = clients[i]
            for _ in range(8):
                try:
                    data, src = s.recvfrom(2049)
                except BlockingIOError:
                    break
                c.receive("eth", src, data, now())
            while c.next_event() is not None:
                pass
            flush(i)
        t = now()
        while q and q[0][0] <= t:
            d, i = heapq.heappop(q)
            if due.get(i) != d:
                continue
            del due[i]
            clients[i][0].handle_timer(t)
            flush(i)
        for i in list(next_data):
            if next_data[i] <= t:
                next_data[i] = t + 10000
                if clients[i][0].send_data(b"telemetry %d" % i, t):
                    if measuring is not None:
                        sent_data += 1
                flush(i)
    cpu = _proc_cpu(srv.pid) - cpu0
    err = udp_errors()
    secs = (now() - measuring) / 1000.0
    rtts = []
    up = 0
    for c, s in clients:
        a = c.association("srv")
        if a is not None and a.state == 2:
            up += 1
            if a.primary is not None and a.primary.srtt is not None:
                rtts.append(a.primary.srtt)
    time.sleep(0.5)
    got = {k: events[k] - ev0[k] for k in events}
    srv.stdin.close()
    try:
        srv.wait(10)
    except subprocess.TimeoutExpired:
        srv.kill()
    shutil.rmtree(work, ignore_errors=True)
    rtts.sort()
    return {"n": n, "up": up, "seconds": secs, "server_cpu_pct": 100.0 * cpu / secs,
            "rcvbuf_errors": err[0] - err0[0], "udp_in_errors": err[1] - err0[1],
            "path_down": got["path_down"], "failover": got["failover"],
            "data_sent": sent_data, "data_delivered": got["data"],
            "median_rtt_ms": rtts[len(rtts) // 2] if rtts else None}


def _free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


# ---- the report -------------------------------------------------------------------------------


def results(rows, real):
    """The figures against issue 16's targets, for bench/summary.py."""
    mine = dict((n, r) for who, n, r in rows if who == "this tree" and r is not None)
    out = []
    if mine:
        big = max(mine)
        out.append({"what": "server CPU with %d idle peers (core, fake clock)" % big,
                    "target": "≤ 10% of one core", "measured": "%.2f%%" % mine[big]["cpu_pct"],
                    "met": mine[big]["cpu_pct"] <= 10.0})
        small = min(mine)
        for key, what in (("us_data_rx", "received"), ("us_data_tx", "sent")):
            a, b = mine[small][key], mine[big][key]
            out.append({"what": "µs per DATA %s, %d → %d peers" % (what, small, big),
                        "target": "flat (≤ 1.5×)", "measured": "%.1f → %.1f µs" % (a, b),
                        "met": b <= 1.5 * a})
        if mine[big].get("ms_add_peer") is not None:
            out.append({"what": "one peer added to / removed from a running %d-peer server" % big,
                        "target": "(reported; the others untouched)",
                        "measured": "%.2f / %.2f ms (checking the whole config: %.2f s)" % (
                            mine[big]["ms_add_peer"], mine[big]["ms_remove_peer"],
                            mine[big]["s_validate"]), "met": None})
    if real is not None:
        out.append({"what": "%d peers on the real runtime (loopback): server CPU, kernel drops, "
                            "failovers" % real["n"], "target": "(reported)",
                    "measured": "%.1f%%, %d drops, %d failovers, %d/%d peers up" % (
                        real["server_cpu_pct"], real["rcvbuf_errors"], real["failover"],
                        real["up"], real["n"]), "met": None})
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="10,100,1000,10000,20000")
    ap.add_argument("--baseline", default=BASELINE_REV)
    ap.add_argument("--baseline-sizes", default="10,100,1000")
    ap.add_argument("--warm", type=int, default=240, help="simulated seconds before measuring")
    ap.add_argument("--window", type=int, default=120, help="simulated seconds measured")
    ap.add_argument("--real", type=int, default=1000, help="peers in the loopback run (0: skip)")
    ap.add_argument("--steady", type=int, default=60)
    ap.add_argument("--worker", nargs="*")
    args = ap.parse_args()
    if args.worker is not None:
        w = args.worker
        if w[0] == "core":
            print(json.dumps(core_worker(w[1], int(w[2]), int(w[3]), int(w[4]))))
        else:
            print(json.dumps(real_worker(int(w[1]), int(w[2]))))
        return 0
    rows = []
    base_dir = tempfile.mkdtemp(prefix="mast-baseline-")
    try:
        extract_core(args.baseline, base_dir)
        for n in [int(x) for x in args.baseline_sizes.split(",") if x]:
            # the old core costs O(N) per call: a shorter window where N is large
            window = args.window if n <= 100 else 10
            r = run_worker(["core", base_dir, n, 30, window], 1800)
            print("baseline", n, r, file=sys.stderr)
            rows.append(("baseline (%s)" % args.baseline, n, r))
    finally:
        shutil.rmtree(base_dir, ignore_errors=True)
    for n in [int(x) for x in args.sizes.split(",") if x]:
        r = run_worker(["core", os.path.join(ROOT, "firmware"), n, args.warm, args.window], 3600)
        print("now", n, r, file=sys.stderr)
        rows.append(("this tree", n, r))
    real = None
    if args.real:
        real = run_worker(["real", args.real, args.steady], args.steady + 600)
        print("real", real, file=sys.stderr)
    body = ["One server, N peers with three uplinks each behind NAT, idle but for their probes "
            "(fake clock; the server's own calls timed). The baseline is the core at %s, the "
            "last before the timer queue, in this same run." % args.baseline, "",
            "| core | N peers | up | server CPU, % of one core (idle) | µs per next_timer() | "
            "µs per DATA sent | µs per DATA received | bytes per association | "
            "check the whole config | add / remove one peer |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    for who, n, r in rows:
        if r is None:
            body.append("| %s | %d | — | did not finish in time | | | | | | |" % (who, n))
            continue
        edit = "—"
        if r.get("ms_add_peer") is not None:
            edit = "%.2f / %.2f ms" % (r["ms_add_peer"], r["ms_remove_peer"])
        body.append("| %s | %d | %d | %.2f | %.1f | %.1f | %.1f | %d | %.3f s | %s |" % (
            who, n, r["up"], r["cpu_pct"], r["us_next_timer"], r["us_data_tx"], r["us_data_rx"],
            r["bytes_per_assoc"], r["s_validate"], edit))
    body += ["", "Warm-up %d simulated s after the last peer connected (idle probes back off to the "
             "25 s NAT refresh), then %d s measured (10 s for the baseline above 100 peers)."
             % (args.warm, args.window)]
    if real is not None:
        body += ["", "### The real runtime over loopback",
                 "",
                 "`mast endpoint` (CPython) as the server; %d peers in one load process, one uplink "
                 "each, each sending a DATA every 10 s; %.0f s of steady state after all connected "
                 "(sent and delivered are counted from the window's start: a DATA in flight then "
                 "counts as delivered only)."
                 % (real["n"], real["seconds"]), "",
                 "| peers up | server CPU | UDP receive-buffer drops | path_down | failover | DATA "
                 "sent / delivered | peers' median RTT |",
                 "|---|---|---|---|---|---|---|",
                 "| %d / %d | %.1f%% | %d | %d | %d | %d / %d | %s ms |" % (
                     real["up"], real["n"], real["server_cpu_pct"], real["rcvbuf_errors"],
                     real["path_down"], real["failover"], real["data_sent"], real["data_delivered"],
                     real["median_rtt_ms"])]
    body += ["", "<!-- results: %s -->" % json.dumps(results(rows, real))]
    benchdoc.write_section("scale", "A fleet on one server (scale)",
                           ".venv/bin/python bench/scale.py " + " ".join(sys.argv[1:]),
                           "\n".join(body))
    return 0


if __name__ == "__main__":
    sys.exit(main())
