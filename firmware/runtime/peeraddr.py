# Peer addresses that are not one host's: a multicast group, the broadcast address or the
# unspecified address (0.0.0.0 or ::, where Linux sends to this host itself); and IPv4 written
# IPv4-mapped (::ffff:a.b.c.d), which no uplink reaches as written. The
# core's schema (mast/config.py) takes any IP address, and its .mpy is at its budget: the
# endpoint file (runconfig.py), mastd's configuration and a board's check (board/settings.py;
# a module of its own there, loaded with the check and forgotten after: main.ONCE) call this.
#
# Pure: runs on MicroPython and CPython.

from mast.addr import bytes_to_ip, ip_to_bytes, parse_addr


def not_a_host(host):
    """Why the IP address text host is not one host's (a peer's), or None: a multicast group
    (224.0.0.0/4, ff00::/8) or the broadcast address reaches many hosts or none, and no
    answer to a PROBE comes from it (sends fail with tx_error, or go to a group); the
    unspecified address (0.0.0.0, ::) is no host's: Linux sends there to this host itself."""
    b = ip_to_bytes(host)
    if len(b) == 16 and b[:12] == b"\0" * 10 + b"\xff\xff":  # ::ffff:a.b.c.d is a.b.c.d
        b = b[12:]
    if b[0] == 0xFF and (len(b) == 16 or b == b"\xff\xff\xff\xff"):
        return "a multicast address" if len(b) == 16 else "the broadcast address"
    if len(b) == 4 and 224 <= b[0] <= 239:
        return "a multicast address"
    if not b.strip(b"\0"):
        return "the unspecified address"
    return None


def peer_addresses_error(core):
    """(key, message) for the first configured peer address (core: a validated core
    configuration) that is not one host's, else None."""
    peers = core.get("peers") or {}
    for name in sorted(peers):
        for a in peers[name].get("addresses") or ():
            host = parse_addr(a, None)[0]
            why = not_a_host(host)
            if why:
                return ("peers.%s.addresses" % name,
                        "bad item %r: %s is not a peer's; give the peer's own (unicast) address"
                        % (a, why))
            b = ip_to_bytes(host)
            if b[:12] == b"\0" * 10 + b"\xff\xff":  # only IPv6 uplinks would try it; none gets there
                return ("peers.%s.addresses" % name, "bad item %r: an IPv4-mapped IPv6 address; "
                        "write it as IPv4: %s" % (a, bytes_to_ip(b[12:])))
    return None
