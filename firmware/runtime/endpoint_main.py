# The endpoint process: one MAST endpoint on real sockets, driven by a JSON file,
# talking JSON lines. The same file runs on a board's MicroPython and on the PC:
#
#   micropython -m runtime.endpoint_main ENDPOINT.json [--duration S] [--no-stdin] [--stream-records]
#   mast endpoint --config ENDPOINT.json                (CPython, from host-tools)
#
# The file format (runconfig.py) and the line protocol are in docs/RUNTIME.md.
# stdout: one JSON object per line: {"event": ...} for what happened (the core's
# events and the runtime's own), {"reply": op, ...} for the answer to a command.
# stdin: one JSON command per line, e.g. {"op": "status"}, {"op": "down", "name":
# "eth"}, {"op": "uplink", "name": "wifi", "addr": "127.0.0.5:6278"},
# {"op": "send", "text": "hi"}, {"op": "stream", "rate": 0}, {"op": "quit"}.
# End of input ends the process (--no-stdin: stdin is not read at all).
#
# Restricted Python: runs on MicroPython and CPython.

import gc
import sys
import os
import json

from mast.endpoint import Endpoint
from mast.compat import binascii
from mast.addr import fmt
from .driver import Runtime, MICROPYTHON
from .status import runtime_name
from .runconfig import check, FileError, STREAM_MIN_SIZE, STREAM_MAX_SIZE
from .hostport import parse_hostport

# Imported only when used (a board's heap): stream (a test stream, stream records) and
# rendezvous (presence and DNS-named peers).


def _rendezvous():
    from . import rendezvous

    return rendezvous


def _stream():
    from . import stream

    return stream


def _wants_rendezvous(doc):
    """The endpoint file asks for presence, or connects a peer known by DNS name only."""
    if type(doc) is not dict:
        return False
    if "presence" in doc:
        return True
    peers = doc.get("mast", {}).get("peers", {}) if type(doc.get("mast")) is dict else {}
    for p in doc.get("connect", ()) if type(doc.get("connect")) is list else ():
        pc = peers.get(p) if type(p) is str and type(peers) is dict else None
        if type(pc) is dict and pc.get("dns") and not pc.get("addresses"):
            return True
    return False

USAGE = "usage: endpoint_main ENDPOINT.json [--duration S] [--no-stdin] [--stream-records]"
_IDLE_MS = 1000  # longest sleep of the loop when nothing is due
# A longer command line is refused: room for a send of the largest payload in hex (2 x 2020)
# with its JSON around it, and a bit more.
_LINE_MAX = 8192
_PIECE = 256  # MicroPython: stdin is read in pieces of this many characters
_RCVBUF = 1 << 20  # SO_RCVBUF of a host's uplink sockets unless the file says (issue 15.8)


def load(path):
    """The checked endpoint file at path; FileError naming the key (or "file")."""
    try:
        f = open(path)
    except OSError as e:
        raise FileError("file", "cannot read %s (%s)" % (path, e))
    if MICROPYTHON:  # (its json takes no hook: a key given twice keeps the last there, and
        load_json, DuplicateKey = json.load, ()  # jsonrule's code would stay in the heap for nothing)
    else:
        from .jsonrule import DuplicateKey, load_json
    try:
        try:
            doc = load_json(f)
        except DuplicateKey as e:  # (a peer given twice: its first section was silently lost)
            raise FileError("file", "%s: %s" % (path, e))
        except ValueError as e:
            raise FileError("file", "%s is not valid JSON (%s)" % (path, e))
        except Exception:  # (nested too deep for the parser: RecursionError, MemoryError)
            raise FileError("file", "%s nests objects and lists too deep for an endpoint file" % path)
    finally:
        f.close()
    try:
        if not _wants_rendezvous(doc):
            cfg = check(doc)
            cfg["presence"] = None
            return cfg
        rv = _rendezvous()
        extra = rv.split(doc)  # "presence", and DNS-named peers in "connect"
        cfg = check(doc)
        cfg["presence"] = rv.check(extra, cfg)
        return cfg
    except (TypeError, AttributeError) as e:  # a value of a type no check expected there
        raise FileError("file", "%s holds a value of the wrong type (%s)" % (path, e))


