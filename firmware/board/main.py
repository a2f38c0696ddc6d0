# The board firmware: boot, then one loop that runs the uplink managers, the MAST
# runtime, the app hook and the serial console. The device's /main.py is
#
#   from board import main
#   main.run()
#
# Boot (startup.py, docs/HARDWARE.md "Watchdog and maintenance") reads the
# maintenance flag and the boot-loop counter before any watchdog, loads the
# configuration, and starts the runtime, the uplinks and the app (or, in
# maintenance, only the console). Every line the firmware prints is JSON:
# {"log": ...}, {"event": ...} or a reply.
#
# The heap (docs/RUNTIME.md, "Memory"): this module, the uplink managers, the app
# hook and the console (console.py: lines in, replies out) stay
# loaded; code that runs once or now and then is in modules imported when needed
# and forgotten after (ONCE, Board.once): the Board's making, boot and apply (startup.py,
# applycfg.py), the configuration's store and schema glue (store.py, settings.py), the board
# definition's checker (boarddef.py), the console's ops (getop.py: get, settings.py:
# set/unset, cfgops.py: validate/commit and the whole check, consoleops.py:
# maintenance/logs/inventory, statusop.py: hello/status, uplinkops.py: what boot, apply
# and uplink do to an uplink manager) and the runtime's part of status (runtime/status.py), "HOST:PORT"
# text (runtime/hostport.py). The console's request checks (request.py, which also names the
# module and function that carry the op out) go before each op runs. On MicroPython the core's schema
# (mast/config.py) goes the same way: only these modules and the endpoint's checks use
# it; the board passes its check's result to the endpoint (checked=True), and a boot or
# a commit lets the schema go before the store or the runtime comes (shed), so that an
# op needs room for one of them at a time (bench/footprint.py).

import sys

from . import uplinks
from .compat import MICROPYTHON, dumps, sleep_ms, unload
# (files, console and hw are imported here, with this module, for the board's life: their
# code then comes before what boot loads for a moment; startup.init uses them)
from .files import Files  # noqa: F401
from .console import Console, OpError  # noqa: F401  (OpError: for callers of main)
from .hw import Hardware

STABLE_MS = 30000  # a boot that has run this long is not part of a boot loop
STABLE_RETRY_MS = 1000  # no heap to record it then (MemoryError): try again this much later
CRASH_LIMIT = 3  # boots in a row that crashed or hung -> maintenance
IDLE_MS = 1000
RECENT = 8  # lines kept for the console's `logs` (each at most LINE_KEEP chars): the logs,
# and the events but those that say something came up (uplink_up, path_up,
# association_up): what came up is what `status` shows now
LINE_KEEP = 160
RX_RESERVE = 2049  # runtime.driver._RX_BUF: a datagram of 2,048 bytes and one more (too long)
EXHAUSTED_MS = 30000  # the heap ran out in every second this long: only a reboot gives it back
# (the reboot's reason says 30 s)
CRASH_FILE = "mast.crash"  # the last crash, written before the reset that follows it
CRASH_NO_MEMORY = '{"log": "crash", "error": "MemoryError: (no memory left to say more)"}'
GC_THRESHOLD = 0  # gc.threshold() for the running board, in bytes; 0: MicroPython's default
# (collect when the heap is full). Collecting earlier was measured to change the smallest
# heap the board runs in by no more than its run-to-run variation (bench/footprint.py: one
# 8K step either way), so the default stays.
# modules loaded only for a moment (see the top); forgotten after each use
ONCE = ("board.startup", "board.applycfg", "board.store", "board.settings", "board.boarddef",
        "board.cfgops", "board.getop", "board.consoleops", "board.statusop", "board.uplinkops",
        "runtime.status", "runtime.peeraddr", "runtime.hostport")
# also forgotten after each use, on MicroPython only: under CPython (the tests) other modules
# hold the schema's ConfigError, which a second copy of the module would not match
ONCE_MP = ("mast.config",)


def shed(*names):
    """Forget these modules of ONCE now (and on MicroPython the schema with them), then
    collect once: an op that needs two of them in turn has room for one at a time."""
    import gc

    for name in names:
        unload(name)
    if MICROPYTHON:
        for n in ONCE_MP:
            unload(n)
    gc.collect()


