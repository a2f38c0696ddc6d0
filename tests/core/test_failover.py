# Failure detection and failover, driven by the simulated clock. The "gap" is
# measured from the network's side: from the moment a link is cut to the first
# datagram sent after the cut that reaches the peer, exactly as the profiles
# are specified in docs/PROTOCOL.md.

import simnet
from simnet import Stream, pair, count_received, tally, cut_and_measure

WRAP30 = (1 << 30) - 700
WRAP32 = (1 << 32) - 700


def _failovers(net, node="a"):
    return net.events(node, "failover")


def test_default_profile_fails_over_within_800ms_of_a_silent_cut():
    net, s, gap, lost, dups, t0 = cut_and_measure("default")
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
    net, s, gap, lost, dups, t0 = cut_and_measure("fast")
    assert gap <= 150, gap
    assert len(_failovers(net)) == 1
    assert dups == [] and all(t0 <= s.sent_at(q) <= t0 + gap for q in lost)


def _across_a_wrap(start):
    net, s, gap, lost, dups, t0 = cut_and_measure("default", start=start)
    assert net.now > start + 4000  # the run crossed the wrap point
    assert gap <= 800, (start, gap)
    assert len(_failovers(net)) == 1 and dups == []


def test_failover_works_with_the_clock_just_below_2_to_the_30():
    _across_a_wrap(WRAP30)  # where a board's ticks_ms wraps


def test_failover_works_with_the_clock_just_below_2_to_the_32():
    _across_a_wrap(WRAP32)  # where 32-bit arithmetic would break


def test_no_failover_on_a_single_lost_packet():
    net = pair()
    net.run(net.now + 2000)
    net.nodes["b"].counts = None  # (101 s of stream: what arrived is not the point here)
    s = Stream(net, "a", rate=100)
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
        net.run(net.now + 25000)  # idle probes back off (5, 10, 20 s): room for one of each
        assert left[0] == 0, "no packet of type %d was sent to lose" % kind
    s.stop()
    assert _failovers(net) == []
    assert net.events("a", "path_down") == []


def test_a_burst_then_silence_costs_a_few_packets_and_no_suspicion():
    net = pair()
    net.keep_log = True
    net.run(net.now + 3000)
    n0 = len(net.log)
    a = net.nodes["a"].ep
    for i in range(5):  # a short burst, then nothing for ten seconds
        a.send_data(b"burst %d" % i, net.now)
        net.run(net.now + 2)
    net.run(net.now + 10000)
    sent = [(f, {13: "KEEPALIVE"}.get(k, k)) for t, f, to, k in net.log[n0:]]
    # b's feedback covers the tail of the burst (one KEEPALIVE at once, one owed)
    assert sent.count(("b", "KEEPALIVE")) == 2, sent
    # so a never suspects the path: apart from the burst, only idle probes of the alternates
    assert len([x for x in sent if x[0] == "a"]) <= 5 + 8, sent
    assert all(p.state == 1 for p in a.association().paths.values())
    assert _failovers(net) == []
