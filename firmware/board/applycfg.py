# `apply`: take a new configuration into the running endpoint without a reboot.
#
# An association is kept (same nonces, same keys, no new handshake) unless the
# configuration changes who the peers are or how they are keyed:
#   our name or keying changed   -> every association restarts (a new Endpoint)
#   a peer removed, or its psk   -> that peer's association restarts
#   anything else (costs, priorities, timers, peer addresses, new peers, the
#   port)                        -> associations are kept; uplinks are re-announced
#                                   (SET) where their address or preference changed
#
# Endpoint.reconfigure() does the work in the core; plan() says what it will do,
# for the console's reply. The uplink managers and a new runtime are made here, at
# boot too (startup.py imports them), so that an apply loads this module alone.


def plan(old, new):
    """(rebuild: bool, [peers whose association restarts], why) for two normalized
    core configurations."""
    if old["name"] != new["name"]:
        return True, [], "name changed"
    if old["keying"] != new["keying"]:
        return True, [], "keying changed"
    restart = []
    for p in old["peers"]:
        if p not in new["peers"]:
            restart.append(p)
        elif old["peers"][p].get("psk") != new["peers"][p].get("psk"):
            restart.append(p)
    return False, sorted(restart), "peer keys changed" if restart else None


def reconfigure(ep, cfg, restart, now):
    """Give the live endpoint ep the configuration cfg (the core closes the associations
    of the peers in restart: their keys or existence changed)."""
    ep.reconfigure(cfg, now, True)  # (cfg: Board.check's result)


def apply(board):
    """The console's apply: the candidate configuration, running, without a reboot."""
    from .console import OpError

    b = board
    if b.rt is None:
        raise OpError("maintenance mode: nothing runs to apply to; commit, then maintenance off")
    if b.rebuild is not None:  # the last apply's new endpoint is made once poll() returns
        raise OpError("the last apply is still being carried out: apply again in a moment")
    core, extra = b.check(b.candidate)
    now = b.now()
    # against what ran before an apply the heap cut short, if one was (its work is done now)
    base = b.ep.cut_from or b.ep.cfg
    rebuild, restart, why = plan(base, core)
    old_port = base["port"]
    was = b.running
    b.running = b.candidate  # never changed in place: shared (main.Board)
    b.checked = None  # running now: the endpoint holds its check (main.Board.check)
    try:
        if rebuild:
            b.rebuild = (core, old_port)
            if not b.polling:
                renew(b)
            # else: inside the runtime's poll() (the console is one of its readers), the old
            # runtime lives on until poll returns; Board.step() renews it then, with the old
            # one's memory free (a board's heap has no room for both)
        else:
            reconfigure(b.ep, core, restart, now)
            _restart_uplinks(b, core, old_port, False, now)
    except MemoryError:
        # cut short: `status` says the candidate is not applied (the reply is an error), and
        # the next apply finishes the job (Endpoint.reconfigure picks up where this one stopped)
        b.running = was
        raise
    return {"applied": True, "associations": "restarted" if rebuild else "kept",
            "restarted": restart, "why": why}


def renew(b):
    """A new endpoint and runtime for b.rebuild's configuration (our name or keying
    changed: every association restarts). A MemoryError here ends in the crash handler's
    reboot, onto the committed configuration."""
    core, old_port = b.rebuild
    b.rebuild = None
    old = b.rt
    b.reserve = old.give_up_reserve()  # (the new runtime's: a block in one piece is rare now)
    old.close()
    old.shutdown()
    old = b.rt = b.ep = None
    import gc

    gc.collect()
    renew_runtime(b, core)
    if b._stdin_key is not None:
        b._stdin_key = b.rt.add_reader(b.stdio.stream, b._on_stdin)
    _restart_uplinks(b, core, old_port, True, b.now())


def _restart_uplinks(b, core, old_port, rebuilt, now):
    sync_managers(b, b.running)
    for name in b.managers:  # re-announce: a new socket (port, rebuild) or preference
        m = b.managers[name]
        if m.state == "up" and (rebuilt or old_port != core["port"] or name in b.rt.uplinks):
            b._uplink_up(name, m.addr, now)
    b.connect_peers(core)


def renew_runtime(b, core):
    """A new endpoint and runtime for core (the old ones are gone: their memory is free);
    DATA goes straight to the board (Runtime.on_data: no event object, no copy)."""
    from mast.endpoint import Endpoint
    from runtime.driver import Runtime

    b.ep = Endpoint(core, b.random, checked=True)  # (core: Board.check's result)
    b.rt = Runtime(b.ep, b.now, reserve=b.reserve)
    b.reserve = None  # (the runtime's now)
    b.rt.on_data = b.on_data


def _opts(name, cfg):
    """An uplink's options in cfg (a copy: its values are numbers and text)."""
    return dict((cfg.get("uplinks") or {}).get(name) or {})


def sync_managers(b, cfg):
    """An uplink manager for each of the board's uplinks and each extra sim uplink of cfg;
    those that exist get cfg's options (they reconnect if their options changed)."""
    from . import uplinkops

    now = b.now()
    names = list(b.bd["uplinks"]) + [n for n in (cfg.get("uplinks") or {})
                                     if n not in b.bd["uplinks"]]
    for name in list(b.managers):
        if name not in names:  # an extra sim uplink that was removed
            uplinkops.set_admin(b.managers[name], False, now)
            b.handle(name, b.managers.pop(name).poll(now), now)
    for name in names:
        m = b.managers.get(name)
        if m is None:
            b.managers[name] = uplinkops.make(name, b.uplink_spec(name, cfg), _opts(name, cfg), b.hw)
        else:
            b.handle(name, uplinkops.configure(m, _opts(name, cfg), now), now)
