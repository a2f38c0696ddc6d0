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


def init(b, hw, files, write, clock, platform, random, app, stdio):
    """main.Board.__init__, after it has taken the receive reserve: code that runs once."""
    import os
    import sys
    from .console import Console
    from .files import Files
    from .hw import Hardware
    from .main import STABLE_MS

    b.hw = hw or Hardware()
    b.files = files or Files()
    if clock is None:
        import time

        if hasattr(time, "ticks_ms"):
            from runtime.clock import MonotonicMs

            clock = MonotonicMs(time.ticks_ms, time.ticks_diff).now
        else:
            clock = lambda: int(time.monotonic() * 1000)  # noqa: E731
    b.now = clock
    b.random = random or os.urandom
    b.stdio = stdio  # the console's port (stdio.Stdio); None: only write
    b.send = None
    if write is None:
        if stdio is None:
            from .stdio import Stdio

            b.stdio = Stdio()
        write = b.stdio.write
        b.send = getattr(b.stdio, "send", None)
    b.write = write
    from . import boarddef  # (forgotten after, with this module: main.ONCE)

    b.bd, b.bd_warning = boarddef.load(b.files, platform or sys.platform)
    b.console = Console(b, write, b.send)
    b.app_module = app
    b.app = None
    b.mode = "normal"
    b.maint_reason = None
    b.cfg_source = b.cfg_warning = None
    # the configuration as set (candidate), on flash (committed), in use (running):
    # never changed in place, so they share one object until they differ
    b.candidate = b.committed = b.running = None
    b.main_ok = False  # mast.json holds a valid configuration (store.Store.main_ok)
    b.checked = None  # (configuration, check's result) of the last check, until it runs
    b.rt = b.ep = None
    b.managers = {}
    b.wdt = None
    b.pending = None  # reboot after the reply has gone out: why
    b.boots = 0
    b.stable = False
    b.stable_try = STABLE_MS  # the uptime at which to record that the boot is stable
    b.t0 = b.now()
    b.excl = None  # exclusive routing (exclusive.py), on boards that need it
    b.connect_pending = False  # associations to open when an uplink comes up
    b._stdin_key = None
    b.recent = []  # the last RECENT log and event lines (for `logs`)
    b.rebuild = None  # apply: a new endpoint to make once poll() returns (applycfg)
    b.polling = False  # inside the runtime's poll() (the console is one of its readers)
    b.ex_n = b.ex_since = b.ex_at = 0  # Board.step: MemoryErrors counted, since
    # when one came every second, when to look again


def boot(b, crash_limit):
    from .store import Store

    s = Store(b.files, b.check)
    reason = s.maintenance()  # before any watchdog (see the top of this file)
    b.boots = s.boot_count()
    if reason is None and b.boots >= crash_limit:
        reason = "boot loop: %d boots in a row crashed or hung" % b.boots
        try:
            s.set_maintenance(reason)
        except ValueError:  # (a full flash: this boot is in maintenance all the same)
            pass
    full = s.set_boot_count(0 if reason else b.boots + 1)
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
        # read and checked (Board.check keeps the result): the store's and the schema's code,
        # and the peer addresses' check, go before the runtime's objects are made (main.shed;
        # bench/footprint.py)
        from .main import shed

        shed("board.store", "board.settings", "runtime.peeraddr")
    else:
        cfg = defaults(b)
    # candidate, committed and running are never changed in place (a set makes a new
    # configuration), so they share one object until they differ
    b.candidate = cfg
    b.committed = cfg if b.cfg_source != "defaults" else None
    b.emit({"log": "boot", "board": b.bd["name"], "firmware": VERSION,
            "mode": "maintenance" if reason else "normal", "config": b.cfg_source,
            "warning": b.cfg_warning or b.bd_warning})
    if full:
        b.log("cannot count this boot in mast.boots: %s; until there is room, no boot loop "
              "ends in maintenance (free some: mpremote rm)" % full)
    if reason:
        b.mode = "maintenance"
        b.maint_reason = reason
        b.log("maintenance mode (%s): no watchdog, no uplinks, no app; "
              "{\"op\": \"maintenance\", \"state\": \"off\"} to leave it" % reason)
        return
    if b.bd["watchdog_ms"]:
        b.wdt = wdt(b.hw, b.bd["watchdog_ms"])
    b.start(cfg)  # (main.Board.start: tests stand in for it)


def wdt(hw, timeout_ms):
    """A started watchdog (it cannot be stopped on ESP32 and RP2040), or None where the port
    (hw: hw.Hardware) has none."""
    m = hw.machine
    if m is None or not hasattr(m, "WDT"):
        return None
    return m.WDT(timeout=timeout_ms)


def unique_id(hw):
    """The board's machine.unique_id() in hex, or None where the port has none."""
    m = hw.machine
    try:
        raw = m.unique_id()
    except (AttributeError, OSError):
        return None
    return "".join(["%02x" % b for b in raw])


def defaults(b):
    uid = unique_id(b.hw)
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
