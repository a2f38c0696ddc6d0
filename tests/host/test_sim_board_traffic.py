"""The whole board firmware - uplinks, runtime, app, console - on the simulated board with a
board-sized heap, carrying demo traffic to a MAST peer on this PC while the console is used
and an uplink fails and comes back.

The board (MicroPython unix port, the firmware as .mpy, `-X heapsize=192K`: about 96 KB on a
32-bit board) runs the example telemetry app at 50 datagrams a second to a peer (CPython,
the same core and runtime) on 127.0.0.10. Run as a script to find the smallest heap:

    .venv/bin/python tests/host/test_sim_board_traffic.py 96K 112K 128K 144K 160K 192K
"""

import os
import sys
import tempfile
import threading
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "host-tools"))

from mast_tools.firmware import use_firmware  # noqa: E402
from mast_tools import simboard  # noqa: E402
from mast_tools.netutil import free_udp_port  # noqa: E402

use_firmware()
from mast.endpoint import Endpoint  # noqa: E402
from runtime.driver import Runtime  # noqa: E402
from runtime import stream  # noqa: E402

PSK = "q83vEjRWeJq83vEjRWeJq83vEjRWeJq83vEjRWeJq8M="
BOARD_ADDRS = ("127.0.0.2", "127.0.0.3", "127.0.0.4")  # boards/unix-sim.json's uplinks
APP = """from board.telemetry import Telemetry


def start(mast):
    return Telemetry(mast, interval_ms=20)
"""


class Peer:
    """The far end: a MAST endpoint on 127.0.0.10 that counts the board's telemetry and
    which of the board's addresses each datagram came from."""

    def __init__(self, port):
        ep = Endpoint({"name": "srv", "port": port,
                       "peers": {"board1": {"psk": PSK, "initiate": False}}}, os.urandom)
        self.rt = Runtime(ep)
        self.rt.add_uplink("lan", ("127.0.0.10", port))
        self.seqs = set()
        self.sources = []
        self.events = []
        self.stop = False
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stop:
            self.rt.poll(50)
            for ev in self.rt.recv():
                s = stream.decode(ev.payload)
                if s is not None:
                    self.seqs.add(s[0])
                    self.sources.append(ev.src[0])
            for ev in self.rt.events():
                self.events.append(ev.as_dict())

    def close(self):
        self.stop = True
        self.thread.join(5)
        self.rt.shutdown()


def wait(cond, timeout, what):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(0.05)
    raise AssertionError("timed out waiting for " + what)


def scenario(micropython_heap, port, log=None):
    """Run the demo on a fresh simulated board (every module, as simboard.fill puts them);
    returns what was measured. AssertionError (with the board's last words) if it fails."""
    import json

    import test_board_footprint as F  # (the demo itself; it takes Peer and wait from here)

    folder = tempfile.mkdtemp(prefix="mast-heap-")
    simboard.fill(folder, "unix-sim")
    with open(os.path.join(folder, "app.py"), "w") as f:
        f.write(APP)
    with open(os.path.join(folder, "mast.json"), "w") as f:
        json.dump(F.config(port), f)
    return F.run(folder, micropython_heap, port)


@pytest.mark.parametrize("heap", ["192K"])
def test_the_whole_firmware_carries_demo_traffic_in_a_board_sized_heap(micropython, heap):
    r = scenario(heap, free_udp_port(BOARD_ADDRS + ("127.0.0.10",)))
    assert r["received"] >= 300, r
    assert r["lost"] <= 30, r  # the failover gap at 50/s, plus the datagrams in flight


if __name__ == "__main__":
    for i, h in enumerate(sys.argv[1:] or ["128K", "192K"]):
        try:
            print(scenario(h, free_udp_port(BOARD_ADDRS + ("127.0.0.10",))))
        except AssertionError as e:
            print("FAILED", e)
