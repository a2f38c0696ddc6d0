"""tests/hardware: the same tests against a real board or a simulated one.

    pytest tests/hardware --port /dev/ttyUSB0 --board olimex-esp32-poe --peer-host 192.168.1.20
    pytest tests/hardware            # a freshly started simulated board (what `make test` runs)
    mast hwtest --port /dev/ttyUSB0 --board olimex-esp32-poe      # the same, with a short report

Every test here is marked `hardware` (select or leave them out with -m). They talk to the board
only as a user does: the `mast` command (flash, config) in a child process, and the console
over pyserial, so they run unchanged against a board on USB. Without --port the board is the
MicroPython unix port behind a pty (`mast sim-board --bare`: plain MicroPython, no firmware
until the first test flashes it), with its own UDP port so it never meets another test's board.

A real board's configuration is exported at the start and imported back at the end (secrets
stay as they were: an import leaves redacted ones alone), so the suite leaves it as it found it.
This folder runs without the repository too: `mast hwtest` runs the copy a wheel carries.
"""

import contextlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)
try:
    import mast_tools  # noqa: F401
except ImportError:  # a checkout without `pip install -e host-tools`
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(HERE)), "host-tools"))

from hw_options import PC_PEER, add_options  # noqa: E402
from mast_tools import simboard  # noqa: E402
from mast_tools.cmd_flash import firmware_version  # noqa: E402
from mast_tools.consoleclient import ConsoleClient, PortLost  # noqa: E402
from mast_tools.errors import CommandError  # noqa: E402
from mast_tools.firmware import FIRMWARE_DIR  # noqa: E402

PSK = "q83vEjRWeJq83vEjRWeJq83vEjRWeJq83vEjRWeJq8M="  # the test peer's key (docs/CONSOLE.md's)
SIM_PEER_HOST = "127.0.0.10"
SIM_ADDRS = ("127.0.0.2", "127.0.0.3", "127.0.0.4")  # boards/unix-sim.json's uplinks


def pytest_addoption(parser):
    add_options(parser)


def pytest_configure(config):
    config.addinivalue_line("markers", "hardware: runs against a board (a real one with --port, "
                                       "else a simulated one)")


def pytest_collection_modifyitems(config, items):
    for item in items:
        if str(item.fspath).startswith(HERE + os.sep):
            item.add_marker(pytest.mark.hardware)


def free_udp_port(hosts):
    """A UDP port free on every one of hosts (mast_tools.netutil's, shared by the tools and
    the tests)."""
    from mast_tools.netutil import free_udp_port as free

    return free(hosts)


def failure_text(args, r):
    """A failed `mast` command's text for the report: its `mast: ...` error line first (the
    report shows the first line only; the stderr before it is progress), then its output."""
    why = [x for x in r.stderr.splitlines() if x.startswith("mast: ")]
    return "mast %s failed (%d): %s%s%s" % (" ".join(args), r.returncode, why[-1] + "\n" if why else "",
                                          r.stderr[-2000:], r.stdout[-500:])


class Board:
    """The board under test: how to reach it and run `mast` against it."""

    def __init__(self, port, board, peer_host, sim=None, folder=None):
        self.port = port
        self.board = board
        self.peer_host = peer_host
        self.sim = sim
        self.folder = folder
        self.version = firmware_version(FIRMWARE_DIR)
        self.name = None  # the board's configured name (set once flashed)
        self.definition = simboard.load_board(board)  # a name from boards/ or a path

    @property
    def real(self):
        return self.sim is None

    def mast(self, *args, timeout=180, check=True):
        """Run the `mast` command; CompletedProcess with .doc (stdout as JSON, if it is)."""
        env = dict(os.environ)
        here = os.path.dirname(os.path.dirname(os.path.abspath(simboard.__file__)))
        env["PYTHONPATH"] = here + os.pathsep + env.get("PYTHONPATH", "")
        r = subprocess.run([sys.executable, "-m", "mast_tools"] + list(args), stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
                           timeout=timeout, env=env)
        try:
            r.doc = json.loads(r.stdout)
        except ValueError:
            r.doc = None
        if check and r.returncode != 0:
            raise AssertionError(failure_text(args, r))
        return r

    def flash(self, *extra):
        return self.mast("flash", "--port", self.port, "--board", self.board, "--json", *extra).doc

    @contextlib.contextmanager
    def console(self):
        con = ConsoleClient.open_when_back(self.port, 30)  # a native-USB board may be resetting
        try:
            yield con
        finally:
            con.close()

    def uplinks_by_preference(self):
        ups = self.definition["uplinks"]
        return sorted(ups, key=lambda n: (ups[n].get("priority", 100), n))

    def reboot(self, con, timeout=60):
        """Reboot through the console; the status of the new boot (its uptime is younger than
        the request). Survives the port going away while a native-USB board resets."""
        def boots():
            return len([x for x in con.logs if x.get("log") == "boot"])

        t0 = time.monotonic()
        n = boots()
        assert con.call("reboot") == {"rebooting": True}
        end = t0 + timeout
        try:  # the new boot says so (over a USB-UART; a native-USB port vanishes instead)
            con.wait(lambda: boots() > n, min(15.0, timeout))
        except PortLost:
            con.reopen(max(1.0, end - time.monotonic()))
        while time.monotonic() < end:
            try:
                st = con.call("status", timeout=1)
                if st["uptime_ms"] <= (time.monotonic() - t0) * 1000 + 500:
                    return st
            except TimeoutError:
                pass
            except CommandError:  # PortLost included
                con.reopen(max(1.0, end - time.monotonic()))
            time.sleep(0.2)
        raise AssertionError("the board did not come back within %.0f s of its reboot" % timeout)


