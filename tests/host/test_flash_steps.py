"""`mast flash`'s steps on the board (mast_tools.cmd_flash), in-process against a fake board:
a RawBoard whose device scripts (flashplan's) run here on CPython in a scratch folder that is
the board's filesystem, and a console that says what the test wants. Each test makes the board
go wrong in one way and checks that the flash says so, or copes: a file that lands wrong once,
one that is wrong after the flash, a stray file in the staged /lib, too little free flash, a
board that comes back with another version, and a dry run that restarts an older firmware."""

import contextlib
import io
import json
import os

import pytest

from boardcli import tree  # (and host-tools on sys.path)
from mast_tools import cli, cmd_flash, flashplan, portpick

PORT = "/dev/ttyFAKE0"
VERSION = cmd_flash.firmware_version(cmd_flash.FIRMWARE_DIR)

LOCAL = {"lib/board/main.mpy": b"main" * 50, "lib/board/store.mpy": b"store" * 40,
         "lib/mast/wire.mpy": b"wire" * 30, "boot.py": b"boot", "main.py": b"from board import main\n",
         "board.json": b"{}"}


class FakeRawBoard:
    """boardrepl.RawBoard on a folder: run() execs the script here with the folder as the
    current directory and returns what it printed. Tests subclass it to go wrong."""

    folder = None
    free = 4 * 1024 * 1024
    resets = 0

    def __init__(self, port, soft_reset, baudrate=None, log=None, **kw):
        self.port = port

    def open(self):
        return self

    def enter(self):
        pass

    def close(self):
        pass

    def run(self, script, timeout=None):
        out = io.StringIO()
        here = os.getcwd()
        os.chdir(self.folder)
        try:
            with contextlib.redirect_stdout(out):
                exec(compile(script, "<board>", "exec"), {"__name__": "__main__"})
        finally:
            os.chdir(here)
        self.after(script)
        return out.getvalue().encode()

    def after(self, script):
        """Called after each script (a hook for the tests)."""

    def info(self):
        return {"name": "micropython", "version": (1, 29, 0), "mpy": 0xB06, "platform": "linux",
                "sha256": True, "base64": True, "free": self.free, "cwd": self.folder}

    def hashes(self, dirs=(), files=()):
        return flashplan.parse_hashes(self.run(flashplan.hash_script(dirs, files)))

    def write(self, files, progress=None):
        total = sum(len(d) for _, d in files)
        sent = 0
        for cmd, n, done in flashplan.write_commands(files):
            self.run(cmd)
            sent += n
            if progress is not None:
                progress(sent, total, done[-1] if done else None)

    def reset(self):
        """A hard reset: the firmware boots, and its boot counts in mast.boots."""
        type(self).resets += 1
        path = os.path.join(self.folder, flashplan.BOOTS)
        n = int(open(path).read()) if os.path.exists(path) else 0
        with open(path, "w") as f:
            f.write(str(n + 1))


class FakeConsole:
    """consoleclient.ConsoleClient: `inventory` is an unknown op (a firmware older than it);
    after a flash, the board says hello with `came_back` as its version."""

    came_back = VERSION
    logs = []

    def __init__(self, port, baudrate=None):
        pass

    @classmethod
    def open_when_back(cls, port, timeout, baudrate=None):
        return cls(port)

    def wait_hello(self, timeout, mode=None):
        return {"version": self.came_back, "mode": "normal", "board": "unix-sim"}

    def call(self, op, **kw):
        from mast_tools.consoleclient import BoardError

        raise BoardError("unknown op %r" % op)

    def close(self):
        pass


