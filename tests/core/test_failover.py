# Failure detection, failover, failback, redundant mode and total outage,
# driven by the simulated clock. The "gap" is measured from the network's side:
# from the moment a link is cut to the first datagram sent after the cut that
# reaches the peer, exactly as the profiles are specified in docs/PROTOCOL.md.

import simnet
from simnet import Stream, pair, received, count_received, tally, established

WRAP30 = (1 << 30) - 700
WRAP32 = (1 << 32) - 700


def _cut_and_measure(profile, start=0, mode="failover", run_ms=3000, rate=100, **kw):
    net = pair(start=start, profile=profile, mode=mode, **kw)
    net.run(net.now + 2000)
    assert established(net)
    s = Stream(net, "a", rate=rate)
    net.run(net.now + 1000)
    t0 = net.now
    net.link("a", "eth").cut = True
    net.run(net.now + run_ms)
    s.stop()
    net.run(net.now + 100)
    first = None
    for seq, sent, recv in received(net.nodes["b"]):
        if sent > t0 and (first is None or recv < first):
            first = recv
    assert first is not None, "nothing delivered after the cut"
    t = tally(net.nodes["b"], s.seq)
    lost = [i for i in range(s.seq) if t[i] == 0]
    dups = [i for i in range(s.seq) if t[i] > 1]
    return net, s, first - t0, lost, dups, t0


def _failovers(net, node="a"):
    return net.events(node, "failover")


def test_default_profile_fails_over_within_800ms_of_a_silent_cut():
    net, s, gap, lost, dups, t0 = _cut_and_measure("default")
    assert gap <= 800, gap
    f = _failovers(net)
    assert len(f) == 1 and f[0].old.startswith("eth>") and f[0].new.startswith("wifi>"), f
    assert not f[0].failback
    # in failover mode exactly the datagrams sent during the gap are lost, once each
    assert lost and dups == []
    assert all(t0 <= s.sent_at(q) <= t0 + gap for q in lost), lost
    # after the gap, delivery is normal: every later datagram arrived
    assert [q for q in lost if s.sent_at(q) > t0 + gap] == []
    down = net.events("a", "path_down")
    assert [e.path for e in down] == [f[0].old]


def test_fast_profile_fails_over_within_150ms():
    net, s, gap, lost, dups, t0 = _cut_and_measure("fast")
    assert gap <= 150, gap
    assert len(_failovers(net)) == 1
    assert dups == [] and all(t0 <= s.sent_at(q) <= t0 + gap for q in lost)


def test_failover_works_with_clocks_just_below_the_wrap_points():
    # A board's ticks wrap at 2**30; 32-bit arithmetic would break at 2**32.
    for start in (WRAP30, WRAP32):
        net, s, gap, lost, dups, t0 = _cut_and_measure("default", start=start)
        assert net.now > start + 4000  # the run crossed the wrap point
        assert gap <= 800, (start, gap)
        assert len(_failovers(net)) == 1


def test_no_failover_on_a_single_lost_packet():
    net = pair()
    net.nodes["b"].record = False  # only events matter here
    net.run(net.now + 2000)
    s = Stream(net, "a", rate=100, record=False)
    net.run(net.now + 1000)
    # lose exactly one packet of each kind the detection depends on, one after another
    for kind in (simnet.wire.DATA, simnet.wire.KEEPALIVE, simnet.wire.PROBE, simnet.wire.PROBE_ACK):
        left = [1]

        def drop(src, dst, data, kind=kind, left=left):
            if data[1] == kind and left[0]:
                left[0] -= 1
                return True
            return False

        net.drop = drop
        net.run(net.now + 6000)
        assert left[0] == 0, "no %s was sent to lose" % simnet.NAMES[kind]
    s.stop()
    assert _failovers(net) == []
    assert net.events("a", "path_down") == []


def test_failback_waits_for_hysteresis():
    net, s, gap, lost, dups, t0 = _cut_and_measure("default", run_ms=2000)
    n0 = count_received(net.nodes["b"])
    s2 = Stream(net, "a", rate=25)
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
    t = tally(net.nodes["b"], s2.seq, n0)
    assert all(t[i] == 1 for i in range(s2.seq))


def test_redundant_mode_loses_nothing_and_delivers_each_datagram_once():
    net, s, gap, lost, dups, t0 = _cut_and_measure("default", mode="redundant")
    assert lost == [] and dups == []
    assert count_received(net.nodes["b"]) == s.seq
    # the second copies really were sent, and dropped by the receiver as duplicates
    assert net.nodes["b"].ep.counters.get("duplicate", 0) > 50


def test_resend_ms_resends_recent_data_on_the_new_path_at_failover():
    net, s, gap, lost, dups, t0 = _cut_and_measure("default", resend_ms=700, run_ms=2000, rate=50)
    assert lost == [] and dups == []  # re-sent copies of delivered data were dropped
    assert net.nodes["b"].ep.counters.get("duplicate", 0) > 0


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
    for i in range(s.seq):
        assert not s.ok[i]  # nothing could be sent
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
