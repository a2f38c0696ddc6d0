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


def _init(key, keying, name="a", label=0x0A000001):
    body = wire.pad_init(wire.enc_init(label, bytes(range(16)), 7, keying, name, [(A_ADDR, 10, 0)]))
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


def test_an_init_with_label_0_is_malformed_and_not_answered():
    # label_I 0 is reserved (packets with label 0 are INITs): an INIT that asks for it,
    # with a good tag, gets no INIT-ACK
    net, b = _b_only({"name": "b", "keying": "open", "peers": {"a": {}}})
    open_key = hkdf(b"", b"", b"mast1 init", 32)
    b.receive("wan", A_ADDR, _init(open_key, wire.KEYING_OPEN, label=0), 0)
    assert b.counters.get("malformed", 0) == 1 and "accepted" not in b.counters, b.counters
    assert b.datagrams_to_send() == [] and b.assocs == {}
    b.receive("wan", A_ADDR, _init(open_key, wire.KEYING_OPEN, label=1), 0)
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


def test_a_cookie_echo_from_another_family_than_its_uplink_leaves_nothing_behind():
    # a relay uplink (via) hands the core the relay header's source, which can be IPv4 on an
    # uplink whose address is IPv6: the association was stored, then no path could join the
    # two (KeyError, counted malformed), and the half-built association in cookie-wait broke
    # every timer of the endpoint for good (next_timer raised AttributeError)
    from mast.compat import struct

    net, b = _b_only({"name": "b", "keying": "open", "peers": {"a": {}}})
    net.uplink("b", "wan6", ("2001:db8:9::1", 6278))
    src = ("198.51.100.7", 40000)
    k_init = Mac(hkdf(b"", b"", b"mast1 init", 32))
    label_i, nonce_i = 0x1234, bytes(range(16))
    init_body = wire.enc_init(label_i, nonce_i, 77, wire.KEYING_OPEN, "a", [])
    b.receive("wan", src, wire.seal(k_init, wire.INIT, 0, 0, wire.pad_init(init_body)), 1000)
    ack = b.datagrams_to_send()[-1][2]
    label_r, nonce_r, tsn_r, cookie = wire.dec_init_ack(wire.parse(ack)[3])
    okm = hkdf(nonce_i + nonce_r, b"", b"mast1 keys" + struct.pack(">II", label_i, label_r), 64)
    echo = wire.seal(Mac(okm[:32]), wire.COOKIE_ECHO, label_r, 1, cookie + init_body)
    b.receive("wan6", src, echo, 1010)  # the same source, on the IPv6 uplink
    b.receive("wan6", src, wire.seal(k_init, wire.INIT, 0, 0, wire.pad_init(init_body)), 1020)
    assert b.counters.get("wrong_family") == 2 and "malformed" not in b.counters, b.counters
    assert b.assocs == {} and b.by_peer == {} and b.datagrams_to_send() == []
    b.receive("wan", ("203.0.113.9", 1), bytes([1, 16]) + struct.pack(">I", label_r) + bytes(22), 1030)
    assert b.next_timer() is None or b.next_timer() >= 1030
    b.handle_timer(5000)
    # and over its own family the same peer gets in
    b.receive("wan", src, echo, 1040)
    assert b.association("a").state == 2 and "internal_error" not in b.counters, b.counters