@pytest.fixture
def fake(monkeypatch, tmp_path, capsys):
    """flash(*args, board=FakeRawBoard subclass, hello=None, definition="unix-sim") -> (exit
    code, stdout, stderr) against the folder; `hello` is what the console answers first (None:
    a bare board); definition: the --board given (None: none)."""
    from mast_tools import boardrepl, consoleclient

    folder = str(tmp_path / "board")
    os.makedirs(os.path.join(folder, "lib", "board"))
    for path, data in (("lib/board/main.mpy", b"old main"), ("boot.py", b"old boot"),
                       ("mast.json", b'{"name": "board1"}')):
        with open(os.path.join(folder, path), "wb") as f:
            f.write(data)
    monkeypatch.setattr(portpick, "resolve", lambda port, command="mast", **kw: port)
    monkeypatch.setattr(cmd_flash, "_local_files",
                        lambda args, fw_dir, info, bd, bd_bytes, cfg: (dict(LOCAL), "1.29.0", (6, 3)))
    monkeypatch.setattr(cmd_flash, "_maintenance_on", lambda port, baud, timeout: None)
    monkeypatch.setattr(consoleclient, "ConsoleClient", FakeConsole)

    def flash(*args, board=FakeRawBoard, hello=None, came_back=VERSION, definition="unix-sim"):
        rb = type("Board", (board,), {"folder": folder, "resets": 0})
        monkeypatch.setattr(boardrepl, "RawBoard", rb)
        monkeypatch.setattr(FakeConsole, "came_back", came_back)
        monkeypatch.setattr(cmd_flash, "_hello", lambda port, baud: hello)
        code = cli.main(["flash", "--port", PORT] + (["--board", definition] if definition else []) + list(args))
        out, err = capsys.readouterr()
        return code, out, err, rb

    flash.folder = folder
    return flash


def test_the_fake_board_is_flashed_and_verified(fake):
    code, out, err, rb = fake("--json")
    assert code == 0, err
    doc = json.loads(out)
    assert sorted(doc["verified"]) == sorted(LOCAL) and doc["version"] == VERSION
    files = tree(fake.folder)
    assert all(files[p] == d for p, d in LOCAL.items())
    assert "mast.maint" not in files and rb.resets == 1


def test_the_text_report_of_an_upgrade_names_the_old_modules_removed_and_the_files_kept(fake):
    # the --json report had them ("dropped", "kept"); the text said only what was copied, so a
    # person upgrading never saw that /lib lost modules, nor that their own files stayed
    for path, data in (("lib/board/gone.mpy", b"an old module"), ("lib/mast/wire.py", b"mip's"),
                       ("lib/umqtt/simple.py", b"the user's"), ("app.py", b"the user's app")):
        os.makedirs(os.path.dirname(os.path.join(fake.folder, path)), exist_ok=True)
        with open(os.path.join(fake.folder, path), "wb") as f:
            f.write(data)
    code, out, err, rb = fake("--dry-run")
    assert code == 0, err
    assert ("would remove 2 file(s) of the old firmware this one does not have\n"
            "  - lib/board/gone.mpy\n  - lib/mast/wire.py\n") in out
    code, out, err, rb = fake()
    assert code == 0, err
    assert ("removed 2 file(s) of the old firmware this one does not have\n"
            "  - lib/board/gone.mpy\n  - lib/mast/wire.py\n"
            "kept as they are: lib/umqtt/simple.py\n") in out
    files = tree(fake.folder)
    assert "lib/board/gone.mpy" not in files and "lib/mast/wire.py" not in files
    assert files["lib/umqtt/simple.py"] == b"the user's" and files["app.py"] == b"the user's app"


def test_a_file_whose_first_write_does_not_verify_is_sent_once_more(fake):
    class Flaky(FakeRawBoard):
        spoiled = []

        def write(self, files, progress=None):
            super().write(files, progress)
            for path, data in files:  # the first time wire.mpy is written, it lands wrong
                if path.endswith("wire.mpy") and path not in self.spoiled:
                    self.spoiled.append(path)
                    with open(os.path.join(self.folder, path), "wb") as f:
                        f.write(b"garbled")

    code, out, err, rb = fake("--json", board=Flaky)
    assert code == 0, err
    assert "flash: 1 file(s) did not verify (lib.new/mast/wire.mpy: SHA-256 " in err
    assert "sending them again" in err
    assert tree(fake.folder)["lib/mast/wire.mpy"] == LOCAL["lib/mast/wire.mpy"]
    assert "lib/mast/wire.mpy" in json.loads(out)["verified"]


