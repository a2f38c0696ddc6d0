# The watchdog and maintenance flow of the board firmware (board/main.py) with
# the fake `machine` (tests/fakes): the flag is read before the watchdog starts;
# `maintenance on` persists it and reboots; maintenance starts no watchdog, no
# uplinks, no association and no app, yet the console works; three boots in a row
# that crash or hang enter maintenance. Plain test functions: pytest and MicroPython.

import json
import sys

from fake_machine import FakeMachine, FakeReset
from fake_files import FakeFiles
from board.hw import Hardware
from board import main as board_main
from board.main import Board, STABLE_MS, STABLE_RETRY_MS, CRASH_LIMIT
from board.store import MAINT, BOOTS, CONFIG, BAK

# make test's two workers can run this module on CPython and on MicroPython
# (tests/host/test_board_micropython.py) at the same moment: each binds a port of its own
PORT = 17611 if sys.implementation.name == "cpython" else 17641  # (+ 1, + 2; below 32768: never a kernel pick)
BOARD = {"name": "test-board", "title": "a test board", "port": "unix", "routing": "source",
         "soft_reset": True, "watchdog_ms": 5000, "install": "flash",
         "heap": {"bytes": 65536, "notes": "test"},
         "uplinks": {"eth": {"kind": "sim", "priority": 10, "cost": 0, "address": "127.0.0.2"}}}


class Clock:
    def __init__(self):
        self.t = 0

    def __call__(self):
        return self.t


class FakeStdio:
    """The console's port: bytes queued by the test, lines written collected."""

    def __init__(self, chunks=()):
        self.stream = None
        self.chunks = list(chunks)
        self.lines = []
        self.eof = False

    def read(self):
        return self.chunks.pop(0) if self.chunks else b""

    def wait(self, ms):
        if not self.chunks:
            self.eof = True  # nothing more will come: let run() end the test
            raise KeyboardInterrupt

    def write(self, line):
        self.lines.append(line)


def new_board(files, trace=None, machine=None, stdio=None):
    trace = trace if trace is not None else []
    m = machine or FakeMachine(trace=trace)
    out = []
    clock = Clock()
    b = Board(hw=Hardware(machine=m, network=None), files=files,
              write=None if stdio else out.append, clock=clock, platform="linux",
              random=lambda n: bytes(n), app=None, stdio=stdio)
    return b, m, out, clock


def files_with(extra=None, trace=None):
    d = {"board.json": json.dumps(BOARD).encode(),
         CONFIG: json.dumps({"name": "b1", "port": PORT}).encode()}
    d.update(extra or {})
    return FakeFiles(d, trace)


def ask(b, out, req):
    n = len(out)
    b.feed((json.dumps(req) + "\n").encode())
    replies = [json.loads(x) for x in out[n:] if '"ok"' in x]
    assert len(replies) == 1, out[n:]
    return replies[0]


def shutdown(b):
    if b.rt is not None:
        b.rt.shutdown()


def test_the_flag_is_read_before_the_watchdog_starts():
    trace = []
    b, m, out, clock = new_board(files_with(trace=trace), trace)
    b.boot()
    shutdown(b)
    assert ("read", MAINT) in trace and ("WDT", 5000) in trace
    assert trace.index(("read", MAINT)) < trace.index(("WDT", 5000))
    assert len(m.wdts) == 1 and b.mode == "normal"


def test_a_normal_boot_feeds_the_watchdog_and_counts_the_boot():
    f = files_with()
    b, m, out, clock = new_board(f)
    b.boot()
    b.step(100)
    b.step(200)
    shutdown(b)
    assert m.wdts[0].feeds == 2
    assert f.data[BOOTS] == b"1"
    assert json.loads(out[0])["log"] == "boot"


def test_a_stable_run_resets_the_boot_loop_counter():
    f = files_with({BOOTS: b"2"})
    b, m, out, clock = new_board(f)
    b.boot()
    assert f.data[BOOTS] == b"3"
    b.step(STABLE_MS - 1)
    assert f.data[BOOTS] == b"3"
    b.step(STABLE_MS)
    shutdown(b)
    assert f.data[BOOTS] == b"0" and b.stable


