# The engine's keys are the document's (PROTOCOL.md sections 4 and 14), not just keys both
# ends happen to agree on. An Endpoint whose random source hands out the document's label,
# nonce and TSN must send the document's INIT byte for byte (k_init), answer the document's
# INIT-ACK with the document's COOKIE-ECHO (k_i2r), and come up on the document's COOKIE-ACK
# (k_r2i). A responder must answer the document's INIT (k_init), take a COOKIE-ECHO tagged
# with k_i2r derived from its own nonce by the document's key schedule, and tag what it sends
# with k_r2i. Expected bytes and tags come from the document and from vectorlib (HMAC from the
# standard library on CPython), never from the engine's own key setup.

import binascii
import gc
import struct

import vectorlib
from vectorlib import unhex, num, hmac256, hkdf, split_addr
from rng import Rng
from mast import wire
from mast.endpoint import Endpoint

INITIATOR = "board1.example"  # the INIT vector's host
RESPONDER = "server.example"


# The vectors this module uses and their fields (only those: a board-sized heap is small).
USED = {
    "key schedule": ("psk", "nonce_i", "nonce_r", "label_i", "label_r", "k_init", "k_i2r", "k_r2i"),
    "INIT": ("packet", "keying", "tsn", "host", "addresses"),
    "INIT-ACK": ("packet", "stamp"),
    "COOKIE-ECHO": ("packet",),
    "COOKIE-ACK": ("packet", "addresses"),
    "ERR": ("packet", "code"),
}


def _vectors(names=tuple(USED)):
    """{name: {field: value}} of these vectors, with the fields USED names."""
    v = {}
    gc.collect()
    for x in vectorlib.load("vector", names):
        v[x["name"]] = dict((k, x[k]) for k in USED[x["name"]])
    gc.collect()
    return v


def _b64(key):
    return binascii.b2a_base64(key).strip().decode()


def _be32(n):
    return struct.pack(">I", n)


def _tag_ok(key, pkt, extra=b""):
    return hmac256(key, bytes(pkt[:-16]) + extra)[:16] == bytes(pkt[-16:])


class Scripted:
    """random_bytes that hands out the given draws in order (None: any bytes of that
    length), then deterministic bytes. A draw of another length than the next one
    expected fails: the engine's order of draws changed and this script must follow."""

    def __init__(self, draws, seed):
        self.draws = list(draws)
        self.rest = Rng(seed)

    def __call__(self, k):
        if not self.draws:
            return self.rest(k)
        n, b = self.draws.pop(0)
        assert k == n, "the engine drew %d random bytes where this test expected %d" % (k, n)
        return self.rest(k) if b is None else b


def _responder_addr(v):
    # the COOKIE-ACK vector lists the responder's one address
    a, prio, cost = v["COOKIE-ACK"]["addresses"].split("/")
    return split_addr(a), int(prio), int(cost)


def _initiator(v):
    """An Endpoint named as the INIT vector's host, with its three uplinks (named so that
    their sorted order is the vector's order), drawing the key schedule's label_i and nonce_i
    and the INIT's TSN. -> (endpoint, the responder's address)."""
    ks, init = v["key schedule"], v["INIT"]
    assert num(init["keying"]) == 0  # psk
    raddr, _, _ = _responder_addr(v)
    cfg = {"name": init["host"], "peers": {RESPONDER: {
        "psk": _b64(unhex(ks["psk"])), "addresses": ["%s:%d" % raddr]}}}
    ep = Endpoint(cfg, Scripted([(32, None), (4, _be32(num(ks["label_i"]))), (16, unhex(ks["nonce_i"])),
                                 (4, _be32(num(init["tsn"])))], "engine-vectors-i"))
    items = [x.strip() for x in init["addresses"].split(",")]
    for i in range(len(items)):
        a, prio, cost = items[i].split("/")
        ep.uplink_up("u%d" % i, split_addr(a), 0, int(prio), int(cost))
    return ep, raddr


def _initiator_until_the_cookie_echo(v):
    ep, raddr = _initiator(v)
    ep.connect(RESPONDER, 100)
    out = ep.datagrams_to_send()
    assert len(out) == 1, out
    init_uplink, dst, init = out[0]
    assert dst == raddr
    ep.receive(init_uplink, raddr, unhex(v["INIT-ACK"]["packet"]), 110)
    return ep, raddr, init_uplink, init, ep.datagrams_to_send()


def test_an_endpoint_drawing_the_documents_nonce_sends_the_documents_init():
    v = _vectors()
    ep, raddr, uplink, init, out = _initiator_until_the_cookie_echo(v)
    assert bytes(init) == unhex(v["INIT"]["packet"])
    assert _tag_ok(unhex(v["key schedule"]["k_init"]), init)


def test_it_answers_the_documents_init_ack_with_the_documents_cookie_echo():
    v = _vectors()
    ep, raddr, uplink, init, out = _initiator_until_the_cookie_echo(v)
    assert ep.counters.get("accepted", 0) == 1, ep.counters  # the INIT-ACK's tag (k_init, nonce_I)
    assert len(out) == 1 and out[0][0] == uplink and out[0][1] == raddr, out
    echo = out[0][2]
    assert bytes(echo) == unhex(v["COOKIE-ECHO"]["packet"])
    assert _tag_ok(unhex(v["key schedule"]["k_i2r"]), echo)


