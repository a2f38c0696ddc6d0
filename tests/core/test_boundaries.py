# Counters and clocks at their boundaries (a year of uptime): the 32-bit cookie stamp when the
# responder's clock passes a multiple of 2^32 ms after a COOKIE-ECHO was sent; the runtime's
# millisecond clock (runtime/clock.py) after a gap of half the tick period or more; a test
# stream's 32-bit seq; and labels and seqs past 2^30, 2^31 and 2^32 (big integers on a 32-bit
# board). A new module: the older core modules are near the 128K heap's edge.

from simnet import config, pair1, packet_log, established
from mast import wire

A_ADDR = ("10.1.0.2", 6278)
WRAP = 1 << 32


def _restarted():
    from mast.endpoint import Endpoint
    from simnet import Rng

    return Endpoint(config("a", {"b": {"addresses": ["10.9.0.1"]}}, replay_window=64), Rng("a-again"))


def test_a_cookie_echo_replayed_2_to_the_32_ms_later_cannot_replace_the_association():
    # An eavesdropper keeps a's COOKIE-ECHO. a restarts 49.7 days later (a new association);
    # the old COOKIE-ECHO, sent again from a's address once b's clock has gone round the 32-bit
    # stamp, must not tear that association down (PROTOCOL.md 13: "COOKIE-ECHO bound to a
    # cookie at most 60 s old").
    a2 = _restarted()  # (made before the traffic: a board-sized heap)
    net = pair1(0, outage_s=86400, replay_window=64)
    seen = packet_log(net, (wire.COOKIE_ECHO,))
    net.run(net.now + 2000)
    assert established(net) and len(seen) == 1
    old = seen[0][3]
    stamp = int.from_bytes(wire.parse(old)[3][:4], "big")
    net.drop = None
    net.now = stamp + WRAP - 5000  # a comes back as a2 (the old association is long gone)
    net.nodes["a"].ep = a2
    a2.uplink_up("eth", A_ADDR, net.now, 10, 0)
    a2.connect("b", net.now)
    net.flush()
    net.run(net.now + 3000)
    b_ep = net.nodes["b"].ep
    new = a2.association("b")
    assert new is not None and new.state == 2 and b_ep.association("a").peer_nonce == new.nonce
    net.run(stamp + WRAP + 1000)
    closed = len(net.events("b", "association_closed"))
    b_ep.receive("wan", A_ADDR, old, net.now)  # 1 s after the stamp, modulo 2^32
    net.flush()
    held = b_ep.association("a")
    assert held is not None and held.peer_nonce == new.nonce, b_ep.counters
    assert len(net.events("b", "association_closed")) == closed and b_ep.counters["bad_cookie"] == 1


def test_a_cookie_echo_whose_stamp_is_from_before_the_clocks_start_is_a_bad_cookie():
    # The clock starts at 0 on a board: a stamp from "before" it (a forgery within the first
    # minute) is a bad cookie, not an internal error (the full stamp is negative).
    net = pair1(0)
    seen = packet_log(net, (wire.COOKIE_ECHO,))
    net.run(net.now + 2000)
    pkt = bytearray(seen[0][3])
    pkt[wire.HEADER_LEN : wire.HEADER_LEN + 4] = b"\xff\xff\xff\x00"  # 0 - 256 ms
    b_ep = net.nodes["b"].ep
    b_ep.receive("wan", A_ADDR, bytes(pkt), 100)
    assert b_ep.counters.get("bad_cookie") == 1, b_ep.counters


def _after_a_gap(gap):
    from runtime.clock import MonotonicMs
    from faketicks import FakeTicks, ticks_diff_for

    period = 1 << 30
    ticks = FakeTicks(period - 1500, period)  # (the gap crosses the wrap)
    clock = MonotonicMs(ticks, ticks_diff_for(period), start=1000)
    clock.now()
    ticks.t += gap
    at = clock.now()
    seen = []
    for i in range(5):
        ticks.t += 97
        seen.append(clock.now() - at)
    return at, seen


