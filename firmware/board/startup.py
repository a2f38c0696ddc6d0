# Boot, and (re)starting the runtime: code that runs once at boot and again only
# when the console's apply needs a new endpoint. main.py imports this module for
# that and forgets it after (main.ONCE), together with store.py and settings.py,
# so that their code takes no heap while the board runs.
#
# Boot, in this order (docs/HARDWARE.md, "Watchdog and maintenance"):
#   1. read the maintenance flag (mast.maint) and the boot-loop counter, BEFORE any
#      watchdog: a watchdog cannot be stopped on ESP32/RP2040, and after Ctrl-C
#      nothing feeds it, so it would reset a board in the middle of `mast flash`
#   2. CRASH_LIMIT boots in a row that never ran STABLE_MS -> maintenance
#   3. load the configuration (mast.json, else the last good copy, else defaults)
#   4. maintenance: the console only (no watchdog, no uplinks, no association, no
#      app); otherwise start the watchdog, the runtime, the uplinks and the app
#
# The heap at boot: main.Board.boot imports the core and the runtime (the largest,
# longest-lived code) first, while the heap is empty and in one piece, then this
# module. Everything boot-only is freed after boot.

from .compat import VERSION


def boot(b, crash_limit):
    from .store import Store

    s = Store(b.files, b.check)
    reason = s.maintenance()  # before any watchdog (see the top of this file)
    b.boots = s.boot_count()
    if reason is None and b.boots >= crash_limit:
        reason = "boot loop: %d boots in a row crashed or hung" % b.boots
        s.set_maintenance(reason)
    s.set_boot_count(0 if reason else b.boots + 1)
    if not reason:
        # the core and the runtime now, counted as part of this boot (a core that fails to
        # load ends in maintenance after CRASH_LIMIT boots) and before the configuration is
        # read: the largest code, loaded for good, as low in the heap as it can be, below
        # what boot loads for a moment (measured: the board then runs its demo in a smaller
        # heap, bench/footprint.py, though it needs a little more to boot)
        import mast.endpoint  # noqa: F401
        import runtime.driver  # noqa: F401
    cfg, b.cfg_source, b.cfg_warning = s.load()  # checked (Board.check keeps the result)
    b.main_ok = s.main_ok  # for the next commit (consoleops.commit)
    s = Store = None
    if cfg is not None:
        # read and checked (Board.check keeps the result): the store's and the schema's code
        # go before the runtime's objects are made (main.shed; bench/footprint.py)
        from .main import shed

        shed("board.store", "board.settings")
    else:
        cfg = defaults(b)
    # candidate, committed and running are never changed in place (a set makes a new
    # configuration), so they share one object until they differ
    b.candidate = cfg
    b.committed = cfg if b.cfg_source != "defaults" else None
    b.emit({"log": "boot", "board": b.bd["name"], "firmware": VERSION,
            "mode": "maintenance" if reason else "normal", "config": b.cfg_source,
            "warning": b.cfg_warning or b.bd_warning})
    if reason:
        b.mode = "maintenance"
        b.maint_reason = reason
        b.log("maintenance mode (%s): no watchdog, no uplinks, no app; "
              "{\"op\": \"maintenance\", \"state\": \"off\"} to leave it" % reason)
        return
    if b.bd["watchdog_ms"]:
        b.wdt = b.hw.wdt(b.bd["watchdog_ms"])
    b.start(cfg)  # (main.Board.start: tests stand in for it)


def defaults(b):
    uid = b.hw.unique_id()
    name = b.bd["name"].replace("_", "-")
    return {"name": name + "-" + uid[-6:] if uid else name}


def start(b, cfg):
    """Start the runtime and the uplink managers on cfg (valid); main.Board.boot starts
    the app once this module is gone."""
    from .applycfg import sync_managers, renew_runtime

    core, extra = b.check(cfg)
    renew_runtime(b, core)
    b.running = cfg
    b.checked = None  # running now: the endpoint holds its check (main.Board.check)
    sync_managers(b, cfg)
    if b.bd["routing"] == "exclusive" and len(b.managers) > 1:
        from .exclusive import Exclusive

        b.excl = Exclusive(b)
        b.excl.start(b.now())
    b.connect_peers(core)
