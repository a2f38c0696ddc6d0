# The responder's stateless cookie (PROTOCOL.md section 8): a COOKIE-ECHO creates an
# association only if its cookie carries the responder's own tag, is at most 60 s old, and
# comes back from the address and port the INIT came from. Anything else is dropped and
# counted (`bad_cookie`, `stale_cookie`, `mac`) and leaves nothing behind: no association, no
# association_up event, nothing sent. Each refusal is checked beside the same COOKIE-ECHO
# accepted when it is genuine, so the refusal is the check's doing and nothing else's.

import gc

from simnet import Rng, config
from mast import wire, policy
from mast.endpoint import Endpoint

A_ADDR = ("10.1.0.2", 6278)  # the initiator's uplink
B_ADDR = ("10.9.0.1", 6278)  # the responder's
T0 = 70000  # when the INIT reaches the responder: the cookie's stamp


def _handshake_until_the_cookie_echo(open_keying=False):
    """Initiator a and responder b, directly (no simulated network): a's INIT reaches b at
    T0 from A_ADDR, b's INIT-ACK reaches a; -> (a, b, the COOKIE-ECHO a sends, still undelivered)."""
    if open_keying:  # no keys: the names are all there is
        a = Endpoint({"name": "a", "keying": "open", "peers": {"b": {"addresses": ["10.9.0.1"]}}},
                     Rng("cookie-a"))
        b = Endpoint({"name": "b", "keying": "open", "peers": {"a": {}}}, Rng("cookie-b"))
    else:
        a = Endpoint(config("a", {"b": {"addresses": ["10.9.0.1"]}}), Rng("cookie-a"))
        b = Endpoint(config("b", ["a"]), Rng("cookie-b"))
    a.uplink_up("eth", A_ADDR, 0)
    b.uplink_up("wan", B_ADDR, 0)
    a.connect("b", T0 - 1)
    out = a.datagrams_to_send()
    assert len(out) == 1 and out[0][1] == B_ADDR and out[0][2][1] == wire.INIT, out
    b.receive("wan", A_ADDR, out[0][2], T0)
    out = b.datagrams_to_send()
    assert len(out) == 1 and out[0][1] == A_ADDR and out[0][2][1] == wire.INIT_ACK, out
    a.receive("eth", B_ADDR, out[0][2], T0 + 1)
    out = a.datagrams_to_send()
    assert len(out) == 1 and out[0][2][1] == wire.COOKIE_ECHO, out
    assert b.assocs == {} and b.by_peer == {}  # stateless until the cookie comes back
    return a, b, out[0][2]


def _events(ep):
    got = []
    e = ep.next_event()
    while e is not None:
        got.append(e)
        e = ep.next_event()
    return got


def _reseal(a, echo, body):
    """The COOKIE-ECHO with another body, tagged with the initiator's real key (so only the
    cookie can be at fault)."""
    ptype, label, seq, _ = wire.parse(echo)
    return wire.seal(a.association("b").tx_mac, ptype, label, seq, body)


def _assert_refused(b, reason, n=1):
    assert b.counters.get(reason, 0) == n, b.counters
    assert b.counters.get("accepted", 0) == 1, b.counters  # only the INIT was answered
    assert b.assocs == {} and b.by_peer == {}
    assert b.datagrams_to_send() == []
    assert [e for e in _events(b) if e.kind == "association_up"] == []


def _assert_accepted(b, at):
    assert b.counters.get("accepted", 0) == 2, b.counters
    up = [e for e in _events(b) if e.kind == "association_up"]
    assert len(up) == 1 and up[0].peer == "a", up
    assoc = b.association("a")
    assert assoc is not None and assoc.state == 2  # established
    sent = b.datagrams_to_send()
    assert sent and sent[0][1] == at and sent[0][2][1] == wire.COOKIE_ACK, sent


def test_the_genuine_cookie_echo_creates_the_association_and_is_answered():
    a, b, echo = _handshake_until_the_cookie_echo()
    b.receive("wan", A_ADDR, echo, T0 + 2)
    assert b.counters.get("accepted", 0) == 2, b.counters
    assert [e.kind for e in _events(b) if e.kind == "association_up"] == ["association_up"]
    sent = b.datagrams_to_send()
    assert [(dst, pkt[1]) for u, dst, pkt in sent][0] == (A_ADDR, wire.COOKIE_ACK), sent
    for uplink, dst, pkt in sent:
        a.receive("eth", B_ADDR, pkt, T0 + 3)
    assert [e.peer for e in _events(a) if e.kind == "association_up"] == ["b"]
    assert a.association("b").state == 2 and b.association("a").state == 2


def test_a_cookie_echo_with_a_forged_cookie_tag_is_refused_and_creates_nothing():
    a, b, echo = _handshake_until_the_cookie_echo()
    body = bytearray(wire.parse(echo)[3])
    body[4 + 15] ^= 0x01  # the last byte of the 16-byte cookie tag
    b.receive("wan", A_ADDR, _reseal(a, echo, bytes(body)), T0 + 2)
    _assert_refused(b, "bad_cookie")
    # a made-up tag of all zeros, likewise
    body[4:20] = bytes(16)
    b.receive("wan", A_ADDR, _reseal(a, echo, bytes(body)), T0 + 2)
    _assert_refused(b, "bad_cookie", 2)
    # the genuine one still works: the tag was the only fault
    b.receive("wan", A_ADDR, echo, T0 + 3)
    _assert_accepted(b, A_ADDR)


