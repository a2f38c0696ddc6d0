"""mastd as initiator when its peer lost the association (firmware/mastd/restart.py): a
concentrator that crashed and came back answers none of the old association's probes, and the
router used to wait out its whole outage budget (300 s, measured with two mastd) before a new
INIT. Here the two cores run on the simulated network (tests/core/simnet.py) with mastd's
RestartWatch stepped as mastd's loop steps it."""

from simnet import Node, config, pair1, established, Stream, count_received
from rng import Rng
from mast.endpoint import Endpoint

from mastd.restart import RestartWatch, RESTART_MS


class Watcher:
    """RestartWatch.step for node a every 100 ms of simulated time (a simnet app)."""

    def __init__(self, net):
        self.net = net
        self.w = RestartWatch(["b"])
        self.next = net.now

    def tick(self, now):
        self.w.step(self.net.nodes["a"].ep, now)
        self.next = now + 100


def _up():
    net = pair1()
    net.run(net.now + 2000)
    assert established(net)
    w = Watcher(net)
    net.apps.append(w)
    return net, w, net.nodes["a"], net.nodes["a"].ep.association("b")


def _restart_b(net):
    """b's process dies (no SHUT) and starts again: new secrets, no association, same address."""
    ep = Endpoint(config("b", ["a"]), Rng("b-restarted"))
    n = Node(net, "b", ep)
    net.nodes["b"] = n
    ep.direct_send(n.send)
    link = net.link("b", "wan")
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


# ---- two real mastd on loopback: the server killed (no SHUT) and started again -------------

import os  # noqa: E402
import signal  # noqa: E402
import time  # noqa: E402

from test_mastd_control import Proc, conf, needs_root, wait_for  # noqa: E402


@needs_root
def test_a_router_reassociates_with_a_concentrator_killed_and_restarted_within_seconds(tmp_path):
    base = 21000 + os.getpid() % 19000
    sconf = conf("server", "router1", base, [("lo", "127.0.0.10", 100)])
    srv = Proc(tmp_path, "srv", sconf)
    rtr = Proc(tmp_path, "rtr", conf("router1", "server", base, [("a", "127.0.0.11", 10)],
                                     "127.0.0.10:%d" % base))
    srv2 = None
    try:
        first = wait_for("association", rtr.assoc)
        srv.p.send_signal(signal.SIGKILL)  # a crash: no SHUT
        srv.p.wait()
        killed = time.monotonic()
        srv2 = Proc(tmp_path, "srv", sconf)  # (the stale control socket is replaced)
        new = wait_for("a new association", lambda: (rtr.assoc() or {}).get("nonce_id") not in
                       (None, first["nonce_id"]) and rtr.assoc(), timeout=RESTART_MS / 1000 + 15)
        took = time.monotonic() - killed
        assert took < RESTART_MS / 1000 + 10, took  # before: the outage budget, 300 s
        assert new["label"] != first["label"]
        closed = [e for e in rtr.status()["events"] if e["event"] == "association_closed"]
        assert [e["reason"] for e in closed] == ["replaced"], closed
        assert srv2.assoc() and srv2.assoc()["nonce_id"] == new["nonce_id"]
    finally:
        rtr.stop()
        srv.stop()
        if srv2 is not None:
            srv2.stop()
