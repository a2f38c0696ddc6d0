"""mastd's agent in this process, on a clock the test moves (no root, no TUN, no signals):
peers known by a DNS name (looked up again after 2, 4, 8 ... 60 s while the name does not
resolve; a peer removed meanwhile is forgotten), uplinks taken down by mastctl and then out of
and back into the configuration, and the status's event history."""

import contextlib
import json
import os
import random
import socket

import pytest

from mast.endpoint import Endpoint
from mastd import agent as agent_mod, links, settings
from runtime.driver import Runtime
from runtime.rendezvous import Pending

PSK = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="


class Log:
    def __init__(self):
        self.lines = []

    def info(self, msg):
        self.lines.append(("info", msg))

    def warn(self, msg):
        self.lines.append(("warn", msg))

    def error(self, msg):
        self.lines.append(("error", msg))

    def said(self, level):
        return [m for lv, m in self.lines if lv == level]


class Clock:
    def __init__(self):
        self.ms = 1000

    def __call__(self):
        return self.ms


class Resolver:
    """The agent's name lookups: Pending until answer is set, then the answer (or the error)."""

    def __init__(self):
        self.answer = None
        self.calls = []

    def __call__(self, name, port):
        self.calls.append((name, port))
        if self.answer is None:
            raise Pending()
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


class Source:
    """Uplink discovery: each configured uplink up on an address of its own on loopback (no
    device: no root needed)."""

    name = "test"
    addrs = {"wan": "127.0.0.1", "lte": "127.0.0.2"}
    mtus = {"wan": 1500, "lte": 1400}

    def __init__(self, cfg):
        self.cfg = cfg

    def scan(self):
        return dict((n, links.Link(None, self.addrs[n], self.mtus[n], True)) for n in self.cfg)

    def drain(self):
        return False

    def close(self):
        pass


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    try:
        return s.getsockname()[1]
    finally:
        s.close()


@pytest.fixture
def made(tmp_path):
    made = []

    def make(doc):
        cfg = tmp_path / "mast.json"
        cfg.write_text(json.dumps(doc))
        log, clock, res = Log(), Clock(), Resolver()
        a = agent_mod.Agent(settings.load(str(cfg)), log, str(tmp_path / "c.sock"),
                            config_path=str(cfg), clock=clock)
        a._resolver = res
        a.source = Source(a.conf.core["uplinks"])
        made.append(a)
        return a, cfg, log, clock, res

    yield make
    for a in made:
        a.rt.shutdown()


def turns(a, n=3):
    for _ in range(n):
        a.turn(0)


def test_a_name_that_does_not_resolve_is_looked_up_again_after_2_4_8_up_to_60_s(made):
    a, cfg, log, clock, res = made({"name": "r1", "peers": {}})
    res.answer = OSError("no such name")
    assert a.handle({"op": "peer_add", "name": "site", "peer": {"psk": PSK, "dns": "site.example"}}) == {
        "peer": "site", "section": None}
    for _ in range(8):  # each time the wait is up, one lookup more
        clock.ms += 60000
        turns(a)
    waits = [m for m in log.said("warn") if m.startswith("peer site:")]
    assert waits == ["peer site: no such name; trying again in %d s" % s
                     for s in (2, 4, 8, 16, 32, 60, 60, 60, 60)]
    assert res.calls == [("site.example", 6278)] * 9
    # a lookup that succeeds starts the association, and the backoff starts afresh after it
    res.answer = {"addresses": [("192.0.2.7", 6278)]}
    clock.ms += 60000
    turns(a)
    assert a.ep.association("site") is not None
    # the peer kept, its association given up (INITs unanswered) and the name gone again: the
    # next lookup waits 2 s, not the 60 s the failures before the success had come to
    res.answer = OSError("no such name")
    a.ep.association("site").close(clock.ms, "timeout")
    turns(a)
    clock.ms += 2000  # (its reconnect: after 1 to 2 s)
    turns(a)
    assert log.said("warn")[-1] == "peer site: no such name; trying again in 2 s", log.said("warn")[-3:]
    a.handle({"op": "peer_remove", "name": "site"})
    res.answer = OSError("no such name")
    a.handle({"op": "peer_add", "name": "site", "peer": {"psk": PSK, "dns": "site.example"}})
    assert log.said("warn")[-1] == "peer site: no such name; trying again in 2 s"


