# After a failover: failback with hysteresis, redundant mode, resend_ms, link
# down, and a total outage with recovery, on the simulated clock.

import simnet
from simnet import Stream, pair, count_received, tally, cut_and_measure


def _failovers(net, node="a"):
    return net.events(node, "failover")


def test_failback_waits_for_hysteresis():
    net, s, gap, lost, dups, t0 = cut_and_measure("default", run_ms=2000)
    net.nodes["b"].counts = simnet.Counts()  # count the second stream alone
    s2 = Stream(net, "a", rate=10)
    t_restore = net.now
    net.link("a", "eth").cut = False
    net.run(net.now + 20000)
    s2.stop()
    net.run(net.now + 100)
    f = _failovers(net)
    assert len(f) == 2, f
    back = f[1]
    assert back.failback and back.new.startswith("eth>") and back.old.startswith("wifi>")
    t_back = [t for t, e in net.nodes["a"].events if e is back][0]
    ups = [t for t, e in net.nodes["a"].events if e.kind == "path_up" and e.path == back.new and t >= t_restore]
    assert ups, "eth path never came back up"
    # not before the path had been up for the whole hysteresis time
    assert t_back - ups[0] >= 2000, (t_back, ups[0])
    # and no data was lost at failback
    t = tally(net.nodes["b"], s2.seq)
    assert all(t[i] == 1 for i in range(s2.seq))


def test_redundant_mode_loses_nothing_and_delivers_each_datagram_once():
    net, s, gap, lost, dups, t0 = cut_and_measure("default", mode="redundant")
    assert lost == [] and dups == []
    assert count_received(net.nodes["b"]) == s.seq
    # the second copies really were sent, and dropped by the receiver as duplicates
    assert net.nodes["b"].ep.counters.get("duplicate", 0) > 50


def test_resend_ms_resends_the_unacknowledged_data_on_the_new_path_at_failover():
    net, s, gap, lost, dups, t0 = cut_and_measure("default", resend_ms=700, run_ms=2000, rate=50)
    assert lost == [] and dups == []  # re-sent copies of delivered data were dropped
    # only DATA the old path's feedback did not cover went again: what was sent in the
    # gap, and at most one feedback interval (100 ms) before it
    resent_dups = net.nodes["b"].ep.counters.get("duplicate", 0)
    assert 0 < resent_dups <= 100 // s.period + 1, resent_dups


def test_total_outage_then_recovery_on_a_new_address_keeps_the_association():
    net = pair(a_uplinks=[("eth", "10.1.0.2", 10, 0)])
    net.run(net.now + 2000)
    a = net.nodes["a"].ep
    nonce = a.association("b").nonce
    a.uplink_down("eth", net.now)
    net.flush()
    s = Stream(net, "a", rate=50)
    net.run(net.now + 10000)  # ten seconds with no address at all
    assert a.association("b").primary is None
    assert s.accepted == 0 and s.seq > 400  # nothing could be sent
    # the uplink comes back with another address: SET, probes, and data flows again
    n_before = s.seq
    net.uplink("a", "eth2", ("10.4.0.9", 6278), delay=1)
    net.run(net.now + 3000)
    s.stop()
    net.run(net.now + 100)
    assert a.association("b").nonce == nonce
    assert len(net.events("a", "association_up")) == 1
    assert len(net.events("b", "association_up")) == 1
    t = tally(net.nodes["b"], s.seq)
    assert sum(t[n_before:]) > 100 and max(t) == 1
    changed = net.events("b", "addresses_changed")
    assert changed[-1].addresses == ["10.4.0.9:6278"]
    # b's data to a goes to the new address too
    s2 = Stream(net, "b", rate=50)
    net.run(net.now + 1000)
    s2.stop()
    assert count_received(net.nodes["a"]) >= 45


def test_outage_longer_than_outage_s_closes_the_association():
    net = pair(a_uplinks=[("eth", "10.1.0.2", 10, 0)], outage_s=10)
    net.run(net.now + 2000)
    net.nodes["a"].ep.uplink_down("eth", net.now)
    net.run(net.now + 9000)
    assert net.events("a", "association_closed") == []
    net.run(net.now + 2000)
    closed = net.events("a", "association_closed")
    assert len(closed) == 1 and closed[0].reason == "outage"


def test_link_down_fails_over_at_once():
    net = pair()
    net.run(net.now + 2000)
    s = Stream(net, "a", rate=100)
    net.run(net.now + 500)
    t0 = net.now
    net.nodes["a"].ep.uplink_down("eth", net.now)
    net.flush()
    net.run(net.now + 500)
    s.stop()
    net.run(net.now + 100)
    f = _failovers(net)
    assert len(f) == 1 and f[0].new.startswith("wifi>")
    assert [t for t, e in net.nodes["a"].events if e is f[0]][0] == t0
    t = tally(net.nodes["b"], s.seq)
    assert all(t[i] == 1 for i in range(s.seq))  # a known link-down loses nothing


