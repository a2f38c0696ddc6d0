"""`mast hwtest`: run the hardware test suite (tests/hardware) against a board, and say in a
few lines how it went.

The suite is pytest's: this runs `python -m pytest <suite> --port P --board B` in a child
process and prints one line per test as each ends (a plugin of ours, hwtest_report.py, hands
them over a pipe), then a total; the JUnit XML pytest writes is the final record (--json).
pytest's own output goes to a log file, named on failure. The suite ships with mast
(mast_tools/bundle/hardware in a wheel), so an installed `mast` tests a board without the
repository. Without --port the suite starts its own simulated board (what CI runs).

Before the suite starts, the port is opened once: a missing, busy or forbidden port is a
one-line error, not a failed suite.
"""

import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET

from mast_tools.argtypes import seconds
from mast_tools.errors import CommandError
from mast_tools.output import emit, log

EXAMPLE = """\
example:
  mast hwtest --port /dev/ttyUSB0 --board olimex-esp32-poe --peer-host 192.168.1.20
  mast hwtest                       # the same tests on a simulated board
  mast hwtest --port /dev/ttyACM0 --board rpi-pico-w -k "flash or hello" --json

--peer-host: this PC's address on the board's network; the association tests run a
`mast endpoint` there (without it they are skipped on a real board). The wiring per board,
USB permissions and the expected output: docs/HARDWARE.md ("Hardware tests")."""

_INI = """[pytest]
markers =
    hardware: runs against a board (a real one with --port, else a simulated one)
"""


def argparse_hwtest(p):
    from mast_tools.serialport import baud

    p.add_argument("--port", help="the board's serial port; none: a simulated board")
    p.add_argument("--baud", type=baud, default=None, metavar="RATE",
                   help="the port's rate for the check before the suite (default 115200)")
    p.add_argument("--board", help="its board definition (default: unix-sim)")
    p.add_argument("--peer-host", metavar="IP",
                   help="an address of this PC the board can reach, for the association tests")
    p.add_argument("-k", dest="select", metavar="EXPR", help="only the tests matching EXPR (pytest -k)")
    p.add_argument("--timeout", type=seconds, default=900.0, metavar="S",
                   help="stop the suite after S seconds (default %(default)s)")
    p.epilog = EXAMPLE


def suite_dir():
    from mast_tools.firmware import HARDWARE_TESTS_DIR

    return HARDWARE_TESTS_DIR


def parse_junit(path):
    """[{"name", "outcome": passed|failed|error|skipped, "seconds", "message"}] from pytest's
    JUnit XML."""
    tests = []
    root = ET.parse(path).getroot()
    for case in root.iter("testcase"):
        outcome, message = "passed", None
        for tag in ("failure", "error", "skipped"):
            el = case.find(tag)
            if el is not None:
                outcome = {"failure": "failed", "error": "error", "skipped": "skipped"}[tag]
                message = (el.get("message") or el.text or "").strip().splitlines()
                message = message[0][:200] if message else None
                break
        tests.append({"name": case.get("name"), "file": (case.get("classname") or "").split(".")[-1],
                      "outcome": outcome, "seconds": round(float(case.get("time") or 0), 1),
                      "message": message})
    return tests


_MARK = {"passed": "ok  ", "failed": "FAIL", "error": "ERR ", "skipped": "skip"}
WIDTH = 66  # test names are padded to this (the longest in the suite is 64 characters)


def header(port, board):
    return "hardware tests on %s (%s):" % (port or "a simulated board", board)


def test_line(t, width=WIDTH):
    extra = ""
    if t["outcome"] != "passed" and t["message"]:
        extra = "  (%s)" % t["message"]
    return "  %s %-*s %5.1f s%s" % (_MARK[t["outcome"]], width, t["name"], t["seconds"], extra)


def total_line(doc):
    c = doc["counts"]
    return "%d passed, %d failed, %d skipped in %.0f s" % (
        c["passed"], c["failed"] + c["error"], c["skipped"], doc["seconds"])


def report_text(doc):
    width = max([len(t["name"]) for t in doc["tests"]] + [40])
    lines = [header(doc["port"], doc["board"])]
    lines += [test_line(t, width) for t in doc["tests"]]
    lines.append(total_line(doc))
    return "\n".join(lines)


def _precheck(args, board):
    """A one-line error before pytest starts: the port cannot be opened (missing, busy,
    permission), or --port came without --board and the board's firmware does not say."""
    from mast_tools.consoleclient import ConsoleClient, NoFirmware
    from mast_tools.serialport import BAUDRATE

    baud = args.baud or BAUDRATE
    con = ConsoleClient(args.port, baudrate=baud)  # CommandError: missing, busy, forbidden
    try:
        if board:
            return board
        try:
            name = con.hello(3.0).get("board")
        except NoFirmware:
            name = None
    finally:
        con.close()
    from mast_tools import boards

    if name and boards.path_of(name):
        log("mast hwtest: no --board given; the board's firmware says it is %s" % name)
        return name
    raise CommandError("--port needs --board here (no MAST firmware on %s says which board it is)"
                       % args.port, "mast flash --board list names the definitions")


