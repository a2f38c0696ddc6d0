# A new address carries no data until it has answered a challenge, an address
# seen only as a source gets at most 3x its bytes, and NAT is discovered.

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


def test_an_address_seen_only_as_a_source_gets_at_most_three_times_its_bytes():
    net = pair(a_uplinks=[("eth", "10.1.0.2", 10, 0)])
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
    assert not r.validated and r.rx_bytes == len(pkt)
    sent = [d for u, to, d in b_ep.out[out_before:] if to == src]
    assert sent and sum([len(d) for d in sent]) <= 3 * len(pkt)
    # b also challenges it; everything b sends there stays within 3x until it is validated
    for i in range(20):
        net.now += 1000
        b_ep.handle_timer(net.now)
    sent = [d for u, to, d in b_ep.out[out_before:] if to == src]
    assert sum([len(d) for d in sent]) <= 3 * len(pkt)
    assert b_ep.counters.get("tx_amplification_limit", 0) >= 1
    b_ep.datagrams_to_send()


def test_nat_is_discovered_and_the_association_keeps_working():
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


def _idle_probe_gaps(natted):
    """a's only uplink is metered (cost 5: idle probes every 6 x 5 s = 30 s), behind NAT or
    not; the association stays idle for 130 s -> (a's endpoint, gaps between a's PROBEs)."""
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
    net.run(t0 + 130000)
    sent = [t for t, frm, to, kind in net.log if frm == "a" and kind == wire.PROBE and t >= t0]
    return ep, [sent[i + 1] - sent[i] for i in range(len(sent) - 1)]


def test_a_natted_path_is_refreshed_every_nat_refresh_s_even_where_idle_probes_are_rarer():
    ep, gaps = _idle_probe_gaps(True)
    metered = ep.prof["probe"] * policy.METERED_FACTOR
    assert ep.nat_refresh_ms == 25000 and metered == 30000  # so only the NAT refresh explains 25 s
    assert len(gaps) >= 4, gaps
    rto_max = ep.prof["rto_max"]
    for g in gaps:
        assert ep.nat_refresh_ms <= g <= ep.nat_refresh_ms + rto_max, gaps


def test_without_nat_the_same_metered_path_is_probed_only_every_30_s():
    ep, gaps = _idle_probe_gaps(False)
    metered = ep.prof["probe"] * policy.METERED_FACTOR
    assert len(gaps) >= 3, gaps
    for g in gaps:
        assert metered <= g <= metered + ep.prof["rto_max"], gaps
