# The board's hardware modules (machine, network), found at run time so that one
# firmware runs on every port, and handed in by tests as fakes (tests/fakes).
#
# Ports differ: the unix port has a `machine` module without WDT or reset, and no
# `network`. Without machine.reset(), reset() raises SystemExit(REBOOT_EXIT):
# `mast sim-board` restarts micropython when it exits, as a board reboots.
#
# What runs once or now and then is not here (the board keeps this module loaded): the
# watchdog and the unique id are startup.py's (wdt, unique_id), the reset cause statusop.py's.

REBOOT_EXIT = 75  # the exit status that means "reboot me" on the unix port


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

    def reset(self):
        m = self.machine
        if m is not None and hasattr(m, "reset"):
            m.reset()
        raise SystemExit(REBOOT_EXIT)