def _addr_text(a):
    return fmt(a) if a else None


class Process:
    """An endpoint, its Runtime, an optional test stream, and the line protocol.
    out(line) writes one line; tests hand in a list's append."""

    def __init__(self, cfg, out, random_bytes=None, clock=None):
        self.cfg = cfg
        self.out = out
        ep = Endpoint(cfg["mast"], random_bytes or os.urandom)
        self.presence = _rendezvous().client(ep, cfg["presence"]) if cfg.get("presence") else None
        rcvbuf = cfg.get("rcvbuf")
        if rcvbuf is None and not MICROPYTHON:
            rcvbuf = _RCVBUF  # a host: room for bursts (a board keeps its stack's own)
        self.rt = Runtime(self.presence or ep, clock, rcvbuf or None)  # the client wraps the core
        self.stream = None
        self.stream_records = cfg.get("stream_records", False)  # decode received "S" records
        self.quit = None  # why the loop ends
        self.dropped = 0  # output lines lost for want of memory (said when there is room again)
        self._stdin_key = None
        self._pending = b""
        self._skipping = False  # (CPython) in the rest of a command line refused as too long
        self._to_connect = []  # peers of "connect" not yet connected (no memory at start)

    def emit(self, obj, raw=None):
        """One JSON line; `raw` (bytes), if given, goes in it as "hex". A line that cannot be
        built whole for want of memory is written to stdout in small pieces instead; one that
        cannot be written at all is counted and dropped, never fatal: the endpoint's own
        logging never ends it (issue 15.1)."""
        try:
            if self.dropped:
                self.out(json.dumps({"event": "lines_dropped", "n": self.dropped,
                                     "why": "no memory"}))
                self.dropped = 0
            if raw is not None:
                obj["hex"] = binascii.hexlify(raw).decode()
            self.out(json.dumps(obj))
            return
        except MemoryError:
            obj.pop("hex", None)
        gc.collect()
        if self.out is _write_line and _write_pieces(obj, raw):
            return
        self.dropped += 1
        self.rt.count("lines_dropped")

    def start(self):
        for name, u in self.cfg["uplinks"].items():
            self.rt.add_uplink(name, u["bind"], u["priority"], u["cost"], u["device"],
                               u["via"], u["public"])
        s = self.cfg["stream"]
        if s is not None:
            self.stream = _stream().Stream(self.rt, s["peer"], s["rate"], s["size"], s["count"])
        ups = {}
        for name, u in self.rt.uplinks.items():
            ups[name] = {"bind": _addr_text(u.bind), "public": _addr_text(u.public),
                         "via": _addr_text(u.via)}
        self.emit({"event": "started", "name": self.cfg["mast"]["name"],
                   "runtime": runtime_name(), "uplinks": ups, "t_ms": self.rt.now()})
        self._to_connect = list(self.cfg["connect"])
        self._connect_pending()
        if self.presence is not None:  # register, resolve DNS names, follow peers
            _rendezvous().start(self.presence, self.rt, self.cfg)

    def _connect_pending(self):
        """Connect the peers of "connect"; one the heap has no room for now is tried again
        on a later turn (counted no_memory), never the end of the process."""
        while self._to_connect:
            try:
                self.rt.connect(self._to_connect[0])
            except MemoryError:
                self.rt.count("no_memory")
                gc.collect()
                return
            self._to_connect.pop(0)

    # ---- the loop ----------------------------------------------------------------------

    def run(self, duration_ms=None, max_turns=None):
        rt = self.rt
        end = None if duration_ms is None else rt.now() + duration_ms
        turns = 0
        self.pump()
        while self.quit is None:
            now = rt.now()
            timeout = _IDLE_MS
            if self.stream is not None:
                w = self.stream.wait_ms(now)
                if w is not None and w < timeout:
                    timeout = w
            if end is not None:
                timeout = max(0, min(timeout, end - now))
            rt.poll(timeout)  # (counts and survives MemoryError inside)
            now = rt.now()
            try:
                if self._to_connect:
                    self._connect_pending()
                if self.stream is not None:
                    self.stream.tick(now)
                self.pump()
            except MemoryError:  # what was being reported is lost, counted; the loop goes on
                rt.count("no_memory")
                gc.collect()
            turns += 1
            if end is not None and now >= end:
                self.quit = "duration"
            if max_turns is not None and turns >= max_turns:
                self.quit = "turns"
        return self.quit

    def pump(self):
        """Print what happened; start the stream when its association is up."""
        now = self.rt.now()
        for ev in self.rt.recv():
            d = {"event": "data", "peer": ev.peer, "len": len(ev.payload), "ip": ev.ip,
                 "uplink": ev.uplink, "src": _addr_text(ev.src), "t_ms": now}
            s = _stream().decode(ev.payload) if self.stream_records else None
            if s is not None:  # (only with stream_records: a flag, not the first byte, decides)
                d["seq"], d["sent_ms"] = s
                self.emit(d)
            else:
                self.emit(d, ev.payload)
        for ev in self.rt.events():
            d = ev.as_dict()
            d["t_ms"] = now
            self.emit(d)
            if (ev.kind == "association_up" and self.stream is not None
                    and ev.peer == self.stream.peer):
                self.stream.start(now)

    # ---- commands on stdin ---------------------------------------------------------------

    def watch_stdin(self):
        self._stdin_key = self.rt.add_reader(sys.stdin, self._on_stdin)

    def _on_stdin(self, obj, flags):
        # a command line is at most _LINE_MAX long: a longer one is refused once, with one error
        # reply, and the rest of it (up to its newline) is skipped, never read as commands
        if MICROPYTHON:
            # the whole line (readline() blocks until its newline), read in pieces: readline(n)
            # takes a block of n at once, and a heap under pressure has no 8 KB block to give
            parts = []
            n = 0
            try:
                while True:
                    piece = sys.stdin.readline(_PIECE)
                    if not piece:
                        break
                    if n <= _LINE_MAX:
                        parts.append(piece)  # (past the limit: only counted, not kept)
                    n += len(piece)
                    if piece[-1] == "\n":
                        n -= 1
                        break
                if not parts:
                    return self._eof()
                if n > _LINE_MAX:
                    self._too_long()
                else:
                    self.command("".join(parts))
            except UnicodeError:  # (the port's stdin decodes: the rest of that line is skipped)
                self.emit({"reply": None, "error": "not UTF-8 text"})
            except MemoryError:  # no room for the line: say so, as a command would
                parts = None
                gc.collect()
                self.emit({"reply": None, "error": "no memory for this now; try again"})
            return None
        data = os.read(sys.stdin.fileno(), 4096)  # not sys.stdin: its buffer hides lines from poll
        if not data:
            return self._eof()
        self._pending += data
        while b"\n" in self._pending:
            line, self._pending = self._pending.split(b"\n", 1)
            if self._skipping:
                self._skipping = False
            elif len(line.rstrip(b"\r")) > _LINE_MAX:
                self._too_long()
            else:
                self.command(line.decode("utf-8", "replace"))
        if len(self._pending) > _LINE_MAX:
            self._pending = b""
            if not self._skipping:
                self._skipping = True
                self._too_long()
        return None

    def _too_long(self):
        self.emit({"reply": None, "error": "command line longer than %d bytes" % _LINE_MAX})

    def _eof(self):
        self.rt.remove_reader(sys.stdin, self._stdin_key)
        if self.quit is None:
            self.quit = "eof"

    def command(self, line):
        line = line.strip()
        if not line:
            return
        try:
            cmd = json.loads(line)
        except Exception:  # (not JSON, or nested too deep for the parser) never repeated: a
            self.emit({"reply": None, "error": "not JSON"})  # line may hold a key
            return
        op = cmd.get("op") if type(cmd) is dict else None
        if type(op) is not str:
            op = None  # (an object or a list is never repeated: it may hold a key)
        handler = _OPS.get(op)
        if handler is None:
            self.emit({"reply": op, "error": "unknown op %r (known: %s)" % (
                op, ", ".join(sorted(_OPS)))})
            return
        try:
            reply = handler(self, cmd) or {}
        except MemoryError:  # (a status under pressure, say): a short answer instead
            reply = None
            gc.collect()
            reply = {"error": "no memory for this now; try again"}
        except ValueError as e:  # a bad field: its message names it, with no exception's name
            reply = {"error": str(e)}
        except Exception as e:  # anything else: an answer, never the end of the process
            reply = {"error": "%s: %s" % (type(e).__name__, e)}
        reply["reply"] = op
        self.emit(reply)

    def op_status(self, cmd):
        s = self.rt.status()
        if self.stream is not None:
            s["stream"] = self.stream.status()
        return {"status": s}

    def op_send(self, cmd):
        if "hex" in cmd:
            try:
                payload = binascii.unhexlify(cmd["hex"])
            except Exception:  # (CPython's binascii.Error, a TypeError; the digits never repeated)
                raise ValueError("hex must be the payload in hex digits (0-9, a-f), two a byte")
        else:
            payload = str(cmd.get("text", "")).encode()
        return {"ok": self.rt.send(payload, _text(cmd, "peer", True))}

    def op_uplink(self, cmd):
        """Add or renumber an uplink. "addr" is the new public address of an uplink
        that sends via a relay, else the new local address to bind."""
        name = cmd.get("name")  # (missing: said as the field, not a KeyError)
        if type(name) is not str or not name:
            raise ValueError("name must be the uplink's name (text)")
        for k in ("priority", "cost"):
            v = cmd.get(k)
            if v is not None and (type(v) is not int or not 0 <= v <= 255):
                raise ValueError("%s must be an integer from 0 to 255" % k)
        if cmd.get("device") is not None and type(cmd["device"]) is not str:
            raise ValueError("device must be an interface's name (text)")
        old = self.rt.uplinks.get(name)
        via = _hostport(cmd, "via") if "via" in cmd else (old.via if old else None)
        bind = _hostport(cmd, "bind", True) if "bind" in cmd else None
        public = _hostport(cmd, "public") if "public" in cmd else None
        if "addr" in cmd:
            if via is not None:
                public = _hostport(cmd, "addr")
            else:
                bind = _hostport(cmd, "addr", True)
        if bind is None:
            if old is None:
                raise ValueError("a new uplink needs bind (or addr)")
            bind = old.bind
        if public is None and old is not None and via is not None:
            public = old.public
        # priority and cost: as given, else as the file (or an earlier command) set them
        pref = self.cfg["uplinks"].setdefault(name, {})
        for k in ("priority", "cost"):
            if cmd.get(k) is not None:
                pref[k] = cmd[k]
        u = self.rt.add_uplink(name, bind, pref.get("priority"), pref.get("cost"),
                               cmd.get("device", old.device if old else None), via, public)
        return {"name": name, "bind": _addr_text(u.bind), "public": _addr_text(u.public)}

    def op_down(self, cmd):
        name = _text(cmd, "name")
        self.rt.remove_uplink(name)
        return {"name": name}

    def op_connect(self, cmd):
        addrs = None
        if "addrs" in cmd:
            if type(cmd["addrs"]) is not list:  # (an object's keys, a text's characters: never walked)
                raise ValueError('addrs must be a list of "HOST:PORT" texts')
            try:
                addrs = [parse_hostport(a) for a in cmd["addrs"]]
            except ValueError as e:
                raise ValueError("addrs: %s" % e)
        self.rt.connect(_text(cmd, "peer"), addrs)
        return {"peer": cmd["peer"]}

    def op_close(self, cmd):
        self.rt.close(_text(cmd, "peer", True))  # (not a peer of any type: closing nothing, ok)
        return {}

    def op_stream(self, cmd):
        rate = cmd.get("rate", 50)
        if type(rate) is not int or not 0 <= rate <= 1000:
            raise ValueError("rate must be an integer from 0 to 1000")
        if self.stream is None:
            peer = cmd.get("peer")
            if type(peer) is not str:  # (an object would stay in every status: it may hold a key)
                raise ValueError("no stream yet: give its peer")
            size = cmd.get("size", 64)
            if type(size) is not int or not STREAM_MIN_SIZE <= size <= STREAM_MAX_SIZE:  # (as the file's)
                raise ValueError("size must be an integer from %d to %d" % (STREAM_MIN_SIZE, STREAM_MAX_SIZE))
            self.stream = _stream().Stream(self.rt, peer, rate, size)
        s = self.stream
        s.set_rate(rate)
        if not rate:
            s.stop()
        else:
            a = self.rt.ep.association(s.peer)
            if a is not None and a.state == 2:  # ESTABLISHED: start now, else at association_up
                s.start(self.rt.now())
        return {"stream": s.status()}

    def op_peer(self, cmd):
        """Add or change one peer ({"op": "peer", "name": N, "set": {section}}) or remove it
        ({"op": "peer", "name": N, "remove": true}); the other associations stay."""
        name = _text(cmd, "name")
        core = getattr(self.rt.ep, "ep", self.rt.ep)  # (the presence client keeps the core as .ep)
        if cmd.get("remove"):
            core.remove_peer(name, self.rt.now())
        elif type(cmd.get("set")) is not dict:  # (missing: said as the fields, not a KeyError)
            raise ValueError('give "set": the peer\'s section (psk, addresses, ...), or "remove": true')
        else:
            core.set_peer(name, cmd["set"], self.rt.now())
        self.rt.run_timers()
        return {"name": name, "peers": len(core.cfg["peers"])}

    def op_quit(self, cmd):
        self.quit = "quit"
        return {}


