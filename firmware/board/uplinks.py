# Uplink managers: each brings one of the board's network attachments up, watches
# it, and says when it comes up (with its address), changes address, or goes down.
# The board hands those reports to the runtime (a socket bound to the address, and
# uplink_up/uplink_down in the core). Nothing here blocks for long: poll() is
# called from the main loop and does one small step.
#
# States: off (held down: `uplink NAME down`, or standby under exclusive routing),
# down (waiting to retry, with exponential backoff), connecting, up, unconfigured
# (a setting is missing, e.g. no SSID: no retries until the config changes).
#
# This file has the shared state machine and the `sim` kind (the unix port's
# local addresses, renumbered from the console). The hardware kinds are in
# up_wlan.py, up_lan.py and up_ppp.py, imported only by boards that have them.

from mast.compat import const

BACKOFF_MIN_MS = const(1000)
BACKOFF_MAX_MS = const(60000)


class UplinkError(Exception):
    """A connect attempt failed, or a link was lost; str(e) says why."""


class NeedsConfig(UplinkError):
    """A setting is missing or wrong; retried only when the configuration changes."""


class Manager:
    kind = "?"
    connect_ms = 20000  # a connect attempt that takes longer has failed

    def __init__(self, name, spec, opts, hw):
        self.name = name
        self.spec = spec  # the board definition's entry for this uplink
        self.opts = opts  # its configuration (uplinks.NAME.*)
        self.hw = hw  # .network and .machine (the real modules, or fakes)
        self.state = "down"
        self.addr = None
        self.admin = True  # `uplink NAME up|down`
        self.standby = False  # held down by exclusive routing
        self.error = None
        self.backoff = BACKOFF_MIN_MS
        self.next_try = 0
        self.deadline = 0
        self.attempts = 0
        self.failures = 0
        self.ups = 0
        self.since = None

    # ---- what each kind provides -------------------------------------------------

    def start(self, now):
        """Begin a connect attempt (never blocks for long); UplinkError if it cannot."""

    def check(self, now):
        """While connecting: the address once up, else None. UplinkError on failure."""
        return None

    def current(self, now):
        """While up: the address now (it may change), or None if the link is lost."""
        return self.addr

    def stop(self, hard):
        """Hang up. hard: the uplink is being held down, power it off too."""

    def detail(self):
        """Kind-specific status fields."""
        return {}

    def need_network(self):
        """The port's network module; NeedsConfig (no retries) where there is none."""
        hw = self.hw
        if hw is None or hw.network is None or (self.kind != "wlan" and hw.machine is None):
            raise NeedsConfig("this port has no network driver: a %s uplink needs a board" % self.kind)
        return hw.network

    # ---- the shared state machine --------------------------------------------------

    def enabled(self):
        return self.admin and not self.standby

    def configure(self, opts, now):
        """New settings for this uplink; reconnects if they matter to it."""
        changed = opts != self.opts
        self.opts = opts
        if changed and self.state != "off":
            was_up = self.state == "up"
            self._stop(False)
            self.state = "down"
            self.addr = None
            self.next_try = now
            self.backoff = BACKOFF_MIN_MS
            if was_up:
                return ("down", "reconfigured")
        return None

    def set_admin(self, up, now):
        self.admin = up
        if up and self.state in ("down", "unconfigured"):
            self.next_try = now
            self.backoff = BACKOFF_MIN_MS

    def poll(self, now):
        """One step. Returns None, ("up", addr) (also for a new address),
        ("down", why) when an up uplink went down, or ("fail", why) when a connect
        attempt failed."""
        if not self.enabled():
            if self.state != "off":
                was_up = self.state == "up"
                self._stop(True)
                self.state = "off"
                self.addr = None
                if was_up:
                    return ("down", "standby" if self.admin else "held down")
            return None
        if self.state == "off":
            self.state = "down"
            self.next_try = now
            self.backoff = BACKOFF_MIN_MS
        try:
            if self.state == "down" and now >= self.next_try:
                self.attempts += 1
                self.state = "connecting"
                self.deadline = now + self.connect_ms
                self.start(now)
            if self.state == "connecting":
                addr = self.check(now)
                if addr:
                    self.state = "up"
                    self.addr = addr
                    self.error = None
                    self.backoff = BACKOFF_MIN_MS
                    self.ups += 1
                    self.since = now
                    return ("up", addr)
                if now >= self.deadline:
                    raise UplinkError("not connected after %d s" % (self.connect_ms // 1000))
            elif self.state == "up":
                addr = self.current(now)
                if addr is None:
                    raise UplinkError("link lost")
                if addr != self.addr:
                    self.addr = addr
                    return ("up", addr)
        except NeedsConfig as e:
            self._stop(False)
            self.state = "unconfigured"
            self.addr = None
            self.error = str(e)
            return ("fail", self.error)
        except (UplinkError, OSError, ValueError, TypeError, AttributeError) as e:
            # drivers raise OSError (and, on some ports, ValueError/TypeError for a
            # bad pin or a missing feature): the uplink failed, the board goes on
            return self.fail(_text(e), now)
        return None

    def fail(self, why, now):
        was_up = self.state == "up"
        self._stop(False)
        self.state = "down"
        self.addr = None
        self.error = why
        self.failures += 1
        self.next_try = now + self.backoff
        self.backoff = min(self.backoff * 2, BACKOFF_MAX_MS)
        return ("down" if was_up else "fail", why)

    def retry_now(self, now):
        if self.state == "down":
            self.next_try = now

    def _stop(self, hard):
        try:
            self.stop(hard)
        except Exception:  # a driver that fails to hang up must not stop the board
            pass

    def wait_ms(self, now):
        """How soon poll() wants to run again."""
        if not self.enabled() or self.state == "unconfigured":
            return 1000
        if self.state == "down":
            return max(0, min(1000, self.next_try - now))
        return 100 if self.state == "connecting" else 500

    def status(self, now):
        s = {"kind": self.kind, "state": self.state, "addr": self.addr, "admin": self.admin,
             "error": self.error, "attempts": self.attempts, "failures": self.failures,
             "ups": self.ups, "up_ms": (now - self.since) if self.state == "up" else None}
        if self.standby:
            s["standby"] = True
        if self.state == "down" and self.enabled():
            s["retry_in_ms"] = max(0, self.next_try - now)
        s.update(self.detail())
        return s


def _text(e):
    if isinstance(e, UplinkError):
        return str(e)
    return "%s: %s" % (type(e).__name__, e)


class Sim(Manager):
    """A local address on the unix port: up at once, renumbered from the console."""

    kind = "sim"

    def __init__(self, name, spec, opts, hw):
        Manager.__init__(self, name, spec, opts, hw)
        self.address = opts.get("address") or spec.get("address")
        self.via = spec.get("via")  # a relay ("ip:port"), or None
        self.public = spec.get("public")  # the relay's outside address: what the peer sees

    def configure(self, opts, now):
        a = opts.get("address") or self.spec.get("address")
        self.opts = opts
        if a != self.address:
            self.address = a
        return None  # a new address shows up at the next poll, as a renumbering

    def renumber(self, addr):
        """A new local address; through a relay, a new outside address ("ip:port")."""
        if self.via:
            self.public = addr
        else:
            self.address = addr

    def start(self, now):
        if not self.address:
            raise NeedsConfig("no address: set uplinks.%s.address" % self.name)

    def check(self, now):
        return self.address

    def current(self, now):
        return self.address


def make(name, spec, opts, hw):
    """The manager for a board definition's uplink entry (imports only what it needs)."""
    kind = spec["kind"]
    if kind == "sim":
        return Sim(name, spec, opts, hw)
    if kind == "wlan":
        from .up_wlan import Wlan

        return Wlan(name, spec, opts, hw)
    if kind == "lan":
        from .up_lan import Lan

        return Lan(name, spec, opts, hw)
    from .up_ppp import Ppp

    return Ppp(name, spec, opts, hw)