class NoHeapOnce(FakeFiles):
    """A board's files where the next write of `fail` (set by the test) raises MemoryError,
    as a board near the end of its heap does (seen at -X heapsize=152K: the stable boot's
    record, 30 s into a boot, crashed the board, and three such boots end in maintenance)."""

    def __init__(self, data):
        FakeFiles.__init__(self, data)
        self.fail = None

    def write(self, name, data):
        if name == self.fail:
            self.fail = None
            raise MemoryError("memory allocation failed, allocating 272 bytes")
        FakeFiles.write(self, name, data)


def test_no_heap_to_record_a_stable_boot_is_no_crash_and_it_is_tried_again():
    f = NoHeapOnce(files_with({BOOTS: b"2"}).data)
    b, m, out, clock = new_board(f)
    b.boot()
    assert f.data[BOOTS] == b"3"
    f.fail = BOOTS + ".tmp"
    b.step(STABLE_MS)  # (no heap for it: before, a crash and a reset)
    assert f.fail is None and f.data[BOOTS] == b"3" and not b.stable
    b.step(STABLE_MS + STABLE_RETRY_MS - 1)
    assert f.data[BOOTS] == b"3" and not b.stable
    b.step(STABLE_MS + STABLE_RETRY_MS)
    shutdown(b)
    assert f.data[BOOTS] == b"0" and b.stable and m.resets == 0
    assert not [x for x in out if '"crash"' in x]


class NoHeapEvent:
    """An event the heap has no room to report (its dict)."""

    def as_dict(self):
        raise MemoryError("memory allocation failed, allocating 128 bytes")


def booted():
    """A board booted and through its first turn: (board, machine, output)."""
    b, m, out, clock = new_board(files_with())
    b.boot()
    b.step(50)
    return b, m, out


def with_app(b, app):
    """b running app (an object with the hook's methods) as its app, due at once."""
    from board.hook import AppRunner

    b.app = AppRunner(b, "app")
    b.app.app = app
    b.app.due = 0


def test_an_event_with_no_heap_to_report_it_is_counted_and_the_board_goes_on():
    b, m, out = booted()
    b.rt._events.append(NoHeapEvent())
    b.step(100)  # (before: the MemoryError left the loop, a crash and a reset)
    assert b.rt.counters.get("no_memory") == 1 and m.resets == 0
    b.log("after")
    b.step(200)
    shutdown(b)
    assert json.loads(out[-1]) == {"log": "after"}


class NoHeapApp:
    def tick(self, now):
        raise MemoryError("memory allocation failed, allocating 64 bytes")


def test_an_app_error_with_no_heap_to_log_it_is_counted_and_the_board_goes_on():
    from board.hook import TICK_RETRY_MS

    b, m, out = booted()
    with_app(b, NoHeapApp())

    def emit(obj):
        raise MemoryError("memory allocation failed, allocating 96 bytes")

    b.emit = emit
    b.step(100)  # (before: the app's error, with no heap to log it, reset the board)
    assert b.app.errors == 1 and m.resets == 0
    b.step(100 + TICK_RETRY_MS - 1)
    assert b.app.errors == 1
    b.step(100 + TICK_RETRY_MS)  # ticked again (before: never again: a stream ended for good)
    shutdown(b)
    assert b.app.errors == 2 and m.resets == 0


class WordyApp:
    def tick(self, now):
        return "soon"  # (not the ms until its next call)


def test_an_app_tick_that_returns_no_number_is_an_app_error_not_a_crash():
    b, m, out = booted()
    with_app(b, WordyApp())
    b.step(100)  # (before: int("soon") left the loop: a crash and a reset)
    shutdown(b)
    assert b.app.errors == 1 and m.resets == 0 and b.app.error.startswith("tick: ValueError")
    assert json.loads(out[-1])["log"].startswith("app error in tick: ValueError")


def test_maintenance_on_persists_the_flag_replies_then_reboots():
    f = files_with()
    b, m, out, clock = new_board(f)
    b.boot()
    r = ask(b, out, {"id": 1, "op": "maintenance", "state": "on"})
    assert r == {"id": 1, "ok": True, "result": {"maintenance": True, "rebooting": True}}
    assert f.data[MAINT] == b"requested from the console"
    try:
        b.step(100)
        reset = False
    except FakeReset:
        reset = True
    shutdown(b)
    assert reset and m.resets == 1
    assert json.loads(out[-1]) == {"log": "rebooting: maintenance on"}


