"""`mast hwtest`: it runs the hardware suite (tests/hardware) under pytest and reports each
test in a line; and the status document the suite checks is the one docs/CONSOLE.md shows."""

import os
import subprocess
import sys

import pytest

import boardcli  # noqa: F401  (host-tools on sys.path)
from boardcli import ROOT, mast

from mast_tools.cmd_hwtest import parse_junit, report_text

sys.path.insert(0, os.path.join(ROOT, "tests", "hardware"))
import status_schema  # noqa: E402

JUNIT = """<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest" errors="0"
failures="1" skipped="1" tests="3" time="9.1"><testcase classname="test_hw_console" name="test_hello"
time="1.234"/><testcase classname="test_hw_network" name="test_failover" time="0.2"><skipped
type="pytest.skip" message="the board has 1 uplink up (wifi): nothing to fail over to">x</skipped>
</testcase><testcase classname="test_hw_flash" name="test_reflash" time="3.0"><failure
message="AssertionError: copied 1 file">long text</failure></testcase></testsuite></testsuites>"""


def test_the_report_reads_pytest_s_junit_xml(tmp_path):
    f = tmp_path / "j.xml"
    f.write_text(JUNIT)
    tests = parse_junit(str(f))
    assert [(t["name"], t["outcome"], t["seconds"]) for t in tests] == [
        ("test_hello", "passed", 1.2), ("test_failover", "skipped", 0.2), ("test_reflash", "failed", 3.0)]
    assert tests[2]["message"] == "AssertionError: copied 1 file"
    doc = {"port": "/dev/ttyUSB0", "board": "esp32-devkitc", "tests": tests, "seconds": 9.4,
           "counts": {"passed": 1, "failed": 1, "error": 0, "skipped": 1}}
    lines = report_text(doc).splitlines()
    assert lines[0] == "hardware tests on /dev/ttyUSB0 (esp32-devkitc):"
    assert lines[2].startswith("  skip test_failover") and lines[2].endswith(
        "(the board has 1 uplink up (wifi): nothing to fail over to)")
    assert lines[-1] == "1 passed, 1 failed, 1 skipped in 9 s"


def test_the_status_table_in_the_console_doc_is_the_schema_the_suite_checks():
    with open(os.path.join(ROOT, "docs", "CONSOLE.md")) as f:
        doc = f.read()
    assert status_schema.markdown() in doc


def test_the_schema_check_names_what_is_missing_wrong_or_undocumented():
    st = {"board": "b", "firmware": "0.1.0", "mode": "normal", "uptime_ms": 5, "mem": {},
          "config": {"source": "mast.json", "warning": None, "uncommitted": False, "unapplied": "no"},
          "boot": {"unstable_boots": 0, "stable": True, "reset_cause": None}, "watchdog": None,
          "uplinks": {"eth": {"kind": "sim", "state": "up", "addr": "127.0.0.2", "admin": True,
                              "error": None, "attempts": 1, "failures": 0, "ups": 1}},
          "associations": [{"peer": "pc", "state": "established", "primary": None, "paths": [{}],
                            "remotes": []}],
          "counters": {}, "runtime": {}, "console": {"requests": 1, "errors": 0, "lines_dropped": 0}, "extra": 1}
    assert status_schema.check(st) == [
        "config.unapplied: 'no' is not bool", "uplinks.eth.up_ms: missing",
        "associations.0.paths.0.path: missing", "associations.0.paths.0.state: missing",
        "associations.0.paths.0.rtt_ms: missing", "extra: not documented"]


def test_mast_hwtest_runs_the_suite_on_a_simulated_board_and_reports(micropython):
    r = mast("hwtest", "-k", "hello or bad_console", "--json", timeout=180)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.doc["counts"] == {"passed": 2, "failed": 0, "error": 0, "skipped": 0}
    assert sorted(t["name"] for t in r.doc["tests"]) == [
        "test_bad_console_input_is_answered_with_errors_and_changes_nothing",
        "test_hello_reports_the_expected_version"]
    assert r.doc["port"] is None and r.doc["board"] == "unix-sim"


def test_mast_hwtest_prints_one_line_per_test_as_it_runs_and_keeps_pytest_off_the_screen(micropython):
    from boardcli import env_for_mast

    proc = subprocess.Popen([sys.executable, "-m", "mast_tools", "hwtest", "-k",
                             "hello or bad_console or reflash"], stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
                            env=env_for_mast())
    try:
        assert proc.stdout.readline() == "hardware tests on a simulated board (unix-sim):\n"
        first = proc.stdout.readline()
        running = proc.poll() is None  # the first test's line came while the suite went on
        out, err = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err[-2000:]
    assert first.startswith("  ok   test_") and first.rstrip().endswith(" s"), first
    assert running
    lines = [first] + out.splitlines(True)
    assert [x.split()[1] for x in lines[:3]] == [x.split()[1] for x in lines[:3] if x.startswith("  ok ")]
    assert len([x for x in lines if x.startswith("  ok   test_")]) == 3
    assert lines[-1].startswith("3 passed, 0 failed, 0 skipped in ")
    # pytest's own output is in its log, not on the screen
    assert "PASSED" not in err and "=====" not in err and "passed in" not in err
    assert err.startswith("mast hwtest: the suite in ") and err.count("\n") == 1, err


