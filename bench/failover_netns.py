"""Failover in real network namespaces: MAST (datagrams, and TCP carried through mastd) against
Linux MPTCP, in one topology and one run. Root only (skipped with the reason otherwise).

    .venv/bin/python bench/failover_netns.py [--trials N] [--only NAME[,NAME...]]

The topology is the runtime integration tests' (tests/integration/netns.py: a client with three
uplinks, each through its own ISP namespace to the server; the third ISP does NAT) plus one host
"far" behind the server for the TCP runs (mastd binds its socket to a device, and the server
namespace has one per ISP). It is built once; each configuration starts its processes in it,
streams 100 records/s from the client, and repeats: cut (the active ISP drops everything it
forwards: an nft table, committed through libnftables by an agent in the ISP's namespace, so the
failure time is known to the millisecond), recover, restore, fail back, a short random tail.

Per failure:
  gap    = failure -> arrival of the first record sent after the failure;
  outage = failure -> arrival of the first delivered record after which none is lost or
           delayed by more than 50 ms (until the failed ISP is restored).
A datagram flow in failover mode has outage = gap and loses the records sent in the gap; TCP
loses nothing but queues. Writes the `failover-netns` section of docs/BENCHMARKS.md.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import benchdoc  # noqa: E402
import nsbench  # noqa: E402
from nsbench import PSK, now_ms, pct, fmt_ms  # noqa: E402

import netns  # noqa: E402 (tests/integration, put on the path by nsbench)

PORT = 6278
RATE = 100
SERVER = "%s:%d" % (netns.SERVER4, PORT)
FAR = "203.0.113.9"  # the host behind the server (TCP receivers, mastd's far end)
LATE_MS = 50
TARGETS = {  # p95, ms (docs/PROTOCOL.md section 10; issue 8)
    ("gap", "default"): 800, ("gap", "fast"): 150,
    ("outage", "mastd-default"): 835, ("outage", "mastd-fast"): 210,
}
MAST_CONFIGS = [  # name, profile, mode, client runtime, CPU hogs during the trials
    ("mast-default-cpython", "default", "failover", "cpython", 0),
    ("mast-fast-cpython", "fast", "failover", "cpython", 0),
    ("mast-default-micropython", "default", "failover", "micropython", 0),
    ("mast-fast-micropython", "fast", "failover", "micropython", 0),
    ("mast-redundant-cpython", "default", "redundant", "cpython", 0),
    # the fast profile's timers (rto 20-40 ms) against a scheduler with both cores busy
    ("mast-fast-cpython-loaded", "fast", "failover", "cpython", 2),
]
HOG = "import time\nend = time.monotonic() + %d\nwhile time.monotonic() < end:\n    pass\n"
TCP_CONFIGS = ["mptcp-backup", "mptcp-both", "mastd-default", "mastd-fast"]
ALL = [c[0] for c in MAST_CONFIGS] + TCP_CONFIGS


def log(msg):
    sys.stderr.write("[%s] %s\n" % (time.strftime("%H:%M:%S"), msg))
    sys.stderr.flush()


# ---- the topology ------------------------------------------------------------------------------


class Topo:
    def __init__(self, workdir):
        self.workdir = workdir
        self.agents = {}
        self.net = netns.MultiWan(prefix="mbf")
        try:
            n = self.net
            self.far = n.spaces.add("far")
            n.spaces.veth(n.srv, "far0", self.far, "eth0")
            netns.ip(n.srv, "addr", "add", "203.0.113.1/24", "dev", "far0")
            netns.ip(self.far, "addr", "add", FAR + "/24", "dev", "eth0")
            netns.ip(self.far, "route", "add", "default", "via", "203.0.113.1")
            netns.sysctl(n.srv, "net.ipv4.ip_forward=1")
            for k in (1, 2, 3):
                self.agents[k] = nsbench.NftAgent(n.isp[k], workdir, "nft-isp%d" % k)
        except BaseException:
            self.close()
            raise

    def rates(self, window_s=0.3):
        """Packets/s the client sends into each ISP (its `cust` side receives them)."""
        a = dict((k, ag.rx()) for k, ag in self.agents.items())
        time.sleep(window_s)
        return dict((k, (ag.rx() - a[k]) / window_s) for k, ag in self.agents.items())

    def restore_all(self):
        for ag in self.agents.values():
            if ag.is_cut:
                ag.restore()

    def close(self):
        for ag in self.agents.values():
            try:
                ag.close()
            except Exception:  # noqa: BLE001
                pass
        self.net.close()


# ---- MAST endpoint processes (datagrams) ------------------------------------------------------


class Ep:
    """An endpoint process (runtime/endpoint_main) and what it printed: events, replies, and
    (on the receiving side) the stream's records {seq: (sent_ms, t_ms)} in its own clocks."""

    def __init__(self, ns, doc, workdir, name, runtime="cpython", mpy_dir=None):
        self.name = name
        self.events = []
        self.replies = []
        self.data = {}
        self.dups = 0
        self.cond = threading.Condition()
        cfg = os.path.join(workdir, name + ".json")
        with open(cfg, "w") as f:
            json.dump(doc, f)
        env = None
        if runtime == "micropython":
            from mast_tools.board_process import board_command

            cmd = board_command(cfg, mpy_dir, prefer="micropython")
            argv, env = cmd.argv, cmd.env
        else:
            argv = [os.path.join(os.path.dirname(sys.executable), "mast"), "endpoint", "--config", cfg]
        self.p = nsbench.Proc(ns, argv, name, workdir, env=env, on_line=self._line, keep=False)
        self.offset = 0.0

    def _line(self, at, text):
        try:
            obj = json.loads(text)
        except ValueError:
            return
        obj["_at"] = at
        if obj.get("event") == "data":
            if "seq" in obj:
                if obj["seq"] in self.data:
                    self.dups += 1
                else:
                    self.data[obj["seq"]] = (obj["sent_ms"], obj["t_ms"], obj.get("src"))
            return
        with self.cond:
            if "reply" in obj:
                self.replies.append(obj)
            else:
                self.events.append(obj)
            self.cond.notify_all()

    def wait_event(self, pred, timeout, what, start=0):
        end = time.monotonic() + timeout
        with self.cond:
            i = start
            while True:
                while i < len(self.events):
                    ev = self.events[i]
                    i += 1
                    if pred(ev):
                        return ev
                if self.p.eof:
                    raise RuntimeError("%s ended waiting for %s: %s" % (self.name, what, self.p.stderr_tail()))
                left = end - time.monotonic()
                if left <= 0:
                    return None
                self.cond.wait(min(left, 0.2))

    def request(self, op, timeout=5, **fields):
        with self.cond:
            start = len(self.replies)
        cmd = dict(fields, op=op)
        self.p.send(json.dumps(cmd))
        end = time.monotonic() + timeout
        with self.cond:
            while True:
                for r in self.replies[start:]:
                    if r.get("reply") == op:
                        if "error" in r:
                            raise RuntimeError("%s: %s -> %s" % (self.name, cmd, r["error"]))
                        return r
                left = end - time.monotonic()
                if left <= 0 or self.p.eof:
                    raise RuntimeError("%s: no reply to %s; stderr: %s" % (self.name, op, self.p.stderr_tail()))
                self.cond.wait(min(left, 0.2))

    def sync_clock(self):
        """offset = endpoint clock - harness clock (ms), from the fastest of five status requests."""
        best = None
        for _ in range(5):
            t0 = now_ms()
            n = self.request("status")["status"]["runtime"]["now_ms"]
            t1 = now_ms()
            if best is None or t1 - t0 < best[0]:
                best = (t1 - t0, n - (t0 + t1) / 2)
        self.offset = best[1]
        return best[0]

    def stop(self):
        try:
            self.p.send('{"op": "quit"}')
        except (OSError, ValueError):
            pass
        self.p.stop()


