# Small pieces on their own: the replay window, IP address text, and the
# non-wrapping clock the runtime builds from a board's wrapping ticks.
from mast.replay import ReplayWindow
from mast.addr import ip_to_bytes, bytes_to_ip, canonical, family, fmt
from runtime.clock import MonotonicMs
from faketicks import FakeTicks, ticks_diff_for


def _accept(w, seq):
    if w.check(seq):
        w.commit(seq)
        return True
    return False


def test_replay_window_accepts_each_seq_once_in_any_order_within_its_size():
    w = ReplayWindow(64)
    assert [_accept(w, s) for s in (1, 2, 5, 3, 5, 4, 2)] == [True, True, True, True, False, True, False]
    assert _accept(w, 100)
    assert _accept(w, 37) and not _accept(w, 37)  # 100 - 63: still inside
    assert not _accept(w, 36)  # 100 - 64: too old, even though never seen
    assert _accept(w, 10000)  # a jump larger than the window clears it
    assert not _accept(w, 100) and _accept(w, 9999)


def test_replay_window_handles_48_bit_sequence_numbers():
    w = ReplayWindow(1024)
    top = (1 << 48) - 1
    assert _accept(w, top - 5) and _accept(w, top) and _accept(w, top - 1)
    assert not _accept(w, top) and not _accept(w, top - 5)


def test_replay_window_size_must_be_a_multiple_of_64():
    for bad in (0, 63, 100):
        try:
            ReplayWindow(bad)
        except ValueError:
            continue
        assert False, bad


def test_ip_text_round_trips_in_canonical_form():
    cases = {
        "192.0.2.1": "192.0.2.1",
        "2001:DB8:0:0:1:0:0:1": "2001:db8::1:0:0:1",
        "2001:db8::": "2001:db8::",
        "::": "::",
        "::1": "::1",
        "1:0:0:2:0:0:0:3": "1:0:0:2::3",
        "1:2:3:4:5:6:7:8": "1:2:3:4:5:6:7:8",
        "::ffff:192.0.2.1": "::ffff:192.0.2.1",
        "1:0:2:3:4:5:6:7": "1:0:2:3:4:5:6:7",
    }
    for text, want in cases.items():
        assert canonical(text) == want, text
        assert bytes_to_ip(ip_to_bytes(text)) == want
    assert len(ip_to_bytes("2001:db8::1")) == 16 and ip_to_bytes("10.0.0.1") == b"\n\x00\x00\x01"
    assert fmt(("2001:db8::1", 6278)) == "[2001:db8::1]:6278" and fmt(("10.0.0.1", 1)) == "10.0.0.1:1"
    # an IPv4-mapped address is an IPv6 address: paths to it start from IPv6 uplinks only
    assert [family(t) for t in ("192.0.2.1", "2001:db8::1", "::ffff:192.0.2.1", "::")] == [4, 6, 6, 6]


def test_bad_ip_text_is_refused():
    for bad in ("", "1.2.3", "1.2.3.4.5", "256.1.1.1", "01.1.1.1", "1..2.3", "a.b.c.d", ":::",
                "1::2::3", "12345::", "1:2:3:4:5:6:7:8:9", "1.2.3.4::", "fe80::1%eth0", "::g"):
        try:
            ip_to_bytes(bad)
        except ValueError:
            continue
        assert False, bad


def test_clock_keeps_counting_across_the_tick_wrap_points():
    for period in (1 << 30, 1 << 32):
        ticks = FakeTicks(period - 1500, period)
        clock = MonotonicMs(ticks, ticks_diff_for(period), start=1000)
        seen = []
        for i in range(40):
            seen.append(clock.now())
            ticks.advance(97)
        assert seen == [1000 + 97 * i for i in range(40)], period  # straight through the wrap
        assert seen[-1] > 1000 + 1500  # the wrap was crossed


def test_clock_never_steps_back():
    ticks = FakeTicks(500, 1 << 30)
    clock = MonotonicMs(ticks, ticks_diff_for(1 << 30))
    a = clock.now()
    ticks.t -= 10  # a misbehaving tick source
    assert clock.now() == a
