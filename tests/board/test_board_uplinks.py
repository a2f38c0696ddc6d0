# The board firmware with its uplinks (board/main.py + managers) against the fake
# `network` and `machine`: uplinks reported up become runtime sockets and core
# uplinks; a config apply reconfigures them; exclusive routing (ports whose stack
# routes by the default interface only) keeps one uplink up at a time and rotates
# when it fails. The fake drivers hand out 127.0.0.x addresses so real sockets bind.
# Plain test functions: pytest and MicroPython.

import json
import sys

from fake_machine import FakeMachine, FakeModem
from fake_network import FakeNetwork
from fake_files import FakeFiles
from board.hw import Hardware
from board.main import Board
from board.store import CONFIG

# make test's two workers can run this module on CPython and on MicroPython
# (tests/host/test_board_micropython.py) at the same moment: each binds a port of its own
PORT = 17621 if sys.implementation.name == "cpython" else 17631  # (below 32768: no kernel-chosen port)
MODEM = {"model": "SIMCom A7670", "uart": 1, "tx": 26, "rx": 27, "baud": 115200,
         "power_on": 12, "pwrkey": 4, "pwrkey_active": 1, "pwrkey_ms": 100, "reset": None,
         "boot_ms": 1000, "dial": "*99#"}


def board_def(routing):
    return {"name": "test-rp2", "title": "test", "port": "rp2" if routing == "exclusive" else "esp32",
            "routing": routing, "soft_reset": True, "watchdog_ms": 8000, "install": "mip",
            "heap": {"bytes": 190000, "notes": "test"},
            "uplinks": {"wifi": {"kind": "wlan", "priority": 20, "cost": 0},
                        "cell": {"kind": "ppp", "priority": 30, "cost": 10, "modem": MODEM}}}


CFG = {"name": "b1", "port": PORT, "keying": "open",
       "uplinks": {"wifi": {"ssid": "home", "password": "correct horse"}, "cell": {"apn": "internet"}}}


class Rig:
    def __init__(self, routing, cfg=CFG, port=PORT, random=None):
        cfg = dict(cfg)
        cfg["port"] = port
        self.m = FakeMachine()
        self.net = FakeNetwork()
        self.net.addrs = {"wlan": "127.0.0.21", "lan": "127.0.0.22", "ppp": "127.0.0.23"}
        self.modem = FakeModem()
        self.modem.attach(self.m, pwrkey=4, active=1)
        self.files = FakeFiles({"board.json": json.dumps(board_def(routing)).encode(),
                                CONFIG: json.dumps(cfg).encode()})
        self.out = []
        self.t = 0
        self.b = Board(hw=Hardware(machine=self.m, network=self.net), files=self.files,
                       write=self.out.append, clock=lambda: self.t, platform="rp2",
                       random=random or (lambda n: bytes(range(n))), app=None)
        self.b.boot()

    def run(self, ms, step=50):
        end = self.t + ms
        while self.t < end:
            self.b.step(self.t)
            self.t += step

    def until(self, cond, limit=60000, step=50):
        end = self.t + limit
        while self.t < end:
            self.b.step(self.t)
            if cond():
                return
            self.t += step
        raise AssertionError("timed out; events: %s" % self.events())

    def events(self):
        return [json.loads(x) for x in self.out if '"event"' in x]

    def ask(self, req):
        n = len(self.out)
        self.b.feed((json.dumps(req) + "\n").encode())
        return [json.loads(x) for x in self.out[n:] if '"ok"' in x][0]

    def close(self):
        if self.b.rt is not None:
            self.b.rt.shutdown()


def test_source_routing_brings_every_uplink_up_with_a_socket_and_a_core_uplink():
    r = Rig("source")
    try:
        r.until(lambda: "wifi" in r.b.rt.uplinks and "cell" in r.b.rt.uplinks)
        ups = [e for e in r.events() if e["event"] == "uplink_up"]
        assert {(e["uplink"], e["addr"]) for e in ups} == {("wifi", "127.0.0.21"), ("cell", "127.0.0.23")}
        core = r.b.ep.uplinks
        assert core["wifi"].addr == ("127.0.0.21", PORT) and core["wifi"].priority == 20
        assert core["cell"].addr == ("127.0.0.23", PORT) and core["cell"].cost == 10
        st = r.ask({"id": 1, "op": "status"})["result"]
        assert st["uplinks"]["wifi"]["state"] == "up" and st["uplinks"]["cell"]["state"] == "up"
        assert st["uplinks"]["cell"]["mast"]["socket"]["bind"] == "127.0.0.23:%d" % PORT
    finally:
        r.close()