def ep_docs(profile, mode):
    mast = {"profile": profile, "mode": mode}
    srv = {"mast": dict(mast, name="server", peers={"client": {"psk": PSK, "initiate": False}}),
           "uplinks": {"wan": {"bind": SERVER}}, "stream_records": True}
    ups = {}
    for k, prio in ((1, 10), (2, 20), (3, 30)):
        ups["isp%d" % k] = {"bind": "%s:%d" % (netns.UPLINKS[k]["addr"], PORT), "priority": prio}
    cli = {"mast": dict(mast, name="client", peers={"server": {"psk": PSK, "addresses": [SERVER]}}),
           "uplinks": ups, "connect": ["server"]}
    return srv, cli


def path(k):
    return "isp%d>%s" % (k, SERVER)


def run_mast(topo, name, profile, mode, runtime, trials, mpy_dir, hogs=0):
    srv_doc, cli_doc = ep_docs(profile, mode)
    wd = topo.workdir
    srv = Ep(topo.net.srv, srv_doc, wd, name + "-server")
    cli = None
    hog_procs = []
    out = {"name": name, "profile": profile, "mode": mode, "runtime": runtime, "trials": [],
           "errors": [], "hogs": hogs}
    try:
        srv.wait_event(lambda e: e.get("event") == "started", 20, "started") or _fail(srv, "started")
        cli = Ep(topo.net.cli, cli_doc, wd, name + "-client", runtime, mpy_dir)
        ev = cli.wait_event(lambda e: e.get("event") == "started", 30, "started") or _fail(cli, "started")
        out["interpreter"] = ev.get("runtime")
        cli.wait_event(lambda e: e.get("event") == "association_up", 15, "association") or _fail(cli, "association")
        end = time.monotonic() + 15
        while time.monotonic() < end:
            a = cli.request("status")["status"]["associations"]
            act = set(p["path"] for p in a[0]["paths"] if p["state"] == "active") if a else set()
            if set(path(k) for k in (1, 2, 3)) <= act and a[0]["primary"] == path(1):
                break
            time.sleep(0.2)
        else:
            raise RuntimeError("%s: paths not all active: %r" % (name, a))
        cli.sync_clock()
        srv.sync_clock()
        cli.request("stream", rate=RATE, peer="server")
        for _ in range(hogs):  # busy loops, bounded in time, ended below in any case
            hog_procs.append(subprocess.Popen([sys.executable, "-c", HOG % (trials * 10 + 60)]))
        time.sleep(1.0)
        for i in range(trials):
            nsbench.jitter(200, 600)
            mark = len(cli.events)
            t_fail = topo.agents[1].cut()
            fo = cli.wait_event(lambda e: e.get("event") == "failover" and not e.get("failback"), 5,
                                "failover", mark)
            if fo is None:
                out["errors"].append("trial %d: no failover within 5 s" % i)
            time.sleep(0.3)
            t_restore = topo.agents[1].restore()
            fb = cli.wait_event(lambda e: e.get("event") == "failover" and e.get("failback")
                                and e.get("new") == path(1), 20, "failback", mark)
            if fb is None:
                out["errors"].append("trial %d: no failback within 20 s of the restore" % i)
                break
            t_back = fb["t_ms"] - cli.offset
            extra = len([e for e in cli.events[mark:] if e.get("event") == "failover"]) - 2
            out["trials"].append({"t_fail": t_fail, "t_restore": t_restore, "t_back": t_back,
                                  "core_gap": fo.get("gap_ms") if fo else None, "extra_failovers": extra})
            log("%s trial %d: failover %s ms after the cut (core gap %s), failback %.0f ms after restore" % (
                name, i, "%.0f" % (fo["t_ms"] - cli.offset - t_fail) if fo else "-",
                fo.get("gap_ms") if fo else "-", t_back - t_restore))
        time.sleep(0.5)
        st = cli.request("stream", rate=0)["stream"]
        time.sleep(0.5)
        out["sent"] = st["seq"]
        out["refused"] = st["refused"]
        out["duplicates"] = srv.dups
        out["counters"] = srv.request("status")["status"]["counters"]
    finally:
        for h in hog_procs:
            h.kill()
            h.wait()
        for ep in (cli, srv):
            if ep is not None:
                ep.stop()
        topo.restore_all()
    # the analysis: all in the harness clock
    recs = {}
    for seq, (sent, t, src) in srv.data.items():
        recs[seq] = (sent - cli.offset, t - srv.offset)
    tr = out["trials"]
    for i, t in enumerate(tr):
        nxt = tr[i + 1]["t_fail"] - 500 if i + 1 < len(tr) else t["t_back"] + 300
        a = nsbench.analyse(recs, t["t_fail"], t["t_restore"], LATE_MS)
        t.update(a or {})
        b = nsbench.analyse(recs, t["t_restore"], nxt, LATE_MS, before_ms=0)
        t["failback_lost"] = b["lost"] if b else None
        t["failback_late"] = b["late"] if b else None
    return out


