# The console's configuration ops: get, set, unset, validate, commit. main.py imports
# this module for the request and forgets it after (main.ONCE, with settings.py and
# store.py), so that their code takes no heap the rest of the time.
#
# `get`: the candidate configuration as it takes effect (view()), or one key.
# `set`, `unset`: the candidate configuration, one key (only that value is checked);
# `validate` checks the whole candidate for this board; `commit` writes it to flash
# atomically (store.py).
#
# candidate, committed and running are never changed in place (main.Board): a set
# makes a new configuration, and a commit or apply shares the candidate.


def view(b):
    """The candidate configuration as it takes effect: defaults filled in, each
    uplink with its kind, priority and cost (secrets are redacted by get)."""
    from mast.config import ConfigError
    from . import settings

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


def set_key(b, key, value):
    from . import settings

    b.candidate = settings.set_key(b.candidate, key, value)
    return {"key": key, "pending": True}


def unset_key(b, key):
    from . import settings

    b.candidate = settings.unset_key(b.candidate, key)
    return {"key": key, "pending": True}


def validate(b):
    b.check(b.candidate)
    return {"valid": True}


def commit(b):
    b.check(b.candidate)
    # the schema's code goes before the store's comes: a commit under traffic then needs
    # room for one of them at a time (bench/footprint.py)
    from .main import shed

    shed("board.settings")
    from .store import Store

    st = Store(b.files, b.check)
    st.main_ok = b.main_ok  # mast.json is valid (load() at boot, or the last commit)
    n = st.commit(b.candidate)
    b.main_ok = True
    b.committed = b.candidate  # never changed in place: shared (main.Board)
    b.cfg_source, b.cfg_warning = "mast.json", None
    return {"committed": True, "bytes": n}


def get(b, key=None):
    from . import settings

    return settings.get(view(b), key)
