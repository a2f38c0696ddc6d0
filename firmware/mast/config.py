# The one configuration schema: used by the board console, the router's UCI
# reader, host tools and the docs, so every key has the same name everywhere.
#
# A configuration is a nested dict (JSON-compatible). Keys are written as dotted
# paths ("peers.srv.psk"); a `*` in a pattern is a name the user chooses (a peer
# or an uplink). validate() checks a whole configuration and fills in defaults;
# set_key()/unset_key()/get() work on one key; redact() hides secrets.
from .compat import binascii
from .addr import ip_to_bytes

# Limits per type:
#   str: (max length, characters allowed besides A-Za-z0-9)
#   int: (min, max, step)        enum: the choices
#   addr, addrs: "port" if the address may carry a port, else ""
#   bool, psk, prefixes: None
_HOST = (63, ".-")
_PORT = (1, 65535, 1)
_BYTE = (0, 255, 1)

# (pattern, type, default, limits); default None = no default.
# What each key means: docs/CONFIG.md (host tools print it from mast_tools.config_help).
SCHEMA = (
    ("name", "str", None, _HOST),
    ("port", "int", 6278, _PORT),
    ("keying", "enum", "psk", ("psk", "open")),
    ("profile", "enum", "default", ("default", "fast")),
    ("mode", "enum", "failover", ("failover", "redundant")),
    ("replay_window", "int", 1024, (64, 65536, 64)),
    ("resend_ms", "int", 0, (0, 5000, 1)),
    ("outage_s", "int", 300, (10, 86400, 1)),
    ("nat_refresh_s", "int", 25, (5, 3600, 1)),
    ("peers.*.addresses", "addrs", [], "port"),
    ("peers.*.dns", "str", None, (253, ".-")),
    ("peers.*.psk", "psk", None, None),
    ("peers.*.port", "int", 6278, _PORT),
    ("peers.*.initiate", "bool", True, None),
    ("peers.*.internal", "addr", None, ""),
    ("peers.*.allowed", "prefixes", [], None),
    ("peers.*.app_port", "int", 0, (0, 65535, 1)),
    ("uplinks.*.priority", "int", 100, _BYTE),
    ("uplinks.*.cost", "int", 0, _BYTE),
    ("uplinks.*.device", "str", None, (15, "_.-")),
    ("uplinks.*.address", "addr", None, ""),
    ("uplinks.*.kind", "enum", "linux", ("sim", "wlan", "lan", "ppp", "linux")),
)

# rules for the user-chosen names under each collection (str limits)
_NAMES = {"peers": _HOST, "uplinks": (31, "_.-")}
_LISTS = {"addrs": "addr", "prefixes": "prefix"}
_SECRET = "<redacted>"


class ConfigError(ValueError):
    """A bad configuration value; str(e) is "<key>: <message>"."""

    def __init__(self, key, message):
        super().__init__("%s: %s" % (key, message))
        self.key = key


# --- text checks -----------------------------------------------------------
_ALNUM = "0123456789abcdefABCDEFghijklmnopqrstuvwxyzGHIJKLMNOPQRSTUVWXYZ"


def _only(text, chars):
    for c in text:
        if c not in chars:
            return False
    return True


def _num(x):
    """The value of a plain decimal number (no sign, no spaces), else -1."""
    return int(x) if x and len(x) < 6 and _only(x, _ALNUM[:10]) else -1


def _text_ok(v, lim):
    return 0 < len(v) <= lim[0] and _only(v, _ALNUM + lim[1])


def _ip(h, v6):
    try:
        return (":" in h) == v6 and bool(ip_to_bytes(h))
    except ValueError:
        return False


def _v4(h):
    return _ip(h, False)


def _v6(h):
    return _ip(h, True)


def _dns(h):
    labels = h.split(".")
    return _text_ok(h, (253, ".-")) and "" not in labels and _num(labels[-1]) < 0


