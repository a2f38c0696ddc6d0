# PRES/1, the presence protocol: spec constants, the key schedule and pure
# encode/decode functions. docs/PROTOCOL.md ("Presence") is the normative text;
# its test vectors are checked against this file (tests/core/test_presence_vectors.py).
#
# Every message: header | body | tag (16 bytes)
#   version u8 (0x50) | type u8 | counter u64 | name length u8 | name   (big-endian)
#   tag = HMAC-SHA256(k_up or k_down of name, header | body)[:16]
# Decoders raise ValueError on anything malformed; callers count and drop.
#
# Address lists and socket addresses are MAST/1's (section 6.1, 6.7): mast.wire.

from mast.compat import const, struct
from mast.crypto import Mac, hkdf
from mast.wire import enc_addrs, dec_addrs, enc_sockaddr, dec_sockaddr

# ---- spec constants (PRES/1) -------------------------------------------------
VERSION = const(0x50)  # "P"; MAST/1 packets start with 1, so one socket can carry both
DEFAULT_PORT = const(6279)  # beside MAST/1's 6278
TAG_LEN = const(16)
MIN_LEN = const(28)  # header with a one-byte name, empty body, tag
MAX_NAME = const(63)
COUNTER_MAX = const(0xFFFFFFFFFFFFFFFF)

REGISTER = const(1)
REGISTER_ACK = const(2)
LOOKUP = const(3)
LOOKUP_ACK = const(4)
SUBSCRIBE = const(5)
SUBSCRIBE_ACK = const(6)
NOTIFY = const(7)
NOTIFY_ACK = const(8)
TYPE_NAMES = ("", "REGISTER", "REGISTER-ACK", "LOOKUP", "LOOKUP-ACK", "SUBSCRIBE",
              "SUBSCRIBE-ACK", "NOTIFY", "NOTIFY-ACK")

# record status
REGISTERED = const(0)  # the name has a live registration: ttl, observed and addresses follow
ABSENT = const(1)  # served here, but not registered now (never, expired or withdrawn)
UNKNOWN = const(2)  # not a name this server serves

_NAME_CHARS = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-"


def is_up(ptype):
    """True for the types a host sends to the server (tagged with k_up)."""
    return ptype == REGISTER or ptype == LOOKUP or ptype == SUBSCRIBE or ptype == NOTIFY_ACK


def check_name(name):
    """The name as bytes, if it is 1-63 characters of A-Za-z0-9.-; ValueError otherwise."""
    if type(name) is not str or not 0 < len(name) <= MAX_NAME:
        raise ValueError("bad name")
    for c in name:
        if c not in _NAME_CHARS:
            raise ValueError("bad name")
    return name.encode()


# ---- keys ---------------------------------------------------------------------


def keys(key, name):
    """(k_up, k_down) as Macs for a name and its 32-byte key:
    OKM = HKDF(salt = "", IKM = key, info = "pres1 keys" | name, L = 64)."""
    okm = hkdf(b"", key, b"pres1 keys" + check_name(name), 64)
    return Mac(okm[:32]), Mac(okm[32:])


# ---- header and tag -----------------------------------------------------------


def seal(mac, ptype, counter, name, body):
    """A whole message; mac is the name's k_up (host to server) or k_down."""
    n = check_name(name)
    h = struct.pack(">BBQB", VERSION, ptype, counter, len(n)) + n
    return h + body + mac.tag(h, body)


def parse(pkt):
    """-> (type, counter, name, body) with body a memoryview; ValueError if malformed.
    The tag is not checked here: verify(mac, pkt) after looking the name up."""
    if len(pkt) < MIN_LEN:
        raise ValueError("short")
    ver, ptype, counter, nlen = struct.unpack_from(">BBQB", pkt, 0)
    if ver != VERSION:
        raise ValueError("version")
    if not REGISTER <= ptype <= NOTIFY_ACK:
        raise ValueError("type")
    end = len(pkt) - TAG_LEN
    if not 0 < nlen <= MAX_NAME or 11 + nlen > end:
        raise ValueError("malformed")
    try:
        name = str(bytes(pkt[11 : 11 + nlen]), "utf-8")
        check_name(name)
    except (ValueError, UnicodeError):
        raise ValueError("malformed")
    return ptype, counter, name, memoryview(pkt)[11 + nlen : end]


