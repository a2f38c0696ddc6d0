"""The runtime (firmware/runtime/driver.py) through churn: uplinks whose sockets rest for want of
memory and then go (taken down, renumbered, dead), and peers connected and then removed from
the core (the endpoint process's `peer` op, as a server's fleet changes). What the runtime keeps
for them comes back to where it started. CPython; sockets on 127.0.0.x."""

import os
import socket
import time

from mast.endpoint import Endpoint
from runtime.driver import Runtime
from test_runtime_memory import Starved  # (tests/host/test_runtime_memory.py)

PSK = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
CYCLES = 30


def _rest(rt, name, addr):
    """Make uplink name's socket rest (a receive with no memory for it), as a board's does."""
    u = rt.uplinks[name]
    u.sock = Starved(u.sock)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.sendto(b"\x01" * 40, addr)
    finally:
        s.close()
    end = time.monotonic() + 3.0
    while u.resting is None and time.monotonic() < end:
        rt.poll(5)
    assert u.resting is not None and rt.counters.get("rx_rest"), rt.counters


def test_an_uplink_that_goes_while_its_socket_rests_leaves_the_loop_waking_as_before():
    # a socket resting for want of memory that was then closed (uplink down, renumbered, or
    # dead) stayed counted as resting: every later wait of the loop was cut to 50 ms, for good
    # (a board woke 20 times a second for the rest of its uptime), one more count each time
    rt = Runtime(Endpoint({"name": "a", "peers": {}}, os.urandom))
    try:
        bind = ("127.0.0.41", 0)
        rt.add_uplink("eth", bind)
        for i in range(CYCLES):
            addr = rt.uplinks["eth"].bind
            _rest(rt, "eth", addr)
            assert rt.wait_ms(1000) == 50  # (resting: woken to read it again)
            if i % 3 == 0:
                rt.remove_uplink("eth")
                rt.add_uplink("eth", bind)
            elif i % 3 == 1:
                rt.add_uplink("eth", ("127.0.0.%d" % (42 + i % 5), 0))  # renumbered: a new socket
            else:
                rt._dead(rt.uplinks["eth"], "EBADF")  # a send found it dead (_flush does this)
                assert rt.uplinks["eth"].dead is not None
                rt.add_uplink("eth", bind)  # (opened again: mastd's rescan, a board's manager)
            rt.poll(0)
            assert rt._resting == 0, (i, rt._resting)
            assert rt.wait_ms(1000) == 1000, i  # no timer, nothing resting: the whole wait
        assert len(rt._handlers) == 1 and len(rt.uplinks) == 1
    finally:
        rt.shutdown()


def test_peers_connected_then_removed_from_the_core_are_not_kept_by_the_runtime():
    # the endpoint process's `peer` op (remove_peer) on a server whose boards come and go: the
    # runtime kept each removed peer's dial and its place in the list of initiated peers (walked
    # at every turn of the loop), one more for every peer ever connected
    core = Endpoint({"name": "srv", "peers": {"keep": {"psk": PSK, "addresses": ["192.0.2.1"]}}},
                    os.urandom)
    rt = Runtime(core)
    try:
        rt.connect("keep")
        sizes = []
        for i in range(300):
            name = "b%d" % i
            core.set_peer(name, {"psk": PSK, "addresses": ["192.0.2.%d" % (i % 200 + 2)]}, rt.now())
            rt.connect(name)
            rt.run_timers()
            core.remove_peer(name, rt.now())
            rt.run_timers()
            sizes.append((len(rt._dial), len(rt.initiated)))
        assert max(sizes) <= (2, 2), max(sizes)  # "keep", and at most the one removed last
        assert sizes[-1] == sizes[1], (sizes[1], sizes[-1])
        assert "keep" in rt._dial and "keep" in rt.initiated
        assert list(core._connect_addrs) == ["keep"] and list(core.cfg["peers"]) == ["keep"]
    finally:
        rt.shutdown()
