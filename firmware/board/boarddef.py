# Board definitions: what hardware a board has, one JSON file per board in the
# repository's boards/ folder, copied to the board as /board.json by `mast flash`
# (and by `mast sim-board`). The schema is check() below; the host tests check
# every file in boards/ with it, and the board checks its own at boot.
#
#   {"name": "olimex-esp32-poe", "title": "...", "port": "esp32",
#    "routing": "source", "soft_reset": true, "watchdog_ms": 30000, "install": "flash",
#    "heap": {"bytes": 110000, "notes": "..."},
#    "uplinks": {"eth": {"kind": "lan", "priority": 10, "cost": 0,
#                        "phy": {"type": "LAN8720", "addr": 0, "mdc": 23, "mdio": 18,
#                                "power": 12, "ref_clk": 17, "ref_clk_mode": "out"}},
#                "wifi": {"kind": "wlan", "priority": 20, "cost": 0}},
#    "notes": "..."}
#
# A sim uplink (unix port) may send through a UDP relay, as the runtime's uplinks can
# (the link emulator: `mast linkemu`): "via" is the relay's inside address and
# "public" its outside one, the address the peer sees (both "ip:port").
#
# routing: "source" - every uplink up at once, one socket bound to each uplink's
#   address, and the stack sends each from its own interface (ESP-IDF's lwIP routes
#   by source address; Linux). "exclusive" - the stack routes by its default
#   interface only (MicroPython's own lwIP on rp2/stm32), so one uplink is up at a
#   time and the board rotates to the next when it fails. docs/HARDWARE.md.

from .compat import loads

_PORTS = ("esp32", "rp2", "unix")
_ROUTING = ("source", "exclusive")
_KINDS = ("sim", "wlan", "lan", "ppp")
_PHYS = ("LAN8720", "IP101", "RTL8201", "DP83848", "KSZ8041", "KSZ8081")
_NAME = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_.-"

# field -> (type, required, limits); types: name text bool int pin pin? enum ip dict
_TOP = {
    "name": ("name", 1), "title": ("text", 1), "port": ("enum", 1, _PORTS),
    "routing": ("enum", 1, _ROUTING), "soft_reset": ("bool", 1),
    "watchdog_ms": ("int", 1, 0, 60000), "install": ("enum", 1, ("mip", "flash")),
    "heap": ("heap", 1), "uplinks": ("uplinks", 1), "notes": ("text", 0),
    "sim": ("sim", 0),
}
_HEAP = {"bytes": ("int", 1, 8192, 1 << 30), "notes": ("text", 1)}
_SIM = {"heapsize": ("text", 1)}
_UPLINK = {
    "kind": ("enum", 1, _KINDS), "priority": ("int", 1, 0, 255), "cost": ("int", 1, 0, 255),
    "address": ("ip", 0), "phy": ("phy", 0), "modem": ("modem", 0), "notes": ("text", 0),
    "via": ("hostport", 0), "public": ("hostport", 0),
}
_PHY = {
    "type": ("enum", 1, _PHYS), "addr": ("int", 1, 0, 31), "mdc": ("pin", 1), "mdio": ("pin", 1),
    "power": ("pin?", 1), "ref_clk": ("pin?", 1), "ref_clk_mode": ("enum?", 1, ("in", "out")),
}
_MODEM = {
    "model": ("text", 1), "uart": ("int", 1, 0, 2), "tx": ("pin", 1), "rx": ("pin", 1),
    "baud": ("int", 1, 9600, 3686400), "power_on": ("pin?", 1), "pwrkey": ("pin?", 1),
    "pwrkey_active": ("int", 1, 0, 1), "pwrkey_ms": ("int", 1, 0, 5000),
    "reset": ("pin?", 1), "boot_ms": ("int", 1, 0, 60000), "dial": ("text", 1),
}
_SUB = {"heap": _HEAP, "sim": _SIM, "phy": _PHY, "modem": _MODEM}


def _fail(key, msg):
    raise ValueError("%s: %s" % (key, msg))


