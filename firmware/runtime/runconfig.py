# The endpoint file: what one runtime process needs besides the core's own
# configuration. JSON, documented in docs/RUNTIME.md:
#
#   {"mast":    {... the core configuration (mast/config.py) ...},
#    "uplinks": {"eth": {"bind": "127.0.0.1:0", "via": "127.0.0.1:40001",
#                        "public": "127.0.0.2:6278", "priority": 10, "cost": 0,
#                        "device": "eth0"}},
#    "connect": ["server"],
#    "stream":  {"peer": "server", "rate": 50, "size": 64, "count": 0},
#    "stream_records": false,     received payloads starting "S" shown as stream records
#    "rcvbuf": 1048576}           SO_RCVBUF of each uplink's socket (0: the system's)
#
# check() returns a normalized copy or raises FileError naming the key, e.g.
# "uplinks.eth.bind: expected HOST:PORT ...". The "mast" part is the core's own
# schema (its errors come back as "mast.<key>: ..."). Pure: runs on MicroPython.

from mast import config
from mast.config import ConfigError
from mast.addr import canonical, ip_to_bytes, parse_addr
from .hostport import parse_hostport
from .peeraddr import peer_addresses_error

_TOP = ("mast", "uplinks", "connect", "stream", "stream_records", "rcvbuf")
_UPLINK = ("bind", "via", "public", "priority", "cost", "device")
_STREAM = ("peer", "rate", "size", "count")
_NAME_CHARS = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_.-"
STREAM_MIN_SIZE = 13  # "S" | seq u32 | time u64: see stream.py
STREAM_MAX_SIZE = 1200


class FileError(ValueError):
    """A bad endpoint file; str(e) is "<key>: <message>", the key as shown_key() shows it."""

    def __init__(self, key, message):
        from .jsonrule import shown_key  # (only on an error: the endpoint process's heap)

        key = shown_key(key)
        super().__init__("%s: %s" % (key, message))
        self.key = key


def _int(key, v, lo, hi):
    if type(v) is not int or not lo <= v <= hi:
        raise FileError(key, "must be an integer from %d to %d" % (lo, hi))
    return v


def _known(key, d, allowed):
    if type(d) is not dict:
        raise FileError(key, "must be an object")
    for k in d:
        if k not in allowed:
            raise FileError("%s.%s" % (key, k) if key else k,
                            "unknown key (known: %s)" % ", ".join(allowed))


def _addr(key, v, allow_zero):
    try:
        return parse_hostport(v, allow_zero)
    except ValueError as e:
        if type(v) is str and "%" in v:  # [fe80::2%eth0]:6278
            e = "%s: an IPv6 zone (%%...) is not taken; write the address without it and give " \
                "its interface as device" % e
        raise FileError(key, str(e))


def _wildcard(host):
    return host == "0.0.0.0" or host == "::"


def _link_local(host):
    b = ip_to_bytes(host)
    return len(b) == 16 and b[0] == 0xFE and b[1] & 0xC0 == 0x80  # fe80::/10


