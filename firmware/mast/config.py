# The one configuration schema: used by the board console, the router's UCI
# reader, host tools and the docs, so every key has the same name everywhere.
#
# A configuration is a nested dict (JSON-compatible). Keys are written as dotted
# paths ("peers.srv.psk"); a `*` in a pattern is a name the user chooses (a peer
# or an uplink). validate() checks a whole configuration and fills in defaults;
# set_key()/unset_key()/get() work on one key; is_secret() names the keys whose
# values are never shown (the board's console redacts them: board/settings.py).
# Values are typed (JSON); text as typed at a console or read from UCI is parsed
# on the host (mast_tools.config_text). What only the host needs is on the host:
# the rows decoded for docs and help (mast_tools.config_help.schema_rows).
#
# Written for small heaps: importing a .mpy copies every function, string and
# constant object into RAM, so the schema is one string, decoded again each time
# it is used (nothing decoded stays in RAM); the code is few, larger functions;
# and there are no constant tuples of strings (each string would be an object).
from .addr import ip_to_bytes, parse_addr, _NAME_CHARS  # noqa: F401  (parse_addr: for callers of config)
from .keys import decode_psk, PSK_TEXT as _PSK  # noqa: F401  (decode_psk: for callers of config too)

# One row per key: pattern, type, default ("-": none), then the type's limits:
#   int: min max [step, default 1]      str: max length, characters allowed
#   enum: the choices                   besides A-Za-z0-9 [then "dns": a DNS name,
#                                       "dns.": one that may end in a dot]
#   text: min max length in bytes of UTF-8 (an SSID), no control characters
#   secret: min max length of printable ASCII [the only characters allowed]
#   addr, addrs: "port" if the address may carry a port
#   bool, psk, prefixes: none
# A line with a pattern alone ("peers.*") starts the keys of each peer (or
# uplink): the rows below it are "peers.*.addresses", "peers.*.dns", ...
# What each key means: docs/CONFIG.md (host tools print it from
# mast_tools.config_help, whose schema_rows() gives the rows decoded, for docs).
# (three strings, not one: loading the module then needs no block of 1.3 KB in one piece)
SCHEMA = (
    """
name str - 63 .-
port int 6278 1 65535
keying enum psk psk open
profile enum default default fast
mode enum failover failover redundant
replay_window int 1024 64 65536 64
resend_ms int 0 0 5000
outage_s int 300 10 86400
nat_refresh_s int 25 5 3600
fleet_domain str - 61 .- dns
fleet_psk psk -
enabled bool -
internal prefix -
tun str - 15 _.-
masquerade bool -
""",
    """\
peers.*
addresses addrs [] port
dns str - 253 .- dns.
psk psk -
port int 6278 1 65535
initiate bool true
internal addr -
allowed prefixes []
app_socket str - 107 /_.-
app_user str - 32 _.-
app_group str - 32 _.-
app_mode enum - 0600 0660
""",
    """\
uplinks.*
priority int 100 0 255
cost int 0 0 255
device str - 15 _.-
address addr -
kind enum linux sim wlan lan ppp linux
ssid text - 1 32
password secret - 8 63
apn str - 63 _.-
sim_pin secret - 4 8 0123456789

""",
)

_ALNUM = _NAME_CHARS[:62]  # digits and letters


class ConfigError(ValueError):
    """A bad configuration value; str(e) is "<key>: <message>"."""

    def __init__(self, key, message):
        super().__init__("%s: %s" % (key, message))
        self.key = key


# --- one value ---------------------------------------------------------------


def _check(t, lim, v):
    """None if v is a valid value of type t with limits lim (the row's limit
    fields, as text); otherwise the error, "must be <what a valid value looks
    like>". v=None is never valid, so _check(t, lim, None) describes type t.
    (In three functions, not one: smaller blocks of code for a board's heap.)"""
    if t == "addrs" or t == "prefixes":  # a list of addr or prefix
        item = t[:-1] if t == "addrs" else "prefix"
        want = "a list; each " + _check(item, lim, None)[8:]
        if type(v) is not list and type(v) is not tuple:
            return "must be " + want
        for x in v:
            w = _check(item, lim, x)
            if w:
                return "bad item %r: %s" % (x, w)
        return None
    f = _plain if t in _PLAIN else _net
    try:
        ok, want = f(t, lim, v)
    except ValueError:  # from the parsers (or text that is not UTF-8): not a valid value
        ok, want = False, f(t, lim, None)[1]
    return None if ok else "must be " + want


