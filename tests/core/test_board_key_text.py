# Text in a key's place at the board's console (firmware/board/settings.py): a key has only a
# key's characters (A-Za-z0-9_.-), anything else is refused without repeating it. A PSK pasted
# into a peer's name or key (peers.<psk>.port, peers.srv.<psk>) came back in the error, and so to
# the terminal and any log of it; a newline in a key made a line of its own there. A module of
# its own: test_board_settings.py is near the edge of the 128K heap of the MicroPython runs.

from mast.config import ConfigError
from board import settings

PSK = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
SAID = ("key: unknown, not repeated (it may be a secret): a key is a setting or section of "
        "docs/CONFIG.md, such as port or peers.NAME.psk, in A-Za-z0-9_.-")


def error_of(f, *args):
    try:
        f(*args)
    except ConfigError as e:
        return str(e)
    raise AssertionError("no ConfigError")


def test_a_psk_or_a_newline_in_a_key_is_refused_by_set_get_and_unset_without_being_repeated():
    cfg = settings.set_key({"name": "b1"}, "peers.srv.psk", PSK)
    for key in ("peers.srv." + PSK, "peers." + PSK + ".port", "peers." + PSK,
                "peers.a\nmast: fake.port", "uplinks.w\x1b[2J.cost", "peers.caf\u00e9.port"):
        assert error_of(settings.set_key, cfg, key, 1) == SAID, key
        assert error_of(settings.get, cfg, key) == SAID, key
        assert error_of(settings.unset_key, cfg, key) == SAID, key


def test_keys_of_a_keys_characters_are_taken_as_before():
    cfg = settings.set_key({"name": "b1"}, "peers.a-1.example.port", 7000)
    cfg = settings.set_key(cfg, "uplinks.wifi_2.cost", 3)
    assert settings.get(cfg, "peers.a-1.example.port") == 7000
    assert settings.get(cfg, "uplinks.wifi_2.cost") == 3
    assert error_of(settings.set_key, cfg, "peers.a_1.port", 1) == \
        "peers.a_1: name must be 1 to 63 characters of A-Za-z0-9.-"  # (a key's characters: said)
    assert error_of(settings.get, cfg, "peers.srv.port") == "peers.srv.port: is not set"
    assert settings.unset_key(cfg, "peers.a-1.example")["peers"] == {}
