# Paths after the handshake, beyond test_failover.py, test_recovery.py and test_path_*.py
# (modules at the edge of the 128K heap of the MicroPython runs): the events a path's life
# reports, the feedback that ends a burst, a suspect path that feedback brings back, the
# failback of an idle association and not on RTT alone, the failed backoff of a path that
# failed before, redundant copies on another uplink, an observed address on two uplinks, and
# the bound on addresses learnt out of band.

import simnet
from simnet import Net, config, pair, pair1, up1, packet_log, Stream, cut_and_measure
from mast import wire


def _at(net, node, kind):
    return [(t, e) for t, e in net.nodes[node].events if e.kind == kind]


def test_nat_observed_is_reported_once_not_at_every_probe():
    net = pair1()
    net.set_nat("a", "eth", ("203.0.113.5", 40000))
    net.run(120000)
    nat = net.events("a", "nat_observed")
    assert [(e.uplink, e.observed) for e in nat] == [("eth", "203.0.113.5:40000")], nat


def test_lost_probes_that_do_not_fail_a_path_report_nothing_and_are_not_added_up():
    # a's probes: the 1st answer lost, the 2nd through, the 3rd and 4th lost. Never probe_fail
    # (3) in a row: the path never goes down, and coming back from suspect is no path_up
    net, a, b = up1()
    n = [0]

    def drop(src, dst, data):
        if data[1] == wire.PROBE_ACK and src == "b":
            n[0] += 1
            return n[0] in (1, 3, 4)
        return False

    net.drop = drop
    net.run(net.now + 120000)
    assert n[0] >= 6, n
    assert net.events("a", "path_down") == [] and len(net.events("a", "path_up")) == 1


def test_the_tail_of_a_burst_is_acknowledged_within_the_ack_interval_and_nothing_is_suspect():
    net, a, b = up1()
    seen = packet_log(net, (wire.DATA, wire.KEEPALIVE, wire.PROBE))
    A = net.nodes["a"].ep
    for i in range(3):
        A.send_data(b"burst %d" % i, net.now)
        net.flush()
        net.run(net.now + 5)
    t = net.now
    net.run(t + 1000)
    data = [wire.parse(d)[2] for x, s, k, d in seen if k == wire.DATA]
    fb = [(x, wire.dec_keepalive(wire.parse(d)[3])) for x, s, k, d in seen if k == wire.KEEPALIVE]
    assert fb[-1][1] == data[-1] and fb[-1][0] <= t + 100, (fb, data, t)
    assert [x for x in seen if x[2] == wire.PROBE] == []  # a never suspected its path


def test_fresh_feedback_brings_a_suspect_path_back_without_a_probe_answer():
    # section 6.10: fresh feedback proves the path works now. b's feedback pauses 350 ms
    # (a's path turns suspect) and no PROBE gets through: the feedback that comes again must
    # keep the path, not the lost probes fail it
    net, a, b = up1()
    s = Stream(net, "a", rate=100)
    net.run(net.now + 1000)
    t0 = net.now

    def drop(src, dst, data):
        if data[1] == wire.PROBE:
            return True
        return data[1] == wire.KEEPALIVE and net.now < t0 + 350

    net.drop = drop
    net.run(t0 + 3000)
    s.stop()
    assert net.events("a", "path_down") == [] and a.primary is not None and a.primary.state == 1


def test_failover_reports_how_long_the_old_primary_had_been_silent():
    net, s, gap, lost, dups, t0 = cut_and_measure("default", run_ms=2000)
    f = net.events("a", "failover")
    assert len(f) == 1 and 300 <= f[0].gap_ms <= 1000, f


def test_an_idle_association_fails_back_once_the_better_path_has_been_up_for_failback():
    net = pair()
    net.run(2000)
    net.link("a", "eth").cut = True
    net.run(net.now + 30000)
    assert [e.new[:5] for e in net.events("a", "failover")] == ["wifi>"]
    net.link("a", "eth").cut = False
    net.run(net.now + 30000)
    f = _at(net, "a", "failover")
    up = [t for t, e in _at(net, "a", "path_up") if e.path.startswith("eth>")]
    assert len(f) == 2 and f[1][1].failback and f[1][1].new.startswith("eth>"), f
    assert up[-1] + 2000 <= f[1][0] <= up[-1] + 2100, (up, f)


def test_a_better_rtt_alone_is_no_failback():
    # failback needs better priority and cost (section 10): two equal uplinks, the primary
    # the slower one, and the traffic stays where it is
    net = pair(a_uplinks=[("eth", "10.1.0.2", 10, 0), ("wifi", "10.2.0.2", 10, 0)])
    net.link("a", "eth").delay = 30
    net.run(60000)
    a = net.nodes["a"].ep.association("b")
    assert a.primary.uplink.name == "eth" and net.events("a", "failover") == []