_PLAIN = ("int", "bool", "enum", "str", "text", "secret")


def _plain(t, lim, v):
    """(ok, what a valid value looks like) for the types that are not addresses or keys."""
    ok = type(v) is str  # most types are text
    if t == "int":  # bool is not an int, nor is 10.0
        lo, hi, step = map(int, (lim + ["1"])[:3])
        want = "an integer" if step == 1 else "a multiple of %d" % step
        want += " from %d to %d" % (lo, hi)
        ok = type(v) is int and lo <= v <= hi and v % step == 0
    elif t == "bool":
        want = "true or false"
        ok = type(v) is bool
    elif t == "enum":
        want = "one of " + ", ".join(lim)
        ok = ok and v in lim
    elif t == "str":  # every character allowed: nothing left once they are stripped
        want = "1 to %s characters of A-Za-z0-9%s" % tuple(lim[:2])
        ok = ok and 0 < len(v) <= int(lim[0]) and not v.strip(_ALNUM + lim[1])
        if lim[2:]:  # "dns": a DNS name (RFC 1035, 1123); "dns.": one that may end in a dot
            # (the last label begins with a letter: getaddrinfo reads 1.2.3 as 1.2.0.3, 0x7f
            # as 0.0.0.127)
            want += ", labels of 1 to 63 between dots, the last starting with a letter" + (
                "" if lim[2][3:] else ", no dot at the end")
            s = ok and (v[:-1] if v[-1:] == lim[2][3:] else v).split(".")
            ok = ok and s[-1][:1].isalpha() and "" not in s and len(max(s, key=len)) < 64
    else:  # text: an SSID (IEEE 802.11: 1 to 32 bytes; UTF-8 here: UnicodeError if not), no C0,
        # DEL or C1; secret: printable ASCII (a WPA2 passphrase; a PIN: lim[2]'s digits), never shown
        lo, hi = int(lim[0]), int(lim[1])
        want = "%d to %d %s" % (lo, hi, "digits" if lim[2:] else "printable ASCII characters"
                                if t == "secret" else "bytes of UTF-8 text (no control characters)")
        ok = ok and lo <= len(v.encode()) <= hi and not (lim[2:] and v.strip(lim[2]))
        for c in ok and v or "":
            ok = ok and " " <= c and (c < "\x7f" or t == "text" and c >= "\xa0")
    return ok, want


def _net(t, lim, v):
    """(ok, what a valid value looks like) for psk, addr, prefix; ValueError if v does not
    parse."""
    ok = type(v) is str
    if t == "psk":
        want = _PSK
        ok = ok and decode_psk(v)  # the 32 bytes, or ValueError
    elif t == "addr":
        want = "an IP address" + (
            ", optionally with a port (1.2.3.4:6278, [2001:db8::1]:6278)"
            if lim else " (no port)")
        ok = ok and (parse_addr(v, None)[1] is None or lim)
    else:  # prefix
        want = "an IPv4 or IPv6 prefix such as 10.0.0.0/8"
        if ok:
            host, n = v.split("/")  # ValueError unless exactly one "/"
            ip_to_bytes(host)
            ok = (0 < len(n) < 6 and not n.strip("0123456789")
                  and int(n) <= (128 if ":" in host else 32))
    return ok, want


# --- keys --------------------------------------------------------------------


def _decode(line, group):
    """One line of SCHEMA as a row: [pattern, type, default, limit fields...]."""
    f = line.split()
    f[0] = group + f[0]
    d = f[2]  # "-": no default; ints and enum choices as written
    f[2] = None if d == "-" else [] if d == "[]" else True if d == "true" else int(d) if f[1] == "int" else d
    return f


def _rows():
    """SCHEMA decoded, one row at a time (a generator: no more than one row is alive
    on a board's heap); each row a new list the caller may keep or change."""
    for part in SCHEMA:
        group = ""
        for line in part.split("\n"):
            if " " not in line:
                if line:  # "peers.*": the rows below are its keys
                    group = line + "."
            else:
                yield _decode(line, group)


