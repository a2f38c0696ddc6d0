# "HOST:PORT" text -> the core's ("canonical ip", port): the endpoint file (runconfig.py),
# presence (rendezvous.py), the endpoint process's commands, and on a board an uplink through
# a relay and the console's `uplink NAME addr`. A module of its own, not in sockaddr.py: a
# board keeps sockaddr.py loaded (every datagram's source) and needs this only now and then
# (main.ONCE: forgotten after).
#
# Pure: runs on MicroPython and CPython.

from mast.addr import canonical


def parse_hostport(text, allow_zero=False):
    """"1.2.3.4:6278" or "[2001:db8::1]:6278" -> ("canonical ip", port).
    ValueError (with a message fit to follow a key name) otherwise."""
    if not isinstance(text, str):
        # (its type, not its value: an object or a list may hold a key)
        raise ValueError("must be text HOST:PORT, not %s" % type(text).__name__)
    if text[:1] == "[":
        i = text.find("]")
        host, rest = text[1:i], text[i + 1:]
        if i < 0 or ":" not in host or rest[:1] != ":":
            raise ValueError("expected [IPV6]:PORT, not %r" % text)
        port = rest[1:]
    else:
        i = text.rfind(":")
        host, port = text[:i], text[i + 1:]
        if i < 0 or ":" in host:
            raise ValueError("expected HOST:PORT (IPv6: [HOST]:PORT), not %r" % text)
    try:
        host = canonical(host)
    except ValueError:
        raise ValueError("%r is not a numeric IPv4 or IPv6 address" % host)
    if not port or len(port) > 5 or not port.isdigit():
        raise ValueError("bad port in %r" % text)
    n = int(port)
    if n > 65535 or (n == 0 and not allow_zero):
        raise ValueError("port must be 1..65535%s, not %d" % (" (or 0: any)" if allow_zero else "", n))
    return host, n
