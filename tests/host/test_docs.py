"""The docs say what the code does: the configuration table is the schema's, and the
protocol document's constants are the codec's."""

import os
import re

from mast import wire
from mast_tools.config_help import HELP, markdown
from mast import config

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def read(name):
    with open(os.path.join(ROOT, "docs", name)) as f:
        return f.read()


def test_config_doc_table_is_generated_from_the_schema():
    text = read("CONFIG.md")
    table = text.split("<!-- config-table:start -->\n")[1].split("<!-- config-table:end -->")[0]
    assert table == markdown()


def test_every_schema_key_has_help_text():
    keys = [row[0] for row in config.schema_rows()]
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