def _find_row(pattern):
    """The row of pattern ("port", "peers.*.psk"), or None: its one line of SCHEMA
    found and decoded (nothing else of the schema is decoded)."""
    i = pattern.rfind(".")
    group, key = pattern[: i + 1], pattern[i + 1 :]
    part = SCHEMA[0] if not group else SCHEMA[1] if group == "peers.*." else (
        SCHEMA[2] if group == "uplinks.*." else None)
    # its line follows a newline (SCHEMA[0] starts with one; a group's line has no space: never
    # found; a key with a space would be found as a line's first words: "port int" as port)
    j = -1 if part is None or " " in key else part.find("\n" + key + " ") + 1
    if j < 1:
        return None
    return _decode(part[j:part.find("\n", j)], group)  # (each part ends with a newline)


def _split(key):
    # peer and uplink names may contain dots: "peers.a.example.psk" is the key
    # psk of peer "a.example"
    s = key.split(".")
    if (s[0] == "peers" or s[0] == "uplinks") and len(s) > 3:
        s = [s[0], ".".join(s[1:-1]), s[-1]]
    return s


def _row(s, names=False):
    """The row (see _rows) of the key with segments s; True if the key is a
    section that holds keys ("peers", "peers.srv"); None if unknown. With
    names, a bad peer or uplink name in s raises ConfigError."""
    named = s[0] == "peers" or s[0] == "uplinks"  # sections named by the user
    if named and len(s) > 1:
        if names:
            w = _check("str", ["63", ".-"] if s[0] == "peers" else ["31", "_.-"], s[1])
            if w:
                raise ConfigError(s[0] + "." + s[1], "name " + w)
        s = [s[0], "*"] + s[2:]
    if named and len(s) < 3:
        return True
    return _find_row(".".join(s))


def key_type(key):
    """The schema type of a setting ("int", "addrs", ...); None if key is not one."""
    r = _row(_split(key))
    return r[1] if type(r) is list else None


def is_secret(key):
    return key_type(key) in ("psk", "secret")


def _copy(v):
    t = type(v)
    if t is dict or t is list or t is tuple:  # a tuple becomes a list (JSON has lists)
        v = dict(v) if t is dict else list(v)
        for k in v if t is dict else range(len(v)):
            v[k] = _copy(v[k])
    return v


def _put(cfg, s, v):
    """Check v for the key with segments s and set that key in cfg (in place)
    to a copy of it, or to {} if the key is a section. The key's row, or True
    for a section; ConfigError naming the key otherwise."""
    key = ".".join(s)
    row = _row(s, True)
    if row is None:
        raise ConfigError(key, "unknown key")
    if row is not True:
        w = _check(row[1], row[3:], v)
        if w:
            raise ConfigError(key, w)
    node = cfg
    for k in s[:-1]:
        node = node.setdefault(k, {})
        if type(node) is not dict:
            raise ConfigError(k, "must be a table")
    node[s[-1]] = {} if row is True else _copy(v)
    return row


# --- whole configurations ----------------------------------------------------


def validate(cfg):
    """A new, normalized configuration with defaults filled in; ConfigError
    naming the first bad key otherwise (sections are checked level by level:
    the top-level keys first, then each peer's and uplink's)."""
    out = {}
    todo = [(cfg, [])]  # the sections to check, with their key segments
    for node, segs in todo:  # grows as sections are found
        if type(node) is not dict:
            raise ConfigError(".".join(segs) or "config", "must be a table")
        for k in node:
            if _put(out, segs + [k], node[k]) is True:
                todo.append((node[k], segs + [k]))
    for row in _rows():  # defaults; "peers" and "uplinks" always exist
        p = row[0].split(".")
        for node in out.setdefault(p[0], {}).values() if len(p) > 1 else [out]:
            if row[2] is not None:
                node.setdefault(p[-1], _copy(row[2]))
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
    # "peers.a.example.psk" is a key of peer "a.example"; "peers.a.example" may be a peer
    for s in (_split(key), s[:1] + [".".join(s[1:])]):
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
    """A new configuration with key set to value (typed: 6278, True,
    ["192.0.2.1"]; text is parsed on the host, mast_tools.config_text). Only
    this value is checked: call validate() before using the result."""
    s = _split(key)
    if _row(s, True) is True:
        raise ConfigError(key, "not a setting")
    new = _copy(cfg)
    _put(new, s, value)
    return new


def unset_key(cfg, key):
    """A new configuration without key (back to its default, if it has one)."""
    new = _copy(cfg)
    node, k = _find(new, key)
    del node[k]
    return new