def forget():
    """Forget every module of ONCE (and ONCE_MP on MicroPython): none of them is referenced
    by what keeps running."""
    for name in ONCE + ONCE_MP if MICROPYTHON else ONCE:
        unload(name)


class Board:
    def __init__(self, hw=None, files=None, write=None, clock=None, platform=None, random=None,
                 app="app", stdio=None):
        # first, while the heap is in one piece: the block a receive falls back on when the
        # heap has none (runtime.driver's reserve, _RX_BUF bytes). Taken later, after boot's
        # code has come and gone, a board near its heap's size finds no such block and
        # receives nothing at all (bench/footprint.py measured it at 160K)
        self.reserve = bytearray(RX_RESERVE)
        # the rest runs once: its code is in startup.py (init), imported for it
        self.once("startup", "init", hw, files, write, clock, platform, random, app, stdio)

    # ---- output ------------------------------------------------------------------

    def emit(self, obj):
        try:
            line = dumps(obj)
        except (TypeError, ValueError):
            line = dumps({"log": "unprintable: %r" % (obj,)})
        self.write(line)  # events and logs are small: one string, written at once
        if not str(obj.get("event")).endswith("_up"):
            r = self.recent
            r.append(line if len(line) <= LINE_KEEP else line[:LINE_KEEP - 3] + "...")
            if len(r) > RECENT:
                r.pop(0)

    def log(self, text):
        self.emit({"log": text})

    # ---- configuration -----------------------------------------------------------

    def check(self, cfg):
        """(core config, board extras) if cfg suits this board; ConfigError otherwise
        (cfgops.check; the caller forgets cfgops and settings after, see ONCE)."""
        if cfg is self.running and self.ep is not None:
            # the running configuration, checked when it was started or applied: the
            # endpoint holds that check's result (a check costs a board ~18 KB for a moment)
            return self.ep.cfg, {}
        if self.checked is not None and self.checked[0] is cfg:
            return self.checked[1]  # checked a moment ago (boot's load, then start; commit, then apply)
        from .cfgops import check

        r = check(self.bd, cfg)
        self.checked = (cfg, r)
        return r

    def uplink_spec(self, name, cfg):
        """The board definition's entry, or one for an extra sim uplink of cfg."""
        spec = self.bd["uplinks"].get(name)
        if spec is None:
            u = cfg["uplinks"][name]
            spec = {"kind": "sim", "priority": 100, "cost": 0, "address": u.get("address")}
        return spec

    def prio_cost(self, name, raw):
        """An uplink's priority and cost: the configuration's if set, else the board's."""
        spec = self.uplink_spec(name, raw)
        u = (raw.get("uplinks") or {}).get(name) or {}
        return u.get("priority", spec.get("priority", 100)), u.get("cost", spec.get("cost", 0))

    # ---- boot ------------------------------------------------------------------------

    def boot(self):
        """startup.boot: maintenance or the runtime, uplinks and app."""
        self.once("startup", "boot", CRASH_LIMIT)
        if self.rt is not None and self.app_module:  # with boot's code gone: room for the app's
            # (here, not in a method of its own: code that runs once takes no heap after)
            import gc

            gc.collect()
            from .hook import AppRunner

            self.app = AppRunner(self, self.app_module)
            self.app.start()
            if GC_THRESHOLD and hasattr(gc, "threshold"):
                gc.threshold(GC_THRESHOLD)

    def start(self, cfg):
        """Start the runtime and the uplink managers on cfg (valid)."""
        self.once("startup", "start", cfg)

    def once(self, module, fn, *args):
        """module.fn(self, *args), module imported for the call and forgotten after, with
        every other module of ONCE it loaded."""
        import gc

        gc.collect()  # room for the module's code in one piece
        try:
            mod = __import__("board." + module, None, None, (fn,))
            return getattr(mod, fn)(self, *args)
        finally:
            forget()

    def connect_peers(self, core):
        """Open the associations this board initiates, once an uplink is up (_uplink_up
        calls this again): an INIT with no uplink to go out on still uses up the first
        attempt and its 1 s back-off, and the next attempt goes out on the second-best
        uplink, so the association would start late, on the wrong uplink."""
        self.connect_pending = not self.rt.uplinks
        if self.connect_pending:
            return
        for p in sorted(core["peers"]):
            pc = core["peers"][p]
            if pc["initiate"] and pc["addresses"]:
                self.rt.connect(p)

    # ---- the loop ----------------------------------------------------------------------

    def serve(self):
        """Run for ever (until Ctrl-C, or a reboot)."""
        if self.rt is not None and self.stdio.stream is not None:
            self._stdin_key = self.rt.add_reader(self.stdio.stream, self._on_stdin)
        while True:
            self.turn()

    def turn(self):
        now = self.now()
        wait = IDLE_MS
        ms = self.managers
        for name in ms:  # (no copy, no view: a board's turn allocates as little as it can)
            wait = min(wait, ms[name].wait_ms(now))
        if self.app is not None and self.app.due is not None:
            wait = max(0, min(wait, self.app.due - now))
        if self.rt is not None:
            self.polling = True
            try:
                self.rt.poll(wait)
            finally:
                self.polling = False
            if self._stdin_key is None and self.stdio is not None and not self.stdio.eof:
                self._on_stdin()  # a port the runtime cannot poll
        else:
            self.stdio.wait(wait)
            self._on_stdin()
        self.step(self.now())

    def _on_stdin(self, obj=None, flags=0):
        data = self.stdio.read()
        if data:
            self.feed(data)  # KeyboardInterrupt on Ctrl-C
        if self.stdio.eof and self._stdin_key is not None:
            self.rt.remove_reader(self.stdio.stream, self._stdin_key)
            self._stdin_key = None
        if self.pending:
            self.do_pending()

    def step(self, now):
        """Everything but waiting: watchdog, uplinks, runtime events, app, bookkeeping."""
        if self.wdt is not None:
            self.wdt.feed()
        if self.rebuild is not None and not self.polling:
            self.once("applycfg", "renew")
        ms = self.managers
        for name in ms:  # (handle() never adds or removes a manager)
            self.handle(name, ms[name].poll(now), now)
        if self.excl is not None:
            self.excl.step(now)
        # (the runtime's events and the heap's watch are written out here, not in methods of
        # their own: the board keeps every method of this class in its heap, ~105 B each)
        if self.rt is not None:
            try:  # the runtime's events: to the console and the app
                for ev in self.rt.events():
                    d = ev.as_dict()
                    if d["event"] == "uplink_dead":  # its socket died: let the manager reconnect
                        m = ms.get(d.get("uplink"))
                        if m is not None and m.state == "up":
                            m.fail("socket died: %s" % d.get("error"), now)
                    self.emit(d)
                    if self.app is not None:
                        self.app.call("on_event", d)
            except MemoryError:  # what was being reported is lost, counted, never the board
                self.rt.count("no_memory")
            if now >= self.ex_at:
                # Once a second: reboot once the heap has run out in every second for
                # EXHAUSTED_MS (the runtime's no_memory, rx_no_memory and rx_rest, the app's
                # MemoryErrors). Seen below the smallest heap: after console ops had run out of
                # memory no block for a datagram was ever free again and every path went down
                # for good, or every tick of the app ran out of memory; a board that works
                # counts none of these for minutes.
                try:
                    self.ex_at = now + 1000
                    c = self.rt.counters
                    n = c.get("no_memory", 0) + c.get("rx_no_memory", 0) + c.get("rx_rest", 0)
                    if self.app is not None:
                        n += self.app.no_memory
                    if n == self.ex_n:
                        self.ex_since = now
                    elif now - self.ex_since >= EXHAUSTED_MS:
                        self.pending = "the heap ran out in every second for 30 s"
                    self.ex_n = n
                except MemoryError:  # (its next look, a second later)
                    pass
        if self.app is not None:
            self.app.tick(now)
        if not self.stable and self.mode == "normal" and now - self.t0 >= self.stable_try:
            try:
                self.once("consoleops", "stable")
                self.stable = True
            except MemoryError:
                # bookkeeping, not a crash: a crash reboots, and three boots in a row that never
                # record this one end in maintenance; no heap for its code now, so try again soon
                self.stable_try = now - self.t0 + STABLE_RETRY_MS
        if self.pending:
            self.do_pending()

    def handle(self, name, report, now):
        """What an uplink manager's poll reported: up, down or failed."""
        if report is None:
            return
        what, x = report
        if what == "up":
            self._uplink_up(name, x, now)
        elif what == "down":
            if self.rt is not None and name in self.rt.uplinks:
                self.rt.remove_uplink(name)
            self.emit({"event": "uplink_down", "uplink": name, "reason": x})
        else:
            self.emit({"event": "uplink_failed", "uplink": name, "error": x})

    def _uplink_up(self, name, addr, now):
        if self.rt is None:
            return
        prio, cost = self.prio_cost(name, self.running)
        m = self.managers[name]
        via = public = None
        try:
            if getattr(m, "via", None):
                from runtime.hostport import parse_hostport

                via, public = parse_hostport(m.via), parse_hostport(m.public)
            self.rt.add_uplink(name, (addr, self.ep.cfg["port"]), prio, cost, None, via, public)
        except (OSError, ValueError, MemoryError) as e:  # (MemoryError: its code loads for the call)
            self.handle(name, self.managers[name].fail("no socket on %s: %s" % (addr, str(e) or "out of memory"),
                                                       now), now)
            return
        self.emit({"event": "uplink_up", "uplink": name, "addr": addr})
        if self.connect_pending:
            self.connect_peers(self.ep.cfg)

    def on_data(self, peer, payload, ip, uplink, src):
        """The runtime hands each DATA here (Runtime.on_data; payload: a memoryview valid
        during the call): to the app's on_data as bytes, copied only for an app that
        takes data."""
        app = self.app
        if app is not None and app.takes_data:
            app.call("on_data", peer, bytes(payload))

    def do_pending(self):
        why = self.pending
        self.pending = None
        self.log("rebooting: " + why)
        sleep_ms(100)  # let the reply leave the UART
        self.hw.reset()

    # ---- the console's ops --------------------------------------------------------------

    def feed(self, data):
        """Console input (bytes): each request line is carried out, its reply written.
        KeyboardInterrupt on Ctrl-C."""
        try:
            self.console.feed(data)
        finally:
            forget()  # what an op left loaded (status: runtime/status.py)

    # The console's ops are in getop.py, settings.py, cfgops.py, consoleops.py, applycfg.py,
    # statusop.py and uplinkops.py: the console
    # has once() import the op's module for the request and forget it after
    # (console.Console.handle, request.call), so that their code takes no heap the rest of the time.


