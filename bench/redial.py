"""A fleet's reconnects after its server's graceful restart: the INIT storm, with the runtime's
jittered redial waits against the same runtime without jitter (the baseline, in the same run).

    .venv/bin/python bench/redial.py [--peers 1000] [--runs 1]

A server (runtime/driver.py's Runtime, `mast endpoint`'s runtime, in a process of its own, one
uplink on 127.0.0.1) and N peers (each a Runtime of its own with one UDP socket on a 127.1.x.y
address, all in this load process, driven by one selector; each redials as a board or `mast
endpoint` does: REDIAL_MS after the close, doubled after each failed attempt). The peers
connect spread over N x 5 ms; once the server has all N up it restarts gracefully: SHUT to
every peer (`close()`), its sockets closed, a new Runtime on the same address. Measured, from
the SHUT:
- the largest number of INITs that reached the server's socket in any 10 ms (sent by the peers:
  on loopback a datagram is in the server's socket queue when sendto returns; their send times,
  CLOCK_MONOTONIC, shared by both processes) and, for comparison, as the server read them (its
  loop reads one at a time, so its reading smooths the burst it was handed);
- the INITs in all (each attempt sends its INIT again while unanswered: a storm the server
  cannot answer in time makes more);
- the time until the server has all N associations up again; the host's UDP receive errors
  (kernel drops, /proc/net/snmp: system-wide, so another program's count too) over the restart.
Baseline: the same peers with runtime.driver.jitter replaced by `lambda ms, random: ms` (the
waits before this change). Every loop is bounded (60 s for each phase); traffic on loopback
only. Writes the `redial` section of docs/BENCHMARKS.md.
"""

import argparse
import heapq
import json
import os
import resource
import selectors
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path[:0] = [os.path.join(ROOT, "firmware")]
import benchdoc  # noqa: E402
from scale import udp_errors  # noqa: E402

PSK = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
WINDOW_S = 0.010
PHASE_S = 60  # the bound of each phase (all up; SHUT answered; all up again)
INIT = 1  # wire.INIT: the packet type, the header's second byte


def _name(i):
    return "p%04d" % i


def _mono():
    return time.monotonic()


def _udp_errors():
    return sum(udp_errors())  # (receive buffer drops and other receive errors alike)


def max_in_window(times, window=WINDOW_S):
    """The most timestamps in any window of that length (times sorted)."""
    best, j = 0, 0
    for i, t in enumerate(times):
        while times[j] < t - window:
            j += 1
        best = max(best, i - j + 1)
    return best


# ---- the server (a process of its own) ------------------------------------------------------


def server_worker(port, n):
    from mast.endpoint import Endpoint  # noqa: PLC0415
    from runtime.driver import Runtime  # noqa: PLC0415

    bind = ("127.0.0.1", port)
    peers = dict((_name(i), {"psk": PSK, "initiate": False}) for i in range(n))
    read = []

    def start():
        rt = Runtime(Endpoint({"name": "srv", "peers": peers}, os.urandom))
        rt.add_uplink("wan", bind)
        receive = rt.ep.receive

        def counted(uplink, src, data, now):  # (the runtime looks ep.receive up each read)
            if len(data) > 1 and data[1] == INIT:
                read.append(_mono())
            return receive(uplink, src, data, now)

        rt.ep.receive = counted
        return rt

    def up(rt):
        return sum(1 for a in rt.ep.by_peer.values() if a.state == 2)

    def until(rt, cond):
        end = _mono() + PHASE_S
        while not cond() and _mono() < end:
            rt.poll(5)
        return cond()

    rt = start()
    out = {"first_up": until(rt, lambda: up(rt) == n)}
    t_shut = _mono()
    rt.close()  # the graceful restart: SHUT to every peer, answered ...
    out["shut_answered"] = until(rt, lambda: not rt.ep.by_peer)
    rt.shutdown()
    del read[:]
    err0 = _udp_errors()
    rt = start()  # ... and the server back on the same address
    out["all_up"] = until(rt, lambda: up(rt) == n)
    out.update(t_shut=t_shut, t_all_up=_mono(), up=up(rt), read=read,
               udp_errors=_udp_errors() - err0)
    end = _mono() + 1  # (the peers see their last COOKIE-ACKs)
    while _mono() < end:
        rt.poll(5)
    rt.shutdown()
    print(json.dumps(out))
    return 0


# ---- the peers (this process) ---------------------------------------------------------------


