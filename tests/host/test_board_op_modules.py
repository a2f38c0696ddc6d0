"""What the board's boot and console ops load (firmware/board, main.ONCE) where it matters to a
board's heap: the peer addresses' check (runtime/peeraddr.py) only where a whole configuration
is checked (boot, commit), not for `get` or `set`, and it is gone again, with the schema and the
store, before boot makes the runtime's objects (which would otherwise sit among its code's
blocks once that is freed). CPython: the board with a fake clock and files; the imports an op
makes recorded through builtins.__import__."""

import builtins
import json
import sys

from test_board_turn import _board  # (a board on CPython with fake files and clock, not booted)
import runtime.driver as driver

CHECKS = ("board.settings", "board.store", "runtime.peeraddr")
PSK = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="


def _ask(b, out, req):
    """The console's reply to req, and the names of the modules the op imported."""
    seen = []
    real = builtins.__import__

    def record(name, globals=None, locals=None, fromlist=(), level=0):
        seen.append(name)
        if level and globals:  # a relative import: its full names too ("from . import x")
            full = globals.get("__package__") + ("." + name if name else "")
            seen.append(full)
            seen.extend(full + "." + x for x in fromlist or ())
        return real(name, globals, locals, fromlist, level)

    n = len(out)
    builtins.__import__ = record
    try:
        b.feed((json.dumps(req) + "\n").encode())
    finally:
        builtins.__import__ = real
    replies = [json.loads(x) for x in out[n:] if '"ok"' in x]
    assert len(replies) == 1, out[n:]
    return replies[0], seen


def test_get_and_set_load_no_peer_address_check_which_commit_does():
    out = []
    b, clock, m = _board(write=out.append)
    b.boot()
    try:
        r, seen = _ask(b, out, {"id": 1, "op": "get", "key": "port"})
        assert r["result"] == 17625 and "runtime.peeraddr" not in seen, seen
        r, seen = _ask(b, out, {"id": 2, "op": "set", "key": "port", "value": 17626})
        assert r["ok"] and "runtime.peeraddr" not in seen, seen
        r, seen = _ask(b, out, {"id": 3, "op": "commit"})  # (a whole check: the addresses too)
        assert r["result"]["committed"] and "runtime.peeraddr" in seen, seen
        # ...and the check commit gets from it is still made there
        assert _ask(b, out, {"id": 4, "op": "set", "key": "peers.srv.psk", "value": PSK})[0]["ok"]
        r, seen = _ask(b, out, {"id": 5, "op": "set", "key": "peers.srv.addresses",
                                "value": ["224.0.0.1:6278"]})
        assert r["ok"]  # (one key: its type only)
        r, seen = _ask(b, out, {"id": 6, "op": "commit"})
        assert r["error"].startswith("peers.srv.addresses: bad item '224.0.0.1:6278': a multicast address")
    finally:
        if b.rt is not None:
            b.rt.shutdown()


def test_boot_makes_the_runtime_with_the_configuration_s_checks_and_store_unloaded(monkeypatch):
    made = []

    class Runtime(driver.Runtime):
        def __init__(self, *args, **kw):
            made.append([n for n in CHECKS if n in sys.modules])
            super().__init__(*args, **kw)

    monkeypatch.setattr(driver, "Runtime", Runtime)
    b, clock, m = _board()
    b.boot()
    try:
        assert b.rt is not None and type(b.rt) is Runtime
        assert made == [[]]
    finally:
        b.rt.shutdown()


