# Requests and closing, beyond test_association.py and test_protocol11.py (modules at the
# edge of the 128K heap of the MicroPython runs): a SET while closing, a SET that goes
# unanswered for minutes, a pending SET at failover, the TSNs that SHUT and SET-ACK carry,
# ERR 2's rate, and what the caller's close and send do while an association ends.

from simnet import Net, config, pair, up1, established, packet_log
from mast import wire


def _tsn(data):
    return wire.parse(data)[3][:4]


def test_an_uplink_change_while_shutting_down_does_not_stop_the_shut():
    # the first SHUT is lost; an uplink changes before its retransmission: the SET that change
    # would send must not take the SHUT's place (the peer answers it with ERR 3 and nothing
    # would be outstanding any more: shut-sent for ever)
    net = pair()
    net.run(2000)
    lost = [1]

    def drop(s, d, data):
        if data[1] == wire.SHUT and lost[0]:
            lost[0] = 0
            return True
        return False

    net.drop = drop
    net.nodes["a"].ep.close(net.now)
    net.flush()
    net.renumber("a", "cell", ("10.3.0.99", 6278), priority=30, cost=10)
    net.run(net.now + 10000)
    assert [e.reason for e in net.events("a", "association_closed")] == ["shut"]
    assert [e.reason for e in net.events("b", "association_closed")] == ["peer_shut"]


def test_a_set_is_retransmitted_for_as_long_as_it_goes_unanswered():
    # section 9.3: until answered (the interval stops growing at 30 s); the association lives on
    net = pair()
    net.run(2000)
    sets = []  # (only a's SET times: a log of every packet for 600 s would take the heap)

    def drop(s, d, data):
        if data[1] != wire.SET:
            return False
        if s == "a":
            sets.append(net.now)
        return True

    net.drop = drop
    t0 = net.now
    net.renumber("a", "cell", ("10.3.0.99", 6278), priority=30, cost=10)
    net.run(t0 + 600000)
    assert established(net) and net.events("a", "association_closed") == []
    assert len(sets) >= 20 and sets[-1] > t0 + 570000, (len(sets), sets[-3:])
    net.drop = None
    net.run(net.now + 31000)
    assert "10.3.0.99:6278" in net.events("b", "addresses_changed")[-1].addresses


def test_a_pending_set_goes_on_the_new_primary_at_failover():
    net = pair()
    net.run(2000)
    net.link("a", "eth").cut = True  # silently: an idle association finds out by probing
    net.renumber("a", "cell", ("10.3.0.99", 6278), priority=30, cost=10)  # the SET goes on eth
    net.run(net.now + 30000)
    f = [t for t, e in net.nodes["a"].events if e.kind == "failover"]
    got = [t for t, e in net.nodes["b"].events
           if e.kind == "addresses_changed" and "10.3.0.99:6278" in e.addresses]
    assert len(f) == 1 and got, (f, got)
    assert f[0] <= got[0] <= f[0] + 20, (f, got)


def test_shut_and_set_ack_carry_the_right_tsns():
    # SHUT takes the next TSN after the last SET's; each SHUT-ACK names the SHUT it answers
    # (both ends closing at once); a SET-ACK names the SET it answers (a late older copy)
    net, a, b = up1(direct=False)
    held = []

    def hold(s, d, data):
        if data[1] == wire.SET and not held:
            held.append(bytes(data))
            return True
        return False

    net.drop = hold
    net.renumber("a", "eth", ("10.1.0.2", 6278), priority=11)
    net.run(net.now + 3000)  # its retransmission is answered
    net.renumber("a", "eth", ("10.1.0.2", 6278), priority=12)
    net.run(net.now + 3000)
    B = net.nodes["b"].ep
    B.receive("wan", ("10.1.0.2", 6278), held[0], net.now)
    acks = [d for u, to, d in B.out if d[1] == wire.SET_ACK]
    assert len(acks) == 1 and _tsn(acks[0]) == _tsn(held[0])
    net.flush()
    seen = packet_log(net, (wire.SET, wire.SHUT, wire.SHUT_ACK))
    last_set = (a.tsn).to_bytes(4, "big")
    net.nodes["a"].ep.close(net.now)
    B.close(net.now)
    net.flush()
    net.run(net.now + 2000)
    shut = {src: _tsn(d) for t, src, k, d in seen if k == wire.SHUT}
    ack = {src: _tsn(d) for t, src, k, d in seen if k == wire.SHUT_ACK}
    assert shut["a"] == (int.from_bytes(last_set, "big") + 1).to_bytes(4, "big")
    assert ack == {"b": shut["a"], "a": shut["b"]}, (shut, ack)
    assert [e.reason for e in net.events("a", "association_closed")] == ["shut"]


def test_err_2_answers_data_ip_at_most_once_a_second():
    net, a, b = up1()
    A = net.nodes["a"].ep
    for i in range(10):
        A.send_data(b"\x45" + bytes(39), net.now, ip=True)
        net.flush()
        net.run(net.now + 10)
    net.run(net.now + 1500)
    for i in range(5):  # a second burst: one more ERR 2, not one each
        A.send_data(b"\x45" + bytes(39), net.now, ip=True)
        net.flush()
        net.run(net.now + 10)
    net.run(net.now + 100)
    errs = net.events("a", "peer_error")
    assert [(e.code, e.tsn) for e in errs] == [(wire.ERR_UNSUPPORTED, 0)] * 2, errs
    assert net.nodes["b"].ep.counters.get("unsupported", 0) == 15


def test_uplink_up_with_nothing_changed_sends_no_set():
    net = pair()
    net.run(2000)
    net.keep_log = True
    net.nodes["a"].ep.uplink_up("wifi", ("10.2.0.2", 6278), net.now, priority=20, cost=0)
    net.flush()
    net.run(net.now + 1000)
    assert [k for t, f, to, k in net.log if k == wire.SET] == []


def test_close_of_one_peer_leaves_the_others():
    net = Net()
    net.node("a", config("a", {"b": {"addresses": ["10.9.0.1"]}, "c": {"addresses": ["10.9.0.3"]}}))
    net.node("b", config("b", ["a"]))
    net.node("c", config("c", ["a"]))
    net.uplink("b", "wan", ("10.9.0.1", 6278))
    net.uplink("c", "wan", ("10.9.0.3", 6278))
    net.uplink("a", "eth", ("10.1.0.2", 6278))
    A = net.nodes["a"].ep
    A.connect("b", 0)
    A.connect("c", 0)
    net.flush()
    net.run(1000)
    A.close(net.now, "b")
    net.flush()
    net.run(net.now + 2000)
    assert A.association("b") is None and A.association("c").state == 2
    assert net.events("c", "association_closed") == []


def test_send_after_close_and_without_a_path_is_refused_and_counted():
    net, a, b = up1()
    A = net.nodes["a"].ep
    A.uplink_down("eth", net.now)
    net.flush()
    assert A.send_data(b"x", net.now) is False and A.counters.get("tx_no_path") == 1
    A.uplink_up("eth", ("10.1.0.2", 6278), net.now)
    net.run(net.now + 1000)
    assert A.send_data(b"x", net.now) is True
    A.close(net.now)  # shut-sent: no more DATA
    net.flush()
    assert A.send_data(b"y", net.now) is False and A.counters.get("tx_no_association") == 1
    net.run(net.now + 1000)
    assert [p for t, p in net.nodes["b"].payloads] == [b"x"]
