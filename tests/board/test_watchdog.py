# The watchdog on the fake machine (tests/fakes) really bites: a board whose loop keeps
# turning feeds it and is never reset; a loop that hangs (here the app's tick, which
# never returns while time goes on) is reset by it, and the next boot knows why.
# Plain test functions: pytest and MicroPython.

import json
import sys

from fake_files import FakeFiles
from fake_machine import FakeClock, FakeMachine, FakeReset
from board.hook import AppRunner
from board.hw import Hardware
from board.main import Board
from board.startup import unique_id, wdt
from board.statusop import reset_cause
from board.store import CONFIG

# make test's two workers can run this module on CPython and on MicroPython
# (tests/host/test_board_micropython.py) at the same moment: each binds a port of its own
PORT = 17621 if sys.implementation.name == "cpython" else 17631  # (below 32768: no kernel-chosen port)

WATCHDOG_MS = 5000
BOARD = {"name": "test-board", "title": "a test board", "port": "unix", "routing": "source",
         "soft_reset": True, "watchdog_ms": WATCHDOG_MS, "install": "flash",
         "heap": {"bytes": 65536, "notes": "test"},
         "uplinks": {"eth": {"kind": "sim", "priority": 10, "cost": 0, "address": "127.0.0.2"}}}


def new_board(files, clock, machine):
    out = []
    b = Board(hw=Hardware(machine=machine, network=None), files=files, write=out.append,
              clock=clock, platform="linux", random=lambda n: bytes(n), app=None)
    return b, out


def booted():
    """(clock, machine, board, its output) for a board booted on a fake machine."""
    clock = FakeClock()
    m = FakeMachine(clock=clock)
    b, out = new_board(files(), clock, m)
    b.boot()
    return clock, m, b, out


def files():
    return FakeFiles({"board.json": json.dumps(BOARD).encode(),
                      CONFIG: json.dumps({"name": "b1", "port": PORT}).encode()})


def run_app(b, app):
    """Make app the board's app, its tick due at once."""
    b.app = AppRunner(b, "app")
    b.app.app = app
    b.app.due = 0


class HungApp:
    """An app whose tick never returns: it spins while time goes on."""

    def __init__(self, clock):
        self.clock = clock
        self.spins = 0

    def tick(self, now):
        while True:
            self.spins += 1
            self.clock.advance(100)


def test_a_watchdog_left_unfed_past_its_timeout_resets_the_machine():
    clock = FakeClock()
    m = FakeMachine(clock=clock)
    w = m.WDT(timeout=WATCHDOG_MS)
    clock.advance(WATCHDOG_MS)  # fed at 0, still within its timeout
    w.feed()
    clock.advance(WATCHDOG_MS)
    assert m.resets == 0
    try:
        clock.advance(1)
        bit = False
    except FakeReset:
        bit = True
    assert bit and m.resets == 1 and m.wdt_resets == 1
    assert clock() == 2 * WATCHDOG_MS + 1 and m.reset_cause() == m.WDT_RESET
    clock.advance(60000)  # a reset stops it: nothing more
    assert m.resets == 1


def test_a_loop_that_keeps_turning_is_never_reset_by_the_watchdog():
    clock, m, b, out = booted()
    try:
        for i in range(60):  # a minute, one turn a second (IDLE_MS), 5 s watchdog
            clock.advance(1000)
            b.step(clock())
    finally:
        if b.rt is not None:
            b.rt.shutdown()
    assert m.resets == 0 and m.wdt_resets == 0
    assert len(m.wdts) == 1 and m.wdts[0].feeds == 60


def test_a_hung_loop_is_reset_by_the_watchdog_and_the_next_boot_says_why():
    clock = FakeClock()
    m = FakeMachine(clock=clock)
    f = files()
    b, out = new_board(f, clock, m)
    b.boot()
    clock.advance(1000)
    b.step(clock())
    app = HungApp(clock)
    run_app(b, app)
    try:
        try:
            b.step(clock())  # the app's tick hangs
            reset = False
        except FakeReset:
            reset = True
    finally:
        if b.rt is not None:
            b.rt.shutdown()
    assert reset and m.wdt_resets == 1 and m.resets == 1
    assert app.spins == WATCHDOG_MS // 100 + 1  # the watchdog cut it off 5 s after the last feed
    b2, out2 = new_board(f, clock, m)
    b2.boot()
    try:
        st = b2.once("statusop", "status")
    finally:
        if b2.rt is not None:
            b2.rt.shutdown()
    assert st["boot"]["reset_cause"] == "wdt" and st["boot"]["unstable_boots"] == 1


# ---- a heap that has run out for good ----------------------------------------------------------
# Below the smallest heap (the simulated board at 152K, after console ops had run out of memory),
# no block for a datagram was ever free again: each read rested (the runtime's rx_rest), every
# path went down, and the board stayed so, its loop turning and its watchdog fed. The board
# reboots once the heap has run out in every second for 30 s (main.EXHAUSTED_MS).

class OutOfHeapApp:
    """An app whose every tick runs out of memory."""

    def __init__(self):
        self.ticks = 0

    def tick(self, now):
        self.ticks += 1
        raise MemoryError("memory allocation failed, allocating 368 bytes")


def run_seconds(b, clock, seconds, each=None):
    """One step a second for `seconds`; each(i) before each. The reset that ended it
    (FakeReset), or None."""
    try:
        for i in range(seconds):
            if each is not None:
                each(i)
            clock.advance(1000)
            b.step(clock())
    except FakeReset as e:
        return e
    return None


