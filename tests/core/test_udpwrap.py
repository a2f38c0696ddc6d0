# The relay header (SOCKS5 UDP request header, RFC 1928 section 7) and the address text helpers.
# Plain functions with asserts: they run on CPython (pytest) and on MicroPython (a small runner).

from runtime import udpwrap


def _raises_value_error(fn, *args):
    try:
        fn(*args)
    except ValueError:
        return True
    return False


def test_ipv4_datagram_is_rsv_frag_atyp1_addr_port_data():
    buf = udpwrap.wrap("192.0.2.7", 6278, b"hello")
    assert buf == b"\x00\x00\x00\x01" + bytes((192, 0, 2, 7)) + b"\x18\x86" + b"hello"


def test_ipv6_datagram_is_rsv_frag_atyp4_addr_port_data():
    buf = udpwrap.wrap("2001:db8::1", 53, b"x")
    addr = b"\x20\x01\x0d\xb8" + b"\x00" * 11 + b"\x01"
    assert buf == b"\x00\x00\x00\x04" + addr + b"\x00\x35" + b"x"


def test_ipv4_round_trip_gives_host_port_and_payload():
    host, port, payload = udpwrap.unwrap(udpwrap.wrap("127.0.0.2", 65535, b"data"))
    assert (host, port, bytes(payload)) == ("127.0.0.2", 65535, b"data")


def test_empty_payload_round_trips():
    host, port, payload = udpwrap.unwrap(udpwrap.wrap("10.0.0.1", 0, b""))
    assert (host, port, bytes(payload)) == ("10.0.0.1", 0, b"")


def test_ipv6_round_trips_in_canonical_form():
    cases = [
        ("::", "::"),
        ("::1", "::1"),
        ("2001:db8::1", "2001:db8::1"),
        ("2001:DB8:0:0:0:0:0:1", "2001:db8::1"),
        ("2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"),  # first of two equal runs
        ("2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"),  # a lone zero group stays
        ("2001:0db8:0000:0000:0000:0000:0002:0001", "2001:db8::2:1"),
        ("1:0:0:2:0:0:0:3", "1:0:0:2::3"),  # the longest run wins
        ("fe80::", "fe80::"),
        ("1:2:3:4:5:6:7::", "1:2:3:4:5:6:7:0"),
        ("::ffff:1.2.3.4", "::ffff:1.2.3.4"),
        ("::FFFF:0102:0304", "::ffff:1.2.3.4"),
    ]
    for text, canonical in cases:
        host, port, payload = udpwrap.unwrap(udpwrap.wrap(text, 443, b"p"))
        assert (host, port, bytes(payload)) == (canonical, 443, b"p"), (text, host)


def test_address_bytes_convert_both_ways():
    assert udpwrap.host_to_bytes("1.2.3.4") == b"\x01\x02\x03\x04"
    assert udpwrap.host_to_bytes("::1") == b"\x00" * 15 + b"\x01"
    assert udpwrap.bytes_to_host(b"\xff" * 16) == "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"
    assert udpwrap.bytes_to_host(b"\x00\x01" * 8) == "1:1:1:1:1:1:1:1"


def test_unwrap_payload_is_a_view_into_the_buffer():
    buf = bytearray(udpwrap.wrap("1.2.3.4", 9, b"abc"))
    payload = udpwrap.unwrap(buf)[2]
    buf[-1] = ord("z")
    assert bytes(payload) == b"abz"


def test_bad_host_text_is_refused():
    bad = [
        "",
        "1.2.3",
        "1.2.3.4.5",
        "256.1.1.1",
        "01.2.3.4",
        "1.2.3.-4",
        "1.2.3.+4",
        "a.b.c.d",
        "example.org",
        ":::",
        "1::2::3",
        "12345::",
        "0x1::",
        "1:2:3:4:5:6:7:8:9",
        "1:2:3:4:5:6:7",
        "1:2:3:4:5:6:7:8::",
        "::1:2:3:4:5:6:7:8",
        ":1::",
        "1.2.3.4::",
        "::1.2.3.256",
        "fe80::1%eth0",
        " ::1",
    ]
    for host in bad:
        assert _raises_value_error(udpwrap.wrap, host, 1, b""), host


def test_bad_port_is_refused():
    assert _raises_value_error(udpwrap.wrap, "1.2.3.4", 65536, b"")
    assert _raises_value_error(udpwrap.wrap, "1.2.3.4", -1, b"")


def test_fragmented_datagram_is_refused():
    buf = bytearray(udpwrap.wrap("1.2.3.4", 9, b"abc"))
    buf[2] = 1
    assert _raises_value_error(udpwrap.unwrap, buf)


def test_domain_name_address_type_is_refused():
    buf = b"\x00\x00\x00\x03" + bytes((11,)) + b"example.org" + b"\x00\x35" + b"q"
    assert _raises_value_error(udpwrap.unwrap, buf)


def test_unknown_address_type_is_refused():
    assert _raises_value_error(udpwrap.unwrap, b"\x00\x00\x00\x02" + b"\x00" * 8)


def test_truncated_headers_are_refused():
    v4 = udpwrap.wrap("1.2.3.4", 9, b"")
    v6 = udpwrap.wrap("::1", 9, b"")
    for buf in (v4, v6):
        for n in range(len(buf)):
            assert _raises_value_error(udpwrap.unwrap, buf[:n]), (buf, n)
    assert bytes(udpwrap.unwrap(v4)[2]) == b""