def test_maintenance_boot_has_no_watchdog_uplinks_association_or_app_but_a_console():
    trace = []
    f = files_with({MAINT: b"requested from the console"}, trace)
    b, m, out, clock = new_board(f, trace)
    b.boot()
    assert b.mode == "maintenance" and m.wdts == [] and ("WDT", 5000) not in trace
    assert b.rt is None and b.ep is None and b.managers == {} and b.app is None
    assert ask(b, out, {"id": 1, "op": "hello"})["result"]["mode"] == "maintenance"
    st = ask(b, out, {"id": 2, "op": "status"})["result"]
    assert st["maintenance"] == "requested from the console" and st["watchdog"] is None
    assert st["uplinks"] == {} and "associations" not in st
    assert st["config"]["unapplied"] is False  # nothing runs: apply has nothing to catch up
    r = ask(b, out, {"id": 3, "op": "apply"})
    assert r["ok"] is False and r["error"].startswith("maintenance mode")
    r = ask(b, out, {"id": 4, "op": "uplink", "name": "eth", "state": "down"})
    assert r["ok"] is False and "none run in maintenance mode" in r["error"]
    # configuration still works: set, commit (the fix for a broken config)
    assert ask(b, out, {"id": 5, "op": "set", "key": "port", "value": PORT + 1})["ok"]
    assert ask(b, out, {"id": 6, "op": "commit"})["ok"]
    assert json.loads(f.data[CONFIG].decode())["port"] == PORT + 1
    b.step(STABLE_MS + 1)
    assert f.data[BOOTS] == b"0"  # maintenance never counts as a boot of the firmware


def _off_and_the_next_boot_is_normal(f, b, m, out):
    """`maintenance off` on board b: the flag gone, a reset, and the next boot is normal."""
    r = ask(b, out, {"id": 1, "op": "maintenance", "state": "off"})
    assert r["result"] == {"maintenance": False, "rebooting": True}
    assert MAINT not in f.data
    try:
        b.step(10)
    except FakeReset:
        pass
    assert m.resets == 1
    b2, m2, out2, clock2 = new_board(f)
    b2.boot()
    shutdown(b2)
    assert b2.mode == "normal" and len(m2.wdts) == 1


def test_maintenance_off_clears_the_flag_and_the_next_boot_is_normal():
    f = files_with({MAINT: b"requested from the console"})
    b, m, out, clock = new_board(f)
    b.boot()
    _off_and_the_next_boot_is_normal(f, b, m, out)


def test_maintenance_off_in_normal_mode_clears_a_flag_set_since_the_boot():
    # the flag written while the firmware runs (`mpremote` over the REPL, a flash that
    # stopped): the board is still in normal mode, yet `maintenance off` must remove it
    f = files_with()
    b, m, out, clock = new_board(f)
    b.boot()
    assert b.mode == "normal"
    f.data[MAINT] = b"mast flash in progress"
    _off_and_the_next_boot_is_normal(f, b, m, out)
    shutdown(b)


def test_maintenance_off_after_unstable_boots_starts_the_boot_count_afresh():
    # two boots that never ran stable, then the flag written while the third runs (mast flash
    # stopped): `maintenance off` reboots on purpose, so the boot it ends is no crash; the
    # count it leaves must not send the next boot into maintenance as a boot loop
    f = files_with({BOOTS: b"2"})
    b, m, out, clock = new_board(f)
    b.boot()
    assert b.mode == "normal" and f.data[BOOTS] == b"3"
    f.data[MAINT] = b"mast flash in progress"
    _off_and_the_next_boot_is_normal(f, b, m, out)
    shutdown(b)


def test_a_commit_after_booting_from_the_backup_keeps_the_good_backup():
    # mast.json corrupt, so the board booted from mast.json.bak: its next commit must not
    # move the corrupt file over the only good copy
    old = json.dumps({"name": "b1", "port": PORT}).encode()
    f = files_with({CONFIG: b"garbage", BAK: old})
    b, m, out, clock = new_board(f)
    b.boot()
    assert b.cfg_source == BAK and b.mode == "normal"
    assert ask(b, out, {"id": 1, "op": "set", "key": "port", "value": PORT + 1})["ok"]
    assert ask(b, out, {"id": 2, "op": "commit"})["result"]["committed"]
    assert f.data[BAK] == old
    assert json.loads(f.data[CONFIG].decode()) == {"name": "b1", "port": PORT + 1}
    # mast.json is good now: the next commit keeps it as the last good copy
    assert ask(b, out, {"id": 3, "op": "set", "key": "port", "value": PORT + 2})["ok"]
    assert ask(b, out, {"id": 4, "op": "commit"})["result"]["committed"]
    shutdown(b)
    assert json.loads(f.data[BAK].decode()) == {"name": "b1", "port": PORT + 1}
    assert json.loads(f.data[CONFIG].decode()) == {"name": "b1", "port": PORT + 2}


