"""Presence under a spoofed flood (issue 15, point 3): lookups answered and the server's CPU, with
the defence (this tree) and without it (the server before it, BASELINE), in the same run. Root
only (network namespaces, raw sockets; skipped with the reason otherwise).

    .venv/bin/python bench/presence_flood.py [--baseline REV] [--rates 5000,20000]

Two namespaces joined by a veth pair: "srv" runs `mast presence` (state file on), "net" runs
the legitimate host and the flooder (tests/integration/presflood.py). For each server version
and flood rate, a fresh server; the host registers, then looks itself up LOOKUPS times, 0.2 s
apart, each answered if its LOOKUP-ACK arrives within 1 s, while the flooder sends datagrams
from 2,000 spoofed addresses in 10.99.0.0/16 (one in ten from the host's own address):
requests naming the served names under a wrong key, and junk. The server's CPU is read from
/proc over the lookups' window. Also, in one process per version, what one datagram costs the
sans-IO server by kind (no socket), the HMAC alone on CPython and on the MicroPython unix port,
and what one state write costs (the defence of point 6: one per batch that accepted a request).
Writes the `presence-flood` section of docs/BENCHMARKS.md.
"""

import argparse
import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import benchdoc  # noqa: E402
import nsbench  # noqa: E402
from nsbench import Proc, ROOT  # noqa: E402

import netns  # noqa: E402  (nsbench put tests/integration on the path)

BASELINE = "311dc0c"  # the last commit before the per-name rate limit (issue 15, point 3)
SRV, NET = "10.79.0.1", "10.79.0.2"
PORT = 6279
SOURCES = 2000
LOOKUPS = 14  # as in the attack run
NAMES = ("host.example", "a.example", "b.example")
KEYS = dict((n, bytes([(i * 5 + len(n) * 17 + ord(n[0])) & 255 for i in range(32)])) for n in NAMES)
FLOOD = os.path.join(ROOT, "tests", "integration", "presflood.py")

# Run in each tree's own process: per-datagram cost of its sans-IO server, by kind.
MICRO = r'''
import json, sys, time
sys.path.insert(0, sys.argv[1])
from presence import msg
from presence.server import Server
K = bytes(range(32))
srv = Server({"a.example": K, "b.example": bytes(range(1, 33))}, rate=1000000, burst=1000000)
up, _ = msg.keys(bytes(32), "a.example")
good_up, _ = msg.keys(K, "a.example")
kinds = [("junk (not PRES/1)", lambda i: b"\x01" + bytes(59)),
         ("an unserved name", lambda i: msg.seal(up, msg.LOOKUP, i, "zz.example", msg.enc_lookup("b.example"))),
         ("a served name, wrong key", lambda i: msg.seal(up, msg.LOOKUP, i, "a.example", msg.enc_lookup("b.example"))),
         ("authenticated LOOKUP (answered)", lambda i: msg.seal(good_up, msg.LOOKUP, 10 ** 12 + i, "a.example",
                                                                msg.enc_lookup("b.example")))]
out = {}
N = 20000
for name, make in kinds:
    pkts = [make(i) for i in range(N)]
    srcs = [("10.99.%d.%d" % (1 + i % 8, 1 + i % 250), 1024 + i) for i in range(N)]
    t = time.perf_counter()
    for i in range(N):
        srv.receive(srcs[i], pkts[i], 1000 + i // 50)
    out[name] = (time.perf_counter() - t) / N * 1e6
    srv.datagrams_to_send()
m = msg.keys(K, "a.example")[0]
p = pkts[0]
t = time.perf_counter()
for i in range(N):
    msg.verify(m, p)
out["HMAC tag check alone"] = (time.perf_counter() - t) / N * 1e6
print(json.dumps(out))
'''

MICRO_MP = r'''
import sys, time
sys.path.insert(0, FIRMWARE)
from presence import msg
m = msg.keys(bytes(range(32)), "a.example")[0]
p = msg.seal(m, msg.LOOKUP, 1, "a.example", msg.enc_lookup("b.example"))
N = 5000
t = time.ticks_us()
for i in range(N):
    msg.verify(m, p)
print(time.ticks_diff(time.ticks_us(), t) / N)
'''

