"""mastd's configuration: UCI (/etc/config/mast) on OpenWrt, JSON (/etc/mast/mast.json) elsewhere.

Both become one nested dict with the core schema's dotted keys (firmware/mast/config.py):

    UCI                                     dotted key            JSON
    config mast 'global' / option port      port                  {"port": 6278}
    config peer 'srv' / option psk          peers.<name>.psk      {"peers": {"<name>": {"psk": ...}}}
    config uplink 'wan' / option cost       uplinks.wan.cost      {"uplinks": {"wan": {"cost": 0}}}

A peer's name is its section's `name` option (a domain name), else the section name. An
uplink's name is its section name: on OpenWrt, the logical interface (wan, wwan, lte).

mastd's own keys (enabled, internal, tun, masquerade) are in the core's one schema too; mastd
gives them its defaults (AGENT_KEYS below). The core validates its part. An error names the key as the user wrote it: the UCI
option ("mast.lte.cost: must be an integer from 0 to 255") or the JSON key.

mastd's defaults differ from a board's in two places: replay_window 8192 (re-sent DATA arrives
late at failover) and resend_ms 1000 (TCP in the tunnel never waits for its RTO).
"""

import json

from mast import config
from mast.addr import ip_to_bytes
from mast.config import ConfigError

from . import uci

UCI_PACKAGE = "mast"
DEFAULT_UCI = "/etc/config/mast"
DEFAULT_JSON = "/etc/mast/mast.json"

# mastd's defaults: for the agent-only keys of the core schema (enabled, internal, tun,
# masquerade: no default there, boards never use them) and where mastd differs from a board.
AGENT_KEYS = {"enabled": True, "internal": None, "tun": "mast0", "masquerade": False}
AGENT_DEFAULTS = {"replay_window": 8192, "resend_ms": 1000}

_TRUE = ("true", "1", "yes", "on", "enabled")
_FALSE = ("false", "0", "no", "off", "disabled")
_IFNAME = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")


def parse_prefix(text):
    """"10.0.0.0/8" -> (4 or 6, network int, prefix length, address int). ValueError."""
    if not isinstance(text, str) or text.count("/") != 1:
        raise ValueError("must be an address with a prefix length, such as 10.99.0.2/24")
    host, n = text.split("/")
    raw = ip_to_bytes(host)
    bits = len(raw) * 8
    if not n.isdigit() or int(n) > bits:
        raise ValueError("prefix length must be 0 to %d" % bits)
    addr = int.from_bytes(raw, "big")
    plen = int(n)
    mask = ((1 << plen) - 1) << (bits - plen) if plen else 0
    return (4 if bits == 32 else 6), addr & mask, plen, addr


def text_value(key, text):
    """A UCI string (or list of strings) as the core schema's type for key. Text that does not
    parse comes back unchanged, so that the schema's check reports it (host tools do the same
    in mast_tools.config_text)."""
    typ = config.key_type(key)
    if isinstance(text, list):
        if typ in ("addrs", "prefixes"):
            out = []
            for t in text:
                out += t.replace(",", " ").split()
            return out
        return text
    if typ == "int":
        return int(text) if text.isdigit() else text
    if typ == "bool":
        low = text.lower()
        return True if low in _TRUE else False if low in _FALSE else text
    if typ in ("addrs", "prefixes"):
        return text.replace(",", " ").split()
    return text


class Settings:
    """A checked configuration. core: the core's validated dict; agent: mastd's keys;
    where: the file; uci_names: dotted-key prefix -> UCI name, for messages."""

    def __init__(self, core, agent, where, uci_names=None):
        self.core = core
        self.agent = agent
        self.where = where
        self.uci_names = uci_names


def _check(doc, rename):
    """Validate with the core schema (mastd's defaults first); -> (core, agent), or
    ConfigError with the key renamed for the user."""
    try:
        for k, v in AGENT_DEFAULTS.items():
            doc.setdefault(k, v)
        core = config.validate(doc)
    except ConfigError as e:
        raise ConfigError(rename(e.key), str(e)[len(e.key) + 2:])
    agent = dict((k, core.get(k, d)) for k, d in AGENT_KEYS.items())
    return core, agent


def from_uci_text(text, where=DEFAULT_UCI):
    """Settings from UCI text; UciError for bad syntax, ConfigError naming the option."""
    sections = uci.parse(text, where)
    doc = {"peers": {}, "uplinks": {}}
    names = {}  # dotted prefix -> "mast.<section>"
    glob = None
    for s in sections:
        ref = "%s.%s" % (UCI_PACKAGE, s.ref())
        if s.type == "mast":
            if glob is not None:
                raise ConfigError(ref, "a second `config mast` section (there is one: %s)" % glob)
            glob = ref
            for k, v in s.options.items():
                doc[k] = text_value(k, v)
                names[k] = "%s.%s" % (ref, k)
        elif s.type in ("peer", "uplink"):
            opts = dict(s.options)
            if s.type == "peer":
                name = opts.pop("name", None) or s.name
                coll = "peers"
            else:
                name, coll = s.name, "uplinks"
            if not name:
                raise ConfigError(ref, "an anonymous %s section needs option name" % s.type
                                  if s.type == "peer" else
                                  "an uplink section needs a name: the logical interface "
                                  "(config uplink 'wan')")
            if name in doc[coll]:
                raise ConfigError(ref, "%s %r is configured twice" % (s.type, name))
            prefix = "%s.%s" % (coll, name)
            names[prefix] = ref
            doc[coll][name] = dict((k, text_value("%s.%s" % (prefix, k), v)) for k, v in opts.items())
        else:
            raise ConfigError(ref, "unknown section type %r (mast, peer or uplink)" % s.type)
    glob = glob or "%s.global" % UCI_PACKAGE

    def rename(key):
        if key in names:
            return names[key]
        best = None
        for prefix in names:
            if key.startswith(prefix + ".") and (best is None or len(prefix) > len(best)):
                best = prefix
        if best is not None:
            return names[best] + key[len(best):]
        return "%s.%s" % (glob, key)  # a global option (name: required)

    c, a = _check(doc, rename)
    return Settings(c, a, where, names)


def from_json_text(text, where=DEFAULT_JSON):
    try:
        doc = json.loads(text)
    except ValueError as e:
        raise ConfigError("file", "%s is not valid JSON (%s)" % (where, e))
    if not isinstance(doc, dict):
        raise ConfigError("file", "%s must hold one JSON object" % where)
    c, a = _check(doc, lambda k: k)
    return Settings(c, a, where)


def load(path):
    """Settings from a file: JSON if it ends in .json or starts with "{", else UCI.
    OSError if unreadable; uci.UciError or ConfigError if bad."""
    with open(path) as f:
        text = f.read()
    if path.endswith(".json") or text.lstrip().startswith("{"):
        return from_json_text(text, path)
    return from_uci_text(text, path)