def test_a_commit_makes_status_say_the_configuration_is_mast_json_and_drops_the_warning():
    # booted from the backup (mast.json corrupt): status says so with a warning; once the
    # candidate is committed, mast.json is good again and status must stop warning about it
    old = json.dumps({"name": "b1", "port": PORT}).encode()
    f = files_with({CONFIG: b"garbage", BAK: old})
    b, m, out, clock = new_board(f)
    b.boot()
    cfg = ask(b, out, {"id": 1, "op": "status"})["result"]["config"]
    assert cfg["source"] == BAK and "mast.json is corrupt" in cfg["warning"], cfg
    assert ask(b, out, {"id": 2, "op": "set", "key": "port", "value": PORT + 1})["ok"]
    assert ask(b, out, {"id": 3, "op": "commit"})["result"]["committed"]
    cfg = ask(b, out, {"id": 4, "op": "status"})["result"]["config"]
    shutdown(b)
    assert cfg == {"source": "mast.json", "warning": None, "uncommitted": False,
                   "unapplied": True}, cfg


def test_an_extra_sim_uplink_unset_and_applied_goes_down_and_leaves_status():
    # a sim uplink the board does not define (a relay test's second path) is added by set and
    # apply; unset and apply again must stop it: its socket gone, no longer in status
    f = files_with()
    b, m, out, clock = new_board(f)
    b.boot()
    try:
        assert ask(b, out, {"id": 1, "op": "set", "key": "uplinks.extra.kind", "value": "sim"})["ok"]
        assert ask(b, out, {"id": 2, "op": "set", "key": "uplinks.extra.address",
                            "value": "127.0.0.3"})["ok"]
        assert ask(b, out, {"id": 3, "op": "apply"})["ok"]
        b.step(100)
        st = ask(b, out, {"id": 4, "op": "status"})["result"]
        assert st["uplinks"]["extra"]["state"] == "up" and "extra" in b.rt.uplinks, st["uplinks"]
        # one the board does not define: the configuration's priority and cost, else 100 and 0
        # (below the board's own eth, priority 10: lower is preferred)
        mast = st["uplinks"]["extra"]["mast"]
        assert (mast["priority"], mast["cost"]) == (100, 0), mast
        assert ask(b, out, {"id": 5, "op": "unset", "key": "uplinks.extra"})["ok"]
        assert ask(b, out, {"id": 6, "op": "apply"})["ok"]
        b.step(200)
        st = ask(b, out, {"id": 7, "op": "status"})["result"]
        assert sorted(st["uplinks"]) == ["eth"], st["uplinks"]
        assert "extra" not in b.rt.uplinks and "extra" not in b.ep.uplinks
        assert ask(b, out, {"id": 8, "op": "uplink", "name": "extra", "state": "up"})["error"] == \
            "no uplink 'extra' (eth)"
        # a long name is cut in the error: a reply stays short whatever the request holds
        r = ask(b, out, {"id": 9, "op": "uplink", "name": "x" * 255, "state": "up"})
        assert r["error"] == "no uplink '%s (eth)" % ("x" * 39), r
    finally:
        shutdown(b)