def do_hwtest(args):
    try:
        import pytest  # noqa: F401
    except ImportError:
        raise CommandError("pytest is not installed (the hardware suite runs under it)",
                           "pip install 'mast-tools[hwtest]' (or pip install pytest)")
    suite = suite_dir()
    if not os.path.isfile(os.path.join(suite, "conftest.py")):
        raise CommandError("the hardware test suite is not at %s" % suite,
                           "reinstall mast-tools (a wheel built from the repository carries it)")
    board = args.board or "unix-sim"
    if args.board:  # (a bad name: one line here, not every test's error)
        from mast_tools import boards

        boards.load(args.board)
    if args.port:
        board = _precheck(args, args.board)
    t0 = time.monotonic()
    tmp = tempfile.mkdtemp(prefix="mast-hwtest-")
    ini = os.path.join(tmp, "pytest.ini")
    xml = os.path.join(tmp, "junit.xml")
    logfile = os.path.join(tmp, "pytest.log")
    with open(ini, "w") as f:
        f.write(_INI)
    argv = [sys.executable, "-m", "pytest", suite, "-c", ini, "--rootdir", suite,
            "--confcutdir", suite, "-p", "no:cacheprovider", "-p", "mast_tools.hwtest_report",
            "-q", "-rs", "--junitxml", xml, "--board", board]
    if args.port:
        argv += ["--port", args.port]
    if args.peer_host:
        argv += ["--peer-host", args.peer_host]
    if args.select:
        argv += ["-k", args.select]
    log("mast hwtest: the suite in %s (pytest's own output: %s)" % (suite, logfile))
    live = sys.stderr if args.json else sys.stdout  # with --json, stdout is the document only
    live.write(header(args.port, board) + "\n")
    live.flush()
    keep = False
    try:
        rc, seen = _run_suite(argv, logfile, args.timeout, live)
        if not os.path.isfile(xml):
            keep = True
            raise CommandError("pytest did not run the suite (exit status %d): %s"
                               % (rc, _tail(logfile)), "its whole output: %s" % logfile)
        tests = parse_junit(xml)
        counts = dict((k, sum(1 for t in tests if t["outcome"] == k))
                      for k in ("passed", "failed", "error", "skipped"))
        doc = {"port": args.port, "board": board, "counts": counts, "tests": tests,
               "seconds": round(time.monotonic() - t0, 1), "exit_status": rc}
        bad = counts["failed"] + counts["error"]
        if bad:
            keep = True
            doc["log"] = logfile
        emit(args, doc, total_line(doc) + ("\npytest's whole output: %s" % logfile if bad else ""))
    finally:
        if not keep:
            shutil.rmtree(tmp, ignore_errors=True)
    if bad:
        raise CommandError("%d of %d hardware tests failed" % (bad, len(tests)),
                           "the report above says which; docs/HARDWARE.md says what each needs")
    if not tests:
        raise CommandError("no hardware test ran (exit status %d)" % rc,
                           "check -k (the test names: mast hwtest --json, or tests/hardware)")
    return 0


def _tail(path, n=3):
    try:
        with open(path, errors="replace") as f:
            lines = [x.rstrip() for x in f.read().splitlines() if x.strip()]
        return " | ".join(lines[-n:]) or "no output"
    except OSError:
        return "no output"


def _run_suite(argv, logfile, timeout, live):
    """Run pytest with its output in logfile; print each test's line on `live` as the plugin
    reports it. (exit status, [test dicts])."""
    r, w = os.pipe()
    env = dict(os.environ, MAST_HWTEST_FD=str(w))
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = here + os.pathsep + env.get("PYTHONPATH", "")  # the plugin's package
    seen = []
    with open(logfile, "wb") as log_f:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log_f, stderr=log_f,
                                env=env, pass_fds=(w,), preexec_fn=_sigint_default)
    os.close(w)
    end = time.monotonic() + timeout
    buf = b""
    try:
        while True:
            left = end - time.monotonic()
            if left <= 0:
                _stop(proc)
                raise CommandError("the hardware tests took longer than %.0f s" % timeout,
                                   "is the board stuck? reset it; or give more --timeout")
            ready, _, _ = select.select([r], [], [], min(left, 1.0))
            if not ready:
                continue
            data = os.read(r, 65536)
            if not data:  # every writer closed: pytest ended
                break
            buf += data
            while b"\n" in buf:
                raw, buf = buf.split(b"\n", 1)
                try:
                    t = json.loads(raw.decode())
                except ValueError:
                    continue
                seen.append(t)
                live.write(test_line(t) + "\n")
                live.flush()
        rc = proc.wait(max(1.0, end - time.monotonic()))
    except subprocess.TimeoutExpired:
        proc.kill()
        rc = proc.wait()
    finally:
        os.close(r)
        if proc.poll() is None:
            _stop(proc)
    return rc, seen


def _sigint_default():
    """(In pytest's process, before it starts.) SIGINT back to its default: a mast hwtest started
    in the background of a script inherits it ignored, and pytest would then ignore _stop's
    SIGINT, be killed and leave its simulated board running."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _stop(proc, grace=10.0):
    """End pytest with a SIGINT first, so that it tears its fixtures down (a simulated board it
    started stops, not left holding its UDP ports); killed if not gone within `grace` s."""
    try:
        proc.send_signal(signal.SIGINT)
        proc.wait(grace)
    except BaseException:  # (too slow, or a second Ctrl-C)
        proc.kill()
        proc.wait()
        if not isinstance(sys.exc_info()[1], subprocess.TimeoutExpired):
            raise


# cli.py's _COMMANDS entry: (handler, argparse builder, one-line help)
COMMAND = (do_hwtest, argparse_hwtest, "run the hardware test suite against a board")
