"""The docs say what the code does: the configuration table is the schema's, and the
protocol document's constants are the codec's."""

import os
import re

from mast import wire
from mast_tools.config_help import HELP, markdown, schema_rows

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def read(name):
    with open(os.path.join(ROOT, "docs", name)) as f:
        return f.read()


def test_config_doc_table_is_generated_from_the_schema():
    text = read("CONFIG.md")
    table = text.split("<!-- config-table:start -->\n")[1].split("<!-- config-table:end -->")[0]
    assert table == markdown()


def test_every_schema_key_has_help_text():
    keys = [row[0] for row in schema_rows()]
    assert sorted(keys) == sorted(HELP)


def test_protocol_doc_states_the_codec_constants():
    text = read("PROTOCOL.md")
    assert "default port is **%d**" % wire.DEFAULT_PORT in text
    assert "**%d bytes**" % wire.OVERHEAD in text
    assert "at least **%d bytes**" % wire.MIN_INIT in text
    table = re.findall(r"^\| (\d+) \| ([A-Z-]+) \|", text, re.M)
    names = dict((int(n), name) for n, name in table)
    for const, value in (("INIT", 1), ("INIT_ACK", 2), ("COOKIE_ECHO", 3), ("COOKIE_ACK", 4), ("SET", 5),
                         ("SET_ACK", 6), ("PROBE", 7), ("PROBE_ACK", 8), ("SHUT", 9), ("SHUT_ACK", 10),
                         ("SHUT_COMPLETE", 11), ("ERR", 12), ("KEEPALIVE", 13), ("DATA", 16), ("DATA_IP", 17)):
        assert getattr(wire, const) == value
        assert names[value] == const.replace("_", "-"), (value, names.get(value))