def test_a_board_on_its_defaults_has_its_configuration_uncommitted_until_a_commit():
    # nothing on flash: status must say the configuration in use is not committed (so that
    # `mast config` tells the user to commit), and a commit writes it
    # (a board's name may hold "_", which a configuration's name may not: it becomes "-")
    f = FakeFiles({"board.json": json.dumps(dict(BOARD, name="test_board")).encode()})
    b, m, out, clock = new_board(f)
    b.boot()
    try:
        assert b.mode == "normal" and b.rt is not None
        cfg = ask(b, out, {"id": 1, "op": "status"})["result"]["config"]
        assert cfg == {"source": "defaults", "warning": "no configuration saved yet",
                       "uncommitted": True, "unapplied": False}, cfg
        assert ask(b, out, {"id": 2, "op": "commit"})["result"]["committed"]
        cfg = ask(b, out, {"id": 3, "op": "status"})["result"]["config"]
        assert cfg["source"] == "mast.json" and cfg["uncommitted"] is False, cfg
        # the default name: the board's, then the last 6 hex digits of the chip's unique id
        # (FakeMachine's is 24:0a:c4:12:34:56), so that fresh boards of a fleet differ
        assert json.loads(f.data[CONFIG].decode()) == {"name": "test-board-123456"}
    finally:
        shutdown(b)


def test_status_counts_the_console_s_requests_and_errors_and_says_why_the_board_is_generic():
    # no board.json: the board runs on its port's generic definition and status says why
    f = FakeFiles({CONFIG: json.dumps({"name": "b1", "port": PORT}).encode()})
    b, m, out, clock = new_board(f)
    b.boot()
    try:
        clock.t = 2500
        assert ask(b, out, {"id": 0, "op": "status"})["result"]["uptime_ms"] == 2500
        assert ask(b, out, {"id": 1, "op": "hello"})["ok"]
        assert ask(b, out, {"id": 2, "op": "nonsense"})["ok"] is False
        assert ask(b, out, {"id": 3, "op": "set", "key": "port", "value": 0})["ok"] is False
        st = ask(b, out, {"id": 4, "op": "status"})["result"]
        assert st["console"] == {"requests": 5, "errors": 2, "lines_dropped": 0}, st["console"]
        assert st["board_warning"] == "no board.json: generic linux definition", st
    finally:
        shutdown(b)


def test_status_counts_the_console_lines_a_full_port_dropped():
    # (board/stdio.py drops a line the port has no room for: a PC that holds a USB console
    # open and reads nothing; test_board_stdio.py shows the dropping itself)
    io = FakeStdio()
    io.dropped = 7
    b, m, out, clock = new_board(files_with(), stdio=io)
    b.boot()
    try:
        b.feed(b'{"id": 1, "op": "status"}\n')
        st = [json.loads(x) for x in io.lines if '"ok"' in x][-1]["result"]
        assert st["console"] == {"requests": 1, "errors": 0, "lines_dropped": 7}, st["console"]
    finally:
        shutdown(b)


def test_get_shows_a_candidate_that_does_not_validate_so_that_it_can_be_fixed():
    # a peer without its psk (keying psk): each set passes, the whole does not; get must still
    # show what was set (as typed), validate and commit must say what is wrong
    f = files_with()
    b, m, out, clock = new_board(f)
    b.boot()
    try:
        assert ask(b, out, {"id": 1, "op": "set", "key": "peers.srv.addresses",
                            "value": ["127.0.0.29:6278"]})["ok"]
        r = ask(b, out, {"id": 2, "op": "get"})
        assert r["ok"] and r["result"] == {"name": "b1", "port": PORT,
                                           "peers": {"srv": {"addresses": ["127.0.0.29:6278"]}}}, r
        assert ask(b, out, {"id": 3, "op": "get", "key": "peers.srv.addresses"})["result"] == \
            ["127.0.0.29:6278"]
        for i, op in ((4, "validate"), (5, "commit"), (6, "apply")):
            assert ask(b, out, {"id": i, "op": op})["error"] == \
                "peers.srv.psk: required when keying is psk"
    finally:
        shutdown(b)


