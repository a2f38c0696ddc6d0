"""`mast console`: the keyboard logic and the readable lines on their own, then the real
command on a pseudo-terminal (as a person's terminal) against a simulated board: requests
answered, errors and boot logs shown readably, and a clean exit on the escape key with the
terminal as it was. And the same command fed by a pipe."""

import json
import os
import pty
import select
import signal
import subprocess
import sys
import termios
import time

import pytest

from boardcli import env_for_mast, mast, sim_board, sim_board_device

from mast_tools.cmd_console import LineEditor
from mast_tools.consoleclient import Incoming, classify, parse_command, readable, repl_prompt


def test_typing_backspace_and_enter_make_a_line():
    ed = LineEditor()
    assert ed.feed(b"stat") == [("redraw",)] * 4
    ed.feed(b"x\x7f")
    assert ed.text() == "stat"
    assert ed.feed(b"us\r") == [("redraw",), ("redraw",), ("line", "status")]
    assert ed.text() == ""


def test_backspace_removes_a_whole_utf8_character_and_ctrl_u_the_line():
    ed = LineEditor()
    ed.feed("set name Zürich".encode())
    ed.feed(b"\x7f\x7f\x7f")
    assert ed.text() == "set name Zür"
    ed.feed(b"\x7f\x7f")
    assert ed.text() == "set name Z" and bytes(ed.buf) == b"set name Z"
    ed.feed(b"\x15")
    assert ed.text() == ""


def test_the_escape_key_ctrl_c_and_ctrl_d_on_an_empty_line_quit():
    assert LineEditor().feed(b"abc\x1d")[-1] == ("quit", "escape key")
    assert LineEditor().feed(b"\x03") == [("quit", "Ctrl-C")]
    assert LineEditor().feed(b"\x04") == [("quit", "Ctrl-D")]
    ed = LineEditor()
    ed.feed(b"x\x04")  # not on an empty line: nothing
    assert ed.text() == "x"


def test_arrow_keys_recall_earlier_lines_and_other_escape_sequences_are_ignored():
    ed = LineEditor()
    ed.feed(b"hello\rstatus\r")
    ed.feed(b"\x1b[A")
    assert ed.text() == "status"
    ed.feed(b"\x1b[A\x1b[A")
    assert ed.text() == "hello"
    ed.feed(b"\x1b[B\x1b[B")
    assert ed.text() == ""
    ed.feed(b"\x1b[1;5Cget\x1bOP")
    assert ed.text() == "get"


def test_short_commands_become_requests():
    assert parse_command("status") == ("status", {})
    assert parse_command("get") == ("get", {})
    assert parse_command("get uplinks.eth") == ("get", {"key": "uplinks.eth"})
    assert parse_command("set uplinks.cell.cost 20") == ("set", {"key": "uplinks.cell.cost", "value": 20})
    assert parse_command("set peers.hub.addresses 192.0.2.1, 192.0.2.2") == (
        "set", {"key": "peers.hub.addresses", "value": ["192.0.2.1", "192.0.2.2"]})
    assert parse_command("uplink eth down") == ("uplink", {"name": "eth", "state": "down"})
    assert parse_command("uplink cell addr 127.0.0.9") == ("uplink", {"name": "cell", "addr": "127.0.0.9"})
    assert parse_command("maintenance on") == ("maintenance", {"state": "on"})
    assert parse_command('{"id": 5, "op": "hello"}') == ("raw", b'{"id": 5, "op": "hello"}\n')
    assert parse_command("quit") == ("local", "quit") and parse_command("help") == ("local", "help")
    assert parse_command("status --json") == ("status", {"--json": True})
    assert parse_command("logs") == ("logs", {})
    for bad, msg in (("frobnicate", "unknown command 'frobnicate'; type help"),
                     ("set port", "usage: set KEY VALUE"), ("maintenance maybe", "usage: maintenance on|off"),
                     ("{nope", "not JSON; type help for the commands"),
                     ("status now", "status takes nothing more (but --json)")):
        with pytest.raises(ValueError) as e:
            parse_command(bad)
        assert str(e.value) == msg


