# The UDP relay header: how an uplink socket tells a relay (the link emulator, or any SOCKS5 UDP
# relay) where a datagram really goes, and how the relay tells it where a reply really came from.
#
# The format is the SOCKS5 UDP request header of RFC 1928 section 7, unchanged:
#
#     +-----+------+------+----------+----------+----------+
#     | RSV | FRAG | ATYP | DST.ADDR | DST.PORT |   DATA   |
#     +-----+------+------+----------+----------+----------+
#     |  2  |  1   |  1   | 4 or 16  |    2     | variable |
#
# RSV is zero, FRAG is zero (we never fragment), ATYP is 1 (IPv4) or 4 (IPv6). ATYP 3 (a domain
# name) is refused: an uplink always knows the numeric address of its peer.
#
# Hosts are text, as sockets report them: "192.0.2.1" or "2001:db8::1", converted by mast.addr
# (no socket module: many MicroPython ports lack inet_pton/inet_ntop).
#
# Restricted Python: runs on MicroPython and CPython alike.

from mast.compat import const
from mast.addr import ip_to_bytes, bytes_to_ip

_ATYP_IPV4 = const(1)
_ATYP_DOMAIN = const(3)
_ATYP_IPV6 = const(4)
_HEAD = const(4)  # RSV(2) FRAG(1) ATYP(1)
MAX_HEAD = const(22)  # the longest header it unwraps: _HEAD, an IPv6 address, a port

# The numeric-host helpers are the core's (mast.addr), re-exported under the names
# the link emulator uses.
host_to_bytes = ip_to_bytes
bytes_to_host = bytes_to_ip


def wrap(host, port, data):
    """The datagram a relay needs to send `data` to (host, port), or that it hands back for a
    datagram from (host, port): SOCKS5 UDP header + data."""
    addr = host_to_bytes(host)
    if not 0 <= port <= 0xFFFF:
        raise ValueError("bad port %r" % (port,))
    atyp = _ATYP_IPV4 if len(addr) == 4 else _ATYP_IPV6
    return bytes((0, 0, 0, atyp)) + addr + bytes((port >> 8, port & 0xFF)) + data


def unwrap(buf):
    """(host, port, payload) from a wrapped datagram; payload is a memoryview into buf.
    ValueError for a truncated header, FRAG != 0, a domain name (ATYP 3) or an unknown ATYP."""
    if len(buf) < _HEAD:
        raise ValueError("truncated relay header")
    if buf[2] != 0:
        raise ValueError("fragmented relay datagram (FRAG %d)" % buf[2])
    atyp = buf[3]
    if atyp == _ATYP_IPV4:
        n = 4
    elif atyp == _ATYP_IPV6:
        n = 16
    elif atyp == _ATYP_DOMAIN:
        raise ValueError("domain name in relay header")
    else:
        raise ValueError("unknown address type %d in relay header" % atyp)
    end = _HEAD + n + 2
    if len(buf) < end:
        raise ValueError("truncated relay header")
    mv = memoryview(buf)
    host = bytes_to_host(mv[_HEAD : _HEAD + n])
    port = buf[end - 2] << 8 | buf[end - 1]
    return host, port, mv[end:]
