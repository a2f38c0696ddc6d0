"""Fuzz cases for MAST/1: random datagrams and structured packets of every message type.

A case is one datagram for the endpoint under test. Kinds (CASE_KINDS, with their weights):

- random: random bytes, 0 to 1,500 of them;
- header: a well-formed 12-byte header (any version, any type, a random or the real label)
  over a random body and tag;
- auth: a packet of a post-handshake type (SET, SET-ACK, PROBE, PROBE-ACK, SHUT, SHUT-ACK,
  SHUT-COMPLETE, ERR, KEEPALIVE, DATA, DATA-IP, and COOKIE-ACK, INIT-ACK out of place) whose
  body is valid or has fields mutated, **tagged with the association's real direction key**:
  these pass the replay window and the tag, and reach the handlers;
- wrongkey: the same packets tagged with a wrong key (a random one, the reverse direction's:
  a reflection, or k_init);
- init: INIT with fields mutated, tagged with the right k_init (so it reaches the stateless
  handshake) or a wrong one;
- cookie: COOKIE-ECHO built on a real cookie the target gave us (mutated INIT part, stamp,
  cookie tag, label), or a forged cookie;
- initack: INIT-ACK answering the target's own INIT (it is the initiator of one association),
  mutated, tagged with that INIT's k_init and nonce;
- replay: an earlier authenticated packet again, unchanged.

Two independent builders make the bytes: the core's own codec and HMAC (mast.wire,
mast.crypto), and a builder from the field tables of docs/PROTOCOL.md with struct and the
standard library's hmac (as tests/core/vectorlib.py builds the test vectors). Each case picks
one at random, so a codec bug the core shares with itself cannot hide every case.
"""

import random
import struct

from mast import wire
from mast.crypto import Mac

# message types (docs/PROTOCOL.md section 5), written out here, not taken from mast.wire
INIT, INIT_ACK, COOKIE_ECHO, COOKIE_ACK = 1, 2, 3, 4
SET, SET_ACK, PROBE, PROBE_ACK = 5, 6, 7, 8
SHUT, SHUT_ACK, SHUT_COMPLETE, ERR, KEEPALIVE = 9, 10, 11, 12, 13
DATA, DATA_IP = 16, 17
TYPES = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 16, 17)
AUTH_TYPES = (SET, SET_ACK, PROBE, PROBE_ACK, SHUT, SHUT_ACK, SHUT_COMPLETE, ERR, KEEPALIVE,
              DATA, DATA_IP, COOKIE_ACK, INIT_ACK)
# how often each post-handshake type is drawn: SHUT* close the association under test (the
# driver then opens a new one), so they are drawn less often than the others
AUTH_WEIGHTS = (14, 5, 12, 8, 1, 2, 1, 5, 8, 12, 5, 3, 2)

CASE_KINDS = (("random", 8), ("header", 8), ("auth", 46), ("wrongkey", 10), ("init", 10),
              ("cookie", 8), ("initack", 6), ("replay", 4))
MIN_INIT = 96
# The target's own address: address lists never name it with its port, so that the target never
# sends to itself (Linux delivers 0.0.0.0 locally too) and every datagram it counts is ours.
SELF_IPS = ("127.0.0.1", "0.0.0.0")
TARGET_PORT = 6278


# HMAC-SHA256 and HKDF from the standard library, independent of mast.crypto: the same
# helpers that build the protocol document's test vectors
from vectorlib import hkdf, hmac256, ip_bytes  # noqa: E402,F401


def k_init(psk):
    return hkdf(b"", psk, b"mast1 init", 32)


def direction_keys(psk, nonce_i, nonce_r, label_i, label_r):
    """(k_i2r, k_r2i) of section 4."""
    okm = hkdf(nonce_i + nonce_r, psk, b"mast1 keys" + struct.pack(">II", label_i, label_r), 64)
    return okm[:32], okm[32:]


class Rand:
    """A deterministic generator (random.Random, seeded by text) with the helpers the fuzzer
    needs: the same seed gives the same cases on the same CPython."""

    def __init__(self, seed):
        self._r = random.Random(str(seed))

    def bytes(self, k):
        return self._r.randbytes(k)

    def below(self, n):
        return self._r.randrange(n)

    def randint(self, lo, hi):
        return lo + self.below(hi - lo + 1)

    def chance(self, p_percent):
        return self.below(100) < p_percent

    def choice(self, seq):
        return seq[self.below(len(seq))]

    def weighted(self, items, weights):
        total = sum(weights)
        r = self.below(total)
        for item, w in zip(items, weights):
            if r < w:
                return item
            r -= w
        return items[-1]

    def shuffle(self, lst):
        for i in range(len(lst) - 1, 0, -1):
            j = self.below(i + 1)
            lst[i], lst[j] = lst[j], lst[i]


