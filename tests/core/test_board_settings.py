# The board's configuration layer (firmware/board/settings.py): the core schema
# plus the uplink keys the board needs, and secrets that are never read back
# (`apply`: tests/core/test_board_apply.py, a module of its own: each is near the edge of
# the 128K heap of the MicroPython runs). Plain test functions: pytest and MicroPython.

from mast.config import ConfigError
from board import cfgops, settings

PSK1 = "q83vEjRWeJq83vEjRWeJq83vEjRWeJq83vEjRWeJq8M="
PSK2 = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="


def error_of(f, *args):
    try:
        f(*args)
    except ConfigError as e:
        return str(e)
    raise AssertionError("no ConfigError")


def test_board_keys_are_set_and_validated_as_dotted_keys():
    cfg = {"name": "b1"}
    cfg = settings.set_key(cfg, "uplinks.wifi.ssid", "My Home")
    cfg = settings.set_key(cfg, "uplinks.wifi.password", "correct horse")
    cfg = settings.set_key(cfg, "uplinks.cell.apn", "internet.example")
    cfg = settings.set_key(cfg, "uplinks.cell.sim_pin", "1234")
    cfg = settings.set_key(cfg, "uplinks.cell.cost", 10)
    core, extra = settings.validate(cfg)  # the credentials are keys of the core schema
    assert extra == {}
    assert core["uplinks"]["wifi"]["ssid"] == "My Home" and core["uplinks"]["cell"]["apn"] == "internet.example"
    assert core["uplinks"]["cell"]["cost"] == 10 and core["uplinks"]["cell"]["sim_pin"] == "1234"


def test_a_board_holds_at_most_16_peers_and_a_set_past_them_changes_nothing():
    # each set copies the whole candidate: 169 peers set one by one filled a 192K board's heap
    # (47 a 160K one's), and then even unset, which copies it too, ran out of memory
    cfg = {"name": "b1"}
    for i in range(cfgops.MAX_PEERS):  # (16: set_key writes it out, cfgops names it)
        cfg = settings.set_key(cfg, "peers.p%d.psk" % i, PSK1)
    assert error_of(settings.set_key, cfg, "peers.p99.psk", PSK1) == \
        "peers: a board holds at most 16 peers (unset one first)"
    assert len(cfg["peers"]) == 16 and "p99" not in cfg["peers"]
    cfg = settings.set_key(cfg, "peers.p3.port", 7000)  # the 16 stay settable
    cfg = settings.set_key(settings.unset_key(cfg, "peers.p0"), "peers.p99.psk", PSK1)
    assert sorted(cfg["peers"]) == sorted(["p%d" % i for i in range(1, 16)] + ["p99"])
    big = dict(cfg, peers=dict(cfg["peers"], p100={"psk": PSK1}))  # a file with more, checked
    assert error_of(cfgops.check, {"name": "x", "port": "unix", "uplinks": {}}, big) == \
        "peers: a board holds at most 16 peers (unset one first)"


def test_bad_board_values_name_the_key_and_never_echo_the_value():
    for key, value, msg in (
        ("uplinks.wifi.password", "short", "uplinks.wifi.password: must be 8 to 63 printable ASCII characters"),
        ("uplinks.wifi.password", 12345678, "uplinks.wifi.password: must be 8 to 63 printable ASCII characters"),
        ("uplinks.wifi.ssid", "", "uplinks.wifi.ssid: must be 1 to 32 bytes of UTF-8 text (no control characters)"),
        ("uplinks.wifi.ssid", "tab\there", "uplinks.wifi.ssid: must be 1 to 32 bytes of UTF-8 text (no control characters)"),
        ("uplinks.cell.apn", "bad apn!", "uplinks.cell.apn: must be 1 to 63 characters of A-Za-z0-9_.-"),
        ("uplinks.cell.sim_pin", "12a4", "uplinks.cell.sim_pin: must be 4 to 8 digits"),
        ("uplinks.%s.ssid" % ("u" * 32), "x", "uplinks.%s: name must be 1 to 31 characters of A-Za-z0-9_.-" % ("u" * 32)),
        # (a key with a character no key has: not repeated, it may be a secret: test_board_key_text.py)
        ("uplinks.b@d.ssid", "x", "key: unknown, not repeated (it may be a secret): a key is a setting "
                                  "or section of docs/CONFIG.md, such as port or peers.NAME.psk, in A-Za-z0-9_.-"),
    ):
        e = error_of(settings.set_key, {"name": "b1"}, key, value)
        assert e == msg, (key, e)
        assert str(value) not in e.split(": ", 1)[1] or value == "", e