def parse_addr(text, default_port, names=False):
    """"1.2.3.4", "1.2.3.4:6278", "2001:db8::1", "[2001:db8::1]:6278" (and a
    DNS name, with or without :port, if names) -> (host, port); the port is
    default_port when the text has none. ValueError if it is not an address."""
    host, port = text, default_port
    if text[:1] == "[":
        i = text.find("]")
        host, rest = text[1:i], text[i + 1:]
        if i < 0 or not _v6(host) or rest[:1] not in ("", ":"):
            host = ""
        elif rest:
            port = _port(rest[1:])
    elif len(text.split(":")) == 2:
        host, p = text.split(":")
        port = _port(p)
    if not (_v6(host) if ":" in host else _v4(host) or names and _dns(host)):
        raise ValueError("bad address %r" % text)
    return host, port


def _port(p):
    n = _num(p)
    if not 0 < n < 65536:
        raise ValueError("bad port %r" % p)
    return n


def _prefix_ok(v):
    p = v.split("/")
    v6 = ":" in p[0]
    return (len(p) == 2 and 0 <= _num(p[1]) <= (128 if v6 else 32)
            and (_v6(p[0]) if v6 else _v4(p[0])))


def decode_psk(text):
    """Standard base64 of exactly 32 bytes -> the 32 bytes. The error message
    never contains the text."""
    try:
        raw = binascii.a2b_base64(text)
        ok = len(raw) == 32 and binascii.b2a_base64(raw)[:-1] == text.encode()
    except Exception:
        ok = False
    if not ok:
        raise ValueError("PSK must be standard base64 of exactly 32 bytes")
    return raw


# --- one value ---------------------------------------------------------------


def _want(t, lim):
    """What a valid value of type t looks like, for errors and docs."""
    if t == "int":
        s = "an integer" if lim[2] == 1 else "a multiple of %d" % lim[2]
        return "%s from %d to %d" % (s, lim[0], lim[1])
    if t == "str":
        return "1 to %d characters of A-Za-z0-9%s" % lim
    if t == "enum":
        return "one of " + ", ".join(lim)
    if t == "addr":
        return "an IP address" + (
            ", optionally with a port (1.2.3.4:6278, [2001:db8::1]:6278)"
            if lim else " (no port)")
    if t in _LISTS:
        return "a list; each " + _want(_LISTS[t], lim)
    return {"bool": "true or false",
            "psk": "standard base64 of exactly 32 bytes",
            "prefix": "an IPv4 or IPv6 prefix such as 10.0.0.0/8"}[t]


def _ok(t, lim, v):
    """v if it is a valid value of type t, else None."""
    ty = type(v)
    if t == "int":  # bool is not an int, nor is 10.0
        if ty is int and lim[0] <= v <= lim[1] and v % lim[2] == 0:
            return v
    elif t == "bool":
        if ty is bool:
            return v
    elif ty is not str:
        return None
    elif t == "enum" and v in lim or t == "str" and _text_ok(v, lim):
        return v
    elif t == "prefix" and _prefix_ok(v):
        return v
    elif t in ("psk", "addr"):
        try:
            if t == "psk":
                decode_psk(v)
                return v
            if parse_addr(v, None)[1] is None or lim:
                return v
        except ValueError:
            pass
    return None


def _check(key, row, v):
    """The normalized value for row's key, or ConfigError naming the key."""
    t, lim = row[1], row[3]
    if t in _LISTS:
        if type(v) not in (list, tuple):
            raise ConfigError(key, "must be " + _want(t, lim))
        out = []
        for x in v:
            if _ok(_LISTS[t], lim, x) is None:
                raise ConfigError(key, "bad item %r: must be %s" % (
                    x, _want(_LISTS[t], lim)))
            out.append(x)
        return out
    r = _ok(t, lim, v)
    if r is None:  # never echo the value: it may be a secret
        raise ConfigError(key, "must be " + _want(t, lim))
    return r


def _parse(t, v):
    """Text typed at a console or read from UCI -> the value for type t."""
    if type(v) is str:
        if t == "int":
            try:
                return int(v)
            except ValueError:
                pass
        elif t == "bool":
            w = v.lower()
            if w in ("true", "1", "yes", "on"):
                return True
            if w in ("false", "0", "no", "off"):
                return False
        elif t in _LISTS:
            return v.replace(",", " ").split()
    return v


# --- keys --------------------------------------------------------------------


def _split(key):
    # peer names may contain dots: "peers.a.example.psk" is peer "a.example"
    s = key.split(".")
    if s[0] in _NAMES and len(s) > 3:
        s = [s[0], ".".join(s[1:-1]), s[-1]]
    return s


