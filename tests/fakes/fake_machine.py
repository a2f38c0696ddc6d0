# A fake of MicroPython's `machine` module, for tests of the board firmware: it
# records every call (in .calls, and in a shared trace list if given) and never
# touches hardware. Restricted Python: runs on CPython and MicroPython.
#
#   m = FakeMachine()                       # hand it to board.hw.Hardware(machine=m)
#   m.modem = FakeModem(...)                # what a UART created on m talks to
#   m.WDT(timeout=30000); m.wdts[0].feeds   # watchdogs made, and how often fed
#   m.reset()                               # raises FakeReset (a reset never returns)
#   m.pin_log                               # [(pin, value), ...] in order
#
# The watchdog bites: with a FakeClock (clock = FakeClock(); FakeMachine(clock=clock)),
# a started WDT that is not fed within its timeout resets the machine when the clock
# passes that moment: clock.advance() raises FakeReset there, m.wdt_resets counts it
# and reset_cause() says WDT_RESET afterwards, as on a board. Without a clock a WDT
# only counts its feeds.


class FakeReset(BaseException):
    """machine.reset() was called. BaseException, as SystemExit: the firmware's
    `except Exception` handlers must not swallow a reset."""


class FakeClock:
    """Milliseconds, moved by the test. The watchdogs of the machines made with this clock
    are checked each time it moves: as hardware, they do not wait for the software."""

    def __init__(self, t=0):
        self.t = t
        self.machines = []

    def __call__(self):
        return self.t

    def advance(self, ms):
        """Move time on by ms, one millisecond at a time as far as the watchdogs are
        concerned: FakeReset at the moment one of them expires (the clock stops there)."""
        end = self.t + ms
        while self.t < end:
            due = end
            for m in self.machines:
                d = m.watchdog_deadline()
                if d is not None and d < due:
                    due = d
            self.t = due
            for m in self.machines:
                m.check_watchdog()


class FakeWDT:
    def __init__(self, machine, timeout):
        self.machine = machine
        self.timeout = timeout
        self.feeds = 0
        self.fed_at = machine.now()
        self.running = True  # until the machine resets

    def feed(self):
        self.feeds += 1
        self.fed_at = self.machine.now()

    def deadline(self):
        """The moment it resets the machine unless fed before: timeout ms unfed."""
        return self.fed_at + self.timeout + 1


class FakeMachine:
    PWRON_RESET = 1
    HARD_RESET = 2
    WDT_RESET = 3
    DEEPSLEEP_RESET = 4
    SOFT_RESET = 5

    def __init__(self, cause=1, uid=b"\x24\x0a\xc4\x12\x34\x56", trace=None, clock=None):
        self.clock = clock
        if clock is not None and hasattr(clock, "machines"):
            clock.machines.append(self)
        self.wdt_resets = 0
        self.calls = []
        self.trace = trace if trace is not None else []
        self.wdts = []
        self.cause = cause
        self.uid = uid
        self.resets = 0
        self.pin_log = []
        self.pin_watch = {}  # pin -> callback(value), e.g. a modem's PWRKEY
        self.uarts = []
        self.modem = None
        self.Pin = _pin_class(self)

    def _call(self, *what):
        self.calls.append(what)
        self.trace.append(what)

    def WDT(self, timeout=5000, id=0):
        self._call("WDT", timeout)
        w = FakeWDT(self, timeout)
        self.wdts.append(w)
        return w

    def reset(self):
        self._call("reset")
        self.resets += 1
        self._stop_watchdogs()
        raise FakeReset()

    def _stop_watchdogs(self):
        for w in self.wdts:  # a reset stops the watchdog (the next boot starts its own)
            w.running = False

    def now(self):
        return self.clock() if self.clock is not None else 0

    def watchdog_deadline(self):
        running = [w.deadline() for w in self.wdts if w.running]
        if self.clock is None or not running:
            return None
        return min(running)

    def check_watchdog(self):
        """A watchdog unfed past its timeout resets the machine (FakeReset), as hardware
        does: whatever the software was doing stops there."""
        d = self.watchdog_deadline()
        if d is not None and self.now() >= d:
            self._call("wdt_reset")
            self.wdt_resets += 1
            self.cause = self.WDT_RESET
            self.resets += 1
            self._stop_watchdogs()
            raise FakeReset()

    def reset_cause(self):
        return self.cause

    def unique_id(self):
        return self.uid

    def UART(self, id, baudrate=9600, tx=None, rx=None, **kw):
        self._call("UART", id, baudrate, tx, rx)
        u = FakeUART(self, id, baudrate, tx, rx)
        self.uarts.append(u)
        return u


