"""`mast console`: an interactive terminal to a board's console.

It first asks the board's hello: a port where the MAST firmware does not answer gets the same
clear error as `mast config` (a bare board, a stopped firmware, nothing at all), not raw
request lines echoed by a REPL. What the board prints is shown readably
(consoleclient.readable: `log   boot board=...`, `event uplink_up uplink=eth addr=...`,
`ok    #3 {...}`, `error #4 port: must be ...`; the board's `KEY: is not set` of a key the
schema does not have as `KEY: unknown key`, as mast config says it), with the time; text that
is not JSON (a REPL, a boot ROM) as it is. Never raw: the control characters of what the board
sent (ESC sequences, CR, BEL: an app's print, a modem's answer) are shown as escapes (\x1b),
each field on its own (output.shown), with --raw too. `status` is shown as a short summary (`status
--json`: the whole document), `logs` as the board's recent logs and events and its last crash. What you type is
a short command (`status`, `get uplinks.eth`, `set uplinks.cell.cost 20`, `uplink eth down`;
`help` lists them) or a JSON request line, sent as it is. A typed or pasted line stays on the
screen after the prompt, as sent.

Keys: Enter sends the line; Ctrl-] (the escape key, as in telnet and miniterm), Ctrl-C, or
Ctrl-D on an empty line quit (SIGTERM and SIGHUP end it as Ctrl-C does), and the last line says
how the session ended (the board is not
interrupted: its firmware runs on); Ctrl-U clears the line; Up/Down recall earlier lines.
Nothing is sent to the board but whole request lines: no stray Ctrl-C reaches it (that would
stop the firmware; use mpremote for the REPL).

LineEditor is the keyboard logic with no terminal (bytes in, actions out), tested on its own;
run() is the adapter: termios cbreak mode, select() on the keyboard and the port, and the
terminal put back as it was on every way out. With stdin not a terminal, the lines of stdin
are sent one by one and the command ends after the last reply: exit status 0 when every line
was a command and every request was answered ok, 3 when some were not (a line that is no
command, a request the board refused or never answered; stderr says how many), so a script
feeding it can tell (a JSON line's reply counts when it comes; it is not waited for, as it
never was). An interactive session exits 0 however its requests went.
"""

import argparse
import os
import select
import sys
import time

from mast_tools.errors import CommandError, how_interrupted
from mast_tools.output import shown, shown_lines

ESCAPE = 0x1D  # Ctrl-]
FAILED_EXIT = 3  # piped input: some lines or requests failed (1: the command itself failed)
PROMPT = "mast> "

EXAMPLE = """\
example:
  mast console --port /dev/ttyUSB0
  mast> status                      # a summary; status --json: the whole document
  mast> logs                        # the board's recent logs and events, its last crash
  mast> set uplinks.cell.cost 20
  mast> {"id": 9, "op": "get", "key": "uplinks"}
  (Ctrl-] quits)

  echo status | mast console --port /dev/ttyUSB0 --raw    # one request, no terminal"""


def argparse_console(p):
    from mast_tools.serialport import add_port_args

    add_port_args(p)
    p.add_argument("--raw", action="store_true", help="show the board's lines exactly as they come "
                   "(control characters as escapes, as always)")
    p.add_argument("--no-hello", action="store_true",
                   help="do not ask the board's hello at start (nor check that it answers)")
    p.add_argument("--json", action=_NoJson, nargs=0, help="not taken: a console is a terminal, not "
                   "one JSON document (type `status --json` in it; --raw shows the board's JSON lines)")
    p.epilog = EXAMPLE


class _NoJson(argparse.Action):
    """--json (which cli.py gives every command) refused as a usage error, saying what to use."""

    def __call__(self, parser, namespace, values, option_string=None):
        parser.error("--json is not taken by mast console (a terminal, not one JSON document); for "
                     "JSON use `mast config status --json` or `mast config get KEY --json`, or "
                     "--raw to see the board's JSON lines as they come")


