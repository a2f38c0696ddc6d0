# MAST/1 wire format: spec constants and pure encode/decode functions.
# docs/PROTOCOL.md is the normative text; the field tables there and the code
# here must agree, and the tests check both against the test vectors in it.
#
# Every packet: header (12 bytes) | body | tag (16 bytes)
#   version u8 | type u8 | label u32 | seq u48            (big-endian)
#   tag = HMAC-SHA256(key, header | body)[:16]
# Decoders raise ValueError (or IndexError, a count past the end) on anything malformed; the
# endpoint counts and drops.

from .compat import const, struct
from .addr import ip_to_bytes, bytes_to_ip
from .crypto import FAST_C, _compare

# ---- spec constants (MAST/1) ---------------------------------------------
VERSION = const(1)
DEFAULT_PORT = const(6278)  # "MAST" on a phone keypad
HEADER_LEN = const(12)
TAG_LEN = const(16)
OVERHEAD = const(28)  # HEADER_LEN + TAG_LEN: all DATA adds beyond UDP/IP
NONCE_LEN = const(16)
CHALLENGE_LEN = const(8)
COOKIE_LEN = const(20)  # stamp u32 | cookie tag 16
MIN_INIT = const(96)  # an INIT shorter than this is dropped; INIT-ACK is 72
INIT_ACK_LEN = const(72)
PROBE_BODY = const(27)  # = the largest PROBE-ACK body, so PROBE-ACK <= PROBE
MAX_ADDRS = const(16)
MAX_NAME = const(63)
MAX_PACKET = const(2048)  # the largest packet (header + body + tag) anyone sends or must accept
MAX_PAYLOAD = const(2020)  # MAX_PACKET - OVERHEAD: the largest DATA body
SEQ_MAX = const(0xFFFFFFFFFFFF)

KEYING_PSK = const(0)
KEYING_OPEN = const(1)

INIT = const(1)
INIT_ACK = const(2)
COOKIE_ECHO = const(3)
COOKIE_ACK = const(4)
SET = const(5)
SET_ACK = const(6)
PROBE = const(7)
PROBE_ACK = const(8)
SHUT = const(9)
SHUT_ACK = const(10)
SHUT_COMPLETE = const(11)
ERR = const(12)
KEEPALIVE = const(13)
DATA = const(16)
DATA_IP = const(17)


# ERR codes
ERR_BAD_ADDRESSES = const(1)  # a SET list the receiver cannot use
ERR_UNSUPPORTED = const(2)  # a DATA type this endpoint does not take
ERR_SHUTTING_DOWN = const(3)

# ---- header -----------------------------------------------------------------
# Written for 32-bit boards, where an int of 2^30 or more is a heap object: the
# 48-bit seq is split only when it is that large (in practice never), labels are
# read byte by byte (our own labels are below 2^30, so the common case allocates
# nothing), and a packet is built in one bytearray.


def header(ptype, label, seq):
    """The header alone (seal() on CPython; tests, tools)."""
    # (seq below 2^30, small on every port: no big int on 32-bit; seq >> 32 is 0 then)
    return struct.pack(">BBIHI", VERSION, ptype, label, seq >> 32, seq if seq <= 0x3FFFFFFF else seq & 0xFFFFFFFF)


_KA = bytearray(6)  # scratch: the body of a KEEPALIVE received (boards; named as assoc's
# scratch for the body it sends: a name the core has already, as a new one can cost a board a
# new chunk of its table of names)


def parse(pkt, into=None):
    """-> (type, label, seq, body) with body a memoryview; ValueError if malformed. With
    into (a list of 3), type, label and seq go there and only body is returned (no new
    tuple per packet: boards). On MicroPython a KEEPALIVE's body is a scratch bytearray
    instead, valid until the next KEEPALIVE is parsed (read it at once)."""
    n = len(pkt)
    if n < HEADER_LEN + TAG_LEN:
        raise ValueError("short")
    if n > MAX_PACKET:
        raise ValueError("long")
    if pkt[0] != VERSION:
        raise ValueError("version")
    ptype = pkt[1]
    if not (INIT <= ptype <= KEEPALIVE or DATA <= ptype <= DATA_IP):
        raise ValueError("type")
    if FAST_C:  # CPython: one call (a 32-bit board would get a tuple and big ints)
        label, hi, seq = struct.unpack_from(">IHI", pkt, 2)
        seq |= hi << 32
    else:
        label = pkt[2] << 24 | pkt[3] << 16 | pkt[4] << 8 | pkt[5]
        seq = pkt[8] << 24 | pkt[9] << 16 | pkt[10] << 8 | pkt[11]
        if pkt[6] or pkt[7]:
            seq |= (pkt[6] << 8 | pkt[7]) << 32
    if FAST_C or ptype != KEEPALIVE or n != 34:
        body = memoryview(pkt)[HEADER_LEN : n - TAG_LEN]
    else:  # feedback (a fifth of what a board receives): its body copied into a scratch,
        body = _KA  # not two memoryviews (valid until the next; its handler keeps nothing)
        for i in range(6):
            body[i] = pkt[HEADER_LEN + i]
    if into is None:
        return ptype, label, seq, body
    into[0] = ptype
    into[1] = label
    into[2] = seq
    return body