def test_set_of_a_key_whose_value_is_text_sends_the_text_as_typed():
    # `set uplinks.cell.sim_pin 1234` sent the number 1234, which the board refused
    assert parse_command("set uplinks.cell.sim_pin 1234") == ("set", {"key": "uplinks.cell.sim_pin", "value": "1234"})
    assert parse_command("set uplinks.wifi.ssid true") == ("set", {"key": "uplinks.wifi.ssid", "value": "true"})
    assert parse_command("set uplinks.wifi.password 12345678")[1]["value"] == "12345678"
    assert parse_command("set uplinks.cell.apn 1234")[1]["value"] == "1234"
    assert parse_command('set peers.hub.dns "hub.example"')[1]["value"] == "hub.example"  # a JSON string
    # keys whose value is not text still take JSON, and an unknown key is the board's to refuse
    assert parse_command("set peers.hub.initiate true")[1]["value"] is True
    assert parse_command('set peers.hub.addresses ["192.0.2.1"]')[1]["value"] == ["192.0.2.1"]
    assert parse_command("set nosuchkey 10")[1]["value"] == 10


def test_lines_from_the_board_read_as_text():
    inc = Incoming()
    lines = inc.feed(b'{"log": "boot", "board": "b", "mode": "normal", "warning": null}\r\n'
                     b'{"event": "uplink_up", "uplink": "eth", "addr": "127.0.0.2"}\r\n'
                     b'{"id": 3, "ok": false, "error": "port: must be an integer from 1 to 65535"}\r\n'
                     b'{"id": 4, "ok": true, "result": {"key": "port", "pending": true}}\r\n'
                     b'{"log": "crash", "error": "TypeError: x", "traceback": "line 1\\nline 2"}\n'
                     b'\xff\xfegarbage\r\n>>> ')
    assert [x.kind for x in lines] == ["log", "event", "reply", "reply", "log", "other"]
    assert [readable(x) for x in lines[:4]] == [
        "log   boot board=b mode=normal",
        "event uplink_up uplink=eth addr=127.0.0.2",
        "error #3 port: must be an integer from 1 to 65535",
        'ok    #4 {"key": "port", "pending": true}']
    assert readable(lines[4]) == "CRASH TypeError: x\n      line 1\n      line 2"
    assert readable(lines[3], "10:00:00").startswith("10:00:00 ok    #4")
    assert inc.partial() == ">>> " and repl_prompt([], inc.partial())
    assert classify("[1, 2]").kind == "other"


@pytest.fixture(scope="module")
def board(tmp_path_factory):
    yield from sim_board_device(tmp_path_factory, "con")


def _own_terminal():
    """In the child: a session whose controlling terminal is its stdin (the pty), as in a
    terminal window, so that Ctrl-C typed there is a SIGINT to it; and SIGINT's default
    disposition (the suite may run with it ignored)."""
    import fcntl

    os.setsid()
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class Terminal:
    """`mast console` on a pty of its own, as in a terminal window."""

    def __init__(self, device):
        self.master, slave = pty.openpty()
        self.slave = slave
        self.attrs = termios.tcgetattr(slave)
        self.proc = subprocess.Popen([sys.executable, "-m", "mast_tools", "console", "--port", device],
                                     stdin=slave, stdout=slave, stderr=slave, env=env_for_mast(),
                                     preexec_fn=_own_terminal)
        self.out = b""

    def read_until(self, text, timeout=45):
        end = time.monotonic() + timeout
        while text.encode() not in self.out:
            left = end - time.monotonic()
            assert left > 0, "no %r on the terminal; it shows: %r" % (text, self.out[-600:])
            if select.select([self.master], [], [], min(left, 0.1))[0]:
                try:
                    self.out += os.read(self.master, 65536)
                except OSError:
                    break
        return self.out

    def type(self, data):
        os.write(self.master, data)

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        os.close(self.master)
        os.close(self.slave)


