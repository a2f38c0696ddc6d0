# The presence (PRES/1) test vectors of docs/PROTOCOL.md, parsed out of the document.
# Each vector is rebuilt here from its fields with plain struct packing that follows
# the field tables of the document's "Presence" section (not presence.msg), and must
# equal the document's hex; then presence.msg must decode the hex into the same fields
# and its encoders must produce the same bytes. A codec bug cannot confirm itself.
import struct

from presence import msg

from vectorlib import DOC, hmac256, hkdf, unhex, split_addr, sockaddr, addr_list
import vectorlib


def load():
    return vectorlib.load("presence")


def messages():
    return [v for v in load() if "packet" in v]


def target(name):
    return bytes([len(name)]) + name.encode()


def record(v):
    return (bytes([int(v["status"])]) + target(v["target"]) + struct.pack(">H", int(v["ttl"]))
            + sockaddr(v["observed"]) + addr_list(v["addresses"]))


def body_from_fields(v):
    """The body of each type, from the tables of PROTOCOL.md "Presence", P.7."""
    t = int(v["type"])
    if t == 1:
        return struct.pack(">H", int(v["ttl"])) + addr_list(v["addresses"])
    if t == 2:
        return struct.pack(">H", int(v["ttl"])) + sockaddr(v["observed"])
    if t == 3:
        return target(v["target"])
    if t in (4, 7):
        return record(v)
    if t == 5:
        return struct.pack(">H", int(v["ttl"])) + target(v["target"])
    if t == 6:
        return struct.pack(">HQ", int(v["sub_ttl"]), int(v["floor"])) + record(v)
    if t == 8:
        return struct.pack(">Q", int(v["acked"])) + target(v["target"])
    raise AssertionError("no builder for type %d" % t)


def header(v):
    name = v["host"].encode()
    return struct.pack(">BBQB", 0x50, int(v["type"]), int(v["counter"]), len(name)) + name


def test_the_document_has_a_presence_vector_for_every_message_type():
    types = set([int(v["type"]) for v in messages()])
    assert types == set([1, 2, 3, 4, 5, 6, 7, 8]), types


def test_presence_key_schedule_vector_matches_hkdf():
    k = [v for v in load() if v["name"] == "key schedule"][0]
    okm = hkdf(b"", unhex(k["name_key"]), b"pres1 keys" + k["host"].encode(), 64)
    assert okm[:32] == unhex(k["k_up"]) and okm[32:] == unhex(k["k_down"])
    up, down = msg.keys(unhex(k["name_key"]), k["host"])
    assert up.digest(b"x") == hmac256(unhex(k["k_up"]), b"x")
    assert down.digest(b"x") == hmac256(unhex(k["k_down"]), b"x")


def test_every_presence_vector_equals_the_bytes_built_from_the_field_tables():
    k = [v for v in load() if v["name"] == "key schedule"][0]
    for v in messages():
        # requests are tagged with k_up, answers and NOTIFY with k_down (P.5)
        want_key = k["k_up"] if int(v["type"]) in (1, 3, 5, 8) else k["k_down"]
        assert v["key"] == want_key, v["name"]
        signed = header(v) + body_from_fields(v)
        pkt = signed + hmac256(unhex(v["key"]), signed)[:16]
        assert pkt == unhex(v["packet"]), v["name"]
        assert len(pkt) >= msg.MIN_LEN


def test_presence_msg_decodes_every_vector_into_its_fields():
    for v in messages():
        pkt = unhex(v["packet"])
        ptype, counter, name, body = msg.parse(pkt)
        assert (ptype, counter, name) == (int(v["type"]), int(v["counter"]), v["host"]), v["name"]
        from mast.crypto import Mac

        assert msg.verify(Mac(unhex(v["key"])), pkt), v["name"]
        obs = None if v.get("observed", "none") == "none" else split_addr(v["observed"])
        if ptype == msg.REGISTER:
            ttl, addrs = msg.dec_register(body)
            assert ttl == int(v["ttl"])
            assert msg.enc_register(0, addrs)[2:] == addr_list(v["addresses"])
        elif ptype == msg.REGISTER_ACK:
            assert msg.dec_register_ack(body) == (int(v["ttl"]), obs)
        elif ptype == msg.LOOKUP:
            assert msg.dec_lookup(body) == v["target"]
        elif ptype in (msg.LOOKUP_ACK, msg.NOTIFY, msg.SUBSCRIBE_ACK):
            if ptype == msg.SUBSCRIBE_ACK:
                sub_ttl, floor, rec = msg.dec_subscribe_ack(body)
                assert (sub_ttl, floor) == (int(v["sub_ttl"]), int(v["floor"]))
            else:
                rec = msg.dec_record_only(body)
            status, tgt, ttl, observed, addrs = rec
            assert (status, tgt, ttl, observed) == (int(v["status"]), v["target"], int(v["ttl"]), obs), v["name"]
            assert msg.enc_register(0, addrs)[2:] == addr_list(v["addresses"])
        elif ptype == msg.SUBSCRIBE:
            assert msg.dec_subscribe(body) == (int(v["ttl"]), v["target"])
        else:
            assert msg.dec_notify_ack(body) == (int(v["acked"]), v["target"])


def _addrs(text):
    from mast import wire

    return wire.dec_addrs(addr_list(text), 0)[0]


def test_presence_msg_encodes_every_vector_byte_for_byte():
    from mast.crypto import Mac

    for v in messages():
        t = int(v["type"])
        obs = None if v.get("observed", "none") == "none" else split_addr(v["observed"])
        if t == 1:
            body = msg.enc_register(int(v["ttl"]), _addrs(v["addresses"]))
        elif t == 2:
            body = msg.enc_register_ack(int(v["ttl"]), obs)
        elif t == 3:
            body = msg.enc_lookup(v["target"])
        elif t == 5:
            body = msg.enc_subscribe(int(v["ttl"]), v["target"])
        elif t == 8:
            body = msg.enc_notify_ack(int(v["acked"]), v["target"])
        else:
            body = msg.enc_record(int(v["status"]), v["target"], int(v["ttl"]), obs, _addrs(v["addresses"]))
            if t == 6:
                body = msg.enc_subscribe_ack(int(v["sub_ttl"]), int(v["floor"]), body)
        pkt = msg.seal(Mac(unhex(v["key"])), t, int(v["counter"]), v["host"], body)
        assert pkt == unhex(v["packet"]), v["name"]


def test_the_document_states_the_presence_constants():
    want = ["default port is **%d**" % msg.DEFAULT_PORT, "**0x%02X**" % msg.VERSION,
            "smallest message is **%d bytes**" % msg.MIN_LEN]
    for i in range(1, 9):
        want.append("| %s | %d |" % (msg.TYPE_NAMES[i], i))
    found = set()
    for line in open(DOC):  # line by line: the document is larger than a board's heap wants
        for w in want:
            if w in line:
                found.add(w)
    assert found == set(want), [w for w in want if w not in found]
