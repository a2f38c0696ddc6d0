# The INIT handshake: stateless responder, lost packets, backoff, keys that do
# not match, both sides opening at once, and a peer that restarts.

import simnet
from simnet import Net, config, pair, established
from mast import wire
from mast.endpoint import Endpoint

NAMES = {  # message type names, for readable assertions
    1: "INIT", 2: "INIT-ACK", 3: "COOKIE-ECHO", 4: "COOKIE-ACK", 5: "SET",
    6: "SET-ACK", 7: "PROBE", 8: "PROBE-ACK", 9: "SHUT", 10: "SHUT-ACK",
    11: "SHUT-COMPLETE", 12: "ERR", 13: "KEEPALIVE", 16: "DATA", 17: "DATA-IP",
}


def _two(log=False):
    """a (one uplink, eth) and b (one address, wan), nothing sent yet."""
    net = Net()
    net.keep_log = log
    net.node("a", config("a", {"b": {"addresses": ["10.9.0.1"]}}))
    net.node("b", config("b", ["a"]))
    net.uplink("b", "wan", ("10.9.0.1", 6278))
    net.uplink("a", "eth", ("10.1.0.2", 6278))
    return net


def _types(net, frm):
    return [(t, NAMES[k]) for t, f, to, k in net.log if f == frm]


def test_handshake_is_init_init_ack_cookie_echo_cookie_ack():
    net = _two(log=True)
    net.nodes["a"].ep.connect("b", net.now)
    net.flush()
    net.run(100)
    first = [(f, NAMES[k]) for t, f, to, k in net.log[:4]]
    assert first == [("a", "INIT"), ("b", "INIT-ACK"), ("a", "COOKIE-ECHO"), ("b", "COOKIE-ACK")]
    assert established(net)
    for n, peer in (("a", "b"), ("b", "a")):
        up = net.events(n, "association_up")
        assert len(up) == 1 and up[0].peer == peer
    a, b = net.nodes["a"].ep.association(), net.nodes["b"].ep.association()
    # each side knows the other's label and nonce, and they share keys
    assert a.peer_label == b.label and b.peer_label == a.label
    assert a.peer_nonce == b.nonce and b.peer_nonce == a.nonce
    assert a.nonce != b.nonce


def test_responder_keeps_no_state_until_the_cookie_comes_back():
    net = _two()
    net.drop = lambda s, d, data: data[1] == wire.COOKIE_ECHO  # the cookie never returns
    net.nodes["a"].ep.connect("b", net.now)
    net.flush()
    net.run(60000)
    b = net.nodes["b"].ep
    assert b.assocs == {} and b.by_peer == {}
    # it did answer INITs (a started over after its COOKIE-ECHOs went unanswered)
    assert b.counters.get("accepted", 0) >= 2


def test_init_ack_is_never_larger_than_the_init():
    net = _two(log=True)
    sizes = []

    def watch(s, d, data):
        if data[1] in (wire.INIT, wire.INIT_ACK):
            sizes.append((data[1], len(data)))
        return False

    net.drop = watch
    net.nodes["a"].ep.connect("b", net.now)
    net.flush()
    net.run(100)
    init = [n for t, n in sizes if t == wire.INIT]
    ack = [n for t, n in sizes if t == wire.INIT_ACK]
    assert init and ack and max(ack) <= min(init), sizes
    # and an INIT too short to cover its INIT-ACK gets no answer at all
    b = net.nodes["b"].ep
    before = len(net.log)
    short = wire.header(wire.INIT, 0, 0) + bytes(wire.MIN_INIT - 12 - 17)
    b.receive("wan", ("10.1.0.2", 6278), short, net.now)
    net.flush()
    assert len(net.log) == before and b.counters["short_init"] == 1


def test_handshake_survives_lost_init_acks():
    net = _two(log=True)
    lost = [2]

    def drop(s, d, data):
        if data[1] == wire.INIT_ACK and lost[0]:
            lost[0] -= 1
            return True
        return False

    net.drop = drop
    net.nodes["a"].ep.connect("b", 0)
    net.flush()
    net.run(10000)
    assert established(net)
    inits = [t for t, k in _types(net, "a") if k == "INIT"]
    # INIT at 0, then retransmitted after 1 s and 2 s more (exponential backoff)
    assert inits == [0, 1000, 3000], inits
    assert len(net.events("a", "association_up")) == 1


def test_handshake_survives_a_lost_cookie_ack():
    net = _two(log=True)
    lost = [1]

    def drop(s, d, data):
        if data[1] == wire.COOKIE_ACK and lost[0]:
            lost[0] -= 1
            return True
        return False

    net.drop = drop
    net.nodes["a"].ep.connect("b", 0)
    net.flush()
    net.run(5000)
    assert established(net)
    assert [k for t, k in _types(net, "a")].count("COOKIE-ECHO") == 2
    # b answered the repeated COOKIE-ECHO from the same association
    assert len(net.nodes["b"].ep.assocs) == 1
    assert len(net.events("b", "association_up")) == 1