def _uplink(name, u, core):
    key = "uplinks." + name
    _known(key, u, _UPLINK)
    cu = core["uplinks"].get(name, {})
    out = {}
    if "bind" in u:
        out["bind"] = _addr(key + ".bind", u["bind"], True)
    elif "address" in cu:  # the core knows the uplink's address: bind to it, on the core's port
        out["bind"] = (canonical(parse_addr(cu["address"], None)[0]), core["port"])  # ("[::1]")
    else:
        raise FileError(key + ".bind", "required: the local HOST:PORT of this uplink's socket")
    out["via"] = _addr(key + ".via", u["via"], False) if "via" in u else None
    out["public"] = _addr(key + ".public", u["public"], False) if "public" in u else None
    if out["via"] is not None:
        if out["public"] is None:
            raise FileError(key + ".public", "required with via: the relay's outside HOST:PORT, "
                                             "the address the peer sees")
        if (":" in out["via"][0]) != (":" in out["bind"][0]):
            raise FileError(key + ".via", "must be of the same address family as bind")
    elif out["public"] is None and _wildcard(out["bind"][0]):
        raise FileError(key + ".bind", "%s is a wildcard: bind to the uplink's own address, "
                                       "or give public" % out["bind"][0])
    elif out["public"] is not None and (":" in out["public"][0]) != (":" in out["bind"][0]):
        # (the core drops every packet from another family than its uplink's: wrong_family)
        raise FileError(key + ".public", "must be of the same address family as bind")
    # priority and cost: here, else the core's uplinks.<name>, else its defaults
    out["priority"] = _int(key + ".priority", u["priority"], 0, 255) if "priority" in u else None
    out["cost"] = _int(key + ".cost", u["cost"], 0, 255) if "cost" in u else None
    dev = u.get("device", cu.get("device"))
    if dev is not None:
        if type(dev) is not str or not 0 < len(dev) <= 15 or not _only(dev, _NAME_CHARS):
            raise FileError(key + ".device", "must be an interface name of 1 to 15 characters")
    elif _link_local(out["bind"][0]):  # (its bind() fails, EINVAL, unless on an interface)
        raise FileError(key + ".device", "required with a link-local bind address (%s): the "
                                         "interface it is on" % out["bind"][0])
    out["device"] = dev
    return out


def _only(text, chars):
    for c in text:
        if c not in chars:
            return False
    return True


def check(doc):
    """A normalized copy of an endpoint file (a dict from JSON), or FileError."""
    _known("", doc, _TOP)
    if "mast" not in doc:
        raise FileError("mast", "required: the core configuration (name, peers, ...)")
    try:
        core = config.validate(doc["mast"])
    except ConfigError as e:
        raise FileError("mast." + e.key, str(e)[len(e.key) + 2:])
    bad = peer_addresses_error(core)
    if bad:
        raise FileError("mast." + bad[0], bad[1])
    out = {"mast": core, "uplinks": {}, "connect": [], "stream": None,
           "stream_records": doc.get("stream_records", False), "rcvbuf": None}
    if type(out["stream_records"]) is not bool:
        raise FileError("stream_records", "must be true or false")
    if "rcvbuf" in doc:
        out["rcvbuf"] = _int("rcvbuf", doc["rcvbuf"], 0, 1 << 26)
    ups = doc.get("uplinks", {})
    if type(ups) is not dict or not ups:
        raise FileError("uplinks", "must be an object with at least one uplink, "
                                   "e.g. {\"eth\": {\"bind\": \"127.0.0.1:6278\"}}")
    for name in ups:
        if not 0 < len(name) <= 31 or not _only(name, _NAME_CHARS):
            raise FileError("uplinks." + name, "name must be 1 to 31 characters of A-Za-z0-9_.-")
        out["uplinks"][name] = _uplink(name, ups[name], core)
    conn = doc.get("connect", [])
    if type(conn) is not list:
        raise FileError("connect", "must be a list of peer names")
    for i in range(len(conn)):
        p = conn[i]
        key = "connect[%d]" % i
        if type(p) is not str or p not in core["peers"]:
            raise FileError(key, "unknown peer %r: add it under mast.peers" % (p,))
        if not core["peers"][p]["addresses"]:
            raise FileError(key, "peer %s has no address: set mast.peers.%s.addresses" % (p, p))
        out["connect"].append(p)
    if doc.get("stream") is not None:
        s = doc["stream"]
        _known("stream", s, _STREAM)
        if s.get("peer") not in core["peers"]:
            raise FileError("stream.peer", "must name a peer under mast.peers, not %r" % (s.get("peer"),))
        out["stream"] = {
            "peer": s["peer"],
            "rate": _int("stream.rate", s.get("rate", 50), 0, 1000),
            "size": _int("stream.size", s.get("size", 64), STREAM_MIN_SIZE, STREAM_MAX_SIZE),
            "count": _int("stream.count", s.get("count", 0), 0, 1 << 30),
        }
    return out
