"""docs/MASTD.md's UCI reference is the core schema's (plus mastd's own keys), row for row.

Regenerate the table after a schema change: `python tests/host/test_mastd_docs.py` prints it."""

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
for p in (os.path.join(ROOT, "firmware"), os.path.join(ROOT, "host-tools")):
    if p not in sys.path:
        sys.path.insert(0, p)

from mast_tools.config_help import HELP, schema_rows  # noqa: E402
from mastd import settings  # noqa: E402

DOC = os.path.join(ROOT, "docs", "MASTD.md")
START, END = "<!-- uci-reference:start -->", "<!-- uci-reference:end -->"
_SECTION = {"": "`config mast 'global'`", "peers": "`config peer '<name>'`",
            "uplinks": "`config uplink '<interface>'`"}


def _default(v):
    return "(none)" if v is None else "`%s`" % (str(v).lower() if isinstance(v, bool) else v)


def reference():
    rows = ["| UCI section | option | JSON key | type | default | valid values | meaning |",
            "|---|---|---|---|---|---|---|"]
    for key, typ, default, want in schema_rows():
        parts = key.split(".")
        word = "list" if typ in ("addrs", "prefixes") else "option"
        d = _default(default)
        if key in settings.AGENT_DEFAULTS:
            d = "`%s` (boards: %s)" % (settings.AGENT_DEFAULTS[key], d)
        elif key in settings.AGENT_KEYS:
            d = _default(settings.AGENT_KEYS[key])
        meaning = HELP.get(key, "")
        rows.append("| %s | `%s %s` | `%s` | %s | %s | %s | %s |" % (
            _SECTION["" if len(parts) == 1 else parts[0]], word, parts[-1], key, typ, d, want,
            meaning))
    return "\n".join(rows) + "\n"


def test_the_app_socket_keys_are_in_the_one_schema_with_mastds_own_texts():
    keys = [row[0] for row in schema_rows()]
    for k in settings.APP_KEYS:
        assert "peers.*." + k in keys and HELP["peers.*." + k] == settings.APP_HELP[k], k
    assert "peers.*.app_port" not in keys


def test_the_uci_reference_in_docs_is_the_schema():
    text = open(DOC).read()
    table = text[text.index(START) + len(START):text.index(END)].strip() + "\n"
    assert table == reference(), "docs/MASTD.md is stale: run python tests/host/test_mastd_docs.py"


def test_the_docs_name_every_mastctl_command_and_mastd_option():
    text = open(DOC).read()
    for needle in ("mastctl status --json", "mastctl uplink", "mastctl reload", "mastctl hotplug",
                   "mastctl peer add", "mastctl peer remove", "mastctl peer list", "app_socket",
                   "--config", "--control", "--syslog", "--discovery", "--check", "opkg install",
                   "pip install ./firmware/mastd", "mastd.service"):
        assert needle in text, needle


if __name__ == "__main__":
    sys.stdout.write(reference())
