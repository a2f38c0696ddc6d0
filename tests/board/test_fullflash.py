# A board whose flash is full (its app's files filled it) or read-only: every write the
# firmware makes fails with OSError (ENOSPC, EROFS) after creating the file, empty, as a real
# filesystem does. The board must still boot and run (it rebooted for ever: the boot count's
# write crashed every boot, so no boot loop ever reached maintenance), and a commit must say
# that the flash is full, leave mast.json as it was and no torn mast.json.tmp (it said
# "internal error: OSError: 28", which `mast config` showed as "the configuration is not
# valid"). Plain test functions: pytest and MicroPython.

import json
import sys

from fake_machine import FakeMachine
from fake_files import FakeFiles
from board.hw import Hardware
from board.main import Board, STABLE_MS, CRASH_LIMIT
from board.store import MAINT, BOOTS, CONFIG, TMP
from test_maintenance import ask, shutdown  # (one copy of the console helpers)

PORT = 17651 if sys.implementation.name == "cpython" else 17661  # (below 32768: never a kernel pick)
BOARD = {"name": "test-board", "title": "a test board", "port": "unix", "routing": "source",
         "soft_reset": True, "watchdog_ms": 5000, "install": "flash",
         "heap": {"bytes": 65536, "notes": "test"},
         "uplinks": {"eth": {"kind": "sim", "priority": 10, "cost": 0, "address": "127.0.0.2"}}}
GOOD = json.dumps({"name": "b1", "port": PORT}).encode()


class FullFiles(FakeFiles):
    """The board's files on a flash that takes no more (errno 28, or 30: read-only)."""

    def __init__(self, data, errno=28, creates=True):
        FakeFiles.__init__(self, data)
        self.errno = errno
        self.creates = creates  # False: not even a new file's entry fits

    def write(self, name, data):
        if self.creates:
            self.data[name] = b""  # (opened, so created: nothing of it written)
        raise OSError(self.errno, "ENOSPC" if self.errno == 28 else "EROFS")


class Clock:
    def __init__(self):
        self.t = 0

    def __call__(self):
        return self.t


def new_board(files):
    m = FakeMachine(trace=[])
    out = []
    b = Board(hw=Hardware(machine=m, network=None), files=files, write=out.append, clock=Clock(),
              platform="linux", random=lambda n: bytes(n), app=None)
    return b, m, out


def full_board(extra=None, errno=28, creates=True):
    d = {"board.json": json.dumps(BOARD).encode(), CONFIG: GOOD}
    d.update(extra or {})
    return FullFiles(d, errno, creates)


def test_a_board_on_a_full_flash_boots_runs_and_says_it_cannot_count_its_boots():
    f = full_board({BOOTS: b"1"})
    b, m, out = new_board(f)
    b.boot()  # (before: OSError 28 from the boot count's write, a crash, a reset: for ever)
    b.step(100)
    b.step(STABLE_MS)  # the stable run's record fails too: no crash either
    shutdown(b)
    assert b.mode == "normal" and b.stable and m.resets == 0
    assert f.data[BOOTS] == b"1" and BOOTS + ".tmp" not in f.data  # no torn file left
    logs = [json.loads(x).get("log") for x in out]
    assert "crash" not in logs
    assert ("cannot count this boot in mast.boots: the flash is full; until there is room, no "
            "boot loop ends in maintenance (free some: mpremote rm)") in logs


def test_a_boot_loop_on_a_full_flash_still_ends_in_maintenance():
    f = full_board({BOOTS: str(CRASH_LIMIT).encode()}, creates=False)  # (not even the flag)
    b, m, out = new_board(f)
    b.boot()
    shutdown(b)
    assert b.mode == "maintenance" and m.resets == 0
    assert b.maint_reason == "boot loop: %d boots in a row crashed or hung" % CRASH_LIMIT
    assert "crash" not in [json.loads(x).get("log") for x in out]