def test_a_file_that_is_wrong_after_the_flash_fails_it(fake):
    class Spoils(FakeRawBoard):
        def after(self, script):
            if script == flashplan.switch_script():  # /lib switched: one file goes bad
                with open(os.path.join(self.folder, "lib", "board", "store.mpy"), "wb") as f:
                    f.write(b"bit rot")

    code, out, err, rb = fake(board=Spoils)
    assert code == 1 and out == ""
    assert ("mast: flashing failed: after the flash, 1 file(s) do not verify: "
            "lib/board/store.mpy (SHA-256 ") in err, err
    assert rb.resets == 0  # not restarted as if all were well
    assert open(os.path.join(fake.folder, "mast.maint")).read() == cmd_flash.MAINT_REASON


def test_an_unexpected_file_in_the_staged_lib_fails_the_check(fake):
    class Stray(FakeRawBoard):
        def after(self, script):
            if script.startswith(flashplan._PRELUDE) and "print('C', d)" in script:  # stage_script
                with open(os.path.join(self.folder, "lib.new", "board", "stray.mpy"), "wb") as f:
                    f.write(b"stray")

    code, out, err, rb = fake(board=Stray)
    assert code == 1 and out == ""
    assert "mast: flashing failed: /lib.new does not verify: lib.new/board/stray.mpy (not expected)" in err, err
    files = tree(fake.folder)
    assert files["lib/board/main.mpy"] == b"old main"  # never switched: the old /lib stays
    assert not any(p.startswith("lib.new/") for p in files)
    assert "old firmware is still in place" in err


def test_a_board_with_too_little_free_flash_is_refused_before_anything_is_written(fake):
    class Full(FakeRawBoard):
        free = 10 * 1024

    before = tree(fake.folder)
    code, out, err, rb = fake(board=Full)
    assert code == 1 and out == ""
    assert err.splitlines()[-1].startswith("mast: the board has 10 KB free; staging the firmware "
                                           "needs about 16 KB; remove files from the board"), err
    assert tree(fake.folder) == before  # no mast.maint, no lib.new, nothing


def test_a_board_that_comes_back_with_another_version_fails_the_flash(fake):
    code, out, err, rb = fake(came_back="0.0.9")
    assert code == 1 and out == ""
    assert err.splitlines()[-1] == ("mast: the board came back with firmware 0.0.9, not %s; run mast "
                                    "flash again" % VERSION), err


def test_dry_runs_through_the_raw_repl_leave_the_boot_counter_as_it_was(fake):
    # a firmware without the `inventory` op: the dry run stops it, reads the board through its
    # raw REPL and restarts it; the counter is set one lower so that the boot leaves it as it
    # was: three dry runs in a row must not count as a boot loop (maintenance)
    with open(os.path.join(fake.folder, flashplan.BOOTS), "w") as f:
        f.write("1")
    before = tree(fake.folder)
    hello = {"version": "0.0.1", "mode": "normal", "board": "unix-sim", "platform": "linux",
             "micropython": "1.29.0"}
    for i in range(3):
        code, out, err, rb = fake("--dry-run", "--json", hello=hello)
        assert code == 0, err
        assert json.loads(out)["dry_run"] is True and rb.resets == 1
        assert "no `inventory` op" in err
    assert tree(fake.folder) == before  # mast.boots "1", no mast.maint


