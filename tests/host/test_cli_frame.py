"""The `mast` command frame: exit codes, `mast: <what>; <hint>` errors, the --json contract."""

import errno
import json
import os
import select
import signal
import subprocess
import sys

import pytest

HOST_TOOLS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "host-tools")
from mast_tools import cli
from mast_tools.errors import CommandError

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from boardcli import restore_sigint  # noqa: E402  (Ctrl-C reaches the child as in a terminal)

_SCRIPT = os.path.join(os.path.dirname(sys.executable), "mast")
# The installed console script if there is one, else the same main() through `python -m`.
MAST = [_SCRIPT] if os.path.exists(_SCRIPT) else [sys.executable, "-m", "mast_tools"]


def mast(*args, timeout=60):
    paths = [HOST_TOOLS] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(paths))
    return subprocess.run(MAST + list(args), capture_output=True, text=True, timeout=timeout,
                          env=env)


def test_unknown_subcommand_is_a_usage_error_with_exit_2():
    r = mast("frobnicate")
    assert r.returncode == 2
    assert "invalid choice: 'frobnicate'" in r.stderr and r.stdout == ""


@pytest.mark.parametrize("cmd", [["endpoint", "--config", "x.json"], ["presence", "--config", "x.json"],
                                 ["linkemu", "--link", "eth=127.0.0.2:0"]])
@pytest.mark.parametrize("value", ["0", "-1", "soon", "inf", "nan"])
def test_a_duration_that_is_not_a_positive_number_is_a_usage_error(cmd, value):
    r = mast(*(cmd + ["--duration", value]))
    assert r.returncode == 2 and r.stdout == ""
    assert "argument --duration: invalid seconds value: '%s'" % value in r.stderr


@pytest.mark.parametrize("cmd", [["reset", "--port", "/dev/ttyNONE9"], ["maintenance", "off", "--port", "/dev/ttyNONE9"],
                                 ["flash", "--port", "/dev/ttyNONE9"], ["hwtest", "--port", "/dev/ttyNONE9"]])
@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf"])
def test_a_timeout_that_is_not_a_positive_number_is_a_usage_error(cmd, value):
    # `mast reset --timeout 0` rebooted the board, then reported that it did not come back
    r = mast(*(cmd + ["--timeout=" + value]))
    assert r.returncode == 2 and r.stdout == ""
    assert "argument --timeout: invalid seconds value: '%s'" % value in r.stderr


def test_a_command_error_is_one_line_mast_what_hint_with_exit_1():
    r = mast("linkemu", "--link", "eth=127.0.0.2:0,delay=soon")
    assert r.returncode == 1
    assert r.stdout == ""
    assert r.stderr.startswith("mast: bad link spec for eth: delay: ")
    assert r.stderr.count("\n") == 1 and "; " in r.stderr
    assert "Traceback" not in r.stderr


def test_a_bad_scenario_file_names_the_step_and_field(tmp_path):
    scenario = tmp_path / "s.json"
    scenario.write_text(json.dumps([{"at": 0, "link": "eth", "set": {"cut": True}},
                                    {"at": "later", "link": "eth", "set": {"cut": False}}]))
    r = mast("linkemu", "--link", "eth=127.0.0.2:0", "--scenario", str(scenario))
    assert r.returncode == 1
    assert r.stderr.startswith("mast: bad scenario ") and "step 2: at" in r.stderr
    assert "Traceback" not in r.stderr


