"""IP packets as mastd sees them on its TUN: addresses, routing by allowed prefixes, MSS clamp.

Pure functions on bytes; no I/O.

- Routes: each peer's allowed prefixes (peers.<name>.allowed, with its internal address as a
  /32 or /128 besides). An IP packet read from the TUN goes to the peer whose prefix holds the
  destination, longest prefix first. An IP packet received from a peer is written to the TUN
  only if its *source* lies in that same peer's prefixes (WireGuard's cryptokey routing).
- clamp_mss: a TCP SYN's MSS option is lowered to what fits the tunnel, so TCP never sends
  segments the TUN's MTU would refuse.
"""

import struct

from .settings import internal_prefix, parse_prefix, prefix_text

_U32 = struct.Struct(">I").unpack_from  # an IPv4 address as an int: the caches' key


def addresses(pkt):
    """(version, source int, destination int) of an IPv4 or IPv6 packet; None if it is not one."""
    if len(pkt) < 20:
        return None
    v = pkt[0] >> 4
    if v == 4:
        return 4, int.from_bytes(pkt[12:16], "big"), int.from_bytes(pkt[16:20], "big")
    if v == 6 and len(pkt) >= 40:
        return 6, int.from_bytes(pkt[8:24], "big"), int.from_bytes(pkt[24:40], "big")
    return None


_CACHE_MAX = 65536  # addresses remembered by the per-packet caches (then they start again)


class Routes:
    """Longest-prefix match from address to peer name, per IP version.

    The data path asks per packet: peer_for(pkt) (which peer gets a packet read from the TUN)
    and source_ok(peer, pkt) (may that peer send from this packet's source?). Both remember
    their answer per address (the raw 4 or 16 address bytes as the key), so a flow costs one
    dictionary lookup per packet instead of a longest-prefix walk; a new Routes object (every
    reload) starts with empty caches. The caches' keys: an IPv4 address as an int (no new
    object for it), an IPv6 address as its 16 bytes."""

    def __init__(self):
        self._by_len = {4: {}, 6: {}}  # version -> plen -> {network: peer}
        self._lens = {4: [], 6: []}
        self.prefixes = {}  # peer -> [prefix text], for status and the kernel routes
        self._own = {}  # peer -> [(version, network, mask)]: parsed once, checked per packet
        self._dst = {}  # destination address (key) -> peer name or None
        self._src = {}  # peer -> {source address (key) -> bool}

    def add(self, peer, text):
        ver, net, plen, _ = parse_prefix(text)
        self._by_len[ver].setdefault(plen, {})[net] = peer
        self._lens[ver] = sorted(self._by_len[ver], reverse=True)
        self.prefixes.setdefault(peer, []).append(text)
        bits = 32 if ver == 4 else 128
        self._own.setdefault(peer, []).append((ver, net, ((1 << plen) - 1) << (bits - plen) if plen else 0))

    def lookup(self, ver, addr):
        bits = 32 if ver == 4 else 128
        table = self._by_len[ver]
        for plen in self._lens[ver]:
            mask = ((1 << plen) - 1) << (bits - plen) if plen else 0
            peer = table[plen].get(addr & mask)
            if peer is not None:
                return peer
        return None

    def holds(self, peer, ver, addr):
        """True if addr lies in one of peer's own prefixes (not just a route to it)."""
        for v, net, mask in self._own.get(peer, ()):
            if v == ver and addr & mask == net:
                return True
        return False

    def peer_for(self, pkt):
        """The peer an IP packet read from the TUN goes to (by its destination); None if no
        peer's prefix holds it; False if pkt is not an IPv4 or IPv6 packet."""
        if len(pkt) < 20:
            return False
        v = pkt[0] >> 4
        if v == 4:
            key = _U32(pkt, 16)[0]
        elif v == 6 and len(pkt) >= 40:
            key = bytes(pkt[24:40])
        else:
            return False
        try:
            return self._dst[key]
        except KeyError:
            pass
        peer = self.lookup(v, key if v == 4 else int.from_bytes(key, "big"))
        if len(self._dst) >= _CACHE_MAX:
            self._dst.clear()
        self._dst[key] = peer
        return peer

    def source_ok(self, peer, pkt):
        """True if the IP packet pkt (bytes or a memoryview), received from peer, has its
        source in peer's own prefixes (cryptokey routing); False for any other packet."""
        if len(pkt) < 20:
            return False
        v = pkt[0] >> 4
        if v == 4:
            key = _U32(pkt, 12)[0]
        elif v == 6 and len(pkt) >= 40:
            key = bytes(pkt[8:24])  # pkt may be a memoryview (the core's on_data)
        else:
            return False
        cache = self._src.get(peer)
        if cache is None:
            cache = self._src[peer] = {}
        try:
            return cache[key]
        except KeyError:
            pass
        ok = self.holds(peer, v, key if v == 4 else int.from_bytes(key, "big"))
        if len(cache) >= _CACHE_MAX:
            cache.clear()
        cache[key] = ok
        return ok