def test_an_interactive_session_shows_replies_errors_and_logs_and_quits_on_the_escape_key(board):
    t = Terminal(board)
    try:
        t.read_until("Ctrl-] quits")
        t.read_until("board unix-sim (")  # the hello it asks first, as one line
        t.read_until(", firmware 0.1.0, normal mode, micropython 1.")
        t.type(b"set uplinks.cell.cost 300\r")  # typed (or pasted) in one go
        t.read_until("mast> set uplinks.cell.cost 300\r")  # the line stays on the screen
        t.read_until("error #2 uplinks.cell.cost: must be an integer from 0 to 255")
        t.type(b"get uplinks.cell\r")
        t.read_until('ok    #3 {"cost": 10, "kind": "sim", "priority": 30}')
        t.type(b"frobnicate\r")
        t.read_until("unknown command 'frobnicate'; type help")
        t.type(b"reboot\r")
        t.read_until("log   rebooting: requested from the console")
        t.read_until("log   boot board=unix-sim firmware=0.1.0 mode=normal config=mast.json")
        t.type(b"hel")
        t.read_until("mast> hel")  # what is typed stays on its line
        t.type(b"\x1d")  # the escape key
        assert t.proc.wait(10) == 0
        t.read_until("session ended (escape key); the board was not interrupted")
        assert termios.tcgetattr(t.slave) == t.attrs  # the terminal is as it was
        assert b"Traceback" not in t.out
    finally:
        t.close()
    r = mast("config", "--port", board, "get", "name")  # and the port is free
    assert r.stdout == "board1\n"


def test_status_is_a_short_summary_status_json_the_document_and_logs_the_recent_past(board):
    t = Terminal(board)
    try:
        t.read_until("Ctrl-] quits")
        t.type(b"status\r")
        out = t.read_until("heap: ")  # the summary's last line
        summary = out[out.index(b"mast> status\r"):].decode()
        assert "board unix-sim, firmware 0.1.0, normal mode, up " in summary
        assert "  eth    up    127.0.0.2       priority 10 cost 0" in summary
        assert '"uptime_ms"' not in summary  # not the raw document
        assert summary.count("\n") < 12  # a dozen lines at most, not the ~150 of the document
        n = len(t.out)
        t.type(b"status --json\r")
        t.read_until('"uptime_ms"')  # the whole document, as JSON
        assert b'"console": {' in t.read_until('"watchdog"')[n:]
        t.type(b"uplink wifi down\r")
        t.read_until('"state": "off"')
        t.type(b"uplink wifi up\r")
        t.read_until("event uplink_up uplink=wifi")
        t.type(b"logs\r")
        out = t.read_until("no crash saved")
        logs = out[out.index(b"mast> logs\r"):].decode()
        assert "recent logs and events on the board (oldest first):" in logs
        assert "log   boot board=unix-sim firmware=0.1.0" in logs
        assert "event uplink_down uplink=wifi reason=" in logs  # what went down is kept
        assert "uplink_up" not in logs  # what came up is what status shows
        t.type(b"\x03")  # Ctrl-C at the keyboard: the session ends, the board runs on
        assert t.proc.wait(10) == 0
        t.read_until("mast console: session ended (Ctrl-C); the board was not interrupted, its "
                     "firmware runs on")
    finally:
        t.close()
    r = mast("config", "--port", board, "status", "--json")  # still running, not at a REPL
    assert r.returncode == 0 and r.doc["mode"] == "normal", r.stderr


def test_sigint_ends_the_session_and_says_so(board):
    from boardcli import restore_sigint

    proc = subprocess.Popen([sys.executable, "-m", "mast_tools", "console", "--port", board],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=env_for_mast(), preexec_fn=restore_sigint)
    try:
        line = b""
        end = time.monotonic() + 20
        while b"board unix-sim" not in line and time.monotonic() < end:
            if select.select([proc.stdout], [], [], 0.5)[0]:
                line = proc.stdout.readline()
        assert b"board unix-sim" in line, line
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert err.decode().strip().endswith("mast console: session ended (Ctrl-C); the board was not "
                                         "interrupted, its firmware runs on")
    assert b"Traceback" not in err


def test_console_on_a_board_without_the_firmware_is_the_clean_error_of_mast_config(micropython, tmp_path):
    with sim_board(str(tmp_path / "bare"), firmware=False) as sb:
        r = mast("console", "--port", sb.device, timeout=60)
        cfg = mast("config", "--port", sb.device, "get", timeout=60)
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr == cfg.stderr  # the same words as mast config
    assert r.stderr.startswith("mast: no MAST firmware on the board at %s: a bare MicroPython REPL "
                               "answers; put the firmware on it: mast flash" % sb.device)
    assert r.stderr.count("\n") == 1
    assert '"op"' not in r.stderr and "None" not in r.stderr