_HDR = bytearray(HEADER_LEN)  # scratch: the header being sealed or checked


def seal(mac, ptype, label, seq, body, extra=None, into=None):
    """Build a whole packet (a bytearray); `mac` is a crypto.Mac, `extra` is
    signed but not sent. With into (a bytearray at least as long as the packet), the
    packet is written at its start instead, with no new object, and its length is
    returned (Endpoint.seal: the send buffer of direct_send)."""
    if FAST_C and into is None:  # CPython: header, body and tag joined in one copy
        h = header(ptype, label, seq)
        return bytearray().join((h, body, mac.digest3(h, body, extra)[:TAG_LEN]))
    n = HEADER_LEN + len(body)
    if into is None:
        pkt = bytearray(n + TAG_LEN)
    elif n + TAG_LEN > len(into):  # (a slice stored past its end would grow it)
        raise ValueError("a packet of %d bytes does not fit in %d" % (n + TAG_LEN, len(into)))
    else:
        pkt = into
    struct.pack_into(">BBIHI", _HDR, 0, VERSION, ptype, label, seq >> 32,
                     seq if seq <= 0x3FFFFFFF else seq & 0xFFFFFFFF)  # (as header())
    pkt[0:HEADER_LEN] = _HDR
    pkt[HEADER_LEN:n] = body
    mac.tag_into(pkt, n, _HDR, body, extra)
    return pkt if into is None else n + TAG_LEN


def check(mac, pkt, body, extra=None):
    """True if pkt (body: its body, as parse() gave it) carries the right tag."""
    if FAST_C:  # CPython: the header copied, the body as parse() gave it; compared in C
        return _compare(mac.digest3(pkt[:HEADER_LEN], body, extra)[:TAG_LEN], pkt[len(pkt) - TAG_LEN :])
    for i in range(HEADER_LEN):  # the header into the scratch: no new object
        _HDR[i] = pkt[i]
    return mac.check(pkt, _HDR, body, extra)


# ---- address lists ----------------------------------------------------------
# count u8, then per entry: family u8 (4|6) | address 4|16 | port u16 | priority u8 | cost u8


def enc_addrs(entries):
    """entries: list of ((ip, port), priority, cost)."""
    if len(entries) > MAX_ADDRS:
        raise ValueError("too many addresses")
    out = bytearray([len(entries)])
    for (ip, port), prio, cost in entries:
        b = ip_to_bytes(ip)
        out.append(4 if len(b) == 4 else 6)
        out += b
        out += struct.pack(">HBB", port, prio, cost)
    return bytes(out)


def dec_addrs(b, off):
    """-> (entries, new offset)."""
    n = b[off]
    off += 1
    if n > MAX_ADDRS:
        raise ValueError(_BAD)
    out = []
    for _ in range(n):
        fam = b[off]
        alen = 4 if fam == 4 else 16 if fam == 6 else 0
        if not alen or off + 1 + alen + 4 > len(b):
            raise ValueError(_BAD)
        ip = bytes(b[off + 1 : off + 1 + alen])
        if ip[0] >> 4 == 14 or ip[0] == 255:  # no one host's (multicast, broadcast):
            ip = bytes(alen)  # read as unspecified, which a list may not use (section 6.1)
        ip = bytes_to_ip(ip)
        port, prio, cost = struct.unpack_from(">HBB", b, off + 1 + alen)
        if port == 0:
            raise ValueError(_BAD)
        out.append(((ip, port), prio, cost))
        off += 1 + alen + 4
    return out, off


def enc_sockaddr(addr):
    b = ip_to_bytes(addr[0])
    return bytes([4 if len(b) == 4 else 6]) + b + struct.pack(">H", addr[1])


def dec_sockaddr(b, off):
    fam = b[off]
    alen = 4 if fam == 4 else 16 if fam == 6 else 0
    if not alen or off + 1 + alen + 2 > len(b):
        raise ValueError(_BAD)
    ip = bytes_to_ip(bytes(b[off + 1 : off + 1 + alen]))
    return (ip, struct.unpack_from(">H", b, off + 1 + alen)[0]), off + 3 + alen


_BAD = "malformed"  # what any body that does not decode is (and is counted as)


