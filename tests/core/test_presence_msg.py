# PRES/1 messages that are not well formed (firmware/presence/msg.py): each decoder raises
# ValueError, the one error its callers count and drop, for a wrong version or type, a name
# out of bounds, a record status it does not know, a body cut short and bytes after the last
# field. The vectors (test_presence_vectors.py) check the well-formed ones.
from presence import msg

KEY = bytes(range(32))
UP = msg.keys(KEY, "a.example")[0]


def refused(f, *args):
    try:
        f(*args)
    except ValueError:
        return True
    return False


def good():
    return msg.seal(UP, msg.LOOKUP, 7, "a.example", msg.enc_lookup("b.example"))


def test_names_of_1_to_63_characters_of_the_alphabet_are_taken_and_no_other():
    assert msg.check_name("a" * 63) == b"a" * 63 and msg.check_name("A-9.z") == b"A-9.z"
    for bad in ("", "a" * 64, "a b", "a_b", "\u00e9", b"ab", None):
        assert refused(msg.check_name, bad), bad
        assert refused(msg.enc_target, bad), bad


def test_a_header_with_another_version_a_type_out_of_range_or_a_bad_name_is_refused():
    pkt = good()
    assert msg.parse(pkt)[:3] == (msg.LOOKUP, 7, "a.example")
    for i, v in ((0, 0x51), (0, 0x01), (1, 0), (1, 9), (1, 255)):
        b = bytearray(pkt)
        b[i] = v
        assert refused(msg.parse, bytes(b)), (i, v)
    for name in (b"a b", b"a_b", b"\xc3\xa9", b"\xff"):  # the same length, a character refused
        b = bytearray(msg.seal(UP, msg.LOOKUP, 7, "x" * len(name), msg.enc_lookup("b.example")))
        b[11:11 + len(name)] = name
        assert refused(msg.parse, bytes(b)), name


def test_bodies_with_bytes_after_their_last_field_are_refused():
    t = msg.enc_target("b.example")
    assert msg.dec_lookup(t) == "b.example"
    assert msg.dec_notify_ack(msg.enc_notify_ack(5, "b.example")) == (5, "b.example")
    assert msg.dec_subscribe(msg.enc_subscribe(60, "b.example")) == (60, "b.example")
    rec = msg.enc_record(msg.ABSENT, "b.example")
    for f, body in ((msg.dec_lookup, t), (msg.dec_notify_ack, msg.enc_notify_ack(5, "b.example")),
                    (msg.dec_subscribe, msg.enc_subscribe(60, "b.example")),
                    (msg.dec_record_only, rec), (msg.dec_register, msg.enc_register(60, [])),
                    (msg.dec_register_ack, msg.enc_register_ack(60, None)),
                    (msg.dec_subscribe_ack, msg.enc_subscribe_ack(60, 9, rec))):
        f(body)
        assert refused(f, body + b"\x00"), f
        for n in range(len(body)):  # and every cut of it
            assert refused(f, body[:n]), (f, n)


def test_a_record_with_a_status_beyond_unknown_is_refused():
    for status in (msg.REGISTERED, msg.ABSENT, msg.UNKNOWN):
        assert msg.dec_record_only(msg.enc_record(status, "b.example"))[0] == status
    for status in (3, 255):
        body = bytearray(msg.enc_record(msg.UNKNOWN, "b.example"))
        body[0] = status
        assert refused(msg.dec_record_only, bytes(body)), status
