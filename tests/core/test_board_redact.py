# What the board's console shows of a configuration: board/settings.redact hides every
# secret of the schema (mast/config.is_secret) and leaves the original alone. (The core has
# no redact of its own: the board's console is the one place a configuration is shown with
# its secrets hidden. A module of its own: test_board_settings.py is near the edge of the
# 128K heap of the MicroPython runs.) Plain test functions: pytest and MicroPython.

from mast import config
from board import settings

PSK = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="


def test_redact_hides_every_psk_and_leaves_the_original_alone():
    cfg = config.validate({"name": "b1", "peers": {"srv": {"psk": PSK}, "b.example": {"psk": PSK}}})
    shown = settings.redact(cfg)
    assert shown["peers"]["srv"]["psk"] == "<redacted>"
    assert shown["peers"]["b.example"]["psk"] == "<redacted>"
    assert PSK not in repr(shown)
    assert shown["peers"]["srv"]["port"] == 6278 and shown["name"] == "b1"
    assert cfg["peers"]["srv"]["psk"] == PSK
    shown["peers"]["srv"]["addresses"].append("192.0.2.1")
    assert cfg["peers"]["srv"]["addresses"] == []


def test_redact_works_on_unvalidated_input_too():
    raw = {"peers": {"srv": {"psk": "typo" + PSK}}, "colour": "red"}
    assert settings.redact(raw) == {"peers": {"srv": {"psk": "<redacted>"}}, "colour": "red"}
    assert raw["peers"]["srv"]["psk"] == "typo" + PSK


def test_uplink_credentials_are_never_shown():
    cfg = config.validate({"name": "b1", "uplinks": {"cell": {"kind": "wlan", "ssid": "My Home WiFi",
                                                              "password": "correct horse", "sim_pin": "1234"}}})
    shown = settings.redact(cfg)
    assert shown["uplinks"]["cell"]["password"] == "<redacted>"
    assert shown["uplinks"]["cell"]["sim_pin"] == "<redacted>"
    assert shown["uplinks"]["cell"]["ssid"] == "My Home WiFi"
    assert settings.get(cfg, "uplinks.cell.password") == "<redacted>"