def test_a_peer_removed_while_it_waits_to_be_looked_up_again_is_forgotten(made):
    a, cfg, log, clock, res = made({"name": "r1", "peers": {}})
    res.answer = OSError("no such name")
    a.handle({"op": "peer_add", "name": "site", "peer": {"psk": PSK, "dns": "site.example"}})
    assert log.said("warn") == ["peer site: no such name; trying again in 2 s"]
    assert a.handle({"op": "peer_remove", "name": "site"}) == {"peer": "site"}
    clock.ms += 5000  # past the time it would have been looked up again
    turns(a)  # (a KeyError here ended mastd)
    assert res.calls == [("site.example", 6278)] and a.ep.association("site") is None
    assert a.handle({"op": "peer_list"})["peers"].seq == []


def test_a_peer_removed_while_its_name_is_looked_up_is_not_connected_when_the_answer_comes(made):
    a, cfg, log, clock, res = made({"name": "r1", "peers": {}})
    a.handle({"op": "peer_add", "name": "site", "peer": {"psk": PSK, "dns": "site.example"}})
    turns(a)
    assert res.calls and a.ep.association("site") is None  # still being looked up
    a.handle({"op": "peer_remove", "name": "site"})
    res.answer = {"addresses": [("192.0.2.7", 6278)]}
    clock.ms += 100
    turns(a)  # (an AttributeError here ended mastd)
    assert a.ep.association("site") is None and "site" not in a.ep.by_peer
    assert [lv for lv, _ in log.lines if lv == "error"] == []


def test_an_uplink_taken_down_by_mastctl_then_out_of_and_back_into_the_config_is_in_use_again(made):
    doc = {"name": "r1", "port": free_port(), "peers": {}, "uplinks": {"wan": {}, "lte": {}}}
    a, cfg, log, clock, res = made(doc)
    a.rescan("start")
    assert a.handle({"op": "uplink", "name": "wan", "state": "down"}) == {"uplink": "wan", "state": "down"}
    s = a.status()["uplinks"]
    assert s["wan"]["admin"] == "down" and "addr" not in s["wan"] and "addr" in s["lte"]
    cfg.write_text(json.dumps(dict(doc, uplinks={"lte": {}})))
    assert a.handle({"op": "reload"}) == {}
    assert sorted(a.status()["uplinks"]) == ["lte"]
    cfg.write_text(json.dumps(doc))  # back, as a new uplink: in use, as any new one
    assert a.handle({"op": "reload"}) == {}
    s = a.status()["uplinks"]
    assert s["wan"]["admin"] == "up" and s["wan"]["addr"] == "127.0.0.1:%d" % doc["port"]


@pytest.mark.parametrize("state", ["Down", "", None])
def test_mastctl_uplink_with_a_state_other_than_up_or_down_is_refused_and_changes_nothing(made, state):
    doc = {"name": "r1", "port": free_port(), "peers": {}, "uplinks": {"wan": {}}}
    a, cfg, log, clock, res = made(doc)
    a.rescan("start")
    a.handle({"op": "uplink", "name": "wan", "state": "down"})
    with pytest.raises(ValueError) as e:
        a.handle({"op": "uplink", "name": "wan", "state": state})
    assert str(e.value) == "state must be up or down"
    assert a.status()["uplinks"]["wan"]["admin"] == "down"