class LineEditor:
    """Keyboard bytes -> actions: ("line", text), ("quit", why), ("redraw",). Holds the line
    being typed (UTF-8 bytes) and a short history."""

    def __init__(self, history_max=50):
        self.buf = bytearray()
        self.esc = None  # bytes of an escape sequence being read
        self.history = []
        self.history_max = history_max
        self.pos = None  # index into history while recalling

    def text(self):
        return self.buf.decode("utf-8", "replace")

    def _recall(self, step):
        if not self.history:
            return
        if self.pos is None:
            self.pos = len(self.history)
        self.pos = max(0, min(len(self.history), self.pos + step))
        self.buf = bytearray(self.history[self.pos].encode() if self.pos < len(self.history) else b"")

    def _escape(self, b):
        self.esc.append(b)
        seq = bytes(self.esc)
        if len(seq) == 2 and seq[1:] not in (b"[", b"O"):
            self.esc = None  # ESC and one byte: nothing we use
            return None
        if len(seq) >= 3 and (0x40 <= b <= 0x7E or len(seq) > 8):
            self.esc = None
            if seq in (b"\x1b[A", b"\x1bOA"):
                self._recall(-1)
                return ("redraw",)
            if seq in (b"\x1b[B", b"\x1bOB"):
                self._recall(1)
                return ("redraw",)
        return None

    def feed(self, data):
        out = []
        for b in bytearray(data):
            if self.esc is not None:
                a = self._escape(b)
                if a:
                    out.append(a)
                continue
            if b == ESCAPE:
                out.append(("quit", "escape key"))
                return out
            if b == 3:
                out.append(("quit", "Ctrl-C"))
                return out
            if b == 4:
                if not self.buf:
                    out.append(("quit", "Ctrl-D"))
                    return out
                continue
            if b in (13, 10):
                line = self.text().strip()
                self.buf = bytearray()
                self.pos = None
                if line:
                    if not self.history or self.history[-1] != line:
                        self.history = (self.history + [line])[-self.history_max:]
                    out.append(("line", line))
                else:
                    out.append(("redraw",))
                continue
            if b == 27:
                self.esc = bytearray([27])
                continue
            if b in (8, 127):
                if self.buf:
                    del self.buf[-1]
                    while self.buf and self.buf[-1] & 0xC0 == 0x80:  # a whole UTF-8 character
                        del self.buf[-1]
                out.append(("redraw",))
                continue
            if b == 21:  # Ctrl-U
                self.buf = bytearray()
                out.append(("redraw",))
                continue
            if b < 32:
                continue  # other control keys: nothing
            self.buf.append(b)
            out.append(("redraw",))
        return out


class _Screen:
    """Writes board lines above the line being typed."""

    def __init__(self, out, editor, interactive):
        self.out = out
        self.editor = editor
        self.interactive = interactive

    def line(self, text):
        text = shown_lines(text)  # (a line the board sent: its control characters as escapes)
        if self.interactive:
            self.out.write("\r\x1b[K" + text.replace("\n", "\r\n") + "\r\n")
            self.prompt()
        else:
            self.out.write(text + "\n")
        self.out.flush()

    def prompt(self):
        if self.interactive:
            self.out.write("\r\x1b[K" + PROMPT + shown(self.editor.text()))  # (a paste, too)
            self.out.flush()


def logs_text(r, stamp=None):
    """The `logs` reply as text: the recent lines, readably, then the last crash."""
    from mast_tools.consoleclient import classify, readable

    lines = ["recent logs and events on the board (oldest first):"]
    for text in r.get("recent") or []:
        lines.append("  " + readable(classify(text)).replace("\n", "\n  "))
    if len(lines) == 1:
        lines.append("  (none since it booted)")
    crash = r.get("last_crash")
    if crash:
        lines.append("the last crash it saved: %s" % shown(crash.get("error") if isinstance(crash, dict) else crash))
        tb = ("%s" % (crash.get("traceback") or "")).rstrip() if isinstance(crash, dict) else ""
        lines += ["      " + shown(x) for x in tb.splitlines()]
    else:
        lines.append("no crash saved")
    return "\n".join(lines)


