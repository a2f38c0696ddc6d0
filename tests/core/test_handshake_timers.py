# The handshake's schedule and what it carries, beyond test_handshake.py and
# test_handshake_more.py (modules at the edge of the 128K heap of the MicroPython runs): how
# many INITs, to which (uplink, address) pair, a connect that names new addresses, a close
# while connecting, the lists and first probes each side sends once it is up.

from simnet import Net, config, pair, established
from mast import wire


def _one(log=True, **peer):
    """a (one uplink, eth) with peer b configured (peer: b's section), b not there yet."""
    net = Net()
    net.keep_log = log
    net.node("a", config("a", {"b": peer or {"addresses": ["10.9.0.1"]}}))
    net.uplink("a", "eth", ("10.1.0.2", 6278))
    return net


def _sent(net, frm, kind, after=0):
    return [t for t, f, to, k in net.log if f == frm and k == kind and t >= after]


def test_init_goes_eleven_times_and_the_attempt_ends_30_s_after_the_last():
    # section 8.1: INIT, retransmitted 10 times (1 s doubling, capped at 30 s), then the
    # attempt ends (`timeout`) when the last one's 30 s are up
    net = _one()
    net.nodes["a"].ep.connect("b", 0)
    net.flush()
    net.run(400000)
    inits = _sent(net, "a", wire.INIT)
    assert len(inits) == 11, inits
    closed = [t for t, e in net.nodes["a"].events if e.kind == "association_closed"]
    assert closed == [inits[-1] + 30000], (closed, inits[-1])


def test_each_init_retransmission_goes_to_the_next_address():
    # the peer's first address is dead: the retransmission after 1 s tries the second
    net = _one(addresses=["10.9.9.9", "10.9.0.1"])
    net.node("b", config("b", ["a"]))
    net.uplink("b", "wan", ("10.9.0.1", 6278))
    net.nodes["a"].ep.connect("b", 0)
    net.flush()
    net.run(1100)
    assert established(net)


def test_the_first_init_goes_from_the_best_uplink():
    net = Net()
    net.node("a", config("a", {"b": {"addresses": ["10.9.0.1"]}}))
    net.uplink("a", "cell", ("10.3.0.2", 6278), priority=30)
    net.uplink("a", "eth", ("10.1.0.2", 6278), priority=10)
    net.uplink("a", "wifi", ("10.2.0.2", 6278), priority=20)
    net.nodes["a"].ep.connect("b", 0)
    net.flush()
    assert [net.link("a", n).sent for n in ("eth", "wifi", "cell")] == [1, 0, 0]


def test_connect_with_new_addresses_reaches_them_within_a_second():
    # the first addresses had no uplink of their family (an IPv6 name, IPv4 uplinks): a
    # second connect with addresses that fit (DNS answered again) is tried at the next retry
    net = _one()
    net.node("b", config("b", ["a"]))
    net.uplink("b", "wan", ("10.9.0.1", 6278))
    A = net.nodes["a"].ep
    A.connect("b", 0, [("2001:db8::1", 6278)])
    net.flush()
    net.run(3500)
    assert _sent(net, "a", wire.INIT) == []
    A.connect("b", net.now, [("10.9.0.1", 6278)])
    net.flush()
    net.run(net.now + 1100)
    assert established(net)


def test_connect_again_while_up_sends_nothing_and_keeps_the_association():
    net = pair()
    net.run(2000)
    net.keep_log = True
    A = net.nodes["a"].ep
    a = A.association("b")
    A.connect("b", net.now)
    net.flush()
    net.run(net.now + 2000)
    assert A.association("b") is a and _sent(net, "a", wire.INIT) == []
    assert net.events("b", "association_closed") == []


def test_close_while_connecting_ends_the_attempt():
    net = _one()
    A = net.nodes["a"].ep
    A.connect("b", 0)
    net.flush()
    net.run(1500)  # two INITs, nobody answers
    A.close(net.now)
    net.flush()
    t = net.now
    net.run(t + 60000)
    assert A.association("b") is None and _sent(net, "a", wire.INIT, t) == []