def test_piped_lines_are_sent_and_the_command_ends_after_the_replies(board):
    r = mast("console", "--port", board, "--raw", "--no-hello", input="hello\nget name\n", timeout=30)
    assert r.returncode == 0, r.stderr
    lines = [json.loads(x) for x in r.stdout.splitlines()]  # as the board sent them
    assert lines[0]["id"] == 1 and lines[0]["result"]["firmware"] == "mast-board"
    assert lines[1] == {"id": 2, "ok": True, "result": "board1"}


def test_a_last_piped_line_without_its_newline_is_sent_too(board):
    r = mast("console", "--port", board, "--raw", "--no-hello", input="hello\nget name", timeout=30)
    assert r.returncode == 0, r.stderr
    lines = [json.loads(x) for x in r.stdout.splitlines()]
    assert lines[-1] == {"id": 2, "ok": True, "result": "board1"} and len(lines) == 2
    r = mast("console", "--port", board, "--raw", "--no-hello", input="get name", timeout=30)
    assert [json.loads(x) for x in r.stdout.splitlines()] == [{"id": 1, "ok": True, "result": "board1"}]


def test_json_is_refused_as_a_usage_error_that_says_what_gives_json():
    r = mast("console", "--port", "/dev/ttyACM77", "--json")
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.splitlines()[-1] == (
        "mast console: error: --json is not taken by mast console (a terminal, not one JSON "
        "document); for JSON use `mast config status --json` or `mast config get KEY --json`, or "
        "--raw to see the board's JSON lines as they come")


def test_console_on_a_missing_port_is_a_clear_error():
    r = mast("console", "--port", "/dev/ttyACM77")
    assert r.returncode == 1 and r.stderr.startswith("mast: no serial port /dev/ttyACM77; ")


# ---- the client and the piped console against a port with no board behind it ----------------


class FakePort:
    """What ConsoleClient uses of pyserial's Serial. Each request line written is answered by
    answer(request) (a reply dict, or None for no reply) at the `delay`th read after it, as a
    slow board would; .written keeps every byte sent."""

    def __init__(self, answer=None, delay=1):
        self.answer = answer or (lambda req: {"id": req["id"], "ok": True, "result": "board1"})
        self.delay = delay
        self.written = b""
        self.due = []  # [reads left, reply line]
        self.reads = 0

    def write(self, data):
        self.written += data
        for line in data.split(b"\n"):
            if line.strip():
                reply = self.answer(json.loads(line))
                if reply is not None:
                    self.due.append([self.delay, (json.dumps(reply) + "\r\n").encode()])

    def flush(self):
        pass

    def read(self, n):
        self.reads += 1
        out = b""
        for d in self.due:
            d[0] -= 1
            if d[0] <= 0:
                out += d[1]
        self.due = [d for d in self.due if d[0] > 0]
        return out

    def close(self):
        pass


def _client(port):
    from mast_tools.consoleclient import ConsoleClient

    return ConsoleClient("/dev/ttyFAKE", ser=port)


def _piped(port, text):
    """`mast console --raw --no-hello` with `text` on its stdin (a pipe): (exit status, what it
    printed, the bytes it sent to the port)."""
    import argparse
    import io

    from mast_tools.cmd_console import run

    r, w = os.pipe()
    os.write(w, text)
    os.close(w)
    out = io.StringIO()
    with os.fdopen(r, "rb") as stdin:
        rc = run(_client(port), argparse.Namespace(raw=True, no_hello=True), stdin=stdin, stdout=out)
    return rc, out.getvalue(), port.written


def test_a_line_that_never_ends_is_cut_at_the_limit_and_no_byte_of_it_is_lost():
    # (a board printing garbage with no newline: the line is cut, so memory stays bounded; the
    # byte at the cut was dropped as if it had been the newline)
    inc = Incoming(limit=8)
    assert [x.text for x in inc.feed(b"0123456789abcdefghij")] == ["01234567", "89abcdef"]
    assert inc.partial() == "ghij"
    assert [x.text for x in inc.feed(b"kl\n")] == ["ghijkl"]