def test_a_cookie_echo_whose_stamp_was_moved_forward_is_refused():
    # an attacker cannot make an old cookie look fresh: the tag covers the stamp
    a, b, echo = _handshake_until_the_cookie_echo()
    body = bytearray(wire.parse(echo)[3])
    stamp = T0 + 50000
    body[0:4] = bytes([(stamp >> 24) & 255, (stamp >> 16) & 255, (stamp >> 8) & 255, stamp & 255])
    b.receive("wan", A_ADDR, _reseal(a, echo, bytes(body)), T0 + 61000)
    _assert_refused(b, "bad_cookie")


def test_a_cookie_echo_older_than_60_s_is_refused_as_stale():
    a, b, echo = _handshake_until_the_cookie_echo()
    assert policy.COOKIE_LIFE == 60000  # the document's "at most 60 s old"
    b.receive("wan", A_ADDR, echo, T0 + policy.COOKIE_LIFE + 1)
    _assert_refused(b, "stale_cookie")
    b.receive("wan", A_ADDR, echo, T0 + 10 * policy.COOKIE_LIFE)
    _assert_refused(b, "stale_cookie", 2)
    # exactly 60 s old is still fresh
    b.receive("wan", A_ADDR, echo, T0 + policy.COOKIE_LIFE)
    _assert_accepted(b, A_ADDR)


def test_a_cookie_echo_from_the_future_is_refused_as_stale():
    # the stamp is compared modulo 2^32: a stamp ahead of the clock is not "fresh"
    a, b, echo = _handshake_until_the_cookie_echo()
    b.receive("wan", A_ADDR, echo, T0 - 1)
    _assert_refused(b, "stale_cookie")


def test_a_cookie_echo_from_another_address_or_port_is_refused():
    a, b, echo = _handshake_until_the_cookie_echo()
    b.receive("wan", ("10.1.0.99", 6278), echo, T0 + 2)  # another host
    _assert_refused(b, "bad_cookie")
    b.receive("wan", ("10.1.0.2", 6279), echo, T0 + 2)  # the same host, another port
    _assert_refused(b, "bad_cookie", 2)
    # from where the INIT came from, it works
    b.receive("wan", A_ADDR, echo, T0 + 3)
    _assert_accepted(b, A_ADDR)


def test_a_cookie_echo_whose_init_part_was_changed_fails_its_tag():
    # the cookie does not cover the address list; the packet's tag (k_i2r) does
    a, b, echo = _handshake_until_the_cookie_echo()
    evil = bytearray(echo)
    evil[-16 - 1] ^= 0x01  # the last address entry's cost byte, tag left as it was
    b.receive("wan", A_ADDR, bytes(evil), T0 + 2)
    _assert_refused(b, "mac")
    b.receive("wan", A_ADDR, echo, T0 + 3)
    _assert_accepted(b, A_ADDR)


def test_an_older_cookie_echo_replayed_within_60_s_does_not_replace_a_newer_association():
    # a restarts and associates again (its new cookie replaces the first association); an
    # attacker then replays a's first COOKIE-ECHO, whose cookie is still fresh and genuine
    a, b, echo1 = _handshake_until_the_cookie_echo()
    b.receive("wan", A_ADDR, echo1, T0 + 2)
    _assert_accepted(b, A_ADDR)
    a = None  # a restarts: its old state is gone (and its heap free for the new one)
    gc.collect()
    a2 = Endpoint(config("a", {"b": {"addresses": ["10.9.0.1"]}}), Rng("cookie-a-restarted"))
    a2.uplink_up("eth", A_ADDR, 0)
    t = T0 + 5000
    a2.connect("b", t)
    b.receive("wan", A_ADDR, a2.datagrams_to_send()[0][2], t)
    a2.receive("eth", B_ADDR, b.datagrams_to_send()[0][2], t + 1)
    b.receive("wan", A_ADDR, a2.datagrams_to_send()[0][2], t + 2)
    assert b.counters.get("accepted", 0) == 4, b.counters
    kinds = [(e.kind, getattr(e, "reason", None)) for e in _events(b)]
    assert ("association_closed", "replaced") in kinds and ("association_up", None) in kinds, kinds
    second = b.association("a")
    assert second.peer_nonce == a2.association("b").nonce
    b.datagrams_to_send()
    b.receive("wan", A_ADDR, echo1, T0 + 10000)  # 10 s old: fresh, but older than the second
    assert b.counters.get("stale_cookie", 0) == 1, b.counters
    assert b.association("a") is second and second.state == 2
    assert _events(b) == [] and b.datagrams_to_send() == []


def test_a_cookie_echo_from_a_peer_removed_since_its_init_is_refused():
    # the cookie is the responder's word that it answered an INIT, not that the peer is still
    # wanted: a peer removed in the 60 s of its cookie's life is refused at the COOKIE-ECHO as
    # at the INIT (with open keying the name is its only credential)
    for open_keying in (False, True):
        a, b, echo = _handshake_until_the_cookie_echo(open_keying)
        b.remove_peer("a", T0 + 1)
        b.receive("wan", A_ADDR, echo, T0 + 2)
        _assert_refused(b, "unknown_peer")
