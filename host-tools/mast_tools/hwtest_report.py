"""A pytest plugin that `mast hwtest` loads (-p mast_tools.hwtest_report): one JSON line per
test, written as the test ends (after its teardown), to the file descriptor named by MAST_HWTEST_FD. `mast
hwtest` reads them as they come and prints one line per test while the suite runs (pytest's
own output goes to a log file instead of the screen).

    {"name": "test_hello_reports_the_expected_version", "file": "test_hw_console",
     "outcome": "passed", "seconds": 1.3, "message": null}

outcome: passed, failed, error (setup or teardown failed), skipped.
"""

import json
import os

_out = {"fd": None}


def pytest_configure(config):
    fd = os.environ.get("MAST_HWTEST_FD")
    if fd and fd.isdigit():
        _out["fd"] = int(fd)


def _message(report):
    if report.skipped and isinstance(report.longrepr, tuple) and len(report.longrepr) == 3:
        text = str(report.longrepr[2])
        return text[len("Skipped: "):] if text.startswith("Skipped: ") else text
    crash = getattr(getattr(report, "longrepr", None), "reprcrash", None)
    if crash is not None and getattr(crash, "message", None):
        return crash.message.strip().splitlines()[0][:200]
    text = (getattr(report, "longreprtext", "") or "").strip().splitlines()
    return text[-1][:200] if text else None


_phases = {}  # nodeid -> [reports of its phases so far]


def line_for(reports):
    """The dict for one test from its phases' reports (setup, call, teardown): its outcome
    (a failed setup or teardown is an error), the time of all three (the first test's setup
    includes the suite's first flash), the first line of what went wrong."""
    outcome, why = "passed", None
    for r in reports:
        if r.failed:
            outcome, why = ("failed" if r.when == "call" else "error"), r
            break
        if r.skipped:
            outcome, why = "skipped", r
    parts = reports[0].nodeid.split("::")
    module = os.path.splitext(os.path.basename(parts[0]))[0]
    return {"name": parts[-1], "file": module, "outcome": outcome,
            "seconds": round(sum(getattr(r, "duration", 0.0) or 0.0 for r in reports), 1),
            "message": _message(why) if why is not None else None}


def pytest_runtest_logreport(report):
    if _out["fd"] is None:
        return
    _phases.setdefault(report.nodeid, []).append(report)
    if report.when != "teardown":
        return
    line = line_for(_phases.pop(report.nodeid))
    try:
        os.write(_out["fd"], (json.dumps(line) + "\n").encode())
    except OSError:
        _out["fd"] = None  # mast hwtest went away: pytest goes on alone
