"""mastd's rtnetlink watch when it overflows (ENOBUFS): a real mastd in a network namespace of
its own (unshare, gone with the process), stopped while thousands of address changes flood
its watch socket. The kernel drops what does not fit and tells the next read ENOBUFS: mastd
must scan again (it lost the change it was woken for), stay up, and keep hearing later
changes. Also what the kernel changes under a running mastd: a device deleted and made again
under its name (a new interface, which a socket bound to the old one never follows), and the
TUN deleted. Root only."""

import contextlib
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


@contextlib.contextmanager
def _mastd(tmp_path, doc):
    """mastd on doc (mast.json, mode 600) with linux discovery, in a network namespace of its
    own: (process, control socket, log path) for the block; then stopped by SIGTERM, which it
    must survive to exit 0, with no traceback in its log."""
    cfg, sock, log = tmp_path / "mast.json", str(tmp_path / "c.sock"), tmp_path / "mastd.log"
    cfg.write_text(json.dumps(doc))
    os.chmod(str(cfg), 0o600)
    with open(str(log), "w") as out:
        p = subprocess.Popen(["unshare", "--net", sys.executable, "-m", "mastd", "--config", str(cfg),
                              "--control", sock, "--discovery", "linux"], stdout=out,
                             stderr=subprocess.STDOUT, env=dict(os.environ, PYTHONPATH=FIRMWARE))
    try:
        yield p, sock, log
        assert p.poll() is None
        p.send_signal(signal.SIGTERM)
        assert p.wait(10) == 0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait(10)
    text = log.read_text()
    assert "Traceback" not in text, text


def test_a_netlink_watch_that_overflows_makes_mastd_scan_again_and_it_keeps_listening(tmp_path):
    with _mastd(tmp_path, {"name": "r1", "uplinks": {"lo": {}}}) as (p, sock, log):
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


def _state(pid):
    with open("/proc/%d/stat" % pid) as f:
        return f.read().rsplit(")", 1)[1].split()[0]


def _ua_socket(s):
    u = s and s["uplinks"].get("ua")
    return u and u.get("socket")


@pytest.mark.parametrize("family", ["ipv4", "ipv6"])
def test_a_device_deleted_and_made_again_while_mastd_was_busy_gets_a_new_socket(tmp_path, family):
    """SO_BINDTODEVICE holds an interface's index, not its name: a device deleted and made again
    under the same name (with the same address) is a new interface the old socket never
    follows; its sends fail ENODEV (over IPv6 ENETUNREACH, as a route gone would) for good.
    When mastd scans only once both changes are done (it was busy; here: stopped), the uplink
    looks as it was: it must still get a socket on the new interface, not keep the dead one."""
    psk = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
    v6 = family == "ipv6"
    mine, peer = ("2001:db8:1::2", "[2001:db8:1::1]:6278") if v6 else ("10.1.0.2", "10.1.0.1:6278")
    doc = {"name": "r1", "internal": "10.99.0.2/24", "uplinks": {"ua": {"address": mine} if v6 else {}},
           "peers": {"srv": {"psk": psk, "internal": "10.99.0.1", "addresses": [peer]}}}
    make = ("link add ua type veth peer name ub\nlink set ub up\naddr add 10.1.0.1/24 dev ub\n"
            "addr add 10.1.0.2/24 dev ua\naddr add 2001:db8:1::1/64 dev ub nodad\n"
            "addr add 2001:db8:1::2/64 dev ua nodad\nlink set ua up\n")
    with _mastd(tmp_path, doc) as (p, sock, log):
        wait_for("mastd to start", lambda: status(sock), p)
        in_ns(p.pid, "ip", "-batch", "-", stdin="link set lo up\n" + make)
        # its INITs go out on ua (to nobody: tx counts them)
        wait_for("a send on ua", lambda: (_ua_socket(status(sock)) or {}).get("tx", 0) >= 1, p)
        os.kill(p.pid, signal.SIGSTOP)
        try:
            wait_for("mastd to stop", lambda: _state(p.pid) == "T", p)
            in_ns(p.pid, "ip", "-batch", "-", stdin="link del ua\n" + make)
        finally:
            os.kill(p.pid, signal.SIGCONT)
        ups = wait_for("the uplink to be opened again on the new ua", lambda: [
            e for e in (status(sock) or {"events": []})["events"] if e["event"] == "uplink_up"][1:], p)
        assert ups[-1]["device"] == "ua" and ups[-1]["addr"] == mine, ups
        # and its sends leave: the next INIT is counted sent, with no error
        s = wait_for("a send on the new socket", lambda: (_ua_socket(status(sock)) or {}).get("tx"), p)
        sk = _ua_socket(status(sock))
        assert sk["tx_errors"] == 0 and sk["last_error"] is None and sk["dead"] is None, sk
        assert s >= 1
        down = [e for e in status(sock)["events"] if e["event"] == "uplink_down"]
        assert [e["why"] for e in down] == ["device ua was replaced"], down


