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
# up_wlan.py, up_lan.py and up_ppp.py, imported only by boards that have them (with what
# they share: up_wlan.need_network); what the console's ops do to a manager is in
# uplinkops.py, imported only for them.

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
    # No defaults here: a board keeps this class loaded, and a method costs its heap whether
    # or not it ever runs. Every kind defines the first three; the last two where it has
    # something to do or say (a sim uplink has neither):
    #   start(now)    begin a connect attempt (never blocks for long); UplinkError if it cannot
    #   check(now)    while connecting: the address once up, else None; UplinkError on failure
    #   current(now)  while up: the address now (it may change), or None if the link is lost
    #   stop(hard)    hang up; hard: the uplink is being held down, power it off too
    #   detail()      kind-specific status fields (statusop.uplink_status)

    # ---- the shared state machine --------------------------------------------------
    # (enabled: self.admin and not self.standby, written out where it is asked: no method)

    def poll(self, now):
        """One step. Returns None, ("up", addr) (also for a new address),
        ("down", why) when an up uplink went down, or ("fail", why) when a connect
        attempt failed."""
        if not (self.admin and not self.standby):
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
            return self.fail(str(e) if isinstance(e, UplinkError) else "%s: %s" % (type(e).__name__, e), now)
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

    def _stop(self, hard):
        try:
            stop = getattr(self, "stop", None)
            if stop is not None:
                stop(hard)
        except Exception:  # a driver that fails to hang up must not stop the board
            pass

    def wait_ms(self, now):
        """How soon poll() wants to run again."""
        if not (self.admin and not self.standby) or self.state == "unconfigured":
            return 1000
        if self.state == "down":
            return max(0, min(1000, self.next_try - now))
        return 100 if self.state == "connecting" else 500


class Sim(Manager):
    """A local address on the unix port: up at once, renumbered from the console."""

    kind = "sim"

    def __init__(self, name, spec, opts, hw):
        Manager.__init__(self, name, spec, opts, hw)
        self.address = opts.get("address") or spec.get("address")
        self.via = spec.get("via")  # a relay ("ip:port"), or None
        self.public = spec.get("public")  # the relay's outside address: what the peer sees

    def start(self, now):
        if not self.address:
            raise NeedsConfig("no address: set uplinks.%s.address" % self.name)

    def check(self, now):
        return self.address

    def current(self, now):
        return self.address