REFUSED_CFG = json.dumps({"name": "board1", "peers": {"hub": {
    "psk": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", "addresses": ["255.255.255.255"]}}})
REFUSED_WHAT = ("mast: the board's configuration (/mast.json) does not pass this firmware's checks: "
                "peers.hub.addresses: bad item '255.255.255.255': the broadcast address is not a "
                "peer's; give the peer's own (unicast) address; the new firmware would boot without "
                "it; the flash would stop here; ")


def test_a_dry_run_through_the_raw_repl_says_the_flash_would_stop_at_the_boards_config(fake):
    # an older firmware (no `inventory` op) whose /mast.json this firmware refuses: the dry
    # run said "would copy", then the flash stopped; it says what the flash would stop with,
    # after it restarted the old firmware with its boot counter as it was
    with open(os.path.join(fake.folder, "mast.json"), "w") as f:
        f.write(REFUSED_CFG)
    with open(os.path.join(fake.folder, flashplan.BOOTS), "w") as f:
        f.write("1")
    before = tree(fake.folder)
    hello = {"version": "0.0.1", "mode": "normal", "board": "unix-sim", "platform": "linux",
             "micropython": "1.29.0"}
    code, out, err, rb = fake("--dry-run", hello=hello)
    assert code == 1 and out == ""
    assert err.splitlines()[-1] == REFUSED_WHAT + (
        "change that key on the board (mast config --port %s set or unset, then commit: it works "
        "in maintenance mode too), or flash with a configuration that passes: mast flash --config "
        "FILE" % PORT), err
    assert "left stopped" not in err and rb.resets == 1  # restarted, as a dry run that passes
    assert tree(fake.folder) == before  # mast.boots "1", no mast.maint, nothing written


def test_a_dry_run_on_a_bare_board_says_the_flash_would_stop_at_its_config(fake):
    with open(os.path.join(fake.folder, "mast.json"), "w") as f:
        f.write(REFUSED_CFG)
    before = tree(fake.folder)
    code, out, err, rb = fake("--dry-run", "--json")
    assert code == 1 and out == ""
    assert err.splitlines()[-1] == REFUSED_WHAT + (
        "remove the file (mpremote connect %s rm :mast.json) or flash with a configuration that "
        "passes: mast flash --config FILE" % PORT), err
    assert tree(fake.folder) == before and rb.resets == 0
    code, out, err, rb = fake("--dry-run", "--json", "--config", _config_file(fake.folder))
    assert code == 0, err  # with a configuration of its own, the board's is not the one kept
    assert json.loads(out)["config_checked"] is True


def _config_file(folder):
    path = os.path.join(os.path.dirname(folder), "given.json")
    with open(path, "w") as f:
        f.write('{"name": "board1"}')
    return path


def test_a_micropython_without_a2b_base64_is_refused_before_anything_is_written(fake):
    # every file goes over the port in base64: such a board could take nothing
    class NoBase64(FakeRawBoard):
        def info(self):
            return dict(FakeRawBoard.info(self), base64=False)

    before = tree(fake.folder)
    code, out, err, rb = fake(board=NoBase64)
    assert code == 1 and out == ""
    assert err.splitlines()[-1].startswith("mast: the board's MicroPython has no binascii.a2b_base64; "), err
    assert tree(fake.folder) == before


@pytest.mark.parametrize("text", ["[]", "\"board1\"", "7", "null"])
def test_a_config_file_that_is_not_a_json_object_is_refused_naming_it(tmp_path, text):
    from mast_tools import boards
    from mast_tools.errors import CommandError

    path = tmp_path / "mast.json"
    path.write_text(text)
    with pytest.raises(CommandError) as e:
        cmd_flash.load_config(str(path), boards.load("unix-sim")[0])
    assert e.value.what == "%s: a configuration is a JSON object" % path


class _BoardInLib(FakeRawBoard):
    """An ESP32 whose working directory is /lib (a script left it there, or its boot.py):
    scripts run there, and an os.chdir they make stays, as on a board ('/': the folder)."""

    cwd = "lib"

    def run(self, script, timeout=None):
        out = io.StringIO()
        here = os.getcwd()
        os.chdir(os.path.join(self.folder, self.cwd))
        try:
            with contextlib.redirect_stdout(out):
                exec(compile(script, "<board>", "exec"), {"__name__": "__main__"})
            now = os.getcwd()
            type(self).cwd = "" if now == os.sep else os.path.relpath(now, self.folder)
        finally:
            os.chdir(here)
        self.after(script)
        return out.getvalue().encode()

    def info(self):
        return dict(FakeRawBoard.info(self), platform="esp32", cwd="/" + self.cwd)


def test_a_board_whose_working_directory_is_not_its_root_gets_its_files_at_the_root(fake):
    # flash's scripts name the board's files from its root (lib/board/main.mpy): run from /lib
    # they would land in /lib/lib/..., verify there, and leave the old firmware at the root
    code, out, err, rb = fake("--json", "--board", "esp32-devkitc", board=_BoardInLib)
    assert code == 0, err
    files = tree(fake.folder)
    assert all(files[p] == d for p, d in LOCAL.items()), sorted(files)
    assert not any(p.startswith("lib/lib") or p.startswith("lib/lib.new") for p in files), sorted(files)
    assert sorted(json.loads(out)["verified"]) == sorted(LOCAL)


# ---- what the board reports is checked before anything changes (second pass) ------------------


def test_a_root_file_that_still_does_not_verify_after_its_resend_fails_the_flash_and_is_not_installed(fake):
    # boot.py.tmp lands wrong both times: the flash must stop there, the board's old boot.py
    # (and its old /lib) staying in place, not rename the broken file over it
    class Garbles(FakeRawBoard):
        def write(self, files, progress=None):
            super().write(files, progress)
            for path, data in files:
                if path == "boot.py.tmp":
                    with open(os.path.join(self.folder, path), "wb") as f:
                        f.write(b"garbled")

    code, out, err, rb = fake(board=Garbles)
    assert code == 1 and out == ""
    assert "mast: flashing failed: 1 file(s) still wrong after a retry: boot.py.tmp; the old firmware is still in place" in err, err
    files = tree(fake.folder)
    assert files["boot.py"] == b"old boot" and files["lib/board/main.mpy"] == b"old main"
    assert not any(p.startswith("lib.new/") for p in files)
    assert rb.resets == 0


@pytest.mark.parametrize("what, want", [
    ({"name": "circuitpython"}, "mast: the board runs circuitpython, not MicroPython; install MicroPython on it first"),
    ({"version": (1, 20, 0)}, "mast: the board runs MicroPython 1.20.0; the MAST firmware needs 1.22.0 or newer"),
])
def test_a_board_that_is_not_a_micropython_the_firmware_runs_on_is_refused_before_anything_is_written(fake, what, want):
    class Other(FakeRawBoard):
        def info(self):
            return dict(FakeRawBoard.info(self), **what)

    before = tree(fake.folder)
    code, out, err, rb = fake(board=Other)
    assert code == 1 and out == ""
    assert err.splitlines()[-1].startswith(want), err
    assert tree(fake.folder) == before  # no mast.maint, nothing


def test_a_running_firmware_on_too_old_a_micropython_is_refused_before_it_is_stopped(fake, monkeypatch):
    # the hello says MicroPython 1.20.0: refused from the hello alone (the raw REPL would say
    # 1.29.0 here, so only the hello's check can refuse it), before maintenance on
    monkeypatch.setattr(cmd_flash, "_maintenance_on", lambda port, baud, timeout: 1 / 0)
    hello = {"version": "0.0.1", "mode": "normal", "board": "unix-sim", "platform": "linux",
             "micropython": "1.20.0"}
    before = tree(fake.folder)
    code, out, err, rb = fake(hello=hello)
    assert code == 1 and out == ""
    assert err.splitlines()[-1].startswith("mast: the board runs MicroPython 1.20.0; the MAST firmware "
                                           "needs 1.22.0 or newer"), err
    assert tree(fake.folder) == before


def test_a_dry_run_over_the_console_checks_the_micropython_the_firmware_reports(fake, monkeypatch):
    from mast_tools import consoleclient

    class Inventory(FakeConsole):
        def call(self, op, **kw):
            assert op == "inventory"
            return {"info": {"name": "micropython", "version": [1, 20, 0], "platform": "linux",
                             "sha256": True, "base64": True},
                    "hashes": {}, "dirs": []}

    monkeypatch.setattr(consoleclient, "ConsoleClient", Inventory)
    hello = {"version": "0.0.1", "mode": "normal", "board": "unix-sim", "platform": "linux"}
    code, out, err, rb = fake("--dry-run", "--json", hello=hello)
    assert code == 1 and out == ""
    assert err.splitlines()[-1].startswith("mast: the board runs MicroPython 1.20.0; the MAST firmware "
                                           "needs 1.22.0 or newer"), err


def test_config_without_board_is_checked_against_the_definition_the_firmware_names(fake, tmp_path, monkeypatch):
    # no --board: the definition comes from the running firmware's hello; --config is then
    # checked against it (not skipped because it could not be checked on the PC first)
    monkeypatch.setattr(cmd_flash, "_maintenance_on", lambda port, baud, timeout: 1 / 0)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"name": "hub-board", "uplinks": {"lte": {"cost": 3}}}))
    hello = {"version": "0.0.1", "mode": "normal", "board": "unix-sim", "platform": "linux",
             "micropython": "1.29.0"}
    before = tree(fake.folder)
    code, out, err, rb = fake("--config", str(bad), hello=hello, definition=None)
    assert code == 1 and out == ""
    assert "flash: no --board given; the board's firmware says it is unix-sim" in err
    assert err.splitlines()[-1].startswith("mast: %s: uplinks.lte: this board has no such uplink" % bad), err
    assert tree(fake.folder) == before


def test_a_board_that_cannot_say_how_much_flash_is_free_is_flashed(fake):
    # os.statvfs missing (a port without it): free is None, not 0; the flash goes ahead
    class NoStatvfs(FakeRawBoard):
        free = None

    code, out, err, rb = fake("--json", board=NoStatvfs)
    assert code == 0, err
    assert sorted(json.loads(out)["verified"]) == sorted(LOCAL)


def test_a_board_that_comes_back_in_maintenance_mode_fails_the_flash(fake, monkeypatch):
    # the new firmware boots into maintenance (it left the flag, or it boot-loops): that is
    # not a flash that worked
    from mast_tools import consoleclient
    from mast_tools.consoleclient import NoFirmware

    class Maint(FakeConsole):
        def wait_hello(self, timeout, mode=None):
            hello = {"version": self.came_back, "mode": "maintenance", "board": "unix-sim"}
            if mode is not None and hello["mode"] != mode:
                raise NoFirmware(['{"hello": "maintenance"}'])
            return hello

    monkeypatch.setattr(consoleclient, "ConsoleClient", Maint)
    code, out, err, rb = fake()
    assert code == 1 and out == ""
    assert "mast: the board did not answer after the flash (" in err.splitlines()[-1], err


def test_a_running_firmware_is_put_in_maintenance_over_its_console_before_its_raw_repl(fake, monkeypatch):
    events = []
    monkeypatch.setattr(cmd_flash, "_maintenance_on", lambda port, baud, timeout: events.append("maintenance on"))

    class Records(FakeRawBoard):
        def enter(self):
            events.append("raw REPL")

    hello = {"version": "0.0.1", "mode": "normal", "board": "unix-sim", "platform": "linux",
             "micropython": "1.29.0"}
    code, out, err, rb = fake(board=Records, hello=hello)
    assert code == 0, err
    assert events == ["maintenance on", "raw REPL"]
    del events[:]
    code, out, err, rb = fake(board=Records, hello=dict(hello, mode="maintenance"))  # already there
    assert code == 0, err
    assert events == ["raw REPL"]


def test_a_new_firmware_that_crashes_at_boot_fails_the_flash_with_its_error(fake, monkeypatch):
    from mast_tools import consoleclient
    from mast_tools.consoleclient import NoFirmware

    class Crashes(FakeConsole):
        logs = [{"log": "crash", "error": "ImportError: no module named 'board.up_wlan'"}]

        def wait_hello(self, timeout, mode=None):
            raise NoFirmware(["Traceback (most recent call last):"])

    monkeypatch.setattr(consoleclient, "ConsoleClient", Crashes)
    code, out, err, rb = fake()
    assert code == 1 and out == ""
    assert err.splitlines()[-1] == ("mast: the new firmware crashed at boot: ImportError: no module named "
                                    "'board.up_wlan'; see `mast console --port %s`; fix the firmware and "
                                    "flash again" % PORT), err


def test_ctrl_c_once_lib_is_switched_says_the_next_flash_finishes_it(fake):
    class CtrlC(FakeRawBoard):
        def after(self, script):
            if script == flashplan.switch_script():
                raise KeyboardInterrupt

    code, out, err, rb = fake(board=CtrlC)
    assert code == 130 and out == ""
    assert err.splitlines()[-1] == "mast: flash interrupted; " + cmd_flash._AFTER_SWITCH, err
    # and a Ctrl-C in the next flash, before its switch, is not taken for one after it
    class CtrlCEarly(FakeRawBoard):
        def enter(self):
            raise KeyboardInterrupt

    code, out, err, rb = fake(board=CtrlCEarly)
    assert code == 130
    assert err.splitlines()[-1].startswith("mast: flash interrupted; the board may be left in maintenance "
                                           "mode or at its REPL, with its old firmware in place"), err


def test_a_firmware_folder_without_its_root_files_is_refused_before_the_board_is_touched(fake, tmp_path):
    fw = tmp_path / "fw"
    for pkg in flashplan.PACKAGES:
        (fw / pkg).mkdir(parents=True)
        (fw / pkg / "x.py").write_text("x = 1\n")
    before = tree(fake.folder)
    code, out, err, rb = fake("--firmware", str(fw))
    assert code == 1 and out == ""
    assert err.splitlines()[-1] == ("mast: no %s in %s: not a firmware folder; give a firmware/ folder "
                                    "(with mast/, runtime/, board/)" % (os.path.join("board", "root", "boot.py"), fw)), err
    assert tree(fake.folder) == before


def test_a_board_whose_firmware_names_a_definition_not_in_boards_needs_board(fake):
    hello = {"version": "0.0.1", "mode": "normal", "board": "my-own-board", "platform": "linux",
             "micropython": "1.29.0"}
    before = tree(fake.folder)
    code, out, err, rb = fake(hello=hello, definition=None)
    assert code == 1 and out == ""
    assert err.splitlines()[-1].startswith(
        "mast: which board is on %s? --board is needed for a board without the MAST firmware (its "
        "firmware says 'my-own-board', which is not in boards/); mast flash --board list" % PORT), err
    assert tree(fake.folder) == before


def test_a_large_file_sent_again_replaces_what_landed_and_is_not_appended_to_it(tmp_path):
    # a file over several commands (more than CHUNK bytes) that did not verify is sent once
    # more over what landed: the first command must truncate it
    data = bytes(range(256)) * 20  # 5120 bytes: three commands
    (tmp_path / "big.mpy").write_bytes(b"what landed the first time")
    here = os.getcwd()
    os.chdir(str(tmp_path))
    try:
        for cmd, n, done in flashplan.write_commands([("big.mpy", data)]):
            exec(compile(cmd, "<board>", "exec"), {"__name__": "__main__"})
    finally:
        os.chdir(here)
    assert (tmp_path / "big.mpy").read_bytes() == data


def test_the_board_info_is_its_last_dict_line_whatever_the_board_printed_before():
    # a board's boot.py or a firmware stopping may print JSON log lines before the info line
    out = (b'{"log": "boot", "ok": true, "err": null}\r\n'
           b"{'name': 'micropython', 'version': (1, 24, 1), 'platform': 'esp32'}\r\n")
    info = flashplan.parse_info(out)
    assert info["version"] == (1, 24, 1) and info["platform"] == "esp32"


def test_a_config_is_written_as_utf8_without_escapes():
    # the board's json takes a \ud83d\ude00 pair apart: characters go as UTF-8
    cfg = {"name": "caf\u00e9 \U0001f600"}
    assert flashplan.config_bytes(cfg) == '{"name": "caf\u00e9 \U0001f600"}\n'.encode("utf-8")
    assert b"\\u" not in flashplan.config_bytes(cfg)


def test_a_dry_run_that_stopped_an_older_firmware_and_then_failed_says_how_to_start_it(fake):
    # no `inventory` op: the dry run stops the firmware to read the board through its raw REPL;
    # refused there, it must say that the firmware is left stopped and how to restart it
    class NoBase64(FakeRawBoard):
        def info(self):
            return dict(FakeRawBoard.info(self), base64=False)

    hello = {"version": "0.0.1", "mode": "normal", "board": "unix-sim", "platform": "linux",
             "micropython": "1.29.0"}
    code, out, err, rb = fake("--dry-run", board=NoBase64, hello=hello)
    assert code == 1 and out == ""
    assert err.splitlines()[-1] == (
        "mast: the board's MicroPython has no binascii.a2b_base64; use a MicroPython build with "
        "binascii (every official one has it); the board's firmware is left stopped: start it "
        "again: mast reset --port %s" % PORT), err


def test_a_firmware_that_does_not_list_its_files_in_time_fails_the_dry_run_and_is_left_running(fake, monkeypatch):
    from mast_tools import consoleclient

    class Slow(FakeConsole):
        def call(self, op, **kw):
            raise TimeoutError("no reply to %s in 60 s" % op)

    monkeypatch.setattr(consoleclient, "ConsoleClient", Slow)
    hello = {"version": "0.0.1", "mode": "normal", "board": "unix-sim", "platform": "linux",
             "micropython": "1.29.0"}
    before = tree(fake.folder)
    code, out, err, rb = fake("--dry-run", hello=hello)
    assert code == 1 and out == ""
    assert err.splitlines()[-1] == ("mast: the board did not list its files (no reply to inventory in "
                                    "60 s); try again"), err
    assert tree(fake.folder) == before and rb.resets == 0


def test_a_dry_run_on_a_bare_board_leaves_it_as_it_was_not_reset(fake):
    # no firmware runs: the dry run reads the board through its raw REPL and leaves it there,
    # writing nothing (no boot counter) and restarting nothing
    before = tree(fake.folder)
    code, out, err, rb = fake("--dry-run", "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["dry_run"] is True and doc["bare"] is True and doc["firmware_kept_running"] is False
    assert tree(fake.folder) == before and rb.resets == 0


def test_only_the_files_that_did_not_verify_are_sent_again(fake):
    class Flaky(FakeRawBoard):
        sends = []

        def write(self, files, progress=None):
            self.sends.append(sorted(p for p, _ in files))
            super().write(files, progress)
            if [x for x in self.sends if "lib.new/board/store.mpy" in x] == [self.sends[-1]]:
                # the staged /lib's first send: store.mpy lands wrong
                with open(os.path.join(self.folder, "lib.new", "board", "store.mpy"), "wb") as f:
                    f.write(b"garbled")

    code, out, err, rb = fake("--json", board=Flaky)
    assert code == 0, err
    staged = [s for s in Flaky.sends if any(p.startswith("lib.new/") for p in s)]
    assert len(staged) == 2 and len(staged[0]) == 3 and staged[1] == ["lib.new/board/store.mpy"], Flaky.sends
    assert tree(fake.folder)["lib/board/store.mpy"] == LOCAL["lib/board/store.mpy"]


def test_a_firmware_older_than_the_reason_field_is_still_put_in_maintenance(monkeypatch, capsys):
    # `maintenance on` with a reason: a firmware that refuses the field gets it without
    from mast_tools import consoleclient
    from mast_tools.consoleclient import BoardError

    calls = []

    class Older(FakeConsole):
        def call(self, op, **kw):
            calls.append((op, kw))
            if "reason" in kw:
                raise BoardError("unexpected field reason")
            return {}

        def wait_hello(self, timeout, mode=None):
            return {"version": "0.0.1", "mode": mode, "board": "unix-sim"}

    monkeypatch.setattr(consoleclient, "ConsoleClient", Older)
    cmd_flash._maintenance_on(PORT, 115200, 30)
    assert calls == [("maintenance", {"state": "on", "reason": cmd_flash.MAINT_REASON}),
                     ("maintenance", {"state": "on"})]
    assert "did not take maintenance on" not in capsys.readouterr().err


def test_board_paths_with_spaces_are_read_whole_from_the_hash_listing():
    # a user's library in /lib may have spaces in its names: kept, not lost from the new /lib
    files, dirs = flashplan.parse_hashes(b"D lib\nD lib/my lib\nH 00ff lib/my lib/a b.py\nN lib/x y.py\n")
    assert files == {"lib/my lib/a b.py": "00ff", "lib/x y.py": None}
    assert dirs == {"lib", "lib/my lib"}


def test_an_empty_folder_with_a_space_in_its_name_in_lib_is_kept_by_a_flash(fake):
    # another library's folder, empty, its name with a space: the new /lib has it too
    os.makedirs(os.path.join(fake.folder, "lib", "my lib"))
    code, out, err, rb = fake("--json")
    assert code == 0, err
    assert os.path.isdir(os.path.join(fake.folder, "lib", "my lib"))
