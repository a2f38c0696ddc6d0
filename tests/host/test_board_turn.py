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

PORT = 17625  # (below 32768, where the kernel picks no port for a bind to port 0)
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


def _board(write=None, cfg=None, stdio=None):
    """A board on CPython with a fake clock and files, not booted: (board, clock, machine)."""
    clock = FakeClock(10000)
    m = FakeMachine(clock=clock)
    files = FakeFiles({"board.json": json.dumps(BOARD).encode(),
                       CONFIG: json.dumps(cfg or {"name": "b1", "port": PORT}).encode()})
    b = Board(hw=Hardware(machine=m, network=None), files=files, write=write or (lambda line: None),
              stdio=stdio, clock=clock, platform="linux", random=lambda n: bytes(n), app=None)
    return b, clock, m


def _raise(*a):
    raise Blocked()


@pytest.mark.skipif(not hasattr(signal, "setitimer"), reason="needs signal.setitimer")
def test_an_overdue_app_tick_runs_on_this_turn_without_waiting_for_a_packet():
    b, clock, m = _board()
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


class Every100:
    def __init__(self):
        self.at = []

    def tick(self, now):
        self.at.append(now)
        return 100


def test_an_app_that_asks_for_a_tick_every_100_ms_gets_one_every_100_ms():
    # the turn waits for packets until the next thing due, and an app's tick is one: a turn that
    # waited only for its uplinks (500 ms when up, 1 s at most) ticked an app asking for 100 ms
    # twice a second. The wait is the runtime's poll: here a fake one that lets the fake clock
    # run for as long as it was asked to wait (no packet ever comes)
    b, clock, m = _board()
    b.boot()
    rt = b.rt
    try:
        b.turn()  # (its uplink comes up)
        app = Every100()
        b.app = AppRunner(b, "app")
        b.app.app = app
        b.app.due = clock()
        waited = []

        def poll(ms=None):
            assert ms is not None and ms >= 0, ms  # (none or below zero: for ever)
            waited.append(ms)
            clock.advance(ms)

        b.rt.poll = poll
        start = clock()
        for _ in range(1000):  # (bounded) two seconds of the board's time
            if clock() - start >= 2000:
                break
            b.turn()
    finally:
        rt.shutdown()
    assert clock() - start == 2000 and len(waited) < 100, (clock() - start, len(waited))
    assert app.at == list(range(start, start + 2001, 100)), app.at


def test_an_uplink_whose_socket_dies_is_brought_up_again_with_a_new_one():
    # the runtime reports a socket that died (uplink_dead: the interface vanished under it);
    # the board has its manager reconnect, and the uplink comes back on a new socket
    out = []
    b, clock, m = _board(out.append)
    b.boot()
    rt = b.rt

    def ups():
        return [e for e in map(json.loads, out) if e.get("event") == "uplink_up"]

    try:
        b.turn()  # (its uplink comes up: its first turn waits for nothing)
        assert len(ups()) == 1 and "eth" in b.ep.uplinks
        rt.uplinks["eth"].sock.close()  # as if the interface vanished under the runtime
        for _ in range(600):  # (bounded: a minute of the board's time)
            rt.poll(0)  # (the runtime sees the closed socket at once)
            clock.advance(100)
            b.step(clock())
            if len(ups()) == 2:
                break
        dead = [e for e in map(json.loads, out) if e.get("event") == "uplink_dead"]
        assert [e["uplink"] for e in dead] == ["eth"], out
        assert len(ups()) == 2, out[-5:]
        assert "eth" in b.ep.uplinks  # the core has it again
    finally:
        rt.shutdown()


