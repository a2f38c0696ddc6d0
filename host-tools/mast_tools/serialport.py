"""Opening a board's serial port, with errors a person can act on.

Every `mast` command that talks to a board opens its port here: pyserial with
`exclusive=True` (an flock on the device, the lock mpremote takes too), so two programs never
interleave on one board. What goes wrong becomes a CommandError naming the port and the fix:

    missing      mast: no serial port /dev/ttyUSB9; check the cable and the name (`mast ports` lists them)
    busy         mast: /dev/ttyUSB0 is busy: pid 4242 (mpremote) holds it; close that program ...
    permission   mast: permission denied on /dev/ttyUSB0 (owned by group dialout); ... usermod -aG dialout
    not a tty    mast: /etc/passwd is not a serial port; give the board's port ...

port_error() is the pure part (an exception in, a CommandError out) and is tested on its own;
open_serial() is the one call that touches the device.
"""

import errno
import os

from mast_tools.errors import CommandError

BAUDRATE = 115200  # every MicroPython REPL we support (USB-CDC ignores it)
SILENT_S = 2.0  # a port that says nothing for this long after a Ctrl-C has nothing behind it
# The rates a UART is set to in practice; --baud takes these (pyserial takes others too, but a
# typo such as 11520 is far likelier than a board at a rate not listed here).
STANDARD_BAUDS = (1200, 2400, 4800, 9600, 19200, 38400, 57600, 74880, 115200, 230400, 460800,
                  500000, 576000, 921600, 1000000, 1500000, 2000000, 3000000)

_MISSING = (errno.ENOENT, errno.ENODEV, errno.ENXIO)
_BUSY = (errno.EBUSY, errno.EAGAIN, errno.EWOULDBLOCK)
_DENIED = (errno.EACCES, errno.EPERM)


def _group_of(port):
    """The name of the group that owns the device (dialout, uucp, tty), or None."""
    try:
        import grp

        return grp.getgrgid(os.stat(port).st_gid).gr_name
    except (ImportError, KeyError, OSError):
        return None


def holders(port, locks="/proc/locks", proc="/proc"):
    """[(pid, command line)] of the processes holding an flock on `port` (what pyserial's
    exclusive=True and mpremote take), from Linux's /proc/locks; [] elsewhere."""
    try:
        st = os.stat(port)
        with open(locks) as f:
            lines = f.read(1 << 20).splitlines()
        want = "%02x:%02x:%d" % (os.major(st.st_dev), os.minor(st.st_dev), st.st_ino)
    except (OSError, AttributeError):  # no such file, or not Linux
        return []
    found = []
    for line in lines:
        parts = line.split()
        if "->" in parts:  # a process waiting for the lock: not the holder
            continue
        if len(parts) >= 6 and parts[1] == "FLOCK" and parts[5] == want and parts[4].isdigit():
            pid = int(parts[4])
            try:
                with open(os.path.join(proc, str(pid), "cmdline"), "rb") as f:
                    cmd = " ".join(f.read(400).replace(b"\0", b" ").decode("utf-8", "replace").split())
            except OSError:
                cmd = "?"
            found.append((pid, cmd))
    return found


def port_error(port, exc, who=None):
    """The CommandError for a failure to open `port` (exc: pyserial's SerialException or an
    OSError). who: holders(port), if already known (for busy)."""
    code = getattr(exc, "errno", None)
    text = str(exc)
    if "exclusively lock" in text or (code in _BUSY and code is not None):
        if who is None:
            who = holders(port)
        held = ""
        if who:
            held = ": " + ", ".join("pid %d (%s)" % (p, c[:60]) for p, c in who[:3]) + " holds it"
        return CommandError(
            "%s is busy%s" % (port, held or ": another program holds it"),
            "close that program (another mast console, mpremote or a serial terminal?) and try again")
    if code in _MISSING:
        return CommandError("no serial port %s" % port,
                            "check the cable and the name (`mast ports` lists the ports; a "
                            "simulated board prints its own: `mast sim-board`)")
    if code in _DENIED:
        group = _group_of(port)
        if group and group not in ("root", "tty"):
            hint = ("add yourself to the %s group: sudo usermod -aG %s $USER, then log in again"
                    % (group, group))
        else:
            hint = ("ask for access to it: on most Linux systems serial ports belong to the "
                    "dialout group (sudo usermod -aG dialout $USER, then log in again)")
        return CommandError("permission denied on %s%s" % (port, " (owned by group %s)" % group
                                                          if group else ""), hint)
    if "Could not configure port" in text or code in (errno.ENOTTY, errno.EINVAL, errno.EISDIR):
        return CommandError("%s is not a serial port" % port,
                            "give the board's port (`mast ports` lists them)")
    if code == errno.EIO:
        return CommandError("%s stopped answering (I/O error)" % port,
                            "the board was unplugged or reset; plug it in and try again")
    return CommandError("cannot open %s: %s" % (port, text), "check the port and try again")


def baud(text):
    """argparse type of --baud: one of STANDARD_BAUDS."""
    import argparse

    try:
        value = int(text)
    except ValueError:
        value = None
    if value not in STANDARD_BAUDS:
        raise argparse.ArgumentTypeError(
            "%r is not a serial rate; use one of %s (MicroPython's REPL: 115200)"
            % (text, ", ".join(str(b) for b in STANDARD_BAUDS)))
    return value


def add_port_args(p, what="the board's serial port"):
    """--port (optional: the one board found, portpick.py) and --baud, as every board command
    takes them."""
    p.add_argument("--port", help="%s (/dev/ttyUSB0, COM3); default: the one board "
                                  "`mast ports` finds" % what)
    p.add_argument("--baud", type=baud, default=BAUDRATE, metavar="RATE",
                   help="the port's rate (default %(default)s; USB-CDC boards ignore it)")


def probe_alive(port, baudrate=BAUDRATE, wait_s=SILENT_S):
    """Whether anything answers on port: Ctrl-C twice (a MicroPython REPL answers with its
    prompt or a traceback) and Ctrl-B (a board left in its raw REPL answers with its banner),
    then up to wait_s for any byte. Only for a port where the MAST console did not answer:
    the Ctrl-C stops whatever runs."""
    import time

    ser = open_serial(port, baudrate)
    try:
        ser.reset_input_buffer()
        ser.write(b"\r\x03\x03\x02")
        ser.flush()
        end = time.monotonic() + wait_s
        while time.monotonic() < end:
            if ser.read(256):
                return True
        return False
    finally:
        ser.close()


def silent_error(port, baudrate=BAUDRATE):
    return CommandError("nothing answers on %s (at %d baud)" % (port, baudrate),
                        "wrong port or baud (--baud), or the board is busy or asleep: check `mast "
                        "ports`, press the board's reset button and try again")


def open_serial(port, baudrate=BAUDRATE, timeout=0.05):
    """An open, exclusively locked pyserial Serial on `port`; CommandError otherwise."""
    try:
        import serial
    except ImportError:
        raise CommandError("pyserial is not installed", "pip install pyserial")
    try:
        return serial.Serial(port, baudrate, timeout=timeout, exclusive=True)
    except (serial.SerialException, OSError, ValueError) as e:
        raise port_error(port, e)