def test_the_event_history_keeps_the_newest_200_and_status_shows_the_last_50(made):
    a, cfg, log, clock, res = made({"name": "r1", "peers": {}})
    for i in range(450):
        a._note("failover" if i % 2 else "probe", n=i)
    s = a.status()
    assert [e["n"] for e in s["events"]] == list(range(400, 450))
    assert [e["n"] for e in s["failovers"]] == list(range(251, 450, 2))  # of the newest 200


class _Wall:
    """The time module as the agent sees it, with a wall clock the test sets (NTP's steps)."""

    def __init__(self, t):
        self.t = t

    def time(self):
        return self.t


def test_status_uptime_counts_on_the_monotonic_clock_through_wall_clock_steps(made, monkeypatch):
    # a router has no RTC: it boots at its newest file's time and NTP then steps the clock by
    # hours or years, either way; the uptime must not jump with it, nor go negative
    wall = _Wall(1700000000.0)
    monkeypatch.setattr(agent_mod, "time", wall)
    a, cfg, log, clock, res = made({"name": "r1", "peers": {}})
    clock.ms += 5000
    wall.t -= 365 * 86400  # stepped back a year
    assert a.status()["uptime_s"] == 5
    clock.ms += 2000
    wall.t += 2 * 365 * 86400  # and forward two
    assert a.status()["uptime_s"] == 7


def test_a_reload_that_restarts_everything_and_removes_a_peer_waiting_to_be_looked_up_again(made):
    # a change of our own port restarts every association; the peer removed with it had a
    # lookup due again: mastd looked it up after the restart and ended (KeyError)
    a, cfg, log, clock, res = made({"name": "r1", "port": free_port(), "peers": {}})
    res.answer = OSError("no such name")
    a.handle({"op": "peer_add", "name": "site", "peer": {"psk": PSK, "dns": "site.example"}})
    assert log.said("warn") == ["peer site: no such name; trying again in 2 s"]
    cfg.write_text(json.dumps({"name": "r1", "port": free_port(), "peers": {}}))
    assert a.handle({"op": "reload"}) == {}
    assert log.said("warn")[-1] == "reload: port changed: every association restarts"
    clock.ms += 5000
    turns(a)
    assert res.calls == [("site.example", 6278)] and a.ep.association("site") is None
    assert a.handle({"op": "peer_list"})["peers"].seq == []


def test_status_and_peer_list_never_show_a_key(made):
    from mastd import control

    a, cfg, log, clock, res = made({"name": "r1", "port": free_port(), "fleet_domain": "fleet.example",
                                    "fleet_psk": PSK, "peers": {"site": {"psk": PSK, "addresses": ["192.0.2.7"]}},
                                    "uplinks": {"wan": {"kind": "wlan", "ssid": "cafe", "password": "hunter2hunter2"}}})
    a.rescan("start")
    a._connect_all()  # (what start() does: an association under way)
    turns(a)
    for op in ("status", "peer_list"):
        text = "".join(control.pieces(a.handle({"op": op})))
        assert "site" in text and PSK not in text and "hunter2" not in text, op
    listed = json.loads("".join(control.pieces(a.handle({"op": "peer_list"}))))["peers"]
    assert listed[0]["psk"] == "<redacted>" and listed[0]["association"] is not None
    assert not [m for _, m in log.lines if PSK in m or "hunter2" in m]


def test_an_uplink_whose_socket_died_is_opened_again_at_once(made):
    doc = {"name": "r1", "port": free_port(), "peers": {}, "uplinks": {"wan": {}}}
    a, cfg, log, clock, res = made(doc)
    a.rescan("start")
    a.rt.uplinks["wan"].sock.close()  # (what an interface torn down under it does: EBADF, POLLNVAL)
    turns(a)
    events = [(e["event"], e.get("uplink")) for e in a.status()["events"]]
    assert events == [("uplink_up", "wan"), ("uplink_dead", "wan"), ("uplink_up", "wan")], events
    s = a.status()["uplinks"]["wan"]
    assert s["socket"]["dead"] is None and s["addr"] == "127.0.0.1:%d" % doc["port"]


