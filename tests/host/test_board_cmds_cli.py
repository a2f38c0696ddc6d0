"""`mast reset` and `mast maintenance`, and what `mast config`/`mast console` say about a board
whose firmware is stopped: the ways out a new user needs, on a simulated board.

- after mpremote (which stops the firmware and leaves the board at its REPL), the tools say
  the firmware is there but not running and lead with `mast reset`, which starts it again;
- maintenance mode has a way out from the command line, and `status` says it;
- a flag set by `mast flash` is reported as such, not as "requested from the console";
- a board whose firmware answers `out of memory` is said to be so and never interrupted by a
  look for its REPL; `mast reset` and `mast maintenance` go through its raw REPL."""

import json
import os
import subprocess
import sys
import time

import pytest

from boardcli import mast, sim_board

from mast_tools.consoleclient import ConsoleClient


@pytest.fixture
def running(micropython, tmp_path):
    folder = str(tmp_path / "board")
    with sim_board(folder) as sb:
        con = ConsoleClient(sb.device)
        try:
            con.wait_hello(20, mode="normal")
        finally:
            con.close()
        yield sb, folder


def mpremote(device, *args):
    return subprocess.run([sys.executable, "-m", "mpremote", "connect", device] + list(args),
                          stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True, timeout=60)


def test_after_mpremote_the_tools_say_the_firmware_is_stopped_and_mast_reset_starts_it(running):
    sb, folder = running
    r = mpremote(sb.device, "resume", "exec", "print(6 * 7)")  # the firmware stops for mpremote
    assert r.returncode == 0 and r.stdout.strip() == "42", r.stdout
    want = ("mast: the MAST firmware is on the board at %s but not running: the board is at its "
            "MicroPython REPL (mpremote, Thonny or a Ctrl-C stop the firmware); start it again: "
            "mast reset --port %s\n" % (sb.device, sb.device))
    for cmd in (("config", "--port", sb.device, "get", "name"), ("console", "--port", sb.device)):
        r = mast(*cmd, timeout=60)
        assert r.returncode == 1 and r.stdout == "" and r.stderr == want, (cmd, r.stderr)
    r = mast("reset", "--port", sb.device, "--json", timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.doc["mode"] == "normal" and r.doc["version"] == "0.1.0"
    assert r.doc["how"] == "reset through its raw REPL (the firmware was stopped)"
    r = mast("config", "--port", sb.device, "get", "name")
    assert r.returncode == 0 and r.stdout == "board1\n", r.stderr
    r = mast("reset", "--port", sb.device)  # while it runs: a reboot through its console
    assert r.returncode == 0 and r.stdout == ("the MAST firmware 0.1.0 runs again on %s (normal "
                                              "mode; rebooted through its console)\n" % sb.device)


def test_reset_on_a_bare_board_says_the_firmware_is_not_there(micropython, tmp_path):
    with sim_board(str(tmp_path / "bare"), firmware=False) as sb:
        r = mast("reset", "--port", sb.device, timeout=60)
    assert r.returncode == 1
    assert r.stderr.splitlines()[-1] == ("mast: no MAST firmware on the board at %s (a bare "
                                         "MicroPython); put it on: mast flash --port %s --board "
                                         "BOARD" % (sb.device, sb.device))


def test_a_look_for_the_firmware_through_the_raw_repl_leaves_the_board_at_its_friendly_repl(micropython,
                                                                                           tmp_path):
    # (mast config and mast console look when the board does not answer their hello): what
    # is typed at the board next runs, as at any REPL, not held by a raw REPL waiting for Ctrl-D
    import serial

    from mast_tools import boardrepl

    with sim_board(str(tmp_path / "bare"), firmware=False) as sb:
        assert boardrepl.firmware_installed(sb.device) is False
        ser = serial.Serial(sb.device, 115200, timeout=0.2)
        try:
            ser.write(b"print(6 * 7)\r")
            got = b""
            end = time.monotonic() + 10
            while b"print(6 * 7)\r\n42" not in got and time.monotonic() < end:
                got += ser.read(256)
        finally:
            ser.close()
    assert b"print(6 * 7)\r\n42" in got, got  # (echoed, and run: the raw REPL echoes nothing)


def test_a_board_left_in_its_raw_repl_is_not_called_silent(running):
    # a flash cut off (its process killed) leaves the board in its raw REPL, which answers a
    # console's hello with nothing: `mast config status` said "nothing answers ... press the
    # board's reset button" where the firmware was there, stopped, and mast reset starts it
    import serial
    import time

    sb, folder = running
    ser = serial.Serial(sb.device, 115200, timeout=0.2)
    try:
        ser.write(b"\r\x03\x03")
        time.sleep(0.5)
        ser.reset_input_buffer()
        ser.write(b"\x01")  # raw REPL, and left there
        end = time.monotonic() + 10
        got = b""
        while b"raw REPL; CTRL-B to exit\r\n>" not in got and time.monotonic() < end:
            got += ser.read(256)
        assert b"raw REPL" in got, got
    finally:
        ser.close()
    want = ("mast: the MAST firmware is on the board at %s but not running: the board is at its "
            "MicroPython REPL (mpremote, Thonny or a Ctrl-C stop the firmware); start it again: "
            "mast reset --port %s\n" % (sb.device, sb.device))
    r = mast("config", "--port", sb.device, "status", timeout=60)
    assert r.returncode == 1 and r.stderr == want, r.stderr
    assert mast("reset", "--port", sb.device, timeout=60).returncode == 0


def test_maintenance_has_a_way_out_from_the_command_line_and_status_says_it(running):
    sb, folder = running
    r = mast("maintenance", "on", "--port", sb.device)
    assert r.returncode == 0, r.stderr
    assert r.stdout == ("the board on %s is in maintenance mode now (firmware 0.1.0); leave it "
                        "with: mast maintenance off --port %s\n" % (sb.device, sb.device))
    with open(os.path.join(folder, "mast.maint")) as f:
        assert f.read() == "mast maintenance on"
    r = mast("config", "--port", sb.device, "status")
    assert "maintenance: mast maintenance on; to leave it: mast maintenance off --port %s\n" % (
        sb.device) in r.stdout
    r = mast("maintenance", "on", "--port", sb.device, "--json")
    assert r.doc == {"port": sb.device, "mode": "maintenance", "changed": False}
    r = mast("maintenance", "off", "--port", sb.device, "--json")
    assert r.returncode == 0 and r.doc["mode"] == "normal" and r.doc["changed"] is True
    assert not os.path.exists(os.path.join(folder, "mast.maint"))
    assert mast("config", "--port", sb.device, "status", "--json").doc["mode"] == "normal"


def test_maintenance_off_works_when_the_firmware_is_stopped_too(running):
    sb, folder = running
    with open(os.path.join(folder, "mast.maint"), "w") as f:
        f.write("boot loop: 3 boots in a row crashed or hung")
    assert mpremote(sb.device, "resume", "exec", "print(1)").returncode == 0  # stopped, at the REPL
    r = mast("maintenance", "off", "--port", sb.device, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "maintenance off; resetting the board through its raw REPL" in r.stderr
    assert r.stdout.startswith("the board on %s is in normal mode now" % sb.device)
    assert not os.path.exists(os.path.join(folder, "mast.maint"))
    with open(os.path.join(folder, "mast.boots")) as f:
        assert f.read() in ("0", "1")


def test_the_flag_mast_flash_sets_names_mast_flash(running):
    """flash asks the console for maintenance with its own reason, so a flash cut off before
    its raw REPL step leaves a board whose status names the flash, not the console."""
    sb, folder = running
    con = ConsoleClient(sb.device)
    try:
        r = con.call("maintenance", state="on", reason="mast flash in progress")
        assert r == {"maintenance": True, "rebooting": True}
        info = con.wait_hello(20, mode="maintenance")
        assert info["mode"] == "maintenance"
        st = con.call("status")
    finally:
        con.close()
    assert st["maintenance"] == "mast flash in progress"
    r = mast("flash", "--port", sb.device, "--json")  # and the next flash clears it
    assert r.returncode == 0, r.stderr
    assert mast("config", "--port", sb.device, "status", "--json").doc["mode"] == "normal"


class OutOfMemoryBoard:
    """A board whose firmware runs but answers every request `out of memory` (a board at the
    end of its heap: each op, even hello, needs room for its code), on a pty. .got: every
    byte the tools sent it."""

    def __init__(self):
        import pty
        import threading

        self.master, slave = pty.openpty()
        self.device = os.ttyname(slave)
        self.slave = slave
        self.got = b""
        self.stop = False
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        import select

        buf = b""
        while not self.stop:
            if not select.select([self.master], [], [], 0.05)[0]:
                continue
            try:
                data = os.read(self.master, 4096)
            except OSError:
                return
            self.got += data
            buf += data
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                try:
                    rid = json.loads(line.strip().decode()).get("id")
                except ValueError:
                    continue
                reply = {"id": rid, "ok": False, "error": "out of memory"}
                os.write(self.master, json.dumps(reply).encode() + b"\r\n")

    def close(self):
        self.stop = True
        self.thread.join(2)
        os.close(self.master)
        os.close(self.slave)


def test_a_board_that_answers_hello_out_of_memory_is_said_so_and_never_stopped():
    # seen on the simulated board below its smallest heap: `mast config status` took the
    # firmware's `out of memory` for no firmware at all, sent a Ctrl-C to look for a REPL (which
    # stopped the firmware, its traffic with it), and then said the firmware was not running
    b = OutOfMemoryBoard()
    try:
        r = mast("config", "status", "--port", b.device, timeout=60)
    finally:
        b.close()
    assert r.returncode == 1, r.stdout + r.stderr
    err = r.stderr.strip()
    assert err.startswith("mast: the MAST firmware on %s answers, but not hello: out of memory; "
                          "its heap has no room for the console's ops now" % b.device), err
    assert "mast reset --port %s" % b.device in err
    assert b'"op": "hello"' in b.got and b"\x03" not in b.got  # asked, and never interrupted


# An app that, once a file "hog" is on the board (it looks each second, and removes it), cuts
# the heap into pieces and holds them (no block of 100 bytes is left): every console op then
# answers `out of memory`, as on a board below its smallest heap, while the firmware runs.
# The pieces go with the app when the firmware stops.
HOG_APP = """import gc
import os


class Hog:
    def __init__(self):
        self.blocks = None

    def tick(self, now):
        if self.blocks is None:
            try:
                os.remove("hog")
            except OSError:
                return 1000
            gc.collect()
            chain = None
            try:
                for _ in range(10000):
                    chain = [chain, bytearray(64), bytearray(64)]
            except MemoryError:
                pass
            c = chain
            while c is not None:  # every other piece let go of
                c[2] = None
                c = c[0]
            self.blocks = chain
        return 1000


def start(mast):
    return Hog()
"""


def test_mast_reset_and_maintenance_go_through_the_raw_repl_of_a_board_out_of_memory(
        micropython, tmp_path):
    # its console could not take `reboot` (nor even hello): `mast reset` said "press its reset
    # button"; it now resets the board through its raw REPL (a board far away has no button).
    # `mast maintenance` the same way (it said "try again")
    folder = str(tmp_path / "board")
    from boardcli import write_config
    from mast_tools import simboard

    write_config(folder)
    simboard.fill(folder, "unix-sim")
    with open(os.path.join(folder, "app.py"), "w") as f:
        f.write(HOG_APP)
    hog = os.path.join(folder, "hog")

    def cut_the_heap():
        open(hog, "w").close()
        end = time.monotonic() + 10
        while os.path.exists(hog) and time.monotonic() < end:
            time.sleep(0.1)
        assert not os.path.exists(hog)
        time.sleep(0.5)

    with simboard.SimBoardProcess(folder) as sb:
        con = ConsoleClient(sb.device)
        try:
            con.wait_hello(20, mode="normal")
        finally:
            con.close()
        cut_the_heap()
        r = mast("config", "status", "--port", sb.device, timeout=60)
        assert r.returncode == 1 and "answers, but not hello: out of memory" in r.stderr, r.stderr
        r = mast("reset", "--port", sb.device, "--json", timeout=90)
        assert r.returncode == 0, r.stderr
        assert r.doc["how"].startswith("reset through its raw REPL (its console"), r.doc
        assert "out of memory" in r.doc["how"] and r.doc["mode"] == "normal", r.doc
        r = mast("config", "--port", sb.device, "get", "name")  # the second boot: no hog
        assert r.returncode == 0 and r.stdout == "board1\n", r.stderr
        # maintenance too: its op has no room either, and goes through the raw REPL
        cut_the_heap()
        r = mast("maintenance", "on", "--port", sb.device, "--json", timeout=90)
        assert r.returncode == 0 and r.doc["mode"] == "maintenance" and r.doc["changed"], r.stderr
        assert "maintenance on (its console answered: out of memory)" in r.stderr, r.stderr
        r = mast("maintenance", "off", "--port", sb.device, "--json", timeout=90)
        assert r.returncode == 0 and r.doc["mode"] == "normal", r.stderr


# ---- in-process: the console and the raw REPL faked ------------------------------------------
# What a simulated board cannot be made to do on demand: a console that refuses maintenance
# for another reason than memory, a firmware that crashes at boot, a firmware frozen into the
# MicroPython build (main.py on the board, no /lib/board). The raw REPL is
# tests/host/test_flash_steps.py's FakeRawBoard: its device scripts run here, in a folder that
# is the board's filesystem. (board.main imports here, as a frozen module does on a board:
# firmware/ is on sys.path.)

FAKE_PORT = "/dev/ttyFAKE1"
STOPPED = [">>> "]  # what a console's hello meets on a board whose firmware is stopped


class ScriptedConsole:
    """consoleclient.ConsoleClient for `mast reset` and `mast maintenance`: hello() answers
    .hello_answer (None: NoFirmware, a REPL's prompt seen), call(op) answers .answers[op] (an
    exception is raised), and wait_hello() after the reset answers .back (None: NoFirmware,
    with .boot_logs among the lines the board printed). .ops: every op asked."""

    hello_answer = None
    answers = {}
    back = {"mode": "normal", "version": "0.1.0", "board": "unix-sim"}
    boot_logs = []
    ops = []

    def __init__(self, port, baudrate=None):
        self.logs = []

    @classmethod
    def open_when_back(cls, port, timeout, baudrate=None):
        return cls(port)

    def hello(self, timeout=None, resend_s=1.0):
        from mast_tools.consoleclient import NoFirmware

        if self.hello_answer is None:
            raise NoFirmware(list(STOPPED))
        return dict(self.hello_answer)

    def call(self, op, timeout=None, **fields):
        self.ops.append(op)
        a = self.answers[op]
        if isinstance(a, Exception):
            raise a
        return a

    def wait_hello(self, timeout=None, mode=None):
        from mast_tools.consoleclient import NoFirmware

        if self.back is None:
            self.logs.extend(self.boot_logs)
            raise NoFirmware(["rst:0xc (SW_CPU_RESET),boot:0x13 (SPI_FAST_FLASH_BOOT)"])
        return dict(self.back)

    def close(self):
        pass


@pytest.fixture
def fake_board(monkeypatch, tmp_path, capsys):
    """board(*args, firmware="files"|"frozen"|None, repl_error=None, **console) -> (exit
    code, stdout, stderr, the raw REPL's class, the console's class): `mast *args --port
    FAKE_PORT` in-process, against a folder holding the firmware's files ("files": /main.py
    and /lib/board; "frozen": only the /main.py; None: neither); repl_error: each script in
    the raw REPL fails with DeviceError(repl_error); console: ScriptedConsole's attributes."""
    from mast_tools import boardrepl, cli, consoleclient, portpick, serialport
    from test_flash_steps import FakeRawBoard

    folder = str(tmp_path / "board")
    os.makedirs(folder)
    monkeypatch.setattr(portpick, "resolve", lambda port, command="mast", **kw: port)
    monkeypatch.setattr(serialport, "probe_alive", lambda port, baud: True)  # (a Ctrl-C answered)

    def board(*args, firmware="files", repl_error=None, **console):
        if firmware is not None:
            with open(os.path.join(folder, "main.py"), "w") as f:
                f.write("from board import main\nmain.run()\n")
        if firmware == "files":
            os.makedirs(os.path.join(folder, "lib", "board"), exist_ok=True)
        entered = []

        class Raw(FakeRawBoard):
            def enter(self):
                entered.append(1)

            def run(self, script, timeout=None):
                if repl_error is not None:  # (its raw REPL stops answering)
                    raise boardrepl.DeviceError(repl_error)
                return FakeRawBoard.run(self, script, timeout)

        Raw.folder, Raw.resets, Raw.entered = folder, 0, entered
        con = type("Console", (ScriptedConsole,), dict(console, ops=[]))
        monkeypatch.setattr(boardrepl, "RawBoard", Raw)
        monkeypatch.setattr(consoleclient, "ConsoleClient", con)
        code = cli.main(list(args) + ["--port", FAKE_PORT])
        out, err = capsys.readouterr()
        return code, out, err, Raw, con

    board.folder = folder
    return board


RUNNING = {"mode": "normal", "version": "0.1.0", "board": "unix-sim"}


def test_maintenance_refused_by_a_full_flash_says_to_make_room(fake_board):
    # ("try again" would fail again: the board's flash has no room for the flag)
    from mast_tools.consoleclient import BoardError

    code, out, err, raw, con = fake_board(
        "maintenance", "on", hello_answer=RUNNING,
        answers={"maintenance": BoardError("cannot set maintenance mode: the flash is full "
                                           "(writing mast.maint)")})
    assert code == 1 and out == "" and raw.entered == [] and raw.resets == 0
    assert err == ("mast: the board refused maintenance on: cannot set maintenance mode: the flash "
                   "is full (writing mast.maint); make room on its flash (mpremote connect %s fs "
                   "ls), then try again\n" % FAKE_PORT), err


def test_maintenance_refused_for_another_reason_than_memory_is_said_and_the_board_left_alone(
        fake_board):
    # only `out of memory` goes on through the raw REPL (a console with no room for the op);
    # any other refusal is the board's answer: said, and the running firmware not stopped
    from mast_tools.consoleclient import BoardError

    code, out, err, raw, con = fake_board(
        "maintenance", "on", hello_answer=RUNNING,
        answers={"maintenance": BoardError("OSError: [Errno 28] ENOSPC")})
    assert code == 1 and out == ""
    assert err == ("mast: the board refused maintenance on: OSError: [Errno 28] ENOSPC; try "
                   "again\n"), err
    assert con.ops == ["maintenance"] and raw.entered == [] and raw.resets == 0
    assert not os.path.exists(os.path.join(fake_board.folder, "mast.maint"))
    # a console that does not answer is said so, the same way
    code, out, err, raw, con = fake_board(
        "maintenance", "on", hello_answer=RUNNING,
        answers={"maintenance": TimeoutError("no reply to maintenance in 5 s")})
    assert code == 1 and raw.entered == [] and raw.resets == 0
    assert err == "mast: the board did not answer (no reply to maintenance in 5 s); try again\n", err
    # (and `out of memory` does go through the raw REPL, as on the simulated board above)
    code, out, err, raw, con = fake_board(
        "maintenance", "on", hello_answer=RUNNING, back=dict(RUNNING, mode="maintenance"),
        answers={"maintenance": BoardError("out of memory")})
    assert code == 0 and raw.resets == 1, err
    assert "maintenance on (its console answered: out of memory)" in err
    assert open(os.path.join(fake_board.folder, "mast.maint")).read() == "mast maintenance on"


def test_a_firmware_that_crashes_at_boot_after_mast_reset_is_said_so_with_its_error(fake_board):
    crash = {"log": "crash", "error": "ImportError: no module named 'board.uplinks'",
             "traceback": "..."}
    code, out, err, raw, con = fake_board(
        "reset", hello_answer=RUNNING, answers={"reboot": {"rebooting": True}}, back=None,
        boot_logs=[{"log": "boot", "mode": "normal"}, crash])
    assert code == 1 and out == "" and con.ops == ["reboot"]
    assert err == ("mast: the firmware crashes at boot: ImportError: no module named "
                   "'board.uplinks'; see `mast console --port %s`; after three crashed boots "
                   "it stays in maintenance mode, where the console works\n" % FAKE_PORT), err
    # no crash among its lines: it did not come back, and what it printed is named
    code, out, err, raw, con = fake_board(
        "reset", hello_answer=RUNNING, answers={"reboot": {"rebooting": True}}, back=None)
    assert code == 1 and err.startswith("mast: the board did not come back (no MAST firmware "
                                        "answers on %s (it printed: rst:0xc" % FAKE_PORT), err


def test_a_firmware_frozen_into_micropython_is_found_installed_by_reset_and_diagnose(
        fake_board, monkeypatch):
    # a build with the firmware frozen in has /main.py but no /lib/board on the board: its
    # firmware is there (stopped, at the REPL), not a bare MicroPython
    from mast_tools import consoleclient

    code, out, err, raw, con = fake_board("reset", "--json", firmware="frozen")
    assert code == 0, err
    assert json.loads(out)["how"] == "reset through its raw REPL (the firmware was stopped)"
    assert raw.resets == 1
    e = consoleclient.diagnose(FAKE_PORT, list(STOPPED))
    assert e.what == ("the MAST firmware is on the board at %s but not running: the board is at "
                      "its MicroPython REPL (mpremote, Thonny or a Ctrl-C stop the firmware)"
                      % FAKE_PORT), e.what
    assert e.hint == "start it again: mast reset --port %s" % FAKE_PORT
    # the same board with no board.main to import is a bare MicroPython with a main.py
    monkeypatch.setitem(sys.modules, "board.main", None)
    code, out, err, raw, con = fake_board("reset", firmware="frozen")
    assert code == 1 and raw.resets == 0
    assert err.startswith("mast: no MAST firmware on the board at %s (a bare MicroPython)"
                          % FAKE_PORT), err
    e = consoleclient.diagnose(FAKE_PORT, list(STOPPED))
    assert e.what.startswith("no MAST firmware on the board at %s: a bare MicroPython REPL "
                             "answers" % FAKE_PORT), e.what


def test_mast_reset_goes_through_the_raw_repl_when_the_console_does_not_answer_the_reboot(
        fake_board):
    # the firmware said hello but its console did not answer `reboot` (stuck in an op, say):
    # a board far away has no button to press; its raw REPL resets it
    code, out, err, raw, con = fake_board(
        "reset", "--json", hello_answer=RUNNING,
        answers={"reboot": TimeoutError("no reply to reboot in 5 s")})
    assert code == 0, err
    assert json.loads(out)["how"] == ("reset through its raw REPL (its console did not take the "
                                      "reboot: no reply to reboot in 5 s)")
    assert con.ops == ["reboot"] and raw.resets == 1
    assert ("mast: its console did not take the reboot (no reply to reboot in 5 s); resetting "
            "the board through its raw REPL\n") in err, err


def test_a_raw_repl_that_stops_answering_is_said_so_never_a_traceback(fake_board):
    from mast_tools import consoleclient

    code, out, err, raw, con = fake_board(
        "reset", repl_error="the board stopped answering (timeout waiting for first EOF reception)")
    assert code == 1 and out == "" and raw.resets == 0
    assert err == ("mast: the board did not answer in its raw REPL (the board stopped answering "
                   "(timeout waiting for first EOF reception)); press its reset button (or unplug "
                   "it and plug it in)\n"), err
    # `mast config` and `mast console`, finding a REPL, ask the same raw REPL whether the
    # firmware is there: not known, and said so, with both ways out (and no traceback)
    e = consoleclient.diagnose(FAKE_PORT, list(STOPPED), board="unix-sim")
    assert e.what == ("a MicroPython REPL answers on %s, not the MAST console, and whether the firmware "
                      "is on the board could not be told (its raw REPL did not answer)" % FAKE_PORT)
    assert e.hint == "if it is: mast reset --port %s; if not: mast flash --port %s --board unix-sim" % (
        FAKE_PORT, FAKE_PORT)


def test_maintenance_changes_nothing_on_a_board_in_that_mode_or_one_that_does_not_reboot(fake_board):
    # already in the mode asked for: said so, no op sent, nothing reset, nothing waited for
    code, out, err, raw, con = fake_board(
        "maintenance", "on", hello_answer=dict(RUNNING, mode="maintenance"), back=None)
    assert (code, out, err) == (0, "the board on %s is in maintenance mode already\n" % FAKE_PORT, "")
    assert con.ops == [] and raw.entered == [] and raw.resets == 0
    # the console takes the op but the board does not reboot: said, and not waited for
    code, out, err, raw, con = fake_board(
        "maintenance", "off", "--json", hello_answer=dict(RUNNING, mode="maintenance"), back=None,
        answers={"maintenance": {"maintenance": True, "rebooting": False}})
    assert code == 0 and err == "" and con.ops == ["maintenance"] and raw.resets == 0
    assert json.loads(out) == {"port": FAKE_PORT, "mode": "maintenance", "changed": False}


def test_a_board_silent_to_hello_that_answers_a_ctrl_c_is_reset_through_its_raw_repl(fake_board):
    # nothing came back to hello (seen: nothing), but a Ctrl-C is answered (probe_alive): a
    # board at its REPL, not a silent port; `mast reset` goes on through the raw REPL
    def silent_hello(self, timeout=None, resend_s=1.0):
        from mast_tools.consoleclient import NoFirmware

        raise NoFirmware([])

    code, out, err, raw, con = fake_board("reset", hello=silent_hello)
    assert code == 0 and raw.entered == [1] and raw.resets == 1, err
    assert out.startswith("the MAST firmware 0.1.0 runs again on %s (normal mode; reset through "
                          "its raw REPL" % FAKE_PORT), out


def test_a_firmware_that_crashes_at_each_boot_is_said_so_with_its_latest_error(fake_board):
    old = {"log": "crash", "error": "MemoryError: memory allocation failed", "traceback": "..."}
    new = {"log": "crash", "error": "ImportError: no module named 'board.uplinks'", "traceback": "..."}
    code, out, err, raw, con = fake_board(
        "reset", hello_answer=RUNNING, answers={"reboot": {"rebooting": True}}, back=None,
        boot_logs=[{"log": "boot", "mode": "normal"}, old, {"log": "boot", "mode": "normal"}, new])
    assert code == 1 and out == ""
    assert err.startswith("mast: the firmware crashes at boot: ImportError: no module named "
                          "'board.uplinks'; "), err


def test_reset_and_maintenance_wait_as_long_as_timeout_says_for_the_mode_asked(fake_board):
    waits = []

    def wait_hello(self, timeout=None, mode=None):
        waits.append((timeout, mode))
        return dict(RUNNING, mode=mode or "normal")

    code, out, err, raw, con = fake_board("reset", "--timeout", "7", hello_answer=RUNNING,
                                          answers={"reboot": {"rebooting": True}}, wait_hello=wait_hello)
    assert code == 0 and waits == [(7.0, None)], err
    code, out, err, raw, con = fake_board(
        "maintenance", "on", "--timeout", "4", hello_answer=RUNNING, wait_hello=wait_hello,
        answers={"maintenance": {"maintenance": True, "rebooting": True}})
    assert code == 0 and waits[1:] == [(4.0, "maintenance")], err


def test_whether_the_firmware_is_installed_is_unknown_when_the_raw_repl_answers_neither(monkeypatch):
    # (a board whose raw REPL printed something else must not be called bare: `mast flash` first)
    from mast_tools import boardrepl

    class Raw:
        out = b""

        def __init__(self, *args, **kw):
            pass

        def open(self):
            return self

        def enter(self):
            pass

        def run(self, script, timeout=None):
            return self.out

        def close(self):
            pass

    monkeypatch.setattr(boardrepl, "RawBoard", Raw)
    for out, want in ((b"MAST-FW True\r\n", True), (b"MAST-FW False\r\n", False), (b"", None),
                      (b"MAST-F", None)):
        Raw.out = out
        assert boardrepl.firmware_installed(FAKE_PORT) is want, out


def test_a_ctrl_c_in_reset_or_maintenance_says_what_state_the_board_was_left_in(fake_board, monkeypatch):
    # (cli.py exits 130 on a Ctrl-C; as `mast flash` does, the last line says where the board is)
    def ctrl_c(self, *args, **kw):
        raise KeyboardInterrupt

    code, out, err, raw, con = fake_board("reset", hello=ctrl_c)
    assert (code, out) == (130, "") and raw.entered == [] and con.ops == []
    assert err == "mast: reset interrupted; nothing was sent: the board is as it was\n", err
    code, out, err, raw, con = fake_board("reset", hello_answer=RUNNING,
                                          answers={"reboot": {"rebooting": True}}, wait_hello=ctrl_c)
    assert code == 130 and con.ops == ["reboot"]
    assert err == ("mast: reset interrupted; the board was asked to reboot and may be rebooting; see "
                   "whether its firmware runs: mast config status --port %s\n" % FAKE_PORT), err
    code, out, err, raw, con = fake_board("reset", wait_hello=ctrl_c)  # (the firmware stopped)
    assert code == 130 and raw.resets == 1
    assert err.endswith("mast: reset interrupted; the board was reset and its firmware may be "
                        "starting; see whether it runs: mast config status --port %s\n" % FAKE_PORT), err
    from test_flash_steps import FakeRawBoard

    with monkeypatch.context() as m:  # a Ctrl-C while in the raw REPL
        m.setattr(FakeRawBoard, "run", ctrl_c)
        code, out, err, raw, con = fake_board("maintenance", "on")
    assert code == 130 and raw.entered == [1] and raw.resets == 0
    assert err == ("mast: maintenance interrupted; the board may be left at its raw REPL, its "
                   "firmware stopped, with maintenance on done or not: run mast maintenance on "
                   "--port %s again\n" % FAKE_PORT), err
    code, out, err, raw, con = fake_board("maintenance", "off", hello_answer=dict(RUNNING, mode="maintenance"),
                                          answers={"maintenance": {"rebooting": True}}, wait_hello=ctrl_c)
    assert code == 130 and con.ops == ["maintenance"]
    assert err == ("mast: maintenance interrupted; the board was asked for maintenance off and may be "
                   "rebooting into normal mode; see its mode: mast config status --port %s\n"
                   % FAKE_PORT), err
