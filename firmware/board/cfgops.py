# The console's configuration ops validate and commit, and the check of a whole
# configuration for this board (check(): boot, validate, commit, apply). get, set and
# unset are in settings.py: they need only its code and the schema's, none of this.
# main.py imports this module for the request and forgets it after (main.ONCE, with
# settings.py and store.py), so that their code takes no heap the rest of the time.
#
# `validate` checks the whole candidate for this board; `commit` writes it to flash
# atomically (store.py).
#
# candidate, committed and running are never changed in place (main.Board): a set
# makes a new configuration, and a commit or apply shares the candidate.

MAX_PEERS = 16  # peers a board's configuration holds (each set copies the whole candidate)


def check(bd, cfg):
    """(core configuration, board extras) if cfg suits the board whose definition is bd
    (board.json); ConfigError naming the key otherwise. The board checks its own
    configuration with this at boot, validate, commit and apply (main.Board.check);
    `mast flash --config` checks the file with it on the host before anything is written.
    (Here, not in settings.py: get and set then load none of it, nor runtime/peeraddr.py.)"""
    from mast.config import ConfigError, validate
    from runtime.peeraddr import peer_addresses_error

    if len(cfg.get("peers") or ()) > MAX_PEERS:  # (settings.set_key's check too; not
        # imported from there: a commit then needs room for none of settings.py's code)
        raise ConfigError("peers", "a board holds at most %d peers (unset one first)" % MAX_PEERS)
    core, extra = validate(cfg), {}
    bad = peer_addresses_error(core)
    if bad:
        raise ConfigError(bad[0], bad[1])
    ups = cfg.get("uplinks") or {}
    have = bd["uplinks"]
    for name in ups:
        kind = ups[name].get("kind")
        if name not in have:
            if not (bd["port"] == "unix" and kind == "sim"):
                raise ConfigError("uplinks." + name, "this board has no such uplink (it has %s)"
                                  % ", ".join(sorted(have)))
            if "address" not in ups[name]:
                raise ConfigError("uplinks.%s.address" % name, "required for a sim uplink")
        elif kind is not None and kind != have[name]["kind"]:
            raise ConfigError("uplinks.%s.kind" % name, "is %s on this board" % have[name]["kind"])
    return core, extra


def validate(b):
    b.check(b.candidate)
    return {"valid": True}


def commit(b):
    b.check(b.candidate)
    # the schema's code goes before the store's comes: a commit under traffic then needs
    # room for one of them at a time (bench/footprint.py)
    from .main import shed

    shed("board.settings", "runtime.peeraddr")
    from .store import Store

    st = Store(b.files, b.check)
    st.main_ok = b.main_ok  # mast.json is valid (load() at boot, or the last commit)
    n = st.commit(b.candidate)
    b.main_ok = True
    b.committed = b.candidate  # never changed in place: shared (main.Board)
    b.cfg_source, b.cfg_warning = "mast.json", None
    return {"committed": True, "bytes": n}