def routes_from(core_cfg):
    """Routes for every peer: its allowed prefixes and its internal address."""
    r = Routes()
    for name in sorted(core_cfg["peers"]):
        p = core_cfg["peers"][name]
        for text in p.get("allowed", []):
            r.add(name, prefix_text(text))
        if p.get("internal"):
            r.add(name, internal_prefix(p["internal"]))
    return r


def _csum_add(total, old, new):
    """RFC 1624 incremental update of a 16-bit one's complement checksum (old -> new word)."""
    s = (~total & 0xFFFF) + (~old & 0xFFFF) + new
    s = (s & 0xFFFF) + (s >> 16)
    s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def maybe_tcp(pkt):
    """A cheap test that passes every TCP packet (IPv4 protocol or IPv6 next header 6) and
    few others: only those need clamp_mss, which checks properly."""
    return len(pkt) >= 40 and (pkt[9] == 6 or pkt[6] == 6)


def clamp_mss(pkt, mss_v4, mss_v6):
    """pkt (bytes) with a TCP SYN's MSS option lowered to mss_v4 / mss_v6 if above it (the TCP
    checksum updated); any other packet unchanged. Returns bytes or a bytearray."""
    if len(pkt) < 40:
        return pkt
    v = pkt[0] >> 4
    if v == 4:
        ihl = (pkt[0] & 15) * 4
        if pkt[9] != 6 or (pkt[6] & 0x1F) or pkt[7]:  # not TCP, or a fragment
            return pkt
        off, limit = ihl, mss_v4
    elif v == 6:
        if pkt[6] != 6:  # TCP right after the fixed header only
            return pkt
        off, limit = 40, mss_v6
    else:
        return pkt
    if len(pkt) < off + 20 or not pkt[off + 13] & 0x02:  # SYN
        return pkt
    doff = (pkt[off + 12] >> 4) * 4
    i, end = off + 20, min(off + doff, len(pkt))
    while i < end:
        kind = pkt[i]
        if kind == 0:
            break
        if kind == 1:
            i += 1
            continue
        if i + 1 >= end or pkt[i + 1] < 2:
            break
        if kind == 2 and pkt[i + 1] == 4 and i + 4 <= end:
            mss = pkt[i + 2] << 8 | pkt[i + 3]
            if mss <= limit:
                return pkt
            out = bytearray(pkt)
            out[i + 2], out[i + 3] = limit >> 8, limit & 0xFF
            c = out[off + 16] << 8 | out[off + 17]
            # the MSS value sits at an even offset from the TCP header when i - off is even;
            # otherwise its bytes straddle two checksum words: update both
            rel = i + 2 - off
            if rel % 2 == 0:
                c = _csum_add(c, mss, limit)
            else:
                w0o = pkt[i + 1] << 8 | pkt[i + 2]
                w0n = out[i + 1] << 8 | out[i + 2]
                w1o = pkt[i + 3] << 8 | pkt[i + 4] if i + 4 < len(pkt) else pkt[i + 3] << 8
                w1n = out[i + 3] << 8 | out[i + 4] if i + 4 < len(pkt) else out[i + 3] << 8
                c = _csum_add(_csum_add(c, w0o, w0n), w1o, w1n)
            out[off + 16], out[off + 17] = c >> 8, c & 0xFF
            return out
        i += pkt[i + 1]
    return pkt


def tcp_checksum_ok(pkt):
    """True if an IPv4 TCP packet's checksum verifies (for tests)."""
    ihl = (pkt[0] & 15) * 4
    seg = bytes(pkt[ihl:])
    pseudo = bytes(pkt[12:20]) + bytes((0, 6)) + len(seg).to_bytes(2, "big")
    data = pseudo + seg + (b"\0" if len(seg) % 2 else b"")
    s = 0
    for k in range(0, len(data), 2):
        s += data[k] << 8 | data[k + 1]
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return s == 0xFFFF
