# The runtime's socket address conversions: raw sockaddrs as the MicroPython unix port
# returns them (and the layouts of other stacks), CPython's tuples, and HOST:PORT text.
# Plain functions with asserts: they run on CPython (pytest) and on MicroPython.

from runtime.hostport import parse_hostport
from runtime.sockaddr import from_raw, from_socket, family_of, TextCache

V4_LE = b"\x02\x00\x91\xb4\x7f\x00\x00\x03" + bytes(8)  # what the unix port gave on x86_64
V6_LE = (b"\x0a\x00\xba\xde" + bytes(4) + b"\x20\x01\x0d\xb8" + bytes(11) + b"\x01"
         + bytes(4))


def _value_error(fn, *args):
    try:
        fn(*args)
    except ValueError as e:
        return str(e)
    assert False, "no ValueError for %r" % (args,)


def test_ipv4_sockaddr_in_of_the_unix_port_gives_ip_text_and_port():
    assert from_raw(V4_LE) == ("127.0.0.3", 0x91B4)


def test_ipv6_sockaddr_in6_gives_canonical_text_and_port():
    assert from_raw(V6_LE) == ("2001:db8::1", 0xBADE)


def test_big_endian_family_and_bsd_length_byte_layouts_parse_alike():
    be = b"\x00\x02" + V4_LE[2:]
    bsd = b"\x10\x02" + V4_LE[2:]  # sin_len 16, AF_INET
    bsd6 = b"\x1c\x1e" + V6_LE[2:]  # sin6_len 28, macOS AF_INET6 30
    lwip6 = b"\x1c\x0a" + V6_LE[2:]  # lwIP: AF_INET6 10
    assert family_of(be) == 2 and family_of(bsd) == 2 and family_of(V4_LE) == 2
    assert from_raw(be) == from_raw(bsd) == ("127.0.0.3", 0x91B4)
    assert from_raw(bsd6) == from_raw(lwip6) == ("2001:db8::1", 0xBADE)


def test_unknown_family_and_short_sockaddrs_are_value_errors():
    assert "family 1" in _value_error(from_raw, b"\x01\x00" + bytes(14))  # AF_UNIX
    assert "too short" in _value_error(from_raw, b"\x02\x00\x00")
    assert "too short" in _value_error(from_raw, V6_LE[:20])


def test_cpython_tuples_lose_the_scope_and_become_canonical():
    assert from_socket(("127.0.0.2", 6278)) == ("127.0.0.2", 6278)
    assert from_socket(("2001:DB8:0:0::1", 6278, 0, 0)) == ("2001:db8::1", 6278)
    assert from_socket(("fe80::1%eth0", 6278, 0, 2)) == ("fe80::1", 6278)
    assert from_socket(V4_LE) == ("127.0.0.3", 0x91B4)


def test_text_cache_canonicalizes_each_ipv6_text_once_and_stays_bounded():
    c = TextCache(size=2)
    assert c.canonical("2001:DB8::1") == "2001:db8::1"
    assert c.canonical("10.0.0.1") == "10.0.0.1" and "10.0.0.1" not in c.map
    c.canonical("2001:db8::2")
    c.canonical("2001:db8::3")
    assert len(c.map) <= 2
    assert from_socket(("2001:db8:0::9", 1, 0, 0), c) == ("2001:db8::9", 1)
    # a link-local source, as CPython's recvfrom gives it: its "%scope" goes, the datagram stays
    assert from_socket(("fe80::1%eth0", 6278, 0, 2), c) == ("fe80::1", 6278)


def test_host_port_text_parses_ipv4_and_bracketed_ipv6():
    assert parse_hostport("127.0.0.2:6278") == ("127.0.0.2", 6278)
    assert parse_hostport("[2001:DB8::1]:53") == ("2001:db8::1", 53)
    assert parse_hostport("127.0.0.1:0", True) == ("127.0.0.1", 0)


def test_bad_host_port_text_says_what_is_wrong():
    assert "HOST:PORT" in _value_error(parse_hostport, "127.0.0.2")
    assert "HOST:PORT" in _value_error(parse_hostport, "2001:db8::1:53")
    assert "not a numeric" in _value_error(parse_hostport, "example.org:53")
    assert "port must be 1..65535" in _value_error(parse_hostport, "127.0.0.1:0")
    assert "65535" in _value_error(parse_hostport, "127.0.0.1:70000")
    assert "bad port" in _value_error(parse_hostport, "127.0.0.1:x")
    assert "port must be 1..65535" in _value_error(parse_hostport, "127.0.0.1:65536")
    assert parse_hostport("127.0.0.1:65535") == ("127.0.0.1", 65535)
    assert "[IPV6]:PORT" in _value_error(parse_hostport, "[127.0.0.1]:53")  # brackets: IPv6 only
    assert "text" in _value_error(parse_hostport, 6278)


def test_the_raw_sockaddr_cache_stays_bounded_however_many_sources_send():
    # (a board reads each source's raw sockaddr once: datagrams from ever new ports must not
    # grow its heap)
    c = TextCache(size=4)
    for port in range(1, 41):
        raw = V4_LE[:2] + bytes((port >> 8, port & 0xFF)) + V4_LE[4:]
        assert from_socket(raw, c) == ("127.0.0.3", port)
        assert len(c.map) <= 4
