# The board's configuration: the core's one schema (mast/config.py), which also
# carries the uplink managers' keys (uplinks.*.ssid, password, apn, sim_pin).
#
# Three copies of the configuration, as on a router:
#   candidate  what set/unset edit; validate checks it
#   committed  what is on flash (commit writes the candidate there, atomically)
#   running    what the runtime uses (apply takes the candidate without a reboot)
# All three are raw: the keys as the user set them. validate() gives the
# normalized form (defaults filled in) that the endpoint takes.

from mast import config

# (config.ConfigError, config.is_secret, "<redacted>" and 16 are written out where they are
# used, not named here: this module is loaded in a heap the traffic may have fragmented, and a
# module's names are a table in one block: 12 take 192 bytes, 13 to 17 take 272)


def redact(value, path=""):
    """A copy of value (the configuration or a part of it at path) with every
    secret replaced by "<redacted>"."""
    if type(value) is dict:
        out = {}
        for k in value:
            out[k] = redact(value[k], path + "." + k if path else k)
        return out
    if path and config.is_secret(path):
        return "<redacted>"
    return copy(value)


def copy(v):
    """A deep copy of JSON-like data."""
    if type(v) is dict:
        out = {}
        for k in v:
            out[k] = copy(v[k])
        return out
    if type(v) is list or type(v) is tuple:
        return [copy(x) for x in v]
    return v


def validate(cfg):
    """(normalized core configuration, {}); ConfigError naming the key."""
    return config.validate(cfg), {}


def _named(key):
    """key, if its first part is one of the schema's (a setting such as port, or peers,
    uplinks) and it has only a key's characters (A-Za-z0-9_.-); otherwise ConfigError that
    does not repeat it: text pasted in a key's place may be a secret (a psk: its "=", in
    peers.<psk>.port or peers.srv.<psk>, was repeated), and an error goes back to the
    terminal and may be logged (a newline in it made a line of its own there)."""
    if config._row(key.split(".")[:1]) is None or key.strip(config._NAME_CHARS + "_"):
        raise config.ConfigError("key", "unknown, not repeated (it may be a secret): a key is a "
                                 "setting or section of docs/CONFIG.md, such as port or "
                                 "peers.NAME.psk, in A-Za-z0-9_.-")
    return key


def set_key(cfg, key, value):
    """A new configuration with key set (this value checked; validate() the whole)."""
    if type(key) is not str or not key:
        raise config.ConfigError("key", "a key is dotted text, e.g. uplinks.cell.cost")
    cfg = config.set_key(cfg, _named(key), value)
    if len(cfg.get("peers") or ()) > 16:  # peers a board's configuration holds (each set copies
        # the whole candidate): cfgops.MAX_PEERS, the whole check's, the same
        raise config.ConfigError("peers", "a board holds at most 16 peers (unset one first)")
    return cfg


def unset_key(cfg, key):
    _named(key)
    try:
        return config.unset_key(cfg, key)
    except KeyError:
        raise config.ConfigError(key, "is not set")


def get(cfg, key=None):
    """The (redacted) value at key, or the whole configuration; ConfigError if unset."""
    if key is None:
        return redact(cfg)
    _named(key)
    try:
        return redact(config.get(cfg, key), key)
    except KeyError:
        raise config.ConfigError(key, "is not set")


# ---- the console's set and unset (console.Console, request.call: imported for the op and
# forgotten after, main.ONCE; here, not in cfgops.py, so that these ops load one module
# less; get is getop.py's)


def op_set(b, key, value):
    """`set`: the candidate configuration with one key set (only that value is checked)."""
    b.candidate = set_key(b.candidate, key, value)
    return {"key": key, "pending": True}


def op_unset(b, key):
    b.candidate = unset_key(b.candidate, key)
    return {"key": key, "pending": True}