def _row(segs):
    """The schema row for a key (list of segments), True for a section that
    holds keys (like "peers" or "peers.srv"), None if unknown."""
    hit = None
    for row in SCHEMA:
        p = row[0].split(".")
        if len(p) >= len(segs) and all(a == "*" or a == b for a, b in zip(p, segs)):
            if len(p) == len(segs):
                return row
            hit = True
    return hit


def _check_name(segs):
    lim = _NAMES.get(segs[0])
    if lim and len(segs) > 1 and not _text_ok(segs[1], lim):
        raise ConfigError(".".join(segs[:2]), "name must be " + _want("str", lim))


def _copy(v):
    if type(v) is dict:
        return {k: _copy(x) for k, x in v.items()}
    if type(v) is list:
        return [_copy(x) for x in v]
    return v


def is_secret(key):
    r = _row(_split(key))
    return r is not None and r is not True and r[1] == "psk"


# --- whole configurations ----------------------------------------------------


def _walk(node, segs, out):
    if type(node) is not dict:
        raise ConfigError(".".join(segs) or "config", "must be a table")
    for k in node:
        s = segs + [k]
        key = ".".join(s)
        _check_name(s)
        row = _row(s)
        if row is None:
            raise ConfigError(key, "unknown key")
        if row is True:
            out[k] = {}
            _walk(node[k], s, out[k])
        else:
            out[k] = _check(key, row, node[k])


def _fill(node, p, default):
    k = p[0]
    if len(p) == 1:
        if k not in node:
            node[k] = _copy(default)
    elif k == "*":
        for v in node.values():
            _fill(v, p[1:], default)
    else:
        _fill(node.setdefault(k, {}), p[1:], default)


def validate(cfg):
    """A new, normalized configuration with defaults filled in; ConfigError
    naming the first bad key otherwise."""
    out = {}
    _walk(cfg, [], out)
    for row in SCHEMA:
        if row[2] is not None:
            _fill(out, row[0].split("."), row[2])
    if "name" not in out:
        raise ConfigError("name", "required")
    if out["keying"] == "psk":
        for n in sorted(out["peers"]):
            if "psk" not in out["peers"][n]:
                raise ConfigError("peers.%s.psk" % n, "required when keying is psk")
    return out


def _find(cfg, key):
    """(the dict holding key, its last segment); KeyError if key is absent."""
    s = key.split(".")
    tries = [_split(key)]
    if s[0] in _NAMES and len(s) > 2:  # "peers.a.example" may be a peer
        tries.append([s[0], ".".join(s[1:])])
    for s in tries:
        node = cfg
        for k in s[:-1]:
            node = node.get(k) if type(node) is dict else None
        if type(node) is dict and s[-1] in node:
            return node, s[-1]
    raise KeyError(key)


def get(cfg, key):
    """The value (or a copy of the whole section) at key; KeyError if absent."""
    node, k = _find(cfg, key)
    return _copy(node[k])


def set_key(cfg, key, value):
    """A new configuration with key set. value may be text as typed at a
    console ("6278", "true", "a, b"). Only this value is checked: call
    validate() before using the result."""
    s = _split(key)
    _check_name(s)
    row = _row(s)
    if row is None or row is True:
        raise ConfigError(key, "not a setting" if row else "unknown key")
    value = _check(key, row, _parse(row[1], value))
    new = _copy(cfg)
    node = new
    for k in s[:-1]:
        node = node.setdefault(k, {})
        if type(node) is not dict:
            raise ConfigError(k, "must be a table")
    node[s[-1]] = value
    return new


def unset_key(cfg, key):
    """A new configuration without key (back to its default, if it has one)."""
    new = _copy(cfg)
    node, k = _find(new, key)
    del node[k]
    return new


def redact(cfg, _path=""):
    """A deep copy with every secret replaced by "<redacted>"."""
    out = {}
    for k, v in cfg.items():
        key = _path + "." + k if _path else k
        if type(v) is dict:
            out[k] = redact(v, key)
        else:
            out[k] = _SECRET if is_secret(key) else _copy(v)
    return out


def schema_rows():
    """[(key pattern, type, default, what a valid value looks like)] for docs and help."""
    return [(r[0], r[1], r[2], _want(r[1], r[3])) for r in SCHEMA]
