# The console's get: the candidate configuration as it takes effect, or one key of it
# (secrets redacted: settings.get). main.py imports this module for the request and forgets
# it after (main.ONCE, with settings.py): a module of its own, so that get needs room for
# its code and settings.py's only, and set (settings.py) for none of it.

from mast.config import ConfigError
from . import settings


def view(b):
    """The candidate configuration as it takes effect: defaults filled in, each
    uplink with its kind, priority and cost (secrets are redacted by get)."""
    raw = b.candidate
    try:
        core, extra = b.check(raw)
    except ConfigError:
        return settings.copy(raw)
    v = settings.copy(core)
    names = list(b.bd["uplinks"]) + [n for n in v["uplinks"] if n not in b.bd["uplinks"]]
    for name in names:
        u = v["uplinks"].setdefault(name, {})
        u["kind"] = b.uplink_spec(name, raw)["kind"]
        u["priority"], u["cost"] = b.prio_cost(name, raw)
        u.update(extra.get(name, {}))
    return v


def get(b, key=None):
    """`get`: the candidate configuration as it takes effect (view()), or one key."""
    return settings.get(view(b), key)
