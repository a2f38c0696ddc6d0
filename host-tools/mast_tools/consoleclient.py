"""The PC side of the board's JSON-lines console (docs/CONSOLE.md).

Two layers, as STYLE.md asks of serial code:

- the protocol, with no port: `Incoming` turns the bytes a board sends into classified lines
  (replies, logs, events, and text that is not JSON: the REPL's or a boot ROM's), `request()`
  builds a request line, `parse_value()` types a value as `mast config set` takes it,
  `parse_command()` reads the short commands typed in `mast console`, `readable()` shows a
  line to a person. All of it is tested without a board.
- `ConsoleClient`: the thin adapter that moves those bytes over pyserial (opened by
  serialport.open_serial: exclusive, with clear errors), waits for replies with a deadline,
  and reopens a port that vanished while the board reset (boards with native USB).

    con = ConsoleClient.connect("/dev/ttyUSB0")     # CommandError if no MAST firmware answers
    con.call("set", key="uplinks.cell.cost", value=10)
    con.call("commit")
"""

import json
import time

from mast_tools.errors import CommandError
from mast_tools.output import shown

REQUEST_TIMEOUT_S = 10.0
LINE_MAX = 2048  # bytes in a request line the board's console takes (firmware/board/console.py)
HELLO_TIMEOUT_S = 3.0
BOOT_TIMEOUT_S = 30.0


class BoardError(Exception):
    """The board answered {"ok": false}: str(e) is its error text."""


class FirmwareRefused(CommandError):
    """The MAST console answered hello, but with an error ({"ok": false}): the firmware runs
    and cannot carry out even hello, a board at the end of its heap ("out of memory"). Not
    NoFirmware: nothing may stop the firmware to look for a REPL (a Ctrl-C would). .error:
    the board's error text."""

    def __init__(self, port, error):
        if "memory" in error:
            hint = ("its heap has no room for the console's ops now (docs/HARDWARE.md, "
                    "\"Installing\": the heap a board needs); it reboots by itself once its heap "
                    "has run out for 30 s, or reboot it: mast reset --port %s" % port)
        else:
            hint = "see what it prints: mast console --port %s --no-hello" % port
        CommandError.__init__(self, "the MAST firmware on %s answers, but not hello: %s"
                              % (port, error), hint)
        self.error = error


class NoFirmware(Exception):
    """No MAST console answered. .seen: the text that was not JSON (a REPL's, say)."""

    def __init__(self, seen):
        Exception.__init__(self, "no MAST firmware answered")
        self.seen = seen


# ---- the protocol, without a port ------------------------------------------------------------


class Line:
    """One line from the board. kind: "reply", "log", "event" or "other" (not JSON);
    obj: the parsed object (None for "other"); text: the line as received."""

    __slots__ = ("kind", "obj", "text")

    def __init__(self, kind, obj, text):
        self.kind = kind
        self.obj = obj
        self.text = text

    def __repr__(self):
        return "Line(%s, %r)" % (self.kind, self.obj if self.obj is not None else self.text)


def classify(text):
    """The Line for one line of text (its \\r\\n already stripped)."""
    try:
        obj = json.loads(text)
    except (ValueError, RecursionError):  # (RecursionError: nested too deep, e.g. an app's print)
        return Line("other", None, text)
    if not isinstance(obj, dict):
        return Line("other", None, text)
    if "ok" in obj and "id" in obj:
        return Line("reply", obj, text)
    if "event" in obj:
        return Line("event", obj, text)
    return Line("log", obj, text)


class Incoming:
    """Bytes from the board -> Lines. A line ends at \\n; \\r is stripped; empty lines and
    bytes that are not UTF-8 are kept as text (with U+FFFD), never fatal. A line that grows
    past `limit` without an end is cut there (a board printing binary garbage)."""

    def __init__(self, limit=1 << 20):
        self.buf = b""
        self.limit = limit

    def feed(self, data):
        self.buf += data
        out = []
        while True:
            i = self.buf.find(b"\n")
            end = i + 1  # past the newline
            if i < 0:
                if len(self.buf) > self.limit:
                    i = end = self.limit  # cut there: no newline to skip, no byte lost
                else:
                    break
            raw, self.buf = self.buf[:i], self.buf[end:]
            text = raw.decode("utf-8", "replace").strip("\r\n").strip()
            if text:
                out.append(classify(text))
        return out

    def partial(self):
        """The text of an unfinished line (a REPL prompt such as ">>> " has no newline)."""
        return self.buf.decode("utf-8", "replace")


