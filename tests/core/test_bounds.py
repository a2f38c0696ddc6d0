# What one peer can make a host hold (docs/PROTOCOL.md 9.1, issue 15.1): at most 4 source
# addresses learnt from packets beside its 16 listed ones, and at most 24 paths. A packet beyond
# is still authenticated and counted, never stored.

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
