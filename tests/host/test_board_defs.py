"""boards/*.json: one definition per supported board, each valid against the schema the board
itself checks at boot (firmware/board/boarddef.py), and the boards the project supports."""

import glob
import json
import os

import pytest

from board import boarddef

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FILES = sorted(glob.glob(os.path.join(ROOT, "boards", "*.json")))
REQUIRED = ("unix-sim", "esp32-devkitc", "olimex-esp32-poe", "wt32-eth01", "lilygo-t-a7670",
            "rpi-pico-w")


def load(name):
    with open(os.path.join(ROOT, "boards", name + ".json")) as f:
        return json.load(f)


def error(doc):
    try:
        boarddef.check(doc)
    except ValueError as e:
        return str(e)
    raise AssertionError("accepted: %r" % doc)


def test_the_supported_boards_all_have_a_definition():
    names = [os.path.basename(p)[:-5] for p in FILES]
    for name in REQUIRED:
        assert name in names, name


@pytest.mark.parametrize("path", FILES, ids=lambda p: os.path.basename(p))
def test_each_definition_is_valid_and_named_after_its_file(path):
    with open(path) as f:
        doc = json.load(f)
    assert boarddef.check(doc) is doc
    assert doc["name"] == os.path.basename(path)[:-5]
    assert doc["uplinks"] and type(doc["soft_reset"]) is bool and doc["heap"]["notes"]


def test_each_kind_of_uplink_has_its_hardware_settings():
    kinds = {}
    for path in FILES:
        with open(path) as f:
            doc = json.load(f)
        for name, u in doc["uplinks"].items():
            kinds.setdefault(u["kind"], []).append(doc["name"])
    assert sorted(kinds) == ["lan", "ppp", "sim", "wlan"]
    poe = load("olimex-esp32-poe")["uplinks"]["eth"]["phy"]
    assert (poe["type"], poe["addr"], poe["mdc"], poe["mdio"], poe["power"], poe["ref_clk"]) == \
        ("LAN8720", 0, 23, 18, 12, 17)
    wt = load("wt32-eth01")["uplinks"]["eth"]["phy"]
    assert (wt["addr"], wt["power"], wt["ref_clk"], wt["ref_clk_mode"]) == (1, 16, 0, "in")
    modem = load("lilygo-t-a7670")["uplinks"]["cell"]["modem"]
    assert (modem["tx"], modem["rx"], modem["pwrkey"], modem["power_on"], modem["dial"]) == \
        (26, 27, 4, 12, "*99#")


def test_soft_reset_and_routing_follow_the_port():
    for path in FILES:
        with open(path) as f:
            doc = json.load(f)
        assert doc["soft_reset"] == (doc["port"] != "unix"), doc["name"]
        if doc["port"] == "rp2":
            assert doc["routing"] == "exclusive" and doc["watchdog_ms"] <= 8388
    assert load("unix-sim")["sim"]["heapsize"] == "192K"


def test_bad_definitions_are_refused_naming_the_field():
    good = load("olimex-esp32-poe")
    cases = [
        (("port",), "avr", "port: must be one of esp32, rp2, unix"),
        (("watchdog_ms",), 120000, "watchdog_ms: must be an integer from 0 to 60000"),
        (("uplinks", "eth", "phy", "mdc"), 99, "uplinks.eth.phy.mdc: must be a GPIO number from 0 to 48"),
        (("uplinks", "eth", "phy", "type"), "XYZ", "uplinks.eth.phy.type: must be one of LAN8720, IP101, "
                                                   "RTL8201, DP83848, KSZ8041, KSZ8081"),
        (("uplinks", "wifi", "kind"), "lte", "uplinks.wifi.kind: must be one of sim, wlan, lan, ppp"),
        (("uplinks", "eth", "colour"), "red", "uplinks.eth.colour: unknown field"),
    ]
    for path, value, msg in cases:
        doc = json.loads(json.dumps(good))
        node = doc
        for k in path[:-1]:
            node = node[k]
        node[path[-1]] = value
        assert error(doc) == msg
    doc = json.loads(json.dumps(good))
    del doc["uplinks"]["eth"]["phy"]
    assert error(doc) == "uplinks.eth.phy: required for a lan uplink"
    doc = json.loads(json.dumps(good))
    doc["uplinks"]["wifi"]["address"] = "127.0.0.2"
    assert error(doc) == "uplinks.wifi.address: only for a sim uplink"
    pico = load("rpi-pico-w")
    pico["routing"] = "source"
    assert error(pico) == "routing: must be exclusive on rp2 (its lwIP routes by the default interface)"
    sim = load("unix-sim")
    sim["uplinks"]["eth"]["via"] = "127.0.0.1:40001"
    assert error(sim) == "uplinks.eth.public: via and public go together: the relay's inside and outside address"


def test_a_board_without_a_valid_board_json_boots_on_a_generic_definition():
    class Files:
        def __init__(self, data):
            self.data = data

        def read(self, name):
            return self.data

    d, warn = boarddef.load(Files(None), "rp2")
    assert d["port"] == "rp2" and warn == "no board.json: generic rp2 definition"
    d, warn = boarddef.load(Files(b'{"name": "x"}'), "linux")
    assert d["port"] == "unix" and warn.startswith("board.json is not valid (title: required)")