def test_a_lost_uplink_leaves_the_runtime_and_comes_back():
    r = Rig("source")
    try:
        r.until(lambda: "wifi" in r.b.rt.uplinks)
        r.net.wlan.drop()
        r.until(lambda: "wifi" not in r.b.rt.uplinks)
        assert "wifi" not in r.b.ep.uplinks
        assert {"event": "uplink_down", "uplink": "wifi", "reason": "link lost"} in r.events()
        r.until(lambda: "wifi" in r.b.rt.uplinks)
    finally:
        r.close()


def test_an_uplink_that_cannot_connect_is_reported_failed_with_why():
    cfg = dict(CFG, uplinks={"wifi": {}, "cell": {"apn": "internet"}})  # no SSID
    r = Rig("source", cfg=cfg)
    try:
        r.until(lambda: "cell" in r.b.rt.uplinks)
        failed = [e for e in r.events() if e["event"] == "uplink_failed"]
        assert failed == [{"event": "uplink_failed", "uplink": "wifi",
                           "error": "no network name: set uplinks.wifi.ssid"}], r.events()
        assert "wifi" not in r.b.rt.uplinks
    finally:
        r.close()


def test_logs_keeps_what_went_down_not_what_came_up():
    # `logs` keeps the last 8 lines: what went wrong. What came up is in status; uplinks that
    # come and go would otherwise push the line that said why out of the 8
    r = Rig("source")
    try:
        r.until(lambda: "wifi" in r.b.rt.uplinks)
        r.net.wlan.drop()
        r.until(lambda: "wifi" not in r.b.rt.uplinks)
        r.until(lambda: "wifi" in r.b.rt.uplinks)
        ups = [e for e in r.events() if e["event"] == "uplink_up"]
        assert len(ups) >= 2
        recent = [json.loads(x) for x in r.ask({"id": 1, "op": "logs"})["result"]["recent"]]
        assert {"event": "uplink_down", "uplink": "wifi", "reason": "link lost"} in recent, recent
        assert [x for x in recent if str(x.get("event")).endswith("_up")] == [], recent
    finally:
        r.close()


def test_uplink_down_and_up_from_the_console():
    r = Rig("source")
    try:
        r.until(lambda: "wifi" in r.b.rt.uplinks)
        rep = r.ask({"id": 1, "op": "uplink", "name": "wifi", "state": "down"})
        assert rep["result"] == {"name": "wifi", "state": "off", "admin": False, "addr": None}
        assert "wifi" not in r.b.rt.uplinks
        r.run(5000)
        assert "wifi" not in r.b.rt.uplinks
        assert r.ask({"id": 2, "op": "uplink", "name": "wifi", "state": "up"})["ok"]
        r.until(lambda: "wifi" in r.b.rt.uplinks)
        rep = r.ask({"id": 3, "op": "uplink", "name": "wifi", "addr": "127.0.0.9"})
        assert rep["error"] == "uplink wifi is wlan: only a sim uplink takes an address"
        rep = r.ask({"id": 4, "op": "uplink", "name": "dsl", "state": "up"})
        assert rep["error"] == "no uplink 'dsl' (cell, wifi)"
    finally:
        r.close()


def test_apply_of_new_wifi_credentials_reconnects_only_the_wifi():
    r = Rig("source")
    try:
        r.until(lambda: "wifi" in r.b.rt.uplinks and "cell" in r.b.rt.uplinks)
        r.net.networks["office"] = "open sesame!"
        assert r.ask({"id": 1, "op": "set", "key": "uplinks.wifi.ssid", "value": "office"})["ok"]
        assert r.ask({"id": 2, "op": "set", "key": "uplinks.wifi.password", "value": "open sesame!"})["ok"]
        dials = r.modem.commands.count("ATD*99#")
        rep = r.ask({"id": 3, "op": "apply"})
        assert rep["result"]["associations"] == "kept"
        r.until(lambda: ("wlan.connect", "office", "open sesame!") in r.net.calls and
                "wifi" in r.b.rt.uplinks)
        assert r.modem.commands.count("ATD*99#") == dials  # the cell was left alone
        assert r.ask({"id": 4, "op": "get", "key": "uplinks.wifi.password"})["result"] == "<redacted>"
    finally:
        r.close()