def test_mast_hwtest_on_a_missing_or_busy_port_is_a_one_line_error(tmp_path, micropython):
    from boardcli import holding, sim_board

    r = mast("hwtest", "--port", str(tmp_path / "ttyUSB7"), "--board", "esp32-devkitc", "-k", "hello",
             timeout=120)
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr.startswith("mast: no serial port %s; " % (tmp_path / "ttyUSB7"))
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    with sim_board(str(tmp_path / "board")) as sb:
        with holding(sb.device) as pid:
            r = mast("hwtest", "--port", sb.device, "--board", "unix-sim", timeout=120)
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr.startswith("mast: %s is busy: pid %d (" % (sb.device, pid)), r.stderr
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr


class _Report:
    """What pytest hands hwtest_report for one phase of a test."""

    def __init__(self, when, outcome, longrepr=None, duration=0.5):
        self.nodeid = "tests/hardware/test_hw_console.py::test_hello"
        self.when, self.longrepr, self.duration = when, longrepr, duration
        self.failed, self.skipped = outcome == "failed", outcome == "skipped"


def test_each_test_s_live_line_says_error_for_a_failed_setup_and_adds_up_its_phases():
    from types import SimpleNamespace

    from mast_tools.hwtest_report import line_for

    crash = SimpleNamespace(reprcrash=SimpleNamespace(message="OSError: the port went away\nmore"))
    assert line_for([_Report("setup", "failed", crash), _Report("teardown", "passed")]) == {
        "name": "test_hello", "file": "test_hw_console", "outcome": "error", "seconds": 1.0,
        "message": "OSError: the port went away"}
    assert line_for([_Report("setup", "passed"), _Report("call", "failed", crash),
                     _Report("teardown", "passed")])["outcome"] == "failed"
    skipped = line_for([_Report("setup", "skipped", ("conftest.py", 3, "Skipped: no --peer-host")),
                        _Report("teardown", "passed")])
    assert (skipped["outcome"], skipped["message"]) == ("skipped", "no --peer-host")
    assert line_for([_Report(w, "passed") for w in ("setup", "call", "teardown")])["seconds"] == 1.5


def test_the_total_counts_tests_that_errored_as_failed():
    from mast_tools.cmd_hwtest import total_line

    doc = {"counts": {"passed": 4, "failed": 1, "error": 2, "skipped": 1}, "seconds": 12.2}
    assert total_line(doc) == "4 passed, 3 failed, 1 skipped in 12 s"


_FAKE_CONFTEST = """
def pytest_addoption(parser):
    for name in ("--board", "--port", "--peer-host"):
        parser.addoption(name)
"""
_FAKE_TESTS = """
import os
import time

import pytest


def test_passes():
    pass


def test_fails():
    assert 1 == 2, "the board said no"


def test_options(request):
    want = (os.environ.get("FAKE_SUITE_PEER"), "unix-sim")
    assert (request.config.getoption("--peer-host"), request.config.getoption("--board")) == want


def test_hangs():
    if os.environ.get("FAKE_SUITE_HANGS"):
        time.sleep(30)


@pytest.fixture
def a_board():  # (as the real suite's simulated board: stopped in its teardown)
    with open(os.environ["FAKE_SUITE_TORN_DOWN"], "w") as f:
        f.write("started")
    yield
    with open(os.environ["FAKE_SUITE_TORN_DOWN"], "w") as f:
        f.write("stopped")


def test_stuck_with_a_board(a_board):
    time.sleep(30)
"""


@pytest.fixture
def fake_suite(tmp_path, monkeypatch, capsys):
    """do_hwtest, in process, on a small suite of our own: run(select, timeout=120) ->
    (CommandError or None, stdout's JSON document or None, stderr)."""
    import argparse
    import json

    from mast_tools import cmd_hwtest
    from mast_tools.errors import CommandError

    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "conftest.py").write_text(_FAKE_CONFTEST)
    (suite / "test_fake.py").write_text(_FAKE_TESTS)
    monkeypatch.setattr(cmd_hwtest, "suite_dir", lambda: str(suite))

    def run(select, timeout=120.0, peer_host=None):
        args = argparse.Namespace(port=None, baud=None, board=None, peer_host=peer_host, select=select,
                                  timeout=timeout, json=True)
        try:
            cmd_hwtest.do_hwtest(args)
            error = None
        except CommandError as e:
            error = e
        out, err = capsys.readouterr()
        return error, (json.loads(out) if out.strip() else None), err

    return run