def request(rid, op, **fields):
    """One request line (bytes, with its newline): UTF-8 text, no \\u escapes (a board's
    json would take an escaped character beyond U+FFFF apart: the console refuses those)."""
    req = {"id": rid, "op": op}
    req.update(fields)
    return (json.dumps(req, ensure_ascii=False) + "\n").encode()


def parse_value(key, text):
    """VALUE as `mast config set KEY VALUE` takes it. A key whose value is text (a name, an
    SSID, a password, a PIN, an APN, an address: every type but int, bool and the lists) takes
    the text as typed ("1234", "true" and "2024" stay text), or a JSON string ("\"text\"").
    Any other key (and an unknown one) takes JSON (10, true, ["a"]), else the text typed by
    its schema (mast_tools.config_text: "6278", "yes", "192.0.2.1, 192.0.2.2"). Checking it
    stays the board's job."""
    from mast_tools.config_text import parse_text, takes_text

    try:
        value = json.loads(text)
    except (ValueError, RecursionError):  # (RecursionError: nested too deep; a traceback, before)
        return parse_text(key, text)
    return text if takes_text(key) and not isinstance(value, str) else value


COMMANDS_HELP = """\
commands (or a JSON request line, e.g. {"id": 1, "op": "hello"}):
  hello | status [--json] | logs | get [KEY] | set KEY VALUE | unset KEY
  validate | commit | apply | uplink NAME up|down | uplink NAME addr ADDR
  maintenance on|off | reboot | help | quit (or the escape key, Ctrl-])"""

_NO_ARGS = ("hello", "status", "validate", "commit", "apply", "reboot", "logs")
JSON_FLAG = "--json"  # `status --json`: the whole document instead of the summary


def parse_command(text):
    """A typed console command -> (op, fields) or ("raw", line bytes) for a JSON line, or
    ("local", "help"|"quit"). ValueError with a message for anything else."""
    text = text.strip()
    if text.startswith("{"):
        try:
            obj = json.loads(text)
        except (ValueError, RecursionError):  # (RecursionError: nested too deep)
            raise ValueError("not JSON; type help for the commands")
        if not isinstance(obj, dict):
            raise ValueError("a request is a JSON object")
        return "raw", (text + "\n").encode()
    words = text.split(None, 2)
    if not words:
        raise ValueError("empty")
    op, rest = words[0].lower(), words[1:]
    if op in ("help", "?"):
        return "local", "help"
    if op in ("quit", "exit"):
        return "local", "quit"
    if op == "status" and rest in (["--json"], ["json"]):
        return op, {JSON_FLAG: True}
    if op in _NO_ARGS:
        if rest:
            raise ValueError("%s takes nothing more" % op + (" (but --json)" if op == "status" else ""))
        return op, {}
    if op == "get":
        if len(rest) > 1:
            raise ValueError("usage: get [KEY]")
        return "get", ({"key": rest[0]} if rest else {})
    if op == "set":
        if len(rest) != 2:
            raise ValueError("usage: set KEY VALUE")
        return "set", {"key": rest[0], "value": parse_value(rest[0], rest[1])}
    if op == "unset":
        if len(rest) != 1:
            raise ValueError("usage: unset KEY")
        return "unset", {"key": rest[0]}
    if op == "maintenance":
        if rest not in (["on"], ["off"]):
            raise ValueError("usage: maintenance on|off")
        return "maintenance", {"state": rest[0]}
    if op == "uplink":
        args = text.split()[1:]
        if len(args) == 2 and args[1] in ("up", "down"):
            return "uplink", {"name": args[0], "state": args[1]}
        if len(args) == 3 and args[1] == "addr":
            return "uplink", {"name": args[0], "addr": args[2]}
        raise ValueError("usage: uplink NAME up|down, or uplink NAME addr ADDR")
    raise ValueError("unknown command %r; type help" % op[:20])


# the fields of logs and events, in the order a person reads them (MicroPython's dicts keep
# no order); the others follow alphabetically
_ORDER = ("board", "firmware", "mode", "config", "warning", "peer", "uplink", "addr", "path",
          "old", "new", "gap_ms", "reason", "error", "state")


