# The endpoint's queue of timers when a deadline is armed and disarmed over and over, as DATA
# feedback does for each burst (issue 11: heap allocated per DATA packet on a 32-bit board):
# an association's entry that is first in the queue is moved in place, not made anew, and no
# timer is lost or early; with the clock near and across 2^30 ms (12.4 days of uptime), where
# a 32-bit board's clock values are heap objects. Also the KEEPALIVE's value at the 2^30 and
# 2^32 edges (a board reads its body from a scratch). Plain test functions: pytest and both
# MicroPythons (a module of its own: each is near the edge of the 128K heap of the
# MicroPython runs).

from mast import wire
from mast.crypto import Mac
from simnet import Net, config, up1

EDGE = 1 << 30


class _Timer:
    """A stand-in association for the endpoint's queue: its deadline is set at will; timer()
    runs what is due (records it and disarms), and nothing else, as an association's does
    (the queue may call it for a deadline that has moved later since)."""

    def __init__(self, label):
        self.label = label
        self.dirty = False
        self.due = None
        self.queued = None
        self.at = None  # the deadline next_timer() gives
        self.ran = 0

    def next_timer(self):
        return self.at

    def timer(self, now):
        if self.at is not None and self.at <= now:
            self.ran += 1
            self.at = None


def _earliest(timers):
    t = None
    for x in timers:
        if x.at is not None and (t is None or x.at < t):
            t = x.at
    return t


def test_the_queue_gives_the_earliest_deadline_and_runs_exactly_the_due_timers():
    # three timers whose deadlines move earlier, later, back to an earlier value and to none,
    # from a few values on both sides of 2^30, in a fixed pseudo-random order (values repeat,
    # so one timer's deadline is often another's, or a stale entry's)
    timers = [_Timer(i) for i in (11, 12, 13)]
    ep = _queue(timers)
    values = [EDGE - 40 + 10 * i for i in range(9)]  # 2^30 - 40 .. 2^30 + 40
    seed = 12345
    runs = checks = 0
    for step in range(1500):
        seed = (seed * 1103515245 + 12345) & 0x7FFFFFFF
        x = timers[seed % 3]
        k = (seed >> 4) % 11
        x.at = None if k >= 9 else values[k]
        ep.touch(x)
        if (seed >> 9) % 3 == 0:
            checks += 1
            assert ep.next_timer() == _earliest(timers), (step, [t.at for t in timers])
        if (seed >> 12) % 8 == 0:
            now = ep.next_timer()
            if now is not None:
                runs += 1
                due = [t for t in timers if t.at is not None and t.at <= now]
                before = [t.ran for t in timers]
                ep.handle_timer(now)
                for i in range(3):
                    want = 1 if timers[i] in due else 0
                    assert timers[i].ran - before[i] == want, (step, i, now)
    assert runs > 50 and checks > 300
    assert len(ep._heap) <= 2 * 3 + 16


def _queue(timers):
    net = Net(0)
    net.node("a", config("a", ["b"]))
    ep = net.nodes["a"].ep
    ep.assocs = {}
    for x in timers:
        ep.assocs[x.label] = x
    return ep


def test_a_deadline_moved_back_after_the_queue_is_rebuilt_still_runs():
    # deadlines that only move earlier leave a stale entry each time (but the first's, moved
    # in place), until the endpoint rebuilds its heap without them; then the earliest timer
    # goes back to its previous deadline, which the rebuild dropped
    x, y, z = _Timer(21), _Timer(22), _Timer(23)
    ep = _queue((y, z, x))
    rebuilt = False
    for i in range(40):
        for t, base in ((y, EDGE + 2000), (z, EDGE + 3000), (x, EDGE - 1000)):  # x last, earliest
            t.at = base - 10 * i
            ep.touch(t)
        assert ep.next_timer() == x.at
        if i and len(ep._heap) == 3:  # just rebuilt: one live entry each
            rebuilt = True
            break
    assert rebuilt
    x.at += 10  # back to the deadline it had before the rebuild
    ep.touch(x)
    assert ep.next_timer() == x.at
    ep.handle_timer(x.at)
    assert (x.ran, y.ran, z.ran) == (1, 0, 0) and ep.next_timer() == y.at


def _stream(net, ea, n):
    """n DATA a -> b, 20 ms apart, each delivered; -> the largest timer heap of either side."""
    eb = net.nodes["b"].ep
    most = 0
    for _ in range(n):
        assert ea.send_data(b"x" * 10, net.now, "b")
        net.flush()
        net.run(net.now + 20)
        most = max(most, len(ea._heap), len(eb._heap))
    return most


def test_feedback_across_2_30_moves_each_sides_one_timer_entry():
    net, a, b = up1(EDGE - 3000)  # the stream below crosses 2^30
    for n in ("a", "b"):  # (the simulator's records would fill a 128K heap)
        net.nodes[n].events = net.nodes[n].payloads = net.nodes[n].counts = None
    ea = net.nodes["a"].ep
    most = _stream(net, ea, 200)
    assert net.now > EDGE + 500
    # each burst arms a's send timeout and b's feedback timer, and feedback disarms them: one
    # entry each, moved (before: a new one each time, until 2 x associations + 16 stale
    # entries made the endpoint rebuild its heap)
    assert most <= 1, most
    assert b.window.highest == a.seq - 1  # every DATA arrived
    p = a.primary
    net.run(net.now + 200)  # b's feedback for the tail: its timer fired
    assert p.fb_hi == a.seq - 1 and p.unacked_until is None and p.state == 1  # ACTIVE
    # the send timeout still fires after all that reuse: b's feedback lost, a's path suspect
    net.drop = lambda src, dst, data: src == "b"
    sent = net.now
    assert ea.send_data(b"y", net.now, "b")
    net.flush()
    net.run(sent + 299)
    assert p.state == 1
    net.run(sent + 301)
    assert p.state == 2, p.state  # SUSPECT at send_timeout (300 ms), to the ms


def test_keepalive_values_at_the_2_30_and_2_32_edges_read_back_the_same():
    mac = Mac(bytes(range(32)))
    h = [0, 0, 0]
    for x in (0, 1, EDGE - 1, EDGE, 0xFFFFFFFF, 0x100000000, 0xFFFFFFFFFFFF):
        body = wire.enc_keepalive(x)
        assert len(body) == 6 and wire.dec_keepalive(body) == x, x
        assert bytes(wire.enc_keepalive(x, bytearray(6))) == bytes(body)
        pkt = wire.seal(mac, wire.KEEPALIVE, 0x7FFFFFFF, 5, body)
        got = wire.parse(pkt, h)
        assert h == [wire.KEEPALIVE, 0x7FFFFFFF, 5] and bytes(got) == bytes(body), x
        assert wire.dec_keepalive(got) == x and wire.check(mac, pkt, got), x


def test_a_keepalive_of_the_wrong_length_is_malformed_not_a_bad_tag():
    net, a, b = up1(EDGE - 1000)
    eb = net.nodes["b"].ep
    for body, reason in ((b"\0\0\0\0\0\1", "accepted"), (b"\0\0\0\0\0\1\0", "malformed"),
                         (b"\0\0\0\0\1", "malformed")):
        pkt = wire.seal(a.tx_mac, wire.KEEPALIVE, a.peer_label, a.seq, body)
        a.seq += 1
        was = eb.counters.get(reason, 0)
        eb.receive("wan", ("10.1.0.2", 6278), pkt, net.now)
        assert eb.counters.get(reason, 0) == was + 1, (body, eb.counters)
    assert eb.counters.get("mac") is None
