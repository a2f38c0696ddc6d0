# How often a path is probed once it has settled (mast/policy.py): an idle path's interval
# doubles up to the profile's probe_max and stays there; a failed path's backoff doubles up to
# failed_max and stays there, so it is found again within that once the network heals.
import simnet
from mast import wire


def _probe_gaps(net, t0, frm="a"):
    sent = [t for t, f, to, kind in net.log if kind == wire.PROBE and t >= t0 and f == frm and to is not None]
    return [sent[i + 1] - sent[i] for i in range(len(sent) - 1)]


def test_an_idle_path_is_probed_at_most_every_probe_max():
    net = simnet.pair1()
    net.keep_log = True
    net.run(net.now + 3000)
    assert simnet.established(net)
    prof = net.nodes["a"].ep.prof
    t0 = net.now
    net.run(t0 + 600000)  # 10 minutes idle: 5, 10, 20, 40 s, then probe_max (60 s) on
    gaps = [t for t, f, to, kind in net.log if kind == wire.PROBE and t >= t0 and to is not None]
    gaps = [gaps[i + 1] - gaps[i] for i in range(len(gaps) - 1)]
    assert len(gaps) >= 8, gaps
    assert max(gaps) <= prof["probe_max"] + prof["rto_max"], gaps


def _failed_path(profile):
    net = simnet.pair1(profile=profile)
    net.keep_log = True
    net.run(net.now + 3000)
    assert simnet.established(net)
    A = net.nodes["a"]
    prof = A.ep.prof
    net.link("b", "wan").cut = True
    t0 = net.now
    net.run(t0 + 200000)  # 200 s: within the outage budget, long past failed_max
    gaps = _probe_gaps(net, t0 + 30000)
    assert len(gaps) >= 10 and max(gaps) <= prof["failed_max"] + prof["rto_max"], gaps
    a = A.ep.association("b")
    assert a.primary is None
    net.link("b", "wan").cut = False
    healed = net.now
    net.run(healed + prof["failed_max"] + 2 * prof["rto_max"])
    assert a.primary is not None and A.ep.association("b") is a


def test_a_failed_path_is_probed_at_least_every_failed_max_and_comes_back_within_it():
    _failed_path("default")


def test_the_same_on_the_fast_profile_whose_probes_wait_its_rto_max_not_a_second():
    # a failed path's probe waits rto_max (fast: 40 ms), not the RTO before any sample (1 s):
    # the path is asked every 5.04 s, and is back within 5.08 s of the network healing
    _failed_path("fast")


DARK = ("10.9.0.99", 6278)  # the peer's second address: nothing gets through there


def test_an_address_that_never_answered_backs_off_to_six_times_failed_max():
    # (a private address behind the peer's NAT answers never: probing it every failed_max
    # would cost as much as an address that worked once and may come back). The peer sends
    # two datagrams a second, which earns the probes their anti-amplification budget
    net = simnet.Net()
    net.node("a", simnet.config("a", {"b": {"addresses": ["10.9.0.1:6278"]}}))
    net.node("b", simnet.config("b", ["a"]))
    net.uplink("b", "wan", ("10.9.0.1", 6278), delay=1)
    net.uplink("b", "lan", DARK, delay=1)
    net.link("b", "lan").cut = True
    net.uplink("a", "eth", ("10.1.0.2", 6278), delay=1)
    sent = []
    transmit = net.transmit

    def spy(n, uplink, dst, data):
        if dst == DARK and data[1] == wire.PROBE:
            sent.append(net.now)
        transmit(n, uplink, dst, data)

    net.transmit = spy
    net.nodes["a"].ep.connect("b", net.now)
    net.flush()
    simnet.Stream(net, "b", rate=2)
    net.run(net.now + 400000)
    prof = net.nodes["a"].ep.prof
    gaps = [sent[i + 1] - sent[i] for i in range(len(sent) - 1)]
    assert gaps[-4:] == [6 * prof["failed_max"] + prof["rto_max"]] * 4, gaps
    assert 10 <= len(sent) <= 15, sent  # (every failed_max: 40)