def _fields(obj, skip):
    parts = []
    rank = dict((k, i) for i, k in enumerate(_ORDER))
    for k in sorted(obj, key=lambda k: (rank.get(k, len(_ORDER)), k)):
        if k in skip:
            continue
        v = obj[k]
        if v is None:
            continue
        parts.append("%s=%s" % (shown(k), shown(v) if isinstance(v, str) else json.dumps(v)))
    return " ".join(parts)


def readable(line, stamp=None):
    """A Line as a person reads it (one or more text lines, no trailing newline). What the board
    sent is shown (output.shown: its control characters as escapes), each field on its own, so a
    field can neither reach the terminal's controls nor forge a line; only a crash's traceback
    keeps its lines."""
    t = (stamp + " ") if stamp else ""
    o = line.obj
    if line.kind == "other":
        return shown(line.text)
    if line.kind == "event":
        return "%sevent %s %s" % (t, shown(o.get("event")), _fields(o, ("event",)))
    if line.kind == "log":
        what = shown(o.get("log"))
        if what == "crash":
            tb = o.get("traceback") or ""
            tb = (tb if isinstance(tb, str) else json.dumps(tb)).rstrip()
            text = "%sCRASH %s" % (t, shown(o.get("error")))
            return text + ("\n" + "\n".join("      " + shown(x) for x in tb.splitlines()) if tb else "")
        rest = _fields(o, ("log",))
        return "%slog   %s%s" % (t, what, (" " + rest) if rest else "")
    rid = "" if o.get("id") is None else "#%s " % (shown(o["id"]),)
    if not o.get("ok"):
        return "%serror %s%s" % (t, rid, shown(o.get("error")))
    result = o.get("result")
    body = json.dumps(result, sort_keys=True)
    if len(body) > 100:
        body = json.dumps(result, indent=2, sort_keys=True)
    return "%sok    %s%s" % (t, rid, body)


# ---- the adapter: pyserial ---------------------------------------------------------------------