def test_exclusive_routing_keeps_one_uplink_up_and_rotates_when_it_fails():
    r = Rig("exclusive")
    try:
        r.until(lambda: "wifi" in r.b.rt.uplinks)
        r.run(5000)
        assert "cell" not in r.b.rt.uplinks and r.b.managers["cell"].state == "off"
        assert r.modem.commands == []  # the modem was never dialled, nor switched on
        assert r.ask({"id": 1, "op": "status"})["result"]["routing"] == {"mode": "exclusive",
                                                                         "active": "wifi"}
        r.net.wlan.drop()
        r.until(lambda: "cell" in r.b.rt.uplinks)
        assert "wifi" not in r.b.rt.uplinks
        assert ("wlan.active", False) in r.net.calls  # its interface (and route) is gone
        rot = [e for e in r.events() if e["event"] == "uplink_rotated"]
        assert rot == [{"event": "uplink_rotated", "from": "wifi", "to": "cell", "reason": "link lost"}]
        assert r.modem.commands[-1] == "ATD*99#"
        # back to Wi-Fi on request: the modem is hung up and switched off
        assert r.ask({"id": 2, "op": "uplink", "name": "wifi", "state": "up"})["ok"]
        r.until(lambda: "wifi" in r.b.rt.uplinks)
        assert "cell" not in r.b.rt.uplinks and not r.modem.on
    finally:
        r.close()


def test_the_runtime_receives_with_the_block_the_board_took_first_and_a_new_one_gets_it():
    # board/main.py takes the receive reserve before anything else (tests/host/rtmem.py shows
    # why: a runtime started in a fragmented heap gets none and receives nothing); the
    # runtime holds that very block, and the runtime an apply builds anew takes it over
    r = Rig("source")
    try:
        r.until(lambda: "wifi" in r.b.rt.uplinks)
        first = r.b.rt
        block = first._reserve
        assert type(block) is bytearray and len(block) == 2049  # a datagram of 2,048 and one more
        assert r.b.reserve is None  # the runtime's alone
        assert r.ask({"id": 1, "op": "set", "key": "name", "value": "b2"})["ok"]
        rep = r.ask({"id": 2, "op": "apply"})
        assert rep["result"]["associations"] == "restarted" and rep["result"]["why"] == "name changed"
        r.until(lambda: r.b.rt is not first and "wifi" in r.b.rt.uplinks)
        assert r.b.rt._reserve is block and first._reserve is None and r.b.reserve is None
        assert r.b.ep.cfg["name"] == "b2"
    finally:
        r.close()


def apply_out_of_memory(r, rid):
    """The reply to an apply whose heap runs out as it re-announces the uplinks."""
    ep = r.b.ep
    real = ep.uplink_up

    def out_of_memory(*args, **kw):
        raise MemoryError("memory allocation failed")

    ep.uplink_up = out_of_memory
    try:
        return r.ask({"id": rid, "op": "apply"})
    finally:
        ep.uplink_up = real


def test_an_apply_cut_short_by_a_full_heap_stays_unapplied_and_the_next_one_finishes_it():
    r = Rig("source")
    try:
        r.until(lambda: "wifi" in r.b.rt.uplinks and "cell" in r.b.rt.uplinks)
        assert r.ask({"id": 1, "op": "set", "key": "uplinks.cell.cost", "value": 20})["ok"]
        assert r.ask({"id": 6, "op": "set", "key": "port", "value": PORT + 1})["ok"]
        rep = apply_out_of_memory(r, 2)
        assert rep["ok"] is False and rep["error"] == "out of memory", rep
        st = r.ask({"id": 3, "op": "status"})["result"]
        assert st["config"]["unapplied"] is True  # not claimed as running
        rep = r.ask({"id": 4, "op": "apply"})
        assert rep["ok"] and rep["result"]["associations"] == "kept", rep
        r.until(lambda: "cell" in r.b.ep.uplinks and r.b.ep.uplinks["cell"].cost == 20)
        # the port too: the uplinks' sockets move to it
        r.until(lambda: [u.bind[1] for u in r.b.rt.uplinks.values()] == [PORT + 1] * 2)
        assert r.ask({"id": 5, "op": "status"})["result"]["config"]["unapplied"] is False
    finally:
        r.close()


