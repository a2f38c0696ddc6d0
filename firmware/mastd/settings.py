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

A peer's application socket (app_socket, app_user, app_group, app_mode: APP_KEYS below) is
mastd's alone and not in the core's schema yet: those keys are taken out of each peer before
the core validates the rest and checked here: Settings.apps holds them by peer (the core's
dict never sees them). The old UDP app_port is refused: any local user could send through it or bind it (docs/MASTD.md).
"""

import os

from mast import config
from mast.addr import bytes_to_ip, canonical, ip_to_bytes, parse_addr
from mast.config import ConfigError
from runtime.peeraddr import peer_addresses_error
# the one rule for JSON configurations (a key given twice; a key that may be a secret, not repeated)
from runtime.jsonrule import DuplicateKey, error_text, loads_json, shown_key  # noqa: F401

from . import uci

UCI_PACKAGE = "mast"
DEFAULT_UCI = "/etc/config/mast"
DEFAULT_JSON = "/etc/mast/mast.json"

# mastd's defaults: for the agent-only keys of the core schema (enabled, internal, tun,
# masquerade: no default there, boards never use them) and where mastd differs from a board.
AGENT_KEYS = {"enabled": True, "internal": None, "tun": "mast0", "masquerade": False}
AGENT_DEFAULTS = {"replay_window": 8192, "resend_ms": 1000}

# A peer's application socket (mastd only; app.py): key -> what a valid value looks like.
APP_KEYS = {
    "app_socket": "an absolute path of at most 107 characters of A-Za-z0-9_.-/ (a Unix socket)",
    "app_user": "a user name or number (in /etc/passwd)",
    "app_group": "a group name or number (in /etc/group)",
    "app_mode": "0600 (the user only) or 0660 (the user and the group)",
}
APP_HELP = {
    "app_socket": "mastd only: a Unix socket (SOCK_SEQPACKET; an absolute path, no /../) through "
                  "which one local program sends the peer datagrams and receives the peer's; none: no app",
    "app_user": "mastd only: the user who may use app_socket (its owner: a name in /etc/passwd, or a "
                "number); default root",
    "app_group": "mastd only: a group whose members may use app_socket too (a name in /etc/group, or a "
                 "number; then mode 0660)",
    "app_mode": "mastd only: the socket file's mode; default 0660 with app_group, else 0600",
}
_PATH_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-/")
_ID_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")
ID_FILES = {"user": "/etc/passwd", "group": "/etc/group"}

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


def lookup_id(kind, text, files=None):
    """A user or group ("user" / "group") by name or number -> its number. Read from
    /etc/passwd or /etc/group (OpenWrt's python3-light may lack the pwd and grp modules).
    ValueError if there is no such name."""
    if text.isdigit():
        return int(text)
    path = (files or ID_FILES)[kind]
    try:
        with open(path) as f:
            for line in f:
                w = line.split(":")
                if len(w) > 2 and w[0] == text and w[2].isdigit():
                    return int(w[2])
    except OSError as e:
        raise ValueError("cannot read %s (%s)" % (path, e.strerror or e))
    raise ValueError("no %s %r in %s" % (kind, text, path))


def _check_app(key, p, files=None):
    """Check a peer's app keys (key: "peers.<name>"); -> {key: value} with app_mode filled
    in and the user's and group's numbers as _uid / _gid. ConfigError naming the key."""
    out = {}
    for k in APP_KEYS:
        if k not in p:
            continue
        v = p[k]
        ok = isinstance(v, str) and v != ""
        if ok and k == "app_socket":
            ok = (v[0] == "/" and len(v.encode()) <= 107 and set(v) <= _PATH_CHARS
                  and "/../" not in v + "/" and not v.endswith("/"))
        elif ok and k == "app_mode":
            ok = v in ("0600", "0660")
        elif ok:
            ok = len(v) <= 32 and set(v) <= _ID_CHARS
        if not ok:
            raise ConfigError("%s.%s" % (key, k), "must be " + APP_KEYS[k])
        out[k] = v
    if "app_socket" not in out:
        for k in out:
            raise ConfigError("%s.%s" % (key, k), "needs %s.app_socket" % key)
        return out
    for k, kind in (("app_user", "user"), ("app_group", "group")):
        if k in out:
            try:
                out["_uid" if kind == "user" else "_gid"] = lookup_id(kind, out[k], files)
            except ValueError as e:
                raise ConfigError("%s.%s" % (key, k), str(e))
    out.setdefault("app_mode", "0660" if "app_group" in out else "0600")
    return out


def _split_app(doc):
    """Take the app keys out of every peer of doc (in place); -> {peer: {key: value}}."""
    apps = {}
    peers = doc.get("peers")
    if isinstance(peers, dict):
        for name, p in peers.items():
            if isinstance(p, dict):
                got = dict((k, p.pop(k)) for k in list(p) if k in APP_KEYS)
                if got:
                    apps[name] = got
    return apps


def _app_port_refused(doc, rename):
    """Refuse a peer's UDP app_port (other than 0) with the way out, and take it out of doc
    (in place), whether the core's schema still has the key or not."""
    peers = doc.get("peers")
    for name, p in (peers.items() if isinstance(peers, dict) else ()):
        if isinstance(p, dict) and "app_port" in p:
            if p["app_port"] not in (0, "0"):
                raise ConfigError(rename("peers.%s.app_port" % name),
                                  "the UDP app port is gone: any local user could send to the "
                                  "peer through it, or bind it and receive the peer's datagrams; "
                                  "use app_socket (a Unix socket only app_user and app_group can "
                                  "reach)")
            del p["app_port"]


class Settings:
    """A checked configuration. core: the core's validated dict; agent: mastd's keys;
    apps: peer -> its app socket's keys (checked, with _uid / _gid); where: the file;
    uci_names: dotted-key prefix -> UCI name, for messages (None for JSON)."""

    def __init__(self, core, agent, where, uci_names=None, apps=None):
        self.core = core
        self.agent = agent
        self.where = where
        self.uci_names = uci_names
        self.apps = apps or {}
        self.warnings = []  # load() fills it: what to log once for this file


def internal_prefix(host):
    """A peer's internal address ("10.99.0.3", "[FD00::3]": the schema takes brackets) as the
    host prefix routed to it: "10.99.0.3/32", "fd00::3/128"."""
    host = canonical(parse_addr(host, None)[0])
    return "%s/%d" % (host, 128 if ":" in host else 32)


def prefix_text(text):
    """A prefix as its network, canonical: "0::/0" -> "::/0", "10.0.0.1/8" -> "10.0.0.0/8"
    (the kernel routes, and the status, get one spelling of each: `ip route add` refuses an
    IPv4 prefix with host bits, and only "::/0" is routed as its two halves)."""
    ver, net, plen, _ = parse_prefix(text)
    return "%s/%d" % (bytes_to_ip(net.to_bytes(4 if ver == 4 else 16, "big")), plen)


def _routed(name, p):
    """(key, prefix text, (version, network, length)) of each prefix peer p is routed by."""
    out = [("peers.%s.allowed" % name, t, parse_prefix(t)[:3]) for t in p.get("allowed", [])]
    if p.get("internal"):
        host = p["internal"]
        out.append(("peers.%s.internal" % name, host, parse_prefix(internal_prefix(host))[:3]))
    return out


def check_prefixes(peers, only=None):
    """ConfigError if a prefix (allowed, or an internal address) is another peer's too: the
    TUN's packets to it would go to one of them, chosen by their names. only: check that
    peer against the others (the others were checked before)."""
    held = {}
    for name in sorted(peers):
        if name != only:
            for _, _, k in _routed(name, peers[name]):
                held.setdefault(k, name)
    for name in [only] if only is not None else sorted(peers):
        for key, text, k in _routed(name, peers[name]):
            other = held.setdefault(k, name)
            if other != name:
                raise ConfigError(key, "%s is peer %s's already (each prefix is routed to one "
                                  "peer)" % (text, other))


def _unicast(core):
    """ConfigError for a peer address that is a multicast group, the broadcast address or the
    unspecified address, or IPv4 written IPv4-mapped (runtime/peeraddr.py)."""
    bad = peer_addresses_error(core)
    if bad:
        raise ConfigError(bad[0], bad[1])


def _check(doc, rename):
    """Validate with the core schema (mastd's defaults first); -> (core, agent, apps), or
    ConfigError with the key renamed for the user."""
    try:
        for k, v in AGENT_DEFAULTS.items():
            doc.setdefault(k, v)
        apps = _split_app(doc)
        _app_port_refused(doc, lambda k: k)
        core = config.validate(doc)
        check_prefixes(core["peers"])
        _unicast(core)
        for name in sorted(apps):
            apps[name] = _check_app("peers.%s" % name, apps[name])
    except ConfigError as e:
        raise ConfigError(shown_key(rename(e.key)), str(e)[len(e.key) + 2:])
    agent = dict((k, core.get(k, d)) for k, d in AGENT_KEYS.items())
    return core, agent, apps


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
            # (neither repeated if it may be a key: `config <KEY>`; an anonymous section's
            # ref is its type's)
            raise ConfigError(shown_key(ref), "unknown section type %s (mast, peer or uplink)"
                              % uci.keyword_shown(s.type))
    if glob is None:  # (else "mast.global.name: required", of a section the file lacks)
        raise ConfigError(where, "no `config mast` section; add one, e.g. config mast 'global' "
                                 "with option name (this host's name)")

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

    c, a, apps = _check(doc, rename)
    return Settings(c, a, where, names, apps)


# How deep a JSON configuration may nest objects and lists: mastd's own needs 4 (the file's
# object -> peers -> a peer -> its allowed list); a deeper file is refused before anything walks it.
MAX_JSON_DEPTH = 16


def _too_deep(doc, limit=MAX_JSON_DEPTH):
    """True if doc nests objects and lists more than limit deep (walked without recursion)."""
    stack = [(doc, 0)]
    while stack:
        v, depth = stack.pop()
        if isinstance(v, (dict, list)):
            if depth >= limit:
                return True
            stack.extend((x, depth + 1) for x in (v.values() if isinstance(v, dict) else v))
    return False


def from_json_text(text, where=DEFAULT_JSON):
    deep = ConfigError(where, "objects and lists nest more than %d deep (mastd's configuration "
                              "needs 4: the file's object, peers, a peer, its allowed list); "
                              "fix the file" % MAX_JSON_DEPTH)
    try:
        doc = loads_json(text)
    except RecursionError:  # the decoder gives up past Python's recursion limit
        raise deep
    except DuplicateKey as e:
        raise ConfigError(where, "%s; give each key once" % e)
    except ValueError as e:
        raise ConfigError("file", "%s is not valid JSON (%s)" % (where, e))
    if not isinstance(doc, dict):
        raise ConfigError("file", "%s must hold one JSON object" % where)
    if _too_deep(doc):
        raise deep
    c, a, apps = _check(doc, lambda k: k)
    return Settings(c, a, where, None, apps)


def mode_warning(path, mode, core):
    """The warning for a file holding keys (a peer's psk, fleet_psk, an uplink's password or SIM
    PIN) that its group or others may read, else None."""
    return readable_keys_warning(path, mode) if holds_secret(core) else None


def readable_keys_warning(path, mode):
    """The warning for a file of keys (mode: its st_mode) that its group or others may read,
    else None. Also for the presence configuration and `mast endpoint`'s file."""
    if not mode & 0o044:
        return None
    who = "its group and others" if mode & 0o040 and mode & 0o004 else (
        "its group" if mode & 0o040 else "others")
    return ("%s holds keys and its mode %04o lets %s read them; chmod 600 %s"
            % (path, mode & 0o7777, who, path))


_SECRET_NAMES = ("psk", "fleet_psk", "key", "password", "sim_pin")


def holds_secret(doc):
    """True if a JSON document holds a value under a secret's name at any depth (mastd's
    checked configuration; an endpoint file: its peers' psk, its presence key)."""
    if isinstance(doc, dict):
        return any((k in _SECRET_NAMES and v) or holds_secret(v) for k, v in doc.items())
    return isinstance(doc, list) and any(holds_secret(v) for v in doc)


def load(path):
    """Settings from a file: JSON if it ends in .json or starts with "{", else UCI.
    OSError if unreadable; uci.UciError or ConfigError if bad (not UTF-8, nested too deep:
    the message never quotes the file's bytes, which may be a key's). Settings.warnings: what
    to log once for this load (a file holding keys that others may read)."""
    with open(path, "rb") as f:
        data = f.read()
        mode = os.fstat(f.fileno()).st_mode
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError("%s:%d" % (path, data.count(b"\n", 0, e.start) + 1),
                          "not UTF-8 text; save the file as UTF-8 (mast's keys are base64, "
                          "its names ASCII)")
    if path.endswith(".json") or text.lstrip().startswith("{"):
        conf = from_json_text(text, path)
    else:
        conf = from_uci_text(text, path)
    w = mode_warning(path, mode, conf.core)
    conf.warnings = ([w] if w else []) + board_uplink_warnings(conf)
    return conf


def board_uplink_warnings(conf):
    """A warning for each uplink of a board's kind (wlan, ppp, ...): mastd does not join Wi-Fi
    or dial; it uses the interface as netifd or Linux has it (a valid key, silently unused)."""
    out = []
    for name in sorted(conf.core.get("uplinks", {})):
        kind = conf.core["uplinks"][name].get("kind", "linux")
        if kind != "linux":
            key = "uplinks.%s" % name
            key = (conf.uci_names or {}).get(key, key)
            out.append("%s.kind: %s is a board's uplink kind; mastd neither joins Wi-Fi nor dials "
                       "(ssid, password, apn, sim_pin unused): it uses the interface %s as it is "
                       "(leave kind out)" % (key, kind, name))
    return out


def with_peer(conf, name, doc, section=None):
    """conf (Settings) with one more peer, checking only that peer (the others were checked
    when conf was made): the way to add one board to a fleet of thousands. section: its UCI
    section ("mast.<section>"), for messages. ConfigError naming peers.<name>.<key> (a name
    or key that may be a secret not repeated: shown_key)."""
    if not isinstance(doc, dict):
        raise ConfigError(shown_key("peers.%s" % name), "must be a table")
    d = dict(doc)
    try:
        apps = _split_app({"peers": {name: d}})
        _app_port_refused({"peers": {name: d}}, lambda k: k)
        one = config.validate({"name": conf.core["name"], "keying": conf.core["keying"],
                               "peers": {name: d}})
    except ConfigError as e:
        raise ConfigError(shown_key(e.key), str(e)[len(e.key) + 2:])
    _unicast(one)
    core = dict(conf.core)
    core["peers"] = dict(conf.core["peers"])
    core["peers"][name] = one["peers"][name]
    check_prefixes(core["peers"], name)
    all_apps = dict(conf.apps)
    if name in apps:
        all_apps[name] = _check_app("peers.%s" % name, apps[name])
    names = None
    if conf.uci_names is not None:
        names = dict(conf.uci_names)
        if section:
            names["peers.%s" % name] = section
    return Settings(core, conf.agent, conf.where, names, all_apps)


def without_peer(conf, name):
    """conf (Settings) without peer name."""
    core = dict(conf.core)
    core["peers"] = dict((n, p) for n, p in conf.core["peers"].items() if n != name)
    apps = dict((n, a) for n, a in conf.apps.items() if n != name)
    names = None
    if conf.uci_names is not None:
        names = dict((k, v) for k, v in conf.uci_names.items()
                     if k != "peers." + name and not k.startswith("peers.%s." % name))
    return Settings(core, conf.agent, conf.where, names, apps)
