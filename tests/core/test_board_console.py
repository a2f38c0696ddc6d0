# The board's serial console protocol (firmware/board/console.py, docs/CONSOLE.md),
# without a port: request lines in, reply lines out, against a stand-in board that
# records what it was asked. Plain test functions: pytest and MicroPython.

import json

from board.console import Console, LINE_MAX, OpError
from mast.config import ConfigError


class StubBoard:
    """Records the ops the console asks for; answers like the real board does."""

    def __init__(self):
        self.calls = []
        self.cfg = {"name": "b1"}

    def hello(self):
        self.calls.append(("hello",))
        return {"firmware": "mast-board", "board": "stub"}

    def get(self, key=None):
        self.calls.append(("get", key))
        if key is None:
            return self.cfg
        if key not in self.cfg:
            raise ConfigError(key, "is not set")
        return self.cfg[key]

    def set(self, key, value):
        self.calls.append(("set", key, value))
        if key == "port" and (type(value) is not int or not 1 <= value <= 65535):
            raise ConfigError(key, "must be an integer from 1 to 65535")
        self.cfg[key] = value
        return {"key": key, "pending": True}

    def unset(self, key):
        self.calls.append(("unset", key))
        return {"key": key, "pending": True}

    def validate(self):
        self.calls.append(("validate",))
        return {"valid": True}

    def commit(self):
        self.calls.append(("commit",))
        return {"committed": True, "bytes": 10}

    def apply(self):
        self.calls.append(("apply",))
        return {"applied": True, "associations": "kept"}

    def status(self):
        self.calls.append(("status",))
        return {"mode": "normal"}

    def uplink(self, name, state, addr):
        self.calls.append(("uplink", name, state, addr))
        if name != "eth":
            raise OpError("no uplink %r" % name)
        return {"name": name}

    def maintenance(self, on, reason=None):
        self.calls.append(("maintenance", on))
        return {"maintenance": on, "rebooting": True}

    def reboot(self):
        self.calls.append(("reboot",))
        return {"rebooting": True}

    def once(self, module, fn, *args):
        """As main.Board.once(module, fn, *args) carries out every op: here by the method of
        this stand-in named after the op."""
        return getattr(self, {"op_set": "set", "op_unset": "unset", "report": "inventory"}.get(fn, fn))(*args)


def session():
    out = []
    board = StubBoard()
    return Console(board, out.append), board, out


def ask(con, out, line):
    """Send one line (text or bytes); the one reply, parsed."""
    n = len(out)
    con.feed((line if type(line) is bytes else line.encode()) + b"\n")
    assert len(out) == n + 1, out[n:]
    return json.loads(out[-1])


# ---- every op ------------------------------------------------------------------------


def test_hello_answers_with_the_id_and_ok():
    con, b, out = session()
    r = ask(con, out, '{"id": 7, "op": "hello"}')
    assert r == {"id": 7, "ok": True, "result": {"firmware": "mast-board", "board": "stub"}}


def test_every_op_reaches_the_board_with_its_fields():
    con, b, out = session()
    lines = [
        '{"id": 1, "op": "get"}',
        '{"id": 2, "op": "get", "key": "name"}',
        '{"id": 3, "op": "set", "key": "uplinks.cell.cost", "value": 10}',
        '{"id": 4, "op": "unset", "key": "uplinks.cell.cost"}',
        '{"id": 5, "op": "validate"}',
        '{"id": 6, "op": "commit"}',
        '{"id": 7, "op": "apply"}',
        '{"id": 8, "op": "status"}',
        '{"id": 9, "op": "uplink", "name": "eth", "state": "down"}',
        '{"id": 10, "op": "uplink", "name": "eth", "addr": "127.0.0.9"}',
        '{"id": 11, "op": "maintenance", "state": "on"}',
        '{"id": 12, "op": "maintenance", "state": "off"}',
        '{"id": 13, "op": "reboot"}',
    ]
    for i, line in enumerate(lines):
        r = ask(con, out, line)
        assert r["id"] == i + 1 and r["ok"] is True, r
    assert b.calls == [
        ("get", None), ("get", "name"), ("set", "uplinks.cell.cost", 10),
        ("unset", "uplinks.cell.cost"), ("validate",), ("commit",), ("apply",), ("status",),
        ("uplink", "eth", "down", None), ("uplink", "eth", None, "127.0.0.9"),
        ("maintenance", True), ("maintenance", False), ("reboot",),
    ]


def test_text_ids_are_echoed_and_a_missing_id_is_null():
    con, b, out = session()
    assert ask(con, out, '{"id": "a-7", "op": "hello"}')["id"] == "a-7"
    assert ask(con, out, '{"op": "hello"}')["id"] is None