def _hostport(cmd, key, allow_zero=False):
    """parse_hostport(cmd[key]); its ValueError names the field."""
    try:
        return parse_hostport(cmd[key], allow_zero)
    except ValueError as e:
        raise ValueError("%s: %s" % (key, e))


def _text(cmd, key, optional=False):
    """cmd[key], which names a peer or an uplink; ValueError if it is not text. A name that is an
    object or a list is never looked up: MicroPython's `in` takes one (CPython's empty dict's
    pop too) and the error that follows would repeat it, and it may hold a key."""
    v = cmd.get(key)  # (missing and not optional: the same error, naming the field)
    if type(v) is not str and not (optional and v is None):
        raise ValueError("%s must be a name (text)" % key)
    return v


_OPS = {
    "status": Process.op_status, "send": Process.op_send, "uplink": Process.op_uplink,
    "down": Process.op_down, "connect": Process.op_connect, "close": Process.op_close,
    "stream": Process.op_stream, "peer": Process.op_peer, "quit": Process.op_quit,
    "presence": lambda p, cmd: _rendezvous().op_presence(p, cmd),
}


def _write_line(line):
    sys.stdout.write(line + "\n")
    if hasattr(sys.stdout, "flush"):
        sys.stdout.flush()


_HEX_PIECE = 96  # bytes of a payload hexed at a time when writing in pieces


