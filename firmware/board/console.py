# The serial console's protocol (docs/CONSOLE.md), without any port: bytes in,
# JSON lines out. stdio.py is the thin adapter to the REPL's stdin and stdout.
#
#   request  {"id": 7, "op": "set", "key": "uplinks.cell.cost", "value": 10}
#   reply    {"id": 7, "ok": true, "result": ...}
#            {"id": 7, "ok": false, "error": "uplinks.cell.cost: must be ..."}
#
# "id" is echoed (null when the line could not be parsed). Every request is
# checked before the board sees it: a JSON object, a known op, only that op's
# fields, each of the right type. Bad input of any kind gets an error reply and
# changes nothing; 0x03 (Ctrl-C) raises KeyboardInterrupt, so mpremote can break
# into the REPL even where 0x03 is a plain byte (a pty, USB-CDC on some ports).
# Input is never echoed in a reply or a log: it may hold a secret.
#
# This module (lines in, replies out) stays in the heap; request.py, which parses and
# checks each request line, is imported for the line and forgotten before the op
# runs, so that its code takes no heap the rest of the time.

from .compat import dumps, loads, unload

LINE_MAX = 2048  # bytes in a request line, newline excluded
ID_MAX = 64  # characters in a request's id, when it is text
_CTRL_C = 3


class OpError(ValueError):
    """A request the board cannot carry out; str(e) is the reply's error."""


class Console:
    """board: the object that carries out the ops (Board in main.py, or a test's).
    write(text): one output line (without the newline); send(obj), if given, writes
    one object as a JSON line without building the whole line first."""

    def __init__(self, board, write, send=None, limit=LINE_MAX):
        self.board = board
        self.write = write
        self.send = send
        self.requests = 0
        self.errors = 0
        # the lines being read (lines(); in this class, not one of its own: a board keeps
        # this module loaded, and each class and method costs it heap)
        self.limit = limit
        self.buf = bytearray()
        self.skip = 0  # a line being dropped: 1 too long, 2 no heap for it
        self.interrupted = False  # a 0x03 (Ctrl-C) came: feed raises KeyboardInterrupt

    def lines(self, data):
        """Bytes -> request lines: [line bytes; None: a line too long; False: one lost for
        want of heap]. A line ends at \\n or \\r (empty lines are skipped). A line longer than
        limit (LINE_MAX) is dropped whole and reported once at its end; so is one the heap had
        no room for (a board at the end of its heap: each line still gets a reply). A 0x03
        (Ctrl-C) ends the feed: the lines before it are given, interrupted is set, and the
        bytes after it stay unread by the caller."""
        out = []
        for b in data:
            if b == _CTRL_C:
                self.buf[:] = b""
                self.skip = 0
                self.interrupted = True
                break
            if b == 10 or b == 13:
                if self.skip:
                    out.append(None if self.skip == 1 else False)
                elif self.buf:
                    try:
                        out.append(bytes(self.buf))
                    except MemoryError:
                        out.append(False)
                try:
                    self.buf = bytearray()  # (a long line's block goes with it)
                except MemoryError:
                    self.buf[:] = b""  # (keeps its block: no allocation)
                self.skip = 0
            elif self.skip:
                continue
            elif len(self.buf) >= self.limit:
                self.skip = 1
                self.buf[:] = b""
            else:
                try:
                    self.buf.append(b)
                except MemoryError:
                    self.skip = 2
                    self.buf[:] = b""
        return out

    def feed(self, data):
        """Handle the requests in data (bytes). KeyboardInterrupt on Ctrl-C, once the lines
        before it are answered."""
        for line in self.lines(data):
            r = self.handle(line)
            try:
                if self.send is not None:
                    self.send(r)
                else:
                    self.write(dumps(r))
            except MemoryError:  # no room to write this reply: a short one says so
                rid = r.get("id")
                r = None
                self.errors += 1
                # (after the newline: what the failed reply wrote of itself ends there)
                self.write("\n" + dumps(_error(rid, "out of memory (the reply)")))
        if self.interrupted:
            self.interrupted = False
            raise KeyboardInterrupt

    def handle(self, line):
        """The reply (a dict) to one request line (bytes; None: it was too long; False: lost)."""
        self.requests += 1
        rid = None
        try:
            try:
                from . import request

                rid, op, req = request.parse(line)
                call = request.call(op, req)
            finally:  # its code goes before the op's comes (and a load cut short goes too)
                request = None
                unload("board.request")
            # call: (module, function, arguments...) for the board's once()
            return {"id": rid, "ok": True, "result": self.board.once(*call)}
        except ValueError as e:  # ConfigError and OpError included
            self.errors += 1
            return _error(getattr(e, "rid", rid), str(e) or type(e).__name__)
        except MemoryError:
            self.errors += 1
            return _error(_id_of(line) if rid is None else rid, "out of memory")
        except Exception as e:  # a bug: report it, never crash the board
            self.errors += 1
            return _error(rid, "internal error: %s: %s" % (type(e).__name__, e))


def _error(rid, msg):
    return {"id": rid, "ok": False, "error": msg}


def _id_of(line):
    """The id of a request line whose checks (request.py) ran out of memory, or None: read
    here, with no more than a JSON parse, so that the host's wait for that id ends with the
    error (with a null id it waits in vain). An id as request.py takes it: an integer, or text
    of at most ID_MAX characters."""
    try:
        rid = loads(line).get("id")
    except Exception:  # (not JSON, not an object, or no heap for even this)
        return None
    return rid if type(rid) is int or (type(rid) is str and len(rid) <= ID_MAX) else None