def test_a_board_error_is_an_error_reply_with_the_id():
    con, b, out = session()
    r = ask(con, out, '{"id": 3, "op": "set", "key": "port", "value": 70000}')
    assert r == {"id": 3, "ok": False, "error": "port: must be an integer from 1 to 65535"}
    assert "port" not in b.cfg


# ---- bad input: an error reply, nothing changed ---------------------------------------------


def bad(line):
    con, b, out = session()
    r = ask(con, out, line)
    assert r["ok"] is False and type(r["error"]) is str and r["error"], r
    assert b.calls == [], b.calls
    return r


def test_non_json_gets_an_error_with_a_null_id():
    r = bad("hello world")
    assert r == {"id": None, "ok": False, "error": "not JSON"}


def test_truncated_json_gets_an_error_with_a_null_id():
    assert bad('{"id": 5, "op": "set", "key": "x", "val')["id"] is None


def test_json_that_is_not_an_object_is_refused():
    for line in ("[1, 2]", "7", '"hello"', "null", "true"):
        r = bad(line)
        assert r["error"].startswith("a request is a JSON object"), r


def test_unknown_op_is_refused_and_not_echoed():
    r = bad('{"id": 4, "op": "format_flash"}')
    assert r["id"] == 4 and r["error"].startswith("unknown op (known: apply, commit, get, hello")
    assert "format_flash" not in r["error"]


def test_missing_op_is_refused():
    assert bad('{"id": 4}')["error"].startswith("no op (known:")


def test_wrong_types_are_refused():
    for line, err in (
        ('{"id": 1, "op": 5}', "unknown op"),
        ('{"id": [1], "op": "hello"}', "id must be an integer or text"),
        ('{"id": 1, "op": "get", "key": 5}', "key must be text"),
        ('{"id": 1, "op": "set", "key": "port"}', "op set needs the field value"),
        ('{"id": 1, "op": "uplink", "name": "eth", "state": "sideways"}', "state must be up or down"),
        ('{"id": 1, "op": "maintenance", "state": true}', "state must be on or off"),
        ('{"id": 1, "op": "uplink", "name": "eth"}', "op uplink needs exactly one of state"),
        ('{"id": 1, "op": "uplink", "name": "eth", "state": "up", "addr": "127.0.0.1"}',
         "op uplink needs exactly one of state"),
        ('{"id": 1, "op": "hello", "verbose": true}', "op hello takes no field 'verbose'"),
        ('{"id": true, "op": "hello"}', "id must be an integer or text"),
        ('{"id": 1.5, "op": "hello"}', "id must be an integer or text"),
        ('{"id": 1, "op": "get", "key": "%s"}' % ("k" * 256), "key must be text of 1 to 255"),
    ):
        r = bad(line)
        assert r["error"].startswith(err), (line, r)


def test_an_id_that_is_not_an_integer_or_text_is_never_echoed():
    for rid in ("true", "1.5"):
        assert bad('{"id": %s, "op": "hello"}' % rid)["id"] is None


def test_text_of_255_characters_reaches_the_board():
    con, b, out = session()
    assert ask(con, out, '{"id": 1, "op": "get", "key": "%s"}' % ("k" * 255))["id"] == 1
    assert b.calls == [("get", "k" * 255)]


def test_a_bug_in_an_op_is_an_internal_error_reply_and_the_console_goes_on():
    con, b, out = session()

    def broken():
        raise TypeError("a bug")

    b.status = broken
    r = ask(con, out, '{"id": 2, "op": "status"}')
    assert r == {"id": 2, "ok": False, "error": "internal error: TypeError: a bug"}, r
    assert ask(con, out, '{"id": 3, "op": "hello"}')["ok"] is True
    assert (con.requests, con.errors) == (2, 1)


def test_a_text_id_over_64_characters_is_refused_and_never_echoed():
    r = bad('{"id": "%s", "op": "hello"}' % ("x" * 65))
    assert (r["id"], r["error"]) == (None, "id must be at most 64 characters")
    r = bad('{"id": "%s", "op": "hello", "x": 1}' % ("y" * 64))  # 64: usable, so echoed
    assert r["id"] == "y" * 64 and r["error"] == "op hello takes no field 'x'"


