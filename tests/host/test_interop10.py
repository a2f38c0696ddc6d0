"""MAST/1.1 did not change the wire (docs/PROTOCOL.md section 0): a 1.0 host and a 1.1 host
interoperate. Shown on loopback with the real 1.0 code: the core and the endpoint process of
the last MAST/1.0 commit (REV, taken with `git archive` from this repository's history; skipped
with the reason when the history is not there), as a process, against this tree's runtime.

Either side opens the association; data goes both ways; the 1.0 host renumbers its uplink (a
SET) and data follows it; the 1.1 host closes with SHUT and the 1.0 host sees it closed.
"""

import base64
import io
import json
import os
import subprocess
import sys
import tarfile
import threading

import pytest

from mast.endpoint import Endpoint
from runtime.driver import Runtime
from test_runtime import run  # (tests/host/test_runtime.py)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
REV = "8d81c0e"  # the last commit of MAST/1.0 (before the 1.1 text and code)
PSK = base64.b64encode(bytes(range(32))).decode()


@pytest.fixture(scope="module")
def old_firmware(tmp_path_factory):
    r = subprocess.run(["git", "-C", ROOT, "archive", "--format=tar", REV, "firmware"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if r.returncode != 0:
        pytest.skip("this checkout has no history with MAST/1.0 (%s): %s" % (
            REV, r.stderr.decode().strip()[:200]))
    dest = str(tmp_path_factory.mktemp("mast10"))
    with tarfile.open(fileobj=io.BytesIO(r.stdout)) as t:
        t.extractall(dest)
    return os.path.join(dest, "firmware")


class OldHost:
    """The 1.0 endpoint process (CPython), its stdout lines collected by a thread."""

    def __init__(self, firmware, workdir, doc):
        path = os.path.join(workdir, "old.json")
        with open(path, "w") as f:
            json.dump(doc, f)
        env = dict(os.environ, PYTHONPATH=firmware)
        self.proc = subprocess.Popen([sys.executable, "-m", "runtime.endpoint_main", path],
                                     cwd=workdir, env=env, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.lines = []
        self._t = threading.Thread(target=self._read, daemon=True)
        self._t.start()

    def _read(self):
        for raw in iter(self.proc.stdout.readline, b""):
            self.lines.append(json.loads(raw))

    def say(self, **cmd):
        self.proc.stdin.write((json.dumps(cmd) + "\n").encode())
        self.proc.stdin.flush()

    def events(self, kind):
        return [x for x in list(self.lines) if x.get("event") == kind]

    def stop(self):
        try:
            self.say(op="quit")
            self.proc.wait(timeout=20)
        finally:
            self.proc.kill()
            self._t.join(5)
        return self.proc.returncode, self.proc.stderr.read().decode()


@pytest.mark.parametrize("opener", ["1.0", "1.1"])
def test_a_mast_1_0_host_and_a_1_1_host_interoperate(old_firmware, tmp_path, opener):
    new = Runtime(Endpoint({"name": "new", "peers": {"old": {
        "psk": PSK, "initiate": opener == "1.1", "addresses": ["127.0.0.62:46262"]}}},
        os.urandom))
    new.add_uplink("wan", ("127.0.0.61", 0))
    got = []
    new.on_data = lambda peer, payload, ip, uplink, src: got.append((bytes(payload), src))
    doc = {"mast": {"name": "old", "peers": {"new": {
        "psk": PSK, "addresses": ["127.0.0.61:%d" % new.uplinks["wan"].bind[1]]}}},
        "uplinks": {"eth": {"bind": "127.0.0.62:46262"}},
        "connect": ["new"] if opener == "1.0" else []}
    old = OldHost(old_firmware, str(tmp_path), doc)
    try:
        assert run([new], lambda: old.events("started"), 20), old.proc.stderr.read()
        if opener == "1.1":
            new.connect("old")

        def up():
            a = new.ep.association("old")
            return a is not None and a.state == 2 and old.events("association_up")

        assert run([new], up, 20)
        old.say(op="send", text="from 1.0")
        assert run([new], lambda: got, 10)
        assert got[0] == (b"from 1.0", ("127.0.0.62", 46262))
        assert new.send(b"from 1.1", "old")
        assert run([new], lambda: old.events("data"), 10)
        assert old.events("data")[0]["hex"] == b"from 1.1".hex()

        # the 1.0 host renumbers: its SET reaches the 1.1 host, whose data follows it
        old.say(op="uplink", name="eth", addr="127.0.0.63:46263")
        a = new.ep.association("old")
        assert run([new], lambda: ("127.0.0.63", 46263) in [x[0] for x in a.peer_list], 10)
        del got[:]
        old.say(op="send", text="moved")
        assert run([new], lambda: got, 10)
        assert got[0] == (b"moved", ("127.0.0.63", 46263))
        assert run([new], lambda: (new.send(b"after the move", "old") and False)
                   or len(old.events("data")) >= 2, 10)
        assert old.events("data")[1]["src"].startswith("127.0.0.61:")

        # the 1.1 host closes: a three-way SHUT the 1.0 host completes
        new.close("old")
        assert run([new], lambda: old.events("association_closed"), 10)
        assert new.ep.association("old") is None
    finally:
        code, err = old.stop()
        new.shutdown()
    assert code == 0, err[-2000:]
    assert not [x for x in old.lines if x.get("event") == "peer_error"]
