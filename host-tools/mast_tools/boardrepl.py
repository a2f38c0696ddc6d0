"""A board's raw REPL through mpremote's own transport, for `mast flash`.

A thin adapter: it opens the port (serialport's clear errors), enters the raw REPL the way the
board definition says (`soft_reset`: Ctrl-D soft-resets, as on ESP32 and RP2040; without it,
mpremote's `resume`: Ctrl-C and Ctrl-A only, as the unix port needs), retries "could not enter
raw repl" with a settle delay, and runs the device code that flashplan.py writes. Every wait is
bounded: a board that stops answering becomes a DeviceError, never a hang.
"""

import contextlib
import io
import struct
import time

from mast_tools import flashplan
from mast_tools.errors import CommandError

READ_TIMEOUT_S = 2.0  # one read from the port; mpremote's own default blocks for ever
EXEC_TIMEOUT_S = 15.0  # silence allowed while a script runs (our scripts print as they go)
WRITE_TIMEOUT_S = 3.0  # one write of at most flashplan.CHUNK bytes


class DeviceError(Exception):
    """The board raised, or stopped answering. str(e) says which."""


def _transport_errors():
    import serial
    from mpremote.transport import TransportError

    return (TransportError, serial.SerialException, OSError, struct.error, ValueError)


_CLASS = []


def _transport_class():
    """mpremote's SerialTransport, with its waits for the board's next byte capped at
    .quiet_s (mpremote waits 10 s in places, and for ever where a read has no timeout)."""
    if not _CLASS:
        from mpremote.transport_serial import SerialTransport

        class Transport(SerialTransport):
            quiet_s = EXEC_TIMEOUT_S

            def read_until(self, min_num_bytes, ending, timeout=10, data_consumer=None,
                           timeout_overall=None):
                if timeout is not None:
                    timeout = min(timeout, self.quiet_s)
                return SerialTransport.read_until(self, min_num_bytes, ending, timeout,
                                                  data_consumer, timeout_overall)

        _CLASS.append(Transport)
    return _CLASS[0]