def _fail(ep, what):
    raise RuntimeError("%s: no %s; stderr: %s" % (ep.name, what, ep.p.stderr_tail()))


# ---- TCP: MPTCP and TCP through mastd ---------------------------------------------------------


def busiest(rates):
    k = max(rates, key=lambda x: rates[x])
    return k, rates[k]


def run_tcp(topo, name, stream, trials, home, joined=None):
    """Trials on a TCP record stream, each on a fresh connection (a long-lived MPTCP connection
    recovers more slowly from each further failure; a fresh one gives MPTCP its best case).
    home: the ISP the traffic is expected on (1), or None (MPTCP with both subflows active:
    cut the busiest ISP). joined(): True once the connection has all its subflows."""
    out = {"name": name, "trials": [], "errors": []}
    for i in range(trials):
        if joined is not None:
            joined.reset()
        stream.reconnect()
        end = time.monotonic() + 25
        k = None
        while time.monotonic() < end:
            if stream.error:
                raise RuntimeError("%s: %s" % (name, stream.error))
            if not stream.healthy_for(500) or (joined is not None and not joined()):
                time.sleep(0.1)
                continue
            rates = topo.rates(0.2)
            k, r = busiest(rates)
            if r >= 0.5 * RATE and (home is None or k == home):
                break
            k = None
        if k is None:
            out["errors"].append("trial %d: traffic never settled on %s within 25 s" % (
                i, "isp%d" % home if home else "an ISP"))
            break
        nsbench.jitter(0, 300)
        t_fail = topo.agents[k].cut()
        end = time.monotonic() + 10
        recovered = False
        while time.monotonic() < end:
            time.sleep(0.05)
            if now_ms() - t_fail > 300 and stream.healthy_for(300):
                recovered = True
                break
        t_restore = topo.agents[k].restore()
        if not recovered:
            out["errors"].append("trial %d: not recovered 10 s after the cut" % i)
        out["trials"].append({"t_fail": t_fail, "t_restore": t_restore, "isp": k})
        back = None
        if home is not None and name.startswith("mastd"):
            # MAST fails back within the association: the restored ISP carries traffic again
            end = time.monotonic() + 20
            while time.monotonic() < end:
                r = topo.rates(0.2)
                if busiest(r)[0] == home and r[home] >= 0.5 * RATE:
                    back = now_ms() - t_restore
                    break
            if back is None:
                out["errors"].append("trial %d: no failback to isp%d 20 s after the restore" % (i, home))
        out["trials"][-1]["back_ms"] = back
        a = nsbench.analyse(stream.snapshot(), t_fail, t_restore, LATE_MS)
        log("%s trial %d (isp%d): gap %s, outage %s, failback after restore %s" % (
            name, i, k, fmt_ms(a and a["gap"]), fmt_ms(a and a["outage"]), fmt_ms(back)))
        time.sleep(0.2)
    time.sleep(0.3)
    for t in out["trials"]:
        t.update(nsbench.analyse(stream.snapshot(), t["t_fail"], t["t_restore"], LATE_MS) or {})
    return out