def test_a_peer_added_by_apply_is_called_at_once():
    # the board initiates to its peers: one added and applied (no reboot) gets its INIT now
    out = []
    clock = Clock()
    clock.t = 7000000  # (a board's ms clock starts anywhere: uptime counts from the boot)
    b = Board(hw=Hardware(machine=FakeMachine(), network=None), files=files_with(),
              write=out.append, clock=clock, platform="linux",
              random=lambda n: bytes(range(1, n + 1)), app=None)  # (labels: not all zero)
    b.boot()
    try:
        clock.t += 100
        b.step(clock.t)
        assert ask(b, out, {"id": 0, "op": "status"})["result"]["uptime_ms"] == 100
        assert ask(b, out, {"id": 1, "op": "status"})["result"]["associations"] == []
        assert ask(b, out, {"id": 2, "op": "set", "key": "peers.srv.psk",
                            "value": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="})["ok"]
        assert ask(b, out, {"id": 3, "op": "set", "key": "peers.srv.addresses",
                            "value": ["127.0.0.29:6278"]})["ok"]
        assert ask(b, out, {"id": 4, "op": "apply"})["result"]["associations"] == "kept"
        clock.t += 100
        b.step(clock.t)
        st = ask(b, out, {"id": 5, "op": "status"})["result"]
        assert [(a["peer"], a["initiator"]) for a in st["associations"]] == [("srv", True)], st
    finally:
        shutdown(b)


def test_a_peer_that_calls_the_board_itself_is_not_called():
    # initiate false: the peer opens the association (a board behind NAT calls a server, never
    # the other way round); the board only answers it
    out = []
    clock = Clock()
    clock.t = 7000000
    b = Board(hw=Hardware(machine=FakeMachine(), network=None), files=files_with(),
              write=out.append, clock=clock, platform="linux",
              random=lambda n: bytes(range(1, n + 1)), app=None)
    b.boot()
    try:
        clock.t += 100
        b.step(clock.t)
        for i, (key, value) in enumerate((("peers.srv.psk", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="),
                                          ("peers.srv.addresses", ["127.0.0.29:6278"]),
                                          ("peers.srv.initiate", False))):
            assert ask(b, out, {"id": i, "op": "set", "key": key, "value": value})["ok"]
        assert ask(b, out, {"id": 4, "op": "apply"})["ok"]
        for _ in range(20):
            clock.t += 100
            b.step(clock.t)
        assert ask(b, out, {"id": 5, "op": "status"})["result"]["associations"] == []
    finally:
        shutdown(b)


def test_maintenance_on_when_already_in_maintenance_does_not_reboot():
    f = files_with({MAINT: b"x"})
    b, m, out, clock = new_board(f)
    b.boot()
    assert ask(b, out, {"id": 1, "op": "maintenance", "state": "on"})["result"] == \
        {"maintenance": True, "rebooting": False}
    b.step(10)
    assert m.resets == 0


def test_three_boots_in_a_row_that_never_run_stable_enter_maintenance():
    f = files_with()
    for i in range(CRASH_LIMIT):  # each boot dies (or hangs until the watchdog) early
        b, m, out, clock = new_board(f)
        b.boot()
        b.step(1000)
        shutdown(b)
        assert b.mode == "normal" and len(m.wdts) == 1
    trace = []
    f.trace = trace
    b, m, out, clock = new_board(f, trace)
    b.boot()
    assert b.mode == "maintenance" and m.wdts == []
    assert b.maint_reason == "boot loop: 3 boots in a row crashed or hung"
    assert f.data[MAINT] == b"boot loop: 3 boots in a row crashed or hung"
    # and it stays there, boot after boot, until maintenance off
    b, m, out, clock = new_board(f)
    b.boot()
    assert b.mode == "maintenance" and m.wdts == []
    ask(b, out, {"id": 1, "op": "maintenance", "state": "off"})
    b, m, out, clock = new_board(f)
    b.boot()
    shutdown(b)
    assert b.mode == "normal" and f.data[BOOTS] == b"1"


def test_reboots_asked_for_from_the_console_are_no_boot_loop():
    # `mast reset` four times in a row, each within STABLE_MS of the boot before: seen
    # putting a healthy board in maintenance ("boot loop: 3 boots in a row crashed or hung")
    f = files_with()
    for i in range(CRASH_LIMIT + 2):
        b, m, out, clock = new_board(f)
        b.boot()
        assert b.mode == "normal", (i, b.maint_reason)
        b.step(1000)
        assert ask(b, out, {"id": 1, "op": "reboot"})["result"] == {"rebooting": True}
        try:
            b.step(1100)
        except FakeReset:
            pass
        shutdown(b)
        assert m.resets == 1 and f.data[BOOTS] == b"0"
    # a boot that dies before anyone asks still counts
    b, m, out, clock = new_board(f)
    b.boot()
    shutdown(b)
    assert f.data[BOOTS] == b"1"


class _BrokenModule:
    """A firmware module that does not load as it should (a bad flash, a version mismatch):
    `from runtime.driver import Runtime` fails."""


def test_a_core_that_fails_to_load_counts_as_a_crashed_boot_and_ends_in_maintenance():
    f = files_with()
    saved = sys.modules.get("runtime.driver")
    sys.modules["runtime.driver"] = _BrokenModule()
    try:
        for i in range(CRASH_LIMIT):
            b, m, out, clock = new_board(f)
            try:
                board_main.run(b)
                reset = False
            except FakeReset:
                reset = True
            assert reset and json.loads(out[-1])["log"] == "crash"
            assert f.data[BOOTS] == str(i + 1).encode()  # counted before the core loads
        b, m, out, clock = new_board(f)
        b.boot()  # maintenance: the console only, the core not needed
        assert b.mode == "maintenance" and b.rt is None and m.wdts == []
        assert ask(b, out, {"id": 1, "op": "hello"})["result"]["mode"] == "maintenance"
    finally:
        if saved is None:
            sys.modules.pop("runtime.driver", None)
        else:
            sys.modules["runtime.driver"] = saved


def crash_at_boot(f):
    """A boot whose start raises: (machine, output, whether it reset)."""
    b, m, out, clock = new_board(f)

    def broken(cfg):
        raise RuntimeError("driver exploded")

    b.start = broken
    try:
        board_main.run(b)
        reset = False
    except FakeReset:
        reset = True
    return m, out, reset


def test_a_crash_is_said_whole_but_saved_for_logs_in_at_most_2048_bytes():
    # (the file is on flash, and `logs` reads it into a reply: a deep traceback is cut)
    f = files_with()
    b, m, out, clock = new_board(f)

    def broken(cfg):
        raise RuntimeError("x" * 5000)

    b.start = broken
    reset = False
    try:
        board_main.run(b)
    except FakeReset:
        reset = True
    assert reset and len(json.loads(out[-1])["error"]) > 5000
    assert len(f.data["mast.crash"]) == 2048 and out[-1].startswith(f.data["mast.crash"].decode())


def test_a_crash_at_boot_is_logged_as_json_and_resets_the_board():
    f = files_with()
    m, out, reset = crash_at_boot(f)
    assert reset and m.resets == 1
    crash = json.loads(out[-1])
    assert crash["log"] == "crash" and crash["error"] == "RuntimeError: driver exploded"
    assert "driver exploded" in crash["traceback"]
    assert f.data[BOOTS] == b"1"  # counted: three of these in a row -> maintenance
    assert len(m.wdts) == 1  # it crashed after the watchdog started: the reset is its job too


def test_a_crash_with_no_heap_left_to_describe_it_still_resets_the_board():
    # seen at -X heapsize=152K: the crash's own line raised MemoryError, which left run() for
    # the REPL, where a board without a watchdog stays; now a line that needs no heap, and the
    # reset whatever happens to the line
    real = board_main.dumps

    def dumps(obj):
        if obj.get("log") == "crash":
            raise MemoryError("memory allocation failed, allocating 536 bytes")
        return real(obj)

    board_main.dumps = dumps
    try:
        f = files_with()
        m, out, reset = crash_at_boot(f)
        assert reset and m.resets == 1
        crash = json.loads(out[-1])
        assert crash == {"log": "crash", "error": "MemoryError: (no memory left to say more)"}
        assert json.loads(f.data["mast.crash"].decode()) == crash
        # not even that line can be written: still the reset
        b, m, out, clock = new_board(files_with())

        def broken(cfg):
            raise RuntimeError("driver exploded")

        def write(line):
            if '"crash"' in line:
                raise MemoryError("memory allocation failed, allocating 16 bytes")
            out.append(line)

        b.start = broken
        b.write = write
        try:
            board_main.run(b)
            reset = False
        except FakeReset:
            reset = True
        assert reset and m.resets == 1 and json.loads(out[-1])["log"] == "boot"
    finally:
        board_main.dumps = real


def test_ctrl_c_on_the_console_leaves_the_firmware_for_the_repl():
    io = FakeStdio([b'{"id": 1, "op": "hello"}\n', b"\x03"])
    f = files_with({MAINT: b"x"})
    b, m, out, clock = new_board(f, stdio=io)
    board_main.run(b)  # returns: the REPL takes over
    replies = [json.loads(x) for x in io.lines]
    assert replies[-2]["id"] == 1 and replies[-2]["ok"] is True
    assert replies[-1]["log"].startswith("interrupted (Ctrl-C)")
    assert m.resets == 0
    for line in io.lines:  # everything printed was JSON
        assert type(json.loads(line)) is dict


def test_maintenance_on_keeps_the_reason_it_is_given_and_status_shows_it():
    f = files_with()
    b, m, out, clock = new_board(f)
    b.boot()
    r = ask(b, out, {"id": 1, "op": "maintenance", "state": "on", "reason": "mast flash in progress"})
    assert r["result"] == {"maintenance": True, "rebooting": True}
    assert f.data[MAINT] == b"mast flash in progress"
    try:
        b.step(10)
    except FakeReset:
        pass
    shutdown(b)
    b2, m2, out2, clock2 = new_board(f)
    b2.boot()
    assert ask(b2, out2, {"id": 2, "op": "status"})["result"]["maintenance"] == "mast flash in progress"
    r = ask(b2, out2, {"id": 3, "op": "maintenance", "state": "on", "reason": ""})
    assert r["ok"] is False and r["error"] == "reason must be text of 1 to 255 characters"


def test_logs_gives_the_recent_lines_and_the_crash_saved_before_the_reset():
    f = files_with()
    assert crash_at_boot(f)[2]
    saved = json.loads(f.data["mast.crash"].decode())
    assert saved["error"] == "RuntimeError: driver exploded" and "driver exploded" in saved["traceback"]
    b2, m2, out2, clock2 = new_board(f)
    b2.boot()
    r = ask(b2, out2, {"id": 1, "op": "logs"})["result"]
    shutdown(b2)
    assert r["last_crash"] == saved
    recent = [json.loads(x) for x in r["recent"]]
    assert recent[0]["log"] == "boot" and recent[0]["board"] == "test-board"
    assert len(r["recent"]) <= 8
    for i in range(20):  # only the last few are kept, each shortened to a bounded length
        b2.log("line %d %s" % (i, "x" * 300))
    kept = ask(b2, out2, {"id": 2, "op": "logs"})["result"]["recent"]
    assert len(kept) == 8 and kept[-1].startswith('{"log": "line 19 xxx') and kept[-1].endswith("...")
    assert max(len(x) for x in kept) <= 160


def test_logs_with_a_crash_file_that_is_not_json_says_so_and_still_gives_the_recent_lines():
    f = files_with({"mast.crash": b"\x00\xffgarbage"})
    b, m, out, clock = new_board(f)
    b.boot()
    r = ask(b, out, {"id": 1, "op": "logs"})
    shutdown(b)
    assert r["ok"], r
    assert r["result"]["last_crash"] == {"log": "crash", "error": "(unreadable: 9 bytes)"}
    assert json.loads(r["result"]["recent"][0])["log"] == "boot"


def test_boot_and_the_occasional_ops_leave_no_module_behind():
    f = files_with()
    b, m, out, clock = new_board(f)
    b.boot()
    once = list(board_main.ONCE) + ["board.request"]  # (the console's checks: console.py forgets them)
    if sys.implementation.name == "micropython":  # (and the core's schema: boards only)
        once += list(board_main.ONCE_MP)
    assert [n for n in once if n in sys.modules] == []  # boot's code went with boot
    assert ask(b, out, {"id": 1, "op": "get", "key": "name"})["result"] == "b1"
    assert ask(b, out, {"id": 2, "op": "set", "key": "port", "value": PORT + 1})["ok"]
    assert ask(b, out, {"id": 3, "op": "commit"})["result"]["committed"]
    assert ask(b, out, {"id": 4, "op": "apply"})["ok"]
    assert ask(b, out, {"id": 5, "op": "logs"})["ok"]
    assert ask(b, out, {"id": 6, "op": "status"})["result"]["associations"] is not None
    assert ask(b, out, {"id": 7, "op": "nonsense"})["id"] == 7  # a refused request, its id kept
    shutdown(b)
    assert json.loads(f.data[CONFIG].decode())["port"] == PORT + 1
    # their code costs no heap between requests
    assert [n for n in once if n in sys.modules] == []
    # ...and no firmware module that stays holds on to one of them (which would keep it all
    # in the heap; test modules may)
    held = [(k, a) for k, m in list(sys.modules.items()) if k.split(".")[0] in ("board", "mast", "runtime")
            for a, v in list(m.__dict__.items()) if type(v) is type(sys) and v.__name__ in once]
    assert held == [], held