def test_init_backoff_doubles_and_gives_up_with_a_timeout_event():
    net = Net()
    net.keep_log = True
    net.node("a", config("a", {"b": {"addresses": ["10.9.0.1"]}}))
    net.uplink("a", "eth", ("10.1.0.2", 6278))  # nobody at 10.9.0.1
    net.nodes["a"].ep.connect("b", 0)
    net.flush()
    net.run(400000)
    inits = [t for t, k in _types(net, "a") if k == "INIT"]
    gaps = [inits[i + 1] - inits[i] for i in range(len(inits) - 1)]
    assert gaps[:5] == [1000, 2000, 4000, 8000, 16000], gaps
    assert max(gaps) == 30000  # capped
    closed = net.events("a", "association_closed")
    assert len(closed) == 1 and closed[0].reason == "timeout"
    assert net.nodes["a"].ep.association("b") is None


def test_wrong_psk_gets_no_answer():
    net = Net()
    net.node("a", config("a", {"b": {"addresses": ["10.9.0.1"], "psk": "A" * 43 + "="}}))
    net.node("b", config("b", ["a"]))
    net.uplink("b", "wan", ("10.9.0.1", 6278))
    net.uplink("a", "eth", ("10.1.0.2", 6278))
    net.nodes["a"].ep.connect("b", 0)
    net.flush()
    net.run(5000)
    b = net.nodes["b"].ep
    assert not established(net)
    assert b.counters["mac"] >= 2 and b.counters.get("accepted", 0) == 0
    assert net.link("b", "wan").sent == 0  # never answered: no oracle


def test_unknown_peer_name_gets_no_answer():
    net = Net()
    net.node("a", config("stranger", {"b": {"addresses": ["10.9.0.1"]}}))
    net.node("b", config("b", ["a"]))
    net.uplink("b", "wan", ("10.9.0.1", 6278))
    net.uplink("a", "eth", ("10.1.0.2", 6278))
    net.nodes["a"].ep.connect("b", 0)
    net.flush()
    net.run(3000)
    assert net.nodes["b"].ep.counters["unknown_peer"] >= 2
    assert net.link("b", "wan").sent == 0


def test_open_keying_establishes_without_a_psk():
    net = Net()
    net.node("a", {"name": "a", "keying": "open", "peers": {"b": {"addresses": ["10.9.0.1"]}}})
    net.node("b", {"name": "b", "keying": "open", "peers": {"a": {}}})
    net.uplink("b", "wan", ("10.9.0.1", 6278))
    net.uplink("a", "eth", ("10.1.0.2", 6278))
    net.nodes["a"].ep.connect("b", 0)
    net.flush()
    net.run(2000)
    assert established(net)


def test_simultaneous_open_ends_in_one_association():
    net = Net()
    net.node("a", config("a", {"b": {"addresses": ["10.9.0.1"]}}))
    net.node("b", config("b", {"a": {"addresses": ["10.1.0.2"]}}))
    net.uplink("b", "wan", ("10.9.0.1", 6278))
    net.uplink("a", "eth", ("10.1.0.2", 6278))
    net.nodes["a"].ep.connect("b", 0)
    net.nodes["b"].ep.connect("a", 0)
    net.flush()
    net.run(5000)
    assert established(net)
    a, b = net.nodes["a"].ep.association(), net.nodes["b"].ep.association()
    assert a.peer_label == b.label and b.peer_label == a.label
    assert a.initiator and not b.initiator  # the smaller name's INIT won


def test_peer_restart_replaces_the_old_association():
    net = pair()
    net.run(2000)
    old = net.nodes["b"].ep.association("a")
    # "a" reboots: a fresh endpoint with the same name and key on the same address
    net.nodes["a"].ep = Endpoint(net.nodes["a"].ep.cfg, simnet.Rng("a-again"))
    net.nodes["a"].ep.uplink_up("eth", ("10.1.0.2", 6278), net.now, priority=10)
    net.nodes["a"].ep.connect("b", net.now)
    net.flush()
    net.run(net.now + 2000)
    new = net.nodes["b"].ep.association("a")
    assert new is not old and new.peer_nonce == net.nodes["a"].ep.association().nonce
    closed = net.events("b", "association_closed")
    assert len(closed) == 1 and closed[0].reason == "replaced"


def test_connect_before_any_uplink_sends_init_as_soon_as_one_comes_up():
    net = Net()
    net.keep_log = True
    net.node("a", config("a", {"b": {"addresses": ["10.9.0.1"]}}))
    net.node("b", config("b", ["a"]))
    net.uplink("b", "wan", ("10.9.0.1", 6278))
    net.nodes["a"].ep.connect("b", 0)  # nowhere to send it yet
    net.flush()
    net.run(2500)
    assert [k for t, k in _types(net, "a")] == []
    net.uplink("a", "eth", ("10.1.0.2", 6278))  # at 2500
    net.run(2600)
    assert _types(net, "a")[0] == (2500, "INIT")  # at once, not at the next retry
    assert established(net)