@pytest.mark.skipif(not hasattr(signal, "setitimer"), reason="needs signal.setitimer")
def test_ctrl_c_leaves_the_firmware_with_its_sockets_closed_so_it_can_be_run_again(monkeypatch):
    # after Ctrl-C the REPL has the port, and `from board import main; main.run()` starts the
    # firmware again in the same interpreter: it binds the same UDP addresses, which the board
    # that was interrupted must have let go of
    import socket

    from board import main as board_main
    from board.stdio import Stdio

    r, w = os.pipe()
    f = os.fdopen(r, "r")
    monkeypatch.setattr(sys, "stdin", f)
    out = []

    def write(line):
        out.append(line)
        if '"uplink_up"' in line:
            os.write(w, b"\x03")  # Ctrl-C once the uplink has its socket

    b, clock, m = _board(write, stdio=Stdio())
    old = signal.signal(signal.SIGALRM, _raise)
    signal.setitimer(signal.ITIMER_REAL, 20.0)  # a bound: the Ctrl-C is read on its first turns
    try:
        board_main.run(b)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
        f.close()
        os.close(w)
    assert json.loads(out[-1])["log"].startswith("interrupted (Ctrl-C)"), out[-3:]
    assert m.resets == 0 and '"uplink_up"' in out[-2], out[-3:]
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.bind(("127.0.0.2", PORT))  # the board's eth uplink: free again
    finally:
        s.close()


def test_an_uplink_whose_address_is_taken_is_reported_down_and_tried_again():
    # another program holds the uplink's UDP address: the uplink cannot get its socket. It is
    # reported (uplink_down, naming why) and tried again until the address is free
    import socket

    taken = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    taken.bind(("127.0.0.2", PORT))
    out = []
    b, clock, m = _board(out.append)
    b.boot()

    def events(name):
        return [e for e in map(json.loads, out) if e.get("event") == name]

    try:
        b.step(clock())
        down = events("uplink_down")
        assert [(e["uplink"], e["reason"].startswith("no socket on 127.0.0.2: ")) for e in down] == \
            [("eth", True)], out
        assert events("uplink_up") == [] and "eth" not in b.ep.uplinks
        taken.close()
        for _ in range(1200):  # (bounded: two minutes of the board's time)
            clock.advance(100)
            b.step(clock())
            if events("uplink_up"):
                break
        assert [e["uplink"] for e in events("uplink_up")] == ["eth"], out[-5:]
        assert "eth" in b.ep.uplinks
    finally:
        taken.close()
        b.rt.shutdown()


class Stop(Exception):
    pass


def _serve_turns(b, n, each=None):
    """b.serve() for n turns (bounded), then stop; -> the turns run."""
    done = [0]

    def turn():
        if done[0] == n:
            raise Stop()
        done[0] += 1
        Board.turn(b)
        if each is not None:
            each(done[0])

    b.turn = turn
    try:
        b.serve()
    except Stop:
        pass
    return done[0]


def test_a_console_whose_input_ended_is_read_no_more(monkeypatch):
    # stdin reaches its end (the host closed the port): the request before it is answered, and
    # then the board stops reading. A reader kept on a stream at its end is ready at every poll:
    # each turn would read it again and never wait (a busy loop)
    from board.stdio import Stdio

    r, w = os.pipe()
    f = os.fdopen(r, "r")
    monkeypatch.setattr(sys, "stdin", f)
    os.write(w, b'{"id": 1, "op": "hello"}\n')
    os.close(w)  # and nothing more
    port = Stdio()
    reads = []
    real_read = port.read

    def read():
        reads.append(turn[0])
        return real_read()

    port.read = read
    turn = [0]
    out = []
    b, clock, m = _board(out.append, stdio=port)
    b.boot()

    def each(n):
        turn[0] = n
        clock.advance(100)

    try:
        assert _serve_turns(b, 6, each) == 6
    finally:
        f.close()
        b.rt.shutdown()
    replies = [json.loads(x) for x in out if '"ok"' in x]
    assert [x["id"] for x in replies] == [1] and replies[0]["result"]["firmware"] == "mast-board"
    assert port.eof
    assert [n for n in reads if n >= 3] == [], reads  # its last turns read nothing


def test_a_console_the_runtime_cannot_poll_is_read_no_more_after_its_end():
    # a port with no stream to poll is read on each turn, until its end
    class Port:
        stream = None

        def __init__(self):
            self.eof = False
            self.reads = 0

        def read(self):
            self.reads += 1
            self.eof = True  # the end of its input
            return b""

    port = Port()
    b, clock, m = _board(stdio=port)
    b.boot()
    rt = b.rt

    def poll(ms=None):
        clock.advance(ms)  # (no packet ever comes: a fake wait)

    b.rt.poll = poll
    try:
        assert _serve_turns(b, 5) == 5
    finally:
        rt.shutdown()
    assert port.reads == 1