def test_an_escaped_surrogate_is_refused_and_utf8_text_beyond_the_bmp_is_taken():
    # a character beyond U+FFFF written as a \\u surrogate pair (what ensure_ascii writes):
    # MicroPython's json made each half three bytes that are not UTF-8, and the reply echoing
    # the id (or a key, or the value later) was no longer UTF-8, so the host never matched it
    for text in ('{"id": "\\ud83d\\ude00", "op": "hello"}',
                 '{"id": 1, "op": "set", "key": "uplinks.wifi.ssid", "value": "x\\uDE00"}'):
        r = bad(text)
        assert r["id"] is None and r["error"].startswith("text with a \\u escape of a surrogate"), r
    con, b, out = session()
    r = ask(con, out, '{"id": 2, "op": "set", "key": "uplinks.wifi.ssid", "value": "caf\u00e9 \U0001F600"}')
    assert r["ok"] is True and b.calls == [("set", "uplinks.wifi.ssid", "caf\u00e9 \U0001F600")]
    assert out[-1].encode().decode("utf-8") == out[-1]
    r = ask(con, out, '{"id": 3, "op": "set", "key": "name", "value": "a\\\\ud83d \\u00e9"}')
    assert r["ok"] is True and b.calls[-1] == ("set", "name", "a\\ud83d \u00e9")  # (an escaped backslash)


def test_out_of_range_value_leaves_the_config_unchanged():
    con, b, out = session()
    r = ask(con, out, '{"id": 2, "op": "set", "key": "port", "value": 0}')
    assert r["ok"] is False and r["error"].startswith("port: must be")
    assert b.cfg == {"name": "b1"}


def test_over_long_line_is_refused_once_and_the_next_line_works():
    con, b, out = session()
    long_line = b'{"id": 1, "op": "set", "key": "name", "value": "' + b"x" * LINE_MAX + b'"}'
    con.feed(long_line + b"\n")
    assert [json.loads(x) for x in out] == [
        {"id": None, "ok": False, "error": "line longer than %d bytes" % LINE_MAX}]
    assert b.calls == []
    assert ask(con, out, '{"id": 2, "op": "hello"}')["ok"] is True


def test_binary_garbage_gets_error_replies_and_never_crashes():
    con, b, out = session()
    garbage = bytes([0xFF, 0xFE, 0x00, 0x80, 0x7B, 0x22, 0xC3, 0x28, 0x01, 0x1B, 0x5B, 0x41])
    con.feed(garbage + b"\n" + bytes(range(4, 10)) + b"\n" + b"\x00" * 50 + b"\n")
    replies = [json.loads(x) for x in out]
    assert len(replies) == 3
    for r in replies:
        assert r["id"] is None and r["ok"] is False, r
    assert replies[0]["error"] == "not UTF-8 text"
    assert b.calls == []
    assert ask(con, out, '{"id": 3, "op": "hello"}')["ok"] is True


def test_every_byte_value_but_ctrl_c_is_survived():
    seen = []

    def check(line):  # checked as it comes: 250 replies kept would crowd a small heap
        r = json.loads(line)
        assert r["ok"] is False and r["id"] is None, r
        seen.append(1)

    b = StubBoard()
    con = Console(b, check)
    for v in range(256):
        if v not in (3, 10, 13):
            con.feed(bytes([v, v, v]) + b"\n")
    assert len(seen) == 253 and b.calls == []


def test_a_reply_with_no_room_to_be_written_is_an_error_reply_with_the_id():
    # a board's full heap while it writes a reply (send: json.dump, as it encodes): the
    # request is not left unanswered, and the console goes on
    out = []
    full = [True]

    def send(obj):
        if full[0]:
            full[0] = False
            out.append('{"id": 5, "ok": tr')  # what a reply wrote of itself before it failed
            raise MemoryError("memory allocation failed")
        out.append(json.dumps(obj))

    con = Console(StubBoard(), out.append, send)
    con.feed(b'{"id": 5, "op": "hello"}\n')
    last = out[-1].split("\n")
    assert last[0] == "" and json.loads(last[1]) == {"id": 5, "ok": False, "error": "out of memory (the reply)"}
    assert con.errors == 1 and con.requests == 1
    con.feed(b'{"id": 6, "op": "hello"}\n')
    assert json.loads(out[-1])["ok"] is True


class _NoHeapRequest:
    """board.request as a board near the end of its heap meets it: its checks run out of
    memory (seen at -X heapsize=152K: no room to load request.py)."""

    @staticmethod
    def parse(line):
        raise MemoryError("memory allocation failed, allocating 296 bytes")


