"""What the console's ops and exclusive routing do to an uplink manager (board/uplinkops.py,
board/exclusive.py), and the hardware kinds' refusal on a port without a network driver
(board/up_wlan.py need_network): each retry starts at once, not at its back-off's end; a sim
uplink behind a relay is renumbered outside; a hardware uplink on a port that cannot drive it
says so once."""

from fake_network import FakeNetwork
from board.exclusive import Exclusive
from board.hw import Hardware
from board import uplinks, uplinkops

ETH = {"kind": "lan", "priority": 10, "cost": 0,
       "phy": {"type": "LAN8720", "addr": 0, "mdc": 23, "mdio": 18, "power": 12,
               "ref_clk": 17, "ref_clk_mode": "out"}}


class _Failing(uplinks.Sim):
    """A sim uplink whose every attempt fails (its back-off grows)."""

    def start(self, now):
        raise uplinks.UplinkError("refused")


def _backed_off(name="x"):
    """A failing uplink after four failures: down, its next try 8 s after the last."""
    m = _Failing(name, {"kind": "sim", "address": "127.0.0.2"}, {}, None)
    t = 0
    while m.failures < 4:
        m.poll(t)
        t += 100
    assert m.state == "down" and m.next_try - t >= 7000, (m.next_try, t)
    return m, t


def test_uplink_up_on_an_uplink_waiting_out_its_backoff_tries_at_once():
    m, t = _backed_off()
    uplinkops.set_admin(m, True, t)  # `uplink x up`
    attempts = m.attempts
    assert m.poll(t) == ("fail", "refused") and m.attempts == attempts + 1


def test_exclusive_routing_rotating_onto_an_uplink_waiting_out_its_backoff_tries_it_at_once():
    a, t = _backed_off("a")
    b, _ = _backed_off("b")

    class Board:
        managers = {"a": a, "b": b}
        running = {}

        def prio_cost(self, name, raw):
            return (1 if name == "a" else 2), 0

    ex = Exclusive(Board())
    ex.active = "a"
    ex.activate("b", t)
    attempts = b.attempts
    assert a.standby and not b.standby
    assert b.poll(t) == ("fail", "refused") and b.attempts == attempts + 1


def test_a_sim_uplink_behind_a_relay_is_renumbered_outside_and_keeps_its_local_address():
    s = uplinkops.make("eth", {"kind": "sim", "address": "127.0.0.2", "via": "127.0.0.9:7000",
                               "public": "10.0.0.1:6000"}, {}, None)
    uplinkops.renumber(s, "10.0.0.2:6001")
    assert (s.public, s.address) == ("10.0.0.2:6001", "127.0.0.2")
    plain = uplinkops.make("eth", {"kind": "sim", "address": "127.0.0.2"}, {}, None)
    uplinkops.renumber(plain, "127.0.0.5")
    assert (plain.public, plain.address) == (None, "127.0.0.5")


def test_a_lan_uplink_on_a_port_without_machine_says_once_that_it_needs_a_board():
    hw = Hardware(network=FakeNetwork())
    hw.machine = None  # (a port without the machine module: the host's CPython too)
    e = uplinkops.make("eth", ETH, {}, hw)
    why = "this port has no network driver: a lan uplink needs a board"
    assert e.poll(0) == ("fail", why)
    assert e.state == "unconfigured" and e.error == why
    assert e.poll(100000) is None and e.attempts == 1  # not retried until the settings change
