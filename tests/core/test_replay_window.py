# The replay window (firmware/mast/replay.py): a seq is new if it is above the highest seen,
# or inside the window below it and not seen yet. The bitmap is a ring of `size` bits, so a
# seq shares its bit with every seq a multiple of `size` away: when the window moves on, the
# bits it skips must be cleared (small jumps) or the whole ring (a jump of a window or more);
# otherwise a seq never received is refused as a replay of one `size` below it. Each case is
# checked against a plain model of the rule.

from simnet import Rng
from mast.replay import ReplayWindow

SIZE = 64


def _seen_all(w, lo, hi):
    for s in range(lo, hi):
        assert w.check(s)
        w.commit(s)


def test_after_a_full_ring_a_small_jump_leaves_the_skipped_seqs_new():
    w = ReplayWindow(SIZE)
    _seen_all(w, 0, SIZE)  # every bit of the ring is set
    w.commit(SIZE + 9)  # 64..72 skipped (lost, or reordered and still on the way)
    for s in range(SIZE, SIZE + 9):
        assert w.check(s), s  # never received: new, although seq - 64 was seen
    assert not w.check(SIZE + 9)
    for s in range(10, SIZE):
        assert not w.check(s), s  # seen, and still inside the window
    for s in range(0, 10):
        assert not w.check(s), s  # now too old
    # the late ones arrive, once each
    for s in range(SIZE, SIZE + 9):
        w.commit(s)
        assert not w.check(s)


def test_after_many_wraps_a_jump_just_short_of_the_window_clears_what_it_skips():
    w = ReplayWindow(SIZE)
    _seen_all(w, 1, 5 * SIZE + 3)  # the ring wrapped several times
    hi = 5 * SIZE + 2
    w.commit(hi + SIZE - 1)  # skips SIZE - 2 seqs: every bit but two
    for s in range(hi + 1, hi + SIZE - 1):
        assert w.check(s), s
    assert not w.check(hi)  # seen, still inside
    assert not w.check(hi + SIZE - 1)


def test_a_jump_of_a_window_or_more_clears_the_whole_bitmap():
    for jump in (SIZE, SIZE + 1, 3 * SIZE + 7, 1 << 40):
        w = ReplayWindow(SIZE)
        _seen_all(w, 0, SIZE)
        hi = SIZE - 1 + jump
        w.commit(hi)
        s = hi - SIZE + 1  # (a while loop: on a 32-bit port range() takes no seq >= 2^30)
        while s < hi:
            assert w.check(s), (jump, s)  # nothing in the new window was received
            s += 1
        assert not w.check(hi)
        assert not w.check(hi - SIZE)  # too old
        assert not w.check(SIZE - 1)


def test_the_window_agrees_with_a_plain_model_over_random_arrivals():
    # seqs from a sender that runs ahead, with losses, reordering, replays and jumps
    for size in (64, 128):
        rng = Rng("replay-%d" % size)
        w = ReplayWindow(size)
        seen = set()
        highest = -1
        nxt = 0
        for i in range(1500):
            r = rng.randint(0, 99)
            if r < 60:
                s = nxt
                nxt += 1
            elif r < 75:
                s = max(0, nxt - rng.randint(1, 2 * size))  # late or replayed
            elif r < 90:
                nxt += rng.randint(1, size - 1)  # a burst lost: a jump inside the window
                s = nxt
            elif r < 97:
                nxt += rng.randint(size, 3 * size)  # a long outage
                s = nxt
            else:
                s = rng.randint(0, nxt + size)
            new = s > highest or (s > highest - size and s not in seen)
            assert w.check(s) == new, (size, i, s, highest)
            if new:
                w.commit(s)
                seen.add(s)
                if s > highest:
                    highest = s
                    for old in [x for x in seen if x <= highest - size]:
                        seen.discard(old)
            assert w.highest == highest


def test_a_window_size_must_be_a_multiple_of_64():
    for bad in (0, 32, 65, 100):
        try:
            ReplayWindow(bad)
        except ValueError as e:
            assert "multiple of 64" in str(e)
        else:
            raise AssertionError("ReplayWindow(%d) was accepted" % bad)


def test_a_forged_packet_far_ahead_does_not_move_an_associations_window():
    # the seq is recorded only after the tag verifies (PROTOCOL.md section 7, step 6): a forged
    # DATA with a seq far ahead must not make the peer's genuine packets look old
    from simnet import pair
    from mast import wire
    from mast.crypto import Mac

    net = pair()
    net.run(2000)
    b_ep = net.nodes["b"].ep
    b = b_ep.association("a")
    a = net.nodes["a"].ep.association("b")
    highest = b.window.highest
    forged = wire.seal(Mac(bytes(32)), wire.DATA, b.label, a.seq + 100000, b"forged")
    b_ep.receive("wan", ("10.1.0.2", 6278), forged, net.now)
    assert b_ep.counters.get("mac", 0) == 1 and b.window.highest == highest
    net.nodes["b"].payloads = []
    assert net.nodes["a"].ep.send_data(b"genuine", net.now)
    net.flush()
    net.run(net.now + 50)
    assert [p for t, p in net.nodes["b"].payloads] == [b"genuine"]
