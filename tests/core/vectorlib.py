# What the two vector tests (test_vectors.py: MAST/1, test_presence_vectors.py:
# PRES/1) share: reading fenced `field: value` blocks out of docs/PROTOCOL.md, and
# building bytes from those fields with plain struct packing, independently of the
# codecs under test (mast.wire, mast.addr, presence.msg).
import struct

try:  # CPython: tags and HKDF from the standard library, independent of mast.crypto
    import hmac as _hmac
    import hashlib as _hashlib

    def hmac256(key, data):
        return _hmac.new(key, data, _hashlib.sha256).digest()

except ImportError:  # MicroPython: mast.crypto, itself checked against RFC 4231/5869
    from mast.crypto import Mac

    def hmac256(key, data):
        return Mac(key).digest(data)

DOC = "docs/PROTOCOL.md"


def load(fence, names=None):
    """The ```<fence> blocks of the protocol document, each as a dict of its fields (only
    those whose name is in names, if given: a board-sized heap holds few)."""
    vectors, cur = [], None
    for line in open(DOC):
        line = line.rstrip("\n")
        if line == "```" + fence:
            cur = {}
        elif line == "```" and cur is not None:
            if names is None or cur.get("name") in names:
                vectors.append(cur)
            cur = None
        elif cur is not None:
            k, v = line.split(":", 1)
            cur[k.strip()] = v.strip()
    return vectors


def hkdf(salt, ikm, info, n):
    prk = hmac256(salt or bytes(32), ikm)
    out, t, i = b"", b"", 1
    while len(out) < n:
        t = hmac256(prk, t + info + bytes([i]))
        out += t
        i += 1
    return out[:n]


def unhex(s):
    return bytes.fromhex(s)


def num(s):
    return int(s, 16) if s.startswith("0x") else int(s)


def ip_bytes(ip):
    """IPv4 dotted quad, or IPv6 with at most one '::'."""
    if ":" not in ip:
        return bytes([int(x) for x in ip.split(".")])
    head, _, tail = ip.partition("::")
    h = [int(x, 16) for x in head.split(":")] if head else []
    t = [int(x, 16) for x in tail.split(":")] if tail else []
    g = h + [0] * (8 - len(h) - len(t)) + t
    return b"".join([struct.pack(">H", x) for x in g])


def split_addr(text):
    if text.startswith("["):
        ip, port = text[1:].split("]:")
    else:
        ip, port = text.rsplit(":", 1)
    return ip, int(port)


def sockaddr(text):
    """family u8 | address | port u16 ("none": family 0 alone)."""
    if text == "none":
        return b"\x00"
    ip, port = split_addr(text)
    b = ip_bytes(ip)
    return bytes([4 if len(b) == 4 else 6]) + b + struct.pack(">H", port)


def addr_list(text):
    """count u8, then sockaddr | priority u8 | cost u8 per "ip:port/prio/cost" item."""
    items = [x.strip() for x in text.split(",") if x.strip()]
    out = bytes([len(items)])
    for item in items:
        a, prio, cost = item.split("/")
        out += sockaddr(a) + bytes([int(prio), int(cost)])
    return out