def test_protocol_doc_timer_profiles_are_the_policy_defaults():
    from mast.policy import PROFILES

    text = read("PROTOCOL.md")
    for name, p in PROFILES.items():
        row = re.search(r"^\| %s \| (.+) \|$" % name, text, re.M).group(1).split(" | ")
        ms = lambda v: "%d ms" % v if v < 1000 or v % 1000 else "%d s" % (v // 1000)
        assert row[0] == ms(p["ack"]) and row[1] == ms(p["send_timeout"])
        assert row[2] == "%d–%d ms" % (p["rto_min"], p["rto_max"])
        assert row[3] == str(p["probe_fail"]) and row[4] == ms(p["probe"])
        lo, hi = p["failed_min"], p["failed_max"]
        assert row[5] == ("%g–%g s" % (lo / 1000.0, hi / 1000.0)), row[5]
        assert row[6] == ms(p["failback"])


# ---- the board docs and the README's first screen (issue 14) ---------------------------------------


def test_hardware_doc_names_one_minimum_micropython_the_one_flash_enforces():
    from mast_tools.boards import MIN_MICROPYTHON

    text = read("HARDWARE.md")
    want = "%d.%d" % MIN_MICROPYTHON[:2]
    versions = set(re.findall(r"MicroPython (?:>= ?)?\**(1\.\d+)\** or newer", text))
    versions |= set(re.findall(r"MicroPython >= (1\.\d+)", text))
    assert versions == {want}, versions
    assert "1.19" not in text


def test_hardware_doc_covers_every_board_and_the_steps_to_put_micropython_on_it():
    from mast_tools.boards import names

    text = read("HARDWARE.md")
    table = text.split("## Supported boards")[1].split("\n## ")[0]
    for name in names():
        assert "| `%s` |" % name in table, name
    steps = text.split("## Getting MicroPython onto a board")[1].split("\n## ")[0]
    for must in ("esptool.py --chip esp32 --port /dev/ttyUSB0 erase_flash", "write_flash -z 0x1000",
                 "BOOTSEL", "RPI-RP2", ".uf2", "mpflash flash", "ESP32_GENERIC", "RPI_PICO_W"):
        assert must in steps, must
    wiring = text.split("## ESP32 + SIM7600")[1].split("\n## ")[0]
    with open(os.path.join(ROOT, "boards", "esp32-sim7600.json")) as f:
        import json

        modem = json.load(f)["uplinks"]["cell"]["modem"]
    assert "GPIO%d (UART2 TX)" % modem["tx"] in wiring and "GPIO%d (UART2 RX)" % modem["rx"] in wiring
    assert '"pwrkey": %d' % modem["pwrkey"] in wiring and "2 A" in wiring and "1.8 V" in wiring


def test_the_mip_source_the_doc_gives_exists():
    text = read("HARDWARE.md")
    assert "github:<org>" not in text
    m = re.search(r"mip install (\./firmware/package\.json)", text)
    assert m and os.path.isfile(os.path.join(ROOT, m.group(1)))


def test_readme_first_screen_starts_with_make_run_and_make_test_then_a_real_board():
    with open(os.path.join(ROOT, "README.md")) as f:
        lines = f.read().splitlines()
    commands = [x.split("#")[0].strip() for x in lines if x.startswith(("make ", "mast "))]
    assert commands[:2] == ["make run", "make test"]
    screen = "\n".join(lines[:40])
    for must in ("mast ports", "mast flash --board list", "mast flash --board", "mast console",
                 "Getting MicroPython onto a board", "mast reset", "mast maintenance off"):
        assert must in screen, must
    from mast_tools import cli

    for cmd in ("ports", "flash", "config", "console", "reset", "maintenance"):
        assert cmd in cli._COMMANDS


def test_every_test_the_protocol_security_table_names_exists():
    """docs/PROTOCOL.md 13.1 names, per attack, the tests that show its defence: each file and
    test function named there exists (`file.py::test_x`, a bare `::test_y` is in the file
    named before it in the same cell; a file alone is a whole test file)."""
    text = read("PROTOCOL.md")
    table = text[text.index("### 13.1"):text.index("## Presence (PRES/1)")]
    rows = [r for r in table.splitlines() if r.startswith("| ") and "---" not in r][1:]
    assert len(rows) >= 15
    named = 0
    for row in rows:
        cell = row.rstrip(" |").rsplit(" | ", 1)[1]
        current = None
        for ref in re.findall(r"`([^`]+)`", cell):
            m = re.match(r"^((?:tests/)?[\w/]+\.py)?(?:::(\w+))?", ref)
            path, func = m.group(1), m.group(2)
            if path:
                current = path if path.startswith("tests/") else "tests/attacks/" + path
                assert os.path.exists(os.path.join(ROOT, current)), (row[:60], current)
            if func:
                assert current, ref
                with open(os.path.join(ROOT, current)) as f:
                    assert "def %s(" % func in f.read(), (current, func)
                named += 1
    assert named >= 25


def test_runtime_doc_lists_every_endpoint_command_and_file_key():
    from runtime import endpoint_main, runconfig

    text = read("RUNTIME.md")
    ops = set(re.findall(r'\| `\{"op": "(\w+)"', text))
    assert ops == set(endpoint_main._OPS), (ops, sorted(endpoint_main._OPS))
    keys = set(re.findall(r"^\| `(\w+)[`.]", text, re.M))
    assert set(runconfig._TOP) | {"presence"} <= keys, keys


def test_runtime_doc_lists_every_module_of_the_runtime():
    text = read("RUNTIME.md")
    listed = set(re.findall(r"^\| `(\w+\.py)` \|", text, re.M))
    here = set(n for n in os.listdir(os.path.join(ROOT, "firmware", "runtime"))
               if n.endswith(".py") and n != "__init__.py")
    assert listed == here, (sorted(here - listed), sorted(listed - here))


def test_protocol_doc_states_the_body_sizes_the_codec_writes():
    """The sizes in section 6's headings are what the encoders make."""
    text = read("PROTOCOL.md")
    ack4 = len(wire.enc_probe_ack(b"c" * 8, ("192.0.2.1", 6278)))
    ack6 = len(wire.enc_probe_ack(b"c" * 8, ("2001:db8::1", 6278)))
    sizes = {"INIT-ACK (type 2), %d bytes" % len(wire.enc_init_ack(1, b"n" * 16, 2, b"c" * 20)),
             "PROBE (type 7), %d bytes, and PROBE-ACK (type 8), %d or %d bytes" % (
                 len(wire.enc_probe(b"c" * 8, 0)), ack4, ack6),
             "ERR (type 12), %d bytes" % len(wire.enc_err(1, 5)),
             "KEEPALIVE (type 13), %d bytes" % len(wire.enc_keepalive(5))}
    for heading in sizes:
        assert heading in text, heading


def test_schema_rows_describe_every_key_for_docs():
    rows = schema_rows()
    keys = [r[0] for r in rows]
    for key in ("name", "port", "keying", "replay_window", "peers.*.psk",
                "peers.*.allowed", "uplinks.*.cost", "uplinks.*.kind"):
        assert key in keys
    assert len(keys) == len(set(keys))
    for pattern, typ, default, limits in rows:
        assert typ in ("str", "int", "bool", "enum", "psk", "addr", "addrs",
                       "prefix", "prefixes", "text", "secret")
        assert limits
    cost = rows[keys.index("uplinks.*.cost")]
    assert cost == ("uplinks.*.cost", "int", 0, "an integer from 0 to 255")
    assert rows[keys.index("name")][2] is None
    assert rows[keys.index("peers.*.psk")][3] == "standard base64 of exactly 32 bytes"