class ConsoleClient:
    """The console over a serial port. Lines that are not replies are kept for the caller:
    .logs and .events (dicts), .other (text that is not JSON); on_line(Line), if given, sees
    every line as it arrives."""

    def __init__(self, port, ser=None, on_line=None, baudrate=None):
        from mast_tools.serialport import BAUDRATE, open_serial

        self.port = port
        self.baudrate = baudrate or BAUDRATE
        self.ser = ser if ser is not None else open_serial(port, self.baudrate)
        self.incoming = Incoming()
        self.replies = {}
        self.logs = []
        self.events = []
        self.other = []
        self.on_line = on_line
        self.next_id = 1
        self.unanswered = set()  # ids sent whose reply has not come

    @classmethod
    def connect(cls, port, timeout=HELLO_TIMEOUT_S, flash_board="BOARD", baudrate=None):
        """Open the port and check a MAST console answers hello; CommandError otherwise,
        saying what does answer (diagnose())."""
        con = cls(port, baudrate=baudrate)
        try:
            con.hello_info = con.hello(timeout)
        except NoFirmware as e:
            con.close()
            raise diagnose(port, e.seen, flash_board, con.baudrate)
        return con

    @classmethod
    def open_when_back(cls, port, timeout, baudrate=None):
        """Open a port that may be gone for a moment (a board with native USB that was just
        reset); CommandError if it is not back within timeout."""
        end = time.monotonic() + timeout
        while True:
            try:
                return cls(port, baudrate=baudrate)
            except CommandError:
                if time.monotonic() > end:
                    raise
                time.sleep(0.25)

    def close(self):
        try:
            self.ser.close()
        except Exception:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    # bytes both ways

    def write(self, data):
        import serial

        try:
            self.ser.write(data)
            self.ser.flush()
        except (serial.SerialException, OSError) as e:
            raise CommandError("lost %s while writing (%s)" % (self.port, e),
                               "check the cable; the board may have reset")

    def _take(self, line):
        if line.kind == "reply":
            self.unanswered.discard(line.obj["id"])
            self.replies.setdefault(line.obj["id"], []).append(line.obj)
        elif line.kind == "event":
            self.events.append(line.obj)
        elif line.kind == "log":
            self.logs.append(line.obj)
        else:
            self.other.append(line.text)
        if self.on_line is not None:
            self.on_line(line)

    def pump(self, seconds=0.0):
        """Read what the board says for up to `seconds` (at least one read)."""
        import serial

        end = time.monotonic() + seconds
        while True:
            try:
                data = self.ser.read(65536)
            except (serial.SerialException, OSError) as e:
                raise PortLost(self.port, e)
            for line in self.incoming.feed(data):
                self._take(line)
            if time.monotonic() >= end:
                return

    def wait(self, pred, timeout):
        """Pump until pred() is true (True) or timeout passes (False)."""
        end = time.monotonic() + timeout
        while True:
            self.pump(0.02)
            if pred():
                return True
            if time.monotonic() > end:
                return False

    # requests

    def send(self, op, **fields):
        """Send one request; returns its id. CommandError, nothing sent, for a request longer
        than the board's console takes (it would answer with a null id: no reply to wait for),
        or one holding text that is not UTF-8 (a command line's or stdin's undecodable byte)."""
        rid = self.next_id
        try:
            line = request(rid, op, **fields)
        except UnicodeEncodeError:  # a byte that was not UTF-8 (argv, stdin): not quoted, it may be a key
            raise CommandError("the %s request holds text that is not UTF-8 (a byte your terminal "
                               "or file could not decode)" % op, "type it again as UTF-8 text")
        if len(line) - 1 > LINE_MAX:
            raise CommandError("the %s request is %d bytes, and the board's console takes lines of "
                               "at most %d" % (op, len(line) - 1, LINE_MAX), "give a shorter value")
        self.next_id += 1
        self.unanswered.add(rid)
        self.write(line)
        return rid

    def replies_due(self):
        """Whether a request sent with send() still waits for its reply."""
        return bool(self.unanswered)

    def request(self, op, timeout=REQUEST_TIMEOUT_S, **fields):
        """The reply (a dict) to one request; TimeoutError if none comes."""
        rid = self.send(op, **fields)
        if not self.wait(lambda: rid in self.replies, timeout):
            raise TimeoutError("no reply to %s in %.0f s" % (op, timeout))
        return self.replies.pop(rid)[0]

    def call(self, op, timeout=REQUEST_TIMEOUT_S, **fields):
        """The result of a request; BoardError if the board refused it."""
        r = self.request(op, timeout, **fields)
        if not r.get("ok"):
            raise BoardError(r.get("error") or "refused")
        return r.get("result")

    def hello(self, timeout=HELLO_TIMEOUT_S, resend_s=1.0):
        """The board's hello, asking again every resend_s (a board may be booting);
        NoFirmware if no MAST console answers within timeout, or at once when a MicroPython
        REPL answers instead (its prompt); FirmwareRefused if the firmware answers each hello
        with an error until timeout."""
        self.write(b"\n")  # ends whatever partial line the board holds
        end = time.monotonic() + timeout
        sent = []
        refused = None
        first_other = len(self.other)
        while True:
            sent.append(self.send("hello"))
            until = min(end, time.monotonic() + resend_s)
            got = [None]

            def answered():
                for rid in sent:
                    if rid in self.replies:
                        got[0] = self.replies.pop(rid)[0]
                        return True
                return repl_prompt(self.other[first_other:], self.incoming.partial())

            if self.wait(answered, max(0.0, until - time.monotonic())):
                r = got[0]
                if r is None:  # a REPL, not the firmware: no need to wait longer
                    end = time.monotonic()
                elif r.get("ok") and isinstance(r.get("result"), dict):
                    return r["result"]
                elif r.get("ok") is False:  # the firmware, refusing (asked again until timeout)
                    refused = str(r.get("error"))
            if time.monotonic() >= end:
                if refused is not None:
                    raise FirmwareRefused(self.port, refused)
                seen = self.other[-6:]
                tail = self.incoming.partial().strip()
                if tail:
                    seen = seen + [tail]
                raise NoFirmware(seen)

    def reopen(self, timeout):
        """Close and open the port again (it vanishes while a board with native USB
        resets); CommandError if it does not come back within timeout."""
        from mast_tools.serialport import open_serial

        self.close()
        end = time.monotonic() + timeout
        while True:
            try:
                self.ser = open_serial(self.port, self.baudrate)
                return
            except CommandError:
                if time.monotonic() > end:
                    raise
                time.sleep(0.25)

    def wait_hello(self, timeout=BOOT_TIMEOUT_S, mode=None):
        """After a reboot: the first hello (with `mode`, if given) within timeout, reopening
        the port if it went away; NoFirmware if none comes."""
        end = time.monotonic() + timeout
        seen = []
        refused = None
        while True:
            left = end - time.monotonic()
            if left <= 0:
                if refused is not None:
                    raise refused
                raise NoFirmware(seen)
            try:
                info = self.hello(min(left, 2.0), resend_s=0.3)
                if mode is None or info.get("mode") == mode:
                    return info
                time.sleep(0.2)
            except NoFirmware as e:
                seen = e.seen
            except FirmwareRefused as e:  # up, but not yet able to answer: ask again
                refused = e
            except CommandError:  # PortLost included: a board with native USB resets
                self.reopen(max(0.5, end - time.monotonic()))