def test_a_request_whose_checks_run_out_of_memory_is_answered_with_its_id():
    # the reply had a null id, so the host, waiting for its request's id, never saw it and
    # timed out; the id is read with a plain JSON parse, and only an id request.py takes
    import sys

    con, b, out = session()
    for line, rid in ((b'{"id": 7, "op": "status"}', 7), (b'{"op": "get", "id": "x1"}', "x1"),
                      (b'{"op": "hello"}', None), (b'{"id": [7], "op": "hello"}', None),
                      (b'{"id": "' + b"y" * 65 + b'", "op": "hello"}', None), (b"[7]", None),
                      (b"not json", None), (b"x" * (LINE_MAX + 1), None)):
        sys.modules["board.request"] = _NoHeapRequest
        try:
            con.feed(line + b"\n")
        finally:
            sys.modules.pop("board.request", None)
        assert json.loads(out[-1]) == {"id": rid, "ok": False, "error": "out of memory"}, line
    assert b.calls == [] and con.errors == 8 and len(out) == 8
    assert ask(con, out, '{"id": 8, "op": "hello"}') == {"id": 8, "ok": True,
                                                        "result": {"firmware": "mast-board", "board": "stub"}}


def test_lines_may_end_with_cr_lf_or_crlf_and_blank_lines_are_ignored():
    con, b, out = session()
    con.feed(b'{"id":1,"op":"hello"}\r{"id":2,"op":"hello"}\r\n\r\n\n{"id":3,"op":"hello"}\n')
    assert [json.loads(x)["id"] for x in out] == [1, 2, 3]


def test_a_request_split_across_reads_is_put_back_together():
    con, b, out = session()
    for chunk in (b'{"id": 9, "o', b'p": "hel', b'lo"}', b"\n"):
        con.feed(chunk)
    assert [json.loads(x)["id"] for x in out] == [9]


def test_every_reply_is_one_line_of_json():
    con, b, out = session()
    con.feed(b'{"id":1,"op":"status"}\nnope\n{"id":2,"op":"get","key":"x"}\n')
    for x in out:
        assert "\n" not in x
        assert type(json.loads(x)) is dict


# ---- Ctrl-C ------------------------------------------------------------------------------------


def _interrupted(con, data):
    """Feed data; whether it raised KeyboardInterrupt (a Ctrl-C in it)."""
    try:
        con.feed(data)
    except KeyboardInterrupt:
        return True
    return False


def test_ctrl_c_raises_keyboard_interrupt_and_leaves_the_rest_unread():
    con, b, out = session()
    assert _interrupted(con, b'{"id": 1, "op": "hel\x03') and out == [] and b.calls == []
    # the half line before Ctrl-C is forgotten: the next request stands alone
    assert ask(con, out, '{"id": 2, "op": "hello"}')["id"] == 2


def test_ctrl_c_after_whole_lines_answers_them_first():
    # the lines before a Ctrl-C in the same read were dropped unanswered (a set among them)
    con, b, out = session()
    assert _interrupted(con, b'{"id": 1, "op": "set", "key": "name", "value": "x"}\n{"id": 2, "op": "hello"}\n\x03{"id": 3')
    assert [json.loads(x)["id"] for x in out] == [1, 2]
    assert b.calls[0] == ("set", "name", "x")
    assert ask(con, out, '{"id": 4, "op": "hello"}')["id"] == 4


class _NoHeap:
    """A line buffer on a full heap: taking one more byte raises MemoryError."""

    def append(self, b):
        raise MemoryError("memory allocation failed, allocating 64 bytes")

    def __len__(self):
        return 0

    def __setitem__(self, i, v):
        pass


def test_a_line_the_heap_had_no_room_for_gets_a_reply_and_the_next_line_works():
    # at the end of a board's heap a line's byte found no room: the MemoryError left the
    # console (the runtime counted it), the line got no reply, and the half-kept buffer made
    # every later line fail the same way: a console that answered nothing any more
    con, b, out = session()
    con.buf = _NoHeap()
    con.feed(b'{"id": 1, "op": "hello"}\n{"id": 2, "op": "hello"}\n')
    assert [json.loads(x) for x in out] == [
        {"id": None, "ok": False, "error": "out of memory (the line was lost)"},
        {"id": 2, "ok": True, "result": {"firmware": "mast-board", "board": "stub"}}], out
    assert (con.requests, con.errors) == (2, 1)


def test_line_reader_reports_complete_lines_only():
    r = Console(None, None, limit=8)
    assert r.lines(b"abc") == []
    assert r.lines(b"de\nfg") == [b"abcde"]
    assert r.lines(b"123456789\n") == [None]  # "fg" + 9 bytes is over the limit
    assert r.lines(b"ok\n") == [b"ok"]


# ---- edges (the reader's state after Ctrl-C, field checks, the maintenance reason) --------------