def test_the_clock_counts_a_gap_just_under_half_the_tick_period_in_full():
    at, seen = _after_a_gap((1 << 29) - 1)
    assert at == 1000 + (1 << 29) - 1 and seen == [97, 194, 291, 388, 485], (at, seen)


def test_after_a_gap_of_half_the_tick_period_or_more_the_clock_goes_on_counting():
    # A board blocked or asleep for 6.2 days (2^29 ms of a 2^30 tick) or more: the gap cannot be
    # told from a step back, so it is lost; but the clock must not then stand still for up to
    # another 6.2 days (every timer of the core with it) until the ticks come round again.
    for gap in (1 << 29, (1 << 29) + 5000, (1 << 30) - 100):
        at, seen = _after_a_gap(gap)
        assert seen == [97, 194, 291, 388, 485], (gap, at, seen)


class _Rt:
    def __init__(self):
        self.sent = []

    def send(self, payload, peer):
        self.sent.append(payload)
        return True


def test_a_test_stream_goes_on_past_2_to_the_32_datagrams_its_seq_wrapping():
    # (1,000 a second, the most a stream takes, is 49.7 days; the board's telemetry uses the
    # same header) an OverflowError there ended the endpoint's loop
    from runtime import stream

    rt = _Rt()
    s = stream.Stream(rt, "b", rate=1000)
    s.seq = (1 << 32) - 2
    s.start(5000)
    for now in range(5000, 5004):
        s.tick(now)
    assert [stream.decode(p)[0] for p in rt.sent] == [(1 << 32) - 2, (1 << 32) - 1, 0, 1]
    assert s.sent == 4 and s.seq == (1 << 32) + 2


def _labels(net, la, lb):
    """The labels a and b draw from now on (a peer's may be any nonzero 32-bit number)."""
    net.nodes["a"].ep.new_label = lambda: la
    net.nodes["b"].ep.new_label = lambda: lb


def _big(la, lb, seq):
    # another implementation's labels reach 2^32 - 1 (ours stay below 2^30), and a long-lived
    # association's seqs pass 2^30, 2^31, 2^32: big integers on a 32-bit board
    net = pair1(0, replay_window=64)
    _labels(net, la, lb)
    ea, eb = net.nodes["a"].ep, net.nodes["b"].ep
    ea.close(net.now)  # (pair1's INIT drew a small label: again, with the big ones)
    net.run(net.now + 5000)
    ea.connect("b", net.now)
    net.flush()
    net.run(net.now + 2000)
    a, b = ea.association("b"), eb.association("a")
    assert a.label == la and b.label == lb and a.peer_label == lb and b.peer_label == la
    a.seq = b.seq = seq
    for i in range(6):
        assert ea.send_data(b"a%d" % i, net.now, "b") and eb.send_data(b"b%d" % i, net.now, "a")
        net.run(net.now + 20)
    assert [p for t, p in net.nodes["b"].payloads][-6:] == [b"a%d" % i for i in range(6)]
    assert [p for t, p in net.nodes["a"].payloads][-6:] == [b"b%d" % i for i in range(6)]
    assert b.window.highest >= seq + 5 and a.window.highest >= seq + 5
    net.renumber("a", "eth", ("10.1.0.9", 6278))  # a SET under the big labels
    net.run(net.now + 2000)
    assert ("10.1.0.9", 6278) in eb.association("a").remotes, eb.counters
    ea.close(net.now)
    net.run(net.now + 3000)
    assert [e.reason for e in net.events("b", "association_closed")][-1:] == ["peer_shut"], eb.counters


def test_labels_and_seqs_past_2_to_the_30_carry_data_a_set_and_a_shut():
    _big(1 << 30, 0xFFFFFFFF, (1 << 30) - 3)


def test_labels_and_seqs_past_2_to_the_31_carry_data_a_set_and_a_shut():
    _big(0x80000000, 0x80000001, (1 << 31) - 3)


def test_labels_and_seqs_past_2_to_the_32_carry_data_a_set_and_a_shut():
    _big(0xFFFFFFFF, 1 << 31, (1 << 32) - 3)