def verify(mac, pkt):
    n = len(pkt) - TAG_LEN
    mv = memoryview(pkt)
    return mac.verify(mv[n:], mv[:n])


# ---- pieces -------------------------------------------------------------------


def enc_target(name):
    n = check_name(name)
    return bytes([len(n)]) + n


def dec_target(b, off):
    """-> (name, new offset)."""
    if off >= len(b):
        raise ValueError("short body")
    n = b[off]
    if not 0 < n <= MAX_NAME or off + 1 + n > len(b):
        raise ValueError("bad target")
    name = str(bytes(b[off + 1 : off + 1 + n]), "utf-8")
    check_name(name)
    return name, off + 1 + n


def enc_observed(addr):
    """A socket address (MAST/1 6.7), or one zero byte for none."""
    return b"\x00" if addr is None else enc_sockaddr(addr)


def dec_observed(b, off):
    if off >= len(b):
        raise ValueError("short body")
    if b[off] == 0:
        return None, off + 1
    return dec_sockaddr(b, off)


def _u16(b, off):
    if off + 2 > len(b):
        raise ValueError("short body")
    return struct.unpack_from(">H", b, off)[0]


def _u64(b, off):
    if off + 8 > len(b):
        raise ValueError("short body")
    return struct.unpack_from(">Q", b, off)[0]


def _end(b, off):
    if off != len(b):
        raise ValueError("trailing bytes")


# ---- bodies -------------------------------------------------------------------
# REGISTER       ttl u16 | address list
# REGISTER-ACK   ttl u16 | observed
# LOOKUP         target
# LOOKUP-ACK     record
# SUBSCRIBE      ttl u16 | target
# SUBSCRIBE-ACK  ttl u16 | floor u64 | record
# NOTIFY         record
# NOTIFY-ACK     acked u64 | target
# record:        status u8 | target | ttl left u16 | observed | address list


def enc_register(ttl, addrs):
    return struct.pack(">H", ttl) + enc_addrs(addrs)


def dec_register(b):
    """-> (ttl, addrs)."""
    ttl = _u16(b, 0)
    if len(b) < 3:
        raise ValueError("short body")
    addrs, off = dec_addrs(b, 2)
    _end(b, off)
    return ttl, addrs


def enc_register_ack(ttl, observed):
    return struct.pack(">H", ttl) + enc_observed(observed)


def dec_register_ack(b):
    """-> (ttl, observed)."""
    ttl = _u16(b, 0)
    observed, off = dec_observed(b, 2)
    _end(b, off)
    return ttl, observed


def enc_lookup(target):
    return enc_target(target)


def dec_lookup(b):
    target, off = dec_target(b, 0)
    _end(b, off)
    return target


def enc_record(status, target, ttl=0, observed=None, addrs=()):
    return (bytes([status]) + enc_target(target) + struct.pack(">H", ttl) + enc_observed(observed)
            + enc_addrs(addrs))


def dec_record(b, off=0):
    """-> ((status, target, ttl, observed, addrs), new offset)."""
    if off >= len(b):
        raise ValueError("short body")
    status = b[off]
    if status > UNKNOWN:
        raise ValueError("bad status")
    target, off = dec_target(b, off + 1)
    ttl = _u16(b, off)
    observed, off = dec_observed(b, off + 2)
    if off >= len(b):
        raise ValueError("short body")
    addrs, off = dec_addrs(b, off)
    return (status, target, ttl, observed, addrs), off


def dec_record_only(b):
    rec, off = dec_record(b, 0)
    _end(b, off)
    return rec


def enc_subscribe(ttl, target):
    return struct.pack(">H", ttl) + enc_target(target)


def dec_subscribe(b):
    """-> (ttl, target)."""
    ttl = _u16(b, 0)
    target, off = dec_target(b, 2)
    _end(b, off)
    return ttl, target


def enc_subscribe_ack(ttl, floor, record):
    return struct.pack(">HQ", ttl, floor) + record


def dec_subscribe_ack(b):
    """-> (ttl, floor, record)."""
    ttl = _u16(b, 0)
    floor = _u64(b, 2)
    rec, off = dec_record(b, 10)
    _end(b, off)
    return ttl, floor, rec


def enc_notify_ack(acked, target):
    return struct.pack(">Q", acked) + enc_target(target)


def dec_notify_ack(b):
    """-> (acked, target)."""
    acked = _u64(b, 0)
    target, off = dec_target(b, 8)
    _end(b, off)
    return acked, target