STATE_WRITE = r'''
import json, os, sys, time
sys.path.insert(0, sys.argv[1])
from mastd.presence_host import PresenceHost
from presence.conf import check
doc = {"names": {"a.example": {"key": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="}}, "state": sys.argv[2]}
h = PresenceHost(check(doc), ("127.0.0.1", 0))
ts = []
for i in range(50):
    h.server.names["a.example"].last = 10 ** 12 + i
    t = time.perf_counter()
    h.save_state()
    ts.append((time.perf_counter() - t) * 1000)
ts.sort()
print(json.dumps({"median_ms": ts[len(ts) // 2], "p90_ms": ts[int(len(ts) * 0.9)]}))
'''


def _on_term(signum, frame):
    raise SystemExit(128 + signum)  # so the finally clauses remove what this run made


def baseline_tree(rev, work):
    """The firmware and host tools at rev, in work/base (git archive: nothing else touched)."""
    dst = os.path.join(work, "base")
    os.makedirs(dst)
    arch = subprocess.run(["git", "-C", ROOT, "archive", rev, "firmware", "host-tools"],
                          stdout=subprocess.PIPE, check=True, timeout=60).stdout
    subprocess.run(["tar", "-x", "-C", dst], input=arch, check=True, timeout=60)
    return dst


def config(work, tag):
    path = os.path.join(work, "presence-%s.json" % tag)
    doc = {"names": dict((n, {"key": base64.b64encode(k).decode()}) for n, k in KEYS.items()),
           "state": os.path.join(work, "state-%s.json" % tag)}
    with open(path, "w") as f:
        json.dump(doc, f)
    return path


def status(server):
    n = server.mark()
    server.send('{"op": "status"}')
    _, _, text = server.wait_line(lambda t: '"reply": "status"' in t, 10, "status", n)
    return json.loads(text)["status"]