def _need(b, n):
    if len(b) < n:
        raise ValueError(_BAD)


def check_end(b, off):
    # Anything after the last field must be zero padding.
    for i in range(off, len(b)):
        if b[i]:
            raise ValueError(_BAD)


# ---- INIT / COOKIE-ECHO -----------------------------------------------------
# label u32 | nonce 16 | tsn u32 | keying u8 | name_len u8 | name | addrs | zero padding


def enc_init(label, nonce, tsn, keying, name, addrs):
    n = name.encode()
    if not 0 < len(n) <= MAX_NAME:
        raise ValueError("bad name")
    return struct.pack(">I", label) + nonce + struct.pack(">IBB", tsn, keying, len(n)) + n + enc_addrs(addrs)


def pad_init(body):
    short = MIN_INIT - HEADER_LEN - TAG_LEN - len(body)
    return body + bytes(short) if short > 0 else body


def dec_init(b):
    """-> (label, nonce, tsn, keying, name, addrs)."""
    _need(b, 27)
    label = struct.unpack_from(">I", b, 0)[0]
    nonce = bytes(b[4:20])
    tsn, keying, nlen = struct.unpack_from(">IBB", b, 20)
    if keying > KEYING_OPEN or not 0 < nlen <= MAX_NAME:
        raise ValueError(_BAD)
    _need(b, 26 + nlen + 1)
    name = str(bytes(b[26 : 26 + nlen]), "utf-8")
    addrs, off = dec_addrs(b, 26 + nlen)
    check_end(b, off)
    return label, nonce, tsn, keying, name, addrs


# ---- INIT-ACK ---------------------------------------------------------------
# label_R u32 | nonce_R 16 | tsn_R u32 | cookie (stamp u32 | tag 16)


def enc_init_ack(label, nonce, tsn, cookie):
    return struct.pack(">I", label) + nonce + struct.pack(">I", tsn) + cookie


def dec_init_ack(b):
    if len(b) != 44:
        raise ValueError(_BAD)
    return (struct.unpack_from(">I", b, 0)[0], bytes(b[4:20]),
            struct.unpack_from(">I", b, 20)[0], bytes(b[24:44]))


# ---- SET / COOKIE-ACK / TSN-only bodies ---------------------------------------


def enc_set(tsn, addrs):
    return struct.pack(">I", tsn) + enc_addrs(addrs)


def dec_set(b):
    _need(b, 5)
    addrs, off = dec_addrs(b, 4)
    check_end(b, off)
    return struct.unpack_from(">I", b, 0)[0], addrs


def enc_tsn(tsn):
    return struct.pack(">I", tsn)


def dec_tsn(b):
    if len(b) != 4:
        raise ValueError(_BAD)
    return struct.unpack_from(">I", b, 0)[0]


# ---- PROBE / PROBE-ACK ------------------------------------------------------
# PROBE: challenge 8 | index u8 | 18 bytes of filler (zero when sent, ignored when received)
# PROBE-ACK: challenge 8 | observed sockaddr (family u8 | addr | port u16)


def enc_probe(challenge, index):
    return challenge + bytes([index]) + bytes(PROBE_BODY - CHALLENGE_LEN - 1)


def dec_probe(b):
    # MAST/1.1: the filler's content is ignored (1.0 senders send zeros)
    if len(b) != PROBE_BODY:
        raise ValueError(_BAD)
    return bytes(b[:CHALLENGE_LEN]), b[CHALLENGE_LEN]


def enc_probe_ack(challenge, observed):
    return challenge + enc_sockaddr(observed)


def dec_probe_ack(b):
    _need(b, CHALLENGE_LEN + 7)
    observed, off = dec_sockaddr(b, CHALLENGE_LEN)
    if off != len(b):
        raise ValueError(_BAD)
    return bytes(b[:CHALLENGE_LEN]), observed


# ---- ERR / KEEPALIVE --------------------------------------------------------
# ERR: code u8 | tsn u32          KEEPALIVE: highest seq received u48


def enc_err(code, tsn):
    return struct.pack(">BI", code, tsn)


def dec_err(b):
    if len(b) != 5:
        raise ValueError(_BAD)
    return struct.unpack_from(">BI", b, 0)


def enc_keepalive(rx_highest, into=None):
    """The body (a bytearray); with into (a bytearray of 6), written there, with no new
    object."""
    b = into or bytearray(6)
    struct.pack_into(">HI", b, 0, rx_highest >> 32,  # (as header())
                     rx_highest if rx_highest <= 0x3FFFFFFF else rx_highest & 0xFFFFFFFF)
    return b


def dec_keepalive(b):
    if len(b) != 6:
        raise ValueError(_BAD)
    return int.from_bytes(b, "big")  # (no tuple; a small int on 32-bit below 2^30)
