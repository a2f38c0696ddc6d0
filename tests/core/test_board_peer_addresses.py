# A board's check of its configuration (firmware/board/settings.py check: at boot, set,
# commit and apply on the board; by `mast flash --config` and `mast config validate --board`
# on the host) refuses a peer address that is a multicast group or the broadcast address: a
# peer is one host. (A module of its own: test_board_settings.py is near the edge of a 128K
# MicroPython heap.) Plain test functions: pytest and MicroPython.

from mast.config import ConfigError
from board import settings

PSK = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
BD = {"name": "x", "port": "esp32", "uplinks": {"wifi": {"kind": "wlan"}}}


def error_of(bd, cfg):
    try:
        settings.check(bd, cfg)
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
    assert settings.check(BD, cfg)[0]["peers"]["hub"]["addresses"] == ["198.51.100.7", "[2001:db8::7]:6278"]