def run_fleet(n, jittered):
    from mast.endpoint import Endpoint  # noqa: PLC0415
    from runtime import driver  # noqa: PLC0415

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, n + 256)), hard))
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    srv = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--server-worker", str(port),
                            str(n)], stdout=subprocess.PIPE, text=True)
    real_jitter = driver.jitter
    if not jittered:
        driver.jitter = lambda ms, random: ms
    sent = []
    peers = []
    sel = selectors.DefaultSelector()
    try:
        for i in range(n):
            rt = driver.Runtime(Endpoint({"name": _name(i), "peers": {"srv": {
                "psk": PSK, "addresses": ["127.0.0.1:%d" % port]}}}, os.urandom))
            rt.add_uplink("eth", ("127.1.%d.%d" % (i // 250, 1 + i % 250), 0))

            def send(uplink, dst, data, rt=rt):
                if data[1] == INIT:
                    sent.append(_mono())
                rt._send(uplink, dst, data)

            rt.ep.direct_send(send)
            sel.register(rt.uplinks["eth"].sock, selectors.EVENT_READ, i)
            peers.append(rt)
        time.sleep(0.5)  # (the server's socket bound)
        due, q = {}, []

        def turn(i):
            rt = peers[i]
            rt.poll(0)
            w = rt.wait_ms(None)
            if w is not None:
                d = _mono() + w / 1000.0
                if due.get(i) != d:
                    due[i] = d
                    heapq.heappush(q, (d, i))

        t0 = _mono()
        order = [(t0 + i * 0.005, i) for i in range(n)]
        order.reverse()
        end = t0 + 4 * PHASE_S
        while srv.poll() is None and _mono() < end:
            t = _mono()
            while order and order[-1][0] <= t:
                i = order.pop()[1]
                peers[i].connect("srv")
                turn(i)
            wait = 0.05 if not order else max(0.0, min(0.05, order[-1][0] - t))
            if q:
                wait = max(0.0, min(wait, q[0][0] - t))
            for key, _ in sel.select(wait):
                turn(key.data)
            t = _mono()
            while q and q[0][0] <= t:
                d, i = heapq.heappop(q)
                if due.get(i) == d:
                    del due[i]
                    turn(i)
        out, _ = srv.communicate(timeout=30)
        r = json.loads(out)
        r["redials"] = sum(rt.counters.get("redial", 0) for rt in peers)
    finally:
        driver.jitter = real_jitter
        if srv.poll() is None:
            srv.kill()
            srv.wait()
        for rt in peers:
            rt.shutdown()
        sel.close()
    t_shut = r["t_shut"]
    sent = sorted(t for t in sent if t >= t_shut)
    read = sorted(r["read"])
    r.update(n=n, jitter=jittered, sent_burst=max_in_window(sent), read_burst=max_in_window(read),
             inits=len(sent), first_init_s=(sent[0] - t_shut) if sent else None,
             last_init_s=(sent[-1] - t_shut) if sent else None,
             all_up_s=r["t_all_up"] - t_shut if r["all_up"] else None)
    del r["read"]
    return r


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--peers", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=1, help="restarts measured for each mode")
    ap.add_argument("--server-worker", nargs=2, type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.server_worker:
        return server_worker(*args.server_worker)
    if not 1 <= args.peers <= 60000:
        ap.error("--peers: 1 to 60000")
    rows = []
    for run in range(args.runs):
        for jittered in (False, True):
            r = run_fleet(args.peers, jittered)
            print(json.dumps(r), file=sys.stderr)
            rows.append(r)
    ok = all(r["first_up"] and r["all_up"] and r["up"] == r["n"] for r in rows)

    def fig(rs, key, fmt):
        vals = [r[key] for r in rs]
        return " / ".join("–" if v is None else fmt % v for v in vals)

    base = [r for r in rows if not r["jitter"]]
    jit = [r for r in rows if r["jitter"]]
    body = [
        "A server (the runtime, a process of its own) with %d peers (each a runtime of its own, "
        "its redial as boards and `mast endpoint` have it) on loopback restarts gracefully: SHUT "
        "to every peer, then a new runtime on the same address. From the SHUT (%d run(s) each; "
        "figures of the runs separated by /):" % (args.peers, args.runs),
        "",
        "| | redial waits as before (no jitter) | jittered (between half and all of each wait) |",
        "|---|---|---|",
        "| largest burst of INITs at the server's socket in any 10 ms | %s | %s |"
        % (fig(base, "sent_burst", "%d"), fig(jit, "sent_burst", "%d")),
        "| largest burst the server read in any 10 ms (its loop smooths it) | %s | %s |"
        % (fig(base, "read_burst", "%d"), fig(jit, "read_burst", "%d")),
        "| INITs in all (retransmissions included) | %s | %s |"
        % (fig(base, "inits", "%d"), fig(jit, "inits", "%d")),
        "| first / last INIT after the SHUT | %s | %s |"
        % (" / ".join("%.2f–%.2f s" % (r["first_init_s"], r["last_init_s"]) for r in base),
           " / ".join("%.2f–%.2f s" % (r["first_init_s"], r["last_init_s"]) for r in jit)),
        "| all %d peers up again after | %s | %s |"
        % (args.peers, fig(base, "all_up_s", "%.2f s"), fig(jit, "all_up_s", "%.2f s")),
        "| UDP receive errors on this host over the restart (kernel drops; /proc/net/snmp, "
        "system-wide) | %s | %s |"
        % (fig(base, "udp_errors", "%d"), fig(jit, "udp_errors", "%d")),
        "",
        "Without jitter every peer sends its new INIT REDIAL_MS (2 s) after the SHUT (here "
        "spread only by the load process going round its peers one at a time; real boards "
        "would all send in the same millisecond); what the server's socket cannot hold is "
        "dropped and sent again at the handshake's retransmission times (the INITs after "
        "2.5 s, and the time to all up). Jittered, each wait is drawn between 1 and 2 s: the "
        "server gets them a few at a time and every peer is back about 2 s after the SHUT. "
        "%s" % (
            "Every peer was up again in each run." if ok else "NOT every peer came back: see the "
            "JSON lines the run printed."),
    ]
    res = [{"what": "largest burst of INITs at the server in 10 ms, %d peers, after its graceful "
                    "restart" % args.peers,
            "target": "(reported; baseline: no jitter)",
            "measured": "%s with jitter (%s without)" % (fig(jit, "sent_burst", "%d"),
                                                         fig(base, "sent_burst", "%d")),
            "met": None},
           {"what": "all %d peers up again after the server's graceful restart" % args.peers,
            "target": "(reported)",
            "measured": "%s with jitter (%s without)" % (fig(jit, "all_up_s", "%.2f s"),
                                                         fig(base, "all_up_s", "%.2f s")),
            "met": None}]
    body += ["", "<!-- results: %s -->" % json.dumps(res)]
    benchdoc.write_section("redial", "A server's graceful restart: the fleet's reconnects (redial)",
                           ".venv/bin/python bench/redial.py " + " ".join(sys.argv[1:]),
                           "\n".join(body))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
