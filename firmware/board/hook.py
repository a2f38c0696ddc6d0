# The app hook: how a user application runs on the board next to MAST.
#
# The board imports the module `app` (the board's /app.py, or app.mpy) and calls
# its start(mast) once the runtime is up. start() returns an object (or None)
# whose methods, all optional, the board calls from its main loop:
#
#   tick(now_ms)               -> ms until it wants to be called again, or None
#   on_data(peer, payload)     a datagram from a peer (bytes; copied for the app only
#                              when it has this method)
#   on_event(event)            a MAST event as a dict: {"event": "failover", ...}
#   status()                   -> a dict shown under "app" in the console's status
#
# `mast` (the Mast class below) is all an app needs: send(payload, peer=None),
# up(peer=None), peers(), now(), log(text), status(). An exception in the app is
# logged and counted; it never stops the board (after one in tick, tick is called again
# TICK_RETRY_MS later). Example: board/telemetry.py.

from mast.assoc import ESTABLISHED

TICK_RETRY_MS = 1000  # an app whose tick raised is ticked again this much later


class Mast:
    def __init__(self, board):
        self._board = board
        self.name = board.ep.name if board.ep else None
        self.board = board.bd["name"]
        self.now = board.now  # now(): the board's clock, in ms (its own function: no method here)

    def send(self, payload, peer=None):
        """Send one datagram to peer (default: the first association). True if MAST
        took it; False while there is no association or no usable path."""
        rt = self._board.rt
        return rt is not None and rt.send(payload, peer)

    def up(self, peer=None):
        """Is the association (with peer, or any) established?"""
        ep = self._board.ep
        a = ep.association(peer) if ep else None
        return a is not None and a.state == ESTABLISHED

    def peers(self):
        ep = self._board.ep
        return sorted(ep.cfg["peers"]) if ep else []

    def log(self, text):
        self._board.emit({"log": str(text), "app": True})

    def status(self):
        return self._board.once("statusop", "status")


class AppRunner:
    """Calls the app's methods, catching what they raise."""

    def __init__(self, board, module):
        self.board = board
        self.module = module
        self.app = None
        self.error = None
        self.errors = 0
        self.no_memory = 0  # of them MemoryErrors (the board's step counts them)
        self.due = None
        self.takes_data = False  # the app has on_data (the board copies a payload only then)

    def start(self):
        b = self.board
        if not (b.files.exists(self.module + ".py") or b.files.exists(self.module + ".mpy")):
            self.error = "no %s.py on the board: no application" % self.module
            return
        try:
            mod = __import__(self.module)
            self.app = mod.start(Mast(b))
            self.due = b.now()
            self.takes_data = getattr(self.app, "on_data", None) is not None
        except Exception as e:
            self._fail("start", e)
            self.app = None

    def _fail(self, what, e):
        self.errors += 1
        if isinstance(e, MemoryError):
            self.no_memory += 1
        try:
            self.error = "%s: %s: %s" % (what, type(e).__name__, e)
            if self.errors <= 5:
                self.board.emit({"log": "app error in " + self.error})
        except MemoryError:  # no heap even to say it: counted, and the board goes on
            pass

    def call(self, name, *args):
        f = getattr(self.app, name, None) if self.app is not None else None
        if f is None:
            return None
        try:
            return f(*args)
        except Exception as e:
            self._fail(name, e)
            return None

    def tick(self, now):
        if self.app is None or self.due is None or now < self.due:
            return
        f = getattr(self.app, "tick", None)
        try:
            w = None if f is None else f(now)
            self.due = None if w is None else now + max(0, int(w))
        except Exception as e:  # counted, and ticked again later: an app whose tick met a full
            self._fail("tick", e)  # heap once would otherwise never tick again (a stream ends)
            self.due = now + TICK_RETRY_MS

    def status(self):
        s = {"module": self.module, "running": self.app is not None, "errors": self.errors,
             "last_error": self.error}
        st = self.call("status")
        if st is not None:
            s["app"] = st
        return s
