# A new address carries no data until it has answered a challenge, addresses not validated
# get no more than the peer's own packets earn (3x an address list, then 1x), and NAT is
# discovered and kept open.

import simnet
from simnet import pair, Stream, count_received
from mast import wire, policy


def _b(net):
    return net.nodes["b"].ep.association("a")


def test_a_new_address_gets_only_probes_until_it_answers_a_challenge():
    net = pair(a_uplinks=[("eth", "10.1.0.2", 10, 0)])
    net.run(2000)
    b = _b(net)
    # a announces a second address that (for now) does not answer at all
    net.uplink("a", "wifi", ("10.2.0.2", 6278), delay=1, priority=20)
    net.link("a", "wifi").cut = True
    s = Stream(net, "b", rate=50)  # b has data to send the whole time
    net.run(net.now + 3000)
    p = b.paths[("wan", ("10.2.0.2", 6278))]
    assert p.state in (0, 3)  # unverified, then failed: never active
    assert p.tx >= 1 and p.tx <= 4, p.tx  # a few PROBEs, one per RTO, then backoff
    # every DATA went to the validated address
    assert b.primary.raddr == ("10.1.0.2", 6278)
    # once it answers, it is validated and may carry data
    net.link("a", "wifi").cut = False
    net.run(net.now + 12000)
    s.stop()
    assert p.state == 1 and p.srtt is not None


def _sent(net, pick):
    """From now on, pick(node, uplink, dst, data) of each packet sent, where it is not None:
    -> that list."""
    got = []
    transmit = net.transmit

    def spy(n, uplink, dst, data):
        x = pick(n.name, uplink, dst, data)
        if x is not None:
            got.append(x)
        transmit(n, uplink, dst, data)

    net.transmit = spy
    return got


def _victim_bytes(net, victims):
    """Record what b sends to the addresses in victims: -> list of packet lengths."""
    return _sent(net, lambda node, u, dst, data: len(data) if node == "b" and dst in victims else None)


def test_a_set_aimed_at_third_parties_gets_them_at_most_three_times_its_size():
    # issue 15.4: a peer (it holds the keys) lists 15 addresses it does not own; b may probe
    # them, but in all it sends them no more than 3x the SET, and only what later packets
    # from the peer earn after that (1x)
    net = pair(a_uplinks=[("eth", "10.1.0.2", 10, 0)])
    net.run(2000)
    a = net.nodes["a"].ep.association()
    victims = [("198.51.100.%d" % i, 6278) for i in range(1, 16)]
    sent = _victim_bytes(net, victims)
    lst = [(("10.1.0.2", 6278), 10, 0)] + [(v, 20, 0) for v in victims]
    a.tsn += 1
    pkt = wire.seal(a.tx_mac, wire.SET, a.peer_label, a.seq, wire.enc_set(a.tsn, lst))
    a.seq += 1
    net.nodes["b"].ep.receive("wan", ("10.1.0.2", 6278), pkt, net.now)
    net.flush()
    net.run(net.now + 300)
    assert 0 < sum(sent) <= 3 * len(pkt), (sum(sent), len(pkt))
    got_from_a = []
    receive = net.nodes["b"].ep.receive

    def count_in(uplink, src, data, now):
        got_from_a.append(len(data))
        receive(uplink, src, data, now)

    net.nodes["b"].ep.receive = count_in
    net.run(net.now + 30000)
    assert sum(sent) <= 3 * len(pkt) + sum(got_from_a), (sum(sent), len(pkt), sum(got_from_a))
    assert net.nodes["b"].ep.counters.get("tx_amplification_limit", 0) >= 1


def _credit_max():
    """The saved maximum of docs/PROTOCOL.md section 9.4 ("a saved maximum of N bytes"), read
    from the document: the rule the code keeps."""
    for line in open("docs/PROTOCOL.md"):
        i = line.find("a saved maximum of ")
        if i >= 0:
            return int(line[i + 19 :].split()[0])
    raise AssertionError("no saved maximum in docs/PROTOCOL.md")


