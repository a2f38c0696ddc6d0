"""Long uptime: the core with a simulated clock (tests/core/simnet.py) across 2^30, 2^31 and
2^32 ms (12.4, 24.9 and 49.7 days), and the cookie-stamp window of issue 15.2.

Cookie stamps are the responder's clock in ms modulo 2^32, compared with serial arithmetic. A
handshake, a failover and a peer's restart must work whatever the clock reads; in particular a
peer whose box restarts 24.9 to 49.7 days after the last cookie the other end accepted from it
must not be refused (`stale_cookie`) for the rest of that window (issue 15.2).
"""

import pytest

import atklib  # noqa: F401  (sys.path: the firmware under test, tests/core)
import simnet
from mast.endpoint import Endpoint

DAY = 86400000
BOUNDS = ((1 << 30, "2^30 ms"), (1 << 31, "2^31 ms"), (1 << 32, "2^32 ms"), (3 << 32, "3 x 2^32 ms"))


def two_hosts(start, outage_s=10):
    """a (a board) and b (a server), 1 ms each way per link; a connects to b at `start`."""
    net = simnet.Net(start)
    net.node("a", simnet.config("a", {"b": {"addresses": ["10.9.0.1:6278"]}}, outage_s=outage_s))
    net.node("b", simnet.config("b", ["a"], outage_s=outage_s))
    net.uplink("b", "wan", ("10.9.0.1", 6278), delay=1)
    net.uplink("a", "eth", ("10.1.0.2", 6278), delay=1)
    net.nodes["a"].ep.connect("b", net.now)
    net.flush()
    return net


def reboot_a(net):
    """a's box restarts: a new endpoint (new nonces, labels, TSN) on the same address,
    connecting again; b keeps what it had."""
    cfg = simnet.config("a", {"b": {"addresses": ["10.9.0.1:6278"]}}, outage_s=10)
    node = net.node("a", cfg)
    node.ep = Endpoint(cfg, simnet.Rng("a-after-reboot"))  # fresh randomness, as after a boot
    net.uplink("a", "eth", ("10.1.0.2", 6278), delay=1)
    net.nodes["a"].ep.connect("b", net.now)
    net.flush()


def b_assoc(net):
    return net.nodes["b"].ep.association("a")


def restart_after(start, gap_ms):
    """b accepts a's cookie at about `start`; a dies (silence), both ends give the association
    up; a's box comes back gap_ms later and connects. -> (net, b's counters before the new
    handshake, the first association's nonce at b)."""
    net = two_hosts(start)
    net.run(start + 1000)
    assert simnet.established(net)
    first = b_assoc(net).peer_nonce
    net.link("a", "eth").cut = True  # a's box is off
    net.run(start + gap_ms - 1)  # both ends time out; then nothing is due until a is back
    assert b_assoc(net) is None, "b still holds the old association"
    before = dict(net.nodes["b"].ep.counters)
    reboot_a(net)
    net.run(net.now + 5000)
    return net, before, first


def check_new_association(net, before, first):
    b = b_assoc(net)
    c = net.nodes["b"].ep.counters
    assert c.get("stale_cookie", 0) == before.get("stale_cookie", 0), c
    assert b is not None and b.state == 2 and b.peer_nonce != first, c
    assert simnet.established(net)
    assert net.nodes["a"].ep.association("b").nonce == b.peer_nonce  # the same association


@pytest.mark.parametrize("bound,name", BOUNDS, ids=[n for _, n in BOUNDS])
def test_a_handshake_whose_cookie_crosses_the_clock_bound_completes(bound, name):
    # INIT reaches b 2 ms after connect (the stamp is taken then), COOKIE-ECHO 6 ms after:
    # the stamp is 2 ms before the bound, the check 2 ms after it
    net = two_hosts(bound - 4)
    net.keep_log = True
    net.run(bound + 1000)
    assert simnet.established(net)
    echo = [t for t, src, dst, ptype in net.log if ptype == 3 and dst == "b"]
    assert echo and echo[0] - 4 < bound <= echo[0], (echo, bound)  # it did cross the bound
    assert net.nodes["b"].ep.counters.get("stale_cookie", 0) == 0


@pytest.mark.parametrize("bound,name", BOUNDS, ids=[n for _, n in BOUNDS])
def test_a_failover_across_the_clock_bound_is_as_fast_as_anywhere(bound, name):
    # cut_and_measure: 2 s to come up, 1 s of stream, then the cut: here 300 ms before the
    # bound, so detection and switch happen across it
    net, s, gap, lost, dups, t0 = simnet.cut_and_measure("default", start=bound - 3300)
    assert t0 < bound < t0 + gap
    assert gap <= 800, gap
    assert not dups and lost == list(range(lost[0], lost[-1] + 1))  # one run, none twice
    assert len(net.events("a", "association_up")) == 1  # the same association throughout


def test_a_restart_whose_new_cookie_stamp_wrapped_past_2_32_is_accepted():
    # the last cookie accepted before the wrap, the new one after it: newer in serial terms
    net, before, first = restart_after((1 << 32) - 20000, 60000)
    check_new_association(net, before, first)


# issue 15.2: from 2^31 ms (24.86 days) to 2^32 ms (49.71 days) after the last accepted cookie,
# serial arithmetic calls every new stamp older
LOCKOUT_DAYS = (24.9, 25, 40, 49.6)
CONTROL_DAYS = (1.0 / 24, 10, 24.8, 49.8)


@pytest.mark.parametrize("days", LOCKOUT_DAYS)
def test_a_peer_restarting_in_the_cookie_stamp_window_is_not_locked_out(days):
    net, before, first = restart_after(5000, int(days * DAY))
    check_new_association(net, before, first)


@pytest.mark.parametrize("days", CONTROL_DAYS)
def test_a_peer_restarting_outside_the_cookie_stamp_window_gets_in(days):
    net, before, first = restart_after(5000, int(days * DAY))
    check_new_association(net, before, first)


def test_a_peer_restarting_after_25_days_of_idle_association_replaces_it():
    # the association stays up for 25 days (idle: probes only), then a's box restarts and
    # connects while b still holds the old association: the new one replaces it
    net = two_hosts(5000, outage_s=300)
    net.run(6000)
    assert simnet.established(net)
    first = b_assoc(net).peer_nonce
    net.nodes["a"].payloads = net.nodes["b"].payloads = None
    net.run(5000 + 25 * DAY, limit=2000000)
    assert b_assoc(net).peer_nonce == first and b_assoc(net).state == 2  # still the first one
    before = dict(net.nodes["b"].ep.counters)
    reboot_a(net)
    net.run(net.now + 5000)
    check_new_association(net, before, first)
    assert [e.reason for e in net.events("b", "association_closed")] == ["replaced"]
