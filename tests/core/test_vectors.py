# The test vectors of docs/PROTOCOL.md, parsed out of the document itself.
# Each vector is rebuilt here from its fields with plain struct packing that
# follows the field tables of the document (not mast.wire), and must equal the
# document's hex; then mast.wire must decode the hex into the same fields and
# its encoders must produce the same bytes. A codec bug cannot confirm itself.
import struct

from mast import wire
from mast.crypto import Mac

from vectorlib import hmac256, hkdf, unhex, num, split_addr, sockaddr, addr_list
import vectorlib


def load():
    return vectorlib.load("vector")


def init_fields(v):
    name = v["host"].encode()
    return (struct.pack(">I", num(v["label_i"])) + unhex(v["nonce"]) + struct.pack(">IBB", num(v["tsn"]), num(v["keying"]), len(name))
            + name + addr_list(v["addresses"]) + bytes(num(v["pad"])))


def body_from_fields(v):
    """The body of each type, built from the field tables of PROTOCOL.md section 6."""
    t = num(v["type"])
    if t == 1:
        return init_fields(v)
    if t == 2:
        return struct.pack(">I", num(v["label_r"])) + unhex(v["nonce"]) + struct.pack(">II", num(v["tsn"]), num(v["stamp"])) + unhex(v["cookie_tag"])
    if t == 3:
        return struct.pack(">I", num(v["stamp"])) + unhex(v["cookie_tag"]) + init_fields(v)
    if t == 4:
        return addr_list(v["addresses"])
    if t == 5:
        return struct.pack(">I", num(v["tsn"])) + addr_list(v["addresses"])
    if t in (6, 9, 10, 11):
        return struct.pack(">I", num(v["tsn"]))
    if t == 7:
        return unhex(v["challenge"]) + bytes([num(v["index"])]) + bytes(18)
    if t == 8:
        return unhex(v["challenge"]) + sockaddr(v["observed"])
    if t == 12:
        return struct.pack(">BI", num(v["code"]), num(v["tsn"]))
    if t == 13:
        return struct.pack(">Q", num(v["rx_highest"]))[2:]
    if t in (16, 17):
        return unhex(v["payload"])
    raise AssertionError("no builder for type %d" % t)


def messages():
    return [v for v in load() if "packet" in v]


def test_the_document_has_a_vector_for_every_message_type():
    types = set([num(v["type"]) for v in messages()])
    assert types == set([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 16, 17]), types


def test_key_schedule_vector_matches_hkdf():
    k = [v for v in load() if v["name"] == "key schedule"][0]
    psk = unhex(k["psk"])
    assert hkdf(b"", psk, b"mast1 init", 32) == unhex(k["k_init"])
    info = b"mast1 keys" + struct.pack(">II", num(k["label_i"]), num(k["label_r"]))
    okm = hkdf(unhex(k["nonce_i"]) + unhex(k["nonce_r"]), psk, info, 64)
    assert okm[:32] == unhex(k["k_i2r"]) and okm[32:] == unhex(k["k_r2i"])


def test_every_vector_equals_the_bytes_built_from_the_field_tables():
    for v in messages():
        head = struct.pack(">BBIHI", 1, num(v["type"]), num(v["label"]), num(v["seq"]) >> 32, num(v["seq"]) & 0xFFFFFFFF)
        body = body_from_fields(v)
        extra = unhex(v.get("extra", ""))
        pkt = head + body + hmac256(unhex(v["key"]), head + body + extra)[:16]
        assert pkt == unhex(v["packet"]), v["name"]
        if num(v["type"]) == 1:
            assert len(pkt) >= wire.MIN_INIT