def test_an_uplinks_configured_priority_and_cost_override_the_boards():
    # the board definition says eth is priority 10, cost 0; mast.json says 50 and 7: the
    # configuration's are the ones the endpoint uses (and status shows)
    cfg = {"name": "b1", "port": PORT, "uplinks": {"eth": {"priority": 50, "cost": 7}}}
    out = []
    b, clock, m = _board(out.append, cfg=cfg)
    b.boot()
    try:
        b.step(clock())  # (its uplink comes up)
        eth = b.once("statusop", "status")["uplinks"]["eth"]["mast"]
    finally:
        b.rt.shutdown()
    assert (eth["priority"], eth["cost"]) == (50, 7), eth


class Listener:
    def __init__(self):
        self.seen = []

    def on_event(self, ev):
        self.seen.append(ev)


def test_an_app_hears_the_runtimes_events_as_the_console_does():
    # the app hook's on_event gets each event the board prints (here: a socket that died)
    out = []
    b, clock, m = _board(out.append)
    b.boot()
    rt = b.rt
    app = Listener()
    b.app = AppRunner(b, "app")
    b.app.app = app
    try:
        b.step(clock())  # (its uplink comes up)
        rt.uplinks["eth"].sock.close()
        for _ in range(10):  # (bounded)
            rt.poll(0)
            clock.advance(100)
            b.step(clock())
            if app.seen:
                break
    finally:
        rt.shutdown()
    printed = [e for e in map(json.loads, out) if e.get("event") == "uplink_dead"]
    assert [e["uplink"] for e in printed] == ["eth"], out
    assert [e for e in app.seen if e["event"] == "uplink_dead"] == printed, app.seen


class _Emits:
    def __init__(self):
        self.lines = []
        self.now = lambda: 0  # (a board's clock: the app's mast.now is this very function)

    def emit(self, obj):
        self.lines.append(obj)


class FailingTick:
    def __init__(self):
        self.at = []

    def tick(self, now):
        self.at.append(now)
        raise ValueError("boom at %d" % now)


