"""Two presence servers given one state file: the second is refused while the first serves.
Both wrote it before, each its own counters over the other's: a request the one had answered
was taken again after its restart (docs/PROTOCOL.md, Presence, P.6)."""

import json
import os
import subprocess
import sys

import pytest

from presence import msg
from test_endpoint_cli import Lines
from test_presence_host import KEYS, HOST_TOOLS, Requester, host_on_loopback, presence_conf, pump_host

pytestmark = pytest.mark.usefixtures("private_files")  # (conftest: key files are 0600)


def test_a_second_server_on_the_same_state_file_is_refused_and_starts_once_the_first_has_ended(tmp_path):
    from mastd.presence_host import PresenceHost
    from presence.conf import check as check_presence_conf

    state = str(tmp_path / "state.json")
    h = host_on_loopback(state=state)
    h2 = PresenceHost(check_presence_conf(presence_conf(state=state)), ("127.0.0.1", 0))
    a = Requester("a", KEYS["a"])
    try:
        with pytest.raises(OSError) as e:
            h2.open()
        assert str(e.value) == ("[Errno 16] presence: the state file %s is another presence server's "
                                "(pid %d): each server needs a state file of its own" % (state, os.getpid()))
        pkt = a.send(h.listen, msg.REGISTER, msg.enc_register(60, []))  # answered by the first
        assert a.answer(2, pump_host(h))[0] == msg.REGISTER_ACK
        h.close()
        h2.open()  # (it read the state file before the first answered: it reads it again)
        a.sock.sendto(pkt, h2.listen)  # that REGISTER, captured and sent again
        assert a.answer(0.3, pump_host(h2)) is None
        assert h2.status()["counters"]["replay"] == 1
    finally:
        a.close()
        h.close()
        h2.close()


def test_mast_presence_on_a_state_file_another_serves_says_so_and_exits_1(tmp_path):
    cfg = tmp_path / "p.json"
    cfg.write_text(json.dumps(presence_conf(state=str(tmp_path / "state.json"))))
    argv = [sys.executable, "-m", "mast_tools", "presence", "--listen", "127.0.0.1:0", "--config",
            str(cfg), "--no-stdin"]
    env = dict(os.environ, PYTHONPATH=HOST_TOOLS)
    first = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL)
    try:
        Lines(first.stdout).until(lambda ln: ln.get("event") == "started")
        r = subprocess.run(argv + ["--duration", "1"], env=env, stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, timeout=30)
        assert (r.returncode, r.stdout) == (1, "")
        assert r.stderr == ("mast: presence: the state file %s is another presence server's (pid %d): "
                            "each server needs a state file of its own; stop that server, or give "
                            "this one another \"state\" in %s\n" % (tmp_path / "state.json", first.pid, cfg))
    finally:
        first.terminate()
        first.wait(10)