def test_a_path_that_failed_before_is_probed_from_failed_min_again():
    # its backoff starts over once it answers: back 1.5 s after its second failure, it is up
    # again 4 s after it, not after the 10 s the first outage had backed off to
    net = pair()
    net.run(2000)
    wifi = net.link("a", "wifi")
    wifi.cut = True
    net.run(net.now + 60000)
    wifi.cut = False
    net.run(net.now + 15000)
    assert len([1 for t, e in _at(net, "a", "path_up") if e.path.startswith("wifi>")]) == 2
    wifi.cut = True
    for i in range(400):  # until it is down again (its idle probe, 3 lost)
        net.run(net.now + 50)
        down = [t for t, e in _at(net, "a", "path_down") if e.path.startswith("wifi>")]
        if len(down) == 2:
            break
    assert len(down) == 2, down
    net.run(down[1] + 1500)  # its probe at +1 s is lost; the next at +4 s (1 s to time out, 2 s)
    wifi.cut = False
    net.run(net.now + 10000)
    up = [t for t, e in _at(net, "a", "path_up") if e.path.startswith("wifi>")]
    assert len(up) == 3 and up[-1] - down[1] <= 4100, (down, up)


def test_redundant_copies_go_on_another_uplink():
    net = Net()
    net.node("a", config("a", {"b": {"addresses": ["10.9.0.1"]}}, mode="redundant"))
    net.node("b", config("b", ["a"], mode="redundant"))
    net.uplink("b", "wan", ("10.9.0.1", 6278))
    net.uplink("b", "wan2", ("10.9.0.2", 6278))
    net.uplink("a", "eth", ("10.1.0.2", 6278), priority=10)
    net.uplink("a", "wifi", ("10.2.0.2", 6278), priority=20)
    net.nodes["a"].ep.connect("b", 0)
    net.flush()
    net.run(3000)
    eth, wifi = net.link("a", "eth").sent, net.link("a", "wifi").sent
    s = Stream(net, "a", rate=100)
    net.run(net.now + 1000)
    s.stop()
    assert net.link("a", "eth").sent - eth >= 100 and net.link("a", "wifi").sent - wifi >= 100


def test_an_observed_address_on_two_uplinks_survives_one_of_them_failing():
    # b behind NAT: a knows it only as the observed 203.0.113.9, from eth and from wifi
    net = Net()
    net.node("a", config("a", {"b": {"addresses": ["203.0.113.9"]}}))
    net.node("b", config("b", ["a"]))
    net.uplink("b", "wan", ("10.9.0.1", 6278))
    net.set_nat("b", "wan", ("203.0.113.9", 6278))
    net.uplink("a", "eth", ("10.1.0.2", 6278), priority=20)
    net.uplink("a", "wifi", ("10.2.0.2", 6278), priority=10)
    net.nodes["a"].ep.connect("b", 0)
    net.flush()
    net.run(3000)
    net.link("a", "eth").cut = True
    net.run(net.now + 30000)
    down = [e.path for e in net.events("a", "path_down") if "203.0.113.9" in e.path]
    assert down == ["eth>203.0.113.9:6278"], down
    s = Stream(net, "a", rate=50)
    net.run(net.now + 1000)
    s.stop()
    net.run(net.now + 100)
    assert simnet.count_received(net.nodes["b"]) == s.seq


def test_addresses_learnt_out_of_band_are_bounded():
    net, a, b = up1()
    A = net.nodes["a"].ep
    n = 0
    for k in range(4):
        n += A.add_peer_addresses("b", [("10.77.%d.%d" % (k, i), 6278) for i in range(16)], net.now)
    assert n == 16 + 4 - 1, n  # (b's own address is the one a had)


def test_a_path_that_answers_probes_but_loses_data_is_probed_once_per_send_timeout():
    # DATA lost (too large for the path, say), probes answered: each answer ends the suspicion
    # and the send timeout starts again with the next DATA, so a PROBE every 300 ms or so,
    # not one every round trip
    net, a, b = up1()
    seen = packet_log(net, (wire.PROBE,))
    net.drop = (lambda base: lambda s, d, data: data[1] == wire.DATA or base(s, d, data))(net.drop)
    s = Stream(net, "a", rate=100)
    net.run(net.now + 2000)
    s.stop()
    probes = [x for x in seen if x[1] == "a"]
    assert 3 <= len(probes) <= 10, len(probes)
