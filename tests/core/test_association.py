# The association's life: INIT handshake (with losses), SET, SHUT, and the
# retransmission backoff, checked on the packets that cross the simulated wire.

import simnet
from simnet import Net, config, pair, established
from mast import wire
from mast.endpoint import Endpoint


def _types(net, frm):
    return [(t, simnet.NAMES[k]) for t, f, to, k in net.log if f == frm]


def test_handshake_is_init_init_ack_cookie_echo_cookie_ack():
    net = Net()
    net.keep_log = True
    net.node("a", config("a", {"b": {"addresses": ["10.9.0.1"]}}))
    net.node("b", config("b", ["a"]))
    net.uplink("b", "wan", ("10.9.0.1", 6278))
    net.uplink("a", "eth", ("10.1.0.2", 6278))
    net.nodes["a"].ep.connect("b", net.now)
    net.flush()
    net.run(100)
    first = [(f, simnet.NAMES[k]) for t, f, to, k in net.log[:4]]
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
    net = Net()
    net.node("a", config("a", {"b": {"addresses": ["10.9.0.1"]}}))
    net.node("b", config("b", ["a"]))
    net.uplink("b", "wan", ("10.9.0.1", 6278))
    net.uplink("a", "eth", ("10.1.0.2", 6278))
    net.drop = lambda s, d, data: data[1] == wire.COOKIE_ECHO  # the cookie never returns
    net.nodes["a"].ep.connect("b", net.now)
    net.flush()
    net.run(60000)
    b = net.nodes["b"].ep
    assert b.assocs == {} and b.by_peer == {}
    # it did answer INITs (a started over after its COOKIE-ECHOs went unanswered)
    assert b.counters.get("accepted", 0) >= 2


def test_init_ack_is_never_larger_than_the_init():
    net = Net()
    net.keep_log = True
    sizes = []
    net.node("a", config("a", {"b": {"addresses": ["10.9.0.1"]}}))
    net.node("b", config("b", ["a"]))
    net.uplink("b", "wan", ("10.9.0.1", 6278))
    net.uplink("a", "eth", ("10.1.0.2", 6278))

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
    before = len(b.out)
    short = wire.header(wire.INIT, 0, 0) + bytes(wire.MIN_INIT - 12 - 17)
    b.receive("wan", ("10.1.0.2", 6278), short, net.now)
    assert len(b.out) == before and b.counters["short_init"] == 1


def test_handshake_survives_lost_init_acks():
    net = Net()
    net.keep_log = True
    net.node("a", config("a", {"b": {"addresses": ["10.9.0.1"]}}))
    net.node("b", config("b", ["a"]))
    net.uplink("b", "wan", ("10.9.0.1", 6278))
    net.uplink("a", "eth", ("10.1.0.2", 6278))
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
    net = Net()
    net.keep_log = True
    net.node("a", config("a", {"b": {"addresses": ["10.9.0.1"]}}))
    net.node("b", config("b", ["a"]))
    net.uplink("b", "wan", ("10.9.0.1", 6278))
    net.uplink("a", "eth", ("10.1.0.2", 6278))
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


def test_set_carries_the_complete_new_list_and_is_acknowledged():
    net = pair()
    net.keep_log = True
    net.run(2000)
    net.renumber("a", "wifi", ("10.2.0.77", 6278), priority=20)
    net.run(net.now + 2000)
    changed = net.events("b", "addresses_changed")[-1]
    assert sorted(changed.addresses) == ["10.1.0.2:6278", "10.2.0.77:6278", "10.3.0.2:6278"]
    b = net.nodes["b"].ep.association("a")
    assert ("10.2.0.2", 6278) not in b.remotes
    assert net.nodes["a"].ep.association().req is None  # SET-ACK arrived
    # b validated the new address before using it: PROBE-ACK from it
    p = b.paths[("wan", ("10.2.0.77", 6278))]
    assert p.state == 1 and p.srtt is not None


def test_set_is_retransmitted_until_acknowledged():
    net = pair()
    net.keep_log = True
    net.run(2000)
    lost = [2]

    def drop(s, d, data):
        if data[1] == wire.SET and lost[0]:
            lost[0] -= 1
            return True
        return False

    net.drop = drop
    t0 = net.now
    net.renumber("a", "cell", ("10.3.0.99", 6278), priority=30, cost=10)
    net.run(net.now + 5000)
    sets = [t - t0 for t, k in _types(net, "a") if k == "SET"]
    assert len(sets) == 3, sets
    assert sets[1] - sets[0] < sets[2] - sets[1]  # backing off
    assert net.nodes["a"].ep.association().req is None
    assert "10.3.0.99:6278" in net.events("b", "addresses_changed")[-1].addresses


def test_shut_is_a_three_way_close():
    net = pair()
    net.keep_log = True
    net.run(2000)
    n0 = len(net.log)
    net.nodes["a"].ep.close(net.now)
    net.flush()
    net.run(net.now + 5000)
    seq = [(f, simnet.NAMES[k]) for t, f, to, k in net.log[n0:] if k in (wire.SHUT, wire.SHUT_ACK, wire.SHUT_COMPLETE)]
    assert seq == [("a", "SHUT"), ("b", "SHUT-ACK"), ("a", "SHUT-COMPLETE")]
    assert [e.reason for e in net.events("a", "association_closed")] == ["shut"]
    assert [e.reason for e in net.events("b", "association_closed")] == ["peer_shut"]
    assert net.nodes["a"].ep.assocs == {} and net.nodes["b"].ep.assocs == {}