def resting_reads(b):
    """each(): a read rests for want of heap (what the runtime counts then)."""
    def each(i):
        b.rt.count("rx_rest")
        b.rt.count("rx_no_memory")
    return each


def test_a_board_whose_reads_rest_for_want_of_heap_for_30_s_reboots_and_says_why():
    clock, m, b, out = booted()
    try:
        assert run_seconds(b, clock, 40) is None  # (a stable boot first: 40 s, nothing short)
        assert run_seconds(b, clock, 29, resting_reads(b)) is None  # 29 s of it
        assert m.resets == 0
        reset = run_seconds(b, clock, 1, resting_reads(b))  # the 30th
    finally:
        if b.rt is not None:
            b.rt.shutdown()
    assert reset is not None and m.resets == 1 and m.wdt_resets == 0
    logs = [json.loads(x) for x in out if '"log"' in x]
    assert logs[-1] == {"log": "rebooting: the heap ran out in every second for 30 s"}, logs[-3:]


def test_a_board_whose_reads_only_rest_for_30_s_reboots():
    # a read that went straight to the reserve (the reads after one it saved) and found no
    # room even there rests with rx_rest alone counted, no rx_no_memory: that is the heap run
    # out as well
    clock, m, b, out = booted()
    try:
        assert run_seconds(b, clock, 40) is None  # (a stable boot first)
        reset = run_seconds(b, clock, 60, lambda i: b.rt.count("rx_rest"))
    finally:
        if b.rt is not None:
            b.rt.shutdown()
    assert reset is not None and m.resets == 1
    assert b.rt.counters.get("rx_no_memory", 0) == 0 and 30 <= b.rt.counters["rx_rest"] <= 32
    logs = [json.loads(x) for x in out if '"log"' in x]
    assert logs[-1] == {"log": "rebooting: the heap ran out in every second for 30 s"}, logs[-3:]


def test_a_board_that_turns_ten_times_a_second_reboots_as_soon_when_its_heap_runs_out_every_second():
    # the heap is looked at once a second, not at each turn: a turn without a MemoryError of
    # its own, between two that had one, does not start the 30 s again
    clock, m, b, out = booted()
    reset = None
    try:
        assert run_seconds(b, clock, 40) is None  # (a stable boot first)
        try:
            for i in range(600):  # 60 s, ten turns a second, the heap out once each second
                if i % 10 == 0:
                    resting_reads(b)(i)
                clock.advance(100)
                b.step(clock())
        except FakeReset as e:
            reset = e
    finally:
        if b.rt is not None:
            b.rt.shutdown()
    assert reset is not None and m.resets == 1 and 30 <= b.rt.counters["rx_rest"] <= 32
    assert json.loads(out[-1]) == {"log": "rebooting: the heap ran out in every second for 30 s"}


def test_a_second_without_a_memory_error_starts_the_30_s_again():
    clock, m, b, out = booted()
    rest = resting_reads(b)

    def each(i):
        if i % 20 != 19:  # every 20th second: nothing ran out
            rest(i)

    try:
        reset = run_seconds(b, clock, 120, each)
    finally:
        if b.rt is not None:
            b.rt.shutdown()
    assert reset is None and m.resets == 0
    assert b.rt.counters["rx_rest"] == 114


def test_a_board_whose_app_runs_out_of_memory_at_every_tick_for_30_s_reboots():
    clock, m, b, out = booted()
    app = OutOfHeapApp()
    run_app(b, app)
    try:
        reset = run_seconds(b, clock, 60)
    finally:
        if b.rt is not None:
            b.rt.shutdown()
    assert reset is not None and m.resets == 1
    assert 30 <= app.ticks <= 32 and b.app.no_memory == app.ticks, app.ticks  # (a tick a second)
    assert json.loads(out[-1]) == {"log": "rebooting: the heap ran out in every second for 30 s"}


class _Bare:
    """A port's machine module without WDT, reset, reset_cause or unique_id (the unix port's)."""


class _FlakyMachine(FakeMachine):
    def reset_cause(self):
        raise OSError(5)


def test_a_port_without_the_hardware_gets_none_and_a_reboot_is_the_exit_status_sim_board_restarts_on():
    hw = Hardware(machine=_Bare(), network=None)
    assert wdt(hw, WATCHDOG_MS) is None and reset_cause(hw) is None and unique_id(hw) is None
    code = None
    try:
        hw.reset()
    except SystemExit as e:
        code = e.args[0] if e.args else None
    assert code == 75, code  # host-tools/mast_tools/simboard.py: REBOOT_EXIT, a reboot and not a crash
    assert reset_cause(Hardware(machine=_FlakyMachine(), network=None)) is None


def test_the_causes_and_the_unique_id_as_status_shows_them():
    m = FakeMachine(uid=b"\x00\x01\x0a\xff\x10\x02")
    hw = Hardware(machine=m, network=None)
    assert unique_id(hw) == "00010aff1002"  # two hex digits a byte: "esp32-ff1002", not "esp32-aff102"
    for cause, name in ((m.PWRON_RESET, "pwron"), (m.WDT_RESET, "wdt"), (m.SOFT_RESET, "soft"), (42, "42")):
        m.cause = cause
        assert reset_cause(hw) == name