# ---- the builder from the field tables (struct + hashlib's hmac) ------------------------------


class TableBuilder:
    """Packets from docs/PROTOCOL.md's field tables, tagged with the standard library's HMAC."""

    name = "table"

    def header(self, ptype, label, seq, version=1):
        return struct.pack(">BBIHI", version & 0xFF, ptype & 0xFF, label & 0xFFFFFFFF,
                           (seq >> 32) & 0xFFFF, seq & 0xFFFFFFFF)

    def seal(self, key, ptype, label, seq, body, extra=b""):
        h = self.header(ptype, label, seq)
        return h + body + hmac256(key, h + body + extra)[:16]

    def sockaddr(self, addr):
        ip, port = addr
        b = ip_bytes(ip)
        return bytes([4 if len(b) == 4 else 6]) + b + struct.pack(">H", port & 0xFFFF)

    def addrs(self, entries):
        out = bytes([len(entries) & 0xFF])
        for a, prio, cost in entries:
            out += self.sockaddr(a) + bytes([prio & 0xFF, cost & 0xFF])
        return out

    def init_body(self, label, nonce, tsn, keying, name, entries):
        n = name if isinstance(name, bytes) else name.encode()
        return (struct.pack(">I", label & 0xFFFFFFFF) + nonce + struct.pack(">IBB", tsn & 0xFFFFFFFF,
                keying & 0xFF, len(n) & 0xFF) + n + self.addrs(entries))

    def tsn(self, tsn):
        return struct.pack(">I", tsn & 0xFFFFFFFF)

    def set_body(self, tsn, entries):
        return self.tsn(tsn) + self.addrs(entries)

    def probe(self, challenge, index):
        return challenge + bytes([index & 0xFF]) + bytes(18)

    def probe_ack(self, challenge, observed):
        return challenge + self.sockaddr(observed)

    def err(self, code, tsn):
        return struct.pack(">BI", code & 0xFF, tsn & 0xFFFFFFFF)

    def keepalive(self, hi):
        return struct.pack(">HI", (hi >> 32) & 0xFFFF, hi & 0xFFFFFFFF)

    def init_ack(self, label, nonce, tsn, cookie):
        return struct.pack(">I", label & 0xFFFFFFFF) + nonce + struct.pack(">I", tsn & 0xFFFFFFFF) + cookie


class CoreBuilder(TableBuilder):
    """The same packets from the core's own codec and HMAC (mast.wire, mast.crypto), where
    the codec can express them; the field mutations it refuses (17 addresses, port 0, a bad
    family) fall back to the table builder."""

    name = "core"

    def __init__(self):
        self._macs = {}

    def _mac(self, key):
        m = self._macs.get(key)
        if m is None:
            if len(self._macs) > 64:
                self._macs = {}
            m = self._macs[key] = Mac(key)
        return m

    def seal(self, key, ptype, label, seq, body, extra=b""):
        if not (0 <= label <= 0xFFFFFFFF and 0 <= seq <= wire.SEQ_MAX and 0 <= ptype <= 255):
            return TableBuilder.seal(self, key, ptype, label, seq, body, extra)
        return wire.seal(self._mac(key), ptype, label, seq, body, extra)

    def addrs(self, entries):
        try:
            return wire.enc_addrs(entries)
        except (ValueError, OverflowError, struct.error):
            return TableBuilder.addrs(self, entries)

    def init_body(self, label, nonce, tsn, keying, name, entries):
        try:
            if isinstance(name, bytes):
                name = name.decode()
            return wire.enc_init(label, nonce, tsn, keying, name, entries)
        except (ValueError, OverflowError, struct.error, UnicodeError):
            return TableBuilder.init_body(self, label, nonce, tsn, keying, name, entries)

    def set_body(self, tsn, entries):
        try:
            return wire.enc_set(tsn, entries)
        except (ValueError, OverflowError, struct.error):
            return TableBuilder.set_body(self, tsn, entries)

    def probe(self, challenge, index):
        if len(challenge) != 8 or not 0 <= index <= 255:
            return TableBuilder.probe(self, challenge, index)
        return wire.enc_probe(challenge, index)

    def probe_ack(self, challenge, observed):
        try:
            return challenge + wire.enc_sockaddr(observed)
        except (ValueError, OverflowError, struct.error):
            return TableBuilder.probe_ack(self, challenge, observed)


# ---- what the fuzzer knows -----------------------------------------------------------------


