# Long uptimes (issue 15.2, docs/PROTOCOL.md 8.3): a peer that restarts 25 to 50 days after its
# last cookie is never locked out, around the wrap points of a millisecond clock (2^30, 2^31,
# 2^32); an old COOKIE-ECHO replayed across the 32-bit stamp's wrap still cannot replace a newer
# association; and an association fails over with the clock past each wrap point.

from simnet import config, pair, established, Stream, pair1, up1, packet_log
from mast import wire

A_ADDR = ("10.1.0.2", 6278)
DAY = 86400000


def _restarted():
    """a's endpoint after a restart: same name and key, new state. Made before the traffic
    starts (a board-sized heap has its room in one piece then)."""
    from mast.endpoint import Endpoint
    from simnet import Rng

    _RESTARTS[0] += 1
    return Endpoint(config("a", {"b": {"addresses": ["10.9.0.1"]}}, replay_window=64),
                    Rng("a-restarted-%d" % _RESTARTS[0]))


_RESTARTS = [0]


def _reconnect(net, ep, when):
    """a comes back as ep at `when` and associates again."""
    net.now = when
    net.nodes["a"].ep = ep
    ep.uplink_up("eth", A_ADDR, when, 10, 0)
    ep.connect("b", when)
    net.flush()
    net.run(when + 3000)
    return ep.association("b")


def _never_locked_out(start, later):
    # 1.0 refused a restarted peer from 24.9 to 49.7 days after its last cookie (serial
    # comparison of 32-bit stamps); here any time after it, around the clock's wrap points
    a2 = _restarted()
    net, a, b = up1(start, outage_s=86400, replay_window=64)
    a2 = _reconnect(net, a2, net.now + later)
    b_ep = net.nodes["b"].ep
    assert a2 is not None and a2.state == 2, (start, later, b_ep.counters)
    assert b_ep.association("a").peer_nonce == a2.nonce
    assert b_ep.counters.get("stale_cookie", 0) == 0


def test_a_peer_back_25_days_after_its_last_cookie_is_not_locked_out():
    _never_locked_out(0, 25 * DAY)


def test_a_peer_back_49_6_days_later_with_the_clock_near_2_to_the_30_is_not_locked_out():
    _never_locked_out(2 ** 30 - 5000, int(49.6 * DAY))


def test_a_peer_back_2_to_the_32_ms_later_with_the_clock_near_2_to_the_31_is_not_locked_out():
    _never_locked_out(2 ** 31 - 5000, 2 ** 32 + 1000)


def test_a_peer_back_40_days_later_with_the_clock_near_2_to_the_32_is_not_locked_out():
    _never_locked_out(2 ** 32 - 5000, 40 * DAY)


def test_an_old_cookie_echo_replayed_across_a_stamp_wrap_still_cannot_replace_a_newer_one():
    # a's first cookie is stamped just before the 32-bit stamp wraps, its restarted self's
    # just after: replaying the first COOKIE-ECHO within 60 s is still refused
    e2 = _restarted()
    net = pair1(2 ** 32 - 2500, replay_window=64)  # (the handshake starts at once)
    net.flush()
    seen = packet_log(net, (wire.COOKIE_ECHO,))
    net.run(net.now + 2000)
    assert established(net) and seen
    first_echo = seen[0][3]
    stamp1 = bytes(wire.parse(first_echo)[3][0:4])
    a2 = _reconnect(net, e2, net.now + 1500)  # its cookie is stamped after the wrap
    assert a2 is not None and a2.state == 2
    b_ep = net.nodes["b"].ep
    assert stamp1 > b"\xff\xff\xf0\x00"  # (the first stamp was just below 2^32)
    before = b_ep.counters.get("stale_cookie", 0)
    b_ep.receive("wan", A_ADDR, first_echo, net.now + 10)  # 5 s old: fresh, but older
    assert b_ep.counters["stale_cookie"] == before + 1
    assert b_ep.association("a").peer_nonce == a2.nonce


def _fails_over(start):
    net = pair(start=start, replay_window=64)
    net.run(net.now + 2000)
    s = Stream(net, "a", rate=50)
    net.run(net.now + 1000)
    net.link("a", "eth").cut = True
    net.run(net.now + 3000)
    s.stop()
    net.run(net.now + 100)
    fo = net.events("a", "failover")
    assert fo and fo[-1].new.startswith("wifi>"), (start, fo)
    got = net.nodes["b"].counts.total
    assert s.seq - got <= 40, (start, s.seq, got)  # what was sent in the gap, no more


def test_an_association_fails_over_with_the_clock_past_2_to_the_30_ms():
    _fails_over(2 ** 30 - 1000)


def test_an_association_fails_over_with_the_clock_past_2_to_the_31_ms():
    _fails_over(2 ** 31 - 1000)


def test_an_association_fails_over_with_the_clock_past_2_to_the_32_ms():
    _fails_over(2 ** 32 - 1000)