def test_a_failed_hardware_test_fails_mast_hwtest_and_keeps_pytest_s_log(fake_suite):
    error, doc, err = fake_suite("passes or fails")
    assert error is not None and error.what == "1 of 2 hardware tests failed"
    assert doc["counts"] == {"passed": 1, "failed": 1, "error": 0, "skipped": 0}
    assert os.path.isfile(doc["log"]) and "the board said no" in open(doc["log"]).read()
    assert "  FAIL test_fails" in err and "(AssertionError: the board said no" in err


def test_a_selection_that_runs_no_test_fails_mast_hwtest(fake_suite):
    error, doc, err = fake_suite("no_such_test")
    assert error is not None and error.what.startswith("no hardware test ran")


def test_a_suite_that_runs_past_its_timeout_is_stopped_and_said(fake_suite, monkeypatch):
    monkeypatch.setenv("FAKE_SUITE_HANGS", "1")
    error, doc, err = fake_suite("hangs", timeout=2.0)
    assert error is not None and error.what == "the hardware tests took longer than 2 s"


def test_a_suite_stopped_at_its_timeout_tears_its_fixtures_down(fake_suite, monkeypatch, tmp_path):
    # (pytest was killed outright: the simulated board the suite had started was left running,
    # holding its UDP ports, and the next mast hwtest could not start one)
    assert _stuck_board_at_its_timeout(fake_suite, monkeypatch, tmp_path) == "stopped"


def _stuck_board_at_its_timeout(fake_suite, monkeypatch, tmp_path):
    """The fake suite's stuck test (a board fixture) run to mast hwtest's timeout: what its
    fixture's mark says then ("started": never torn down; "stopped": torn down)."""
    mark = tmp_path / "torn-down"
    monkeypatch.setenv("FAKE_SUITE_TORN_DOWN", str(mark))
    # (a loaded machine may take longer than the timeout to start pytest and reach the board:
    # then nothing was set up to tear down, and the run is made again with a longer timeout)
    for timeout in (3, 10, 25):
        error, doc, err = fake_suite("stuck_with_a_board", timeout=float(timeout))
        assert error is not None and error.what == "the hardware tests took longer than %d s" % timeout
        if mark.exists():
            break
    return mark.read_text()


def test_a_suite_started_with_sigint_ignored_is_still_torn_down_at_its_timeout(fake_suite, monkeypatch, tmp_path):
    # (a mast hwtest in the background of a script inherits SIGINT ignored, and so did its
    # pytest: the stop's SIGINT did nothing, pytest was killed, its simulated board left running)
    import signal

    old = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        assert _stuck_board_at_its_timeout(fake_suite, monkeypatch, tmp_path) == "stopped"
    finally:
        signal.signal(signal.SIGINT, old)


def test_the_suite_gets_the_peer_host_and_the_board(fake_suite, monkeypatch):
    monkeypatch.setenv("FAKE_SUITE_PEER", "192.0.2.7")
    error, doc, err = fake_suite("options", peer_host="192.0.2.7")
    assert error is None and doc["counts"]["passed"] == 1, err


def test_the_report_tells_an_error_from_a_failure(tmp_path):
    f = tmp_path / "j.xml"
    f.write_text(JUNIT.replace('<failure\nmessage="AssertionError: copied 1 file">long text</failure>',
                               '<error message="failed on setup with OSError: port gone">x</error>'))
    tests = parse_junit(str(f))
    assert (tests[2]["outcome"], tests[2]["message"]) == ("error", "failed on setup with OSError: port gone")


def test_an_unknown_board_is_one_line_before_the_suite_starts(tmp_path):
    # (it ran the whole suite, each test an ERR with SimBoardError's repr, "9 of 9 failed")
    r = mast("hwtest", "--board", "nosuch")
    assert r.returncode == 1
    assert r.stdout == ""
    assert r.stderr.startswith("mast: no board definition 'nosuch'; pick one of: "), r.stderr
    assert r.stderr.count("\n") == 1
    r = mast("hwtest", "--board", "nosuch", "--port", str(tmp_path / "ttyNONE"))
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr.startswith("mast: no board definition 'nosuch'"), r.stderr


def test_a_failed_mast_command_in_the_suite_is_reported_by_its_error_not_its_progress():
    # (the report's one line was the command's first stderr line: "flash: the board runs MAST
    # firmware ...", not why it failed)
    import importlib.util

    spec = importlib.util.spec_from_file_location("hw_conftest", os.path.join(ROOT, "tests", "hardware",
                                                                             "conftest.py"))
    hw = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hw)
    r = subprocess.CompletedProcess(["mast"], 1, stdout="", stderr=(
        "flash: the board runs MAST firmware 0.1.0 (unix-sim)\n"
        "mast: rpi-pico-w is for rp2 boards, but this board runs MicroPython on linux; use --board unix-sim\n"))
    text = hw.failure_text(("flash", "--board", "rpi-pico-w"), r)
    assert text.splitlines()[0] == ("mast flash --board rpi-pico-w failed (1): mast: rpi-pico-w is for rp2 "
                                    "boards, but this board runs MicroPython on linux; use --board unix-sim")
    assert text.endswith(r.stderr)