def test_json_output_is_exactly_one_document_on_stdout():
    r = mast("linkemu", "--link", "eth=127.0.0.2:0,delay=2", "--link", "wifi=127.0.0.3:0",
             "--duration", "0.3", "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["ended_by"] == "duration"
    assert sorted(doc["links"]) == ["eth", "wifi"]
    assert doc["links"]["eth"]["counters"]["up"]["dropped"]["cut"] == 0
    assert doc["links"]["eth"]["address"].startswith("127.0.0.2:")
    assert "eth: uplink sends to 127.0.0.1:" in r.stderr  # the addresses go to stderr


def test_ctrl_c_ends_linkemu_with_its_counters():
    env = dict(os.environ, PYTHONPATH=HOST_TOOLS)
    proc = subprocess.Popen(MAST + ["linkemu", "--link", "eth=127.0.0.2:0", "--json"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=restore_sigint)
    try:
        ready, _, _ = select.select([proc.stderr], [], [], 60)
        assert ready and "uplink sends to" in proc.stderr.readline()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert json.loads(out)["ended_by"] == "interrupt"


def test_every_subcommand_help_shows_an_example_and_json():
    for name in cli._COMMANDS:
        r = mast(name, "--help")
        assert r.returncode == 0
        assert "example:" in r.stdout and "--json" in r.stdout, name


def _fake(monkeypatch, exc):
    def do_fake(args):
        raise exc

    monkeypatch.setattr(cli, "_COMMANDS", {"fake": (do_fake, lambda p: None, "raises")})


def test_main_turns_a_command_error_into_exit_1(monkeypatch, capsys):
    _fake(monkeypatch, CommandError("the board did not answer", "press its reset button"))
    assert cli.main(["fake"]) == 1
    out, err = capsys.readouterr()
    assert (out, err) == ("", "mast: the board did not answer; press its reset button\n")


def test_main_exits_130_quietly_on_ctrl_c(monkeypatch, capsys):
    _fake(monkeypatch, KeyboardInterrupt())
    assert cli.main(["fake"]) == 130
    assert capsys.readouterr() == ("", "")


def test_main_turns_an_os_error_into_a_message_with_a_hint(monkeypatch, capsys):
    _fake(monkeypatch, OSError(errno.EADDRINUSE, "Address already in use"))
    assert cli.main(["fake"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("mast: Address already in use; another program is using that")
    _fake(monkeypatch, PermissionError(errno.EACCES, "Permission denied", "/dev/ttyUSB0"))
    assert cli.main(["fake"]) == 1
    assert capsys.readouterr().err.startswith("mast: Permission denied: /dev/ttyUSB0; ")
    # a symlink or rename names both paths: the second is often the one the user gave
    _fake(monkeypatch, FileNotFoundError(errno.ENOENT, "No such file or directory", "/dev/pts/4", None,
                                         "/nonexistent/dir/x"))
    assert cli.main(["fake"]) == 1
    assert capsys.readouterr().err.startswith("mast: No such file or directory: /dev/pts/4 -> "
                                              "/nonexistent/dir/x; check the path")


def test_missing_subcommand_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main([])
    assert exit_.value.code == 2


def test_progress_off_a_terminal_is_one_line_per_milestone_and_always_the_last(monkeypatch, capsys):
    from mast_tools import output

    monkeypatch.setattr(output, "_state", {"open": False, "last_plain": 0.0, "milestone": None})
    output.progress("flash: 1 of 40 KB", milestone=0)
    output.progress("flash: 2 of 40 KB", milestone=0)  # the same tenth: not shown
    output.progress("flash: 5 of 40 KB", milestone=1)
    output.progress("flash: 6 of 40 KB (done)", done=True, milestone=1)  # the last: shown
    assert capsys.readouterr().err.splitlines() == ["flash: 1 of 40 KB", "flash: 5 of 40 KB",
                                                    "flash: 6 of 40 KB (done)"]


def test_a_duration_of_at_most_a_billion_seconds_is_taken_and_more_is_a_usage_error(tmp_path):
    # (the bound is inclusive: --duration 1e9 runs; the command then fails on its missing config)
    missing = str(tmp_path / "missing.json")
    r = mast("endpoint", "--config", missing, "--duration", "1e9")
    assert r.returncode == 1 and "invalid seconds value" not in r.stderr
    r = mast("endpoint", "--config", missing, "--duration", "1000000001")
    assert r.returncode == 2 and "argument --duration: invalid seconds value: '1000000001'" in r.stderr


def test_progress_off_a_terminal_without_milestones_is_at_most_a_line_every_5_s_and_the_last(monkeypatch, capsys):
    from mast_tools import output

    class Clock:
        now = 1000.0

        def monotonic(self):
            return self.now

    clock = Clock()
    monkeypatch.setattr(output, "time", clock)
    monkeypatch.setattr(output, "_state", {"open": False, "last_plain": 0.0, "milestone": None})
    output.progress("linkemu: 1")
    clock.now += 4.9
    output.progress("linkemu: 2")  # under 5 s after the last line: not shown
    clock.now += 0.1
    output.progress("linkemu: 3")
    clock.now += 1
    output.progress("linkemu: 4 (done)", done=True)  # the last: shown at once
    assert capsys.readouterr().err.splitlines() == ["linkemu: 1", "linkemu: 3", "linkemu: 4 (done)"]


def test_a_new_piece_of_work_shows_its_first_milestone_again(monkeypatch, capsys):
    # (a piece of work starts at its own first tenth, whatever tenth the last one ended in)
    from mast_tools import output

    monkeypatch.setattr(output, "_state", {"open": False, "last_plain": 0.0, "milestone": None})
    output.progress("first: 0%", milestone=0)
    output.reset_progress()
    output.progress("second: 0%", milestone=0)
    output.progress("second: 5%", milestone=0)
    assert capsys.readouterr().err.splitlines() == ["first: 0%", "second: 0%"]


def test_on_a_terminal_the_result_and_a_log_line_start_below_the_progress_line(monkeypatch, capsys):
    from mast_tools import output

    monkeypatch.setattr(output, "_state", {"open": False, "last_plain": 0.0, "milestone": None})
    monkeypatch.setattr(output, "_isatty", lambda stream: True)
    output.progress("flash: 10%")
    output.emit(None, {"ok": True}, "done")
    output.progress("flash: 20%")
    output.log("a note")
    output.progress("flash: 30%")
    output.progress("flash: 100%", done=True)
    output.emit(None, {"ok": True}, "again")
    got = capsys.readouterr()
    assert got.err == ("\rflash: 10%\x1b[K\n\rflash: 20%\x1b[K\na note\n"
                       "\rflash: 30%\x1b[K\rflash: 100%\x1b[K\n")  # no blank line after the last
    assert got.out == "done\nagain\n"


def test_a_reader_that_went_away_ends_the_command_quietly_with_exit_1():
    # `mast genkey | head -c0`: the pipe's reader is gone before mast writes; no message, no
    # traceback on stderr (it was "mast: Broken pipe; check the path ..." plus Python's own)
    paths = [HOST_TOOLS] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(paths))
    r, w = os.pipe()
    os.close(r)
    try:
        p = subprocess.run(MAST + ["genkey", "--json"], stdout=w, stderr=subprocess.PIPE,
                           text=True, timeout=60, env=env)
    finally:
        os.close(w)
    assert (p.returncode, p.stderr) == (1, "")


def test_each_os_error_gets_the_hint_for_its_errno(monkeypatch, capsys):
    for exc, hint in (
        (PermissionError(errno.EACCES, "Permission denied", "/dev/ttyUSB0"),
         "check the permissions (serial ports usually need the dialout group)"),
        # (a folder: mast sim-board --dir /root/fs was told of the dialout group)
        (PermissionError(errno.EACCES, "Permission denied", "/root/fs"),
         "this user may not use that path (ls -ld it); give one of your own, e.g. under your home"),
        (PermissionError(errno.EPERM, "Operation not permitted"),
         "check the permissions, or run it as a user allowed to do this"),
        (OSError(errno.EBUSY, "Device or resource busy", "/dev/ttyACM0"),
         "another program holds it; close it (another mpremote or serial console?)"),
        (ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused"),
         "nothing is listening there; start it first"),
        (OSError(errno.EIO, "Input/output error"), "check the path, device or address; try again"),
        # (a full or read-only disk got "check the path, device or address; try again")
        (OSError(errno.ENOSPC, "No space left on device", "dist/mast.ipk"),
         "the disk is full: make room (df -h shows it), or write elsewhere"),
        (OSError(errno.EROFS, "Read-only file system", "dist/mast.ipk"),
         "that filesystem is read-only: write elsewhere"),
    ):
        _fake(monkeypatch, exc)
        assert cli.main(["fake"]) == 1
        out, err = capsys.readouterr()
        assert out == "" and err.endswith("; %s\n" % hint) and err.count("\n") == 1, exc


@pytest.mark.parametrize("cmd, want", [
    (["config", "validate", "{f}"], "mast: {f} nests objects and lists too deep for a configuration; fix the file\n"),
    (["flash", "--config", "{f}", "--board", "unix-sim", "--dry-run"],
     "mast: {f} nests objects and lists too deep for a configuration; fix the file\n"),
    (["flash", "--board", "{f}", "--dry-run"],
     "mast: board definition {f} nests objects and lists too deep; fix the file (docs/HARDWARE.md)\n"),
    (["linkemu", "--link", "eth=127.0.0.2:0", "--scenario", "{f}"],
     "mast: scenario {f} is not valid JSON: it nests lists and objects too deep; write a JSON list "
     "of steps, see `mast linkemu --help`\n"),
    (["presence", "--config", "{f}"],
     "mast: presence config {f}: file: {f} nests objects and lists too deep for a presence "
     "configuration; fix the file; the format is in `mast presence --help`\n"),
])
def test_a_file_that_nests_too_deep_is_an_error_naming_it_not_a_traceback(tmp_path, cmd, want):
    # (each was a RecursionError traceback; mast endpoint and mastd's own file said so already)
    f = tmp_path / "deep.json"
    f.write_text("[" * 100000 + "]" * 100000)
    r = mast(*[a.replace("{f}", str(f)) for a in cmd])
    assert (r.returncode, r.stdout, r.stderr) == (1, "", want.replace("{f}", str(f)))


def test_a_sim_board_whose_mast_json_nests_too_deep_is_refused_not_a_traceback(tmp_path):
    (tmp_path / "mast.json").write_text("[" * 100000 + "]" * 100000)
    r = mast("sim-board", "--dir", str(tmp_path), "--mast-port", "17999")
    assert (r.returncode, r.stdout, r.stderr) == (1, "", "mast: %s is not a JSON object; fix or remove it\n"
                                                  % (tmp_path / "mast.json"))