def _pin_class(machine):
    class Pin:
        IN = 1
        OUT = 3

        def __init__(self, n, mode=None, value=None):
            self.n = n
            self.mode = mode
            self.v = 0
            machine._call("Pin", n, mode)
            if value is not None:
                self.value(value)

        def value(self, v=None):
            if v is None:
                return self.v
            self.v = v
            machine.pin_log.append((self.n, v))
            cb = machine.pin_watch.get(self.n)
            if cb is not None:
                cb(v)

        def __repr__(self):
            return "Pin(%d)" % self.n

    return Pin


class FakeUART:
    """A UART whose other end is machine.modem (a FakeModem), or nothing (silence)."""

    def __init__(self, machine, id, baudrate, tx, rx):
        self.machine = machine
        self.id = id
        self.baudrate = baudrate
        self.tx = tx
        self.rx = rx
        self.written = []

    def _modem(self):
        return self.machine.modem

    def any(self):
        m = self._modem()
        return len(m.out) if m is not None else 0

    def read(self, n=None):
        m = self._modem()
        if m is None or not m.out:
            return None
        n = len(m.out) if n is None else min(n, len(m.out))
        data = bytes(m.out[:n])
        m.out = m.out[n:]
        return data

    def write(self, data):
        self.written.append(bytes(data))
        m = self._modem()
        if m is not None:
            m.receive(bytes(data))
        return len(data)


class FakeModem:
    """A scripted AT modem (SIMCom-like). It answers only while switched on; a
    PWRKEY pulse (active, then released) toggles it, as on the real ones.

    pin: the SIM's PIN (None: no PIN); csq / reg: successive answers to AT+CSQ and
    AT+CEREG? (the last one repeats); dial: the answer to ATD."""

    def __init__(self, on=False, pin=None, csq=(18,), reg=(1,), dial="CONNECT 115200",
                 sim="READY"):
        self.on = on
        self.pin = pin
        self.unlocked = pin is None
        self.csq = list(csq)
        self.reg = list(reg)
        self.dial = dial
        self.sim = sim
        self.echo = True
        self.data_mode = False
        self.commands = []
        self.apn = None
        self.out = bytearray()
        self.inbuf = b""
        self.key_down = False

    def attach(self, machine, pwrkey=None, active=1):
        machine.modem = self
        if pwrkey is not None:
            machine.pin_watch[pwrkey] = lambda v: self._key(v == active)

    def _key(self, down):
        if self.key_down and not down:  # released after a press: toggle power
            self.on = not self.on
            self.echo = True
            self.data_mode = False
        self.key_down = down

    def _say(self, *lines):
        for line in lines:
            self.out += ("\r\n" + line + "\r\n").encode()

    def _next(self, seq):
        return seq.pop(0) if len(seq) > 1 else seq[0]

    def hang_up(self):
        """The PPP link ended: back to command mode, as after LCP terminate."""
        self.data_mode = False

    def receive(self, data):
        if self.data_mode or not self.on:
            return
        self.inbuf += data
        while b"\r" in self.inbuf:
            line, self.inbuf = self.inbuf.split(b"\r", 1)
            cmd = line.decode().strip()
            if cmd:
                self._command(cmd)

    def _command(self, cmd):
        self.commands.append(cmd)
        if self.echo:
            self.out += (cmd + "\r").encode()
        if cmd == "AT":
            self._say("OK")
        elif cmd == "ATE0":
            self.echo = False
            self._say("OK")
        elif cmd == "AT+CPIN?":
            if self.sim != "READY":
                self._say("+CME ERROR: " + self.sim)
            else:
                self._say("+CPIN: " + ("READY" if self.unlocked else "SIM PIN"), "OK")
        elif cmd.startswith("AT+CPIN="):
            if cmd[8:].strip('"') == self.pin:
                self.unlocked = True
                self._say("OK")
            else:
                self._say("+CME ERROR: incorrect password")
        elif cmd == "AT+CSQ":
            self._say("+CSQ: %d,99" % self._next(self.csq), "OK")
        elif cmd == "AT+CEREG?":
            self._say("+CEREG: 0,%d" % self._next(self.reg), "OK")
        elif cmd.startswith("AT+CGDCONT="):
            self.apn = cmd.split(",")[2].strip('"')
            self._say("OK")
        elif cmd.startswith("ATD"):
            self._say(self.dial)
            if self.dial.startswith("CONNECT"):
                self.data_mode = True
        else:
            self._say("ERROR")
