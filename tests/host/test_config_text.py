"""Text typed at the PC CLI or read from UCI becomes the typed value the core's config takes."""

from mast_tools.config_text import parse_text

from mast import config  # firmware/ is on sys.path (tests/conftest.py)

PSK = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="  # bytes 0..31


def set_text(cfg, key, text):
    return config.set_key(cfg, key, parse_text(key, text))


def test_integer_text_becomes_an_int():
    assert parse_text("uplinks.cell.cost", "5") == 5
    assert parse_text("port", "6278") == 6278
    assert parse_text("peers.srv.example.com.port", "7000") == 7000


def test_bool_text_becomes_true_or_false_in_any_case():
    for text in ("true", "1", "yes", "on", "TRUE", "On"):
        assert parse_text("peers.srv.initiate", text) is True, text
    for text in ("false", "0", "no", "off", "False", "NO"):
        assert parse_text("peers.srv.initiate", text) is False, text


def test_list_text_splits_on_commas_and_spaces():
    assert parse_text("peers.srv.addresses", "192.0.2.1, [2001:db8::1]:7000") == [
        "192.0.2.1", "[2001:db8::1]:7000"]
    assert parse_text("peers.srv.allowed", "10.0.0.0/8 192.168.0.0/16,::/0") == [
        "10.0.0.0/8", "192.168.0.0/16", "::/0"]
    assert parse_text("peers.srv.addresses", "") == []


def test_other_keys_and_non_text_come_back_unchanged():
    assert parse_text("name", "board1.example") == "board1.example"
    assert parse_text("uplinks.cell.kind", "ppp") == "ppp"
    assert parse_text("peers.srv.psk", PSK) == PSK
    assert parse_text("colour", "5") == "5"
    assert parse_text("peers.srv", "5") == "5"
    assert parse_text("peers.srv.addresses", ["192.0.2.1"]) == ["192.0.2.1"]
    assert parse_text("port", 7000) == 7000


def test_text_that_does_not_parse_is_left_for_the_core_to_refuse():
    assert parse_text("port", "70O0") == "70O0"
    assert parse_text("peers.srv.initiate", "maybe") == "maybe"
    cfg = config.validate({"name": "h", "peers": {"srv": {"psk": PSK}}})
    for key, text, msg in (
        ("uplinks.cell.cost", "300", "uplinks.cell.cost: must be an integer from 0 to 255"),
        ("port", "70O0", "port: must be an integer from 1 to 65535"),
        ("peers.srv.initiate", "maybe", "peers.srv.initiate: must be true or false"),
        ("colour", "red", "colour: unknown key"),
    ):
        try:
            set_text(cfg, key, text)
        except config.ConfigError as e:
            assert str(e) == msg
            continue
        assert False, "set_key accepted %r for %s" % (text, key)


def test_set_key_with_parsed_text_leaves_the_input_alone():
    cfg = config.validate({"name": "h", "peers": {"srv": {"psk": PSK}}})
    new = set_text(cfg, "uplinks.cell.cost", "5")
    assert config.get(new, "uplinks.cell.cost") == 5
    assert "cell" not in cfg["uplinks"]
    new = set_text(new, "peers.srv.initiate", "false")
    assert new["peers"]["srv"]["initiate"] is False
    assert cfg["peers"]["srv"]["initiate"] is True
    new = set_text(new, "peers.srv.addresses", "192.0.2.1, [2001:db8::1]:7000")
    assert new["peers"]["srv"]["addresses"] == ["192.0.2.1", "[2001:db8::1]:7000"]
    assert config.validate(new)["uplinks"]["cell"] == {
        "cost": 5, "priority": 100, "kind": "linux"}


def test_dotted_peer_names_parse_by_the_key_they_name():
    cfg = set_text({"name": "h"}, "peers.srv.example.com.psk", PSK)
    cfg = set_text(cfg, "peers.srv.example.com.port", "7000")
    assert config.get(cfg, "peers.srv.example.com.port") == 7000
    assert cfg == {"name": "h", "peers": {"srv.example.com": {"psk": PSK, "port": 7000}}}


def test_integer_text_is_decimal_only():
    # "0x1f" or "0o17" typed for a port is a typo the core must see, not a number in another base
    for text in ("0x1f", "0o17", "0b11"):
        assert parse_text("port", text) == text, text
    assert parse_text("port", "010") == 10


def test_which_keys_take_their_value_as_text():
    from mast_tools.config_text import takes_text

    for key in ("name", "keying", "peers.srv.psk", "peers.srv.dns", "uplinks.w.ssid",
                "uplinks.w.password", "uplinks.c.apn", "uplinks.c.sim_pin", "fleet_psk"):
        assert takes_text(key) is True, key
    for key in ("port", "replay_window", "peers.srv.initiate", "peers.srv.addresses",
                "peers.srv.allowed", "uplinks.c.cost", "colour", "peers.srv"):
        assert takes_text(key) is False, key
