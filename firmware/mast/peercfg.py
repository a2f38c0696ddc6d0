# One peer's section checked alone: Endpoint.set_peer (mastd changes one peer of a fleet of
# thousands without checking the others). A module of its own, not part of config.py: a board
# never adds a peer this way, and config.py is loaded into a board's heap for its console's
# get, set and commit (the rest of the schema's code: config.py).
from . import config


def validate_peer(cfg, name, peer):
    """One peer's section, checked and with its defaults, for the validated
    configuration cfg (so a fleet of thousands changes one peer without checking
    all); ConfigError naming the key otherwise. The same checks as validate():
    it is validate() of a configuration holding this peer alone (and cfg's name
    and keying, which decide whether the peer needs its psk)."""
    return config.validate({"name": cfg["name"], "keying": cfg["keying"],
                            "peers": {name: peer}})["peers"][name]