def test_a_request_line_of_exactly_the_boards_limit_is_sent_and_one_byte_more_is_not():
    # the board's console takes lines of up to LINE_MAX bytes, newline excluded
    from board.console import Console
    from mast_tools.consoleclient import LINE_MAX, request
    from mast_tools.errors import CommandError

    port = FakePort()
    con = _client(port)
    value = "x" * (LINE_MAX - (len(request(1, "set", key="name", value="")) - 1))
    con.send("set", key="name", value=value)
    assert len(port.written) == LINE_MAX + 1
    assert Console(None, None).lines(port.written) == [port.written[:-1]]  # the board takes it whole
    with pytest.raises(CommandError) as e:
        con.send("set", key="name", value=value + "x")
    assert e.value.what == ("the set request is %d bytes, and the board's console takes lines of at "
                            "most %d" % (LINE_MAX + 1, LINE_MAX))
    assert len(port.written) == LINE_MAX + 1  # nothing more sent
    assert Console(None, None).lines(request(2, "set", key="name", value=value + "x")) == [None]  # (it would refuse it)


def test_piped_input_waits_for_the_replies_of_a_board_slower_than_its_end():
    # the reply comes some 20 reads (about a second) after the request, well after the input
    # ended: the console waits for it (up to 3 s), not just 0.3 s
    rc, out, sent = _piped(FakePort(delay=20), b"get name\n")
    assert rc == 0
    assert out.splitlines() == ['{"id": 1, "ok": true, "result": "board1"}']
    assert json.loads(sent) == {"id": 1, "op": "get", "key": "name"}


def test_a_piped_quit_ends_the_session_and_nothing_after_it_is_sent():
    rc, out, sent = _piped(FakePort(), b"get name\nquit\nreboot\n")
    assert rc == 0
    assert [json.loads(x)["op"] for x in sent.splitlines()] == ["get"]


def test_after_a_reboot_only_a_hello_in_the_mode_asked_for_is_taken():
    # `mast maintenance on`: the board may answer a hello or two in normal mode before it reboots
    modes = ["normal", "normal", "maintenance"]

    def answer(req):
        mode = modes.pop(0) if len(modes) > 1 else modes[0]
        return {"id": req["id"], "ok": True, "result": {"board": "b", "mode": mode}}

    con = _client(FakePort(answer))
    assert con.wait_hello(10, mode="maintenance")["mode"] == "maintenance"
    assert modes == ["maintenance"]


def test_commands_with_a_word_too_many_or_a_wrong_one_are_refused_not_cut_short():
    # `unset peers hub` (a space for the dot) would unset every peer; `get uplinks eth` show
    # all the uplinks; `uplink cell adr ADDR` set an address
    for bad, msg in (("unset peers hub", "usage: unset KEY"), ("get uplinks eth", "usage: get [KEY]"),
                     ("uplink cell adr 127.0.0.9", "usage: uplink NAME up|down, or uplink NAME addr ADDR")):
        with pytest.raises(ValueError) as e:
            parse_command(bad)
        assert str(e.value) == msg


def test_ctrl_d_on_a_line_being_typed_does_nothing():
    ed = LineEditor()
    assert ed.feed(b"get\x04") == [("redraw",)] * 3
    assert ed.feed(b"\r") == [("line", "get")]


def test_recall_starts_again_from_the_newest_line_skips_repeats_and_keeps_the_last_fifty():
    ed = LineEditor()
    ed.feed(b"a\rb\rc\r")
    ed.feed(b"\x1b[A\x1b[A")
    assert ed.text() == "b"
    assert ed.feed(b"\r") == [("line", "b")]  # a recalled line sent ...
    ed.feed(b"\x1b[A")
    assert ed.text() == "b"  # ... is the newest; recall starts from it again
    ed.feed(b"\x15status\rstatus\rstatus\r\x1b[A\x1b[A")
    assert ed.text() == "b"  # a line typed again and again is recalled once
    ed = LineEditor()
    for i in range(60):
        ed.feed(b"get k%d\r" % i)
    ed.feed(b"\x1b[A" * 70)
    assert ed.text() == "get k10"  # the oldest of the last 50


