"""`mast reset` and `mast maintenance`, and what `mast config`/`mast console` say about a board
whose firmware is stopped: the ways out a new user needs, on a simulated board.

- after mpremote (which stops the firmware and leaves the board at its REPL), the tools say
  the firmware is there but not running and lead with `mast reset`, which starts it again;
- maintenance mode has a way out from the command line, and `status` says it;
- a flag set by `mast flash` is reported as such, not as "requested from the console";
- a board whose firmware answers `out of memory` is said to be so and never interrupted by a
  look for its REPL; `mast reset` and `mast maintenance` go through its raw REPL."""

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
        import json
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