def test_the_apply_after_one_cut_short_reports_what_the_whole_change_restarts():
    # a peer's key changed; the first apply ran out of memory half way: the second one's reply
    # still names that peer (planned against what ran before the first, not against the
    # configuration the first had already given the endpoint)
    key1, key2 = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE="
    cfg = dict(CFG, keying="psk", peers={"srv": {"psk": key1, "addresses": ["127.0.0.29:6278"]}})
    r = Rig("source", cfg=cfg)
    try:
        r.until(lambda: "wifi" in r.b.rt.uplinks and "cell" in r.b.rt.uplinks)
        assert r.ask({"id": 1, "op": "set", "key": "peers.srv.psk", "value": key2})["ok"]
        assert apply_out_of_memory(r, 2)["error"] == "out of memory"
        rep = r.ask({"id": 3, "op": "apply"})["result"]
        assert rep["restarted"] == ["srv"] and rep["why"] == "peer keys changed", rep
        assert r.ask({"id": 4, "op": "status"})["result"]["config"]["unapplied"] is False
    finally:
        r.close()


def test_a_second_apply_while_the_first_still_rebuilds_is_refused_and_nothing_is_mixed_up():
    # two applies in one read of the console (inside the runtime's poll): the first (a new
    # name) leaves its new endpoint for when poll returns; the second (back to the old name,
    # and a new port) was planned against the old endpoint and answered `applied`, and the
    # board went on with the first's configuration while it reported the second's as running
    r = Rig("source")
    try:
        r.until(lambda: "wifi" in r.b.rt.uplinks and "cell" in r.b.rt.uplinks)
        r.b.polling = True  # (as when the console's line is read inside rt.poll())
        assert r.ask({"id": 1, "op": "set", "key": "name", "value": "renamed"})["ok"]
        assert r.ask({"id": 2, "op": "apply"})["result"]["associations"] == "restarted"
        assert r.ask({"id": 3, "op": "set", "key": "name", "value": "b1"})["ok"]
        assert r.ask({"id": 4, "op": "set", "key": "port", "value": PORT + 1})["ok"]
        rep = r.ask({"id": 5, "op": "apply"})
        assert rep == {"id": 5, "ok": False,
                       "error": "the last apply is still being carried out: apply again in a moment"}, rep
        r.b.polling = False
        r.run(100)  # the first apply's endpoint is made
        assert r.b.ep.cfg["name"] == "renamed"
        st = r.ask({"id": 6, "op": "status"})["result"]
        assert st["config"]["unapplied"] is True  # the candidate (b1, the new port) is not running
        assert r.ask({"id": 7, "op": "apply"})["ok"]
        r.until(lambda: r.b.ep.cfg["name"] == "b1" and
                [u.bind[1] for u in r.b.rt.uplinks.values()] == [PORT + 1] * 2)
        assert r.ask({"id": 8, "op": "status"})["result"]["config"]["unapplied"] is False
        assert r.ask({"id": 9, "op": "get", "key": "port"})["result"] == PORT + 1
    finally:
        r.close()


def rotations(r):
    return [(e["from"], e["to"], e["reason"]) for e in r.events() if e["event"] == "uplink_rotated"]


def test_exclusive_routing_rotates_on_from_the_last_uplink_to_the_first_and_stays_there():
    r = Rig("exclusive")
    try:
        r.until(lambda: "wifi" in r.b.rt.uplinks)
        r.net.wlan.drop()
        r.until(lambda: "cell" in r.b.rt.uplinks)
        r.net.ppps[-1].drop()  # the cell's link goes too: back to the first in priority order
        r.until(lambda: "wifi" in r.b.rt.uplinks)
        r.run(10000)  # Wi-Fi works: it stays the active one
        assert "wifi" in r.b.rt.uplinks and "cell" not in r.b.rt.uplinks
        assert rotations(r) == [("wifi", "cell", "link lost"), ("cell", "wifi", "link lost")], rotations(r)
        assert r.ask({"id": 1, "op": "status"})["result"]["routing"]["active"] == "wifi"
    finally:
        r.close()


