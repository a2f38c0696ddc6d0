# Writes the test vectors of docs/PROTOCOL.md (between its "vectors:start" and
# "vectors:end" markers) from the core's own encoders: `make vectors`.
# tests/core/test_vectors.py then checks every vector against bytes it builds
# independently from the field tables, so a codec bug cannot confirm itself.
import sys

from mast import wire
from mast.crypto import Mac, hkdf
from mast.compat import struct

PSK = bytes(range(32))
NONCE_I = bytes(range(0x10, 0x20))
NONCE_R = bytes(range(0x20, 0x30))
LABEL_I = 0x0A000001
LABEL_R = 0x0B000002
TSN_I = 0x11223344
TSN_R = 0x55667788
ADDRS = [(("192.0.2.10", 6278), 10, 0), (("2001:db8::10", 6278), 20, 0), (("198.51.100.20", 40000), 30, 12)]


def hx(b):
    return "".join(["%02x" % x for x in b])


def addrs_text(entries):
    out = []
    for (ip, port), prio, cost in entries:
        a = "[%s]:%d" % (ip, port) if ":" in ip else "%s:%d" % (ip, port)
        out.append("%s/%d/%d" % (a, prio, cost))
    return ", ".join(out)


def keys():
    k_init = hkdf(b"", PSK, b"mast1 init", 32)
    okm = hkdf(NONCE_I + NONCE_R, PSK, b"mast1 keys" + struct.pack(">II", LABEL_I, LABEL_R), 64)
    return k_init, okm[:32], okm[32:]


def block(fields):
    return "```vector\n" + "\n".join(["%s: %s" % kv for kv in fields]) + "\n```\n"


