# Paths under impairments the clean cuts of test_failover.py do not make (an audit with a link
# emulator found them): a path whose RTT rises past its RTO, and a failback to a path that
# answered once and then died (docs/PROTOCOL.md section 10: "active for `failback` ms").

from mast.policy import ACTIVE
from simnet import pair, Stream, count_received

TWO = [("eth", "10.1.0.2", 10, 0), ("wifi", "10.2.0.2", 20, 0)]


def _up(profile="default"):
    net = pair(a_uplinks=TWO, profile=profile)
    net.run(net.now + 3000)
    return net, net.nodes["a"], net.nodes["a"].ep.association("b")


def _path(a, uplink):
    return [p for p in a.plist if p.uplink.name == uplink][0]


def _failovers(node, since):
    return [e for t, e in node.events if e.kind == "failover" and t >= since]


def _lost(net, s):
    s.stop()
    net.run(net.now + 500)
    return s.seq - count_received(net.nodes["b"])


def _rtt_rises(profile, delay):
    net, A, a = _up(profile)
    wifi = _path(a, "wifi")
    before = wifi.srtt
    net.link("a", "wifi").delay = delay
    net.run(net.now + 60000)  # (before: failed for good: every answer came after its RTO)
    assert wifi.state == ACTIVE and wifi.srtt > before, (wifi.state, before, wifi.srtt)
    s = Stream(net, "a", rate=50)
    net.run(net.now + 1000)
    cut = net.now
    net.link("a", "eth").cut = True
    net.run(net.now + 5000)
    f = _failovers(A, cut)
    assert [e.new.split(">")[0] for e in f] == ["wifi"], f
    assert _lost(net, s) <= 50  # the failover gap: about 0.6 s at 50/s


def test_a_backup_whose_rtt_rises_past_its_rto_comes_back_and_carries_the_traffic():
    _rtt_rises("default", 75)  # RTT ~4 ms -> ~150 ms: above its RTO (100 ms), below rto_max


def test_a_backup_whose_rtt_rises_past_probe_fail_rtos_fails_once_and_comes_back():
    # RTT ~4 ms -> ~400 ms at once: every copy of a probe is answered after probe_fail x RTO (300
    # ms), so the path fails; a failed path's probes wait the initial RTO (1 s), not its old one,
    # so the next answer is in time and it comes back (below rto_max)
    _rtt_rises("default", 200)


def test_the_same_on_the_fast_profile():
    _rtt_rises("fast", 15)  # RTT ~4 ms -> ~30 ms: above its RTO (20 ms), below rto_max (40)


def test_no_failback_to_a_path_that_answered_once_and_died():
    net, A, a = _up()
    s = Stream(net, "a", rate=100)
    net.run(net.now + 1000)
    eth = net.link("a", "eth")
    eth.cut = True
    net.run(net.now + 3000)  # failover to wifi
    eth.cut = False
    up = len([e for t, e in A.events if e.kind == "path_up"])
    for _ in range(3000):  # until eth's first answer brings it up (10 ms steps, 30 s at most)
        net.run(net.now + 10)
        if len([e for t, e in A.events if e.kind == "path_up"]) > up:
            break
    eth.cut = True  # and dies at once
    dead = net.now
    net.run(net.now + 10000)
    assert [e for e in _failovers(A, dead) if e.failback] == []  # (before: back to the dead eth)
    assert count_received(net.nodes["b"]) >= s.seq - 100  # only the first failover's gap lost
    eth.cut = False  # a clean return still fails back, `failback` after it is up again
    back = net.now
    net.run(net.now + 15000)
    f = _failovers(A, back)
    assert [(e.new.split(">")[0], e.failback) for e in f] == [("eth", True)], f
    assert _lost(net, s) <= 100


def test_a_path_that_flaps_faster_than_the_failback_window_never_gets_the_traffic_back():
    net, A, a = _up()
    s = Stream(net, "a", rate=100)
    net.run(net.now + 1000)
    eth = net.link("a", "eth")
    start = net.now
    for i in range(30):  # eth: 1 s down, 1 s up, for a minute
        eth.cut = i % 2 == 0
        net.run(net.now + 1000)
    eth.cut = True
    net.run(net.now + 2000)
    f = _failovers(A, start)
    assert len(f) == 1 and f[0].new.split(">")[0] == "wifi", [(e.new, e.failback) for e in f]
    assert _lost(net, s) <= 100  # (before: ~15 failbacks onto it, a gap each)


def test_a_path_whose_rtt_rises_within_rto_min_loses_no_probe():
    # RTT 4 ms for minutes gives an RTO of a few ms; rto_min (100 ms) is the floor, so a rise to
    # ~80 ms (a Wi-Fi retry burst, a queue filling) is not a lost probe: no suspect, no path_down
    net, A, a = _up()
    wifi = _path(a, "wifi")
    net.run(net.now + 120000)
    t0 = net.now
    net.link("a", "wifi").delay = 40
    net.run(net.now + 60000)
    assert [e.kind for t, e in A.events if t >= t0] == [] and wifi.state == ACTIVE and wifi.lost == 0
    assert A.ep.counters.get("stale_probe_ack", 0) == 0
