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


def test_a_failed_path_is_probed_at_least_every_failed_max_and_comes_back_within_it():
    net = simnet.pair1()
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
