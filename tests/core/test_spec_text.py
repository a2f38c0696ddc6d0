# What a second implementation, written from docs/PROTOCOL.md alone (brief h37), found the text
# did not say and the core does: the order of an INIT's checks (7, step 2), the header fields
# of INIT a receiver ignores (3), SHUT-ACK and SHUT-COMPLETE not matched by their TSN (6.8),
# zero padding after an address list (6.1), a port of 0 (6.1), and a SET exactly 2^31 ahead
# (6.6). Each is shown on the real core.

from simnet import Net, config, up1
from mast import wire
from mast.crypto import Mac
from mast.assoc import CLOSED

A_ADDR = ("10.1.0.2", 6278)
B_ADDR = ("10.9.0.1", 6278)


def _b_only():
    net = Net(direct=False)  # (b's packets queued: the tests read them)
    net.node("b", config("b", ["a"]))
    net.uplink("b", "wan", B_ADDR)
    return net.nodes["b"].ep


def _init(b, name="a", keying=0, label=0x0A000001, pad=True, good_tag=True, hlabel=0, hseq=0, tail=b""):
    body = wire.enc_init(label, bytes(range(16)), 7, keying, name, [(A_ADDR, 10, 0)])
    if pad:
        body = wire.pad_init(body)
    body += tail
    key = b.init_mac("a") if good_tag else Mac(bytes(32))
    return wire.seal(key, wire.INIT, hlabel, hseq, body)


def test_an_init_s_checks_run_in_the_documented_order():
    b = _b_only()
    cases = [  # (the INIT, the one reason counted): each fails two checks, the first counts
        (_init(b, name="x", pad=False), "short_init"),  # length before the name
        (_init(b, name="x", good_tag=False, tail=b"\x01"), "malformed"),  # the body before the name
        (_init(b, keying=2, name="x"), "malformed"),  # keying neither 0 nor 1: the body
        (_init(b, name="x", good_tag=False), "unknown_peer"),  # the name before the tag
        (_init(b, keying=1, good_tag=False), "keying_mismatch"),  # the keying before the tag
        (_init(b, label=0, good_tag=False), "mac"),  # the tag before label_I
    ]
    for pkt, why in cases:
        before = dict(b.counters)
        b.receive("wan", A_ADDR, pkt, 0)
        got = [k for k in b.counters if b.counters[k] != before.get(k, 0) and k != "rx"]
        assert got == [why], (why, got)
    assert b.datagrams_to_send() == [] and b.assocs == {}


def test_an_init_s_header_label_and_seq_are_not_checked():
    b = _b_only()
    b.receive("wan", A_ADDR, _init(b, hlabel=5, hseq=7), 0)  # (the tag covers them)
    out = b.datagrams_to_send()
    assert len(out) == 1 and out[0][2][1] == wire.INIT_ACK


def _from_a(a, b_ep, ptype, body, now):
    b_ep.receive("wan", A_ADDR, wire.seal(a.tx_mac, ptype, a.peer_label, a.seq, body), now)
    a.seq += 1
    return [wire.parse(d) for u, dst, d in b_ep.datagrams_to_send()]


def test_shut_ack_and_shut_complete_are_not_matched_by_their_tsn():
    net, a, b = up1(direct=False)
    B = net.nodes["b"].ep
    B.datagrams_to_send()
    B.close(net.now, "a")  # b: shut-sent
    tsn = wire.dec_tsn(wire.parse(B.datagrams_to_send()[0][2])[3])
    out = _from_a(a, B, wire.SHUT_ACK, wire.enc_tsn(tsn + 1), net.now)  # another TSN
    assert [(p[0], wire.dec_tsn(p[3])) for p in out] == [(wire.SHUT_COMPLETE, tsn + 1)]
    assert b.state == CLOSED  # (lingering)
    net, a, b = up1(direct=False)
    B = net.nodes["b"].ep
    B.datagrams_to_send()
    out = _from_a(a, B, wire.SHUT, wire.enc_tsn(9), net.now)  # b: shut-ack-sent
    assert [p[0] for p in out] == [wire.SHUT_ACK]
    _from_a(a, B, wire.SHUT_COMPLETE, wire.enc_tsn(10), net.now)
    assert B.association("a") is None  # closed


def test_zero_bytes_after_a_set_s_list_are_padding_and_a_port_of_0_is_malformed():
    net, a, b = up1(direct=False)
    B = net.nodes["b"].ep
    B.datagrams_to_send()
    lst = [(A_ADDR, 10, 0)]
    out = _from_a(a, B, wire.SET, wire.enc_set(a.tsn + 1, lst) + bytes(3), net.now)
    assert [p[0] for p in out] == [wire.SET_ACK] and b.peer_tsn == a.tsn + 1
    out = _from_a(a, B, wire.SET, wire.enc_set(a.tsn + 2, lst) + b"\x00\x01", net.now)
    assert out == [] and B.counters.get("malformed", 0) == 1
    body = bytearray(wire.enc_set(a.tsn + 2, lst))
    body[-4:-2] = b"\x00\x00"  # the entry's port
    out = _from_a(a, B, wire.SET, bytes(body), net.now)
    assert out == [] and B.counters["malformed"] == 2 and b.peer_tsn == a.tsn + 1


def test_a_set_exactly_2_to_the_31_ahead_is_acknowledged_but_not_applied():
    net, a, b = up1(direct=False)
    B = net.nodes["b"].ep
    B.datagrams_to_send()
    tsn = (b.peer_tsn + 0x80000000) & 0xFFFFFFFF
    out = _from_a(a, B, wire.SET, wire.enc_set(tsn, []), net.now)
    assert [(p[0], wire.dec_tsn(p[3])) for p in out] == [(wire.SET_ACK, tsn)]
    assert b.peer_tsn != tsn and [x[0] for x in b.peer_list] == [A_ADDR]


def test_a_cookie_echo_s_body_is_parsed_before_its_stamp_and_its_stamp_before_its_name():
    b = _b_only()
    b.receive("wan", A_ADDR, _init(b), 0)
    ack = wire.parse(b.datagrams_to_send()[0][2])
    cookie = bytes(ack[3][24:44])  # (label_R, nonce_R, TSN_R, then the cookie: 6.3)
    late = 61000  # the cookie is stale by then

    def echo(name="a", tail=b""):
        body = cookie + wire.enc_init(0x0A000001, bytes(range(16)), 7, 0, name, [(A_ADDR, 10, 0)]) + tail
        label_r = int.from_bytes(bytes(ack[3][0:4]), "big")
        return wire.seal(Mac(bytes(32)), wire.COOKIE_ECHO, label_r, 1, body)  # (a wrong key)

    for pkt, why, t in ((echo(tail=b"\x01"), "malformed", late), (echo(name="x"), "stale_cookie", late),
                        (echo(), "mac", 10)):  # (the last: the cookie itself is good)
        before = dict(b.counters)
        b.receive("wan", A_ADDR, pkt, t)
        got = [k for k in b.counters if b.counters[k] != before.get(k, 0) and k != "rx"]
        assert got == [why], (why, got)
    assert b.datagrams_to_send() == [] and b.assocs == {}
