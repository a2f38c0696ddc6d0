# The presence server's configuration file (JSON), checked; errors name the key:
#
#   {"names": {"board1.example": {"key": "<standard base64 of 32 bytes>"},
#              "server.example": {"key": "..."}},
#    "listen": "0.0.0.0:6279",      optional; `mast presence --listen` overrides it
#    "max_ttl": 3600,               optional: the longest registration granted, s
#    "rate": 10, "burst": 20,       optional: authenticated requests per second per name
#    "state": "/var/lib/mast/presence-state.json"}   optional: replay counters kept
#                                                    across restarts
#
# Only the names listed are served, each with its own key (`mast genkey` style keys,
# the same format as MAST pre-shared keys). Pure: runs on MicroPython and CPython.

from mast.config import decode_psk
from . import msg

_TOP = ("names", "listen", "max_ttl", "rate", "burst", "state")
_LIMITS = {"max_ttl": (1, 65535, 3600), "rate": (1, 1000, 10), "burst": (1, 10000, 20)}


class PresenceConfigError(ValueError):
    """A bad presence server configuration; str(e) is "<key>: <message>"."""

    def __init__(self, key, message):
        ValueError.__init__(self, "%s: %s" % (key, message))
        self.key = key


def check(doc):
    """-> {"names": {name: 32-byte key}, "listen": text or None, "max_ttl", "rate",
    "burst", "state"}; PresenceConfigError naming the key otherwise."""
    if type(doc) is not dict:
        raise PresenceConfigError("file", "must hold one JSON object")
    for k in doc:
        if k not in _TOP:
            raise PresenceConfigError(k, "unknown key (known: %s)" % ", ".join(_TOP))
    names = doc.get("names")
    if type(names) is not dict or not names:
        raise PresenceConfigError("names", "required: an object of the names served, "
                                  "e.g. {\"board1.example\": {\"key\": \"<base64 of 32 bytes>\"}}")
    out = {"names": {}, "listen": None, "state": None}
    for name in names:
        key = "names." + name
        try:
            msg.check_name(name)
        except ValueError:
            raise PresenceConfigError(key, "a name must be 1 to 63 characters of A-Za-z0-9.-")
        entry = names[name]
        if type(entry) is not dict:
            raise PresenceConfigError(key, "must be an object with its key: {\"key\": \"...\"}")
        for k in entry:
            if k != "key":
                raise PresenceConfigError(key + "." + k, "unknown key (known: key)")
        if "key" not in entry:
            raise PresenceConfigError(key + ".key", "required: standard base64 of 32 bytes")
        try:
            out["names"][name] = decode_psk(entry["key"])
        except (ValueError, TypeError):
            raise PresenceConfigError(key + ".key", "must be standard base64 of exactly 32 bytes")
    for k in _LIMITS:
        lo, hi, default = _LIMITS[k]
        v = doc.get(k, default)
        if type(v) is not int or not lo <= v <= hi:
            raise PresenceConfigError(k, "must be an integer from %d to %d" % (lo, hi))
        out[k] = v
    for k in ("listen", "state"):
        if k in doc:
            if type(doc[k]) is not str or not doc[k]:
                raise PresenceConfigError(k, "must be text")
            out[k] = doc[k]
    return out