def test_an_escape_sequence_that_never_ends_stops_swallowing_keys():
    ed = LineEditor()
    ed.feed(b"\x1b[" + b"1" * 7)  # nine bytes, no final byte: given up
    assert ed.feed(b"12\r") == [("redraw",), ("redraw",), ("line", "12")]


def test_the_logs_reply_shows_the_last_crash_with_its_traceback():
    from mast_tools.cmd_console import logs_text

    r = {"recent": ['{"log": "boot", "board": "b"}'],
         "last_crash": {"error": "TypeError: x", "traceback": "line 1\nline 2\n"}}
    assert logs_text(r).splitlines() == ["recent logs and events on the board (oldest first):",
                                         "  log   boot board=b",
                                         "the last crash it saved: TypeError: x",
                                         "      line 1", "      line 2"]
    assert logs_text({"recent": []}).splitlines()[1:] == ["  (none since it booted)", "no crash saved"]


def test_a_list_key_takes_json_or_text_and_never_sends_the_json_as_text():
    assert parse_command('set peers.hub.allowed ["10.0.0.0/8", "::/0"]')[1]["value"] == ["10.0.0.0/8", "::/0"]
    assert parse_command("set peers.hub.allowed 10.0.0.0/8, ::/0")[1]["value"] == ["10.0.0.0/8", "::/0"]
    assert parse_command('set peers.hub.addresses ["192.0.2.1"]')[1]["value"] == ["192.0.2.1"]


# ---- a board that does not answer, or answers garbled replies (no board behind the port) ----------


class _BoundedPort(FakePort):
    """A FakePort read for at most 20 s: a loop that never ends fails instead of hanging (a
    bound on the test, not a timing it checks)."""

    def read(self, n):
        if not self.reads:
            self.since = time.monotonic()
        assert time.monotonic() - self.since < 20, "the console never stopped reading"
        return FakePort.read(self, n)


def test_a_refusal_without_error_text_reads_refused_and_each_request_gets_its_own_id():
    from mast_tools.consoleclient import BoardError

    port = FakePort(lambda req: {"id": req["id"], "ok": False})
    con = _client(port)
    with pytest.raises(BoardError) as e:
        con.call("commit", timeout=5)
    assert str(e.value) == "refused"
    assert not con.replies_due()  # its reply came: nothing is owed
    with pytest.raises(BoardError):
        con.call("apply", timeout=5)
    assert [json.loads(x)["id"] for x in port.written.splitlines()] == [1, 2]


def test_a_request_the_board_never_answers_is_a_timeout_that_names_it():
    port = _BoundedPort(lambda req: None)
    con = _client(port)
    with pytest.raises(TimeoutError) as e:
        con.request("get", timeout=0.1, key="name")
    assert str(e.value) == "no reply to get in 0 s"
    assert con.replies_due()


def test_a_hello_whose_result_is_not_an_object_is_not_the_firmware():
    # a garbled hello reply ({"ok": true} with a result that is no hello document) is not taken
    # as the board's hello: hello_info.get() would fail on it later
    from mast_tools.consoleclient import NoFirmware

    port = _BoundedPort(lambda req: {"id": req["id"], "ok": True, "result": "board1"})
    with pytest.raises(NoFirmware):
        _client(port).hello(timeout=0.3, resend_s=0.1)


def test_a_firmware_that_refuses_every_hello_is_told_as_such_even_after_a_reboot():
    from mast_tools.consoleclient import FirmwareRefused

    port = _BoundedPort(lambda req: {"id": req["id"], "ok": False, "error": "out of memory"})
    with pytest.raises(FirmwareRefused) as e:
        _client(port).hello(timeout=0.3, resend_s=0.1)
    assert e.value.what == "the MAST firmware on /dev/ttyFAKE answers, but not hello: out of memory"
    assert e.value.hint.startswith("its heap has no room for the console's ops now")
    with pytest.raises(FirmwareRefused):  # not "no MAST firmware answered"
        _client(_BoundedPort(port.answer)).wait_hello(timeout=0.5)


