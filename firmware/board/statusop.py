# The console's status op (docs/CONSOLE.md, "status"): the board, its configuration,
# boot, uplinks, the runtime's associations and counters, the console's and the app's own.
# main.py imports this module for the op and forgets it after (main.ONCE), with the
# runtime's part (runtime/status.py): a module of its own, so that the op needs room for
# little more than the document it builds (in consoleops.py, it needed room for all of
# that module's code: a board a step too small answered `out of memory`).

from .compat import VERSION


_CAUSES = ("PWRON_RESET", "HARD_RESET", "WDT_RESET", "DEEPSLEEP_RESET", "SOFT_RESET")


def reset_cause(hw):
    """Why the board last reset ("pwron", "wdt", ...: machine.reset_cause()), or None where
    the port (hw: hw.Hardware) cannot tell."""
    m = hw.machine
    if m is None or not hasattr(m, "reset_cause"):
        return None
    try:
        c = m.reset_cause()
    except OSError:
        return None
    for name in _CAUSES:
        if getattr(m, name, None) == c:
            return name[:-6].lower()  # "pwron", "wdt", ...
    return str(c)


def mem():
    """{"free": bytes, "alloc": bytes} of the heap, or {} where the port cannot tell."""
    try:
        import gc

        gc.collect()
        return {"free": gc.mem_free(), "alloc": gc.mem_alloc()}
    except (ImportError, AttributeError):
        return {}


def hello(b):
    """The console's hello op: what this board is and runs (here, not in main.Board: its
    code takes heap only for the op)."""
    import sys

    v = sys.implementation.version  # (the port's name and version: here, only hello needs it)
    return {"firmware": "mast-board", "version": VERSION, "board": b.bd["name"],
            "title": b.bd["title"], "micropython": "%s %d.%d.%d" % (
                sys.implementation.name, v[0], v[1], v[2]),
            "platform": sys.platform, "mode": b.mode, "protocol": 1}


def uplink_status(m, now):
    """The status of the uplink manager m (board/uplinks.py; here, not a method of it: a board
    keeps that class loaded, and this runs only for the op)."""
    s = {"kind": m.kind, "state": m.state, "addr": m.addr, "admin": m.admin,
         "error": m.error, "attempts": m.attempts, "failures": m.failures,
         "ups": m.ups, "up_ms": (now - m.since) if m.state == "up" else None}
    if m.standby:
        s["standby"] = True
    if m.state == "down" and m.admin and not m.standby:
        s["retry_in_ms"] = max(0, m.next_try - now)
    detail = getattr(m, "detail", None)  # (kind-specific fields; a sim uplink has none)
    if detail is not None:
        s.update(detail())
    return s


def status(b):
    """The console's status op: the board, its configuration, boot, uplinks, the runtime's
    associations and counters, the console's and the app's own."""
    now = b.now()
    s = {"board": b.bd["name"], "firmware": VERSION, "mode": b.mode,
         "uptime_ms": now - b.t0, "mem": mem()}
    if b.maint_reason:
        s["maintenance"] = b.maint_reason
    if b.bd_warning:
        s["board_warning"] = b.bd_warning
    s["config"] = {"source": b.cfg_source, "warning": b.cfg_warning,
                   "uncommitted": b.candidate != b.committed,
                   "unapplied": b.rt is not None and b.candidate != b.running}
    s["boot"] = {"unstable_boots": b.boots, "stable": b.stable,
                 "reset_cause": reset_cause(b.hw)}
    s["watchdog"] = b.bd["watchdog_ms"] if b.wdt is not None else None
    ups = {}
    for name in b.managers:
        ups[name] = uplink_status(b.managers[name], now)
    if b.excl is not None:
        s["routing"] = {"mode": "exclusive", "active": b.excl.active}
    if b.rt is not None:
        st = b.rt.status()
        for name in st["uplinks"]:
            ups.setdefault(name, {})["mast"] = st["uplinks"][name]
        s["associations"] = st["associations"]
        s["counters"] = st["counters"]
        s["runtime"] = st["runtime"]
    s["uplinks"] = ups
    s["console"] = {"requests": b.console.requests, "errors": b.console.errors,
                    "lines_dropped": getattr(b.stdio, "dropped", 0)}
    if b.app is not None:
        s["app"] = b.app.status()
    return s
