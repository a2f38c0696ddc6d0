# The association's life after the handshake: SET, SHUT, DATA, ERR, caller
# misuse and reconfiguration, checked on the packets that cross the simulated wire.

import simnet
from simnet import pair
from mast import wire


NAMES = {5: "SET", 6: "SET-ACK", 9: "SHUT", 10: "SHUT-ACK", 11: "SHUT-COMPLETE"}


def _types(net, frm):
    return [(t, NAMES.get(k, k)) for t, f, to, k in net.log if f == frm]


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
    seq = [(f, NAMES[k]) for t, f, to, k in net.log[n0:] if k in (wire.SHUT, wire.SHUT_ACK, wire.SHUT_COMPLETE)]
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
    assert a.association().nonce == nonce and a.association().ep.prof["ack"] == 20
    assert a.uplinks["cell"].priority == 25
    assert [NAMES.get(k) for t, f, to, k in net.log[n0:] if f == "a"].count("SET") == 1
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
    assert [e.reason for e in net.events("a", "association_closed")] == ["reconfigured"]
    assert a.association("b") is None
    # a new INIT (under the new key) can start at once
    a.connect("b", net.now)
    assert a.association("b").state == 0


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


def test_a_reconfigure_cut_short_by_a_full_heap_is_finished_by_the_next():
    # a MemoryError part way through (a board's heap) leaves the association under the old key;
    # the next reconfigure with the same configuration must still close it, as the first would
    # have: it compares with the configuration from before the one cut short
    from mast.assoc import Association

    net = pair()
    net.run(2000)
    a = net.nodes["a"].ep
    old_assoc = a.association("b")
    cfg = dict(a.cfg)
    cfg["peers"] = {"b": dict(cfg["peers"]["b"], psk="AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=")}
    close = Association.close
    cut = []

    def close_once_out_of_memory(self, now, reason, linger=False):
        if not cut:
            cut.append(reason)
            raise MemoryError("memory allocation failed")
        return close(self, now, reason, linger)

    Association.close = close_once_out_of_memory
    try:
        try:
            a.reconfigure(cfg, net.now)
            assert False, "the MemoryError did not come through"
        except MemoryError:
            pass
    finally:
        Association.close = close
    assert cut == ["reconfigured"] and a.association("b") is old_assoc  # cut: still open
    a.reconfigure(cfg, net.now)  # the same configuration again (a second `apply`)
    net.flush()
    assert [e.reason for e in net.events("a", "association_closed")] == ["reconfigured"]
    assert a.association("b") is None
    net.keep_log = True
    n0 = len(net.log)
    a.reconfigure(cfg, net.now)  # and once done, a third has nothing left to do
    net.flush()
    assert len(net.events("a", "association_closed")) == 1
    assert [k for t, f, to, k in net.log[n0:] if f == "a"] == []  # (not even a SET)