def mptcp_setup(topo, backup):
    n = topo.net
    for ns in (n.cli, topo.far):
        netns.sysctl(ns, "net.mptcp.enabled=1")
        netns.ip(ns, "mptcp", "limits", "set", "subflow", "2", "add_addr_accepted", "2")
    netns.ip(n.cli, "mptcp", "endpoint", "flush")
    args = ["mptcp", "endpoint", "add", netns.UPLINKS[2]["addr"], "dev", "u2", "subflow"]
    netns.ip(n.cli, *(args + (["backup"] if backup else [])))


def mptcp_counters(pid):
    with open("/proc/%d/net/netstat" % pid) as f:
        lines = f.read().splitlines()
    for i in range(0, len(lines) - 1, 2):
        if lines[i].startswith("MPTcpExt:"):
            return dict(zip(lines[i].split()[1:], (int(x) for x in lines[i + 1].split()[1:])))
    return {}


def run_mptcp(topo, name, backup, trials):
    mptcp_setup(topo, backup)
    stream = None
    try:
        stream = nsbench.RecordStream(topo.workdir, name, topo.far, topo.net.cli, FAR, 5002, RATE, mptcp=True)
        pid = stream.send.pid

        class Joined:
            """Each new connection adds one MP_JOIN subflow (from u2), counted in the client's
            namespace: reset() at the new connection, then true once it is there."""

            def reset(self):
                self.base = mptcp_counters(pid).get("MPJoinSynAckRx", 0)

            def __call__(self):
                return mptcp_counters(pid).get("MPJoinSynAckRx", 0) > self.base

        tcp0 = tcp_counters(pid)
        out = run_tcp(topo, name, stream, trials, home=1 if backup else None, joined=Joined())
        out["tcp"] = tcp_delta(tcp0, tcp_counters(pid))
        c = mptcp_counters(pid)
        out["mptcp_counters"] = dict((k, c.get(k)) for k in ("MPCapableSYNACKRX", "MPJoinSynAckRx", "MPFailTx"))
        return out
    finally:
        if stream is not None:
            stream.close()
        topo.restore_all()
        netns.ip(topo.net.cli, "mptcp", "endpoint", "flush")