def test_exclusive_routing_moves_off_an_uplink_held_down_and_never_back_onto_it():
    r = Rig("exclusive")
    try:
        r.until(lambda: "wifi" in r.b.rt.uplinks)
        assert r.ask({"id": 1, "op": "uplink", "name": "wifi", "state": "down"})["ok"]
        r.until(lambda: "cell" in r.b.rt.uplinks)
        r.net.ppps[-1].drop()  # the only uplink not held down fails: it is tried again
        r.until(lambda: "cell" not in r.b.rt.uplinks)
        r.until(lambda: "cell" in r.b.rt.uplinks)
        r.run(5000)
        assert "wifi" not in r.b.rt.uplinks and r.b.managers["wifi"].state == "off"
        assert rotations(r) == [("wifi", "cell", "held down"), ("cell", "cell", "link lost")], rotations(r)
    finally:
        r.close()


def test_exclusive_routing_moves_off_an_uplink_that_lacks_a_setting():
    cfg = dict(CFG, uplinks={"wifi": {}, "cell": {"apn": "internet"}})  # no SSID
    r = Rig("exclusive", cfg=cfg)
    try:
        r.until(lambda: "cell" in r.b.rt.uplinks)
        assert rotations(r) == [("wifi", "cell", "no network name: set uplinks.wifi.ssid")], rotations(r)
    finally:
        r.close()


def prng(seed):
    """Random bytes that differ from call to call (the Rig's default repeats itself: an
    association restarted with it would look for a new label for ever)."""
    st = [seed]

    def rnd(n):
        out = bytearray(n)
        for i in range(n):
            st[0] = (st[0] * 1103515245 + 12345) & 0x7FFFFFFF
            out[i] = (st[0] >> 16) & 0xFF
        return bytes(out)
    return rnd


def test_exclusive_routing_moves_off_an_uplink_with_no_working_path_for_15_s_counted_afresh():
    # the uplink is up but the peer stops answering: its path goes down, and 15 s later the
    # next uplink is tried. An outage that ended does not count towards the next one.
    from mast.endpoint import Endpoint
    from runtime.driver import Runtime

    psk = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
    srv_port = PORT + 7
    cfg = dict(CFG, keying="psk", peers={"srv": {"psk": psk, "addresses": ["127.0.0.29:%d" % srv_port]}})
    r = Rig("exclusive", cfg=cfg, random=prng(1))
    srv = Runtime(Endpoint({"name": "srv", "port": srv_port, "peers": {"b1": {"psk": psk, "initiate": False}}},
                           prng(2)), lambda: r.t)
    answering = [True]
    log = []  # (time, event) of the board

    def turns(n, stop=None):
        for _ in range(n):
            r.b.rt.poll(0)
            n0 = len(r.out)
            r.b.step(r.t)
            for x in r.out[n0:]:
                if '"event"' in x:
                    log.append((r.t, json.loads(x)))
            if answering[0]:
                srv.poll(0)
                srv.events()
                srv.recv()
            if stop is not None and stop():
                return
            r.t += 50
        raise AssertionError("not by t=%d: %r" % (r.t, log[-6:]))

    def seen(kind, since=-1):
        return [t for t, e in log if e["event"] == kind and t > since]

    try:
        srv.add_uplink("lan", ("127.0.0.29", srv_port))
        turns(400, lambda: seen("association_up"))
        answering[0] = False  # a first outage, shorter than 15 s
        t0 = r.t
        turns(400, lambda: seen("path_down", t0))
        answering[0] = True
        turns(400, lambda: seen("path_up", t0))
        assert 0 < seen("path_up", t0)[0] - seen("path_down", t0)[0] < 15000 and not seen("uplink_rotated")
        answering[0] = False  # a second one
        t1 = r.t
        turns(400, lambda: seen("path_down", t1))
        down = seen("path_down", t1)[0]
        turns(400, lambda: seen("uplink_rotated"))
        rot = [(t, e) for t, e in log if e["event"] == "uplink_rotated"]
        assert [e for t, e in rot] == [{"event": "uplink_rotated", "from": "wifi", "to": "cell",
                                        "reason": "no working path for 15 s"}], rot
        assert rot[0][0] - down == 15000, (rot[0][0], down)
    finally:
        r.close()
        srv.shutdown()