def test_a_sim_uplink_the_board_does_not_define_needs_an_address():
    bd = {"name": "x", "port": "unix", "uplinks": {"eth": {"kind": "sim"}}}
    ok = {"name": "b1", "uplinks": {"relay": {"kind": "sim", "address": "127.0.0.3"}}}
    core, extra = cfgops.check(bd, ok)
    assert core["uplinks"]["relay"]["address"] == "127.0.0.3"
    bad = {"name": "b1", "uplinks": {"relay": {"kind": "sim", "cost": 5}}}
    assert error_of(cfgops.check, bd, bad) == "uplinks.relay.address: required for a sim uplink"


def test_an_uplink_s_kind_must_be_the_board_s_and_only_a_unix_board_takes_extra_sim_uplinks():
    bd = {"name": "x", "port": "esp32", "uplinks": {"wifi": {"kind": "wlan"}}}
    core, extra = cfgops.check(bd, {"name": "b1", "uplinks": {"wifi": {"kind": "wlan"}}})
    assert core["uplinks"]["wifi"]["kind"] == "wlan"
    assert error_of(cfgops.check, bd, {"name": "b1", "uplinks": {"wifi": {"kind": "lan"}}}) == \
        "uplinks.wifi.kind: is wlan on this board"
    # a sim uplink of its own is for the simulated (unix) board only: a real one has no such path
    sim = {"name": "b1", "uplinks": {"relay": {"kind": "sim", "address": "127.0.0.3"}}}
    assert error_of(cfgops.check, bd, sim) == \
        "uplinks.relay: this board has no such uplink (it has wifi)"
    assert cfgops.check(dict(bd, port="unix"), sim)[0]["uplinks"]["relay"]["kind"] == "sim"


def test_core_keys_go_through_the_core_schema():
    assert error_of(settings.set_key, {"name": "b1"}, "uplinks.cell.cost", 300) == \
        "uplinks.cell.cost: must be an integer from 0 to 255"
    assert error_of(settings.set_key, {"name": "b1"}, "uplinks.cell.cots", 1) == \
        "uplinks.cell.cots: unknown key"
    assert error_of(settings.set_key, {"name": "b1"}, "peers.srv.psk", "not-base64") == \
        "peers.srv.psk: must be standard base64 of exactly 32 bytes"


def test_secrets_are_redacted_everywhere_they_are_read():
    cfg = {"name": "b1", "peers": {"srv": {"psk": PSK1, "addresses": ["127.0.0.10"]}},
           "uplinks": {"wifi": {"ssid": "home", "password": "correct horse"},
                       "cell": {"sim_pin": "1234", "apn": "internet"}}}
    whole = settings.get(cfg)
    assert whole["peers"]["srv"]["psk"] == "<redacted>"
    assert whole["uplinks"]["wifi"] == {"ssid": "home", "password": "<redacted>"}
    assert whole["uplinks"]["cell"]["sim_pin"] == "<redacted>"
    assert settings.get(cfg, "peers.srv.psk") == "<redacted>"
    assert settings.get(cfg, "peers.srv")["psk"] == "<redacted>"
    assert settings.get(cfg, "uplinks.wifi.password") == "<redacted>"
    assert settings.get(cfg, "uplinks")["cell"]["sim_pin"] == "<redacted>"
    assert settings.get(cfg, "uplinks.wifi.ssid") == "home"
    text = repr(whole)
    for secret in (PSK1, "correct horse", "1234"):
        assert secret not in text
    assert cfg["peers"]["srv"]["psk"] == PSK1  # the configuration itself is untouched


def test_get_of_an_unset_key_is_an_error_naming_it():
    assert error_of(settings.get, {"name": "b1"}, "port") == "port: is not set"
    assert error_of(settings.unset_key, {"name": "b1"}, "port") == "port: is not set"


def test_a_key_that_may_be_a_secret_is_not_repeated():
    # a psk pasted in the key's place: its first part is none of the schema's, so no error
    # repeats it (the reply goes back to the terminal and to whatever logs the serial line)
    cfg = {"name": "b1", "peers": {"srv": {"psk": PSK1}}}
    for fn, args in ((settings.set_key, (cfg, PSK1, 1)), (settings.get, (cfg, PSK1)),
                     (settings.unset_key, (cfg, PSK1)), (settings.get, (cfg, "nonsense.key")),
                     (settings.set_key, (cfg, "", 1)), (settings.unset_key, (cfg, "portx"))):
        e = error_of(fn, *args)
        assert e.startswith("key: ") and PSK1 not in e and "nonsense" not in e and "portx" not in e
    assert error_of(settings.get, cfg, "peers.srv.port") == "peers.srv.port: is not set"


def test_set_and_unset_return_new_configurations():
    cfg = {"name": "b1"}
    new = settings.set_key(cfg, "port", 7000)
    assert cfg == {"name": "b1"} and new == {"name": "b1", "port": 7000}
    assert settings.unset_key(new, "port") == {"name": "b1"}
