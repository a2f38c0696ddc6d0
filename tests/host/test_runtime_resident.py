"""Code a board runs now and then is not held in its heap (issue 11 point 3: the whole firmware in
a smaller heap; docs/RUNTIME.md, "Memory"; the figures: bench/footprint.py):

- an uplink's coming and going (Runtime.add_uplink, remove_uplink) is runtime/uplinkops.py,
  imported for the call and forgotten after on MicroPython: the socket is opened and bound and
  the core told as before, and the module is not in sys.modules once the call is done;
- the runtime's own event (runtime/note.py) is loaded only when a socket dies;
- the responder's side of the handshake (mast/responder.py) is imported only by an endpoint
  that gets an INIT or a COOKIE-ECHO: the one that answers, never the one that initiates.

MicroPython: the unix port over build/mpy, on 127.0.0.1; CPython: the core on the simulated
network (tests/core/simnet.py), its imports recorded through builtins.__import__."""

import builtins
import json
import os
import subprocess

from mast.endpoint import Endpoint
from simnet import Stream, pair1, established  # (tests/core/simnet.py)
from test_runtime_memory import free_udp_ports

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

UPLINK_SCRIPT = """
import sys, os, builtins, json
from mast.endpoint import Endpoint
from runtime.driver import Runtime
seen = []
real = builtins.__import__


def record(name, *a):
    seen.append(name + ":" + repr(a[2:]))
    return real(name, *a)


ep = Endpoint({"name": "a", "port": %(port)d, "peers": {}}, os.urandom)
rt = Runtime(ep)
builtins.__import__ = record
rt.add_uplink("lo", ("127.0.0.1", %(port)d))
builtins.__import__ = real
added = {"imports": seen[:], "held": "runtime.uplinkops" in sys.modules,
         "uplinks": sorted(ep.uplinks), "public": list(ep.uplinks["lo"].addr),
         "bound": rt.uplinks["lo"].sock is not None}
seen[:] = []
builtins.__import__ = record
rt.remove_uplink("lo")
builtins.__import__ = real
removed = {"imports": seen[:], "held": "runtime.uplinkops" in sys.modules,
           "uplinks": sorted(ep.uplinks), "runtime": sorted(rt.uplinks)}
print("RESULT " + json.dumps({"add": added, "remove": removed, "note": "runtime.note" in sys.modules}))
"""


def test_micropython_an_uplinks_code_is_loaded_for_add_and_remove_and_forgotten_after(micropython, mpy_build):
    port = free_udp_ports(1)[0]
    env = dict(os.environ, MICROPYPATH=os.path.join("build", "mpy") + os.pathsep + ".frozen")
    p = subprocess.run(micropython + ["-X", "heapsize=256K", "-c", UPLINK_SCRIPT % {"port": port}],
                       env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)
    lines = [x for x in p.stdout.splitlines() if x.startswith("RESULT ")]
    assert p.returncode == 0 and lines, p.stdout + p.stderr
    r = json.loads(lines[0][7:])
    add, remove = r["add"], r["remove"]
    # the socket opened and bound, the core told: as before
    assert add["uplinks"] == ["lo"] and add["public"] == ["127.0.0.1", port] and add["bound"], add
    assert remove["uplinks"] == [] and remove["runtime"] == [], remove
    # the code came from runtime/uplinkops.py, and is not held once each call is done
    assert any("uplinkops" in x for x in add["imports"]) and not add["held"], add
    assert any("uplinkops" in x for x in remove["imports"]) and not remove["held"], remove
    assert r["note"] is False  # (no socket died)


def test_only_the_endpoint_that_answers_an_init_loads_the_responders_code(monkeypatch):
    by = []  # the endpoint whose receive() imported mast.responder, each time
    current = [None]
    real_import = builtins.__import__
    real_receive = Endpoint.receive

    def record(name, globals=None, locals=None, fromlist=(), level=0):
        if current[0] is not None and ("responder" in (fromlist or ()) or name.endswith("responder")):
            by.append(current[0])
        return real_import(name, globals, locals, fromlist, level)

    def receive(self, *args):
        current[0] = self.name
        try:
            return real_receive(self, *args)
        finally:
            current[0] = None

    monkeypatch.setattr(Endpoint, "receive", receive)
    monkeypatch.setattr(builtins, "__import__", record)
    net = pair1()  # a (the initiator) connects to b
    net.run(net.now + 2000)
    assert established(net)
    s = Stream(net, "a", rate=50)  # data, feedback, probes both ways, then a graceful close
    net.run(net.now + 1000)
    s.stop()
    net.nodes["a"].ep.close(net.now)
    net.run(net.now + 3000)
    assert net.nodes["a"].ep.association("b") is None
    assert by and set(by) == {"b"}, by
