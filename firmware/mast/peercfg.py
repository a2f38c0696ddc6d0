# One peer's section checked alone: Endpoint.set_peer (mastd changes one peer of a fleet of
# thousands without checking the others). A module of its own, not part of config.py: a board
# never adds a peer this way, and config.py is loaded into a board's heap for its console's
# get, set and commit (the rest of the schema's code: config.py).
from . import config


def validate_peer(cfg, name, peer):
    """One peer's section, checked and with its defaults, for the validated
    configuration cfg (so a fleet of thousands changes one peer without checking
    all); ConfigError naming the key otherwise."""
    out = {"peers": {}}
    config._put(out, ["peers", name], {})
    if type(peer) is not dict:
        raise config.ConfigError("peers." + name, "must be a table")
    for k in peer:  # a few keys: the schema decoded per key, nothing big kept (boards)
        config._put(out, ["peers", name, k], peer[k])
    pc = out["peers"][name]
    for row in config._rows():
        if row[0].startswith("peers.*.") and row[2] is not None:
            pc.setdefault(row[0][8:], config._copy(row[2]))
    if cfg["keying"] == "psk" and "psk" not in pc:
        raise config.ConfigError("peers.%s.psk" % name, "required when keying is psk")
    return pc