def test_a_commit_on_a_full_flash_says_so_and_leaves_mast_json_whole_and_no_tmp():
    f = full_board()
    b, m, out = new_board(f)
    b.boot()
    assert ask(b, out, {"id": 1, "op": "set", "key": "port", "value": PORT + 1})["ok"]
    r = ask(b, out, {"id": 2, "op": "commit"})
    shutdown(b)
    assert not r["ok"] and r["error"] == ("cannot save the configuration: the flash is full "
                                          "(writing mast.json.tmp); mast.json is as it was"), r
    assert f.data[CONFIG] == GOOD and TMP not in f.data and MAINT not in f.data


def test_a_commit_on_a_read_only_flash_says_so():
    f = full_board(errno=30)
    b, m, out = new_board(f)
    b.boot()
    assert ask(b, out, {"id": 1, "op": "set", "key": "port", "value": PORT + 1})["ok"]
    r = ask(b, out, {"id": 2, "op": "commit"})
    shutdown(b)
    assert r["error"] == ("cannot save the configuration: the flash is read-only (writing "
                          "mast.json.tmp); mast.json is as it was"), r
    assert f.data[CONFIG] == GOOD and TMP not in f.data


def test_maintenance_on_with_a_full_flash_still_reboots_into_maintenance():
    # (it answered "internal error: OSError: 28", yet left the empty flag file behind: the
    # next boot was in maintenance all the same, after the user was told it was refused)
    f = full_board()
    b, m, out = new_board(f)
    b.boot()
    r = ask(b, out, {"id": 1, "op": "maintenance", "state": "on"})
    shutdown(b)
    assert r["ok"] and r["result"] == {"maintenance": True, "rebooting": True}, r
    assert f.data[MAINT] == b""  # its presence is what counts
    b2, m2, out2 = new_board(f)
    b2.boot()
    shutdown(b2)
    assert b2.mode == "maintenance" and b2.maint_reason == "requested"


def test_maintenance_on_when_the_flash_cannot_even_make_the_flag_says_so_and_stays():
    f = full_board(creates=False)
    b, m, out = new_board(f)
    b.boot()
    r = ask(b, out, {"id": 1, "op": "maintenance", "state": "on"})
    shutdown(b)
    assert not r["ok"] and r["error"] == ("cannot set maintenance mode: the flash is full (writing "
                                          "mast.maint)"), r
    assert MAINT not in f.data and b.pending is None and b.mode == "normal"


def test_maintenance_off_when_the_boot_count_cannot_be_reset_says_so():
    # a boot loop on a full flash ended in maintenance, its count (CRASH_LIMIT) left as it
    # was; maintenance off answered "rebooting" while the next boot, counting that many boots
    # in a row, was in maintenance again ("boot loop"): the user was told it had worked
    f = full_board({BOOTS: str(CRASH_LIMIT).encode()}, creates=False)
    b, m, out = new_board(f)
    b.boot()
    assert b.mode == "maintenance"
    r = ask(b, out, {"id": 1, "op": "maintenance", "state": "off"})
    shutdown(b)
    assert not r["ok"] and r["error"].startswith("cannot leave maintenance mode: the flash is "
                                                 "full (writing mast.boots)"), r
    assert b.pending is None and b.mode == "maintenance"


def test_maintenance_off_on_a_read_only_flash_says_so():
    # the flag could not be removed (nor the count reset): the reply said "rebooting" and the
    # next boot was in maintenance again
    f = full_board({MAINT: b"requested"}, errno=30)
    b, m, out = new_board(f)
    b.boot()
    assert b.mode == "maintenance"
    f.remove = lambda name: None  # (read-only: Files.remove's OSError is swallowed)
    r = ask(b, out, {"id": 1, "op": "maintenance", "state": "off"})
    shutdown(b)
    assert not r["ok"] and r["error"] == ("cannot leave maintenance mode: the flash is read-only "
                                          "(writing mast.boots); the next boot would be in "
                                          "maintenance again"), r
    assert b.pending is None and f.data[MAINT] == b"requested"
