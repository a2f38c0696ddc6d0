# Addresses no one host has (PROTOCOL.md 6.1) in a peer's address list: an IPv4 multicast group,
# 255.0.0.0/8 (the broadcast address), IPv6 multicast (and the unassigned e000::/4 beside it)
# are read as unspecified, which a list may not use
# (a SET with one is answered by ERR 1, an INIT's entry is kept for its index only), so nothing
# is ever sent there. A module of its own: the core test modules are near the edge of the 128K
# heap of the MicroPython runs.

from mast import wire


def test_no_one_host_s_addresses_in_a_list_are_read_as_unspecified_and_the_others_as_sent():
    # (class E, 240.0.0.0 to 254.255.255.255, is taken: Linux lets a host have such an address,
    # and some networks use them as private ones)
    sent = [("224.0.0.251", 5353), ("239.255.255.250", 1900), ("255.255.255.255", 6278),
            ("ff02::fb", 5353), ("ff05::1:3", 547), ("e000::1", 6278),
            ("223.255.255.255", 6278), ("240.0.0.1", 6278), ("254.255.255.255", 6278),
            ("10.1.0.2", 6278), ("ff::1", 6278), ("fe80::1", 6278), ("2001:db8::1", 6278),
            ("dfff::1", 6278), ("f000::1", 6278)]
    tsn, got = wire.dec_set(wire.enc_set(7, [(a, 10, 0) for a in sent]))
    assert tsn == 7
    assert [a for a, _, _ in got] == [
        ("0.0.0.0", 5353), ("0.0.0.0", 1900), ("0.0.0.0", 6278),
        ("::", 5353), ("::", 547), ("::", 6278)] + sent[6:]


def test_a_set_listing_a_broadcast_address_is_refused_with_err_1_and_changes_nothing():
    from simnet import up1

    net, a, b = up1(direct=False)
    B = net.nodes["b"].ep
    B.datagrams_to_send()
    before = sorted(b.remotes)
    lst = [(("10.1.0.2", 6278), 10, 0), (("255.255.255.255", 6278), 20, 0)]
    pkt = wire.seal(a.tx_mac, wire.SET, a.peer_label, a.seq, wire.enc_set(a.tsn + 1, lst))
    a.seq += 1
    B.receive("wan", ("10.1.0.2", 6278), pkt, net.now)
    out = B.datagrams_to_send()
    assert [wire.parse(d)[0] for _, _, d in out] == [wire.ERR]
    assert sorted(b.remotes) == before and ("255.255.255.255", 6278) not in b.remotes


def test_an_uplink_on_a_class_e_address_reaches_the_peer_s_list():
    # (found by h42: read as no host's, its SET was refused with ERR 1, and while that uplink
    # was up no list of this host's was applied again)
    from simnet import up1

    net, a, b = up1()
    A = net.nodes["a"].ep
    net.uplink("a", "lte", ("240.0.0.5", 6278), delay=5)
    net.run(net.now + 3000)
    advertised = [x[0] for x in A.addr_list()]
    assert ("240.0.0.5", 6278) in advertised
    assert sorted(x[0] for x in b.peer_list) == sorted(advertised), (b.peer_list, advertised)
