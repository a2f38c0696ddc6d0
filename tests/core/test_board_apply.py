# The board's `apply` (firmware/board/applycfg.py): the association is kept unless the
# peer's identity or keys change; two endpoints back to back, no sockets. (Moved out of
# tests/core/test_board_settings.py: each module is near the edge of the 128K heap of the
# MicroPython runs.) Plain test functions: pytest and MicroPython.

from mast.endpoint import Endpoint
from board import settings, applycfg

PSK1 = "q83vEjRWeJq83vEjRWeJq83vEjRWeJq83vEjRWeJq8M="
PSK2 = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="


# ---- apply: keep the association unless identity or keys change ----------------------------


def board_cfg(psk=PSK1, cost=0, name="board"):
    return {"name": name, "peers": {"srv": {"psk": psk, "addresses": ["127.0.0.10:6278"]}},
            "uplinks": {"eth": {"cost": cost}}}


def server_cfg(psk=PSK1):
    return {"name": "srv", "peers": {"board": {"psk": psk, "initiate": False},
                                     "board2": {"psk": psk, "initiate": False}}}


def rand_from(seed):
    state = [seed]

    def rand(n):
        out = bytearray()
        for _ in range(n):
            state[0] = (state[0] * 1103515245 + 12345) & 0x7FFFFFFF
            out.append(state[0] >> 16 & 0xFF)
        return bytes(out)

    return rand


class Pair:
    """A board endpoint and a server endpoint with datagrams carried in memory."""

    def __init__(self):
        self.t = 0
        self.b = Endpoint(settings.validate(board_cfg())[0], rand_from(1))
        self.s = Endpoint(settings.validate(server_cfg())[0], rand_from(2))
        self.b.uplink_up("eth", ("127.0.0.2", 6278), 0)
        self.s.uplink_up("lan", ("127.0.0.10", 6278), 0)
        self.got = []

    def run(self, ms):
        end = self.t + ms
        while self.t < end:
            for src, dst in ((self.b, self.s), (self.s, self.b)):
                for up, addr, data in src.datagrams_to_send():
                    for name in dst.uplinks:
                        if dst.uplinks[name].addr == addr:
                            dst.receive(name, src.uplinks[up].addr, data, self.t)
            for ep in (self.b, self.s):
                if ep.next_timer() is not None and ep.next_timer() <= self.t:
                    ep.handle_timer(self.t)
                ev = ep.next_event()
                while ev is not None:
                    self.got.append((ep.name, ev.kind, getattr(ev, "payload", None)))
                    ev = ep.next_event()
            self.t += 10

    def up(self):
        a = self.b.association("srv")
        return a is not None and a.state == 2


def test_apply_of_a_cost_change_keeps_the_association_and_its_nonces():
    p = Pair()
    p.b.connect("srv", 0)
    p.run(500)
    assert p.up()
    a = p.b.association("srv")
    nonce = a.nonce
    new = settings.validate(board_cfg(cost=20))[0]
    rebuild, restart, why = applycfg.plan(p.b.cfg, new)
    assert (rebuild, restart, why) == (False, [], None)
    applycfg.reconfigure(p.b, new, restart, p.t)
    p.b.uplink_up("eth", ("127.0.0.2", 6278), p.t, 100, 20)
    p.run(300)
    assert p.b.association("srv") is a and a.nonce == nonce and p.up()
    assert p.b.send_data(b"still here", p.t)
    p.run(200)
    assert ("srv", "data", b"still here") in p.got


def test_apply_of_a_new_psk_restarts_that_association():
    p = Pair()
    p.b.connect("srv", 0)
    p.run(500)
    old = p.b.association("srv")
    new = settings.validate(board_cfg(psk=PSK2))[0]
    rebuild, restart, why = applycfg.plan(p.b.cfg, new)
    assert (rebuild, restart, why) == (False, ["srv"], "peer keys changed")
    applycfg.reconfigure(p.b, new, restart, p.t)
    assert p.b.association("srv") is None
    applycfg.reconfigure(p.s, settings.validate(server_cfg(psk=PSK2))[0], ["board"], p.t)
    p.b.connect("srv", p.t)
    p.run(1000)
    a = p.b.association("srv")
    assert a is not None and a is not old and a.nonce != old.nonce and p.up()


def test_apply_of_a_new_name_or_keying_rebuilds_everything():
    old = settings.validate(board_cfg())[0]
    assert applycfg.plan(old, settings.validate(board_cfg(name="other"))[0])[:1] == (True,)
    openk = settings.validate({"name": "board", "keying": "open", "peers": {"srv": {}}})[0]
    assert applycfg.plan(old, openk) == (True, [], "keying changed")


def test_apply_of_a_removed_peer_restarts_it():
    old = settings.validate(server_cfg())[0]
    new = settings.validate({"name": "srv", "peers": {"board": {"psk": PSK1, "initiate": False}}})[0]
    assert applycfg.plan(old, new) == (False, ["board2"], "peer keys changed")