def mastd_confs(profile):
    ups = {}
    for k, prio in ((1, 10), (2, 20), (3, 30)):
        ups["isp%d" % k] = {"device": "u%d" % k, "priority": prio}
    cli = {"name": "client", "internal": "10.99.0.2/24", "tun": "mastb0", "profile": profile,
           "resend_ms": 1000,
           "peers": {"server": {"psk": PSK, "addresses": [FAR], "internal": "10.99.0.1"}},
           "uplinks": ups}
    srv = {"name": "server", "internal": "10.99.0.1/24", "tun": "mastb0", "profile": profile,
           "resend_ms": 1000,
           "peers": {"client": {"psk": PSK, "internal": "10.99.0.2"}},
           "uplinks": {"eth0": {"device": "eth0"}}}
    return srv, cli


def run_mastd(topo, name, profile, trials):
    srv_c, cli_c = mastd_confs(profile)
    daemons, stream = [], None
    try:
        srv = nsbench.Mastd(topo.far, srv_c, topo.workdir, name + "-server")
        daemons.append(srv)
        cli = nsbench.Mastd(topo.net.cli, cli_c, topo.workdir, name + "-client")
        daemons.append(cli)
        a = cli.wait_assoc(20, paths=3)
        end = time.monotonic() + 10
        while (a or {}).get("primary", "").split(">")[0] != "isp1" and time.monotonic() < end:
            time.sleep(0.2)
            a = cli.assoc()
        stream = nsbench.RecordStream(topo.workdir, name, topo.far, topo.net.cli, "10.99.0.1", 5003, RATE)
        time.sleep(1.0)
        tcp0 = tcp_counters(stream.send.pid)
        out = run_tcp(topo, name, stream, trials, home=1)
        out["tcp"] = tcp_delta(tcp0, tcp_counters(stream.send.pid))
        # when did each end fail over, after each cut? (the server detects on its own: REAP)
        for who, d in (("client_fo", cli), ("server_fo", srv)):
            st = d.status() or {}
            fos = [e for e in st.get("failovers", []) if not e.get("failback")]
            for t in out["trials"]:
                after = [e["t_ms"] - t["t_fail"] for e in fos if t["t_fail"] < e["t_ms"] < t["t_restore"] + 5000]
                t[who] = min(after) if after else None
        return out
    finally:
        if stream is not None:
            stream.close()
        for d in reversed(daemons):
            d.stop()
        topo.restore_all()


def tcp_counters(pid):
    """TCP retransmitted segments and retransmission timeouts in the namespace of pid."""
    out = {}
    for path, prefix, keys in (("snmp", "Tcp:", ("RetransSegs",)), ("netstat", "TcpExt:", ("TCPTimeouts",))):
        with open("/proc/%d/net/%s" % (pid, path)) as f:
            lines = f.read().splitlines()
        for i in range(0, len(lines) - 1, 2):
            if lines[i].startswith(prefix):
                d = dict(zip(lines[i].split()[1:], lines[i + 1].split()[1:]))
                for k in keys:
                    out[k] = int(d.get(k, 0))
    return out


def tcp_delta(a, b):
    return dict((k, b.get(k, 0) - a.get(k, 0)) for k in b)


# ---- the report ---------------------------------------------------------------------------------


def row_stats(out):
    tr = [t for t in out["trials"] if "gap" in t]
    return nsbench.summary(tr, "gap"), nsbench.summary(tr, "outage"), tr


