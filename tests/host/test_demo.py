"""`mast demo`, end to end: a simulated board fails over between three emulated uplinks while it
streams, and the summary shows it. The board is the real firmware on `mast sim-board` (the
MicroPython unix port on a pty, .mpy, -X heapsize=192K) where that port is installed, else the
runtime's endpoint process under CPython.

The failover run (with a plot) runs alone, as `make run` does: its gaps and its 95 % are
real-time claims. The redundant run and the CPython fallback board then run side by side,
and their tests check only what does not depend on the machine's load (what was lost in
redundant mode, the order of the failovers): ~85 s in all.
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
from test_cli_frame import HOST_TOOLS, MAST, mast, restore_sigint  # noqa: E402
from mast_tools.board_process import find_micropython  # noqa: E402
from mast_tools.demo import scenario_text  # noqa: E402

RUN_LIMIT_S = 60  # the demo ends by itself in under this


def _run_demos(argvs):
    """{name: (exit status, stdout, stderr)} of `mast ARGV` for each, run side by side."""
    env = dict(os.environ, PYTHONPATH=HOST_TOOLS)
    procs = dict((k, subprocess.Popen(MAST + a, env=env, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True))
                 for k, a in argvs.items())
    out = {}
    try:
        for k, p in procs.items():
            stdout, stderr = p.communicate(timeout=RUN_LIMIT_S + 60)
            out[k] = (p.returncode, stdout, stderr)
    finally:
        for p in procs.values():
            p.kill()
    return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """({"failover": ..., "redundant": ..., "cpython": ...}, plot path): the failover run
    alone, then the other two side by side."""
    plot = str(tmp_path_factory.mktemp("demo") / "demo.svg")
    out = _run_demos({"failover": ["demo", "--json", "--plot", plot]})
    out.update(_run_demos({"redundant": ["demo", "--json", "--mode", "redundant"],
                           "cpython": ["demo", "--json", "--board", "cpython"]}))
    return out, plot


def _summary(runs, mode):
    rc, stdout, stderr = runs[0][mode]
    assert rc == 0, stderr
    assert "Traceback" not in stderr
    return json.loads(stdout), stderr, None


def test_demo_json_fails_over_three_times_within_bounds_and_delivers_95_percent(runs):
    s, stderr, took = _summary(runs, "failover")
    assert s["ended_by"] == "scenario"
    # what the run is, said before it starts (make run's first words)
    assert stderr.splitlines()[0] == scenario_text("failover", 50)
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
    # one association from start to end: no failover re-created it
    assert s["board"]["associations_seen"] == 1
    if find_micropython() is not None:
        # the real firmware on mast sim-board, in a board-sized heap, over its console
        b = s["board"]
        assert s["board_runtime"].startswith("micropython ") and s["board_heapsize"] == "192K"
        assert b["kind"] == "firmware" and b["board"] == "unix-sim"
        assert b["firmware"].startswith("mast-board ") and "mast sim-board" in b["what"]
        assert b["heap_free_min"] > 16 * 1024, b
        assert b["console_requests"] > 4 * 20  # status four times a second, and the renumbering
        # the console's reply to the renumbering, with the address the host sees
        assert ("board: uplink wifi is up at 127.0.0.3; the host sees it at %s (its relay's "
                "outside address)" % r["new"]) in stderr
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


def test_demo_falls_back_to_the_endpoint_process_under_cpython(runs):
    """--board cpython: what the demo runs where the MicroPython unix port is missing."""
    s, stderr, took = _summary(runs, "cpython")
    assert s["ended_by"] == "scenario"
    assert s["board_runtime"].startswith("cpython ") and s["board"]["kind"] == "endpoint"
    assert s["board_heapsize"] is None
    assert [(f["from"], f["to"]) for f in s["failovers"][:3]] == [
        ("eth", "wifi"), ("wifi", "cell"), ("cell", "eth")]
    assert s["renumbered"]["host_saw_at_s"] is not None


def test_demo_plot_writes_an_svg_with_every_step_labelled(runs):
    plot = runs[1]
    assert os.path.getsize(plot) > 1000
    root = ET.parse(plot).getroot()
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    texts = set("".join(t.itertext()).strip() for t in root.iter("{http://www.w3.org/2000/svg}text"))
    for step in ("eth cut", "wifi cut", "eth back", "wifi back, new address", "stream stopped"):
        assert step in texts, sorted(texts)


def test_plot_labels_sit_where_no_curve_runs():
    from mast_tools.demo_plot import layout

    timeline = {"marks": [(8.0, "eth cut"), (13.0, "wifi cut"), (40.0, "stream stopped")],
                "failovers": [{"at_s": 8.6, "from": "eth", "to": "wifi", "gap_ms": 580}]}
    where = layout(timeline, {}, peak=52.0)
    assert where["steps"] == [(8.0, "eth cut"), (13.0, "wifi cut"), (40.0, "stream stopped")]
    assert where["ylim"] > 52.0 * 1.5  # room above the curves
    [(t, text, y)] = where["failovers"]
    assert t == 8.6 and text == "eth->wifi\n580 ms" and 52.0 < y < where["ylim"] - 52.0 * 0.3


def test_demo_plot_of_an_unknown_type_is_refused_before_running():
    r = mast("demo", "--plot", "demo.txt", timeout=60)
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr.startswith("mast: cannot draw demo.txt: unknown file type '.txt'; ")


def test_ctrl_c_ends_the_demo_cleanly_with_a_partial_summary():
    env = dict(os.environ, PYTHONPATH=HOST_TOOLS)
    proc = subprocess.Popen(MAST + ["demo", "--json"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, preexec_fn=restore_sigint)
    try:
        seen = ""
        end = time.monotonic() + 90  # a bound, not a timing: a loaded machine boots it slower
        while "path_up cell" not in seen and time.monotonic() < end and proc.poll() is None:
            ready, _, _ = select.select([proc.stderr], [], [], 0.5)
            if ready:
                seen += proc.stderr.readline()
        assert "path_up cell" in seen, seen
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    s = json.loads(out)
    assert s["ended_by"] == "interrupt" and s["ok"] is False


def test_without_micropython_the_demo_says_its_board_runs_under_cpython(monkeypatch):
    """Where the unix port is missing (not x86_64), auto falls back to the endpoint process and
    says so; --board micropython is refused with what to do."""
    from mast_tools import demo as demo_mod

    monkeypatch.setattr(demo_mod, "find_micropython", lambda: None)
    board = demo_mod.Demo()._make_board()
    assert board.kind == "endpoint" and "x86_64" in board.note
    assert "board runs under CPython" in board.note
    with pytest.raises(demo_mod.DemoError) as e:
        demo_mod.Demo(board="micropython")._make_board()
    assert "not installed" in e.value.what and "--board cpython" in e.value.hint
