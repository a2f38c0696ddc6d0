# HMAC-SHA-256 (RFC 2104), HKDF-SHA-256 (RFC 5869) and a constant-time compare.
#
# MicroPython has no `hmac` module and its sha256 objects cannot be copied, so
# HMAC is built here from sha256 alone. Mac precomputes the padded inner and
# outer key blocks once per key; each digest then costs two hashes. Where the
# sha256 objects can be copied (CPython), the states after the key blocks are
# kept and copied instead, and tags are compared by hmac.compare_digest (C).
from .compat import const, sha256

try:
    from hmac import compare_digest as _compare  # CPython: constant time, in C
except ImportError:  # MicroPython has no hmac module
    _compare = None
FAST_C = _compare is not None  # CPython: slicing beats a loop in Python (allocations are cheap)

_BLOCK = const(64)  # SHA-256 block size in bytes
_HASH = const(32)  # SHA-256 digest size in bytes
TAG_LEN = const(16)  # a MAST packet tag: HMAC-SHA-256 truncated to 128 bits


def ct_equal(a, b):
    """True if a == b; time depends only on the lengths, not on the contents."""
    if _compare is not None:
        return _compare(a, b)
    if len(a) != len(b):
        return False
    r = 0
    for i in range(len(a)):
        r |= a[i] ^ b[i]
    return r == 0


class Mac:
    """HMAC-SHA-256 with one key: Mac(key).digest(part, part, ...)."""

    def __init__(self, key):
        if len(key) > _BLOCK:
            key = sha256(key).digest()
        key = bytes(key) + bytes(_BLOCK - len(key))
        # the pads as one integer each: no loop in Python (a fleet server makes keys for every
        # INIT, forged ones too: a byte loop was most of its cost)
        k = int.from_bytes(key, "big")
        ones = int.from_bytes(b"\x01" * _BLOCK, "big")  # 0x0101...01: x a byte, that byte 64 times
        self._ipad = (k ^ ones * 0x36).to_bytes(_BLOCK, "big")
        self._opad = (k ^ ones * 0x5C).to_bytes(_BLOCK, "big")
        h = sha256(self._ipad)  # CPython: hash the key blocks once, copy the states
        self._copy = (h, sha256(self._opad)) if hasattr(h, "copy") else None

    def digest3(self, a, b=None, c=None):
        """The 32-byte MAC of a | b | c (b, c optional; wire.seal and wire.check call it):
        fixed arguments, so a call allocates no tuple on MicroPython."""
        k = self._copy
        if k is not None:
            h = k[0].copy()
            h2 = k[1].copy()
        else:
            h = sha256(self._ipad)
            h2 = sha256(self._opad)
        h.update(a)
        if b:
            h.update(b)
        if c:
            h.update(c)
        h2.update(h.digest())
        return h2.digest()

    def digest(self, *parts):
        """The 32-byte MAC of the concatenation of parts (bytes-like)."""
        if len(parts) > 3:
            parts = (b"".join([bytes(p) for p in parts]),)
        return self.digest3(*parts)

    def tag(self, *parts):
        """The digest truncated to TAG_LEN bytes."""
        return self.digest(*parts)[:TAG_LEN]

    def tag_into(self, pkt, n, a, b, c=None):
        """Write the tag of a | b | c (the first n bytes of pkt, and extra) into
        pkt[n:n + TAG_LEN], with no new object (wire.seal on MicroPython)."""
        d = self.digest3(a, b, c)
        for i in range(TAG_LEN):
            pkt[n + i] = d[i]

    def check(self, pkt, a, b, c=None):
        """True if pkt ends in the tag of a | b | c (pkt without its tag, and extra);
        constant time, no new object (wire.check on MicroPython)."""
        n = len(pkt) - TAG_LEN
        d = self.digest3(a, b, c)
        r = 0
        for i in range(TAG_LEN):
            r |= d[i] ^ pkt[n + i]
        return r == 0

    def verify(self, tag, *parts):
        """True if tag is the right tag for parts (constant-time compare)."""
        return ct_equal(tag, self.tag(*parts))


def hkdf(salt, ikm, info, length):
    """HKDF-SHA-256 (RFC 5869): extract, PRK = HMAC(salt, ikm) (no salt: 32 zero bytes),
    then expand to length bytes of output keying material (one function: a board keeps each
    function's code and object for good)."""
    if not 0 <= length <= 255 * _HASH:
        raise ValueError("hkdf length out of range")
    m = Mac(Mac(salt or bytes(_HASH)).digest(ikm))
    t = b""
    out = []
    for i in range(1, (length + _HASH - 1) // _HASH + 1):
        t = m.digest(t, info, bytes((i,)))
        out.append(t)
    return b"".join(out)[:length]
