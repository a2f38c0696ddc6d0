# A restart attempt (runtime/restart.py: a new INIT beside an association that lost every
# path) is keyed from the peer's key when its INIT-ACK comes. If that key changes (set_peer,
# reconfigure: an operator rotating a key that leaked) while the attempt waits for its
# COOKIE-ACK, the attempt must not come up as the peer's association under the old key: the
# old association is closed for that reason ("reconfigured"), and so must the attempt be.
# Before, whoever held the old key (the peer, or a thief who answered the INIT and held the
# COOKIE-ACK back) got an association keyed from it after the key was changed.

from simnet import Node, config, pair1, established, PSK
from rng import Rng
from mast.endpoint import Endpoint

from runtime.restart import RestartWatch, RESTART_MS

NEW_PSK = "ZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXp7fH1+f4CBgoM="
COOKIE_ECHO = 3


class Watcher:
    """RestartWatch.step for node a every 100 ms (as test_restart.py)."""

    def __init__(self, net):
        self.net = net
        self.w = RestartWatch(["b"], None)
        self.next = net.now

    def tick(self, now):
        self.w.step(self.net.nodes["a"].ep, now)
        self.next = now + 100


def _restart_b(net):
    link = net.link("b", "wan")
    ep = Endpoint(config("b", ["a"]), Rng("b-restarted"))  # b still holds the old key
    n = Node(net, "b", ep)
    net.nodes["b"] = n
    ep.direct_send(n.send)
    link.node = n
    ep.uplink_up("wan", link.addr, net.now)
    net.flush()


def _attempt_waiting_for_its_cookie_ack():
    net = pair1()
    net.run(net.now + 2000)
    assert established(net)
    w = Watcher(net)
    net.apps.append(w)
    _restart_b(net)
    net.drop = lambda src, dst, data: data[1] == COOKIE_ECHO  # held back
    end = net.now + RESTART_MS + 5000
    while net.now < end and not ("b" in w.w.attempts and w.w.attempts["b"].state == 1):
        net.run(net.now + 100)
    attempt = w.w.attempts["b"]
    assert attempt.state == 1  # COOKIE-ECHOED: keyed from PSK
    return net, w, attempt


def test_a_key_changed_while_an_attempt_waits_for_its_cookie_ack_leaves_no_association_under_the_old_key():
    net, w, attempt = _attempt_waiting_for_its_cookie_ack()
    A = net.nodes["a"]
    A.ep.set_peer("b", {"psk": NEW_PSK, "addresses": ["10.9.0.1:6278"]}, net.now)
    net.flush()
    net.drop = None  # the COOKIE-ECHO gets through: b, with the old key, answers it
    net.run(net.now + 10000)
    # the holder of the old key sends data on what it has (b: an association with a)
    B = net.nodes["b"].ep
    if B.association("a") is not None and B.association("a").state == 2:
        B.send_data(b"under the old key", net.now, "a")
        net.flush()
        net.run(net.now + 100)
    assert A.payloads == []
    a = A.ep.association("b")
    assert a is None or a.state != 2, "an association keyed from the old key came up"
    assert attempt.state == 5 and attempt.label not in A.ep.assocs and w.w.attempts == {}


def test_an_attempt_whose_key_stayed_comes_up_as_before():
    net, w, attempt = _attempt_waiting_for_its_cookie_ack()
    A = net.nodes["a"]
    A.ep.set_peer("b", {"psk": PSK, "addresses": ["10.9.0.1:6278"]}, net.now)  # the same key
    net.drop = None
    net.run(net.now + 10000)
    assert A.ep.association("b") is attempt and attempt.state == 2
    assert net.nodes["b"].ep.send_data(b"hello", net.now, "a")
    net.flush()
    net.run(net.now + 100)
    assert [p for t, p in A.payloads] == [b"hello"]


def test_a_reload_with_a_new_key_drops_the_attempt_before_another_packet_is_read():
    # mastd's reload: reconfigure, then restart.watch, then the loop reads packets again; a
    # COOKIE-ACK read then must find no attempt keyed from the old key
    from runtime import restart

    net, w, attempt = _attempt_waiting_for_its_cookie_ack()
    A = net.nodes["a"]

    class Rt:  # what watch uses of the runtime (driver.Runtime)
        initiated = ["b"]
        restarts = w.w
        ep = A.ep

    A.ep.reconfigure(config("a", {"b": {"addresses": ["10.9.0.1:6278"], "psk": NEW_PSK}}), net.now)
    restart.watch(Rt, ["b"], net.now)
    assert attempt.state == 5 and attempt.label not in A.ep.assocs and w.w.attempts == {}