def test_wire_decodes_every_vector_into_its_fields():
    for v in messages():
        pkt = unhex(v["packet"])
        ptype, label, seq, body = wire.parse(pkt)
        assert (ptype, label, seq) == (num(v["type"]), num(v["label"]), num(v["seq"])), v["name"]
        n = len(pkt) - wire.TAG_LEN  # the tag, and the part it signs
        assert Mac(unhex(v["key"])).verify(pkt[n:], pkt[:n], unhex(v.get("extra", "")))
        if ptype in (1, 3):
            if ptype == 3:
                assert bytes(body[:20]) == struct.pack(">I", num(v["stamp"])) + unhex(v["cookie_tag"])
                body = body[20:]
            label_i, nonce, tsn, keying, name, addrs = wire.dec_init(body)
            assert (label_i, nonce, tsn, keying, name) == (num(v["label_i"]), unhex(v["nonce"]), num(v["tsn"]), num(v["keying"]), v["host"])
            assert addr_list(v["addresses"]) == wire.enc_addrs(addrs)
        elif ptype == 2:
            assert wire.dec_init_ack(body) == (num(v["label_r"]), unhex(v["nonce"]), num(v["tsn"]),
                                               struct.pack(">I", num(v["stamp"])) + unhex(v["cookie_tag"]))
        elif ptype == 4:
            addrs, off = wire.dec_addrs(body, 0)
            assert off == len(body) and wire.enc_addrs(addrs) == addr_list(v["addresses"])
        elif ptype == 5:
            tsn, addrs = wire.dec_set(body)
            assert tsn == num(v["tsn"]) and wire.enc_addrs(addrs) == addr_list(v["addresses"])
        elif ptype in (6, 9, 10, 11):
            assert wire.dec_tsn(body) == num(v["tsn"])
        elif ptype == 7:
            assert wire.dec_probe(body) == (unhex(v["challenge"]), num(v["index"]))
        elif ptype == 8:
            ch, observed = wire.dec_probe_ack(body)
            assert ch == unhex(v["challenge"]) and observed == split_addr(v["observed"])
        elif ptype == 12:
            assert tuple(wire.dec_err(body)) == (num(v["code"]), num(v["tsn"]))
        elif ptype == 13:
            assert wire.dec_keepalive(body) == num(v["rx_highest"])
        else:
            assert bytes(body) == unhex(v["payload"])


def test_wire_encodes_every_vector_byte_for_byte():
    for v in messages():
        t = num(v["type"])
        if t in (1, 3):
            addrs = wire.dec_addrs(addr_list(v["addresses"]), 0)[0]
            body = wire.enc_init(num(v["label_i"]), unhex(v["nonce"]), num(v["tsn"]), num(v["keying"]), v["host"], addrs)
            if t == 1:
                body = wire.pad_init(body)
            else:
                body = struct.pack(">I", num(v["stamp"])) + unhex(v["cookie_tag"]) + body
        elif t == 2:
            body = wire.enc_init_ack(num(v["label_r"]), unhex(v["nonce"]), num(v["tsn"]),
                                     struct.pack(">I", num(v["stamp"])) + unhex(v["cookie_tag"]))
        elif t == 4:
            body = wire.enc_addrs(wire.dec_addrs(addr_list(v["addresses"]), 0)[0])
        elif t == 5:
            body = wire.enc_set(num(v["tsn"]), wire.dec_addrs(addr_list(v["addresses"]), 0)[0])
        elif t in (6, 9, 10, 11):
            body = wire.enc_tsn(num(v["tsn"]))
        elif t == 7:
            body = wire.enc_probe(unhex(v["challenge"]), num(v["index"]))
        elif t == 8:
            body = wire.enc_probe_ack(unhex(v["challenge"]), split_addr(v["observed"]))
        elif t == 12:
            body = wire.enc_err(num(v["code"]), num(v["tsn"]))
        elif t == 13:
            body = wire.enc_keepalive(num(v["rx_highest"]))
        else:
            body = unhex(v["payload"])
        pkt = wire.seal(Mac(unhex(v["key"])), t, num(v["label"]), num(v["seq"]), body, unhex(v.get("extra", "")))
        assert pkt == unhex(v["packet"]), v["name"]


def test_data_overhead_is_28_bytes():
    d = [v for v in messages() if v["name"] == "DATA"][0]
    assert len(unhex(d["packet"])) - len(unhex(d["payload"])) == wire.OVERHEAD == 28
