# The restart watch (runtime/restart.py) as the runtime drives it (restart.turn, restart.watch:
# driver.py run_timers, mastd's reload), on the simulated network: a close or a shutdown while
# an attempt is in flight, a reload while it watches, and the watch let go once the outage is
# over. (A module of its own: test_restart.py is near the edge of a 128K MicroPython heap.)

import gc
import sys

from simnet import Node, config, pair1, established
from rng import Rng
from mast.endpoint import Endpoint
from mast import wire
from runtime import restart
from runtime.restart import RESTART_MS


def _restart_b(net):
    """b's process dies (no SHUT) and starts again: new secrets, no association, same address
    (test_restart.py's)."""
    link = net.link("b", "wan")
    link.node = net.nodes["b"] = None  # (the old one's heap back first)
    gc.collect()
    ep = Endpoint(config("b", ["a"]), Rng("b-restarted"))
    n = Node(net, "b", ep)
    net.nodes["b"] = n
    ep.direct_send(n.send)
    link.node = n
    ep.uplink_up("wan", link.addr, net.now)
    net.flush()


def _kinds(node, kind):
    return [(t, e) for t, e in node.events if e.kind == kind]


class _Rt:
    """What restart.turn and restart.watch use of the runtime (driver.Runtime)."""

    def __init__(self, peers, ep=None):
        self.initiated = list(peers)
        self.restarts = None
        self.ep = ep  # (watch reads the core's peers' keys)


class Turner:
    """driver.py run_timers' call of restart.turn for node a, every 100 ms (a simnet app)."""

    def __init__(self, net, peers=("b",)):
        self.net = net
        self.rt = _Rt(peers, net.nodes["a"].ep)
        self.next = net.now
        self.lets_go = 0  # how often the watch was let go

    def tick(self, now):
        ep = self.net.nodes["a"].ep
        for peer in self.rt.initiated:
            a = ep.by_peer.get(peer)
            if self.rt.restarts is not None or (a is not None and a.initiator and a.state == 2
                                                and a.primary is None):
                restart.turn(self.rt, ep, now)
                if self.rt.restarts is None:
                    self.lets_go += 1
                break
        self.next = now + 100


def _watched():
    """a and b up, a's runtime stepping the watch, b unreachable long enough for an attempt."""
    net = pair1()
    net.run(net.now + 2000)
    assert established(net)
    A = net.nodes["a"]
    old = A.ep.association("b")
    t = Turner(net)
    net.apps.append(t)
    net.link("b", "wan").cut = True
    net.run(net.now + RESTART_MS + 5000)
    assert t.rt.restarts is not None and list(t.rt.restarts.attempts) == ["b"]
    return net, t, A, old, t.rt.restarts.attempts["b"]


def _inits_from_a(net, since):
    return [x for x in net.log if x[0] >= since and x[1] == "a" and x[3] == wire.INIT]


def test_a_close_while_an_attempt_completes_closes_that_one_too():
    # the peer came back and the attempt's handshake was finishing when the app closed the
    # association (or mastd stopped): the attempt must not take the closed one's place and
    # stay up, with the peer, as if no close had been asked for
    net, t, A, old, attempt = _watched()
    _restart_b(net)
    net.link("b", "wan").cut = False
    for _ in range(100000):  # bounded: until its COOKIE-ECHO is out (the attempt's next INIT)
        if attempt.state == 1:
            break
        net.run(net.now + 1)
    assert attempt.state == 1
    A.ep.close(net.now)
    net.run(net.now + 20000)
    assert A.ep.association("b") is None and net.nodes["b"].ep.association("a") is None
    assert [e.reason for _, e in _kinds(A, "association_closed")] == ["replaced", "shut"]
    assert t.rt.restarts is None and A.ep.assocs == {}


def test_a_shutdown_with_an_attempt_in_flight_leaves_nothing_behind():
    # the peer is still away: the attempt goes unseen, the old association ends after its SHUTs
    # (at the outage budget), and no INIT leaves after the close (no attempt left over to come
    # up later)
    net, t, A, old, attempt = _watched()
    net.keep_log = True
    since = net.now
    A.ep.close(net.now)
    net.run(net.now + 300000)
    assert attempt.state == 5 and old.state == 5 and A.ep.assocs == {}
    assert _inits_from_a(net, since) == [] and t.rt.restarts is None
    assert [e.reason for _, e in _kinds(A, "association_closed")] == ["outage"]  # the old one's


def test_a_reload_that_stops_initiating_to_a_peer_takes_its_attempt_and_watch_with_it():
    # mastd's reload: b is still a peer, but this side no longer initiates to it (it waits for
    # b's INIT): its attempt goes at once, unseen, and no INIT of ours goes to b any more
    net, t, A, old, attempt = _watched()
    net.keep_log = True
    restart.watch(t.rt, [], net.now)
    since = net.now
    net.run(net.now + 200000)  # long enough for attempts to come and go, were it still watched
    assert attempt.state == 5 and _inits_from_a(net, since) == []
    assert _kinds(A, "association_closed") == [] and A.ep.association("b") is old


def test_once_the_peer_is_back_the_watch_is_let_go():
    # (and on MicroPython its module too: a board gets that heap back)
    net, t, A, old, attempt = _watched()
    _restart_b(net)
    net.link("b", "wan").cut = False
    net.run(net.now + 40000)
    assert A.ep.association("b").state == 2 and A.ep.association("b") is not old
    assert t.rt.restarts is None and t.lets_go == 1
    if sys.implementation.name == "micropython":
        assert "runtime.restart" not in sys.modules