def _send(con, screen, text, as_text=None, failed=None):
    """Send one typed line; False when it asks to quit. as_text: {request id: how to show its
    reply} ("status": the summary, "logs"). failed: a one-item list counting lines that are
    no command."""
    from mast_tools.consoleclient import COMMANDS_HELP, JSON_FLAG, parse_command

    try:
        kind, what = parse_command(text)
    except ValueError as e:
        screen.line("  %s" % e)
        if failed is not None:
            failed[0] += 1
        return True
    if kind == "local":
        if what == "quit":
            return False
        screen.line(COMMANDS_HELP)
        return True
    if kind == "raw":
        con.write(what)
    else:
        fields = dict(what)
        whole = fields.pop(JSON_FLAG, False)
        rid = con.send(kind, **fields)
        if as_text is not None and kind in ("status", "logs") and not whole:
            as_text[rid] = kind
    return True


def _unknown_key(line):
    """The board answers a get or unset of any key it does not hold `KEY: is not set`; a key the
    schema does not have reads `KEY: unknown key (the keys: docs/CONFIG.md)`, as mast config
    says it. Other lines as they are."""
    from mast_tools.cmd_config import _known, not_set_key
    from mast_tools.consoleclient import Line

    key = not_set_key(line.obj.get("error")) if line.kind == "reply" and not line.obj.get("ok") else None
    if key is None:
        return line
    try:
        if _known(key) is not None:
            return line
    except (ImportError, ValueError):  # (no schema to ask: the board's words)
        return line
    return Line("reply", dict(line.obj, error="%s: unknown key (the keys: docs/CONFIG.md)" % key),
                line.text)


def _ended(how):
    try:
        sys.stderr.write("\r\x1b[K" if _isatty(sys.stderr) else "")
        sys.stderr.write("mast console: session ended (%s); the board was not interrupted, its "
                         "firmware runs on\n" % how)
        sys.stderr.flush()
    except OSError:  # (the terminal is gone: its window closed, SIGHUP; nobody to tell)
        pass


def _isatty(stream):
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def run(con, args, stdin=None, stdout=None, hello=None):
    """The console loop; returns the exit status. Bounded by the user (escape key) or, with
    stdin not a terminal, by the end of its input and the replies. hello: the board's hello,
    already asked (shown as the first line)."""
    end = [None]
    try:
        return _run(con, args, stdin, stdout, hello, end)
    finally:
        if end[0]:
            _ended(end[0])