def test_a_board_keeps_of_its_definition_only_what_it_runs_on():
    # notes, heap, sim, install and soft_reset are for people and the host's tools; the board
    # keeps its definition in its heap for good (unix-sim's notes were 800 characters of it)
    doc = load("unix-sim")
    doc["uplinks"]["eth"]["notes"] = "the port nearest the power jack"

    class Files:
        def read(self, name):
            return json.dumps(doc).encode() if name == "board.json" else None

    d, warn = boarddef.load(Files(), "linux")
    assert warn is None
    assert d == {"name": "unix-sim", "title": doc["title"], "port": "unix", "routing": "source",
                 "watchdog_ms": 0,
                 "uplinks": {"eth": {"kind": "sim", "priority": 10, "cost": 0, "address": "127.0.0.2"},
                             "wifi": {"kind": "sim", "priority": 20, "cost": 0, "address": "127.0.0.3"},
                             "cell": {"kind": "sim", "priority": 30, "cost": 10, "address": "127.0.0.4"}}}


def _with(name, path, value):
    doc = load(name)
    node = doc
    for k in path[:-1]:
        node = node[k]
    node[path[-1]] = value
    return doc


def test_each_limit_of_the_schema_is_where_it_says():
    # (path, the last value accepted, the first refused, the error) on olimex-esp32-poe
    cases = [
        (("name",), "n" * 31, "n" * 32, "name: must be 1 to 31 characters of A-Za-z0-9_.-"),
        (("uplinks", "eth", "phy", "mdio"), 48, 49, "uplinks.eth.phy.mdio: must be a GPIO number from 0 to 48"),
        (("uplinks", "eth", "phy", "power"), None, -1,
         "uplinks.eth.phy.power: must be a GPIO number from 0 to 48 or null"),
        (("uplinks", "eth", "priority"), 255, 256, "uplinks.eth.priority: must be an integer from 0 to 255"),
        (("watchdog_ms",), 60000, True, "watchdog_ms: must be an integer from 0 to 60000"),
        (("soft_reset",), False, 1, "soft_reset: must be true or false"),
        (("title",), "t", "", "title: must be non-empty text"),
    ]
    for path, good, bad, msg in cases:
        assert boarddef.check(_with("olimex-esp32-poe", path, good))
        assert error(_with("olimex-esp32-poe", path, bad)) == msg, (path, bad)


def test_sim_addresses_and_relays_must_be_ipv4_and_a_port():
    ok = [("address",), "127.0.0.255"], [("via",), "127.0.0.1:65535"]
    for path, value in ok:
        doc = load("unix-sim")
        doc["uplinks"]["eth"].update({"via": "127.0.0.1:40001", "public": "127.0.0.1:40002"})
        doc["uplinks"]["eth"][path[0]] = value
        assert boarddef.check(doc)
    cases = [("address", "127.0.0.256", "must be an IPv4 address"),
             ("address", "127.0.1", "must be an IPv4 address"),
             ("via", "127.0.0.1:65536", "must be an IPv4 address and port (127.0.0.1:40001)"),
             ("via", "127.0.0.1:0", "must be an IPv4 address and port (127.0.0.1:40001)"),
             ("public", "127.0.0.1", "must be an IPv4 address and port (127.0.0.1:40001)")]
    for key, value, msg in cases:
        doc = load("unix-sim")
        doc["uplinks"]["eth"].update({"via": "127.0.0.1:40001", "public": "127.0.0.1:40002"})
        doc["uplinks"]["eth"][key] = value
        assert error(doc) == "uplinks.eth.%s: %s" % (key, msg), (key, value)


def test_the_uplinks_a_board_may_have_are_checked_as_a_whole():
    assert error(_with("olimex-esp32-poe", ("uplinks",), {})) == "uplinks: must name at least one uplink"
    doc = load("olimex-esp32-poe")
    doc["uplinks"]["my wifi"] = doc["uplinks"].pop("wifi")
    assert error(doc) == "uplinks.my wifi: must be 1 to 31 characters of A-Za-z0-9_.-"
    doc = load("olimex-esp32-poe")
    doc["uplinks"]["sim"] = {"kind": "sim", "priority": 5, "cost": 0, "address": "127.0.0.2"}
    assert error(doc) == "uplinks: sim uplinks exist only on the unix port"
    assert boarddef.check(_with("rpi-pico-w", ("watchdog_ms",), 8388))
    assert error(_with("rpi-pico-w", ("watchdog_ms",), 8389)) == \
        "watchdog_ms: must be at most 8388 on rp2 (the RP2040 watchdog's limit)"


def test_the_generic_definitions_pass_the_boards_own_check():
    for platform, port, routing in (("linux", "unix", "source"), ("darwin", "unix", "source"),
                                    ("rp2", "rp2", "exclusive"), ("esp32", "esp32", "source")):
        d = boarddef.generic(platform)
        assert boarddef.check(d) is d
        assert (d["port"], d["routing"]) == (port, routing), platform