@pytest.fixture(scope="session")
def hw(request, tmp_path_factory):
    """The board: the real one given by --port, or a fresh simulated one."""
    opt = request.config.getoption
    port, board, peer_host = opt("--port", None), opt("--board", None), opt("--peer-host", None)
    if port:
        if not board:
            raise pytest.UsageError("--port needs --board (a name from boards/, e.g. olimex-esp32-poe)")
        b = Board(port, board, peer_host)
        yield b
        return
    board = board or "unix-sim"
    if simboard.find_micropython() is None:
        pytest.skip("the MicroPython unix port is not installed (its wheel exists only for "
                    "x86_64 Linux): no simulated board for the hardware tests")
    if simboard.load_board(board)["port"] != "unix":
        raise pytest.UsageError("without --port the board is simulated: --board must be a unix board")
    folder = str(tmp_path_factory.mktemp("hw-board"))
    # a plain MicroPython board whose owner already wrote a configuration (its own UDP port)
    mast_port = free_udp_port(SIM_ADDRS + (peer_host or SIM_PEER_HOST,))
    with open(os.path.join(folder, "mast.json"), "w") as f:
        json.dump({"name": "mast-hwtest", "port": mast_port}, f)
    with simboard.SimBoardProcess(folder, "--bare", "--board", board) as sb:
        yield Board(sb.device, board, peer_host or SIM_PEER_HOST, sim=sb, folder=folder)


@pytest.fixture(scope="session")
def flashed(hw, tmp_path_factory):
    """The first flash of the session (its --json report); the board runs the firmware after.
    A real board's configuration is exported now and imported back at the end."""
    report = hw.flash()
    with hw.console() as con:
        hw.name = con.call("get", key="name")
    backup = None
    if hw.real:
        backup = str(tmp_path_factory.mktemp("hw-config") / "before.json")
        hw.mast("config", "--port", hw.port, "export", "-o", backup)
    yield report
    if backup:
        hw.mast("config", "--port", hw.port, "import", backup, "--commit", check=False)
        with hw.console() as con:
            con.call("reboot")
            con.wait_hello(60)


@pytest.fixture
def con(hw, flashed):
    """The board's console for one test (the port is free again after it)."""
    with hw.console() as c:
        c.wait_hello(30)
        yield c


class Endpoint:
    """`mast endpoint` on the PC: the board's peer for the association tests."""

    def __init__(self, hw, port):
        self.port = port
        doc = {"mast": {"name": PC_PEER, "port": port,
                        "peers": {hw.name: {"psk": PSK, "initiate": False}}},
               "uplinks": {"lan": {"bind": "%s:%d" % (hw.peer_host, port)}}}
        fd, self.file = tempfile.mkstemp(suffix=".json", prefix="hw-peer-")
        with os.fdopen(fd, "w") as f:
            json.dump(doc, f)
        env = dict(os.environ)
        here = os.path.dirname(os.path.dirname(os.path.abspath(simboard.__file__)))
        env["PYTHONPATH"] = here + os.pathsep + env.get("PYTHONPATH", "")
        self.proc = subprocess.Popen([sys.executable, "-m", "mast_tools", "endpoint", "--config", self.file],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     universal_newlines=True, env=env)
        self.events = []
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        for line in self.proc.stdout:
            try:
                self.events.append(json.loads(line))
            except ValueError:
                pass

    def wait(self, pred, timeout, what):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if any(pred(e) for e in list(self.events)):
                return
            if self.proc.poll() is not None:
                raise AssertionError("mast endpoint ended: %s" % self.proc.stderr.read()[-500:])
            time.sleep(0.05)
        raise AssertionError("no %s from the PC's endpoint in %.0f s: %r" % (what, timeout, self.events[-5:]))

    def close(self):
        try:
            self.proc.stdin.close()
            self.proc.wait(5)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()
        os.unlink(self.file)


@pytest.fixture(scope="module")
def association(hw, flashed):
    """An association between the board and a `mast endpoint` on the PC (--peer-host),
    set up through the console (set, apply); removed again after the module."""
    if hw.peer_host is None:
        pytest.skip("--peer-host not given: this PC's address on the board's network is needed "
                    "for the association tests")
    ep = Endpoint(hw, free_udp_port((hw.peer_host,)))
    try:
        with hw.console() as c:
            c.call("set", key="peers.%s.psk" % PC_PEER, value=PSK)
            c.call("set", key="peers.%s.addresses" % PC_PEER, value=["%s:%d" % (hw.peer_host, ep.port)])
            c.call("apply")
        ep.wait(lambda e: e.get("event") == "association_up", 30 if hw.real else 10,
                "association_up")
        yield ep
    finally:
        with hw.console() as c:
            try:
                c.call("unset", key="peers.%s" % PC_PEER)
                c.call("apply")
            except Exception:
                pass
        ep.close()