def run(board=None):
    """The firmware's entry point (the device's /main.py calls it)."""
    b = board
    try:
        if b is None:
            b = Board()
        b.boot()
        b.serve()
    except KeyboardInterrupt:
        if b is not None:
            b.log("interrupted (Ctrl-C): the REPL has the port; reboot or soft-reset to restart")
            if b.rt is not None:
                b.rt.shutdown()
    except Exception as e:  # a crash: log it and reboot; CRASH_LIMIT in a row -> maintenance
        try:
            try:
                # the traceback's text (here, not in a function of its own: the heap keeps
                # every function of this module for the board's life, and this runs once)
                try:
                    import io

                    buf = io.StringIO()
                    if MICROPYTHON:
                        sys.print_exception(e, buf)
                    else:
                        import traceback

                        traceback.print_exception(type(e), e, e.__traceback__, file=buf)
                    tb = buf.getvalue()
                except Exception:
                    tb = repr(e)
                line = dumps({"log": "crash", "error": "%s: %s" % (type(e).__name__, e),
                              "traceback": tb})
            except MemoryError:  # no heap left to describe it: a line that needs none
                line = CRASH_NO_MEMORY
            if b is not None:
                b.write(line)
                try:  # kept for the console's `logs` after the reboot
                    b.files.write(CRASH_FILE, line[:2048].encode())
                except Exception:
                    pass
            else:
                print(line)
        except Exception:  # not even that: the reset matters more (else the firmware would
            pass  # leave for the REPL, and a board without a watchdog would stay there)
        sleep_ms(1000)
        (b.hw if b is not None else Hardware()).reset()