def _write_pieces(obj, raw):
    """Write one line to stdout without building it: json.dump streams it (MicroPython writes
    token by token), and the payload goes out _HEX_PIECE bytes at a time. Returns False if even
    that ran out of memory; the line is then ended where it stopped (a reader skips a line
    that is not JSON) and counted as dropped."""
    w = sys.stdout.write
    try:
        if raw is None:
            json.dump(obj, sys.stdout)
        else:
            head = json.dumps(obj)
            w(head[:-1])
            w(', "hex": "' if len(head) > 2 else '"hex": "')
            head = None
            mv = memoryview(raw)
            for i in range(0, len(raw), _HEX_PIECE):
                w(binascii.hexlify(mv[i:i + _HEX_PIECE]).decode())
            w('"}')
        ok = True
    except MemoryError:
        ok = False
    w("\n")
    if hasattr(sys.stdout, "flush"):
        sys.stdout.flush()
    return ok


def _duration_ms(text):
    """--duration's seconds (more than zero, at most 1e9: as mast endpoint takes them) in ms."""
    try:
        s = float(text)
    except ValueError:
        s = 0.0
    if not 0 < s <= 1e9:  # (nan and inf too)
        raise ValueError("--duration %s: give the seconds to run, a number above 0" % text)
    return int(s * 1000)