def three(s):
    if not s or s["p50"] is None:
        return "–"
    return "%d / %d / %d" % (round(s["p50"]), round(s["p95"]), round(s["max"]))


def report(results, args, elapsed, load=None):
    rows = ["| system | profile / mode | sender | trials | gap p50 / p95 / max (ms) | outage p50 / p95 / max (ms) "
            "| lost per failure (mean) | target (p95) | met |",
            "|---|---|---|---|---|---|---|---|---|"]
    items = []
    notes = []
    mp_ref = {}
    for name in ALL:
        out = results.get(name)
        if out is None:
            continue
        if "exception" in out:
            rows.append("| %s | | | 0 | failed: %s | | | | |" % (name, out["exception"].replace("|", "/")[:200]))
            items.append({"what": "failover: " + name, "target": "runs", "measured": "failed", "met": False})
            continue
        g, o, tr = row_stats(out)
        n = len(tr)
        item = None
        lost = sum(t.get("lost", 0) for t in tr) / float(n) if n else 0
        if name.startswith("mast-"):
            system = "MAST datagrams"
            prof = "%s / %s" % (out["profile"], out["mode"])
            sender = out.get("interpreter") or out["runtime"]
            if out.get("hogs"):
                prof += ", both cores kept busy by %d other processes" % out["hogs"]
                bound = TARGETS[("gap", out["profile"])]
                target, met = "(gap ≤ %d ms, unloaded)" % bound, None
                if g["p95"] is not None and g["p95"] > bound:
                    notes.append("%s: under load the fast profile's gap p95 is %d ms: its timers (RTO "
                                 "20–40 ms, 60 ms send timeout) are shorter than the time a busy "
                                 "2-core scheduler can keep a Python process waiting" % (name, g["p95"]))
            elif out["mode"] == "redundant":
                total = sum(t.get("lost", 0) for t in tr)
                target, met = "0 lost", total == 0 and n >= 20
                item = ({"what": "redundant mode: datagrams lost at a silent failure",
                         "target": "0", "measured": "%d in %d failures" % (total, n), "met": met})
            else:
                bound = TARGETS[("gap", out["profile"])]
                met = g["p95"] is not None and g["p95"] <= bound and n >= 20
                target = "gap ≤ %d ms" % bound
                item = {"what": "datagram gap p95, %s profile, %s client" % (out["profile"], out["runtime"]),
                        "target": "≤ %d ms" % bound, "measured": fmt_ms(g["p95"]), "met": met}
        elif name.startswith("mptcp"):
            system = "Linux MPTCP (2 subflows)"
            prof = "backup subflow" if name == "mptcp-backup" else "both subflows active"
            sender = "kernel TCP"
            target, met = "baseline", None
            mp_ref[name] = o
        else:
            system = "TCP through mastd (TUN)"
            prof = "%s / failover, resend_ms 1000" % name.split("-")[1]
            sender = "kernel TCP; mastd on CPython"
            bound = TARGETS[("outage", name)]
            ref = mp_ref.get("mptcp-backup" if name == "mastd-default" else "mptcp-both")
            met = o["p95"] is not None and o["p95"] <= bound and n >= 20
            target = "outage ≤ %d ms" % bound
            beat = ""
            if ref and ref["p95"] is not None and o["p95"] is not None:
                beat = "; MPTCP %s in this run: %d ms" % (
                    "backup" if name == "mastd-default" else "both active", round(ref["p95"]))
            item = {"what": "TCP through mastd outage p95, %s profile" % name.split("-")[1],
                    "target": "≤ %d ms" % bound, "measured": fmt_ms(o["p95"]) + beat, "met": met}
        if item is not None:
            if n < 20:
                item["met"] = met = False
                item["measured"] += " (only %d trials; 20 needed)" % n
            items.append(item)
        errs = out.get("errors") or []
        if errs:
            notes.append("%s: %s" % (name, "; ".join(errs[:3]) + (" (and %d more)" % (len(errs) - 3) if len(errs) > 3 else "")))
        rows.append("| %s | %s | %s | %d | %s | %s | %.1f | %s | %s |" % (
            system, prof, sender, n, three(g), three(o), lost, target,
            "–" if met is None else ("yes" if met else "**no**")))
    rows.append("| mwan3 (derived) | defaults: interval 10 s, down 5, timeout 4 | | | | ≈ 56 000–70 000 (detection) | all until detected | | |")
    rows.append("| SCTP (derived) | RTO.min 1 s, Path.Max.Retrans 5 | | | | ≈ 63 000 (detection) | | | |")
    detail = ["", "MAST datagrams, per configuration:", "",
              "| configuration | failovers beyond one per failure | lost at failback (total) | the core's own gap p50 / p95 (ms) | failback after the restore p50 (ms) |",
              "|---|---|---|---|---|"]
    tcp = ["", "TCP, per configuration (retransmission timeouts and segments: the sender's namespace, "
           "whole run; failover: the first failover event of each mastd after each cut):", "",
           "| configuration | TCP RTOs | retransmitted segments | mastd client failover p50 / p95 / max (ms) | mastd server failover p50 / p95 / max (ms) | failback after the restore p50 (ms) |",
           "|---|---|---|---|---|---|"]
    why = []
    for name in ALL:
        out = results.get(name)
        if not out or "exception" in out:
            continue
        tr = [t for t in out["trials"] if "gap" in t]
        if name.startswith("mast-"):
            cg = [t["core_gap"] for t in tr if t.get("core_gap") is not None]
            fb = [t["t_back"] - t["t_restore"] for t in tr]
            detail.append("| %s | %d | %d | %s | %s |" % (
                name, sum(max(0, t.get("extra_failovers", 0)) for t in tr),
                sum(t.get("failback_lost") or 0 for t in tr),
                "%d / %d" % (pct(cg, 50), pct(cg, 95)) if cg else "–", fmt_ms(pct(fb, 50))))
        else:
            fb = [t["back_ms"] for t in tr if t.get("back_ms") is not None]
            c = out.get("tcp", {})
            cfo = nsbench.summary(tr, "client_fo") if name.startswith("mastd") else None
            sfo = nsbench.summary(tr, "server_fo") if name.startswith("mastd") else None
            tcp.append("| %s | %s | %s | %s | %s | %s |" % (
                name, c.get("TCPTimeouts", "–"), c.get("RetransSegs", "–"), three(cfo), three(sfo),
                fmt_ms(pct(fb, 50)) if fb else "– (a new connection per failure)"))
            if name.startswith("mastd"):
                late = [t for t in tr if t.get("server_fo") is not None and t.get("client_fo") is not None
                        and t["outage"] is not None and t["server_fo"] - t["client_fo"] > 100
                        and t["outage"] - t["gap"] > 100]
                if late:
                    why.append(
                        "%s: in %d of %d failures the outage ran past the gap: the server's mastd failed "
                        "over %s after the client's (outage there %s). Each end detects a dead path on "
                        "its own (REAP): the server only starts when it has DATA unacknowledged on the "
                        "dead path, and when its last packets before the cut had already been "
                        "acknowledged it sends nothing more until the client's re-sent data arrives by "
                        "the new path and TCP answers it. The TCP acknowledgements then wait for the "
                        "server's own send_timeout and probes, a second detection time after the first." % (
                            name, len(late), len(tr),
                            "/".join("%d" % (t["server_fo"] - t["client_fo"]) for t in late[:6]) + " ms",
                            "/".join("%d" % t["outage"] for t in late[:6]) + " ms"))
    detail += tcp
    body = ["Topology: tests/integration/netns.py (client `cli` with uplinks isp1/isp2/isp3, "
            "priorities 10/20/30; isp3 NATs; RTT ≈ 0) plus a host `far` behind the server for the TCP "
            "runs, built once for the whole run. Each configuration: %d failures of the active ISP "
            "(a silent nft drop in the ISP's forward hook), each followed by recovery, restore, "
            "fail back and a random 0.2–0.6 s tail. 100 records/s of 64 bytes from the client; "
            "MAST datagrams: client `mast endpoint` (CPython) or `runtime.endpoint_main` on the "
            "MicroPython unix port from mpy-cross output (-X heapsize=256K), server CPython; TCP: "
            "a Python sender (TCP_NODELAY) and receiver, through mastd (run from firmware/, TUN, "
            "profile as named, resend_ms 1000) or over MPTCP (IPPROTO_MPTCP sockets; "
            "`ip mptcp endpoint add 100.64.2.2 dev u2 subflow [backup]`, limits subflow 2) in the "
            "same namespaces. Gap: failure → arrival of the first record sent after it. Outage: "
            "failure → arrival of the first record after which none is lost or more than %d ms late "
            "(until the restore). Each TCP failure starts on a fresh connection: on one long-lived "
            "MPTCP connection each further failure took longer (gaps of 400–820 ms and outages of "
            "1.0–1.4 s while this benchmark was being built), so a fresh connection is MPTCP's best "
            "case, and that is the baseline here. Run time %d s%s." % (
                args.trials, LATE_MS, elapsed,
                "; load average %.1f at the start, %.1f at the end (other work shares this 2-core "
                "machine)" % load if load else ""), ""]
    body += rows + detail
    if why:
        body += ["", "Why the TCP outage exceeds the gap: " + " ".join(why)]
    body += ["", "Reference (PROTOCOL-LESSONS.md, the same kind of machine): MPTCP with a backup subflow "
             "gap 223 / 331 ms, outage 835 / 837 ms (p50 / p95); both subflows active 208 / 210 ms. "
             "mwan3 and SCTP rows are arithmetic from their default timers (TESTING.md), not measured."]
    if notes:
        body += ["", "Problems during the run: " + " · ".join(notes)]
    body += ["", "<!-- results: %s -->" % json.dumps(items)]
    return "\n".join(body)


