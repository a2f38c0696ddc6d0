"""A server that lost its state (killed: no SHUT) and came back on the same address, and the
runtime of the side that initiated (driver.py run_timers, runtime/restart.py): a new association
within seconds, not after the outage budget (300 s). On real sockets (127.0.0.x): the runtime
in this process (CPython), and a board (the whole firmware as .mpy on the simulated board,
MicroPython) streaming telemetry to a server that restarts. The rules themselves (which attempt
wins, one at a time on a board) are tested on the simulated network: tests/core/test_restart.py.

Each waits on a condition, bounded in time and turns."""

import os
import time

from mast.endpoint import Endpoint
from runtime.driver import Runtime
from runtime.restart import RESTART_MS

from test_runtime import PSK, pair, run, established, close_all
from test_board_footprint import prepare
from test_sim_board_traffic import Peer, wait, BOARD_ADDRS
from mast_tools import simboard
from mast_tools.netutil import free_udp_port

BOUND_S = RESTART_MS / 1000 + 10  # the watch's delay, then a few seconds to notice and INIT


def test_an_initiator_has_a_new_association_within_seconds_of_its_server_losing_the_old():
    a, b = pair({"eth": {"bind": ("127.0.0.22", 0)}})
    b2 = None
    try:
        a.connect("b")
        assert run([a, b], lambda: established(a, "b") and established(b, "a"))
        old = a.ep.association("b")
        bind = b.uplinks["wan"].bind
        b.shutdown()  # the server dies: its sockets close, no SHUT goes out
        b2 = Runtime(Endpoint({"name": "b", "peers": {"a": {"psk": PSK, "initiate": False}}},
                              os.urandom))
        b2.add_uplink("wan", bind)  # and comes back, on the same address, knowing nothing
        t0 = time.monotonic()
        last = [0.0]

        def new_one():
            if time.monotonic() - last[0] > 0.05:  # a datagram every 50 ms, as an app sends
                a.send(b"x", "b")
                last[0] = time.monotonic()
            new = a.ep.association("b")
            return new is not old and established(a, "b") and established(b2, "a")

        assert run([a, b2], new_one, limit_s=BOUND_S + 10, turns=100000)
        took = time.monotonic() - t0
        assert RESTART_MS / 1000 <= took < BOUND_S, took
        closed = [e for e in a.events() if e.kind == "association_closed"]
        assert [e.reason for e in closed] == ["replaced"] and old.state == 5
        assert a.send(b"after", "b")
        got = []
        assert run([a, b2], lambda: got.extend(b2.recv()) or [g for g in got if g.payload == b"after"])
    finally:
        close_all(*[r for r in (a, b, b2) if r is not None])


def board_and_server_back(tmp_path, stop, bound_s, reason):
    """A simulated board (the whole firmware as .mpy, MicroPython) streaming telemetry to a
    server (Peer) that stop(peer) ends and that comes back on the same address, knowing
    nothing: the seconds until its 50th datagram there, and the board's status then. Checks
    that the board has a new association, that the old one closed for `reason`, and that it
    never crashed."""
    port = free_udp_port(BOARD_ADDRS + ("127.0.0.10",))
    folder = str(tmp_path / "board")
    os.makedirs(folder)
    prepare(folder, port)
    peer = Peer(port)
    con = None
    try:
        with simboard.SimBoardProcess(folder, "--heapsize", "192K") as sb:
            con = simboard.BoardConsole(sb.device)
            wait(lambda: len(peer.seqs) >= 50, 30, "50 telemetry datagrams")
            old = con.call("status")["associations"][0]
            stop(peer)
            t0 = time.monotonic()
            peer = Peer(port)
            wait(lambda: len(peer.seqs) >= 50, bound_s + 10, "50 datagrams at the server back")
            took = time.monotonic() - t0
            st = con.call("status")
            new = st["associations"][0]
            assert new["label"] != old["label"] and new["state"] == "established", st
            con.pump(0.3)
            closed = [e for e in con.events if e.get("event") == "association_closed"]
            assert [e.get("reason") for e in closed] == [reason], con.events[-8:]
            assert not [x for x in con.logs if x.get("log") == "crash"]
            return took, st
    finally:
        if con is not None:
            con.close()
        peer.close()


def test_a_board_streaming_to_a_server_that_restarts_streams_again_within_seconds(micropython, tmp_path):
    # the server dies (no SHUT) and comes back: the old association is replaced
    took, _ = board_and_server_back(tmp_path, lambda peer: peer.close(), BOUND_S, "replaced")
    assert RESTART_MS / 1000 <= took < BOUND_S, took