@contextlib.contextmanager
def _wan_port_taken(made):
    """An agent with one uplink, wan, whose port another socket holds, after its first scan
    (the bind failed): (doc, agent, log, clock) while the port stays taken."""
    doc = {"name": "r1", "port": free_port(), "peers": {}, "uplinks": {"wan": {}}}
    taken = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        taken.bind(("127.0.0.1", doc["port"]))
        a, cfg, log, clock, res = made(doc)
        a.rescan("start")
        yield doc, a, log, clock
    finally:
        taken.close()


def test_an_uplink_whose_port_is_taken_is_logged_once_plainly_saying_who_may_hold_it(made):
    # (was "uplink wan: [Errno 98] uplink wan: cannot bind to ... (EADDRINUSE)": a second mastd
    # on the same port started and logged that)
    with _wan_port_taken(made) as (doc, a, log, clock):
        pass
    assert log.said("error") == [
        "uplink wan: cannot bind to 127.0.0.1:%d (EADDRINUSE); another program holds UDP port %d there "
        "(a second mastd?)" % (doc["port"], doc["port"])]
    assert a.counters.get("uplink_error") == 1


def test_a_reload_of_a_file_that_is_gone_is_refused_with_its_name_and_nothing_changes(made):
    a, cfg, log, clock, res = made({"name": "r1", "peers": {"site": {"psk": PSK, "initiate": False}}})
    running = a.conf
    cfg.unlink()
    want = ("reload refused, the running configuration stays: cannot read %s (No such file or "
            "directory)" % cfg)
    assert a.handle({"op": "reload"}) == {"ok": False, "error": want}
    assert a.conf is running and log.said("error") == [want]


def test_removing_a_peer_that_is_not_configured_is_refused_and_the_file_is_left_alone(made):
    a, cfg, log, clock, res = made({"name": "r1", "peers": {"site": {"psk": PSK, "initiate": False}}})
    before = cfg.read_text()
    with pytest.raises(ValueError) as e:
        a.handle({"op": "peer_remove", "name": "sight"})
    assert str(e.value) == "no peer 'sight' (configured: 1 peer(s); `mastctl peer list`)"
    assert cfg.read_text() == before and sorted(a.conf.core["peers"]) == ["site"]


def test_at_most_8_names_are_looked_up_at_once_and_the_others_after_them(made):
    a, cfg, log, clock, res = made({"name": "r1", "peers": {}})
    peers = dict(("p%d" % i, {"psk": PSK, "dns": "p%d.example" % i}) for i in range(10))
    cfg.write_text(json.dumps({"name": "r1", "peers": peers}))
    assert a.handle({"op": "reload"}) == {}
    turns(a)
    assert len(set(res.calls)) == 8  # (each lookup is a thread: a fleet of DNS names is not 1,000)
    res.answer = OSError("no such name")
    turns(a)
    clock.ms += 2000
    turns(a)
    assert set(res.calls) == set(("p%d.example" % i, 6278) for i in range(10))


def test_the_tun_mtu_follows_the_uplinks_in_use_not_one_taken_down_by_mastctl(made, monkeypatch):
    from mastd import tun as tun_mod

    ran = []
    monkeypatch.setattr(tun_mod, "ip", lambda *args, **kw: ran.append(" ".join(args)))
    doc = {"name": "r1", "port": free_port(), "internal": "10.99.0.1/24", "peers": {},
           "uplinks": {"wan": {}, "lte": {}}}
    a, cfg, log, clock, res = made(doc)
    tun, other = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)  # (the TUN's place)
    try:
        a.tun_fd, a.tun_name, a.tun_mtu, a._tun_prefixes = tun.fileno(), "mast0", 576, []
        a.rescan("start")
        assert a.status()["tun"]["mtu"] == 1400 - 56  # the smaller uplink, less IPv4, UDP and MAST
        a.handle({"op": "uplink", "name": "lte", "state": "down"})
        assert a.status()["tun"]["mtu"] == 1500 - 56
        a.handle({"op": "uplink", "name": "lte", "state": "up"})
        assert a.status()["tun"]["mtu"] == 1400 - 56
        assert ran == ["link set dev mast0 mtu 1344", "link set dev mast0 mtu 1444", "link set dev mast0 mtu 1344"]
    finally:
        a.tun_fd = None
        tun.close()
        other.close()