def test_ctrl_c_in_an_over_long_line_leaves_the_next_request_whole():
    # Ctrl-C ends the line being dropped as too long too: the request after it is answered,
    # not dropped up to its newline and refused as "line longer than ..."
    con, b, out = session()
    assert _interrupted(con, b'{"id": 1, "op": "set", "value": "' + b"x" * (LINE_MAX + 10) + b"\x03")
    assert out == [] and b.calls == []
    assert ask(con, out, '{"id": 2, "op": "hello"}') == {
        "id": 2, "ok": True, "result": {"firmware": "mast-board", "board": "stub"}}


def test_empty_text_in_a_text_field_is_refused():
    for line, err in (('{"id": 1, "op": "get", "key": ""}', "key must be text of 1 to 255"),
                      ('{"id": 1, "op": "uplink", "name": "", "state": "up"}', "name must be text of 1 to 255"),
                      ('{"id": 1, "op": "maintenance", "state": "on", "reason": 5}', "reason must be text of 1 to 255"),
                      ('{"id": 1, "op": "maintenance", "state": "on", "reason": "%s"}' % ("r" * 256),
                       "reason must be text of 1 to 255"),
                      ('{"id": 1, "op": "uplink", "name": "eth", "addr": ["127.0.0.1"]}', "addr must be text of 1 to 255")):
        r = bad(line)
        assert r["id"] == 1 and r["error"].startswith(err), (line, r)


def test_an_unknown_field_is_named_in_at_most_32_characters():
    # (the field's name is input: it is cut short in the reply, never echoed whole)
    r = bad('{"id": 1, "op": "hello", "%s": 1}' % ("s" * 300))
    assert r == {"id": 1, "ok": False, "error": "op hello takes no field '%s" % ("s" * 31)}, r


def test_maintenance_passes_its_reason_to_the_board():
    con, b, out = session()
    seen = []

    def maintenance(on, reason=None):
        seen.append((on, reason))
        return {"maintenance": on}

    b.maintenance = maintenance
    assert ask(con, out, '{"id": 1, "op": "maintenance", "state": "on", "reason": "swap the SIM"}')["ok"] is True
    assert ask(con, out, '{"id": 2, "op": "maintenance", "state": "off"}')["ok"] is True
    assert seen == [(True, "swap the SIM"), (False, None)]


def test_json_nested_too_deep_for_the_parser_is_not_json():
    # (CPython's parser raises RecursionError: the reply says "not JSON", not "internal error";
    # MicroPython's may run out of memory on the way, and says so)
    import sys

    r = bad("[" * 2000 + "]" * 40)
    errs = ("not JSON", "out of memory") if sys.implementation.name == "micropython" else ("not JSON",)
    assert r["id"] is None and r["error"] in errs, r


def test_an_id_of_true_is_not_echoed_when_the_checks_run_out_of_memory():
    import sys

    con, b, out = session()
    sys.modules["board.request"] = _NoHeapRequest
    try:
        con.feed(b'{"id": true, "op": "hello"}\n')
    finally:
        sys.modules.pop("board.request", None)
    assert json.loads(out[-1]) == {"id": None, "ok": False, "error": "out of memory"}


class _NoHeapForTheLine(bytearray):
    """A line kept whole, but no block for its copy at the newline (CPython only: MicroPython's
    bytes() takes no __bytes__)."""

    def __bytes__(self):
        raise MemoryError("memory allocation failed, allocating 24 bytes")


def test_a_line_with_no_heap_for_its_copy_is_lost_not_too_long():
    import sys

    if sys.implementation.name == "micropython":
        return
    con, b, out = session()
    con.buf = _NoHeapForTheLine()
    con.feed(b'{"id": 1, "op": "hello"}\n{"id": 2, "op": "hello"}\n')
    assert [json.loads(x)["error" if i == 0 else "id"] for i, x in enumerate(out)] == [
        "out of memory (the line was lost)", 2], out


def test_a_request_the_json_parser_has_no_heap_for_is_out_of_memory_not_bad_json():
    # (the host retries an out of memory; it would not retry a line it was told is not JSON)
    from board import compat

    real = compat.json

    class NoHeapJson:
        dumps = staticmethod(lambda obj: real.dumps(obj))

        @staticmethod
        def loads(text):
            raise MemoryError("memory allocation failed, allocating 512 bytes")

    con, b, out = session()
    compat.json = NoHeapJson
    try:
        con.feed(b'{"id": 4, "op": "hello"}\n')
    finally:
        compat.json = real
    assert [json.loads(x) for x in out] == [{"id": None, "ok": False, "error": "out of memory"}], out
    assert b.calls == [] and ask(con, out, '{"id": 5, "op": "hello"}')["ok"] is True
