# IP address text <-> bytes, without the socket module (ports differ in what
# inet_pton they have). Addresses inside the core are ("text", port) tuples with
# the text in canonical form (RFC 5952 for IPv6), so equal addresses compare equal.


def ip_to_bytes(text):
    """Parse IPv4 dotted-quad or IPv6 text. Returns 4 or 16 bytes; ValueError otherwise."""
    if ":" not in text:
        return _v4(text)
    if text.count("::") > 1:
        raise ValueError("bad IPv6 address")
    if text.strip("0123456789abcdefABCDEF:."):  # (no per-character strings: boards)
        raise ValueError("bad IPv6 address")
    if "::" in text:
        head, tail = text.split("::")
        h = _groups(head, False)
        t = _groups(tail, True)
        if len(h) + len(t) > 7:
            raise ValueError("bad IPv6 address")
        g = h + [0] * (8 - len(h) - len(t)) + t
    else:
        g = _groups(text, True)
    if len(g) != 8:
        raise ValueError("bad IPv6 address")
    out = bytearray(16)
    for i in range(8):
        out[2 * i] = g[i] >> 8
        out[2 * i + 1] = g[i] & 0xFF
    return bytes(out)


def _v4(text):
    parts = text.split(".")
    if len(parts) != 4:
        raise ValueError("bad IPv4 address")
    out = bytearray(4)
    for i in range(4):
        p = parts[i]
        if not p or len(p) > 3 or not p.isdigit() or (len(p) > 1 and p.startswith("0")):
            raise ValueError("bad IPv4 address")
        n = int(p)
        if n > 255:
            raise ValueError("bad IPv4 address")
        out[i] = n
    return bytes(out)


def _groups(text, last):
    out = []
    if not text:
        return out
    parts = text.split(":")
    for i in range(len(parts)):
        p = parts[i]
        if last and i == len(parts) - 1 and "." in p:
            b = _v4(p)
            out.append(b[0] << 8 | b[1])
            out.append(b[2] << 8 | b[3])
            continue
        if not p or len(p) > 4:
            raise ValueError("bad IPv6 address")
        out.append(int(p, 16))
    return out


def bytes_to_ip(b):
    """4 or 16 bytes to canonical text."""
    if len(b) == 4:
        return "%d.%d.%d.%d" % (b[0], b[1], b[2], b[3])
    if len(b) != 16:
        raise ValueError("address must be 4 or 16 bytes")
    g = [b[2 * i] << 8 | b[2 * i + 1] for i in range(8)]
    if g[:6] == [0, 0, 0, 0, 0, 0xFFFF]:  # IPv4-mapped, as RFC 5952 section 5 writes it
        return "::ffff:" + bytes_to_ip(b[12:])
    # RFC 5952: compress the longest run (>= 2) of zero groups, the first on a tie.
    best, best_len, i = -1, 1, 0
    while i < 8:
        if g[i] == 0:
            j = i
            while j < 8 and g[j] == 0:
                j += 1
            if j - i > best_len:
                best, best_len = i, j - i
            i = j
        else:
            i += 1
    if best < 0:
        return ":".join(["%x" % x for x in g])
    head = ":".join(["%x" % x for x in g[:best]])
    tail = ":".join(["%x" % x for x in g[best + best_len :]])
    return head + "::" + tail


def canonical(text):
    """Canonical text of an address: '2001:DB8:0::1' -> '2001:db8::1'."""
    return bytes_to_ip(ip_to_bytes(text))


def family(text):
    return 6 if ":" in text else 4


def fmt(addr):
    """('1.2.3.4', 6278) -> '1.2.3.4:6278'; IPv6 in brackets."""
    if ":" in addr[0]:
        return "[%s]:%d" % (addr[0], addr[1])
    return "%s:%d" % (addr[0], addr[1])


_NAME_CHARS = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-"


def parse_addr(text, default_port):
    """"1.2.3.4", "1.2.3.4:6278", "2001:db8::1", "[2001:db8::1]:6278" -> (host,
    port); the port is default_port when the text has none. ValueError if it is
    not an address. (A DNS name is no address: it is a peer's dns, checked by
    config.py's schema, the one rule for DNS names.)"""
    host, port = text, default_port
    i = text.rfind(":")
    try:
        # "host:port" or "[v6]:port" (text without ":" that gets here is refused below)
        if text.count(":") == 1 or text[i - 1:i] == "]":
            host, port = text[:i], text[i + 1:]
            if len(port) > 5 or port.strip("0123456789"):  # int() takes " +80" too
                raise ValueError
            port = int(port)
            if not 0 < port < 65536:
                raise ValueError
        if host[:1] == "[":  # brackets go around an IPv6 address only
            if host[-1:] != "]" or ":" not in host:
                raise ValueError
            host = host[1:-1]
        ip_to_bytes(host)
    except ValueError:
        raise ValueError("bad address %r" % text)
    return host, port