class Assoc:
    """The association under test, as its peer (the fuzzer) knows it: the label the target
    wants in our packets, our next seq, the raw direction keys, the target's TSN."""

    def __init__(self, label, seq, k_tx, k_rx, peer_tsn, my_tsn):
        self.label = label  # the target's label: goes in every packet to it
        self.seq = seq
        self.k_tx = k_tx
        self.k_rx = k_rx
        self.peer_tsn = peer_tsn  # the target's TSN (we answer its SETs with it)
        self.my_tsn = my_tsn  # our TSN: SET/SHUT requests count on from it


class Cookie:
    """A cookie the target gave to our handshake identity, with the INIT it answered."""

    def __init__(self, name, psk, label_i, nonce_i, tsn_i, label_r, nonce_r, tsn_r, cookie):
        self.name = name
        self.psk = psk
        self.label_i, self.nonce_i, self.tsn_i = label_i, nonce_i, tsn_i
        self.label_r, self.nonce_r, self.tsn_r = label_r, nonce_r, tsn_r
        self.cookie = cookie
        self.seq = 1


class Context:
    """Everything a case may use. The driver keeps it up to date: .assoc after each
    handshake, .cookies from INIT-ACKs to our handshake identity, .their_init from the
    target's INITs, .sources (the addresses the fuzzer sends from)."""

    def __init__(self, names):
        self.names = names  # {"main": (name, psk), "hs": (name, psk), "ini": (name, psk)}
        self.assoc = None
        self.cookies = []  # the latest few Cookie
        self.their_init = None  # (label_i, nonce_i) of the target's latest INIT to "ini"
        self.history = []  # recent authenticated packets sent, for replays
        self.victims = [("127.0.0.%d" % i, 9000 + i) for i in range(100, 116)]
        self.own = None  # the fuzzer's main address, listed first in most address lists

    def remember(self, pkt):
        self.history.append(pkt)
        if len(self.history) > 64:
            del self.history[:16]


# ---- field generators ------------------------------------------------------------------------


def rand_ip(r, v6=None):
    if v6 is None:
        v6 = r.chance(30)
    if v6:
        k = r.below(5)
        if k == 0:
            return "::"
        if k == 1:
            return "::1"
        return "2001:db8:%x::%x" % (r.below(65536), r.below(65536))
    k = r.below(6)
    if k == 0:
        return "0.0.0.0"
    if k == 1:
        return "127.0.0.%d" % r.randint(1, 254)
    if k == 2:
        return "255.255.255.255"
    return "%d.%d.%d.%d" % (r.randint(1, 254), r.below(256), r.below(256), r.randint(1, 254))


def rand_entries(r, n=None, ctx=None):
    if n is None:
        n = r.choice((0, 1, 1, 2, 3, 5, 16, 16, 17, 20))
    out = []
    if ctx is not None and ctx.own is not None and r.chance(97):
        # a peer lists its own address: the fuzzer's packets keep coming from a listed one
        # (a list without it withdraws it: MAST/1.1 then drops what comes from there, and the
        # fuzzer needs a new association; 3% of lists do that)
        out.append((ctx.own, r.below(256), 0))
        n = max(0, n - 1)
    for _ in range(n):
        if ctx is not None and r.chance(30):
            a = r.choice(ctx.victims)
        else:
            a = (rand_ip(r), r.choice((0, 1, 6278, r.below(65536))))
            if a[0] in SELF_IPS and a[1] == TARGET_PORT:
                a = (a[0], TARGET_PORT - 1)  # not the target itself: its own probes would count
        out.append((a, r.below(256), r.choice((0, 0, 10, 255))))
    return out


def mutate_bytes(r, b):
    """A few byte-level mutations of a body: flip, set, cut, extend, duplicate."""
    b = bytearray(b)
    for _ in range(r.randint(1, 3)):
        k = r.below(7)
        if k == 0 and b:
            b[r.below(len(b))] ^= 1 << r.below(8)
        elif k == 1 and b:
            b[r.below(len(b))] = r.choice((0, 1, 4, 6, 16, 17, 63, 64, 127, 128, 255))
        elif k == 2:
            b = b[: r.below(len(b) + 1)]
        elif k == 3:
            b += r.bytes(r.randint(1, 24))
        elif k == 4:
            b += bytes(r.randint(1, 40))
        elif k == 5 and b:
            i = r.below(len(b))
            b = b[:i] + b[i:] + b[i:]
        elif k == 6 and len(b) > 2:
            i = r.below(len(b) - 1)
            b = b[:i] + b[i + 1:]
    return bytes(b)