def test_both_ends_move_and_resume_after_learning_the_new_address_out_of_band():
    # "double jump": each end loses every address and comes back on a new one; a
    # learns b's new address (as presence would tell it) and the same association resumes
    net = pair(a_uplinks=[("eth", "10.1.0.2", 10, 0)])
    net.run(net.now + 2000)
    a, b = net.nodes["a"].ep, net.nodes["b"].ep
    nonces = (a.association().nonce, b.association().nonce)
    a.uplink_down("eth", net.now)
    b.uplink_down("wan", net.now)
    net.flush()
    net.run(net.now + 3000)
    net.uplink("b", "wan2", ("10.8.0.1", 6278), delay=1)
    net.uplink("a", "eth2", ("10.4.0.9", 6278), delay=1)
    net.run(net.now + 3000)
    assert a.association().primary is None  # a still only knows b's old address
    assert a.add_peer_addresses("b", [("10.8.0.1", 6278)], net.now) == 1
    net.flush()
    net.run(net.now + 3000)
    assert (a.association().nonce, b.association().nonce) == nonces  # no new INIT
    assert a.association().primary.raddr == ("10.8.0.1", 6278)
    assert b.association().primary.raddr == ("10.4.0.9", 6278)
    s = Stream(net, "a", rate=50)
    net.run(net.now + 1000)
    s.stop()
    net.run(net.now + 100)
    assert count_received(net.nodes["b"]) == s.seq
    assert len(net.events("a", "association_up")) == 1


def test_after_a_long_outage_the_far_end_can_send_again_at_once():
    # b's path to a failed during the outage and backs off its probes (up to 10 s);
    # the first authenticated packet from a on it must bring it back now, not then
    net = pair(a_uplinks=[("eth", "10.1.0.2", 10, 0)])
    net.run(net.now + 2000)
    a, b = net.nodes["a"].ep, net.nodes["b"].ep
    a.uplink_down("eth", net.now)
    net.link("a", "eth").cut = True
    net.run(net.now + 20000)
    assert b.association("a").primary is None
    net.link("a", "eth").cut = False
    t0 = net.now
    a.uplink_up("eth", ("10.1.0.2", 6278), net.now, priority=10)  # back: a probes at once
    net.flush()
    s = Stream(net, "a", rate=50)  # and has something to say
    while b.association("a").primary is None and net.now < t0 + 15000:
        net.run(net.now + 10)
    s.stop()
    assert b.association("a").primary is not None
    assert net.now - t0 <= 1500, net.now - t0
    assert b.send_data(b"back", net.now, peer="a")


def test_an_out_of_band_address_that_had_failed_is_probed_again_at_once():
    net = pair(a_uplinks=[("eth", "10.1.0.2", 10, 0)])
    net.run(net.now + 2000)
    a = net.nodes["a"].ep
    net.link("b", "wan").cut = True  # b unreachable for a while: a's path fails, backs off
    net.run(net.now + 20000)
    p = a.association().paths[("eth", ("10.9.0.1", 6278))]
    assert p.state == 3 and p.probe_due > net.now + 1000  # failed, next probe far off
    net.link("b", "wan").cut = False
    t0 = net.now
    assert a.add_peer_addresses("b", [("10.9.0.1", 6278, 0, 0)], net.now) == 0  # known
    net.flush()
    while a.association().primary is None and net.now < t0 + 15000:
        net.run(net.now + 10)
    assert net.now - t0 <= 500, net.now - t0


def test_an_address_learnt_out_of_band_gets_one_probe_until_it_answers():
    # an address from presence or DNS is vouched for by that source for one PROBE only: with
    # nothing else saved up (the peer silent, its credit spent), a silent address gets one
    # PROBE and no more, however long it stays silent
    net = pair(a_uplinks=[("eth", "10.1.0.2", 10, 0)])
    net.run(net.now + 2000)
    a = net.nodes["a"].ep
    net.link("b", "wan").cut = True  # b falls silent: nothing earns a more credit
    silent = ("10.8.0.1", 6278)  # (nothing there answers)
    sent = []
    transmit = net.transmit

    def spy(n, uplink, dst, data):
        if n.name == "a" and dst == silent:
            sent.append(len(data))
        transmit(n, uplink, dst, data)

    net.transmit = spy
    a.association().credit = 0  # spent
    assert a.add_peer_addresses("b", [silent], net.now) == 1
    net.flush()
    net.run(net.now + 30000)
    assert len(sent) == 1 and sent[0] <= 55, sent  # one PROBE: header, 27-byte body, tag