def test_an_app_whose_tick_keeps_failing_is_logged_five_times_counted_always_and_ticked_later():
    # (an app failing each second would otherwise fill the console's log for ever)
    from board.hook import TICK_RETRY_MS

    board = _Emits()
    r = AppRunner(board, "app")
    app = r.app = FailingTick()
    r.due = 0
    for i in range(16):  # (bounded) 8 retry periods, half of the turns before one is due
        r.tick(i * TICK_RETRY_MS // 2)
    assert app.at == [i * TICK_RETRY_MS for i in range(8)], app.at
    assert board.lines == [{"log": "app error in tick: ValueError: boom at %d" % (i * TICK_RETRY_MS)}
                           for i in range(5)], board.lines
    assert r.status() == {"module": "app", "running": True, "errors": 8,
                          "last_error": "tick: ValueError: boom at %d" % (7 * TICK_RETRY_MS)}


class _FilesOf:
    def __init__(self, *names):
        self.names = names

    def exists(self, name):
        return name in self.names


def test_an_app_compiled_to_mpy_only_is_started():
    # (a board whose app is app.mpy, with no app.py beside it: the app runs)
    import types

    board = _Emits()
    board.files = _FilesOf("h14_app_mpy.mpy")
    board.now = lambda: 500
    board.ep = None
    board.bd = {"name": "test-board"}
    mod = types.ModuleType("h14_app_mpy")
    started = []
    mod.start = lambda mast: started.append(mast.board) or Ticks()
    sys.modules["h14_app_mpy"] = mod
    try:
        r = AppRunner(board, "h14_app_mpy")
        r.start()
    finally:
        sys.modules.pop("h14_app_mpy", None)
    assert started == ["test-board"] and r.error is None
    assert r.status() == {"module": "h14_app_mpy", "running": True, "errors": 0, "last_error": None}
    r.tick(500)
    assert r.app.at == [500]
    nothing = AppRunner(board, "h14_no_app")
    nothing.start()
    assert nothing.status() == {"module": "h14_no_app", "running": False, "errors": 0,
                                "last_error": "no h14_no_app.py on the board: no application"}


class _Assoc:
    def __init__(self, state):
        self.state = state


class _Ep:
    name = "b1"

    def __init__(self, states):
        self.states = states
        self.cfg = {"peers": {"zed": {}, "alpha": {}}}

    def association(self, peer=None):
        s = self.states.get(peer)
        return _Assoc(s) if s is not None else None


def test_the_apps_mast_says_up_only_for_an_established_association_and_sends_nothing_without_a_runtime():
    from board.hook import Mast
    from mast.assoc import ESTABLISHED

    board = _Emits()
    board.bd = {"name": "test-board"}
    board.rt = None  # (not started yet, or stopped for an apply)
    board.ep = _Ep({"alpha": ESTABLISHED, "zed": ESTABLISHED + 1, None: ESTABLISHED + 1})
    m = Mast(board)
    assert (m.name, m.board) == ("b1", "test-board")
    assert m.send(b"reading") is False and m.send(b"reading", "alpha") is False
    assert m.up("alpha") is True and m.up("zed") is False and m.up() is False and m.up("nobody") is False
    assert m.peers() == ["alpha", "zed"]
    board.clock = 7
    board.now = lambda: board.clock * 1000  # the board's clock: mast.now() reads it as it moves
    m = Mast(board)
    assert m.now() == 7000
    board.clock = 8
    assert m.now() == 8000
    m.log("hello")
    assert board.lines == [{"log": "hello", "app": True}]
    sent = []

    class Rt:
        def send(self, payload, peer=None):
            sent.append((payload, peer))
            return True

    board.rt = Rt()
    assert m.send(b"r1", "zed") is True and m.send(b"r2") is True
    assert sent == [(b"r1", "zed"), (b"r2", None)]


class _WithStatus:
    def __init__(self, fail=False):
        self.fail = fail

    def status(self):
        if self.fail:
            raise KeyError("n")
        return {"readings": 3}


def test_the_apps_own_status_is_shown_under_app_and_one_that_fails_is_counted():
    board = _Emits()
    r = AppRunner(board, "app")
    r.app = _WithStatus()
    assert r.status() == {"module": "app", "running": True, "errors": 0, "last_error": None,
                          "app": {"readings": 3}}
    r.app = _WithStatus(fail=True)
    assert "app" not in r.status()  # (its failure is counted: the next status shows it)
    st = r.status()
    assert (st["errors"], st["last_error"], "app" in st) == (1, "status: KeyError: 'n'", False), st
    assert board.lines == [{"log": "app error in status: KeyError: 'n'"}, {"log": "app error in status: KeyError: 'n'"}]


def test_an_uplink_whose_socket_finds_no_memory_is_reported_down_and_tried_again():
    # the runtime loads an uplink's setup code for the call (runtime/uplinkops.py): in a heap the
    # traffic has fragmented that can raise MemoryError, which left the board's step (a crash,
    # then a reboot) instead of the uplink being tried again, as when its address is taken
    import json

    out = []
    b, clock, m = _board(out.append)
    b.boot()
    real, calls = b.rt.add_uplink, []

    def add_uplink(*a):
        calls.append(a[0])
        if len(calls) == 1:
            raise MemoryError
        return real(*a)

    b.rt.add_uplink = add_uplink

    def events(name):
        return [e for e in map(json.loads, out) if e.get("event") == name]

    try:
        b.step(clock())
        assert [(e["uplink"], e["reason"]) for e in events("uplink_down")] == \
            [("eth", "no socket on 127.0.0.2: out of memory")], out
        for _ in range(1200):  # (bounded: two minutes of the board's time)
            clock.advance(100)
            b.step(clock())
            if events("uplink_up"):
                break
        assert [e["uplink"] for e in events("uplink_up")] == ["eth"] and calls[:2] == ["eth", "eth"], out[-5:]
        assert "eth" in b.ep.uplinks
    finally:
        b.rt.shutdown()