class _Signalled(BaseException):
    """SIGTERM or SIGHUP arrived (CPython): the run ends as with Ctrl-C, with its last line.
    (Not an Exception: nothing on the way may take it for a packet's or a command's error.)"""


_ending = []  # not empty once the run is ending: a stop signal then changes nothing


def _on_signal(signum, frame):
    if _ending:
        return
    _ending.append(signum)
    import signal

    if signum == signal.SIGINT:
        raise KeyboardInterrupt
    raise _Signalled()


def _quiet():
    """From here on SIGTERM, SIGHUP and SIGINT change nothing, to the process's end: the run is
    ending, and a second signal (a hang-up and a supervisor's stop together, or one sent twice)
    cut its last lines short: a traceback and exit status 1, or the process killed before or
    while it wrote its final status (SIG_IGN: the interpreter's exit leaves it, where it puts
    back the default action of a handler of its own)."""
    _ending.append(0)
    try:
        import signal

        for n in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
            signal.signal(n, signal.SIG_IGN)
    except (ImportError, AttributeError, ValueError):
        pass


def _catch_signals():
    """SIGTERM and SIGHUP end the run with its `stopped` line (reason "signal"), and Ctrl-C
    (SIGINT, unless it is ignored: a shell's background job) with reason "interrupt", where the
    interpreter has a signal module and this is the main thread (MicroPython's unix port has
    none: there they end the process at once). -> what to restore after."""
    del _ending[:]
    try:
        import signal

        old = []
        for n in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
            h = signal.getsignal(n)
            if n != signal.SIGINT or h is signal.default_int_handler:
                signal.signal(n, _on_signal)
            old.append((n, h))
        return old
    except (ImportError, AttributeError, ValueError):
        return []


