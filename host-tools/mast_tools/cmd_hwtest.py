"""`mast hwtest`: run the hardware test suite (tests/hardware) against a board, and say in a
few lines how it went.

The suite is pytest's: this runs `python -m pytest <suite> --port P --board B` in a child
process (its progress goes to stderr), reads pytest's JUnit XML and prints one line per test
and a total. The suite ships with mast (mast_tools/bundle/hardware in a wheel), so an
installed `mast` tests a board without the repository. Without --port the suite starts its
own simulated board (what CI runs).
"""

import os
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET

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
    p.add_argument("--port", help="the board's serial port; none: a simulated board")
    p.add_argument("--board", help="its board definition (default: unix-sim)")
    p.add_argument("--peer-host", metavar="IP",
                   help="an address of this PC the board can reach, for the association tests")
    p.add_argument("-k", dest="select", metavar="EXPR", help="only the tests matching EXPR (pytest -k)")
    p.add_argument("--timeout", type=float, default=900.0, metavar="S",
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


def report_text(doc):
    mark = {"passed": "ok  ", "failed": "FAIL", "error": "ERR ", "skipped": "skip"}
    lines = ["hardware tests on %s (%s):" % (doc["port"] or "a simulated board", doc["board"])]
    width = max([len(t["name"]) for t in doc["tests"]] + [40])
    for t in doc["tests"]:
        extra = ""
        if t["outcome"] != "passed" and t["message"]:
            extra = "  (%s)" % t["message"]
        lines.append("  %s %-*s %5.1f s%s" % (mark[t["outcome"]], width, t["name"], t["seconds"], extra))
    c = doc["counts"]
    lines.append("%d passed, %d failed, %d skipped in %.0f s" % (
        c["passed"], c["failed"] + c["error"], c["skipped"], doc["seconds"]))
    return "\n".join(lines)


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
    t0 = time.monotonic()
    tmp = tempfile.mkdtemp(prefix="mast-hwtest-")
    ini = os.path.join(tmp, "pytest.ini")
    xml = os.path.join(tmp, "junit.xml")
    with open(ini, "w") as f:
        f.write(_INI)
    argv = [sys.executable, "-m", "pytest", suite, "-c", ini, "--rootdir", suite,
            "--confcutdir", suite, "-p", "no:cacheprovider", "-q", "-rs",
            "--junitxml", xml, "--board", board]
    if args.port:
        argv += ["--port", args.port]
    if args.peer_host:
        argv += ["--peer-host", args.peer_host]
    if args.select:
        argv += ["-k", args.select]
    log("mast hwtest: %s" % " ".join(argv[3:]))
    try:
        try:
            proc = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=sys.stderr, timeout=args.timeout)
        except subprocess.TimeoutExpired:
            raise CommandError("the hardware tests took longer than %.0f s" % args.timeout,
                               "is the board stuck? reset it; or give more --timeout")
        if not os.path.isfile(xml):
            raise CommandError("pytest did not run the suite (exit status %d)" % proc.returncode,
                               "see its messages above")
        tests = parse_junit(xml)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    counts = dict((k, sum(1 for t in tests if t["outcome"] == k))
                  for k in ("passed", "failed", "error", "skipped"))
    doc = {"port": args.port, "board": board, "counts": counts, "tests": tests,
           "seconds": round(time.monotonic() - t0, 1), "exit_status": proc.returncode}
    emit(args, doc, report_text(doc))
    bad = counts["failed"] + counts["error"]
    if bad:
        raise CommandError("%d of %d hardware tests failed" % (bad, len(tests)),
                           "the report above says which; docs/HARDWARE.md says what each needs")
    if not tests:
        raise CommandError("no hardware test ran (exit status %d)" % proc.returncode,
                           "check -k, or see pytest's messages above")
    return 0


# cli.py's _COMMANDS entry: (handler, argparse builder, one-line help)
COMMAND = (do_hwtest, argparse_hwtest, "run the hardware test suite against a board")