def test_shut_completes_when_the_shut_complete_is_lost():
    net = pair()
    net.keep_log = True
    net.run(2000)
    lost = [1]

    def drop(s, d, data):
        if data[1] == wire.SHUT_COMPLETE and lost[0]:
            lost[0] -= 1
            return True
        return False

    net.drop = drop
    net.nodes["a"].ep.close(net.now)
    net.flush()
    net.run(net.now + 5000)
    # b repeated its SHUT-ACK; a, lingering, answered with a second SHUT-COMPLETE
    assert [k for t, k in _types(net, "a")].count("SHUT-COMPLETE") == 2
    assert [e.reason for e in net.events("b", "association_closed")] == ["peer_shut"]
    assert net.nodes["b"].ep.assocs == {}


def test_data_flows_both_ways_with_payload_intact():
    net = pair()
    net.run(2000)
    a, b = net.nodes["a"].ep, net.nodes["b"].ep
    assert a.send_data(b"hello from a", net.now)
    assert b.send_data(b"\x00\xffbinary", net.now, peer="a")
    net.flush()
    net.run(net.now + 50)
    assert [p for t, p in net.nodes["b"].payloads] == [b"hello from a"]
    assert [p for t, p in net.nodes["a"].payloads] == [b"\x00\xffbinary"]


def test_ip_data_is_refused_with_err_by_an_endpoint_that_takes_no_ip():
    net = pair()
    net.run(2000)
    net.nodes["a"].ep.send_data(b"\x45" + bytes(27), net.now, ip=True)
    net.flush()
    net.run(net.now + 50)
    assert net.nodes["b"].payloads == []
    assert net.nodes["b"].ep.counters["unsupported"] == 1
    errs = net.events("a", "peer_error")
    assert len(errs) == 1 and errs[0].code == wire.ERR_UNSUPPORTED


def test_caller_misuse_raises_clear_errors():
    net = pair()
    net.run(2000)
    a = net.nodes["a"].ep
    for call, words in (
        (lambda: a.send_data(b"x", net.now, peer="nobody"), "unknown peer"),
        (lambda: a.send_data(_Big(), net.now), "larger than"),
        (lambda: a.connect("nobody", net.now), "unknown peer"),
        (lambda: a.uplink_down("nope", net.now), "no uplink"),
        (lambda: a.uplink_up("x", ("10.0.0.300", 1), net.now), "IPv4"),
    ):
        try:
            call()
            assert False, "no error for %s" % words
        except ValueError as e:
            assert words in str(e), str(e)


class _Big:
    """Stands for a payload too large for a datagram, without allocating it."""

    def __len__(self):
        return 70000


def test_an_association_that_used_up_its_sequence_numbers_closes():
    net = pair()
    net.run(2000)
    a = net.nodes["a"].ep
    a.association().seq = wire.SEQ_MAX  # as after 2^48 packets
    assert not a.send_data(b"x", net.now)
    net.flush()
    assert [e.reason for e in net.events("a", "association_closed")] == ["exhausted"]


def test_reconfigure_keeps_the_association_and_announces_new_uplink_hints():
    net = pair()
    net.keep_log = True
    net.run(2000)
    a = net.nodes["a"].ep
    nonce = a.association().nonce
    cfg = dict(a.cfg)
    cfg["profile"] = "fast"
    cfg["uplinks"] = {"cell": {"priority": 25, "cost": 10}}  # still behind eth (10)
    n0 = len(net.log)
    a.reconfigure(cfg, net.now)
    net.flush()
    net.run(net.now + 1000)
    assert a.association().nonce == nonce and a.association().prof["ack"] == 20
    assert a.uplinks["cell"].priority == 25
    assert [simnet.NAMES[k] for t, f, to, k in net.log[n0:] if f == "a"].count("SET") == 1
    assert net.events("a", "association_closed") == []
    b = net.nodes["b"].ep.association()
    assert [r.prio for addr, r in b.remotes.items() if addr[0] == "10.3.0.2"] == [25]


def test_reconfigure_with_a_new_key_closes_the_old_association():
    net = pair()
    net.run(2000)
    a = net.nodes["a"].ep
    cfg = dict(a.cfg)
    cfg["peers"] = {"b": dict(cfg["peers"]["b"], psk="AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=")}
    a.reconfigure(cfg, net.now)
    net.flush()
    net.run(net.now + 2000)
    assert [e.reason for e in net.events("a", "association_closed")] == ["shut"]
    assert [e.reason for e in net.events("b", "association_closed")] == ["peer_shut"]


def test_reconfigure_with_a_bad_config_changes_nothing():
    net = pair()
    net.run(2000)
    a = net.nodes["a"].ep
    before = a.cfg
    try:
        a.reconfigure(dict(before, replay_window=1000), net.now)
        assert False, "accepted a bad config"
    except ValueError as e:
        assert str(e).startswith("replay_window: ")
    assert a.cfg is before and a.association().state == 2