@pytest.mark.parametrize("change", [{}, {"port": None}])  # port: every association restarts
def test_a_peer_added_by_reload_gets_its_app_socket_and_a_restart_or_stop_takes_care_of_them(made, tmp_path, change):
    app = {"app_socket": str(tmp_path / "apps" / "lab.sock"), "app_user": str(os.getuid()),
           "app_group": str(os.getgid())}
    doc = {"name": "r1", "port": free_port(), "peers": {}}
    a, cfg, log, clock, res = made(doc)
    doc["peers"]["lab"] = dict(app, psk=PSK, initiate=False)
    if "port" in change:
        doc["port"] = free_port()
    cfg.write_text(json.dumps(doc))
    assert a.handle({"op": "reload"}) == {}
    st = a.status()["apps"]
    assert sorted(st) == ["lab"] and st["lab"]["socket"] == app["app_socket"] and not st["lab"]["connected"]
    c = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        c.connect(app["app_socket"])  # (listening)
    finally:
        c.close()
    assert "app_socket_error" not in a.agent_counters()
    a.shutdown()
    assert not os.path.exists(app["app_socket"])  # a stopped mastd leaves no app socket behind


def test_an_app_socket_mastd_may_not_give_to_app_user_is_logged_saying_to_run_mastd_as_root(made, tmp_path, monkeypatch):
    # (mastd as a user, app_user left at root: "[Errno 1] peer lab: app socket ...: Operation
    # not permitted", and nothing said what to do)
    import errno

    from mastd import app as app_mod

    def not_permitted(path, uid, gid):
        raise PermissionError(errno.EPERM, "Operation not permitted", path)

    monkeypatch.setattr(app_mod.os, "chown", not_permitted)
    sock = str(tmp_path / "lab.sock")
    doc = {"name": "r1", "port": free_port(), "peers": {}}
    a, cfg, log, clock, res = made(doc)
    doc["peers"]["lab"] = {"psk": PSK, "initiate": False, "app_socket": sock}
    cfg.write_text(json.dumps(doc))
    assert a.handle({"op": "reload"}) == {}
    assert log.said("error") == ["peer lab: app socket %s: Operation not permitted; only root may give it to "
                                 "app_user root: run mastd as root" % sock]
    assert a.agent_counters()["app_socket_error"] == 1


def test_an_op_that_is_not_text_is_never_repeated_in_the_error(made):
    # (found by fuzzing the control socket) an op that was an object, a peer's settings say,
    # came back whole in the error, with its psk
    a, cfg, log, clock, res = made({"name": "r1", "peers": {"site": {"psk": PSK, "initiate": False}}})
    secret = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LTEyMzQ="
    for op in ({"psk": secret}, ["peer_add", {"psk": secret}]):
        with pytest.raises(ValueError) as e:
            a.handle({"op": op})
        assert str(e.value).startswith("unknown op None (status, uplink") and secret not in str(e.value)
    with pytest.raises(ValueError) as e:
        a.handle({"op": "stauts"})
    assert str(e.value).startswith("unknown op 'stauts' (status, uplink")


def _server(clock, bind):
    """A server for r1 (it never initiates) on the test's clock."""
    b = Runtime(Endpoint({"name": "server", "peers": {"r1": {"psk": PSK, "initiate": False}}},
                         os.urandom), clock)
    b.add_uplink("wan", bind)
    return b


def _up(a, b):
    up = a.ep.association("site")
    return up is not None and up.state == 2 and b.ep.association("r1") is not None


def _turns_until(a, rts, clock, until, ms, step_ms):
    end = clock.ms + ms
    while clock.ms < end and not until():
        clock.ms += step_ms
        a.turn(0)
        for rt in rts:
            rt.poll(0)
    return until()


