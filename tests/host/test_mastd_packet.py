"""mastd's packet handling: routing by allowed prefixes (cryptokey routing), MSS clamping,
the TUN's MTU, and uplinks from netifd's dump."""

import json
import os
import struct
import types

import pytest

from mastd import links, packet, tun


def ipv4(src, dst, proto=17, payload=b""):
    def a(t):
        return bytes(int(x) for x in t.split("."))

    hdr = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), 0, 0x4000, 64, proto, 0, a(src), a(dst))
    return hdr + payload


def tcp_syn(mss, with_nops=0):
    opts = b"\x01" * with_nops + struct.pack(">BBH", 2, 4, mss)
    opts += b"\x01" * (-len(opts) % 4)
    hdr = struct.pack(">HHIIBBHHH", 40000, 5001, 1, 0, (20 + len(opts)) // 4 << 4, 0x02, 65535, 0, 0) + opts
    pkt = bytearray(ipv4("192.168.1.2", "192.168.50.2", 6, hdr))
    # a correct TCP checksum to start from
    seg = bytes(pkt[20:])
    pseudo = bytes(pkt[12:20]) + b"\0\x06" + len(seg).to_bytes(2, "big")
    data = pseudo + seg
    s = sum((data[i] << 8 | data[i + 1]) for i in range(0, len(data), 2))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    c = ~s & 0xFFFF
    pkt[36], pkt[37] = c >> 8, c & 0xFF
    return bytes(pkt)


def mss_of(pkt):
    i = pkt.index(b"\x02\x04", 40)
    return pkt[i + 2] << 8 | pkt[i + 3]


def routes():
    cfg = {"peers": {
        "site-a": {"allowed": ["192.168.1.0/24", "10.1.0.0/16"], "internal": "10.99.0.2"},
        "site-b": {"allowed": ["192.168.1.128/25"]},
        "full": {"allowed": ["0.0.0.0/0", "2001:db8::/32"]},
    }}
    return packet.routes_from(cfg)


def n(text):
    return int.from_bytes(bytes(int(x) for x in text.split(".")), "big")


def test_the_destination_goes_to_the_peer_with_the_longest_matching_prefix():
    r = routes()
    assert r.lookup(4, n("192.168.1.7")) == "site-a"
    assert r.lookup(4, n("192.168.1.200")) == "site-b"
    assert r.lookup(4, n("10.99.0.2")) == "site-a"  # its internal address
    assert r.lookup(4, n("8.8.8.8")) == "full"  # the full tunnel takes the rest


def test_a_peer_may_send_only_from_its_own_prefixes():
    r = routes()
    assert r.holds("site-a", 4, n("10.1.2.3"))
    assert not r.holds("site-a", 4, n("192.168.50.1"))
    assert not r.holds("site-b", 4, n("192.168.1.7"))  # site-a's, even though both are /24-ish
    assert r.holds("full", 4, n("203.0.113.9"))
    assert r.holds("full", 6, int.from_bytes(bytes.fromhex("20010db8" + "00" * 11 + "01"), "big"))


def ipv6(src_last, dst):
    return bytes([0x60]) + bytes(7) + bytes(15) + bytes([src_last]) + dst


def test_the_per_packet_route_gives_the_same_peer_as_the_prefix_walk_from_the_first_packet_on():
    r = routes()
    for dst, peer in (("192.168.1.7", "site-a"), ("192.168.1.200", "site-b"), ("10.99.0.2", "site-a"),
                      ("8.8.8.8", "full")):
        pkt = ipv4("192.168.1.2", dst)
        assert r.peer_for(pkt) == peer  # a miss: the walk
        assert r.peer_for(pkt) == peer  # remembered
    v6 = ipv6(1, bytes.fromhex("20010db8" + "00" * 11 + "07"))
    assert r.peer_for(v6) == "full"
    assert r.peer_for(ipv6(1, bytes.fromhex("20010db9" + "00" * 12))) is None  # no prefix holds it
    assert r.peer_for(b"\x45\x00") is False  # not an IP packet at all
    assert r.peer_for(bytes([0x50]) + bytes(40)) is False


def test_the_per_packet_source_check_remembers_each_peers_answer_separately():
    r = routes()
    from_a = ipv4("10.1.2.3", "192.168.50.1")
    assert r.source_ok("site-a", from_a) and r.source_ok("site-a", from_a)
    assert not r.source_ok("site-b", from_a)  # the same source, another peer: refused
    assert not r.source_ok("site-b", ipv4("192.168.1.7", "10.0.0.1"))  # site-a's address
    assert r.source_ok("site-b", ipv4("192.168.1.200", "10.0.0.1"))
    assert not r.source_ok("site-a", b"garbage")
    assert r.source_ok("full", ipv6(1, bytes(16))) is False  # from ::1: in none of its prefixes
    v6 = bytes([0x60]) + bytes(7) + bytes.fromhex("20010db8" + "00" * 11 + "01") + bytes(16)
    assert r.source_ok("full", v6)
    assert not r.source_ok("site-a", v6)


def test_maybe_tcp_passes_every_tcp_packet_to_the_clamp():
    assert packet.maybe_tcp(tcp_syn(1460))
    assert not packet.maybe_tcp(ipv4("1.2.3.4", "5.6.7.8", 17, bytes(40)))
    tcp6 = bytes([0x60, 0, 0, 0, 0, 20, 6, 64]) + bytes(32) + bytes(20)
    assert packet.maybe_tcp(tcp6)


def test_addresses_of_ipv4_ipv6_and_garbage():
    assert packet.addresses(ipv4("1.2.3.4", "5.6.7.8")) == (4, n("1.2.3.4"), n("5.6.7.8"))
    v6 = bytes([0x60]) + bytes(7) + bytes(15) + b"\x01" + bytes(15) + b"\x02"
    assert packet.addresses(v6) == (6, 1, 2)
    assert packet.addresses(b"\x45\x00") is None
    assert packet.addresses(bytes([0x50]) + bytes(40)) is None


def test_a_syn_with_a_larger_mss_is_clamped_and_its_checksum_stays_right():
    for nops in (0, 1, 2, 3):  # the MSS value word-aligned or straddling two checksum words
        syn = tcp_syn(1460, nops)
        assert packet.tcp_checksum_ok(syn)
        out = packet.clamp_mss(syn, 1404, 1384)
        assert mss_of(out) == 1404, nops
        assert packet.tcp_checksum_ok(out), nops
        assert len(out) == len(syn)


def test_a_syn_whose_ip_header_has_options_is_clamped_in_its_tcp_header():
    # IHL 6: a Router Alert option (4 bytes) before the TCP header; the MSS is 4 bytes later
    syn = tcp_syn(1460)
    opt = bytes([0x94, 4, 0, 0])
    withopt = bytearray(bytes([0x46]) + syn[1:20] + opt + syn[20:])
    withopt[2:4] = len(withopt).to_bytes(2, "big")
    withopt = bytes(withopt)
    assert packet.tcp_checksum_ok(withopt)
    out = packet.clamp_mss(withopt, 1404, 1384)
    assert mss_of(out) == 1404 and len(out) == len(withopt)
    assert bytes(out[:24]) == withopt[:24]  # the IP header and its option untouched
    assert packet.tcp_checksum_ok(out)


def test_a_syn_with_a_small_mss_and_other_packets_are_untouched():
    syn = tcp_syn(1200)
    assert packet.clamp_mss(syn, 1404, 1384) is syn
    udp = ipv4("1.2.3.4", "5.6.7.8", 17, bytes(40))
    assert packet.clamp_mss(udp, 1404, 1384) is udp


def test_tun_mtu_is_the_smallest_uplink_mtu_less_ip_udp_and_mast():
    assert tun.tun_mtu([1500, 1500]) == 1444  # 1500 - 20 - 8 - 28
    assert tun.tun_mtu([1500, 1400, 1492]) == 1344
    assert tun.tun_mtu([1500], ipv6=True) == 1424
    assert tun.tun_mtu([]) == 1444
    assert tun.tun_mtu([9000, 9000]) == 8944  # jumbo frames: not capped at Ethernet's 1500


def test_tun_mtu_stays_at_1280_when_the_tunnel_carries_ipv6():
    # a 1280 cellular uplink made the TUN 1224: the kernel took IPv6 off it with its routes,
    # and a route to ::/0 by the WAN then carried the LAN's IPv6 in the clear
    assert tun.tun_mtu([1500, 1280]) == 1224  # IPv4 only: as small as the path
    assert tun.tun_mtu([1500, 1280], inner6=True) == 1280
    assert tun.tun_mtu([1500, 1280], ipv6=True, inner6=True) == 1280
    assert tun.tun_mtu([1500, 1400], inner6=True) == 1344  # above the floor: unchanged
    assert tun.tun_mtu([600]) == 576


def test_a_default_route_is_carried_as_two_halves_so_the_uplinks_keep_theirs():
    assert tun.kernel_routes("0.0.0.0/0") == ["0.0.0.0/1", "128.0.0.0/1"]
    assert tun.kernel_routes("::/0") == ["::/1", "8000::/1"]
    assert tun.kernel_routes("192.168.1.0/24") == ["192.168.1.0/24"]


def test_any_spelling_of_a_prefix_is_routed_as_its_network_and_a_full_tunnel_as_two_halves(monkeypatch):
    # allowed "0::/0" (or "::0/0", "0.0.0.0/00") was not seen as the default route: mastd ran
    # `ip -6 route add 0::/0 dev mast0`, which failed (File exists: the uplink's default) and
    # stopped the routes after it; "10.0.0.1/8" (host bits) failed the same way (`ip` refuses
    # it: "Invalid prefix for given prefix length"); "FD50:0::1/64" showed as written
    cfg = {"peers": {"b": {"allowed": ["0::/0", "0.0.0.0/00", "10.0.0.1/8", "FD50:0::1/64"]}}}
    r = packet.routes_from(cfg)
    assert r.prefixes == {"b": ["::/0", "0.0.0.0/0", "10.0.0.0/8", "fd50::/64"]}
    calls = []
    monkeypatch.setattr(tun, "ip", recorded_ip(calls))
    have = set()
    assert tun.set_routes("mast0", have, r.prefixes["b"]) == []
    assert have == {"::/1", "8000::/1", "0.0.0.0/1", "128.0.0.0/1", "10.0.0.0/8", "fd50::/64"}
    assert r.lookup(4, n("10.200.0.1")) == "b"


def test_a_peers_internal_address_in_brackets_is_its_host_route_not_a_traceback(tmp_path):
    # the schema takes "[fd00::2]" for an address: mastd --check (and mastd's start) ended in a
    # traceback (ValueError: bad IPv6 address) from the prefix check
    from mastd import settings

    psk = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
    doc = {"name": "r", "internal": "fd00::1/64", "peers": {"b": {"psk": psk, "internal": "[FD00::2]"}}}
    conf = settings.from_json_text(json.dumps(doc))
    assert packet.routes_from(conf.core).prefixes == {"b": ["fd00::2/128"]}
    doc["peers"]["c"] = {"psk": psk, "allowed": ["fd00::2/128"]}  # and it is the peer's own
    with pytest.raises(settings.ConfigError, match=r"^peers\.c\.allowed: fd00::2/128 is peer b's already"):
        settings.from_json_text(json.dumps(doc))


def recorded_ip(calls, table=None):
    """A stand-in for tun.ip: each call's arguments go to calls; `ip -j route show` answers
    table (the routes as `ip -j` gives them; default: none)."""
    def ip(*args, **kw):
        calls.append(args)
        return types.SimpleNamespace(stdout=json.dumps(table or []) if "-j" in args else "",
                                     stderr="", returncode=0)
    return ip


def test_a_route_change_among_thousands_runs_ip_for_the_changed_routes_only(monkeypatch):
    # a concentrator with 3,000 peers ran 6,000 `ip route replace` for one peer added (its loop
    # stood for 10 s and its routers failed over): now only what changed, and one look at the
    # table for the routes to add
    calls = []
    monkeypatch.setattr(tun, "ip", recorded_ip(calls))
    old = ["10.%d.%d.0/24" % (i // 250, i % 250) for i in range(3000)]
    have = set(old)
    assert tun.set_routes("mast0", have, old + ["192.168.7.0/24"]) == []
    assert calls == [("-4", "-j", "route", "show"), ("-4", "route", "add", "192.168.7.0/24", "dev", "mast0")]
    assert have == set(old) | {"192.168.7.0/24"}
    del calls[:]
    tun.set_routes("mast0", have, old + ["192.168.7.0/24", "0.0.0.0/0"])
    assert have == set(old) | {"192.168.7.0/24", "0.0.0.0/1", "128.0.0.0/1"}
    del calls[:]
    tun.set_routes("mast0", have, old[1:] + ["::/0"])
    assert sorted(calls) == sorted([
        ("route", "del", "10.0.0.0/24", "dev", "mast0"),
        ("route", "del", "192.168.7.0/24", "dev", "mast0"),
        ("route", "del", "0.0.0.0/1", "dev", "mast0"),
        ("route", "del", "128.0.0.0/1", "dev", "mast0"),
        ("-6", "-j", "route", "show"),
        ("-6", "route", "add", "::/1", "dev", "mast0"),
        ("-6", "route", "add", "8000::/1", "dev", "mast0")])
    assert have == set(old[1:]) | {"::/1", "8000::/1"}
    del calls[:]
    tun.set_routes("mast0", set(), ["10.1.0.0/16"])  # (configure: everything is new)
    assert calls == [("-4", "-j", "route", "show"), ("-4", "route", "add", "10.1.0.0/16", "dev", "mast0")]
    del calls[:]
    tun.set_routes("mast0", have, old[1:] + ["::/0"])  # nothing changed: nothing run, not even a look
    assert calls == []


# the main table of a router as `ip -j route show` gives it (both families in one list here)
HELD = [
    {"dst": "default", "gateway": "100.64.1.1", "dev": "wan", "metric": 10},  # an uplink's: not a half
    {"dst": "10.50.0.0/24", "dev": "lan9", "scope": "link"},  # `ip route replace` took it
    {"dst": "10.60.0.0/24", "gateway": "10.1.0.2", "dev": "lan9", "metric": 50},  # an add shadowed it
    {"dst": "10.80.0.0/24", "nexthops": [{"gateway": "10.1.0.2", "dev": "lan9", "weight": 1},
                                         {"gateway": "10.2.0.2", "dev": "lan8", "weight": 1}]},
    {"type": "unreachable", "dst": "10.70.0.0/24"},
    {"dst": "10.99.0.3", "dev": "mast1", "scope": "link"},  # another mastd's TUN (a host route)
    {"dst": "0.0.0.0/1", "dev": "tun0", "scope": "link"},  # a VPN's half of the default
    {"dst": "10.90.0.0/24", "dev": "mast0", "scope": "link"},  # through this TUN already
    {"dst": "10.99.0.0/24", "dev": "mast0", "protocol": "kernel", "scope": "link"},  # its address's
    {"dst": "10.40.0.0/16", "dev": "lan9", "scope": "link"},  # a shorter prefix: not the same route
    {"dst": "fd00:5::/64", "dev": "lan9", "metric": 1024},
]


def test_a_prefix_this_host_routes_already_through_another_device_is_left_to_it_and_said(monkeypatch):
    # `ip route replace` took a LAN's, a VPN's or another mastd's route for the prefix (and it
    # was gone when mastd stopped); an add with another metric would shadow it: now left alone
    calls = []
    monkeypatch.setattr(tun, "ip", recorded_ip(calls, HELD))
    have = set()
    new = ["10.50.0.0/24", "10.60.0.0/24", "10.80.0.0/24", "10.70.0.0/24", "10.99.0.3/32", "0.0.0.0/0",
           "10.90.0.0/24", "10.99.0.0/24", "10.40.1.0/24", "fd00:5::/64", "fd00:6::/64"]
    assert tun.set_routes("mast0", have, new) == [
        ("10.50.0.0/24", ["lan9"]), ("10.60.0.0/24", ["lan9"]), ("10.80.0.0/24", ["lan9", "lan8"]),
        ("10.70.0.0/24", ["unreachable route"]), ("10.99.0.3/32", ["mast1"]), ("0.0.0.0/1", ["tun0"]),
        ("fd00:5::/64", ["lan9"])]
    assert [c for c in calls if "-j" not in c] == [
        ("-4", "route", "add", "128.0.0.0/1", "dev", "mast0"), ("-4", "route", "add", "10.40.1.0/24", "dev", "mast0"),
        ("-6", "route", "add", "fd00:6::/64", "dev", "mast0")]
    # ours: what it added, and a route it found through its own TUN; not its address's own route
    assert have == {"128.0.0.0/1", "10.40.1.0/24", "fd00:6::/64", "10.90.0.0/24"}
    del calls[:]
    assert tun.set_routes("mast0", have, []) == [] and have == set()  # the peers gone: only ours go
    assert sorted(calls) == sorted(("route", "del", r, "dev", "mast0")
                                   for r in ("128.0.0.0/1", "10.40.1.0/24", "fd00:6::/64", "10.90.0.0/24"))


def test_an_ipv6_unreachable_or_blackhole_route_is_said_as_such_not_as_through_lo(monkeypatch):
    # `ip -6 -j route show` gives IPv6's reject routes a "dev": "lo" (IPv4's have none): the
    # prefix was said to be held "through lo", status held_by ["lo"]
    calls = []
    table = [{"type": "unreachable", "dst": "fd0a::/48", "dev": "lo", "metric": 1024, "flags": [], "pref": "medium"},
             {"type": "blackhole", "dst": "fd0b::/48", "dev": "lo", "metric": 1024, "flags": [], "pref": "medium"}]
    monkeypatch.setattr(tun, "ip", recorded_ip(calls, table))
    have = set()
    assert tun.set_routes("mast0", have, ["fd0a::/48", "fd0b::/48"]) == [
        ("fd0a::/48", ["unreachable route"]), ("fd0b::/48", ["blackhole route"])] and have == set()


def test_a_prefix_not_taken_is_tried_again_at_the_next_change_and_taken_once_free(monkeypatch):
    calls = []
    table = [{"dst": "10.50.0.0/24", "dev": "lan9"}]
    monkeypatch.setattr(tun, "ip", recorded_ip(calls, table))
    have = set()
    assert tun.set_routes("mast0", have, ["10.50.0.0/24"]) == [("10.50.0.0/24", ["lan9"])] and have == set()
    del table[:]  # the user deleted that route
    assert tun.set_routes("mast0", have, ["10.50.0.0/24"]) == [] and have == {"10.50.0.0/24"}
    assert calls[-1] == ("-4", "route", "add", "10.50.0.0/24", "dev", "mast0")


def test_an_ip_that_answers_no_json_is_an_oserror_naming_the_ip_mastd_needs(tmp_path, monkeypatch):
    fake_ip(tmp_path, monkeypatch, 'echo "Usage: ip [OPTIONS] route"\n')  # (busybox's ip has no -j)
    with pytest.raises(OSError) as e:
        tun.set_routes("mast0", set(), ["10.50.0.0/24"])
    assert str(e.value) == ("ip -4 -j route show: not JSON ('Usage: ip [OPTIONS] route\\n'...): mastd needs "
                            "iproute2's ip (OpenWrt: ip-full)")


def test_a_tun_another_process_holds_or_no_tun_driver_is_refused_saying_what_to_do(monkeypatch):
    # (a second mastd on the same tun said "cannot start: [Errno 16] Device or resource busy")
    import errno
    import types

    closed = []
    fake = types.SimpleNamespace(O_RDWR=os.O_RDWR, O_NONBLOCK=os.O_NONBLOCK, open=lambda path, flags: 99,
                                 close=closed.append)

    def busy(fd, req, arg):
        raise OSError(errno.EBUSY, os.strerror(errno.EBUSY))

    monkeypatch.setattr(tun, "os", fake)
    monkeypatch.setattr(tun.fcntl, "ioctl", busy)
    with pytest.raises(OSError) as e:
        tun.open_tun("mast0")
    assert e.value.strerror == ("TUN mast0 is in use by another process (a mastd that runs already?); stop it, "
                                "or give this one another tun")
    assert e.value.errno == errno.EBUSY and closed == [99]

    def missing(path, flags):
        raise FileNotFoundError(errno.ENOENT, "No such file or directory", path)

    fake.open = missing
    with pytest.raises(OSError) as e:
        tun.open_tun("mast0")
    assert e.value.strerror == ("no /dev/net/tun: the kernel's tun driver is missing (OpenWrt: the kmod-tun "
                                "package; elsewhere: modprobe tun)")


def test_a_mastd_not_run_as_root_is_told_that_its_tun_needs_root(monkeypatch):
    # (as a user: "cannot start: [Errno 13] Permission denied: '/dev/net/tun'" where it is
    # 0600, "cannot start: Operation not permitted" where anyone may open it)
    import errno
    import types

    closed = []

    def denied(path, flags):
        raise PermissionError(errno.EACCES, "Permission denied", path)

    fake = types.SimpleNamespace(O_RDWR=os.O_RDWR, O_NONBLOCK=os.O_NONBLOCK, open=denied, close=closed.append)
    monkeypatch.setattr(tun, "os", fake)
    with pytest.raises(OSError) as e:
        tun.open_tun("mast0")
    assert e.value.strerror == ("cannot open /dev/net/tun (Permission denied): a TUN needs root (CAP_NET_ADMIN); "
                                "run mastd as root")
    assert e.value.errno == errno.EACCES and e.value.filename is None

    def not_permitted(fd, req, arg):
        raise PermissionError(errno.EPERM, "Operation not permitted")

    fake.open = lambda path, flags: 99
    monkeypatch.setattr(tun.fcntl, "ioctl", not_permitted)
    with pytest.raises(OSError) as e:
        tun.open_tun("mast0")
    assert e.value.strerror == ("cannot make TUN mast0 (Operation not permitted): a TUN needs root "
                                "(CAP_NET_ADMIN); run mastd as root")
    assert e.value.errno == errno.EPERM and closed == [99]


def test_the_tun_is_configured_with_its_mtu_up_its_address_then_its_routes(monkeypatch):
    calls = []
    monkeypatch.setattr(tun, "ip", recorded_ip(calls))
    have = set()
    assert tun.configure("mast0", "10.99.0.1/24", 1444, ["192.168.50.0/24", "fd00:50::/64"], have) == []
    assert [" ".join(c) for c in calls] == [
        "link set dev mast0 mtu 1444 up", "addr replace 10.99.0.1/24 dev mast0", "-4 -j route show",
        "-6 -j route show", "-4 route add 192.168.50.0/24 dev mast0", "-6 route add fd00:50::/64 dev mast0"]
    assert have == {"192.168.50.0/24", "fd00:50::/64"}


def fake_ip(tmp_path, monkeypatch, script):
    """An `ip` command of our own, first on PATH: script is its shell body ($* its arguments)."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "ip").write_text("#!/bin/sh\n" + script)
    (bindir / "ip").chmod(0o755)
    monkeypatch.setenv("PATH", "%s:%s" % (bindir, os.environ.get("PATH", "")))


def test_a_failing_ip_command_is_an_oserror_with_its_message_or_its_exit_status(tmp_path, monkeypatch):
    fake_ip(tmp_path, monkeypatch, 'case "$*" in *addr*) echo "RTNETLINK answers: File exists" >&2; exit 2;; '
                                   '*mtu*) exit 3;; esac\n')
    with pytest.raises(OSError) as e:
        tun.configure("mast0", "10.99.0.1/24", 1444, [], set())
    assert str(e.value) == "ip link set dev mast0 mtu 1444 up: exit 3"
    with pytest.raises(OSError) as e:
        tun.ip("addr", "replace", "10.99.0.1/24", "dev", "mast0")
    assert str(e.value) == "ip addr replace 10.99.0.1/24 dev mast0: RTNETLINK answers: File exists"
    assert tun.ip("addr", "show", check=False).returncode == 2


def test_a_route_already_gone_does_not_stop_the_route_change(tmp_path, monkeypatch):
    # the kernel drops a device's routes itself (the TUN went down): deleting one that is gone
    # fails, and the new routes must still come
    log = tmp_path / "log"
    fake_ip(tmp_path, monkeypatch, 'echo "$*" >> %s\ncase "$*" in *del*) echo "RTNETLINK answers: No such '
                                   'process" >&2; exit 2;; *-j*) echo "[]";; esac\n' % log)
    have = {"10.1.0.0/16"}
    assert tun.set_routes("mast0", have, ["10.2.0.0/16"]) == [] and have == {"10.2.0.0/16"}
    assert log.read_text().splitlines() == ["route del 10.1.0.0/16 dev mast0", "-4 -j route show",
                                            "-4 route add 10.2.0.0/16 dev mast0"]


TUN_IN_NETNS = r"""
import os, socket, sys
sys.path.insert(0, %(fw)r)
from mastd import tun
before = len(os.listdir("/proc/self/fd"))
try:
    print("opened", tun.open_tun("bad/name"))  # a name the kernel refuses: no fd may be left open
except OSError:
    pass
leaked = len(os.listdir("/proc/self/fd")) - before
fd = tun.open_tun("mast7")
tun.configure("mast7", "10.77.0.1/24", 1400, ["10.78.0.0/24"], set())
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.sendto(b"through the tunnel", ("10.78.0.9", 4000))
import select
for _ in range(50):  # (bounded: the kernel may send an IPv6 or other packet first)
    if not select.select([fd], [], [], 2.0)[0]:
        break
    pkt = os.read(fd, 2000)
    if pkt[:1] == b"E" and pkt[16:20] == bytes([10, 78, 0, 9]):
        print("leaked=%%d first=%%02x dst=%%s payload=%%r" %% (leaked, pkt[0], ".".join(map(str, pkt[16:20])), pkt[28:]))
        break
else:
    print("leaked=%%d no packet" %% leaked)
"""


def test_the_tun_gives_each_routed_packet_as_a_bare_ip_packet(tmp_path):
    # (in a network namespace of its own: IFF_NO_PI, so each read starts with the IP header)
    import shutil
    import subprocess
    import sys

    if os.geteuid() != 0 or not shutil.which("unshare") or not os.path.exists("/dev/net/tun"):
        pytest.skip("needs root, unshare and /dev/net/tun")
    fw = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "firmware")
    r = subprocess.run(["unshare", "-n", sys.executable, "-c", TUN_IN_NETNS % {"fw": fw}],
                       capture_output=True, text=True, timeout=60)
    if r.returncode != 0 and "unshare" in r.stderr and "Operation not permitted" in r.stderr:
        pytest.skip("no network namespaces here: " + r.stderr.strip())
    assert r.returncode == 0, r.stderr
    assert r.stdout == "leaked=0 first=45 dst=10.78.0.9 payload=b'through the tunnel'\n"


DUMP = {"interface": [
    {"interface": "wan", "up": True, "l3_device": "eth1", "device": "eth1",
     "ipv4-address": [{"address": "100.64.1.2", "mask": 24}], "ipv6-address": []},
    {"interface": "wwan", "up": False, "device": "phy0-sta0"},
    {"interface": "lte", "up": True, "l3_device": "wwan0",
     "ipv4-address": [], "ipv6-address": [{"address": "2001:db8::5", "mask": 64}]},
    {"interface": "lan", "up": True, "l3_device": "br-lan", "ipv4-address": [{"address": "192.168.1.1"}]},
]}


def test_netifd_dump_gives_each_uplinks_device_and_address():
    cfg = {"wan": {}, "wwan": {}, "lte": {}, "wan6": {}}
    got = links.parse_netifd_dump(DUMP, cfg)
    assert (got["wan"].device, got["wan"].addr, got["wan"].up) == ("eth1", "100.64.1.2", True)
    assert (got["wwan"].up, got["wwan"].why) == (False, "interface wwan is down")
    assert (got["lte"].device, got["lte"].addr, got["lte"].up) == ("wwan0", "2001:db8::5", True)
    assert (got["wan6"].up, got["wan6"].why) == (False, "netifd has no interface wan6")
    assert "lan" not in got  # not an uplink section: none of mastd's business


def test_a_configured_address_or_device_wins_over_netifds():
    got = links.parse_netifd_dump(DUMP, {"wan": {"address": "100.64.1.9", "device": "eth9"}})
    assert (got["wan"].device, got["wan"].addr) == ("eth9", "100.64.1.9")


def test_netifd_s_deprecated_ipv6_address_is_not_taken_while_a_preferred_one_is_there():
    # after a prefix change netifd keeps the old address, "preferred": 0, until its valid
    # lifetime ends, and lists addresses in its own order (not by preference): mastd bound the
    # uplink to the old one, which the ISP no longer routes (the linux source skipped it)
    old = {"address": "2001:db8:1::5", "mask": 64, "preferred": 0, "valid": 5000}
    new = {"address": "2001:db8:2::5", "mask": 64, "preferred": 1800, "valid": 7200}
    dump = {"interface": [{"interface": "wan6", "up": True, "l3_device": "eth1",
                           "ipv4-address": [], "ipv6-address": [old, new]}]}
    got = links.parse_netifd_dump(dump, {"wan6": {}})["wan6"]
    assert (got.addr, got.up) == ("2001:db8:2::5", True)
    dump["interface"][0]["ipv6-address"] = [old]  # only the old one: still valid, still used
    assert links.parse_netifd_dump(dump, {"wan6": {}})["wan6"].addr == "2001:db8:1::5"


def test_uplink_addresses_are_canonical_however_netifd_or_the_config_writes_them():
    # the runtime's bind (status "bind") and the uplink_up event showed the text as written,
    # beside the core's canonical "addr" for the same uplink
    dump = {"interface": [{"interface": "wan6", "up": True, "l3_device": "eth1",
                           "ipv6-address": [{"address": "2001:DB8:0:0::5"}]}]}
    assert links.parse_netifd_dump(dump, {"wan6": {}})["wan6"].addr == "2001:db8::5"
    got = links.parse_netifd_dump(dump, {"wan6": {"address": "2001:0DB8::0007"}})["wan6"]
    assert got.addr == "2001:db8::7"
    got = links.parse_netifd_dump(dump, {"wan6": {"address": "[2001:DB8::8]"}})["wan6"]  # (the schema takes it)
    assert got.addr == "2001:db8::8"
    assert links.device_state("lo", "0:0::1").addr == "::1"


def test_a_missing_linux_device_is_down_with_the_reason():
    st = links.device_state("nonexistent0")
    assert not st.up and st.why.startswith("no device nonexistent0")
    lo = links.device_state("lo")
    assert lo.up and lo.addr == "127.0.0.1" and lo.mtu == 65536


def test_the_source_cache_holds_at_most_its_maximum_and_still_answers_right_after_it_starts_again():
    r = routes()
    most = packet._CACHE_MAX
    hdr = bytearray(ipv4("10.1.0.0", "192.168.50.1"))
    for i in range(most + 10):  # more distinct sources from one peer than the cache may hold
        struct.pack_into(">I", hdr, 12, (10 << 24 | 1 << 16) + i)  # 10.1.x.y: in site-a's 10.1.0.0/16
        assert r.source_ok("site-a", hdr) is (i < 1 << 16)
    assert 0 < len(r._src["site-a"]) <= most
    assert r.source_ok("site-a", ipv4("10.1.2.3", "192.168.50.1"))
    assert not r.source_ok("site-a", ipv4("192.168.50.9", "10.0.0.1"))


def test_netifd_gives_the_layer_3_device_and_ipv4_before_ipv6():
    # PPPoE: netifd's `device` is the Ethernet under it, `l3_device` the one that carries IP;
    # a socket bound to the Ethernet sends nothing that reaches the ISP
    dump = {"interface": [
        {"interface": "wan", "up": True, "device": "eth0.2", "l3_device": "pppoe-wan",
         "ipv4-address": [{"address": "100.64.9.2", "mask": 32}],
         "ipv6-address": [{"address": "2001:db8:9::2", "mask": 64}]}]}
    got = links.parse_netifd_dump(dump, {"wan": {}})["wan"]
    assert (got.device, got.addr, got.up) == ("pppoe-wan", "100.64.9.2", True)


def test_a_ubus_that_fails_or_answers_no_object_is_an_error_the_scan_reports(tmp_path):
    # (the agent logs it and keeps the uplinks it had; anything else would end mastd's loop)
    ubus = tmp_path / "ubus"
    src = links.NetifdSource({"wan": {}}, ubus=str(ubus))
    ubus.write_text("#!/bin/sh\necho 'Command failed: Not found' >&2\nexit 4\n")
    ubus.chmod(0o755)
    with pytest.raises(OSError) as e:
        src.scan()
    assert str(e.value) == "ubus call network.interface dump: Command failed: Not found"
    ubus.write_text("#!/bin/sh\necho '[]'\n")
    with pytest.raises(ValueError) as e:
        src.scan()
    assert str(e.value) == "ubus call network.interface dump: not a JSON object"


def test_an_ipv6_syn_is_clamped_to_the_ipv6_mss_and_a_later_fragment_is_never_touched():
    syn4 = tcp_syn(1460)
    tcp = syn4[20:]  # the same TCP SYN (MSS 1460) after an IPv6 header
    syn6 = bytes([0x60, 0, 0, 0]) + len(tcp).to_bytes(2, "big") + bytes([6, 64]) + bytes(32) + tcp
    out = packet.clamp_mss(syn6, 1404, 1384)
    assert mss_of(out) == 1384 and len(out) == len(syn6)
    # an IPv4 fragment at offset 1480 whose data happens to look like a SYN with an MSS option:
    # it is not a TCP header, and changing it would corrupt the datagram
    frag = bytearray(syn4)
    frag[6], frag[7] = 0, 185  # fragment offset 185 * 8 = 1480, no "more fragments"
    frag = bytes(frag)
    assert packet.clamp_mss(frag, 1404, 1384) == frag


def test_the_destination_cache_holds_at_most_its_maximum_and_still_routes_right_after_it_starts_again():
    # (the LAN picks the destinations: a scan of the Internet through a full tunnel must not
    # grow mastd without bound)
    r = routes()
    most = packet._CACHE_MAX
    hdr = bytearray(ipv4("192.168.1.2", "10.1.0.0"))
    for i in range(most + 10):
        struct.pack_into(">I", hdr, 16, (10 << 24 | 1 << 16) + i)  # 10.1.x.y: site-a's 10.1.0.0/16
        assert r.peer_for(hdr) == ("site-a" if i < 1 << 16 else "full")
    assert 0 < len(r._dst) <= most
    assert r.peer_for(ipv4("192.168.1.2", "10.1.2.3")) == "site-a"
    assert r.peer_for(ipv4("192.168.1.2", "192.168.1.200")) == "site-b"


def test_an_ip_that_hangs_is_an_oserror_the_callers_report_not_a_timeout_that_ends_mastd(monkeypatch):
    # (subprocess.TimeoutExpired is no OSError: a hung `ip` at a reload or a peer added went
    # past mastd's "routes: ..." handler and ended it)
    import subprocess

    def hung(argv, **kw):
        raise subprocess.TimeoutExpired(argv, kw.get("timeout"))

    monkeypatch.setattr(tun.subprocess, "run", hung)
    with pytest.raises(OSError) as e:
        tun.ip("-4", "route", "add", "10.80.0.0/24", "dev", "mast0")
    assert str(e.value) == "ip -4 route add 10.80.0.0/24 dev mast0: no answer within 10 s"