def test_a_port_that_fails_under_a_write_or_a_read_is_a_clear_error():
    import serial

    from mast_tools.consoleclient import PortLost
    from mast_tools.errors import CommandError

    class Broken(FakePort):
        def write(self, data):
            raise serial.SerialException("write failed: [Errno 5] Input/output error")

        def read(self, n):
            raise OSError(5, "Input/output error")

    con = _client(Broken())
    with pytest.raises(CommandError) as e:
        con.send("status")
    assert e.value.what == "lost /dev/ttyFAKE while writing (write failed: [Errno 5] Input/output error)"
    with pytest.raises(PortLost) as e:
        con.pump(0)
    assert e.value.what == "lost /dev/ttyFAKE ([Errno 5] Input/output error)"


def test_what_a_board_without_the_firmware_printed_is_shown_by_its_end():
    from mast_tools.consoleclient import no_firmware_error

    seen = ["ets Jun  8 2016 00:22:57", "rst:0x1 (POWERON_RESET),boot:0x13 (SPI_FAST_FLASH_BOOT)",
            "invalid header: 0xffffffff"]
    e = no_firmware_error("/dev/ttyUSB0", seen)
    assert e.what == "no MAST firmware answers on /dev/ttyUSB0 (it printed: %s)" % " ".join(seen)[-60:]
    assert e.what.endswith("invalid header: 0xffffffff)")


def test_piped_input_to_a_board_that_never_answers_ends_all_the_same(capsys):
    rc, out, sent = _piped(_BoundedPort(lambda req: None), b"get name\n")
    assert rc == 3 and out == ""  # (a script can tell: docs/HARDWARE.md)
    assert capsys.readouterr().err.startswith(
        "mast console: of the piped lines, 1 never answered (exit status 3)\n")
    assert json.loads(sent) == {"id": 1, "op": "get", "key": "name"}


def test_a_piped_line_that_is_no_command_is_said_and_the_next_lines_still_go():
    rc, out, sent = _piped(FakePort(), b"bogus\n\nget name\n")
    assert rc == 3  # (the line that is no command counts as failed)
    assert out.splitlines() == ["  unknown command 'bogus'; type help", '{"id": 1, "ok": true, "result": "board1"}']
    assert [json.loads(x)["op"] for x in sent.splitlines()] == ["get"]


def test_a_status_the_board_refuses_is_shown_as_its_error_not_a_summary():
    import argparse
    import io

    from mast_tools.cmd_console import run

    port = FakePort(lambda req: {"id": req["id"], "ok": False, "error": "out of memory"})
    r, w = os.pipe()
    os.write(w, b"status\n")
    os.close(w)
    out = io.StringIO()
    with os.fdopen(r, "rb") as stdin:
        rc = run(_client(port), argparse.Namespace(raw=False, no_hello=True), stdin=stdin, stdout=out)
    assert rc == 3
    lines = out.getvalue().splitlines()
    assert len(lines) == 1 and lines[0].endswith(" error #1 out of memory"), lines


def test_blank_lines_from_the_board_are_no_lines_and_status_json_takes_the_word_too():
    assert Incoming().feed(b"\r\n\n  \r\n") == []
    assert parse_command("status json") == parse_command("status --json") == ("status", {"--json": True})


def test_a_board_that_prints_only_text_is_no_firmware_and_its_last_lines_are_kept():
    # what diagnose() reads to tell a REPL or a boot ROM: the latest lines and the unfinished one
    from mast_tools.consoleclient import NoFirmware

    class Chatty(_BoundedPort):
        def read(self, n):
            first = not self.reads
            _BoundedPort.read(self, n)
            return b"".join(b"boot line %d\r\n" % i for i in range(10)) + b"waiting" if first else b""

    with pytest.raises(NoFirmware) as e:
        _client(Chatty(lambda req: None)).hello(timeout=0.3, resend_s=0.1)
    assert e.value.seen == ["boot line %d" % i for i in range(4, 10)] + ["waiting"]