def repl_prompt(lines, partial=""):
    """Whether a MicroPython REPL shows in what the board printed: the friendly prompt
    (">>> ", which has no newline) or the raw REPL's banner."""
    if partial.rstrip().endswith(">>>") or "raw REPL; CTRL-B to exit" in partial:
        return True
    for text in lines:
        if text.startswith(">>>") or text.startswith("raw REPL; CTRL-B") or text.startswith("Traceback"):
            return True
    return False


class PortLost(CommandError):
    """The port went away under us (unplugged, or a board with native USB reset). A
    CommandError, so that where nobody waits for it, the user reads what happened."""

    def __init__(self, port, why):
        CommandError.__init__(self, "lost %s (%s)" % (port, why),
                              "check the cable; the board may have reset; run the command again")


def no_firmware_error(port, seen, board="BOARD", installed=None, baudrate=None):
    """The CommandError for a port where no MAST console answers. installed: whether the
    firmware's files are on the board (True: it is there but stopped, at the REPL; False: a
    bare MicroPython board; None: not known)."""
    text = " ".join(seen)
    repl = ">>>" in text or "raw REPL" in text or "MicroPython" in text or "Traceback" in text
    if not seen:
        from mast_tools.serialport import BAUDRATE, silent_error

        return silent_error(port, baudrate or BAUDRATE)
    if installed and repl:
        return CommandError(
            "the MAST firmware is on the board at %s but not running: the board is at its "
            "MicroPython REPL (mpremote, Thonny or a Ctrl-C stop the firmware)" % port,
            "start it again: mast reset --port %s" % port)
    if repl:
        what = "no MAST firmware on the board at %s: a bare MicroPython REPL answers" % port
    else:
        what = "no MAST firmware answers on %s (it printed: %s)" % (port, text[-60:])
    return CommandError(what, "put the firmware on it: mast flash --port %s --board %s "
                              "(`mast flash --board list` names the boards)" % (port, board))


def diagnose(port, seen, board="BOARD", baudrate=None):
    """The CommandError for a port where no MAST console answered, after finding out what is
    there: when a REPL answered, whether the firmware is installed (boardrepl.installed: a
    look at the board's files through its raw REPL, which leaves it at the REPL as it was)."""
    text = " ".join(seen)
    installed = None
    if not seen:
        from mast_tools.serialport import BAUDRATE, probe_alive

        # a board left in its raw REPL (a flash cut off, say) says nothing to a console's
        # hello, but answers a Ctrl-C or Ctrl-B (probe_alive): it is a REPL, not silence
        if probe_alive(port, baudrate or BAUDRATE):
            seen = [">>> (a REPL answered a Ctrl-C)"]
            text = seen[0]
    if seen and (">>>" in text or "raw REPL" in text or "Traceback" in text):
        from mast_tools import boardrepl

        installed = boardrepl.firmware_installed(port, baudrate)
        if installed is None:
            return CommandError(
                "a MicroPython REPL answers on %s, not the MAST console, and whether the firmware "
                "is on the board could not be told (its raw REPL did not answer)" % port,
                "if it is: mast reset --port %s; if not: mast flash --port %s --board %s"
                % (port, port, board))
    return no_firmware_error(port, seen, board, installed, baudrate)