class Generator:
    """Draws cases: gen.case() -> (kind, source index, datagram). Source index picks one of
    the driver's sockets (0: the fuzzer's main one, the association's first path)."""

    def __init__(self, seed, ctx, n_sources=1, kinds=CASE_KINDS):
        self.r = Rand(seed)
        self.ctx = ctx
        self.n_sources = n_sources
        self.kinds = [k for k, _ in kinds]
        self.weights = [w for _, w in kinds]
        self.builders = (CoreBuilder(), TableBuilder())
        self.counts = {}

    def case(self):
        r = self.r
        kind = r.weighted(self.kinds, self.weights)
        b = r.choice(self.builders)
        pkt = getattr(self, "_" + kind)(r, b)
        if pkt is None:  # what the kind needs is not there yet (no cookie, no INIT seen)
            kind = "random"
            pkt = self._random(r, b)
        self.counts[kind] = self.counts.get(kind, 0) + 1
        src = 0
        if self.n_sources > 1 and r.chance(15):
            src = r.randint(1, self.n_sources - 1)
        return kind, src, pkt

    # ---- kinds ---------------------------------------------------------------------------

    def _random(self, r, b):
        return r.bytes(r.choice((0, 1, 11, 12, 27, 28, 29, 40, 95, 96, r.below(200), r.below(1500))))

    def _header(self, r, b):
        a = self.ctx.assoc
        label = a.label if (a is not None and r.chance(50)) else int.from_bytes(r.bytes(4), "big")
        version = 1 if r.chance(85) else r.below(256)
        ptype = r.choice(TYPES) if r.chance(70) else r.below(256)
        return b.header(ptype, label, int.from_bytes(r.bytes(6), "big"), version) + r.bytes(
            r.choice((16, 17, 30, 43, 60, r.below(300))))

    def _seq(self, r):
        """The seq of an authenticated case: mostly the next one; sometimes an old one, one
        far ahead (the window jumps) or the largest there is."""
        a = self.ctx.assoc
        k = r.below(100)
        if k < 85:
            s = a.seq
        elif k < 90:
            s = max(0, a.seq - r.randint(1, 3000))
        elif k < 95:
            s = a.seq + r.randint(1, 5000)
        elif k < 98:
            s = a.seq + r.randint(60000, 70000)
        else:
            s = 0
        if s >= a.seq:
            a.seq = s + 1  # the target commits it once the tag verifies
        return s

    def _body(self, r, b, ptype):
        """A body for ptype: valid, or with one field mutated."""
        a = self.ctx.assoc
        ctx = self.ctx
        if ptype == SET:
            k = r.below(6)
            tsn = (a.my_tsn + 1) & 0xFFFFFFFF
            if k == 0:
                tsn = a.my_tsn  # the same (a retransmission)
            elif k == 1:
                tsn = (a.my_tsn + 0x80000000) & 0xFFFFFFFF
            elif k == 2:
                tsn = int.from_bytes(r.bytes(4), "big")
            if tsn != a.my_tsn and ((tsn - a.my_tsn) & 0xFFFFFFFF) < 0x80000000:
                a.my_tsn = tsn
            body = b.set_body(tsn, rand_entries(r, ctx=ctx))
        elif ptype == SET_ACK or ptype in (SHUT, SHUT_ACK, SHUT_COMPLETE):
            tsn = r.choice((a.peer_tsn, a.my_tsn, int.from_bytes(r.bytes(4), "big")))
            body = b.tsn(tsn)
        elif ptype == PROBE:
            body = b.probe(r.bytes(8), r.choice((0, 1, 2, 15, 16, 254, 255, r.below(256))))
        elif ptype == PROBE_ACK:
            observed = r.choice(ctx.victims) if r.chance(30) else (rand_ip(r), r.below(65536))
            body = b.probe_ack(r.bytes(8), observed)
        elif ptype == ERR:
            body = b.err(r.choice((0, 1, 2, 3, r.below(256))), r.choice((0, a.my_tsn, r.below(1 << 30))))
        elif ptype == KEEPALIVE:
            body = b.keepalive(r.choice((0, 1, a.seq, (1 << 48) - 1, int.from_bytes(r.bytes(6), "big"))))
        elif ptype == DATA or ptype == DATA_IP:
            n = r.choice((0, 1, 20, 64, 500, 1200, 1400, r.below(1473)))
            body = r.bytes(n)
            if ptype == DATA_IP and n >= 20 and r.chance(50):
                body = b"\x45" + body[1:]
        elif ptype == COOKIE_ACK:
            body = b.addrs(rand_entries(r, ctx=ctx))
        else:  # INIT_ACK on an established association
            body = b.init_ack(int.from_bytes(r.bytes(4), "big"), r.bytes(16), 0, r.bytes(20))
        if r.chance(35):
            body = mutate_bytes(r, body)
        return body

    def _auth(self, r, b, wrong=False):
        a = self.ctx.assoc
        if a is None:
            return None
        ptype = r.weighted(AUTH_TYPES, AUTH_WEIGHTS)
        body = self._body(r, b, ptype)
        key = a.k_tx
        if wrong:
            key = r.choice((a.k_rx, r.bytes(32), k_init(self.ctx.names["main"][1])))
            seq = a.seq + r.below(4)  # a fresh seq: the tag alone must stop it
        else:
            seq = self._seq(r)
        label = a.label if r.chance(97) else int.from_bytes(r.bytes(4), "big")
        pkt = b.seal(key, ptype, label, seq, body)
        if not wrong:
            self.ctx.remember(pkt)
        return pkt

    def _wrongkey(self, r, b):
        return self._auth(r, b, True)

    def _init(self, r, b):
        name, psk = self.ctx.names[r.choice(("hs", "hs", "hs", "main"))]
        label = r.choice((0, 1, int.from_bytes(r.bytes(4), "big")))
        nonce = r.bytes(16)
        tsn = int.from_bytes(r.bytes(4), "big")
        keying = r.choice((0, 0, 0, 1, 2, 255))
        nm = name.encode()
        k = r.below(8)
        if k == 0:
            nm = b"stranger.example"
        elif k == 1:
            nm = bytes([0xFF, 0xFE]) + nm  # not UTF-8
        elif k == 2:
            nm = nm * 8  # too long
        body = b.init_body(label, nonce, tsn, keying, nm, rand_entries(r, ctx=self.ctx))
        if r.chance(80):
            short = MIN_INIT - 28 - len(body)
            if short > 0:
                body += bytes(short)
        if r.chance(30):
            body = mutate_bytes(r, body)
        key = k_init(psk) if r.chance(80) else r.bytes(32)
        return b.seal(key, INIT, 0 if r.chance(90) else r.below(1 << 32), 0, body)

    def _cookie(self, r, b):
        if not self.ctx.cookies or r.chance(10):
            # a forged cookie: no INIT-ACK behind it
            name, psk = self.ctx.names["hs"]
            ck = Cookie(name, psk, r.below(1 << 32), r.bytes(16), r.below(1 << 32),
                        r.below(1 << 32), r.bytes(16), 0, r.bytes(20))
        else:
            ck = r.choice(self.ctx.cookies)
        label_r = ck.label_r
        cookie = ck.cookie
        k = r.below(10)
        if k == 0:
            cookie = mutate_bytes(r, cookie)[:20].ljust(20, b"\0")
        elif k == 1:
            label_r = int.from_bytes(r.bytes(4), "big")
        name = ck.name.encode()
        keying = 0
        label_i, nonce_i, tsn_i = ck.label_i, ck.nonce_i, ck.tsn_i
        if k == 2:
            keying = r.choice((1, 2))
        elif k == 3:
            tsn_i = (tsn_i + 1) & 0xFFFFFFFF
        elif k == 4:
            name = b"stranger.example"
        body = cookie + b.init_body(label_i, nonce_i, tsn_i, keying, name, rand_entries(r, ctx=self.ctx))
        if k == 5:
            body = mutate_bytes(r, body)
        elif k == 6 and r.chance(50):
            body += bytes(r.below(40))
        i2r, _ = direction_keys(ck.psk, nonce_i, ck.nonce_r, label_i, label_r)
        key = i2r if r.chance(85) else r.bytes(32)
        seq = ck.seq if r.chance(80) else r.choice((0, ck.seq + 100, (1 << 48) - 1))
        ck.seq += 1
        return b.seal(key, COOKIE_ECHO, label_r, seq, body)

    def _initack(self, r, b):
        their = self.ctx.their_init
        if their is None:
            return None
        label_i, nonce_i = their
        name, psk = self.ctx.names["ini"]
        body = b.init_ack(r.below(1 << 32) if r.chance(95) else 0, r.bytes(16), r.below(1 << 32),
                          r.bytes(20))
        if r.chance(60):
            body = mutate_bytes(r, body)
        extra = nonce_i if r.chance(85) else r.bytes(16)
        label = label_i if r.chance(90) else r.below(1 << 32)
        return b.seal(k_init(psk), INIT_ACK, label, 0, body, extra)

    def _replay(self, r, b):
        h = self.ctx.history
        if not h:
            return None
        return r.choice(h)