def vectors():
    k_init, k_i2r, k_r2i = keys()
    out = [block([("name", "key schedule"), ("psk", hx(PSK)), ("nonce_i", hx(NONCE_I)),
                  ("nonce_r", hx(NONCE_R)), ("label_i", "0x%08x" % LABEL_I), ("label_r", "0x%08x" % LABEL_R),
                  ("k_init", hx(k_init)), ("k_i2r", hx(k_i2r)), ("k_r2i", hx(k_r2i))])]

    def msg(name, ptype, label, seq, key, body, fields, extra=b""):
        pkt = wire.seal(Mac(key), ptype, label, seq, body, extra)
        f = [("name", name), ("key", hx(key)), ("type", str(ptype)), ("label", "0x%08x" % label), ("seq", str(seq))]
        if extra:
            f.append(("extra", hx(extra)))
        out.append(block(f + fields + [("packet", hx(pkt))]))

    init = wire.pad_init(wire.enc_init(LABEL_I, NONCE_I, TSN_I, 0, "board1.example", ADDRS))
    base = wire.enc_init(LABEL_I, NONCE_I, TSN_I, 0, "board1.example", ADDRS)
    init_fields = [("label_i", "0x%08x" % LABEL_I), ("nonce", hx(NONCE_I)), ("tsn", "0x%08x" % TSN_I),
                   ("keying", "0"), ("host", "board1.example"), ("addresses", addrs_text(ADDRS))]
    msg("INIT", wire.INIT, 0, 0, k_init, init, init_fields + [("pad", str(len(init) - len(base)))])
    short = wire.enc_init(LABEL_I + 1, NONCE_I, TSN_I, 1, "b1", [])
    msg("INIT (open keying, no addresses, padded)", wire.INIT, 0, 0, hkdf(b"", b"", b"mast1 init", 32),
        wire.pad_init(short),
        [("label_i", "0x%08x" % (LABEL_I + 1)), ("nonce", hx(NONCE_I)), ("tsn", "0x%08x" % TSN_I),
         ("keying", "1"), ("host", "b1"), ("addresses", ""), ("pad", str(len(wire.pad_init(short)) - len(short)))])
    stamp = 0x00C0FFEE
    cookie_tag = bytes(range(0xC0, 0xD0))
    cookie = struct.pack(">I", stamp) + cookie_tag
    msg("INIT-ACK", wire.INIT_ACK, LABEL_I, 0, k_init, wire.enc_init_ack(LABEL_R, NONCE_R, TSN_R, cookie),
        [("label_r", "0x%08x" % LABEL_R), ("nonce", hx(NONCE_R)), ("tsn", "0x%08x" % TSN_R),
         ("stamp", "0x%08x" % stamp), ("cookie_tag", hx(cookie_tag))], NONCE_I)
    msg("COOKIE-ECHO", wire.COOKIE_ECHO, LABEL_R, 1, k_i2r, cookie + base,
        [("stamp", "0x%08x" % stamp), ("cookie_tag", hx(cookie_tag))] + init_fields + [("pad", "0")])
    r_addrs = [(("203.0.113.5", 6278), 0, 0)]
    msg("COOKIE-ACK", wire.COOKIE_ACK, LABEL_I, 1, k_r2i, wire.enc_addrs(r_addrs),
        [("addresses", addrs_text(r_addrs))])
    new = [(("192.0.2.10", 6278), 10, 0), (("198.51.100.99", 6278), 30, 12)]
    msg("SET", wire.SET, LABEL_R, 2, k_i2r, wire.enc_set(TSN_I + 1, new),
        [("tsn", "0x%08x" % (TSN_I + 1)), ("addresses", addrs_text(new))])
    msg("SET-ACK", wire.SET_ACK, LABEL_I, 2, k_r2i, wire.enc_tsn(TSN_I + 1), [("tsn", "0x%08x" % (TSN_I + 1))])
    ch = bytes(range(0xA0, 0xA8))
    msg("PROBE", wire.PROBE, LABEL_R, 3, k_i2r, wire.enc_probe(ch, 2), [("challenge", hx(ch)), ("index", "2")])
    msg("PROBE-ACK", wire.PROBE_ACK, LABEL_I, 3, k_r2i, wire.enc_probe_ack(ch, ("198.51.100.99", 40001)),
        [("challenge", hx(ch)), ("observed", "198.51.100.99:40001")])
    msg("PROBE-ACK (IPv6)", wire.PROBE_ACK, LABEL_I, 4, k_r2i, wire.enc_probe_ack(ch, ("2001:db8::10", 6278)),
        [("challenge", hx(ch)), ("observed", "[2001:db8::10]:6278")])
    msg("KEEPALIVE", wire.KEEPALIVE, LABEL_I, 5, k_r2i, wire.enc_keepalive(0x0102030405), [("rx_highest", str(0x0102030405))])
    msg("ERR", wire.ERR, LABEL_I, 6, k_r2i, wire.enc_err(wire.ERR_UNSUPPORTED, 0), [("code", "2"), ("tsn", "0x00000000")])
    msg("DATA", wire.DATA, LABEL_R, 0x010000000007, k_i2r, b"hello", [("payload", hx(b"hello"))])
    ippkt = bytes.fromhex("4500001c000000004011") + bytes(10) + bytes(8)
    msg("DATA-IP", wire.DATA_IP, LABEL_R, 8, k_i2r, ippkt, [("payload", hx(ippkt))])
    msg("SHUT", wire.SHUT, LABEL_R, 9, k_i2r, wire.enc_tsn(TSN_I + 2), [("tsn", "0x%08x" % (TSN_I + 2))])
    msg("SHUT-ACK", wire.SHUT_ACK, LABEL_I, 7, k_r2i, wire.enc_tsn(TSN_I + 2), [("tsn", "0x%08x" % (TSN_I + 2))])
    msg("SHUT-COMPLETE", wire.SHUT_COMPLETE, LABEL_R, 10, k_i2r, wire.enc_tsn(TSN_I + 2), [("tsn", "0x%08x" % (TSN_I + 2))])
    return "\n".join(out)


def main(path="docs/PROTOCOL.md"):
    text = open(path).read()
    a = text.index("<!-- vectors:start -->")
    b = text.index("<!-- vectors:end -->")
    new = text[: a + len("<!-- vectors:start -->")] + "\n\n" + vectors() + "\n" + text[b:]
    if new != text:
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            f.write(new)
        import os

        os.rename(tmp, path)
        print("%s: wrote the MAST/1.1 test vectors" % path)
    else:
        print("%s: the MAST/1.1 test vectors are up to date" % path)


if __name__ == "__main__":
    main(*sys.argv[1:])