# a router with a TUN (10.99.0.2/24) and its peer's prefix 10.98.0.0/16 routed into it
TUN_DOC = {"name": "r1", "internal": "10.99.0.2/24", "uplinks": {"lo": {}},
           "peers": {"srv": {"psk": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", "internal": "10.99.0.1",
                             "allowed": ["10.98.0.0/16"], "addresses": ["127.0.0.1:6279"]}}}


def test_a_tun_deleted_under_mastd_is_made_again_and_mastd_runs_on(tmp_path):
    """`ip link del mast0` while mastd runs: the TUN's descriptor then reads EBADFD (and polls
    as an error). mastd made its loop raise it and died with a traceback, every association
    lost; it makes the TUN again (address, routes) and reads packets from the new one."""
    with _mastd(tmp_path, TUN_DOC) as (p, sock, log):
        wait_for("mastd to start", lambda: status(sock), p)

        def to_tun(n):  # a datagram routed into the TUN, read by mastd (no association yet)
            in_ns(p.pid, sys.executable, "-c", "import socket; socket.socket(2, 2).sendto(b'x', "
                  "('10.98.0.%d', 9))" % n)
            return wait_for("mastd to read it", lambda: (status(sock) or {}).get(
                "agent_counters", {}).get("tun_no_association", 0) >= n, p)

        to_tun(1)
        in_ns(p.pid, "ip", "link", "del", "mast0")
        wait_for("the TUN made again", lambda: p.poll() is None and "10.99.0.2/24" in in_ns(
            p.pid, "ip", "-br", "addr", "show").stdout, p)
        to_tun(2)  # read from the new TUN: its route is back too
        s = status(sock)
        assert s["agent_counters"]["tun_lost"] == 1 and s["tun"]["name"] == "mast0", s["agent_counters"]
    text = log.read_text()
    assert "tun mast0 was deleted (File descriptor in bad state); made again" in text, text


def test_a_tun_that_cannot_be_made_again_at_once_is_tried_again_until_it_can(tmp_path):
    """The TUN deleted and its name taken by another interface meanwhile (a veth here): mastd
    could not make it again and never tried again, so the tunnel stayed down for good; it tries
    again every TUN_RETRY_MS, and once the name is free the TUN, its address and its routes are
    back."""
    with _mastd(tmp_path, TUN_DOC) as (p, sock, log):
        wait_for("mastd to start", lambda: status(sock), p)
        os.kill(p.pid, signal.SIGSTOP)
        try:
            wait_for("mastd to stop", lambda: _state(p.pid) == "T", p)
            in_ns(p.pid, "ip", "-batch", "-", stdin="link del mast0\nlink add mast0 type veth peer name mast0p\n")
        finally:
            os.kill(p.pid, signal.SIGCONT)
        wait_for("mastd to say it cannot make it", lambda: "cannot make it again" in log.read_text(), p)
        assert "10.99.0.2/24" not in in_ns(p.pid, "ip", "-br", "addr", "show").stdout
        in_ns(p.pid, "ip", "link", "del", "mast0")  # the name is free again
        wait_for("the TUN made again", lambda: p.poll() is None and "10.99.0.2/24" in in_ns(
            p.pid, "ip", "-br", "addr", "show").stdout, p)
        in_ns(p.pid, sys.executable, "-c", "import socket; socket.socket(2, 2).sendto(b'x', ('10.98.0.1', 9))")
        wait_for("mastd to read from the new TUN", lambda: (status(sock) or {}).get(
            "agent_counters", {}).get("tun_no_association", 0) >= 1, p)
    text = log.read_text()
    assert "tun mast0 was deleted (File descriptor in bad state); cannot make it again: " in text, text
    assert "; trying again every 2 s" in text and "tun mast0 made again" in text, text
