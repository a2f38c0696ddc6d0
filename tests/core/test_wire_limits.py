# The wire format's limits one byte either side (docs/PROTOCOL.md sections 2, 6 and 7): each
# header check counts its drop under its own name; every fixed-length body is exactly its length
# (one byte more or less is `malformed` and answered by nothing); an address's family is 4 or 6;
# and the codec refuses to build or take a name, keying or list the document does not allow.

from simnet import established, pair
from mast import wire

A = ("10.1.0.2", 6278)
TAG0 = bytes(wire.TAG_LEN)


def _up():
    net = pair(a_uplinks=[("eth", "10.1.0.2", 10, 0)], replay_window=64)
    net.nodes["a"].events = net.nodes["b"].events = None  # (not kept: a board-sized heap)
    net.run(2000)
    return net, net.nodes["a"].ep.association("b"), net.nodes["b"].ep


def _delta(ep, c0):
    return dict((k, n - c0.get(k, 0)) for k, n in ep.counters.items()
                if k != "rx" and not k.startswith("tx") and n != c0.get(k, 0))


def test_each_header_check_counts_its_own_reason_at_its_exact_limit():
    net, a, b_ep = _up()
    c0 = dict(b_ep.counters)
    lost = 0x7777  # a label no association has
    ka = wire.header(wire.KEEPALIVE, lost, 1) + bytes(6)
    for pkt in (
        (ka + TAG0)[:27],  # one byte short of header and tag: bad_short
        wire.header(wire.KEEPALIVE, lost, 1) + TAG0,  # 28 bytes: past the header checks
        b"\x00" + ka[1:] + TAG0, b"\x02" + ka[1:] + TAG0,  # versions 0 and 2: bad_version
    ):
        b_ep.receive("wan", A, pkt, net.now)
    for t in (0, 14, 15, 18, 255):  # no such type: bad_type
        b_ep.receive("wan", A, wire.header(t, lost, 1) + bytes(6) + TAG0, net.now)
    for t in (wire.KEEPALIVE, wire.DATA, wire.DATA_IP):  # the last of each range: known types
        b_ep.receive("wan", A, wire.header(t, lost, 1) + bytes(6) + TAG0, net.now)
    assert _delta(b_ep, c0) == {"bad_short": 1, "bad_version": 2, "bad_type": 5, "unknown_label": 4}


def _auth(a, b_ep, ptype, body, now):
    b_ep.receive("wan", A, wire.seal(a.tx_mac, ptype, a.peer_label, a.seq, body), now)
    a.seq += 1


def test_a_fixed_length_body_one_byte_longer_or_shorter_is_malformed_and_not_answered():
    net, a, b_ep = _up()
    sent = []
    net.drop = lambda src, dst, data: sent.append(data[1]) and False
    ch = b"\x42" * wire.CHALLENGE_LEN
    bodies = (  # (type, its exact body, the reason that exact body is counted as)
        (wire.ERR, wire.enc_err(77, 0), "accepted"),
        (wire.KEEPALIVE, wire.enc_keepalive(0), "accepted"),
        (wire.PROBE, wire.enc_probe(ch, 0), "accepted"),
        (wire.PROBE_ACK, wire.enc_probe_ack(ch, A), "stale_probe_ack"),
        (wire.PROBE_ACK, wire.enc_probe_ack(ch, ("2001:db8::7", 6278)), "stale_probe_ack"),
        (wire.SET_ACK, wire.enc_tsn(12345), "unexpected"),
        (wire.SHUT, wire.enc_tsn(a.tsn), None),  # (the exact one would end the association)
    )
    for ptype, body, _ in bodies:
        c0 = dict(b_ep.counters)
        for bad in (body + b"\x01", body + b"\x00", body[:-1]):
            _auth(a, b_ep, ptype, bad, net.now)
            net.flush()
        assert _delta(b_ep, c0) == {"malformed": 3}, (ptype, len(body), b_ep.counters)
        assert sent == [], (ptype, sent)  # no PROBE-ACK, no SHUT-ACK: nothing answers them
    for ptype, body, reason in bodies:
        if reason:
            c0 = dict(b_ep.counters)
            _auth(a, b_ep, ptype, body, net.now)
            net.flush()
            assert _delta(b_ep, c0) == {reason: 1}, (ptype, len(body), b_ep.counters)
    assert sent == [wire.PROBE_ACK]  # the one exact PROBE is answered (the spy sees answers)
    assert established(net)
    assert b_ep.counters.get("internal_error", 0) == 0, b_ep.last_error