def main(argv, out=None):
    """Run an endpoint process; returns the exit status. A bad file raises FileError
    (the CLI turns it into `mast: ...`); main_cli prints it."""
    path = None
    duration = None
    use_stdin = True
    records = None
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--duration" and i + 1 < len(argv):
            duration = _duration_ms(argv[i + 1])
            i += 1
        elif a == "--no-stdin":
            use_stdin = False
        elif a == "--stream-records":
            records = True
        elif path is None and a[:2] != "--":
            path = a
        else:
            raise ValueError(USAGE)
        i += 1
    if path is None:
        raise ValueError(USAGE)
    cfg = load(path)
    if records:
        cfg["stream_records"] = True
    p = Process(cfg, out or _write_line)
    before = _catch_signals()
    why = None
    try:
        try:
            p.start()
            if use_stdin:
                p.watch_stdin()
            why = p.run(duration)
            _ending.append(0)  # (a signal from here on: the stopped line says why it ended)
        except KeyboardInterrupt:
            why = "interrupt"
        except _Signalled:
            why = "signal"
        if before:
            _quiet()
        status = p.rt.status()
        if p.stream is not None:
            status["stream"] = p.stream.status()
        p.rt.shutdown()
        p.emit({"event": "stopped", "reason": why, "status": status})
    finally:
        # (a run a signal ended keeps them quiet: the process ends, and the caller's last
        # lines, `mast endpoint --json`'s document, are written whatever comes now)
        if before and why not in ("signal", "interrupt"):
            import signal

            for n, h in before:
                signal.signal(n, h)
    return 0


def main_cli():
    try:
        return main(sys.argv[1:])
    except FileError as e:
        sys.stderr.write("mast: endpoint file: %s; see docs/RUNTIME.md\n" % e)
    except ValueError as e:
        sys.stderr.write("mast: %s; see docs/RUNTIME.md\n" % e)
    except OSError as e:
        sys.stderr.write("mast: %s; check the addresses in the endpoint file\n" % (e,))
    return 1


if __name__ == "__main__":
    sys.exit(main_cli())
