"""mastd with a peer known only by its DNS name while DNS does not answer (root only; skipped
otherwise). getaddrinfo ran in mastd's loop: ~6 s each time, again every 2 s, and every other
association stood still meanwhile (a board streaming to it saw its path go down and come back,
again and again). Now the name is looked up in a thread, and tried again after 2, 4, 8 ... s."""

import json
import os
import shutil
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import netns  # noqa: E402

REASON = netns.unavailable()
pytestmark = pytest.mark.skipif(REASON is not None, reason=str(REASON))

PSK = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
MAST = os.path.join(os.path.dirname(sys.executable), "mast")
SECONDS = 14  # the board's stream: two lookups that time out (~6 s each) fit in it


def test_a_peer_whose_dns_does_not_answer_holds_up_no_other_association(tmp_path):
    spaces = netns.Namespaces("mdn")
    etc = None
    made_root = False
    mastd = None
    try:
        srv, brd = spaces.add("srv"), spaces.add("brd")
        spaces.veth(srv, "v0", brd, "v0")
        netns.ip(srv, "addr", "add", "10.250.0.1/24", "dev", "v0")
        netns.ip(brd, "addr", "add", "10.250.0.2/24", "dev", "v0")
        # `ip netns exec` gives mastd this resolv.conf: a name server nobody has
        made_root = not os.path.isdir("/etc/netns")
        etc = "/etc/netns/" + srv
        os.makedirs(etc)
        with open(os.path.join(etc, "resolv.conf"), "w") as f:
            f.write("nameserver 10.250.0.99\n")
        conf = tmp_path / "mastd.json"
        conf.write_text(json.dumps({
            "name": "server", "uplinks": {"v0": {"device": "v0"}},
            "peers": {"board": {"psk": PSK, "initiate": False},
                      "far": {"psk": PSK, "dns": "far.example"}}}))
        os.chmod(str(conf), 0o600)
        log = tmp_path / "mastd.log"
        with open(str(log), "w") as out:
            mastd = subprocess.Popen(
                ["ip", "netns", "exec", srv, sys.executable, "-m", "mastd", "--config", str(conf),
                 "--control", str(tmp_path / "mastd.sock"), "--discovery", "linux"],
                stdout=out, stderr=subprocess.STDOUT,
                env=dict(os.environ, PYTHONPATH=os.path.join(ROOT, "firmware")))
        netns.wait_until("mastd's control socket", lambda: (tmp_path / "mastd.sock").exists(), 10)
        board = tmp_path / "board.json"
        board.write_text(json.dumps({
            "mast": {"name": "board", "peers": {"server": {"psk": PSK, "addresses": ["10.250.0.1:6278"]}}},
            "uplinks": {"wan": {"bind": "10.250.0.2:6278"}}, "connect": ["server"],
            "stream": {"peer": "server", "rate": 50, "size": 64, "count": 0}}))
        r = netns.run([MAST, "endpoint", "--config", str(board), "--no-stdin", "--duration",
                       str(SECONDS)], ns=brd, timeout=SECONDS + 30)
        events = [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]
        kinds = [e.get("event") for e in events]
        assert "association_up" in kinds, r.stdout[-2000:]
        # the association with the board never stood still long enough to lose its path
        assert "path_down" not in kinds and "failover" not in kinds, [
            e for e in events if e.get("event") in ("path_down", "path_up", "failover")]
        stopped = events[-1]
        assert stopped["event"] == "stopped" and stopped["reason"] == "duration"
        assert "tx_no_path" not in stopped["status"]["counters"]
        mastd.terminate()
        mastd.wait(15)
        text = log.read_text()
        fails = [line for line in text.splitlines() if "cannot resolve far.example" in line]
        assert fails and fails[0].endswith("trying again in 2 s"), text[-2000:]
        assert len(fails) < 2 or fails[1].endswith("trying again in 4 s"), fails
    finally:
        if mastd is not None and mastd.poll() is None:
            mastd.kill()
            mastd.wait(10)
        spaces.close()
        if etc is not None:
            shutil.rmtree(etc, ignore_errors=True)
            if made_root:
                os.rmdir("/etc/netns")