def test_the_logs_reply_shows_a_last_crash_saved_as_bare_text():
    from mast_tools.cmd_console import logs_text

    assert logs_text({"recent": [], "last_crash": "MemoryError"}).splitlines()[2] == "the last crash it saved: MemoryError"


def test_piped_input_exits_3_when_some_request_failed_and_says_how_many(capsys):
    # a script feeding the console must be able to tell: 0 only when every line was a command
    # and every request was answered ok (docs/HARDWARE.md, mast console)
    def answer(req):
        if req.get("key") == "nosuch":
            return {"id": req["id"], "ok": False, "error": "nosuch: is not set"}
        return {"id": req["id"], "ok": True, "result": "board1"}

    rc, out, sent = _piped(FakePort(answer), b"get name\nget nosuch\nnot-a-command\nget name\n")
    err = capsys.readouterr().err
    assert rc == 3, err
    assert err.startswith("mast console: of the piped lines, 2 failed (exit status 3)\n"), err
    assert [json.loads(x)["key"] for x in sent.splitlines()] == ["name", "nosuch", "name"]
    # a refusal in a raw JSON line counts too; all answered ok is 0, and nothing said
    rc, out, sent = _piped(FakePort(answer), b'{"id": "a", "op": "get", "key": "nosuch"}\n')
    assert rc == 3 and "1 failed (exit status 3)" in capsys.readouterr().err
    rc, out, sent = _piped(FakePort(answer), b"get name\nget name\n")
    assert rc == 0 and "exit status" not in capsys.readouterr().err
    # a quit ends it at once: replies are not waited for, and not counted as missing
    rc, out, sent = _piped(FakePort(answer, delay=20), b"get name\nquit\n")
    assert rc == 0


def test_a_piped_request_the_board_refuses_makes_the_exit_status_3(board):
    r = mast("console", "--port", board, "--raw", "--no-hello", input="get name\nget nosuch\n", timeout=30)
    assert r.returncode == 3, r.stderr
    assert "mast console: of the piped lines, 1 failed (exit status 3)" in r.stderr
    assert [json.loads(x)["ok"] for x in r.stdout.splitlines()] == [True, False]


def test_a_misspelt_key_reads_unknown_key_as_mast_config_says_it(capsys):
    # the board answers `KEY: is not set` of any key it does not hold; a key the schema does not
    # have (`get nmae`) read as if it were a setting left unset
    import argparse
    import io

    from mast_tools.cmd_console import run

    port = FakePort(lambda req: {"id": req["id"], "ok": False, "error": "%s: is not set" % req["key"]})
    for raw, want in ((False, ["error #1 nmae: unknown key (the keys: docs/CONFIG.md)",
                               "error #2 peers.hub.psk: is not set", "error #3 uplinks.eth.cost: is not set"]),
                      (True, ['{"id": 1, "ok": false, "error": "nmae: is not set"}',
                              '{"id": 2, "ok": false, "error": "peers.hub.psk: is not set"}',
                              '{"id": 3, "ok": false, "error": "uplinks.eth.cost: is not set"}'])):
        r, w = os.pipe()
        os.write(w, b"get nmae\nunset peers.hub.psk\nget uplinks.eth.cost\n")
        os.close(w)
        out = io.StringIO()
        with os.fdopen(r, "rb") as stdin:
            rc = run(_client(FakePort(port.answer)), argparse.Namespace(raw=raw, no_hello=True),
                     stdin=stdin, stdout=out)
        assert rc == 3
        lines = out.getvalue().splitlines()
        assert [x.split(" ", 1)[1] if not raw else x for x in lines] == want, lines  # (after the time)


def test_json_nested_too_deep_is_no_traceback_typed_piped_or_from_the_board():
    # (each was a RecursionError traceback that ended `mast console` and `mast config set`)
    deep = "[" * 5000 + "]" * 5000
    with pytest.raises(ValueError) as e:
        parse_command('{"op": %s}' % deep)
    assert str(e.value) == "not JSON; type help for the commands"
    op, fields = parse_command("set peers.a.addresses " + deep)  # as any text that is not JSON
    assert op == "set" and fields["key"] == "peers.a.addresses"
    line = classify(deep)  # a line the board's app printed
    assert (line.kind, line.obj, line.text) == ("other", None, deep)
