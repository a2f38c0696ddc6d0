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
    """flash(*args, board=FakeRawBoard subclass, hello=None) -> (exit code, stdout, stderr)
    against the folder; `hello` is what the console answers first (None: a bare board)."""
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

    def flash(*args, board=FakeRawBoard, hello=None, came_back=VERSION):
        rb = type("Board", (board,), {"folder": folder, "resets": 0})
        monkeypatch.setattr(boardrepl, "RawBoard", rb)
        monkeypatch.setattr(FakeConsole, "came_back", came_back)
        monkeypatch.setattr(cmd_flash, "_hello", lambda port, baud: hello)
        code = cli.main(["flash", "--port", PORT, "--board", "unix-sim"] + list(args))
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
