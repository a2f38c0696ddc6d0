"""mastd's rtnetlink watch when it overflows (ENOBUFS): a real mastd in a network namespace of
its own (unshare, gone with the process), stopped while thousands of address changes flood
its watch socket. The kernel drops what does not fit and tells the next read ENOBUFS: mastd
must scan again (it lost the change it was woken for), stay up, and keep hearing later
changes. Root only."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from mastd import control

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIRMWARE = os.path.join(ROOT, "firmware")

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("unshare") or not shutil.which("nsenter")
    or not shutil.which("ip"), reason="needs root, unshare, nsenter and ip")


def status(sock):
    try:
        return control.request(sock, {"op": "status"}, timeout=10)["status"]
    except OSError:
        return None


def wait_for(what, fn, proc, seconds=10):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        got = fn()
        if got:
            return got
        assert proc.poll() is None, "mastd exited (status %s) waiting for %s" % (proc.returncode, what)
        time.sleep(0.05)
    raise AssertionError("timed out waiting for %s" % what)


def in_ns(pid, *args, stdin=None):
    return subprocess.run(["nsenter", "-t", str(pid), "-n"] + list(args), input=stdin,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
                          timeout=60, check=True)


def lo_up(s):
    u = s and s["uplinks"].get("lo")
    return u is not None and u["link"]["up"] and u.get("state") != "down"


def test_a_netlink_watch_that_overflows_makes_mastd_scan_again_and_it_keeps_listening(tmp_path):
    cfg, sock, log = tmp_path / "mast.json", str(tmp_path / "c.sock"), tmp_path / "mastd.log"
    cfg.write_text(json.dumps({"name": "r1", "uplinks": {"lo": {}}}))
    with open(str(log), "w") as out:
        p = subprocess.Popen(["unshare", "--net", sys.executable, "-m", "mastd", "--config", str(cfg),
                              "--control", sock, "--discovery", "linux"], stdout=out,
                             stderr=subprocess.STDOUT, env=dict(os.environ, PYTHONPATH=FIRMWARE))
    try:
        s = wait_for("mastd to start", lambda: status(sock), p)
        assert not lo_up(s) and s["uplinks"]["lo"]["link"]["why"] == "lo is down or has no carrier"
        # stopped, mastd reads nothing: the flood overflows its watch socket (its receive
        # buffer holds a few hundred messages), and the change that matters comes last
        os.kill(p.pid, signal.SIGSTOP)
        try:
            batch = "".join("addr add 10.9.%d.%d/32 dev lo\n" % (i // 250, i % 250 + 1) for i in range(3000))
            in_ns(p.pid, "ip", "-batch", "-", stdin=batch + "link set lo up\n")
        finally:
            os.kill(p.pid, signal.SIGCONT)
        s = wait_for("the uplink to come up after the overflow", lambda: lo_up(status(sock)), p)
        assert p.poll() is None
        # still listening: a later change is heard too
        in_ns(p.pid, "ip", "link", "set", "lo", "down")
        wait_for("the uplink to go down", lambda: not lo_up(status(sock) or {"uplinks": {}}), p)
        events = [e["event"] for e in status(sock)["events"]]
        assert events.count("uplink_up") == 1 and events.count("uplink_down") == 1, events
        p.send_signal(signal.SIGTERM)
        assert p.wait(10) == 0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait(10)
    text = log.read_text()
    assert "Traceback" not in text, text