def _value(key, v, spec):
    t = spec[0]
    if v is None and t[-1:] == "?":
        return
    t = t.rstrip("?")
    if t == "name":
        if type(v) is not str or not 0 < len(v) <= 31 or v.strip(_NAME):
            _fail(key, "must be 1 to 31 characters of A-Za-z0-9_.-")
    elif t == "text":
        if type(v) is not str or not v:
            _fail(key, "must be non-empty text")
    elif t == "bool":
        if type(v) is not bool:
            _fail(key, "must be true or false")
    elif t == "int":
        if type(v) is not int or not spec[2] <= v <= spec[3]:
            _fail(key, "must be an integer from %d to %d" % (spec[2], spec[3]))
    elif t == "pin":
        if type(v) is not int or not 0 <= v <= 48:
            _fail(key, "must be a GPIO number from 0 to 48%s" % (" or null" if spec[0][-1:] == "?" else ""))
    elif t == "enum":
        if v not in spec[2]:
            _fail(key, "must be one of " + ", ".join(spec[2]))
    elif t == "ip" or t == "hostport":
        h = v.rsplit(":", 1) if t == "hostport" and type(v) is str else [v, "1"]
        p = h[0].split(".") if type(h[0]) is str else ()
        if (len(h) != 2 or len(p) != 4 or [x for x in p if not x.isdigit() or int(x) > 255]
                or not h[1].isdigit() or not 0 < int(h[1]) < 65536):
            _fail(key, "must be an IPv4 address" + (" and port (127.0.0.1:40001)" if t == "hostport" else ""))
    elif t == "uplinks":
        if type(v) is not dict or not v:
            _fail(key, "must name at least one uplink")
        for name in v:
            _value(key + "." + name, name, ("name",))
            _table(key + "." + name, v[name], _UPLINK)
            _uplink(key + "." + name, v[name])
    else:
        _table(key, v, _SUB[t])


def _table(key, d, fields):
    if type(d) is not dict:
        _fail(key, "must be an object")
    for k in d:
        if k not in fields:
            _fail(key + "." + k if key else k, "unknown field")
    for k in fields:
        spec = fields[k]
        if k in d:
            _value(key + "." + k if key else k, d[k], spec)
        elif spec[1]:
            _fail(key + "." + k if key else k, "required")


def _uplink(key, u):
    need = {"sim": "address", "lan": "phy", "ppp": "modem"}.get(u["kind"])
    if need and need not in u:
        _fail(key + "." + need, "required for a %s uplink" % u["kind"])
    for k in ("address", "phy", "modem", "via", "public"):
        if k in u and k != need and not (u["kind"] == "sim" and k in ("via", "public")):
            _fail(key + "." + k, "only for a %s uplink" % {"address": "sim", "phy": "lan", "modem": "ppp",
                                                             "via": "sim", "public": "sim"}[k])
    if ("via" in u) != ("public" in u):
        _fail(key + ".public", "via and public go together: the relay's inside and outside address")


def check(doc):
    """doc if it is a valid board definition; ValueError "key: message" otherwise."""
    _table("", doc, _TOP)
    if doc["port"] != "unix" and [1 for u in doc["uplinks"].values() if u["kind"] == "sim"]:
        _fail("uplinks", "sim uplinks exist only on the unix port")
    if doc["port"] == "rp2":
        if doc["routing"] != "exclusive":  # MicroPython's own lwIP: no source routing
            _fail("routing", "must be exclusive on rp2 (its lwIP routes by the default interface)")
        if doc["watchdog_ms"] > 8388:
            _fail("watchdog_ms", "must be at most 8388 on rp2 (the RP2040 watchdog's limit)")
    return doc


def generic(platform):
    """A definition for a board without /board.json: what every board of the port has."""
    if platform == "linux" or platform == "darwin":
        return {"name": "unix", "title": "MicroPython unix port", "port": "unix",
                "routing": "source", "soft_reset": False, "watchdog_ms": 0, "install": "flash",
                "heap": {"bytes": 196608, "notes": "-X heapsize"},
                "uplinks": {"lo": {"kind": "sim", "priority": 10, "cost": 0, "address": "127.0.0.2"}}}
    port = "rp2" if platform == "rp2" else "esp32"
    return {"name": port, "title": "generic " + port, "port": port,
            "routing": "source" if port == "esp32" else "exclusive", "soft_reset": True,
            "watchdog_ms": 8000, "install": "flash", "heap": {"bytes": 65536, "notes": "unknown"},
            "uplinks": {"wifi": {"kind": "wlan", "priority": 20, "cost": 0}}}


# what only people and host tools read (mast flash, mast sim-board, the docs): the board
# keeps its definition in its heap for its whole life, so load() leaves these out
_HOST_ONLY = ("notes", "heap", "sim", "install", "soft_reset")


def load(files, platform):
    """(definition, warning): /board.json if valid, else the port's generic one; either
    without _HOST_ONLY's fields (nor an uplink's notes)."""
    data = files.read("board.json")
    if data is None:
        return generic(platform), "no board.json: generic %s definition" % platform
    try:
        doc = check(loads(data.decode()))
        for k in _HOST_ONLY:
            doc.pop(k, None)
        for u in doc["uplinks"].values():
            u.pop("notes", None)
        return doc, None
    except (ValueError, UnicodeError) as e:
        return generic(platform), "board.json is not valid (%s): generic %s definition" % (e, platform)
