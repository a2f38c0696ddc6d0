"""`mast demo`, end to end: a simulated board (MicroPython when installed) fails over between
three emulated uplinks while it streams, and the summary shows it.

The two full runs (failover mode with a plot, and redundant mode) run side by side, ~35 s.
"""

import json
import os
import select
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_cli_frame import HOST_TOOLS, MAST, mast  # noqa: E402
from mast_tools.board_process import find_micropython  # noqa: E402

RUN_LIMIT_S = 60  # the demo ends by itself in under this


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """{"failover": (CompletedProcess-like, plot path), "redundant": (...)}, run in parallel."""
    tmp = tmp_path_factory.mktemp("demo")
    env = dict(os.environ, PYTHONPATH=HOST_TOOLS)
    plot = str(tmp / "demo.svg")
    argvs = {"failover": ["demo", "--json", "--plot", plot],
             "redundant": ["demo", "--json", "--mode", "redundant"]}
    procs = dict((k, subprocess.Popen(MAST + a, env=env, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True))
                 for k, a in argvs.items())
    t0 = time.monotonic()
    out = {}
    try:
        for k, p in procs.items():
            stdout, stderr = p.communicate(timeout=RUN_LIMIT_S + 30)
            out[k] = (p.returncode, stdout, stderr, time.monotonic() - t0)
    finally:
        for p in procs.values():
            p.kill()
    return out, plot


def _summary(runs, mode):
    (rc, stdout, stderr, took), _ = runs[0][mode], runs[1]
    assert rc == 0, stderr
    assert "Traceback" not in stderr
    return json.loads(stdout), stderr, took


def test_demo_json_fails_over_three_times_within_bounds_and_delivers_95_percent(runs):
    s, stderr, took = _summary(runs, "failover")
    assert s["ended_by"] == "scenario" and s["duration_s"] < RUN_LIMIT_S and took < RUN_LIMIT_S
    fos = s["failovers"]
    assert len(fos) >= 3
    assert [(f["from"], f["to"]) for f in fos[:3]] == [("eth", "wifi"), ("wifi", "cell"),
                                                       ("cell", "eth")]
    assert fos[2]["failback"] is True and not fos[0]["failback"]
    for f in fos:  # within the default profile's 800 ms plus the new path's RTT
        assert f["gap_ms"] <= 800 + f["new_path_rtt_ms"], f
        assert f["within_bound"]
    assert s["delivered"] >= 0.95 * s["sent"] and s["sent"] >= 1000
    assert s["lost"] == s["sent"] - s["delivered"] and s["duplicates"] == 0
    assert s["checks"] == {"failovers_at_least_3": True, "gaps_within_bound": True,
                           "delivered_at_least_95pct": True}
    assert s["ok"] is True
    # every path carried data, and the host saw wifi's new address (a SET)
    assert all(s["paths"][n]["delivered"] > 0 for n in ("eth", "wifi", "cell"))
    r = s["renumbered"]
    assert r["old"] != r["new"] and r["new"].startswith("127.0.0.5:")
    assert r["host_saw_at_s"] is not None
    assert s["peer_runtime"].startswith("cpython ")
    if find_micropython() is not None:
        assert s["board_runtime"].startswith("micropython ") and s["board_heapsize"] == "256K"
    else:
        assert s["board_runtime"].startswith("cpython ")
        assert "board runs under CPython" in stderr
    assert "failover eth -> wifi" in stderr  # the progress went to stderr


def test_demo_in_redundant_mode_loses_nothing(runs):
    s, stderr, took = _summary(runs, "redundant")
    assert s["mode"] == "redundant" and s["ended_by"] == "scenario"
    assert s["sent"] >= 1000
    assert s["lost"] == 0 and s["delivered"] == s["sent"] and s["duplicates"] == 0
    assert s["redundant_copies_dropped"] > 0  # the core dropped the second copies
    assert s["checks"]["none_lost"] is True


def test_demo_plot_writes_an_svg(runs):
    plot = runs[1]
    assert os.path.getsize(plot) > 1000
    root = ET.parse(plot).getroot()
    assert root.tag == "{http://www.w3.org/2000/svg}svg"


def test_demo_plot_of_an_unknown_type_is_refused_before_running():
    r = mast("demo", "--plot", "demo.txt")
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr.startswith("mast: cannot draw demo.txt: unknown file type '.txt'; ")


def test_ctrl_c_ends_the_demo_cleanly_with_a_partial_summary():
    env = dict(os.environ, PYTHONPATH=HOST_TOOLS)
    proc = subprocess.Popen(MAST + ["demo", "--json"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        seen = ""
        end = time.monotonic() + 20
        while "path_up cell" not in seen and time.monotonic() < end:
            ready, _, _ = select.select([proc.stderr], [], [], 0.5)
            if ready:
                seen += proc.stderr.readline()
        assert "path_up cell" in seen, seen
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=10)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    s = json.loads(out)
    assert s["ended_by"] == "interrupt" and s["ok"] is False