def _lose_the_first(net, ptype):
    """The network loses the first packet of this type, and no other."""
    lost = [1]

    def drop(s, d, data):
        if data[1] == ptype and lost[0]:
            lost[0] = 0
            return True
        return False

    net.drop = drop


def test_a_retransmitted_cookie_echo_gives_no_rtt_sample():
    # Karn (section 8.1): the first COOKIE-ACK is lost, the answer to the second COOKIE-ECHO
    # could answer either: the path comes up with no RTT
    net = _one(log=False)
    net.node("b", config("b", ["a"]))
    net.uplink("b", "wan", ("10.9.0.1", 6278))
    _lose_the_first(net, wire.COOKIE_ACK)
    net.nodes["a"].ep.connect("b", 0)
    net.flush()
    net.run(1500)
    assert established(net)
    assert [e.rtt_ms for e in net.events("a", "path_up")] == [None]


def _responder_with_two_addresses(lose_cookie_ack):
    net = _one(log=False)
    net.node("b", config("b", ["a"]))
    net.uplink("b", "wan", ("10.9.0.1", 6278))
    net.uplink("b", "wan2", ("10.9.0.2", 6278))
    if lose_cookie_ack:
        _lose_the_first(net, wire.COOKIE_ACK)
    net.nodes["a"].ep.connect("b", 0)
    net.flush()
    net.run(1500)
    assert established(net)
    assert sorted(net.events("a", "addresses_changed")[-1].addresses) == ["10.9.0.1:6278", "10.9.0.2:6278"]
    ups = sorted(e.path for e in net.events("a", "path_up"))
    assert ups == ["eth>10.9.0.1:6278", "eth>10.9.0.2:6278"], ups


def test_cookie_ack_carries_the_responders_whole_list():
    _responder_with_two_addresses(False)


def test_a_cookie_ack_sent_again_carries_the_whole_list_too():
    _responder_with_two_addresses(True)


def test_the_responder_probes_the_initiators_other_addresses_at_once():
    # the COOKIE-ECHO's list may be probed at once (3x its size, section 9.4)
    net = pair()
    net.run(200)
    assert established(net)
    B = net.nodes["b"].ep
    assert B.counters.get("tx_amplification_limit", 0) == 0
    ups = sorted(e.path for e in net.events("b", "path_up"))
    assert ups == ["wan>10.1.0.2:6278", "wan>10.2.0.2:6278", "wan>10.3.0.2:6278"], ups


def test_a_responder_behind_nat_learns_it_from_its_first_probe():
    net = _one(log=False, addresses=["203.0.113.9"])
    net.node("b", config("b", ["a"]))
    net.uplink("b", "wan", ("10.9.0.1", 6278))
    net.set_nat("b", "wan", ("203.0.113.9", 6278))
    net.nodes["a"].ep.connect("b", 0)
    net.flush()
    net.run(100)
    assert established(net)
    nat = net.events("b", "nat_observed")
    assert [(e.local, e.observed) for e in nat] == [("10.9.0.1:6278", "203.0.113.9:6278")]


def test_an_initiator_applies_the_responders_first_set_whatever_its_initial_tsn():
    # the responder's TSN counts on from its initial TSN (INIT-ACK): a SET is newer than that,
    # in serial arithmetic; compared with 0 instead, a TSN past 2^31 looked older and every
    # SET was acknowledged and never applied. Take a start where the TSN is past 2^31.
    for start in range(0, 64000, 1000):
        net = pair(start=start, a_uplinks=[("eth", "10.1.0.2", 10, 0)])
        net.run(start + 500)
        assert established(net)
        if net.nodes["b"].ep.association("a").tsn >= 0x80000000:
            break
    else:
        raise AssertionError("no start with an initial TSN past 2^31")
    net.uplink("b", "wan2", ("10.9.0.2", 6278))
    net.run(net.now + 500)
    assert sorted(net.events("a", "addresses_changed")[-1].addresses) == ["10.9.0.1:6278", "10.9.0.2:6278"]
