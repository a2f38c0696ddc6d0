# The one rule for the JSON configurations read by the endpoint process (runconfig.py),
# mastd (mast.json, the presence configuration, mastctl's edit) and the host tools (a board's
# file for mast config and mast flash): a key given twice in one object is refused
# (DuplicateKey), and a key part that may be a secret is never repeated in a message
# (shown_key). A module of its own, not in runconfig.py: the endpoint process imports it only to
# read its file or name a bad key, so on MicroPython (where json takes no hook and the last key
# is kept) none of it stays in the process's heap (tests/attacks/test_atk_memory.py at 176K).
#
# Pure: runs on MicroPython and CPython.

_NAME_CHARS = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_.-"
_KEY_CHARS = _NAME_CHARS + "*[]@"  # a key's parts: settings, names, "connect[0]", UCI's "@peer[0]"
_HIDDEN = "(not repeated: it may be a secret)"


def shown_key(key):
    """A dotted key as a message may show it: each part that has a character no key has
    (outside A-Za-z0-9_.-, and *, [], @ of "peers.*", "connect[0]", UCI's "@peer[0]") is not
    repeated. Text in a key's place that has others may be a
    secret (a PSK's "=", "+", "/": {"peers": {"srv": {"<psk>": 1}}}), and a newline in it made
    a line of its own in a log, one that looked like the program's. The one rule for the
    JSON files read here, by mastd (mastd/settings.py) and by the host tools."""
    out = []
    for p in key.split("."):
        out.append(_HIDDEN if p.strip(_KEY_CHARS) else p)
    return ".".join(out)


def error_text(e):
    """A ConfigError's text, its key as shown_key() shows it."""
    return "%s: %s" % (shown_key(e.key), str(e)[len(e.key) + 2:])


class DuplicateKey(ValueError):
    """A JSON object that gives one key twice: json.loads keeps the last silently, so a peer
    written twice lost its first section (its allowed prefixes, its key) with no word, where
    UCI refuses a peer configured twice. str(e) names the key when it has a name's
    characters, never one that may be a secret."""

    def __init__(self, key):
        shown = repr(key) if 0 < len(key) <= 63 and not key.strip(_NAME_CHARS) else (
            "a key %s" % _HIDDEN)
        super().__init__("%s is given twice in one object (JSON would keep only the last)" % shown)
        self.key = key


def _unique(pairs):
    out = {}
    for k, v in pairs:
        if k in out:
            raise DuplicateKey(k)
        out[k] = v
    return out


def loads_json(text):
    """json.loads, but DuplicateKey (a ValueError) for an object that gives a key twice: the
    one rule for the JSON configurations read by `mast endpoint`, mastd (mast.json, the
    presence configuration, mastctl's edit) and the host tools (a board's file for mast config
    and mast flash). MicroPython's json takes no hook: there the last is kept, as before."""
    import json

    try:
        return json.loads(text, object_pairs_hook=_unique)
    except TypeError:  # (MicroPython: no keyword arguments)
        return json.loads(text)


def load_json(f):
    """loads_json() of an open file; on MicroPython the file is parsed as it is read, never
    held whole in the heap (its json refuses the hook before it reads a byte)."""
    import json

    try:
        return json.load(f, object_pairs_hook=_unique)
    except TypeError:  # (MicroPython: no keyword arguments)
        return json.load(f)
