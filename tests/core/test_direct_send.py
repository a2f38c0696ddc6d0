# Endpoint.direct_send: the core hands each packet to the caller as it makes it, instead of
# queueing it for datagrams_to_send. The runtime sends this way, so on MicroPython a packet is
# sealed in one reused buffer and sending allocates no packet (issue 11, bench/alloc.py). What
# goes on the wire must not change: these tests run the same scenarios both ways and compare
# every byte, on CPython and on both MicroPython builds.

import gc
import struct

from simnet import Net, Stream, config, cut_and_measure, pair
from mast import wire
from mast.compat import sha256
from mast.crypto import Mac

A_ADDR = ("10.1.0.2", 6278)
_TWO_UPLINKS = [("eth", "10.1.0.2", 10, 0), ("wifi", "10.2.0.2", 20, 0)]  # (a board-sized heap)
B_ADDR = ("10.9.0.1", 6278)


def _wire_digest(direct, mode, **kw):
    """a streams to b at 25/s, a's eth is cut, a fails over: a digest of every packet the
    network carried (time, from, to, bytes) in order, and how many there were. A digest,
    not a list: two runs of it fit a board-sized heap."""
    h = sha256()
    n = [0]

    def watch(net):
        def spy(src, dst, data):
            h.update(struct.pack(">I", net.now) + src.encode() + dst.encode())
            h.update(data)
            n[0] += 1
            return False

        return spy

    net, s, gap, lost, dups, t0 = cut_and_measure("default", mode=mode, run_ms=1000, rate=25, direct=direct,
                                                  spy=watch, a_uplinks=_TWO_UPLINKS, **kw)
    for x in "ab":  # (a heap too small would change what was sent: say so)
        assert not net.nodes[x].ep.counters.get("no_memory"), net.nodes[x].ep.counters
    # let the heap have it all back, even if a stale pointer on the stack keeps net itself
    net.nodes = net.links = net.uplinks = net.queue = net.apps = net.drop = None
    return h.digest(), n[0], s.seq, lost


def _same_bytes(mode, **kw):
    d2, n2, sent2, lost2 = _wire_digest(False, mode, **kw)
    gc.collect()  # (a board-sized heap: the first network is garbage now)
    d1, n1, sent1, lost1 = _wire_digest(True, mode, **kw)
    assert n1 == n2 and n1 > sent1 > 40, (n1, n2, sent1)  # (about 50 DATA, and the rest)
    assert d1 == d2
    assert lost1 == [] and lost2 == [], (lost1, lost2)


def test_direct_and_queued_endpoints_put_the_same_bytes_on_the_wire_failover_resend():
    _same_bytes("failover", resend_ms=700)  # the resent DATA: copies kept from the send buffer


def test_direct_and_queued_endpoints_put_the_same_bytes_on_the_wire_redundant():
    _same_bytes("redundant")  # one packet sent on two paths


class _Catch:
    """A direct sender that keeps what it was handed: (uplink, dst, packet object, its bytes)."""

    def __init__(self):
        self.got = []
        self.to = None  # an endpoint (that queues its own packets) to deliver to at once

    def send(self, uplink, dst, pkt):
        if self.to is None:
            self.got.append((uplink, dst, pkt, bytes(pkt)))
        else:  # no copy: the view itself, during the call (as a kernel's sendto takes it)
            self.got.append((uplink, dst, len(pkt), None))
            self.to.receive("wan", A_ADDR, pkt, 0)


def _two(reserve=0):
    """a and b in a network that queues (the test moves b's packets by hand) and a direct
    sender on a (its send buffer made `reserve` bytes first); the association comes up."""
    net = Net(direct=False)
    net.node("a", config("a", {"b": {"addresses": ["10.9.0.1"]}}))
    net.node("b", config("b", ["a"]))
    net.uplink("b", "wan", B_ADDR)
    net.uplink("a", "eth", A_ADDR)
    a = net.nodes["a"].ep
    c = _Catch()
    a.direct_send(c.send, reserve)
    a.connect("b", net.now)
    b = net.nodes["b"].ep
    for _ in range(10):  # the handshake, by hand: a's packets from c, b's from its queue
        for up, dst, pkt, raw in c.got:
            b.receive("wan", A_ADDR, raw, net.now)
        c.got = []
        for up, dst, pkt in b.datagrams_to_send():
            a.receive("eth", B_ADDR, pkt, net.now)
        net.now += 5
        a.handle_timer(net.now)
        b.handle_timer(net.now)
    assert a.association("b").state == 2 and b.association("a").state == 2
    return net, a, b, c