def _set(a, b_ep, body_after_tsn, now):
    a.tsn += 1
    _auth(a, b_ep, wire.SET, wire.enc_tsn(a.tsn) + body_after_tsn, now)


def test_an_address_of_another_family_than_4_or_6_or_a_list_with_a_stray_byte_is_malformed():
    net, a, b_ep = _up()
    b = b_ep.association("a")
    own = wire.enc_addrs([(A, 10, 0)])
    other = wire.enc_addrs([(A, 10, 0), (("2001:db8::1", 6278), 20, 0)])
    c0 = dict(b_ep.counters)
    for fam in (0, 5, 16):  # the second entry's family byte (16 bytes of address follow)
        bad = bytearray(other)
        bad[1 + 9] = fam
        _set(a, b_ep, bytes(bad), net.now)
    _set(a, b_ep, other + b"\x00\x00\x01", net.now)  # not zero after the list
    ch = b"\x42" * wire.CHALLENGE_LEN
    for fam in (0, 5, 16):
        _auth(a, b_ep, wire.PROBE_ACK, ch + bytes([fam]) + bytes(18), net.now)
    v6 = wire.enc_probe_ack(ch, ("2001:db8::7", 6278))
    _auth(a, b_ep, wire.PROBE_ACK, v6[:-1], net.now)  # an IPv6 address without all its port
    assert _delta(b_ep, c0) == {"malformed": 8}, b_ep.counters
    assert b_ep.counters.get("internal_error", 0) == 0, b_ep.last_error
    assert len(b.peer_list) == 1  # none applied
    _set(a, b_ep, other + b"\x00\x00", net.now)  # zeros after the list: taken
    assert len(b.peer_list) == 2 and b.peer_tsn == a.tsn
    _set(a, b_ep, own, net.now)
    assert len(b.peer_list) == 1


def _init_body(keying=wire.KEYING_PSK, name=b"a.example", label=7):
    return (wire.enc_tsn(label) + bytes(range(16)) + wire.enc_tsn(99) + bytes([keying, len(name)])
            + name + wire.enc_addrs([(A, 10, 0)]))


def _refused(fn, *args):
    try:
        fn(*args)
    except ValueError:
        return True
    return False


def test_the_codec_takes_and_builds_only_the_names_keyings_and_lists_the_document_allows():
    for name in (b"a", b"n" * wire.MAX_NAME):
        assert wire.dec_init(_init_body(name=name))[4] == str(name, "utf-8")
        assert wire.dec_init(_init_body(name=name) + bytes(9))[4] == str(name, "utf-8")  # padding
    assert wire.dec_init(_init_body(keying=wire.KEYING_OPEN))[3] == wire.KEYING_OPEN
    for body in (_init_body(name=b""), _init_body(name=b"n" * 64), _init_body(keying=2),
                 _init_body() + b"\x00\x01"):
        assert _refused(wire.dec_init, body), body
    addrs = [(A, 10, 0)]
    assert len(wire.enc_init(1, bytes(16), 2, 0, "n" * wire.MAX_NAME, addrs)) == 26 + 63 + 10
    for name in ("", "n" * 64):
        assert _refused(wire.enc_init, 1, bytes(16), 2, 0, name, addrs), len(name)
    many = [(("10.7.0.%d" % i, 6278), 20, 0) for i in range(1, 18)]
    assert wire.dec_addrs(wire.enc_addrs(many[:16]), 0)[0] == many[:16]
    assert _refused(wire.enc_addrs, many)  # 17: never sent
    ack = wire.enc_init_ack(5, bytes(16), 6, bytes(wire.COOKIE_LEN))
    assert len(ack) == 44 and wire.dec_init_ack(ack)[0] == 5
    for bad in (ack + b"\x00", ack[:-1]):
        assert _refused(wire.dec_init_ack, bad), len(bad)