def _run(con, args, stdin, stdout, hello, end):
    import serial
    from mast_tools.cmd_config import status_text
    from mast_tools.consoleclient import PortLost, readable

    stdin = stdin if stdin is not None else sys.stdin
    stdout = stdout if stdout is not None else sys.stdout
    fd = stdin.fileno()
    interactive = os.isatty(fd)
    editor = LineEditor()
    screen = _Screen(stdout, editor, interactive)
    as_text = {}  # request id -> "status" | "logs": replies shown as text, not JSON
    failed = [0]  # lines that were no command, replies that were errors
    first_id = con.next_id  # (hellos asked again before the session may stay unanswered)

    def show(line):
        if line.kind == "reply" and not line.obj.get("ok"):
            failed[0] += 1
        if args.raw:
            screen.line(line.text)
            return
        line = _unknown_key(line)
        stamp = time.strftime("%H:%M:%S")
        how = as_text.pop(line.obj.get("id"), None) if line.kind == "reply" else None
        if how and line.obj.get("ok"):
            text = status_text(line.obj["result"], con.port) if how == "status" else logs_text(line.obj["result"])
            screen.line("%s %s" % (stamp, text.replace("\n", "\n" + " " * (len(stamp) + 1))))
        else:
            screen.line(readable(line, stamp))

    con.on_line = show
    saved = None
    if interactive:
        import termios
        import tty

        saved = termios.tcgetattr(fd)
        tty.setcbreak(fd)
        sys.stderr.write("mast console on %s: type help for the commands; Ctrl-] quits\r\n" % con.port)
        sys.stderr.flush()
    try:
        if hello is not None:
            screen.line("%s board %s (%s), firmware %s, %s mode, %s" % (
                time.strftime("%H:%M:%S"), hello.get("board"), hello.get("title") or "?",
                hello.get("version"), hello.get("mode"), hello.get("micropython")))
        elif not args.no_hello:
            con.send("hello")
        screen.prompt()
        eof_at = None
        pending = b""
        while True:
            if eof_at is not None:
                if time.monotonic() - eof_at > 3.0 or (not con.replies_due() and time.monotonic() - eof_at > 0.3):
                    end[0] = "end of input"
                    return _piped_status(con, failed[0], first_id)
            try:
                ready, _, _ = select.select([fd] if eof_at is None else [], [], [], 0.05)
            except InterruptedError:
                continue
            try:
                con.pump(0)
            except PortLost:
                screen.line("[%s went away; waiting up to 10 s for it]" % con.port)
                con.reopen(10.0)
                screen.line("[%s is back]" % con.port)
            if not ready:
                continue
            data = os.read(fd, 1024)
            if not interactive:
                if not data:  # the end of input: a last line without its newline is sent too
                    eof_at = time.monotonic()
                    data = b"\n" if pending else b""
                pending += data
                while b"\n" in pending:
                    raw, pending = pending.split(b"\n", 1)
                    text = raw.decode("utf-8", "replace").strip()
                    if text and not _send(con, screen, text, as_text, failed):
                        end[0] = "quit"
                        return _piped_status(con, failed[0])
                continue
            if not data:
                end[0] = "the terminal closed"
                return 0
            for act in editor.feed(data):
                if act[0] == "quit":
                    end[0] = act[1]
                    return 0
                if act[0] == "line":
                    # the line as sent stays on the screen, typed or pasted
                    stdout.write("\r\x1b[K" + PROMPT + shown(act[1]) + "\r\n")
                    if not _send(con, screen, act[1], as_text):
                        end[0] = "quit"
                        return 0
            screen.prompt()  # once per read: a paste is drawn once, not per character
    except KeyboardInterrupt as e:  # (SIGTERM and SIGHUP too: cli.py raises them as Ctrl-C)
        end[0] = how_interrupted(e)
        return 0
    except (serial.SerialException, OSError) as e:
        raise CommandError("lost %s (%s)" % (con.port, e), "check the cable; run mast console again")
    finally:
        if saved is not None:
            import termios

            try:
                termios.tcsetattr(fd, termios.TCSADRAIN, saved)
                stdout.write("\r\x1b[K")
                stdout.flush()
            except (termios.error, OSError):  # (the terminal is gone: nothing to put back)
                pass


def _piped_status(con, failed, since=None):
    """The exit status of piped input: FAILED_EXIT, said on stderr, when some line was no
    command, was refused, or (since: the first request id of the session; None after a quit,
    which does not wait for replies) was never answered."""
    unanswered = 0 if since is None else len([i for i in con.unanswered if i >= since])
    if not failed and not unanswered:
        return 0
    what = []
    if failed:
        what.append("%d failed" % failed)
    if unanswered:
        what.append("%d never answered" % unanswered)
    sys.stderr.write("mast console: of the piped lines, %s (exit status %d)\n" % (
        " and ".join(what), FAILED_EXIT))
    sys.stderr.flush()
    return FAILED_EXIT


def do_console(args):
    from mast_tools import portpick
    from mast_tools.consoleclient import ConsoleClient, NoFirmware, diagnose

    port = portpick.resolve(args.port, "mast console")
    con = ConsoleClient(port, baudrate=args.baud)
    hello = None
    try:
        if not args.no_hello:
            try:
                hello = con.hello()
            except NoFirmware as e:
                con.close()
                raise diagnose(port, e.seen, "BOARD", args.baud)
        return run(con, args, hello=hello)
    finally:
        con.close()


# cli.py's _COMMANDS entry: (handler, argparse builder, one-line help)
COMMAND = (do_console, argparse_console, "an interactive terminal to a board's console (Ctrl-] quits)")