def test_a_direct_sender_is_handed_each_packet_at_once_and_nothing_is_queued():
    net, a, b, c = _two()
    c.got = []
    for i in range(3):
        assert a.send_data(b"p%d" % i, net.now)
        assert len(c.got) == i + 1 and a.datagrams_to_send() == []
    assert [(u, d) for u, d, p, r in c.got] == [("eth", B_ADDR)] * 3
    seqs = [wire.parse(r)[2] for u, d, p, r in c.got]
    assert seqs[1] == seqs[0] + 1 and seqs[2] == seqs[1] + 1
    objs = [p for u, d, p, r in c.got]
    if wire.FAST_C:  # CPython: a new packet each time
        assert objs[0] is not objs[1]
    else:  # MicroPython: views of the one send buffer, the same view for the same length
        assert type(objs[0]) is memoryview and objs[0] is objs[1] is objs[2]
    for u, d, p, raw in c.got:  # each one as it was handed over is a whole, valid DATA
        b.receive("wan", A_ADDR, raw, net.now)
    got = []
    e = b.next_event()
    while e is not None:
        if e.kind == "data":
            got.append(e.payload)
        e = b.next_event()
    assert got == [b"p0", b"p1", b"p2"], (got, b.counters)
    # direct_send(None): queued again
    a.direct_send(None)
    c.got = []
    assert a.send_data(b"q", net.now)
    out = a.datagrams_to_send()
    assert c.got == [] and len(out) == 1 and wire.parse(out[0][2])[3] is not None


def test_the_largest_payload_and_then_a_small_one_go_out_whole():
    # the largest packet (2,048 bytes) in the send buffer, then a small one: both intact.
    # (The buffer is taken at its full size first, direct_send's reserve: two endpoints in
    # 128K on the 64-bit port leave no free 2 KB block after the handshake.)
    big = bytearray(wire.MAX_PAYLOAD)
    for i in range(len(big)):
        big[i] = i * 7 & 0xFF
    net, a, b, c = _two(wire.MAX_PACKET)
    c.got = []
    c.to = b
    got = []

    def on_data(peer, payload, ip, uplink, src):  # (as the runtime takes DATA: no copy)
        if len(payload) == len(big):
            got.append("big" if all(payload[i] == big[i] for i in range(len(big))) else "bad")
        else:
            got.append(bytes(payload))

    b.on_data = on_data
    assert a.send_data(big, net.now)
    assert a.send_data(b"small", net.now)
    assert [n for u, d, n, r in c.got] == [wire.MAX_PACKET, wire.OVERHEAD + 5]
    assert got == ["big", b"small"], (got, b.counters)


def test_seal_into_a_buffer_writes_the_same_packet():
    mac = Mac(bytes(range(32)))
    buf = bytearray(wire.MAX_PACKET)
    for seq in (1, 0x3FFFFFFF, 0x40000000, 0x100000000, 0x123456789A, wire.SEQ_MAX):
        for body, extra in ((b"", None), (b"hello", None), (bytes(100), b"extra")):
            want = wire.seal(mac, wire.DATA, 0xC0FFEE11, seq, body, extra)
            n = wire.seal(mac, wire.DATA, 0xC0FFEE11, seq, body, extra, buf)
            assert n == len(want) and bytes(buf[:n]) == bytes(want), (seq, body)
            assert wire.parse(want)[:3] == (wire.DATA, 0xC0FFEE11, seq), (seq, body)  # (48 bits)
    small = bytearray(40)
    try:
        wire.seal(mac, wire.DATA, 1, 1, bytes(13), None, small)
        raise AssertionError("a 41-byte packet was sealed into 40 bytes")
    except ValueError as e:
        assert "41" in str(e) and "40" in str(e)
    assert len(small) == 40  # (not grown)


def test_keepalive_bodies_written_in_place_match_and_decode():
    into = bytearray(6)
    for x in (0, 7, 0x3FFFFFFF, 0x40000000, 0xFFFFFFFF, 0x100000000, 0x123456789ABC, wire.SEQ_MAX):
        want = wire.enc_keepalive(x)
        assert bytes(wire.enc_keepalive(x, into)) == want, x
        assert wire.dec_keepalive(want) == x and wire.dec_keepalive(memoryview(into)) == x, x


def test_endpoints_that_send_directly_share_one_buffer_and_keep_their_packets_apart():
    # two endpoints of one process (a server and a board in the simulated network) send in
    # turn; every packet the network carried was whole (nothing counted as mac or malformed)
    net = pair(direct=True)
    net.run(net.now + 2000)
    s1 = Stream(net, "a", rate=50)
    s2 = Stream(net, "b", rate=50, peer="a")
    net.run(net.now + 1000)
    s1.stop()
    s2.stop()
    net.run(net.now + 100)
    for name, s, other in (("a", s1, "b"), ("b", s2, "a")):
        c = net.nodes[other].ep.counters
        assert c.get("mac", 0) == 0 and c.get("malformed", 0) == 0, c
        assert [i for i in range(s.seq) if net.nodes[other].counts[i] == 0] == [], name
