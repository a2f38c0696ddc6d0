# The board's loop (firmware/board/main.py, Board.turn) on CPython with a real runtime and a
# fake clock: an app whose tick is overdue runs on this turn, without waiting for a packet
# that may never come (a wait below zero is "for ever" to poll). CPython only: the bound
# on a turn that would block is an interval timer (signal.setitimer).

import json
import os
import signal
import sys

import pytest

_FAKES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "fakes")
if _FAKES not in sys.path:
    sys.path.insert(0, _FAKES)

from fake_files import FakeFiles  # noqa: E402
from fake_machine import FakeClock, FakeMachine  # noqa: E402
from board.hook import AppRunner  # noqa: E402
from board.hw import Hardware  # noqa: E402
from board.main import Board  # noqa: E402
from board.store import CONFIG  # noqa: E402

PORT = 47625
BOARD = {"name": "test-board", "title": "a test board", "port": "unix", "routing": "source",
         "soft_reset": True, "watchdog_ms": 5000, "install": "flash",
         "heap": {"bytes": 65536, "notes": "test"},
         "uplinks": {"eth": {"kind": "sim", "priority": 10, "cost": 0, "address": "127.0.0.2"}}}


class Ticks:
    def __init__(self):
        self.at = []

    def tick(self, now):
        self.at.append(now)
        return 1000


class Blocked(Exception):
    pass


def _raise(*a):
    raise Blocked()


@pytest.mark.skipif(not hasattr(signal, "setitimer"), reason="needs signal.setitimer")
def test_an_overdue_app_tick_runs_on_this_turn_without_waiting_for_a_packet():
    clock = FakeClock(10000)
    m = FakeMachine(clock=clock)
    files = FakeFiles({"board.json": json.dumps(BOARD).encode(),
                       CONFIG: json.dumps({"name": "b1", "port": PORT}).encode()})
    b = Board(hw=Hardware(machine=m, network=None), files=files, write=lambda line: None,
              clock=clock, platform="linux", random=lambda n: bytes(n), app=None)
    b.boot()
    try:
        app = Ticks()
        b.app = AppRunner(b, "app")
        b.app.app = app
        b.app.due = clock() - 500  # overdue: the loop fell behind
        old = signal.signal(signal.SIGALRM, _raise)
        signal.setitimer(signal.ITIMER_REAL, 20.0)  # a bound: the turn takes no time at all
        try:
            b.turn()
        except Blocked:
            raise AssertionError("the board's turn waited for a packet with its app overdue")
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, old)
        assert app.at == [10000]
    finally:
        if b.rt is not None:
            b.rt.shutdown()