def test_each_console_op_loads_only_the_code_it_runs():
    """At 152K, a heap the traffic has fragmented had no room for get's or set's modules, nor
    for commit's (bench/footprint.py): each loaded more than it runs. get loads its own module
    and settings.py's key code, not the whole check (cfgops.py) nor the store; set loads
    settings.py alone; commit checks the whole configuration without settings.py's key code;
    hello is answered from statusop.py (Board has no hello of its own any more)."""
    out = []
    b, clock, m = _board(write=out.append)
    b.boot()
    try:
        r, seen = _ask(b, out, {"id": 1, "op": "hello"})
        assert r["result"]["firmware"] == "mast-board" and r["result"]["protocol"] == 1
        assert "board.statusop" in seen and not hasattr(b, "hello"), seen
        r, seen = _ask(b, out, {"id": 2, "op": "get", "key": "port"})
        assert r["result"] == 17625
        assert "board.getop" in seen and "board.cfgops" not in seen and "board.store" not in seen, seen
        r, seen = _ask(b, out, {"id": 3, "op": "set", "key": "port", "value": 17626})
        assert r["result"] == {"key": "port", "pending": True}
        assert "board.settings" in seen and "board.cfgops" not in seen and "board.getop" not in seen, seen
        r, seen = _ask(b, out, {"id": 4, "op": "get", "key": "port"})  # a candidate not checked yet
        assert r["result"] == 17626 and "board.cfgops" in seen, seen
        r, seen = _ask(b, out, {"id": 5, "op": "commit"})  # (checked by that get a moment ago)
        assert r["result"]["committed"] and "board.settings" not in seen, seen
        assert _ask(b, out, {"id": 6, "op": "set", "key": "port", "value": 17627})[0]["ok"]
        r, seen = _ask(b, out, {"id": 7, "op": "commit"})  # the whole check, here
        assert r["result"]["committed"] and "board.cfgops" in seen and "runtime.peeraddr" in seen, seen
        assert "board.settings" not in seen, seen
        for n in ("board.settings", "board.cfgops", "board.getop", "board.statusop"):
            assert n not in sys.modules, n  # forgotten after each op (main.ONCE)
    finally:
        if b.rt is not None:
            b.rt.shutdown()


def test_uplink_loads_its_own_module_not_the_other_occasional_ops_and_forgets_it():
    """`uplink` runs under traffic (an uplink taken down for a failover), in a heap the traffic
    has fragmented: at 152K it ran out of memory loading consoleops.py, whose maintenance,
    logs and inventory code it never runs (bench/footprint.py). It loads uplinkops.py (the
    uplink managers' ops) alone, which is gone again after the op (main.ONCE), whether the op
    succeeds or is refused."""
    out = []
    b, clock, m = _board(write=out.append)
    b.boot()
    try:
        r, seen = _ask(b, out, {"id": 1, "op": "uplink", "name": "eth", "state": "down"})
        assert r["result"]["name"] == "eth" and r["result"]["admin"] is False, r
        assert "board.uplinkops" in seen and "board.consoleops" not in seen, seen
        assert "board.uplinkops" not in sys.modules
        r, seen = _ask(b, out, {"id": 2, "op": "uplink", "name": "eth", "state": "up"})
        assert r["result"]["admin"] is True and "board.consoleops" not in seen, (r, seen)
        r, seen = _ask(b, out, {"id": 3, "op": "uplink", "name": "nope", "state": "up"})
        assert r["error"] == "no uplink 'nope' (eth)", r
        assert "board.uplinkops" not in sys.modules  # (refused: forgotten all the same)
        r, seen = _ask(b, out, {"id": 4, "op": "logs"})  # the other occasional ops: consoleops.py
        assert "recent" in r["result"] and "board.consoleops" in seen and "board.uplinkops" not in seen, seen
    finally:
        if b.rt is not None:
            b.rt.shutdown()


def test_the_modules_every_request_and_get_and_set_load_need_no_large_block():
    """request.py is loaded for every console line, settings.py for get, set and unset, in a
    heap the traffic has fragmented: at 152K its largest free blocks held 112 to 176 bytes and
    the next request's load failed for a block of 272 (bench/footprint.py, the board's
    micropython.mem_info() at the failure). A module's names are one table: up to 12 take
    192 bytes, 13 to 17 take 272 (MicroPython's map sizes; __name__ and __file__ count), and
    a dict of 13 ops took 272 more. Each keeps to 12 names and no table of more than 12."""
    from board import request, settings

    for mod in (request, settings):
        names = [k for k in vars(mod) if not k.startswith("__")] + ["__name__", "__file__"]
        assert len(names) <= 12, (mod.__name__, len(names), names)
        big = [k for k in names if type(getattr(mod, k, None)) in (dict, tuple, list)
               and len(getattr(mod, k)) > 12]
        assert big == [], (mod.__name__, big)
    assert type(request.OPS) is str  # (the ops' table is text: request.check_request reads it)