def _closes(a):
    return [e for e in a.history if e["event"] == "association_closed"]


def _reconnect_waits(a, clock, rts, n, step_ms=1000):
    """Turns until n more closes of site's association: [(reason, the wait mastd set, ms)]."""
    seen = len(_closes(a))
    out = []
    end = clock.ms + 4000000
    while len(out) < n and clock.ms < end:
        clock.ms += step_ms
        a.turn(0)
        for rt in rts:
            rt.poll(0)
        for e in _closes(a)[seen:]:
            out.append((e["reason"], a._reconnect["site"] - e["t_ms"]))
        seen = len(_closes(a))
    return out


def test_a_peer_whose_association_keeps_failing_is_connected_again_after_2_4_8_up_to_64_s_jittered(made):
    # (it was every 2 s for ever, in lock-step with every other router the server shut)
    bind = ("127.0.0.21", free_port())
    doc = {"name": "r1", "port": free_port(), "uplinks": {"wan": {}},
           "peers": {"site": {"psk": PSK, "addresses": ["%s:%d" % bind]}}}
    a, cfg, log, clock, res = made(doc)
    a.ep.random = random.Random(5).randbytes  # (the jitter's draws, and the core's)
    b = _server(clock, bind)
    silent = None
    try:
        a.rescan("start")
        a._connect_all()
        assert _turns_until(a, [b], clock, lambda: _up(a, b), 10000, 10)
        b.close()  # a graceful restart: SHUT ...
        got = _reconnect_waits(a, clock, [b], 1, step_ms=10)
        b.shutdown()
        silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        silent.bind(bind)  # ... and nobody answers where it was: each attempt's INITs time out
        got += _reconnect_waits(a, clock, [], 7)
        assert [why for why, _ in got] == ["peer_shut"] + ["timeout"] * 7, got
        waits = [w for _, w in got]
        full = [min(agent_mod.RECONNECT_MS << i, agent_mod.RECONNECT_MAX_MS) for i in range(8)]
        assert full == [2000, 4000, 8000, 16000, 32000, 64000, 64000, 64000]
        assert all(f // 2 <= w <= f for f, w in zip(full, waits)), (waits, full)
        assert len([1 for f, w in zip(full, waits) if w < f]) >= 6, waits  # jittered
        # the server back: connected at the next attempt; its association resets the wait
        silent.close()
        silent = None
        b = _server(clock, bind)
        assert _turns_until(a, [b], clock, lambda: _up(a, b), 70000, 100)
        b.close()
        got = _reconnect_waits(a, clock, [b], 1, step_ms=10)
        assert got[0][0] == "peer_shut" and 1000 <= got[0][1] <= 2000, got
    finally:
        b.shutdown()
        if silent is not None:
            silent.close()


def test_a_reconnect_whose_lookup_gives_no_address_is_tried_again_later(made):
    # (the runtime's connect raised ValueError: logged, and the peer never tried again)
    bind = ("127.0.0.21", free_port())
    a, cfg, log, clock, res = made({"name": "r1", "port": free_port(), "uplinks": {"wan": {}},
                                    "peers": {"site": {"psk": PSK, "dns": "site.example"}}})
    b = _server(clock, bind)
    try:
        res.answer = {"addresses": [bind]}
        a.rescan("start")
        a._connect_all()
        assert _turns_until(a, [b], clock, lambda: _up(a, b), 10000, 10)
        res.answer = {"addresses": []}  # (nothing this host can use, for now)
        b.close()
        assert _turns_until(a, [b], clock, lambda: [m for m in log.said("warn") if "empty" in m],
                            5000, 10)
        assert "site" in a._reconnect and a.ep.association("site") is None
        assert 2000 <= a._reconnect["site"] - clock.ms <= 4000  # (the second wait: doubled)
        res.answer = {"addresses": [bind]}
        assert _turns_until(a, [b], clock, lambda: _up(a, b), 10000, 10)
        assert len(res.calls) == 3, res.calls
    finally:
        b.shutdown()


def test_a_peer_whose_addresses_a_reload_takes_out_while_it_waits_to_reconnect_is_not_tried_for_ever(made):
    # (its reconnect stayed due: each attempt found no address, warned, and was scheduled again,
    # every 64 s for as long as mastd ran; a peer with no addresses waits for the other side)
    bind = ("127.0.0.21", free_port())
    doc = {"name": "r1", "port": free_port(), "uplinks": {"wan": {}},
           "peers": {"site": {"psk": PSK, "addresses": ["%s:%d" % bind]}}}
    a, cfg, log, clock, res = made(doc)
    b = _server(clock, bind)
    try:
        a.rescan("start")
        a._connect_all()
        assert _turns_until(a, [b], clock, lambda: _up(a, b), 10000, 10)
        b.close()  # SHUT: site's reconnect is due in 1 to 2 s
        assert _turns_until(a, [b], clock, lambda: "site" in a._reconnect, 5000, 10)
        del doc["peers"]["site"]["addresses"]  # (site connects to r1 from now on)
        cfg.write_text(json.dumps(doc))
        assert a.handle({"op": "reload"}) == {}
        for _ in range(300):
            clock.ms += 1000
            a.turn(0)
        assert [m for m in log.said("warn") if "empty" in m] == []
        assert "site" not in a._reconnect and a.ep.association("site") is None
    finally:
        b.shutdown()


def test_a_scan_that_fails_while_an_uplink_waits_to_be_tried_again_is_not_repeated_at_every_turn(made):
    """A bind failed (its retry due in 2 s), then the retry's scan fails (ubus hung or failed:
    up to links.UBUS_TIMEOUT_S each, in the loop): the next scan waits its turn of the backoff,
    not the next turn of the loop (each turn ran ubus again and logged the failure again)."""
    with _wan_port_taken(made) as (doc, a, log, clock):
        pass
    scans = []

    def scan():
        scans.append(clock.ms)
        raise OSError("ubus call network.interface dump: timed out")

    a.source.scan = scan
    clock.ms += agent_mod.UPLINK_RETRY_MS
    turns(a, 10)
    assert scans == [clock.ms], scans
    assert len([m for m in log.said("error") if m.startswith("uplink scan failed")]) == 1, log.lines
    clock.ms += 2 * agent_mod.UPLINK_RETRY_MS  # (the next wait, doubled)
    turns(a, 10)
    assert len(scans) == 2, scans


def test_a_bind_that_keeps_failing_alike_is_logged_once_and_counted_each_time(made):
    """A bind tried again every 2, 4, 8 ... up to 60 s that fails alike each time (the port held
    by another program for good) was logged each time: a line a minute for ever, enough to push
    everything else out of OpenWrt's log ring. It is logged once (and again when the error
    changes, or at a scan of another kind); uplink_error counts every try."""
    with _wan_port_taken(made) as (doc, a, log, clock):
        for _ in range(6):  # 2 + 4 + 8 + 16 + 32 + 60 s: six retries, each failing alike
            clock.ms += agent_mod.UPLINK_RETRY_MAX_MS
            turns(a, 2)
        said = [m for m in log.said("error") if m.startswith("uplink wan:")]
        assert len(said) == 1 and "another program holds UDP port" in said[0], log.lines
        assert a.counters["uplink_error"] == 7, a.counters
        a.rescan("hotplug")  # (a scan of another kind says it again)
        assert len([m for m in log.said("error") if m.startswith("uplink wan:")]) == 2, log.lines
    clock.ms += agent_mod.UPLINK_RETRY_MAX_MS
    turns(a, 2)  # the port free: the retry binds
    assert "wan" in a.rt.uplinks
    assert [e["why"] for e in a.history if e["event"] == "uplink_up"][-1:] == ["retry"]
