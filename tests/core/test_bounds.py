# What one peer can make a host hold (docs/PROTOCOL.md 9.1, issue 15.1): at most 4 source
# addresses learnt from packets beside its 16 listed ones, and at most 24 paths. A packet beyond
# is still authenticated and counted, never stored. And the wire format's own limits (PROTOCOL.md
# sections 2 and 6.1): a packet of up to 2048 bytes, an address list of up to 16 entries, no port 0.

from simnet import pair
from mast import wire

A = ("10.1.0.2", 6278)


def _up():
    net = pair(a_uplinks=[("eth", "10.1.0.2", 10, 0)], replay_window=64)
    net.nodes["a"].events = net.nodes["b"].events = None  # (not kept: a board-sized heap)
    net.run(2000)
    return net, net.nodes["a"].ep.association("b"), net.nodes["b"].ep


def _probe_from(a, b_ep, src, now):
    pkt = wire.seal(a.tx_mac, wire.PROBE, a.peer_label, a.seq, wire.enc_probe(b"\x05" * 8, 0))
    a.seq += 1
    b_ep.receive("wan", src, pkt, now)


def test_at_most_four_observed_addresses_are_kept_the_newest_replacing_the_quietest():
    # a NAT that rebinds every second: the newest mapping is where the peer is now (its
    # packets were refused, too_many_addresses, while the dead ones stayed)
    net, a, b_ep = _up()
    b = b_ep.association("a")
    srcs = [("198.51.100.%d" % (i + 1), 40000 + i) for i in range(10)]
    for i, src in enumerate(srcs):  # a (it holds the keys) sends from ten NAT mappings
        _probe_from(a, b_ep, src, net.now)
        p = b.remotes[src].paths["wan"]
        p.last_ok = net.now + i  # each proved to work once, the later ones later
    observed = [r.addr for r in b.remotes.values() if not r.advertised]
    assert sorted(observed) == sorted(srcs[6:]), observed
    assert b_ep.counters.get("too_many_addresses", 0) == 0
    assert b_ep.counters.get("internal_error", 0) == 0
    assert b.primary is not None and b.primary.raddr == A
    assert len(b.plist) <= 24


def test_the_primarys_observed_address_is_never_the_one_replaced():
    net, a, b_ep = _up()
    b = b_ep.association("a")
    srcs = [("198.51.100.%d" % (i + 1), 40000 + i) for i in range(5)]
    _probe_from(a, b_ep, srcs[0], net.now)
    b.primary = b.remotes[srcs[0]].paths["wan"]  # (the NATed path carries the traffic)
    b.primary.last_ok = 0  # and is the quietest of all
    for i, src in enumerate(srcs[1:]):
        _probe_from(a, b_ep, src, net.now)
        b.remotes[src].paths["wan"].last_ok = net.now + i
    observed = [r.addr for r in b.remotes.values() if not r.advertised]
    assert srcs[0] in observed and srcs[1] not in observed and len(observed) == 4


def test_paths_stop_at_24_whatever_the_lists():
    net, a, b_ep = _up()
    b = b_ep.association("a")
    for k in range(2):  # b gets two more uplinks: 3 x (16 listed + the observed) would be 51
        net.uplink("b", "wan%d" % k, ("10.9.%d.1" % (k + 2), 6278))
    lst = [(("10.1.0.2", 6278), 10, 0)] + [(("10.7.0.%d" % i, 6278), 20, 0) for i in range(1, 16)]
    a.tsn += 1
    pkt = wire.seal(a.tx_mac, wire.SET, a.peer_label, a.seq, wire.enc_set(a.tsn, lst))
    a.seq += 1
    b_ep.receive("wan", A, pkt, net.now)
    assert len(b.peer_list) == 16 and len(b.paths) == 24 == len(b.plist)
    assert b_ep.counters.get("too_many_paths", 0) >= 1
    assert b.primary is not None and b.primary.raddr == A  # the working path stays


def test_a_packet_of_2048_bytes_is_taken_and_one_of_2049_dropped_as_bad_long():
    # (the buffers taken before the handshake, the DATA taken as the runtime does, no copy: two
    # endpoints in 128K on the 64-bit port leave no free 2 KB block after the handshake)
    buf, zeros = bytearray(wire.MAX_PACKET + 1), bytearray(wire.MAX_PACKET + 1 - wire.OVERHEAD)
    net, a, b_ep = _up()
    got = []
    b_ep.on_data = lambda peer, payload, ip, uplink, src: got.append(len(payload))
    for size in (wire.MAX_PACKET, wire.MAX_PACKET + 1):  # DATA, authentic: only the size is wrong
        body = memoryview(zeros)[: size - wire.OVERHEAD]
        assert wire.seal(a.tx_mac, wire.DATA, a.peer_label, a.seq, body, None, buf) == size
        a.seq += 1
        b_ep.receive("wan", A, memoryview(buf)[:size], net.now)
    assert b_ep.counters.get("bad_long") == 1, b_ep.counters
    assert got == [wire.MAX_PAYLOAD]


def _set_from(a, b_ep, entries, now):
    """a's SET with this list, the count byte written by hand (enc_addrs refuses 17 entries)."""
    body = bytearray(wire.enc_tsn(a.tsn + 1)) + bytes([len(entries)])
    for addr, prio, cost in entries:
        body += wire.enc_sockaddr(addr) + bytes([prio, cost])
    a.tsn += 1
    b_ep.receive("wan", A, wire.seal(a.tx_mac, wire.SET, a.peer_label, a.seq, body), now)
    a.seq += 1


def test_an_address_list_of_17_entries_or_with_port_0_is_malformed():
    net, a, b_ep = _up()
    b = b_ep.association("a")
    tsn = b.peer_tsn
    mine = [(A, 10, 0)]
    others = [(("10.7.0.%d" % i, 6278), 20, 0) for i in range(1, 17)]
    _set_from(a, b_ep, mine + others, net.now)  # 17 entries
    _set_from(a, b_ep, mine + others[:14] + [(("10.7.0.99", 0), 20, 0)], net.now)  # 16, one port 0
    assert b_ep.counters.get("malformed") == 2, b_ep.counters
    assert b.peer_tsn == tsn and len(b.peer_list) == 1  # neither applied
    _set_from(a, b_ep, mine + others[:15], net.now)  # 16 entries, ports not 0: taken
    assert b_ep.counters.get("malformed") == 2 and b.peer_tsn == a.tsn and len(b.peer_list) == 16