def test_it_comes_up_on_the_documents_cookie_ack_and_tags_with_k_i2r():
    v = _vectors()
    ks = v["key schedule"]
    ep, raddr, uplink, init, out = _initiator_until_the_cookie_echo(v)
    ep.receive(uplink, raddr, unhex(v["COOKIE-ACK"]["packet"]), 120)
    assert ep.counters.get("accepted", 0) == 2, ep.counters
    kinds = []
    e = ep.next_event()
    while e is not None:
        kinds.append(e.kind)
        e = ep.next_event()
    assert "association_up" in kinds, kinds
    a = ep.association(RESPONDER)
    assert a.state == 2 and a.peer_label == num(ks["label_r"])
    # what it sends from now on is tagged with k_i2r (and so is not valid under k_r2i)
    sent = ep.datagrams_to_send()
    assert sent and [pkt[1] for u, d, pkt in sent][0] == wire.PROBE, sent
    for u, d, pkt in sent:
        assert _tag_ok(unhex(ks["k_i2r"]), pkt)
        assert not _tag_ok(unhex(ks["k_r2i"]), pkt)
    # and it takes the document's ERR from the responder (k_r2i, seq 6)
    ep.receive(uplink, raddr, unhex(v["ERR"]["packet"]), 130)
    assert ep.counters.get("accepted", 0) == 3, ep.counters
    e = ep.next_event()
    assert e is not None and e.kind == "peer_error" and e.code == num(v["ERR"]["code"])


def test_a_responder_answers_the_documents_init_and_keys_by_the_document():
    v = _vectors(("key schedule", "INIT", "COOKIE-ACK"))  # the endpoint first: less heap in use
    psk, host, label_r = unhex(v["key schedule"]["psk"]), v["INIT"]["host"], num(v["key schedule"]["label_r"])
    raddr, prio, cost = _responder_addr(v)
    v = None
    cfg = {"name": RESPONDER, "peers": {host: {"psk": _b64(psk)}}}
    ep = Endpoint(cfg, Scripted([(32, None), (4, _be32(label_r))], "engine-vectors-r"))
    ep.uplink_up("wan", raddr, 0, prio, cost)
    v = _vectors()
    ks, init = v["key schedule"], v["INIT"]
    nonce_i = unhex(ks["nonce_i"])
    label_i = num(ks["label_i"])
    src = split_addr(init["addresses"].split(",")[0].split("/")[0])  # the INIT's first address
    stamp = num(v["INIT-ACK"]["stamp"])
    ep.receive("wan", src, unhex(init["packet"]), stamp)  # now = the vector's stamp
    out = ep.datagrams_to_send()
    assert len(out) == 1 and out[0][1] == src, out
    ack = bytes(out[0][2])
    # INIT-ACK: header, label_R, nonce_R, TSN_R, cookie (stamp, tag), tag (k_init, extra nonce_I)
    assert len(ack) == 72 and ack[:2] == b"\x01\x02" and ack[2:6] == _be32(label_i) and ack[6:12] == bytes(6)
    assert ack[12:16] == _be32(label_r)
    nonce_r = ack[16:32]
    assert ack[36:40] == _be32(stamp)
    cookie = ack[36:56]
    assert _tag_ok(unhex(ks["k_init"]), ack, nonce_i)
    # the key schedule of section 4, with the responder's own nonce_R
    okm = hkdf(nonce_i + nonce_r, psk, b"mast1 keys" + _be32(label_i) + _be32(label_r), 64)
    k_i2r, k_r2i = okm[:32], okm[32:]
    ref = hkdf(nonce_i + unhex(ks["nonce_r"]), psk, b"mast1 keys" + _be32(label_i) + _be32(label_r), 64)
    assert ref == unhex(ks["k_i2r"]) + unhex(ks["k_r2i"])  # the same derivation gives the vector
    # the document's COOKIE-ECHO with this responder's cookie in it, tagged with k_i2r
    doc_echo = unhex(v["COOKIE-ECHO"]["packet"])
    signed = doc_echo[:12] + cookie + doc_echo[32:-16]
    echo = signed + hmac256(k_i2r, signed)[:16]
    ep.receive("wan", src, echo, stamp + 3)
    assert ep.counters.get("accepted", 0) == 2, ep.counters
    a = ep.association(init["host"])
    assert a is not None and a.state == 2
    sent = ep.datagrams_to_send()
    assert sent and sent[0][1] == src, sent
    cack = bytes(sent[0][2])
    doc_cack = unhex(v["COOKIE-ACK"]["packet"])
    assert cack[:-16] == doc_cack[:-16]  # same header (label_I, seq 1) and address list
    for u, d, pkt in sent:
        assert _tag_ok(k_r2i, pkt), pkt[1]
        assert not _tag_ok(k_i2r, pkt)