def _on_term(signum, frame):
    raise SystemExit(128 + signum)  # so the finally clauses remove what this run made


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--only", default="", help="comma-separated: " + ", ".join(ALL))
    ap.add_argument("--no-write", action="store_true", help="print the section, do not write it")
    args = ap.parse_args()
    reason = nsbench.root_reason()
    if reason:
        print("bench/failover_netns.py: skipped: %s" % reason, file=sys.stderr)
        return 0
    only = [x for x in args.only.split(",") if x] or ALL
    bad = [x for x in only if x not in ALL]
    if bad:
        ap.error("unknown configuration %s (known: %s)" % (", ".join(bad), ", ".join(ALL)))
    netns.cleanup_leftovers("mbf")
    load0 = os.getloadavg()[0]
    work = tempfile.mkdtemp(prefix="mast-failover-")
    mpy_dir = None
    results = {}
    t0 = time.monotonic()
    topo = None
    try:
        if any("micropython" in x for x in only):
            from mast_tools.board_process import build_mpy, find_micropython

            if find_micropython():
                mpy_dir = os.path.join(work, "mpy")
                build_mpy(mpy_dir)
        topo = Topo(work)
        for name, profile, mode, runtime, hogs in MAST_CONFIGS:
            if name not in only:
                continue
            if runtime == "micropython" and mpy_dir is None:
                log("%s: skipped, no MicroPython unix port" % name)
                continue
            log("== %s" % name)
            try:
                results[name] = run_mast(topo, name, profile, mode, runtime, args.trials, mpy_dir, hogs)
            except Exception as e:  # noqa: BLE001 -- report it, go on with the others
                log("%s failed: %s" % (name, e))
                results[name] = {"exception": str(e)}
        for name in TCP_CONFIGS:
            if name not in only:
                continue
            log("== %s" % name)
            try:
                if name.startswith("mptcp"):
                    results[name] = run_mptcp(topo, name, name == "mptcp-backup", args.trials)
                else:
                    results[name] = run_mastd(topo, name, name.split("-")[1], args.trials)
            except Exception as e:  # noqa: BLE001
                log("%s failed: %s" % (name, e))
                results[name] = {"exception": str(e)}
    finally:
        if topo is not None:
            topo.close()
        netns.cleanup_leftovers("mbf")
        if os.environ.get("MAST_BENCH_KEEP"):
            log("kept %s" % work)
        else:
            shutil.rmtree(work, ignore_errors=True)
    elapsed = time.monotonic() - t0
    cmd = ".venv/bin/python bench/failover_netns.py --trials %d" % args.trials
    if args.only:
        cmd += " --only " + args.only
    body = report(results, args, elapsed, (load0, os.getloadavg()[0]))
    if args.no_write:
        print(body)
    else:
        benchdoc.write_section("failover-netns", "Failover in network namespaces: MAST against Linux MPTCP",
                               cmd, body)
    return 0


if __name__ == "__main__":
    import signal

    signal.signal(signal.SIGTERM, _on_term)
    sys.exit(main())
