# The board's hardware modules (machine, network), found at run time so that one
# firmware runs on every port, and handed in by tests as fakes (tests/fakes).
#
# Ports differ: the unix port has a `machine` module without WDT or reset, and no
# `network`. Without machine.reset(), reset() raises SystemExit(REBOOT_EXIT):
# `mast sim-board` restarts micropython when it exits, as a board reboots.

REBOOT_EXIT = 75  # the exit status that means "reboot me" on the unix port

_CAUSES = ("PWRON_RESET", "HARD_RESET", "WDT_RESET", "DEEPSLEEP_RESET", "SOFT_RESET")


class Hardware:
    def __init__(self, machine=None, network=None):
        if machine is None:
            try:
                import machine  # noqa: F811
            except ImportError:
                machine = None
        if network is None:
            try:
                import network  # noqa: F811
            except ImportError:
                network = None
        self.machine = machine
        self.network = network

    def wdt(self, timeout_ms):
        """A started watchdog (it cannot be stopped on ESP32 and RP2040), or None
        where the port has none."""
        m = self.machine
        if m is None or not hasattr(m, "WDT"):
            return None
        return m.WDT(timeout=timeout_ms)

    def reset(self):
        m = self.machine
        if m is not None and hasattr(m, "reset"):
            m.reset()
        raise SystemExit(REBOOT_EXIT)

    def reset_cause(self):
        m = self.machine
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

    def unique_id(self):
        m = self.machine
        try:
            raw = m.unique_id()
        except (AttributeError, OSError):
            return None
        return "".join(["%02x" % b for b in raw])
