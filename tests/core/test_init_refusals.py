# Who may start an association (PROTOCOL.md sections 4 and 8): the keying of an INIT must
# match the responder's (`keying_mismatch`, no answer), and with open keying, where names are
# not authenticated, a second association for a name that has an established association is
# refused (`name_in_use`) instead of replacing it, for as long as that association lives
# (through an outage too, until outage_s closes it).

from simnet import Net, config
from mast import wire
from mast.crypto import Mac, hkdf

A_ADDR = ("10.1.0.2", 6278)
B_ADDR = ("10.9.0.1", 6278)


def _b_only(cfg):
    net = Net(direct=False)  # (b's packets queued: the tests read them)
    net.node("b", cfg)
    net.uplink("b", "wan", B_ADDR)
    return net, net.nodes["b"].ep


def _init(key, keying, name="a"):
    body = wire.pad_init(wire.enc_init(0x0A000001, bytes(range(16)), 7, keying, name, [(A_ADDR, 10, 0)]))
    return wire.seal(Mac(key), wire.INIT, 0, 0, body)


def test_a_psk_host_does_not_answer_an_init_that_says_open_keying():
    net, b = _b_only(config("b", ["a"]))  # psk
    k_init = b.init_mac("a")  # the right key: only the keying field is wrong
    body = wire.pad_init(wire.enc_init(0x0A000001, bytes(range(16)), 7, wire.KEYING_OPEN, "a", [(A_ADDR, 10, 0)]))
    b.receive("wan", A_ADDR, wire.seal(k_init, wire.INIT, 0, 0, body), 0)
    assert b.counters.get("keying_mismatch", 0) == 1, b.counters
    assert b.datagrams_to_send() == [] and b.assocs == {}
    # the same INIT saying psk is answered
    body = wire.pad_init(wire.enc_init(0x0A000001, bytes(range(16)), 7, wire.KEYING_PSK, "a", [(A_ADDR, 10, 0)]))
    b.receive("wan", A_ADDR, wire.seal(k_init, wire.INIT, 0, 0, body), 0)
    out = b.datagrams_to_send()
    assert len(out) == 1 and out[0][2][1] == wire.INIT_ACK


def test_an_open_host_does_not_answer_an_init_that_says_psk():
    net, b = _b_only({"name": "b", "keying": "open", "peers": {"a": {}}})
    open_key = hkdf(b"", b"", b"mast1 init", 32)
    b.receive("wan", A_ADDR, _init(open_key, wire.KEYING_PSK), 0)
    assert b.counters.get("keying_mismatch", 0) == 1, b.counters
    assert b.datagrams_to_send() == [] and b.assocs == {}
    b.receive("wan", A_ADDR, _init(open_key, wire.KEYING_OPEN), 0)
    out = b.datagrams_to_send()
    assert len(out) == 1 and out[0][2][1] == wire.INIT_ACK


def test_a_psk_host_and_an_open_host_never_associate_and_say_why():
    net = Net(direct=False)  # (b's packets queued: the tests read them)
    net.node("a", config("a", {"b": {"addresses": ["10.9.0.1"]}}))  # psk
    net.node("b", {"name": "b", "keying": "open", "peers": {"a": {}}})
    net.uplink("b", "wan", B_ADDR)
    net.uplink("a", "eth", A_ADDR)
    net.nodes["a"].ep.connect("b", 0)
    net.flush()
    net.run(5000)
    b = net.nodes["b"].ep
    assert b.counters.get("keying_mismatch", 0) >= 2, b.counters
    assert b.counters.get("mac", 0) == 0 and b.assocs == {}
    assert net.link("b", "wan").sent == 0


def _open_pair(**kw):
    net = Net(direct=False)  # (b's packets queued: the tests read them)
    net.node("a", {"name": "a", "keying": "open", "peers": {"b": {"addresses": ["10.9.0.1"]}}})
    cb = {"name": "b", "keying": "open", "peers": {"a": {}}}
    cb.update(kw)
    net.node("b", cb)
    net.uplink("b", "wan", B_ADDR)
    net.uplink("a", "eth", A_ADDR)
    net.nodes["a"].ep.connect("b", 0)
    net.flush()
    net.run(2000)
    first = net.nodes["b"].ep.association("a")
    assert first is not None and first.state == 2 and first.primary is not None
    return net, first


def _stranger(net, name, addr):
    """Another host that also calls itself "a" (open keying: names are not authenticated)."""
    net.node(name, {"name": "a", "keying": "open", "peers": {"b": {"addresses": ["10.9.0.1"]}}})
    net.uplink(name, "eth", addr)
    net.nodes[name].ep.connect("b", net.now)
    net.flush()


def test_with_open_keying_a_second_host_cannot_take_an_established_name():
    net, first = _open_pair()
    _stranger(net, "m", ("10.66.0.1", 6278))
    net.run(net.now + 3000)
    b = net.nodes["b"].ep
    assert b.counters.get("name_in_use", 0) >= 1, b.counters
    assert b.association("a") is first and first.state == 2
    assert net.events("b", "association_closed") == []
    assert net.events("m", "association_up") == []
    # the genuine a still reaches b
    net.nodes["b"].payloads = []
    assert net.nodes["a"].ep.send_data(b"still mine", net.now)
    net.flush()
    net.run(net.now + 50)
    assert [p for t, p in net.nodes["b"].payloads] == [b"still mine"]


def test_with_open_keying_an_association_keeps_its_name_for_its_whole_outage_budget():
    # MAST/1.1 (issue 15.5): a stranger cannot take the name a second into an outage; once
    # the outage budget (outage_s) is spent the association closes and the name is free
    net, first = _open_pair(outage_s=10)
    net.link("a", "eth").cut = True
    net.run(net.now + 12000)  # b's path to a has failed: no primary, the outage runs
    assert first.primary is None and first.state == 2
    _stranger(net, "a2", ("10.1.0.99", 6278))
    net.run(net.now + 1000)
    b = net.nodes["b"].ep
    assert b.counters.get("name_in_use", 0) >= 1, b.counters
    assert b.association("a") is first and net.events("b", "association_closed") == []
    net.run(net.now + 40000)  # past outage_s: closed, and the stranger's retries get in
    closed = net.events("b", "association_closed")
    assert [e.reason for e in closed] == ["outage"]
    second = b.association("a")
    assert second is not first and second.state == 2
    assert second.primary is not None and second.primary.raddr == ("10.1.0.99", 6278)
