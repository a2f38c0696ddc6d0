"""`mast endpoint` and `mast presence` ended by a signal, or by two at once (a hang-up and a
supervisor's stop, Ctrl-C and a stop): the first ends the run, a second changes nothing, and the
final status still comes."""

import json
import os
import signal
import subprocess

import pytest

from test_presence_host import presence_conf

from test_endpoint_cli import HOST_TOOLS, MAST, Lines, endpoint_stopped_by

pytestmark = pytest.mark.usefixtures("private_files")  # (conftest: key files are 0600)


@pytest.mark.parametrize("first, second", [("SIGTERM", "SIGHUP"), ("SIGHUP", "SIGTERM"),
                                           ("SIGINT", "SIGTERM")])
def test_a_second_stop_signal_while_the_run_ends_still_gives_the_final_status(tmp_path, first, second):
    # before: the second signal raised again while the first was handled (a traceback, exit
    # status 1, no stopped line, no document), or came after the handlers were put back and
    # killed the process (exit -1 or -15), before or while it wrote its final status
    returncode, out, err = endpoint_stopped_by(tmp_path, first, second)
    assert returncode == 0, err
    doc = json.loads(out)
    why = "interrupt" if first == "SIGINT" else "signal"
    assert doc["reason"] == why and doc["status"]["name"] == "server"
    assert '"event": "stopped", "reason": "%s"' % why in err.decode()


@pytest.mark.parametrize("signals", [("SIGHUP",), ("SIGTERM", "SIGHUP"), ("SIGHUP", "SIGTERM")])
def test_mast_presence_ended_by_a_hang_up_or_two_signals_at_once_still_gives_its_final_status(tmp_path, signals):
    # before: SIGHUP (its terminal closed) killed it, exit -1, no stopped line and no document
    cfg = tmp_path / "p.json"
    cfg.write_text(json.dumps(presence_conf()))
    proc = subprocess.Popen(MAST + ["presence", "--listen", "127.0.0.1:0", "--config", str(cfg), "--json"],
                            env=dict(os.environ, PYTHONPATH=HOST_TOOLS), stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        Lines(proc.stderr).until(lambda ln: ln.get("event") == "started")
        for name in signals:
            proc.send_signal(getattr(signal, name))
        out, err = proc.communicate(timeout=10)
        assert proc.returncode == 0, err
        assert json.loads(out)["reason"] == "signal"
        last = json.loads(err.decode().splitlines()[-1])
        assert (last["event"], last["reason"]) == ("stopped", "signal")
    finally:
        proc.kill()
        proc.wait(5)


@pytest.mark.parametrize("name", ["SIGTERM", "SIGHUP"])
def test_mast_demo_stopped_by_a_signal_removes_its_folder_and_prints_its_summary(tmp_path, name):
    # before: killed at once (exit -15 or -1), no summary, and its /tmp/mast-demo-* folder (the
    # board's files and key) left behind at each run
    import glob
    import time

    tmp = tmp_path / "t"
    tmp.mkdir()
    proc = subprocess.Popen(MAST + ["demo", "--board", "cpython"], env=dict(os.environ, PYTHONPATH=HOST_TOOLS,
                            TMPDIR=str(tmp)), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        end = time.monotonic() + 60  # (a bound: the board's file comes within a second or two)
        while not glob.glob(str(tmp / "mast-demo-*" / "board.json")) and time.monotonic() < end:
            assert proc.poll() is None, proc.stderr.read()
            time.sleep(0.05)
        assert glob.glob(str(tmp / "mast-demo-*" / "board.json"))
        proc.send_signal(getattr(signal, name))
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 130, err
        assert "interrupted (Ctrl-C) before the scenario's end" in out.decode()
        assert os.listdir(str(tmp)) == []
    finally:
        proc.kill()
        proc.wait(5)
