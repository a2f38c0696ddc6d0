# Writes the presence test vectors of docs/PROTOCOL.md (between its
# "presence-vectors:start" and "presence-vectors:end" markers) from presence.msg:
#
#   PYTHONPATH=firmware:tests/core python3 tests/core/gen_presence_vectors.py
#
# tests/core/test_presence_vectors.py then checks every vector against bytes it
# builds independently from the field tables, so a codec bug cannot confirm itself.
import sys

from presence import msg
from mast.crypto import hkdf

KEY = bytes(range(0x40, 0x60))
HOST = "board1.example"
TARGET = "server.example"
C0 = 1700000000000  # a requester's counter: the wall clock in ms
ADDRS = [(("192.0.2.10", 6278), 10, 0), (("2001:db8::10", 6278), 20, 0)]
SRV_ADDRS = [(("203.0.113.5", 6278), 0, 0)]
NEW_ADDRS = [(("198.51.100.77", 6278), 0, 0), (("2001:db8:77::1", 6278), 10, 0)]


def hx(b):
    return "".join(["%02x" % x for x in b])


def fmt(a):
    return "[%s]:%d" % a if ":" in a[0] else "%s:%d" % a


def addrs_text(entries):
    return ", ".join(["%s/%d/%d" % (fmt(a), p, c) for a, p, c in entries])


def block(fields):
    return "```presence\n" + "\n".join(["%s: %s" % kv for kv in fields]) + "\n```\n"


def vectors():
    okm = hkdf(b"", KEY, b"pres1 keys" + HOST.encode(), 64)
    k_up, k_down = okm[:32], okm[32:]
    up, down = msg.keys(KEY, HOST)
    out = [block([("name", "key schedule"), ("name_key", hx(KEY)), ("host", HOST),
                  ("k_up", hx(k_up)), ("k_down", hx(k_down))])]

    def one(name, ptype, counter, body, fields):
        mac = up if msg.is_up(ptype) else down
        key = k_up if msg.is_up(ptype) else k_down
        pkt = msg.seal(mac, ptype, counter, HOST, body)
        out.append(block([("name", name), ("key", hx(key)), ("type", str(ptype)),
                          ("counter", str(counter)), ("host", HOST)] + fields + [("packet", hx(pkt))]))

    def rec(status, ttl, observed, addrs):
        return [("status", str(status)), ("target", TARGET), ("ttl", str(ttl)),
                ("observed", fmt(observed) if observed else "none"), ("addresses", addrs_text(addrs))]

    one("REGISTER", msg.REGISTER, C0, msg.enc_register(120, ADDRS),
        [("ttl", "120"), ("addresses", addrs_text(ADDRS))])
    obs = ("198.51.100.7", 40001)
    one("REGISTER-ACK", msg.REGISTER_ACK, C0, msg.enc_register_ack(120, obs),
        [("ttl", "120"), ("observed", fmt(obs))])
    obs6 = ("2001:db8::10", 6278)
    one("REGISTER-ACK (IPv6)", msg.REGISTER_ACK, C0 + 1, msg.enc_register_ack(120, obs6),
        [("ttl", "120"), ("observed", fmt(obs6))])
    one("REGISTER (withdraw)", msg.REGISTER, C0 + 2, msg.enc_register(0, []),
        [("ttl", "0"), ("addresses", "")])
    one("LOOKUP", msg.LOOKUP, C0 + 3, msg.enc_lookup(TARGET), [("target", TARGET)])
    sobs = ("203.0.113.5", 6278)
    one("LOOKUP-ACK", msg.LOOKUP_ACK, C0 + 3, msg.enc_record(msg.REGISTERED, TARGET, 97, sobs, SRV_ADDRS),
        rec(0, 97, sobs, SRV_ADDRS))
    one("LOOKUP-ACK (absent)", msg.LOOKUP_ACK, C0 + 4, msg.enc_record(msg.ABSENT, TARGET),
        rec(1, 0, None, []))
    one("SUBSCRIBE", msg.SUBSCRIBE, C0 + 5, msg.enc_subscribe(300, TARGET),
        [("ttl", "300"), ("target", TARGET)])
    floor = 1700000000500
    one("SUBSCRIBE-ACK", msg.SUBSCRIBE_ACK, C0 + 5,
        msg.enc_subscribe_ack(300, floor, msg.enc_record(msg.REGISTERED, TARGET, 97, sobs, SRV_ADDRS)),
        [("sub_ttl", "300"), ("floor", str(floor))] + rec(0, 97, sobs, SRV_ADDRS))
    nobs = ("198.51.100.77", 6278)
    one("NOTIFY", msg.NOTIFY, floor + 1, msg.enc_record(msg.REGISTERED, TARGET, 120, nobs, NEW_ADDRS),
        rec(0, 120, nobs, NEW_ADDRS))
    one("NOTIFY-ACK", msg.NOTIFY_ACK, C0 + 6, msg.enc_notify_ack(floor + 1, TARGET),
        [("acked", str(floor + 1)), ("target", TARGET)])
    return "\n".join(out)


def main(path="docs/PROTOCOL.md"):
    text = open(path).read()
    a = text.index("<!-- presence-vectors:start -->")
    b = text.index("<!-- presence-vectors:end -->")
    new = text[: a + len("<!-- presence-vectors:start -->")] + "\n\n" + vectors() + "\n" + text[b:]
    if new != text:
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            f.write(new)
        import os

        os.rename(tmp, path)
        print("%s: wrote the presence (PRES/1) test vectors" % path)
    else:
        print("%s: the presence (PRES/1) test vectors are up to date" % path)


if __name__ == "__main__":
    main(*sys.argv[1:])
