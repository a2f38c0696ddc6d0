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
                    cmd = f.read(400).replace(b"\0", b" ").decode("utf-8", "replace").strip()
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
    if "Could not configure port" in text or code in (errno.ENOTTY, errno.EINVAL):
        return CommandError("%s is not a serial port" % port,
                            "give the board's port (`mast ports` lists them)")
    if code == errno.EIO:
        return CommandError("%s stopped answering (I/O error)" % port,
                            "the board was unplugged or reset; plug it in and try again")
    return CommandError("cannot open %s: %s" % (port, text), "check the port and try again")


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
