# A board's check of its configuration (firmware/board/cfgops.py check: at boot, validate,
# commit and apply on the board; by `mast flash --config` and `mast config validate --board`
# on the host) refuses a peer address that is a multicast group or the broadcast address: a
# peer is one host. (A module of its own: test_board_settings.py is near the edge of a 128K
# MicroPython heap.) Plain test functions: pytest and MicroPython.

from mast.config import ConfigError
from board import cfgops

PSK = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
BD = {"name": "x", "port": "esp32", "uplinks": {"wifi": {"kind": "wlan"}}}


def error_of(bd, cfg):
    try:
        cfgops.check(bd, cfg)
    except ConfigError as e:
        return str(e)
    raise AssertionError("no ConfigError")


def test_a_peer_address_that_is_a_group_or_the_broadcast_address_is_refused_by_the_boards_check():
    cfg = {"name": "b1", "peers": {"hub": {"psk": PSK, "addresses": ["198.51.100.7", "239.255.255.250:1900"]}}}
    assert error_of(BD, cfg) == ("peers.hub.addresses: bad item '239.255.255.250:1900': a multicast "
                                 "address is not a peer's; give the peer's own (unicast) address")
    cfg["peers"]["hub"]["addresses"] = ["255.255.255.255"]
    assert error_of(BD, cfg).startswith("peers.hub.addresses: bad item '255.255.255.255': the broadcast")
    cfg["peers"]["hub"]["addresses"] = ["198.51.100.7", "[2001:db8::7]:6278"]
    assert cfgops.check(BD, cfg)[0]["peers"]["hub"]["addresses"] == ["198.51.100.7", "[2001:db8::7]:6278"]


def test_the_unspecified_address_in_either_family_is_refused_as_a_peers_address():
    # taken before: INITs went to 0.0.0.0 or ::, which Linux delivers to this host itself (the
    # endpoint answered its own INIT as unknown_peer), and the association never came up
    for a in ("0.0.0.0", "[::]:6278", "::", "::ffff:0.0.0.0"):
        cfg = {"name": "b1", "peers": {"hub": {"psk": PSK, "addresses": ["198.51.100.7", a]}}}
        assert error_of(BD, cfg) == ("peers.hub.addresses: bad item %r: the unspecified address "
                                     "is not a peer's; give the peer's own (unicast) address" % a)
    cfg["peers"]["hub"]["addresses"] = ["0.0.0.1", "::1", "[::2]:6278"]  # next to it: hosts
    assert cfgops.check(BD, cfg)[0]["peers"]["hub"]["addresses"] == ["0.0.0.1", "::1", "[::2]:6278"]


def test_a_peer_address_written_ipv4_mapped_is_refused_with_its_ipv4_spelling():
    # [::ffff:10.1.0.1]:6278 (as a dual-stack server's logs show a peer) was taken: only IPv6
    # uplinks tried it, every INIT failed (ENETUNREACH), and the IPv4 uplink that reaches
    # 10.1.0.1 never did
    cfg = {"name": "b1", "peers": {"hub": {"psk": PSK, "addresses": ["[::ffff:10.1.0.1]:6278"]}}}
    assert error_of(BD, cfg) == ("peers.hub.addresses: bad item '[::ffff:10.1.0.1]:6278': an "
                                 "IPv4-mapped IPv6 address; write it as IPv4: 10.1.0.1")
    cfg["peers"]["hub"]["addresses"] = ["10.1.0.1:6278", "[::ffff:0:a01:1]:6278", "[64:ff9b::a01:1]:6278"]
    assert cfgops.check(BD, cfg)[0]["peers"]["hub"]["addresses"][0] == "10.1.0.1:6278"
