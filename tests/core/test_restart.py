# An initiator whose peer lost the association (runtime/restart.py): a server that crashed
# and came back answers none of the old association's probes, and the initiator used to wait
# out its whole outage budget (300 s, measured with two mastd) before a new INIT. Here the
# two cores run on the simulated network (simnet.py) with the RestartWatch stepped as the
# runtime's loop steps it (driver.py run_timers; tests/host/test_runtime_restart.py runs that).

import gc

from simnet import Node, config, pair1, established, Stream, count_received
from rng import Rng
from mast.endpoint import Endpoint

from runtime.restart import RestartWatch, RESTART_MS


class Watcher:
    """RestartWatch.step for node a every 100 ms of simulated time (a simnet app); most: the
    most attempts it had at once."""

    def __init__(self, net, peers=("b",), limit=None):
        self.net = net
        self.w = RestartWatch(list(peers), limit)
        self.next = net.now
        self.most = 0

    def tick(self, now):
        self.w.step(self.net.nodes["a"].ep, now)
        self.most = max(self.most, len(self.w.attempts))
        self.next = now + 100


def _up():
    net = pair1()
    net.run(net.now + 2000)
    assert established(net)
    w = Watcher(net)
    net.apps.append(w)
    return net, w, net.nodes["a"], net.nodes["a"].ep.association("b")


def _restart_b(net, name="b"):
    """b's process dies (no SHUT) and starts again: new secrets, no association, same address."""
    link = net.link(name, "wan")
    link.node = net.nodes[name] = None  # (the old one's heap back first)
    gc.collect()
    ep = Endpoint(config(name, ["a"]), Rng(name + "-restarted"))
    n = Node(net, name, ep)
    net.nodes[name] = n
    ep.direct_send(n.send)
    link.node = n
    ep.uplink_up("wan", link.addr, net.now)
    net.flush()


def _kinds(node, kind):
    return [(t, e) for t, e in node.events if e.kind == kind]


def test_a_peer_that_lost_the_association_gets_a_new_one_within_seconds_not_the_outage_budget():
    net, w, A, old = _up()
    crash = net.now
    _restart_b(net)
    net.run(crash + RESTART_MS + 5000)
    new = A.ep.association("b")
    assert new is not old and new.state == 2 and old.state == 5
    assert [e.reason for t, e in _kinds(A, "association_closed")] == ["replaced"]
    ups = _kinds(A, "association_up")
    assert len(ups) == 2 and crash + RESTART_MS <= ups[-1][0] < crash + RESTART_MS + 5000, ups
    assert net.nodes["b"].ep.association("a").state == 2 and w.w.attempts == {}
    s = Stream(net, "a", rate=20)  # and data flows on the new one
    net.run(net.now + 1000)
    s.stop()
    net.run(net.now + 100)
    assert count_received(net.nodes["b"]) >= s.seq - 1, (s.seq, count_received(net.nodes["b"]))


def test_without_the_watch_it_waits_out_the_outage_budget():
    # the baseline the watch shortens (the core alone, as a board runs it)
    net = pair1()
    net.run(net.now + 2000)
    A = net.nodes["a"]
    old = A.ep.association("b")
    _restart_b(net)
    net.run(net.now + RESTART_MS + 5000)
    assert A.ep.association("b") is old and old.primary is None


def test_an_outage_of_the_network_keeps_the_association_and_drops_the_attempt_unseen():
    net, w, A, old = _up()
    net.link("b", "wan").cut = True  # b hears nothing: no INIT gets an answer
    net.run(net.now + RESTART_MS + 5000)
    assert old.primary is None and "b" in w.w.attempts
    attempt = w.w.attempts["b"]
    net.link("b", "wan").cut = False
    net.drop = lambda src, dst, data: data[1] == 1  # its INITs lost: the old paths answer first
    net.run(net.now + 20000)
    net.drop = None
    net.run(net.now + 3000)
    assert A.ep.association("b") is old and old.primary is not None and w.w.attempts == {}
    assert attempt.state == 5 and A.ep.assocs.get(attempt.label) is None
    assert _kinds(A, "association_closed") == [] and len(_kinds(A, "association_up")) == 1
    assert net.nodes["b"].ep.association("a") is not None


def test_an_attempt_never_reports_a_timeout_while_the_old_association_waits():
    # the peer stays away for minutes: attempts come and go, no event says so, and the old
    # one closes at its outage budget as before (then the attempt is the peer's)
    net, w, A, old = _up()
    net.link("b", "wan").cut = True
    net.run(net.now + 299000)
    assert _kinds(A, "association_closed") == [] and A.ep.association("b") is old
    net.run(net.now + 5000)
    assert [e.reason for t, e in _kinds(A, "association_closed")] == ["outage"]
    assert A.ep.association("b") is not None and A.ep.association("b") is not old
    net.link("b", "wan").cut = False
    net.run(net.now + 40000)
    assert A.ep.association("b").state == 2 and net.nodes["b"].ep.association("a").state == 2


def test_a_peer_a_new_configuration_removes_takes_its_attempt_with_it():
    net, w, A, old = _up()
    net.link("b", "wan").cut = True
    net.run(net.now + RESTART_MS + 5000)
    attempt = w.w.attempts["b"]
    A.ep.reconfigure(config("a", {}), net.now)  # b is no longer a peer
    net.run(net.now + 200000)  # (simnet fails the test on a core internal error)
    assert w.w.attempts == {} and attempt.state == 5 and attempt.label not in A.ep.assocs
    assert A.ep.association("b") is old and old.state == 3  # (shutting: SHUT_SENT)
    assert _kinds(A, "association_closed") == [] and len(_kinds(A, "association_up")) == 1
