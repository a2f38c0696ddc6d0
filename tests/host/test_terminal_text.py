"""What the host tools print of text that came from elsewhere (a board's log line, an event's
field, an app's print, an error a board sent): its control characters reach the terminal only
as escapes (output.shown), so a board can neither drive the user's terminal (ESC sequences
that recolour, retitle, clear, move the cursor; CR that writes over a line; BEL) nor forge a
line of its own."""

import argparse
import io
import json
import os
import re
import sys

from boardcli import HOST_TOOLS  # noqa: F401  (puts host-tools on sys.path)

from mast_tools import output
from mast_tools.cmd_console import logs_text, run
from mast_tools.consoleclient import ConsoleClient, Incoming, readable

# every character a terminal takes as a control (C0, DEL, C1), and the bidi controls
CONTROLS = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def test_shown_writes_each_control_character_as_an_escape_and_keeps_other_text():
    assert output.shown("Caf\u00e9 \u65e5\u672c \ufffd ok") == "Caf\u00e9 \u65e5\u672c \ufffd ok"
    assert output.shown("a\x1b[2Jb\rc\x07d\ne\tf\x9bg\u202eh") == (
        "a\\x1b[2Jb\\rc\\x07d\\ne\\tf\\x9bg\\u202eh")
    once = output.shown("\x1b]0;title\x07")
    assert output.shown(once) == once == "\\x1b]0;title\\x07"
    assert output.shown_lines("one\x1b[31m\r\ntwo\rthree") == "one\\x1b[31m\ntwo\\rthree"


def test_board_lines_with_control_characters_read_as_escapes_field_by_field():
    lines = Incoming().feed(
        b'{"log": "modem\\u001b[2J", "said": "+COPS: 0,0,\\"Caf\\u00e9\\"\\r\\u0007", "n": 3}\r\n'
        b'{"event": "app\\u001b]0;pwned\\u0007", "text\\u001b[8m": "x\\nevent uplink_up uplink=eth"}\n'
        b'{"id": 5, "ok": false, "error": "bad\\u001b[31m red\\rover"}\n'
        b'{"log": "crash", "error": "E\\u001bc", "traceback": "File \\"main.py\\"\\u001b[1A\\nValueError"}\n'
        b'an app printed \x1b[?1049h\x1b[2J\x07 raw\r\n')
    text = [readable(x) for x in lines]
    assert text == [
        'log   modem\\x1b[2J n=3 said=+COPS: 0,0,"Caf\u00e9"\\r\\x07',
        "event app\\x1b]0;pwned\\x07 text\\x1b[8m=x\\nevent uplink_up uplink=eth",
        "error #5 bad\\x1b[31m red\\rover",
        'CRASH E\\x1bc\n      File "main.py"\\x1b[1A\n      ValueError',
        "an app printed \\x1b[?1049h\\x1b[2J\\x07 raw"]
    for t in text:
        assert not CONTROLS.search(t), t
    assert text[1].count("\n") == 0  # a field cannot forge a line of its own


def test_the_logs_reply_shows_its_recent_lines_and_crash_escaped():
    recent = ['{"log": "x\\u001b[2J"}', "plain \x1b[31mred\x07", '{"event": "e", "s": "\\r"}']
    text = logs_text({"recent": recent, "last_crash": {"error": "E\x1b[5m", "traceback": "a\x1bb\nc"}})
    assert not CONTROLS.search(text), text
    assert "  log   x\\x1b[2J" in text and "  plain \\x1b[31mred\\x07" in text
    assert "  event e s=\\r" in text
    assert "the last crash it saved: E\\x1b[5m" in text and "      a\\x1bb\n      c" in text


class _Board:
    """A port (what ConsoleClient uses of pyserial) where a board prints `lines` at the first
    read, and answers nothing."""

    def __init__(self, lines):
        self.pending = lines

    def write(self, data):
        pass

    def flush(self):
        pass

    def read(self, n):
        out, self.pending = self.pending, b""
        return out

    @property
    def in_waiting(self):
        return len(self.pending)

    def close(self):
        pass


def test_the_console_shows_an_apps_print_and_a_boards_fields_escaped_raw_or_not():
    board = (b"\x1b]0;owned\x07\x1b[2J\x1b[Hhello from an app\r\n"
             b'{"log": "net", "ssid": "x\\u001b[31m\\u0007"}\r\n')
    for raw in (False, True):
        r, w = os.pipe()
        os.close(w)  # nothing typed: the session ends after what the board printed
        out = io.StringIO()
        con = ConsoleClient("/dev/ttyFAKE", ser=_Board(board))
        with os.fdopen(r, "rb") as stdin:
            run(con, argparse.Namespace(raw=raw, no_hello=True), stdin=stdin, stdout=out)
        shown = out.getvalue()
        assert not CONTROLS.search(shown.replace("\n", "")), repr(shown)
        assert "\\x1b]0;owned\\x07\\x1b[2J\\x1b[Hhello from an app\n" in shown
        if raw:  # (a JSON line is shown as it came: its escapes are text)
            assert '{"log": "net", "ssid": "x\\u001b[31m\\u0007"}\n' in shown
        else:
            assert "log   net ssid=x\\x1b[31m\\x07\n" in shown


def test_what_the_mast_command_prints_goes_through_the_same_rule(capsys):
    output.log("mast: the board refused: bad\x1b[2J\rname; check it")
    output.emit(argparse.Namespace(json=False), None, "op: a\x1b]2;t\x07\nb\x9b31m\n")
    output.emit(argparse.Namespace(json=False), {"name\x1b": "v\r\x07"})
    output.emit(argparse.Namespace(json=True), {"name": "v\x1b"})
    output.progress("board says \x1b[5m", done=True)
    out, err = capsys.readouterr()
    assert out == ("op: a\\x1b]2;t\\x07\nb\\x9b31m\nname\\x1b: v\\r\\x07\n"
                   + json.dumps({"name": "v\x1b"}, indent=2) + "\n")
    assert json.loads(out.split("\n", 3)[3]) == {"name": "v\x1b"}  # JSON as it is: a script reads it
    assert err == "mast: the board refused: bad\\x1b[2J\\rname; check it\nboard says \\x1b[5m\n"


def test_the_question_which_board_shows_a_usb_devices_product_string_escaped():
    # (the product string is the device's own: a gadget that says it is MicroPython could
    # put an ESC sequence in the list `mast flash` asks from, written to stderr as it was)
    import types

    from mast_tools import portpick

    port = types.SimpleNamespace(device="/dev/ttyACM9", vid=0x1209, pid=0x7777, manufacturer="MicroPython",
                                 product="Board\x1b]0;owned\x07\x1b[2J in FS mode")
    err = io.StringIO()
    found = portpick.candidates([port])
    found = [c for c in found if c["device"] == "/dev/ttyACM9"] * 2  # (two: it asks)
    old = sys.stderr, sys.stdin
    sys.stderr, sys.stdin = err, io.StringIO("1\n")
    try:
        assert portpick._ask("mast flash", found) == 0
    finally:
        sys.stderr, sys.stdin = old
    said = err.getvalue()
    assert not CONTROLS.search(said.replace("\n", "")), repr(said)
    assert "  1) /dev/ttyACM9 (MicroPython's own USB (Board\\x1b]0;owned\\x07\\x1b[2J in FS mode))\n" in said