def test_however_much_the_peer_sends_unvalidated_addresses_get_at_most_the_saved_maximum():
    # section 9.4: each authenticated packet earns its size, but only up to a saved maximum:
    # after 100 KB of DATA, b sends the third parties a SET listed no more than that maximum
    # until the peer's next packet earns more
    payload = bytes(2000)  # (big blocks first: a small heap)
    buf = bytearray(wire.HEADER_LEN + len(payload) + wire.TAG_LEN)  # each DATA sealed in it
    net = pair(a_uplinks=[("eth", "10.1.0.2", 10, 0)])
    net.run(2000)
    a = net.nodes["a"].ep.association()
    b_ep = net.nodes["b"].ep
    got = [0]

    def on_data(peer, body, ip, uplink, src):  # (as the runtime takes DATA: no copy)
        got[0] += len(body)

    b_ep.on_data = on_data
    victims = [("198.51.100.%d" % i, 6278) for i in range(1, 5)]
    lst = [(("10.1.0.2", 6278), 10, 0)] + [(v, 20, 0) for v in victims]
    a.tsn += 1
    pkt = wire.seal(a.tx_mac, wire.SET, a.peer_label, a.seq, wire.enc_set(a.tsn, lst))
    a.seq += 1
    net.link("a", "eth").cut = True  # from now on b hears from a only what the test hands it
    b_ep.receive("wan", ("10.1.0.2", 6278), pkt, net.now)
    net.flush()
    net.run(net.now + 300)  # (the SET's own 3x is spent on its first probes)
    for i in range(50):  # 100 KB of DATA from a, at once
        wire.seal(a.tx_mac, wire.DATA, a.peer_label, a.seq, payload, into=buf)
        a.seq += 1
        b_ep.receive("wan", ("10.1.0.2", 6278), buf, net.now)
        net.run(net.now)  # (what is due now: on a board-sized heap, garbage collected first)
    assert got[0] == 50 * len(payload), (got, b_ep.counters)
    payload = buf = None  # (their room, for what follows)
    sent = _victim_bytes(net, victims)
    limited = b_ep.counters.get("tx_amplification_limit", 0)
    net.run(net.now + 30000)
    assert sum(sent) <= _credit_max(), (sum(sent), _credit_max())
    assert b_ep.counters.get("tx_amplification_limit", 0) > limited  # (what it saved ran out)


def test_an_address_seen_only_as_a_source_is_answered_but_not_trusted():
    net = pair(a_uplinks=[("eth", "10.1.0.2", 10, 0)], direct=False)  # (the test reads b's queue)
    net.run(2000)
    b_ep = net.nodes["b"].ep
    b = _b(net)
    a = net.nodes["a"].ep.association()
    # a genuine, authenticated PROBE arrives from an address b never heard of (NAT rebinding)
    pkt = wire.seal(a.tx_mac, wire.PROBE, a.peer_label, a.seq, wire.enc_probe(b"\x01" * 8, 0))
    a.seq += 1
    src = ("198.51.100.200", 1234)
    out_before = len(b_ep.out)
    b_ep.receive("wan", src, pkt, net.now)
    r = b.remotes[src]
    assert not r.validated and not r.advertised
    sent = [d for u, to, d in b_ep.out[out_before:] if to == src]
    assert [d[1] for d in sent] == [wire.PROBE_ACK] and len(sent[0]) <= len(pkt)
    assert b.primary.raddr == ("10.1.0.2", 6278)  # data stays on the validated path
    b_ep.datagrams_to_send()


