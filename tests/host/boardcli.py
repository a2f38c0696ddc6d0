"""Helpers for the tests of the board commands (test_flash*, test_config_cli*, test_console_cli*,
...): the `mast` command in a child process, simulated boards with and without the firmware,
and a process that holds a port as another program would.

The simulated boards these tests start register in a folder of this test run only
(MAST_SIM_REGISTRY), so `mast ports` and the commands that look for a board without --port
see this run's boards, never another test run's on the same machine.
"""

import atexit
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
HOST_TOOLS = os.path.join(ROOT, "host-tools")
if HOST_TOOLS not in sys.path:
    sys.path.insert(0, HOST_TOOLS)

from mast_tools import simboard  # noqa: E402
from mast_tools.netutil import free_udp_port as _free_udp_port  # noqa: E402

if not os.environ.get("MAST_SIM_REGISTRY"):
    REGISTRY = tempfile.mkdtemp(prefix="mast-test-boards-")
    os.environ["MAST_SIM_REGISTRY"] = REGISTRY  # inherited by every child: sim boards, mast
    atexit.register(shutil.rmtree, REGISTRY, True)

PSK = "q83vEjRWeJq83vEjRWeJq83vEjRWeJq83vEjRWeJq8M="
SIM_ADDRS = ("127.0.0.2", "127.0.0.3", "127.0.0.4")


def tree(folder):
    """{path: bytes} of every file under folder (a board's filesystem)."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(folder):
        for name in filenames:
            p = os.path.join(dirpath, name)
            with open(p, "rb") as f:
                out[os.path.relpath(p, folder).replace(os.sep, "/")] = f.read()
    return out


def romfs_of_lib(folder, image):
    """Move the board's /lib into a ROMFS image built by mpremote (`romfs build`, as
    docs/HARDWARE.md's `romfs deploy` builds one); the image's size."""
    src = folder + ".romfs-src"
    os.makedirs(src)
    shutil.move(os.path.join(folder, "lib"), os.path.join(src, "lib"))
    subprocess.run([sys.executable, "-m", "mpremote", "romfs", "-o", image, "build", src],
                   check=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
    return os.path.getsize(image)


def env_for_mast(extra=None):
    env = dict(os.environ)
    env["PYTHONPATH"] = HOST_TOOLS + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra or {})
    return env


def mast(*args, timeout=120, input=None, prefix=(), cwd=None, env=None):
    """Run `mast ARGS` (prefix: e.g. setpriv ... to run it as another user; env: variables to
    add). The result has .doc: stdout parsed as JSON, or None."""
    r = subprocess.run(list(prefix) + [sys.executable, "-m", "mast_tools"] + list(args),
                       input=input, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       universal_newlines=True, timeout=timeout, env=env_for_mast(env), cwd=cwd)
    try:
        r.doc = json.loads(r.stdout)
    except ValueError:
        r.doc = None
    return r


def free_udp_port(hosts=SIM_ADDRS + ("127.0.0.10",)):
    """A UDP port free on the sim board's uplink addresses and the test peer's."""
    return _free_udp_port(hosts)


def restore_sigint():
    """preexec_fn for a child a test interrupts with SIGINT: a shell without job control
    starts the suite with SIGINT ignored, and a child inherits that (Python then installs no
    KeyboardInterrupt handler). The default disposition, so Ctrl-C reaches it as it would."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def write_config(folder, name="board1", **extra):
    cfg = {"name": name, "port": free_udp_port()}
    cfg.update(extra)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "mast.json"), "w") as f:
        json.dump(cfg, f)
    return cfg


@contextlib.contextmanager
def sim_board(folder, *args, firmware=True, config=True):
    """A simulated board on folder: with the firmware (installed by mast sim-board itself) or
    bare (plain MicroPython); with a mast.json on its own UDP port unless config is False."""
    if config:
        write_config(folder)
    if firmware:
        simboard.fill(folder, "unix-sim")
    else:
        args = ("--bare",) + args
    with simboard.SimBoardProcess(folder, *args) as sb:
        yield sb


def sim_board_device(tmp_path_factory, name):
    """A module fixture's body: a simulated board with the firmware in a folder of its own,
    yielding its serial device (the test is skipped without the MicroPython unix port)."""
    if simboard.find_micropython() is None:
        pytest.skip("the MicroPython unix port is not installed")
    with sim_board(str(tmp_path_factory.mktemp(name) / "board")) as sb:
        yield sb.device


@contextlib.contextmanager
def holding(device):
    """Another program holding the port: pyserial with exclusive=True (an flock, as mpremote
    and `mast` take). Yields its pid."""
    code = ("import serial, sys, time\n"
            "s = serial.Serial(sys.argv[1], exclusive=True)\n"
            "print('held', flush=True)\n"
            "time.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, "-c", code, device], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, universal_newlines=True)
    try:
        assert proc.stdout.readline().strip() == "held", proc.stderr.read()
        yield proc.pid
    finally:
        proc.kill()
        proc.wait()


def as_nobody():
    """The command prefix that runs a program as the unprivileged user nobody (no groups);
    None when that is not possible here (not root, or no setpriv)."""
    if os.geteuid() != 0:
        return None
    for tool in ("/usr/bin/setpriv", "/bin/setpriv"):
        if os.path.exists(tool):
            return [tool, "--reuid=65534", "--regid=65534", "--clear-groups", "--"]
    return None


def wait_for(cond, timeout, what, step=0.02):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(step)
    raise AssertionError("timed out waiting for " + what)