class RawBoard:
    def __init__(self, port, soft_reset, attempts=4, settle_s=0.5, log=None, baudrate=None):
        from mast_tools.serialport import BAUDRATE

        self.port = port
        self.baudrate = baudrate or BAUDRATE
        self.soft_reset = soft_reset
        self.attempts = attempts
        self.settle_s = settle_s
        self.log = log or (lambda msg: None)
        self.tr = None

    # ---- the connection ------------------------------------------------------------------------

    def open(self):
        from mpremote.transport import TransportError
        from mast_tools.serialport import open_serial

        for attempt in range(2):
            try:
                with contextlib.redirect_stdout(io.StringIO()):
                    self.tr = _transport_class()(self.port, baudrate=self.baudrate)
                break
            except TransportError:
                # mpremote says only "failed to access"; find out why (raises CommandError)
                open_serial(self.port, self.baudrate).close()
                if attempt:
                    raise CommandError("cannot open %s for mpremote" % self.port,
                                       "close other programs using it and try again")
                time.sleep(self.settle_s)
        self.tr.serial.timeout = READ_TIMEOUT_S
        return self

    def enter(self):
        """Into the raw REPL, interrupting whatever runs. A board whose definition says it
        soft-resets gets mpremote's soft reset first (a clean heap); after that, and on boards
        that do not soft-reset, mpremote's `resume` (Ctrl-C, Ctrl-A), retried with a growing
        settle delay."""
        from mpremote.transport import TransportError

        tries = ([True] if self.soft_reset else []) + [False] * self.attempts
        last = ""
        for i, soft in enumerate(tries):
            out = io.StringIO()
            try:
                with contextlib.redirect_stdout(out):
                    self.tr.enter_raw_repl(soft_reset=soft, timeout_overall=5 if soft else 10)
                if self.soft_reset and not soft:
                    self.log("the board did not soft-reset (its definition says soft_reset: true); "
                             "went on without")
                return
            except TransportError as e:
                last = "%s %s" % (e, out.getvalue().strip()[-120:])
            except _transport_errors() as e:
                last = str(e)
            delay = self.settle_s * (i + 1)
            self.log("could not enter the raw REPL (try %d of %d); again in %.1f s"
                     % (i + 1, len(tries), delay))
            time.sleep(delay)
            try:
                self.tr.serial.reset_input_buffer()
            except _transport_errors():
                pass
        raise CommandError("could not enter the raw REPL on %s (%s)" % (self.port, last.strip()),
                           "press the board's reset button (or unplug it and plug it in) and "
                           "run the command again; a board that does not run MicroPython yet "
                           "needs it first (docs/HARDWARE.md, \"Getting MicroPython onto a "
                           "board\": esptool, the Pico's UF2, or mpflash)")

    def close(self):
        if self.tr is None:
            return
        try:
            if self.tr.in_raw_repl:
                self.tr.exit_raw_repl()
        except _transport_errors():
            pass
        try:
            self.tr.serial.close()
        except _transport_errors():
            pass
        self.tr = None

    # ---- running device code -----------------------------------------------------------------

    def run(self, script, timeout=EXEC_TIMEOUT_S):
        """Run script in the raw REPL; its stdout (bytes). DeviceError if it raised (the last
        line of its traceback) or the board stopped answering."""
        from mpremote.transport import TransportError

        self.tr.quiet_s = timeout
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                out, err = self.tr.exec_raw(script, timeout=timeout)
        except TransportError as e:
            raise DeviceError("the board stopped answering (%s)" % e)
        except _transport_errors() as e:
            raise DeviceError("the port failed (%s)" % e)
        if err:
            lines = err.decode("utf-8", "replace").strip().splitlines()
            raise DeviceError(lines[-1] if lines else "error")
        return out

    def info(self):
        return flashplan.parse_info(self.run(flashplan.info_script()))

    def hashes(self, dirs=(), files=()):
        """({path: sha256}, folders) of what the board holds; files the board cannot hash
        (no hashlib) are read back and hashed here."""
        got, folders = flashplan.parse_hashes(self.run(flashplan.hash_script(dirs, files), 60))
        for path in [p for p, h in got.items() if h is None]:
            try:
                with contextlib.redirect_stdout(io.StringIO()):
                    data = self.tr.fs_readfile(path)
            except _transport_errors() as e:
                raise DeviceError("reading %s back failed (%s)" % (path, e))
            got[path] = flashplan.sha256(bytes(data))
        return got, folders

    def write(self, files, progress=None):
        """Write [(board path, bytes)]; progress(bytes sent so far, total, path) per command."""
        total = sum(len(d) for _, d in files)
        sent = 0
        for cmd, n, done in flashplan.write_commands(files):
            self.run(cmd, WRITE_TIMEOUT_S)
            sent += n
            if progress is not None:
                progress(sent, total, done[-1] if done else None)

    def reset(self):
        """Hard reset (machine.reset(); on the unix port, the exit the simulated board turns
        into a reboot). The port is closed after."""
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                self.tr.exec_raw_no_follow(
                    "import time, machine\ntime.sleep_ms(50)\ntry:\n    machine.reset()\n"
                    "except AttributeError:\n    import sys\n    sys.exit(75)\n")
            time.sleep(0.1)
        except _transport_errors():
            pass  # it may be gone already: that is the point
        try:
            self.tr.serial.close()
        except _transport_errors():
            pass
        self.tr = None


INSTALLED_SCRIPT = flashplan._PRELUDE + """\
try:
    with open('main.py') as _f:
        _m = 'from board import main' in _f.read(400)
except OSError:
    _m = False
_b = _ex('lib/board')
if _m and not _b:
    try:
        __import__('board.main')  # frozen into the MicroPython build
        _b = True
    except ImportError:
        pass
print('MAST-FW', bool(_m and _b))
"""


def firmware_installed(port, baudrate=None):
    """Whether the MAST firmware's files are on the board (its /main.py, and /lib/board; a
    board with the firmware frozen in has only the main.py), asked
    through the raw REPL of a board that is at its REPL; the board is left at its friendly
    REPL, as it was. None when that cannot be told (the raw REPL did not answer)."""
    rb = RawBoard(port, soft_reset=False, attempts=1, settle_s=0.2, baudrate=baudrate)
    try:
        rb.open()
        rb.enter()
        out = rb.run(INSTALLED_SCRIPT, 5.0).decode("utf-8", "replace")
    except (CommandError, DeviceError):
        return None
    finally:
        rb.close()
    if "MAST-FW True" in out:
        return True
    if "MAST-FW False" in out:
        return False
    return None