def _natted_pair():
    """a behind NAT (public 203.0.113.7:40001) associated with b."""
    net = simnet.Net()
    net.node("a", simnet.config("a", {"b": {"addresses": ["10.9.0.1"]}}))
    net.node("b", simnet.config("b", ["a"]))
    net.uplink("b", "wan", ("10.9.0.1", 6278))
    net.uplink("a", "eth", ("192.168.1.10", 6278), up=False)
    net.set_nat("a", "eth", ("203.0.113.7", 40001))
    net.nodes["a"].ep.uplink_up("eth", ("192.168.1.10", 6278), 0)
    net.nodes["a"].ep.connect("b", 0)
    net.flush()
    net.run(3000)
    assert simnet.established(net)
    return net


def test_nat_is_discovered_and_the_association_keeps_working():
    net = _natted_pair()
    nat = net.events("a", "nat_observed")
    assert len(nat) == 1 and nat[0].observed == "203.0.113.7:40001" and nat[0].local == "192.168.1.10:6278"
    b = _b(net)
    assert b.primary.raddr == ("203.0.113.7", 40001)  # the observed address carries the data
    s = Stream(net, "a", rate=50)
    net.run(net.now + 1000)
    s.stop()
    net.run(net.now + 100)
    assert count_received(net.nodes["b"]) == s.seq
    a = net.nodes["a"].ep.association()
    assert a.paths[("eth", ("10.9.0.1", 6278))].uplink.natted


def _rebind(net, port):
    """a's NAT gives it a new public port; the old mapping is gone (nothing reaches a there)."""
    del net.links[net.link("a", "eth").nat]
    net.set_nat("a", "eth", ("203.0.113.7", port))


def test_after_a_nat_rebinding_the_far_end_moves_its_traffic_to_the_new_mapping_at_once():
    # the far end kept the dead mapping as its primary (the new one, validated in one RTT,
    # had the unknown address's priority): its next datagram to a went nowhere, and it moved
    # only once that traffic had failed the old path
    net = _natted_pair()
    b = _b(net)
    s = Stream(net, "a", rate=50)
    net.run(net.now + 500)
    _rebind(net, 40002)
    net.run(net.now + 1000)  # a keeps streaming: b learns the new mapping
    assert b.primary is not None and b.primary.raddr == ("203.0.113.7", 40002)
    assert ("203.0.113.7", 40001) not in b.remotes  # the dead mapping failed and went
    s.stop()
    back = Stream(net, "b", rate=50)  # now b has something to say
    net.run(net.now + 200)
    back.stop()
    net.run(net.now + 50)
    assert back.seq >= 10 and count_received(net.nodes["a"]) == back.seq  # every one, at once
    assert count_received(net.nodes["b"]) == s.seq  # and a's stream lost nothing


def test_a_nat_that_rebinds_every_second_loses_none_of_the_stream():
    # its live mapping's packets were refused (too_many_addresses) while the dead ones stayed
    net = _natted_pair()
    s = Stream(net, "a", rate=50)
    for k in range(8):
        net.run(net.now + 1000)
        _rebind(net, 40002 + k)
    net.run(net.now + 1000)
    s.stop()
    net.run(net.now + 200)
    b_ep = net.nodes["b"].ep
    assert count_received(net.nodes["b"]) == s.seq
    assert b_ep.counters.get("too_many_addresses", 0) == 0
    assert len([r for r in _b(net).remotes.values() if not r.advertised]) <= 4


def _idle_probe_gaps(natted, run_ms=130000):
    """a's only uplink is metered (cost 5: idle probes every 6 x 5 s = 30 s), behind NAT or
    not; the association stays idle for run_ms -> (a's endpoint, gaps between the PROBEs on
    the one path, from either end)."""
    net = simnet.Net()
    net.keep_log = True
    net.node("a", simnet.config("a", {"b": {"addresses": ["10.9.0.1"]}}))
    net.node("b", simnet.config("b", ["a"]))
    net.uplink("b", "wan", ("10.9.0.1", 6278))
    net.uplink("a", "eth", ("192.168.1.10", 6278), up=False)
    if natted:
        net.set_nat("a", "eth", ("203.0.113.7", 40001))
    ep = net.nodes["a"].ep
    ep.uplink_up("eth", ("192.168.1.10", 6278), 0, 10, 5)
    ep.connect("b", 0)
    net.flush()
    net.run(3000)
    assert simnet.established(net)
    assert ep.uplinks["eth"].natted == natted
    t0 = net.now
    net.run(t0 + run_ms)
    # PROBEs from either end: one end's idle probe makes the other's wait (MAST/1.1)
    # (b's PROBEs to a's private address behind the NAT reach nobody: not on the path)
    sent = [t for t, frm, to, kind in net.log if kind == wire.PROBE and t >= t0 and to is not None]
    return ep, [sent[i + 1] - sent[i] for i in range(len(sent) - 1)]