def one_run(spaces, srv, net, work, tree, tag, rate):
    """A fresh server of `tree`; lookups under a flood of `rate` datagrams/s (0: none)."""
    env = dict(os.environ, PYTHONPATH=os.path.join(tree, "host-tools"))
    server = Proc(srv, [sys.executable, "-u", "-m", "mast_tools", "presence", "--listen", "%s:%d" % (SRV, PORT),
                        "--config", config(work, tag), "--duration", "120"], "server-" + tag, work, env=env)
    flood = None
    try:
        server.wait_line(lambda t: '"started"' in t, 15, "the server to start")
        before = status(server)["counters"].get("rx", 0)
        if rate:
            flood = Proc(net, [sys.executable, "-u", FLOOD, "flood", SRV, str(PORT), str(rate), "60",
                               str(SOURCES), ",".join(NAMES), "--victim", NET], "flood-" + tag, work)
            flood.wait_line(lambda t: "started" in t, 10, "the flood to start")
        cpu0, t0 = server.cpu_s(), time.monotonic()
        r = subprocess.run(["ip", "netns", "exec", net, sys.executable, "-u", FLOOD, "lookups", SRV, str(PORT),
                            NAMES[0], KEYS[NAMES[0]].hex(), str(LOOKUPS), "0.2", "1"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, timeout=120)
        cpu1, t1 = server.cpu_s(), time.monotonic()
        if r.returncode != 0:
            raise RuntimeError("lookups failed: %s" % r.stderr[-800:])
        got = json.loads(r.stdout)
        st = status(server)
        sent = None
        if flood is not None:
            flood.stop()
            for _, text in flood.lines:
                if '"sent"' in text:
                    d = json.loads(text)
                    sent = d["sent"] / d["seconds"]
            flood = None
        rtts = sorted(got["rtt_ms"])
        return {"answered": got["answered"], "of": got["sent"], "registered": got["registered"],
                "rtt_median_ms": rtts[len(rtts) // 2] if rtts else None,
                "cpu_pct": 100.0 * (cpu1 - cpu0) / (t1 - t0), "window_s": t1 - t0,
                "reached": st["counters"].get("rx", 0) - before, "flood_pps": sent,
                "rate_limited": st["counters"].get("rate_limited", 0),
                "state_writes": st.get("host_counters", {}).get("state_writes")}
    finally:
        if flood is not None:
            flood.stop()
        server.stop()


def micro(tree, work):
    out = {}
    r = subprocess.run([sys.executable, "-c", MICRO, os.path.join(tree, "firmware")], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, universal_newlines=True, timeout=300)
    if r.returncode != 0:
        raise RuntimeError("micro benchmark failed: %s" % r.stderr[-800:])
    out.update(json.loads(r.stdout))
    return out


def micropython_hmac_us():
    mp = nsbench.venv_bin("micropython")
    if mp is None:
        return None
    r = subprocess.run([mp, "-c", MICRO_MP.replace("FIRMWARE", repr(os.path.join(ROOT, "firmware")))],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, timeout=300)
    return float(r.stdout.strip()) if r.returncode == 0 else None


def state_write_ms(work):
    r = subprocess.run([sys.executable, "-c", STATE_WRITE, os.path.join(ROOT, "firmware"),
                        os.path.join(work, "state-bench.json")], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       universal_newlines=True, timeout=120)
    if r.returncode != 0:
        raise RuntimeError("state write benchmark failed: %s" % r.stderr[-800:])
    return json.loads(r.stdout)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baseline", default=BASELINE, help="the commit without the defence (default %(default)s)")
    ap.add_argument("--rates", default="5000,20000", help="flood rates, datagrams/s (default %(default)s)")
    args = ap.parse_args()
    rates = [int(x) for x in args.rates.split(",") if x]
    reason = nsbench.root_reason()
    if reason:
        print("bench/presence_flood.py: skipped: %s" % reason, file=sys.stderr)
        return 0
    netns.cleanup_leftovers("mpf")
    work = tempfile.mkdtemp(prefix="mast-presence-flood-")
    spaces = netns.Namespaces(prefix="mpf")
    t0 = time.monotonic()
    runs = []
    try:
        trees = [("without the defence (%s)" % args.baseline, baseline_tree(args.baseline, work)),
                 ("with the defence (this tree)", ROOT)]
        srv, net = spaces.add("srv"), spaces.add("net")
        spaces.veth(srv, "v1", net, "v2")
        netns.ip(srv, "addr", "add", SRV + "/24", "dev", "v1")
        netns.ip(net, "addr", "add", NET + "/24", "dev", "v2")
        netns.ip(srv, "route", "add", "default", "via", NET)  # the spoofed sources are "beyond" net
        for ns in (srv, net):
            netns.sysctl(ns, "net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.default.rp_filter=0")
        for rate in [0] + rates:
            for i, (label, tree) in enumerate(trees):
                print("presence flood: %s, %d datagrams/s" % (label, rate), file=sys.stderr)
                r = one_run(spaces, srv, net, work, tree, "%d-%d" % (i, rate), rate)
                r.update({"version": label, "rate": rate})
                runs.append(r)
        costs = [(label, micro(tree, work)) for label, tree in trees]
        mp_hmac = micropython_hmac_us()
        writes = state_write_ms(work)
    finally:
        spaces.close()
        netns.cleanup_leftovers("mpf")
        shutil.rmtree(work, ignore_errors=True)

    rows = ["| server | flood (datagrams/s, from %d sources) | window (s) | datagrams that reached the server | "
            "lookups answered | median answer (ms) | server CPU | rate_limited | state writes |" % SOURCES,
            "|---|---|---|---|---|---|---|---|---|"]
    for r in runs:
        flood = "none" if not r["rate"] else "%d (sent %.0f/s)" % (r["rate"], r["flood_pps"] or 0)
        rows.append("| %s | %s | %.1f | %d | **%d of %d**%s | %s | %.0f%% | %d | %s |" % (
            r["version"], flood, r["window_s"], r["reached"], r["answered"], r["of"],
            "" if r["registered"] else " (REGISTER unanswered)",
            "%.1f" % r["rtt_median_ms"] if r["rtt_median_ms"] is not None else "–", r["cpu_pct"],
            r["rate_limited"], r["state_writes"] if r["state_writes"] is not None else "– (every 5 s)"))
    kinds = list(costs[0][1])
    cost_rows = ["| datagram | " + " | ".join(label for label, _ in costs) + " |",
                 "|---|" + "---|" * len(costs)]
    for k in kinds:
        cost_rows.append("| %s | %s |" % (k, " | ".join("%.1f µs" % c[k] if k in c else "–" for _, c in costs)))
    body = ["Lookups of a legitimate host (%d, 0.2 s apart, 1 s to answer each) while a flood spoofed from "
            "%d addresses (one in ten from the host's own address) hits `mast presence` in a network "
            "namespace: requests naming the served names under a wrong key, and junk. A fresh server "
            "for each row; its CPU over the lookups' window (from the first lookup to the last answer "
            "or time-out: an unanswered lookup takes 1 s, so the window is longer without the "
            "defence and more of the flood reaches the server). State writes include the REGISTER "
            "before the lookups. *Without the defence*: the server at "
            "`%s` (256 rate buckets per source address, new sources sharing one when full, checked "
            "before anything else). *With*: every well-formed request for a served name has its tag "
            "checked (one HMAC), and the rate limit is per name, spent only by authenticated, fresh "
            "requests." % (LOOKUPS, SOURCES, args.baseline), ""] + rows
    body += ["", "What one datagram costs the sans-IO server (`Server.receive`, CPython, no socket), by kind:", ""]
    body += cost_rows
    body += ["", "The HMAC tag check alone: %.1f µs on CPython; %s on the MicroPython unix port (no "
             "copyable hash states there)." % (costs[-1][1]["HMAC tag check alone"],
                                             "%.1f µs" % mp_hmac if mp_hmac is not None else "not measured (no micropython)"),
             "At 5,000 datagrams/s, every one of them a served name under a wrong key, `Server.receive` "
             "alone would take %.1f%% of one core on CPython with the defence (%.1f%% without); the "
             "server CPU in the table above also holds the socket reads and the loop. These per-datagram "
             "figures were taken after the namespace runs, on the same (shared, 2-core) machine."
             % (5000 * costs[-1][1]["a served name, wrong key"] / 1e4,
                5000 * costs[0][1]["a served name, wrong key"] / 1e4),
             "",
             "One state write (point 6: temp file, fsync, rename, fsync of the folder, before the answers of a batch "
             "that accepted a request leave; never for unauthenticated input): median %.2f ms, p90 %.2f ms "
             "(50 writes, to %s's file system). An answer waits for it, which is most of the difference "
             "in the median answer time between the two servers without a flood; under load one write "
             "covers every request accepted in one batch of up to 64 datagrams."
             % (writes["median_ms"], writes["p90_ms"], tempfile.gettempdir()),
             "", "Run time %d s." % (time.monotonic() - t0)]
    ok = [r for r in runs if r["rate"] and r["version"].startswith("with ")]
    base = [r for r in runs if r["rate"] and not r["version"].startswith("with ")]
    items = []
    for r in ok:
        b = [x for x in base if x["rate"] == r["rate"]]
        items.append({"what": "presence lookups answered under a %d/s spoofed flood" % r["rate"],
                      "target": "≥ 9 of 10 (issue 15)",
                      "measured": "%d of %d (without the defence: %s)" % (
                          r["answered"], r["of"], "%d of %d" % (b[0]["answered"], b[0]["of"]) if b else "–"),
                      "met": r["answered"] * 10 >= 9 * r["of"]})
    body += ["", "<!-- results: %s -->" % json.dumps(items)]
    benchdoc.write_section("presence-flood", "Presence under a spoofed flood",
                           ".venv/bin/python bench/presence_flood.py", "\n".join(body))
    return 0


if __name__ == "__main__":
    import signal

    signal.signal(signal.SIGTERM, _on_term)
    sys.exit(main())
