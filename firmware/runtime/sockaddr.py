# Socket addresses: what each runtime's sockets speak <-> the core's ("ip text", port).
#
# CPython's recvfrom gives (ip, port) or (ip, port, flowinfo, scope_id) with the
# text from inet_ntop (an IPv6 link-local one may carry "%scope"). The MicroPython
# unix port gives the raw struct sockaddr as bytes:
#
#   sockaddr_in    family u16 (host byte order) | port u16 BE | addr 4  | zero 8
#   sockaddr_in6   family u16 (host byte order) | port u16 BE | flowinfo 4 | addr 16 | scope 4
#
# BSD-style stacks (lwIP, the BSDs) put a length byte before a one-byte family;
# the port and address sit at the same offsets. bind() and sendto() on the unix port
# want the sockaddr socket.getaddrinfo() returns (a tuple raises TypeError there);
# the Runtime asks getaddrinfo and caches the answer. The ESP32 port (modsocket.c)
# and the lwIP ports (extmod/modlwip.c: rp2, ...) speak ("ip", port) tuples both ways
# (recvfrom, bind, sendto, and getaddrinfo's [0][-1]), so the same code serves them.
#
# Pure: no socket import. Restricted Python: runs on MicroPython and CPython.

from mast.addr import bytes_to_ip, canonical

# address family numbers: Linux (and lwIP) AF_INET 2, AF_INET6 10; the BSDs and
# macOS use 28 / 30 / 24 / 26 for AF_INET6
_V6_FAMILIES = (10, 23, 24, 26, 28, 30)


def family_of(raw):
    """The address family number in a raw sockaddr (either layout)."""
    b0, b1 = raw[0], raw[1]
    if b0 == 0 or (b1 != 0 and b0 in (16, 28)):  # big-endian u16, or BSD len + family
        return b1
    return b0  # little-endian u16 (x86, ARM, RISC-V Linux)


def from_raw(raw):
    """A raw sockaddr (bytes) -> ("canonical ip text", port). ValueError if unknown."""
    if len(raw) < 8:
        raise ValueError("sockaddr too short (%d bytes)" % len(raw))
    fam = family_of(raw)
    port = raw[2] << 8 | raw[3]
    if fam == 2:
        return bytes_to_ip(raw[4:8]), port
    if fam in _V6_FAMILIES:
        if len(raw) < 24:
            raise ValueError("sockaddr_in6 too short (%d bytes)" % len(raw))
        return bytes_to_ip(raw[8:24]), port
    raise ValueError("unknown address family %d" % fam)


class TextCache:
    """Canonical text of IPv6 addresses from socket text, and (ip, port) of raw
    sockaddrs, computed once per new address (IPv4 text from a socket is canonical
    already). Bounded."""

    def __init__(self, size=32):
        self.size = size
        self.map = {}

    def canonical(self, text):
        if ":" not in text:
            return text
        c = self.map.get(text)
        if c is None:
            i = text.find("%")  # drop a link-local "%scope"
            c = canonical(text[:i] if i >= 0 else text)
            if len(self.map) >= self.size:
                self.map = {}
            self.map[text] = c
        return c


def from_socket(sa, cache=None):
    """recvfrom's address on either runtime -> ("canonical ip text", port)."""
    if isinstance(sa, tuple):
        host = sa[0]
        if cache is not None:
            return cache.canonical(host), sa[1]
        if ":" in host:
            i = host.find("%")
            host = canonical(host[:i] if i >= 0 else host)
        return host, sa[1]
    if cache is None:
        return from_raw(sa)
    r = cache.map.get(sa)  # a raw sockaddr (bytes): decoded once per peer address
    if r is None:
        r = from_raw(sa)
        if len(cache.map) >= cache.size:
            cache.map = {}
        cache.map[sa] = r
    return r