def test_a_natted_path_is_refreshed_every_nat_refresh_s_even_where_idle_probes_are_rarer():
    ep, gaps = _idle_probe_gaps(True)
    metered = ep.prof["probe"] * policy.METERED_FACTOR
    assert ep.nat_refresh_ms == 25000 and metered == 30000  # so only the NAT refresh explains 25 s
    assert len(gaps) >= 4, gaps
    rto_max = ep.prof["rto_max"]
    for g in gaps:
        assert ep.nat_refresh_ms <= g <= ep.nat_refresh_ms + rto_max, gaps


def test_without_nat_the_same_metered_path_is_probed_every_30_s_then_less_often():
    # no NAT to refresh: the idle interval starts at 6 x probe and doubles while the path
    # answers (MAST/1.1 idle backoff), up to 6 x probe_max
    ep, gaps = _idle_probe_gaps(False, 500000)
    metered = ep.prof["probe"] * policy.METERED_FACTOR
    cap = ep.prof["probe_max"] * policy.METERED_FACTOR
    slack = ep.prof["rto_max"]
    assert len(gaps) >= 3, gaps
    assert metered <= gaps[0], gaps
    for g, h in zip(gaps, gaps[1:]):
        assert min(2 * g, cap) - slack <= h <= min(2 * g, cap) + slack, gaps
    assert gaps[-1] == max(gaps) and gaps[-1] >= 4 * metered - slack, gaps


def test_redundant_mode_puts_no_copy_on_a_path_until_it_has_answered_its_challenge():
    # redundant mode copies each DATA onto the best other ACTIVE path: a new uplink's path,
    # unverified until its PROBE-ACK comes back, gets PROBEs only; once validated, copies too
    net = pair(a_uplinks=[("eth", "10.1.0.2", 10, 0)], mode="redundant")
    net.run(2000)
    a = net.nodes["a"].ep.association()
    wifi = net.uplink("a", "wifi", ("10.2.0.2", 6278), delay=1, up=False)
    wifi.cut = True  # its PROBEs (and b's) vanish for now
    sent = {}  # type -> packets of it a sent on wifi (counts, not a list: a 128K heap)
    transmit = net.transmit

    def spy(n, uplink, dst, data):
        if (n.name, uplink) == ("a", "wifi"):
            sent[data[1]] = sent.get(data[1], 0) + 1
        transmit(n, uplink, dst, data)

    net.transmit = spy
    net.nodes["a"].ep.uplink_up("wifi", ("10.2.0.2", 6278), net.now, 20, 0)
    net.flush()
    p = a.paths[("wifi", ("10.9.0.1", 6278))]
    s = Stream(net, "a", rate=100)
    net.run(net.now + 500)
    assert p.state == policy.UNVERIFIED and a.primary.uplink.name == "eth"
    assert s.seq >= 40 and sent.get(wire.PROBE, 0) >= 1, sent
    assert sent.get(wire.DATA, 0) == 0, sent
    wifi.cut = False  # its next PROBE is answered
    net.run(net.now + 3000)
    s.stop()
    assert p.state == policy.ACTIVE and a.primary.uplink.name == "eth"
    assert sent.get(wire.DATA, 0) >= 1, sent
