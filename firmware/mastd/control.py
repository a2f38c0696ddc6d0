"""mastd's control socket: a UNIX stream socket, one JSON request line in, one JSON line out.

    {"op": "status"}                                  -> {"ok": true, "status": {...}}
    {"op": "uplink", "name": "wan", "state": "down"}  -> {"ok": true, ...}
    {"op": "hotplug", "action": "ifup", "interface": "wan", "device": "eth1"}
    {"op": "reload"}                                  -> {"ok": false, "error": "mast.lte.cost: ..."}
    {"op": "peer_list"}                               -> {"ok": true, "peers": [{"name", "association", ...}]}
    {"op": "peer_add", "name": "b7.example", "peer": {"psk": "...", "allowed": [...]}}
    {"op": "peer_remove", "name": "b7.example"}

The socket is made mode 0600 (root only): it can take uplinks down. mastctl (ctl.py) is its
client; the OpenWrt hotplug script calls `mastctl hotplug ...`.
"""

import errno
import json
import os
import socket
import stat
import time

try:
    import resource  # (at start: once no descriptor is left, an import cannot open its file)
except ImportError:
    resource = None

DEFAULT_PATH = "/var/run/mast/mastd.sock"
_NO_SOCKET = ("cannot make the control socket %s (%s): run mastd as root, or give --control a "
              "path you may write")
_LINE_MAX = 4096
_CLIENT_TIMEOUT_S = 0.5  # a client sends its line at once; one silent this long is dropped
_CLIENTS_MAX = 16  # open connections at once; one more drops the oldest
_STALL_S = 2.0  # a reply its reader takes nothing of for this long is dropped
_TURN_S = 0.002  # the time one turn of the loop spends writing replies (the data path waits)
_OUT_MAX = 1 << 16  # bytes of a reply held ready to send at a time


_NO_FDS = (errno.EMFILE, errno.ENFILE)


def no_fds_message(e, what="it accepts no connection until some are freed"):
    """What a process out of file descriptors (EMFILE, ENFILE: e) tells, and what to do."""
    if getattr(e, "errno", None) == errno.ENFILE:
        return "this system has no file descriptor left (%s): %s" % (e.strerror or e, what)
    try:
        limit = " (its limit: %d)" % resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    except (AttributeError, OSError, ValueError):
        limit = ""
    return ("mastd has no file descriptor left%s: %s; raise its limit of open files (ulimit -n; "
            "procd: procd_set_param limits nofile=N; systemd: LimitNOFILE=N)" % (limit, what))


class Spare:
    """One file descriptor held back for the moment the process has none left. A connection
    waiting in a listening socket's queue keeps the socket readable, and accept() fails
    (EMFILE) without taking it off the queue: the loop woke again at once, for ever (measured:
    50 to 97 % of a CPU, and the client answered nothing). shed(sock) closes the spare, accepts the
    oldest waiting connection with it and returns it (or None); the caller says why and closes
    it, then take() holds a descriptor back again."""

    def __init__(self):
        self.fd = None
        self.take()

    def take(self):
        if self.fd is None:
            try:
                self.fd = os.open(os.devnull, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
            except OSError:
                pass  # (none left now either: the next take() tries again)

    def shed(self, sock):
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
        try:
            conn, _ = sock.accept()
        except OSError:
            return None
        return conn

    def close(self):
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


class Items:
    """A JSON array that the control server writes a few items at a time, between turns of
    the loop, so a reply about thousands of associations never holds up the data path:
    fn(x) for each x of seq, as x is when it is written."""

    def __init__(self, seq, fn):
        self.seq, self.fn = list(seq), fn


def pieces(obj):
    """obj (a dict that may hold Items, at any depth of dicts) as JSON text, in pieces: one
    for each item of an Items."""
    if isinstance(obj, Items):
        yield "["
        sep = ""
        for x in obj.seq:
            yield sep + _dumps(obj.fn(x))
            sep = ","
        yield "]"
    elif isinstance(obj, dict):
        sep = "{"
        for k, v in obj.items():
            yield sep + _dumps(k if isinstance(k, str) else str(k)) + ":"
            yield from pieces(v)
            sep = ","
        yield "{}" if sep == "{" else "}"
    else:
        yield _dumps(obj)


def _dumps(obj):
    return json.dumps(obj, separators=(",", ":"))


class ControlServer:
    """Never blocks the loop it runs in (the data path): every connection is non-blocking, its
    request gathered as it comes, and its reply written a piece at a time (Items), at most
    _TURN_S of each turn, and sent as its reader takes it. The loop calls on_readable() when
    the listening socket or a connection is readable (watch(conn, callback) registers a
    connection, unwatch(conn) forgets it), and again each turn while busy() says a reply is
    being written or sent; without watch, each on_readable() call looks at every connection."""

    def __init__(self, path, handler, watch=None, unwatch=None, log=None):
        """handler(request dict) -> reply dict (without "ok": it is added). log(message): where
        a lack of file descriptors is said (once, until a connection is accepted again)."""
        self.path = path
        self.handler = handler
        self.watch, self.unwatch = watch, unwatch
        self.log = log
        self.no_fds = 0  # connections refused for want of a file descriptor
        self._no_fds_said = False
        self.clients = {}  # connection -> [bytes so far, deadline (monotonic s)]
        self.replies = {}  # connection -> [pieces left (None: all written), bytes to send, deadline]
        d = os.path.dirname(path)
        try:
            if d:
                os.makedirs(d, exist_ok=True)
        except PermissionError as e:  # (else "[Errno 13] Permission denied: '/var/run/mast'")
            raise OSError(e.errno, _NO_SOCKET % (path, e.strerror))
        if os.path.lexists(path):
            if not stat.S_ISSOCK(os.lstat(path).st_mode):  # never remove what is not ours
                raise OSError("%s exists and is not a socket: give --control another path" % path)
            probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                probe.connect(path)
                raise OSError("another mastd answers on %s" % path)
            except (ConnectionRefusedError, FileNotFoundError):
                os.unlink(path)  # a stale socket from a mastd that died
            except PermissionError as e:  # (root's socket, 0600: connect names no path either)
                raise OSError(e.errno, _NO_SOCKET % (path, e.strerror))
            finally:
                probe.close()
        # bound under another name and renamed into place once it listens: a path that exists
        # is one that takes connections (bound at path itself, a mastctl started with mastd, as
        # the hotplug script's are at boot, could find it before listen(): "Connection refused")
        tmp = path + ".new"
        if os.path.lexists(tmp) and stat.S_ISSOCK(os.lstat(tmp).st_mode):
            os.unlink(tmp)  # (left by a mastd that died between the two)
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)
        try:
            s.bind(tmp)
            s.listen(8)
            os.rename(tmp, path)
        except OSError as e:
            s.close()
            if isinstance(e, PermissionError):  # (else only "Permission denied": bind names no path)
                raise OSError(e.errno, _NO_SOCKET % (path, e.strerror))
            raise
        finally:
            os.umask(old)
        s.setblocking(False)
        self.sock = s
        self.spare = Spare()

    def on_readable(self, obj=None, flags=0):
        now = time.monotonic()
        for _ in range(8):
            try:
                conn, _ = self.sock.accept()
            except (BlockingIOError, InterruptedError):
                break
            except OSError as e:
                if e.errno in _NO_FDS:
                    self._refuse(e)
                break
            self._no_fds_said = False
            conn.setblocking(False)
            if len(self.clients) + len(self.replies) >= _CLIENTS_MAX:
                self._drop(min(self.clients, key=lambda c: self.clients[c][1]) if self.clients
                           else next(iter(self.replies)))
            self.clients[conn] = [b"", now + _CLIENT_TIMEOUT_S]
            if self.watch is not None:
                self.watch(conn, self.on_readable)
        for conn in list(self.clients):
            if conn in self.clients:  # (a handler that polls, a reload's SHUT wait, may have
                self._read(conn, now)  # served it already: KeyError, and mastd ended)
        if self.replies:
            self._write()

    def _refuse(self, e):
        """No file descriptor left (e): the oldest waiting client is told so, with the spare."""
        self.no_fds += 1
        msg = no_fds_message(e)
        if not self._no_fds_said and self.log is not None:
            self.log("control socket: " + msg)
        self._no_fds_said = True
        conn = self.spare.shed(self.sock)
        if conn is not None:
            try:
                conn.setblocking(False)
                conn.send(_dumps({"ok": False, "error": msg}).encode() + b"\n")
            except OSError:
                pass
            conn.close()
        self.spare.take()

    def busy(self):
        """None when no reply is under way; "write" while one is being written (the loop
        should not sleep), "send" while one waits for its reader to take it."""
        if not self.replies:
            return None
        return "write" if any(r[0] is not None for r in self.replies.values()) else "send"

    def _read(self, conn, now):
        st = self.clients[conn]
        try:
            chunk = conn.recv(_LINE_MAX)
        except (BlockingIOError, InterruptedError):
            if now > st[1]:
                self._drop(conn)  # silent too long
            return
        except OSError:
            chunk = b""
        st[0] += chunk
        if chunk and b"\n" not in st[0] and len(st[0]) < _LINE_MAX:
            if now > st[1]:
                self._drop(conn)  # a request that trickles in
            return
        del self.clients[conn]
        if self.unwatch is not None:
            self.unwatch(conn)
        if not st[0]:
            conn.close()
            return
        reply = self._reply(st[0])
        # (its reader's time counts from when it is written: a status of thousands of
        # associations takes ~0.1 s to build, and with the time counted from the request it
        # was cut short, every time)
        self.replies[conn] = [pieces(reply), b"", None]

    def _reply(self, data):
        try:
            req = json.loads(data.split(b"\n", 1)[0].decode("utf-8"))
            if not isinstance(req, dict):
                raise ValueError("not an object")
        except (ValueError, RecursionError):  # (RecursionError: JSON nested too deep)
            return {"ok": False, "error": "bad request: one JSON object per line"}
        try:
            reply = self.handler(req)
            reply.setdefault("ok", True)
        except (ValueError, KeyError, TypeError, OSError, RecursionError) as e:
            reply = {"ok": False, "error": str(e)}
        return reply

    def _write(self):
        """Write and send replies for at most _TURN_S; a reply whose reader takes nothing of
        it for _STALL_S is dropped (mastctl says it was cut short)."""
        end = time.monotonic() + _TURN_S
        for conn in list(self.replies):
            r = self.replies.get(conn)
            if r is None:  # (dropped meanwhile)
                continue
            try:
                if r[0] is not None and len(r[1]) < _OUT_MAX:
                    out = [r[1]]
                    n = len(r[1])
                    for piece in r[0]:
                        out.append(piece.encode())
                        n += len(out[-1])
                        if n >= _OUT_MAX or time.monotonic() > end:
                            break
                    else:
                        out.append(b"\n")
                        r[0] = None
                    r[1] = b"".join(out)
            except (ValueError, KeyError, TypeError, AttributeError, RecursionError):
                self._drop(conn)  # (the state it described went away under it: the reader retries)
                continue
            if self._send(conn, r):
                self._drop(conn)
            if time.monotonic() > end:
                break

    def _send(self, conn, r):
        """Send what r holds ready; True when the connection is done with (all sent, its
        reader gone, or one that took nothing for _STALL_S)."""
        now = time.monotonic()
        try:
            n = conn.send(r[1]) if r[1] else 0
        except (BlockingIOError, InterruptedError):
            n = 0
        except OSError:
            return True
        if n:
            r[1] = r[1][n:]
            r[2] = None
        elif r[1]:
            if r[2] is None:
                r[2] = now + _STALL_S
            elif now > r[2]:
                return True
        return r[0] is None and not r[1]

    def _drop(self, conn):
        if self.clients.pop(conn, None) is not None and self.unwatch is not None:
            self.unwatch(conn)
        self.replies.pop(conn, None)
        conn.close()

    def close(self):
        for conn in list(self.clients) + list(self.replies):
            self._drop(conn)
        self.sock.close()
        self.spare.close()
        try:
            os.unlink(self.path)
        except OSError:
            pass


_pause = time.sleep  # between tries to connect (a test's hook)


def _connect(path, timeout):
    """A socket connected to path. A full queue of connections (mastd busy: a reload's SHUTs,
    many clients at once, the hotplug script's mastctl for each interface) refuses a Unix socket
    at once (EAGAIN), where a TCP connect would wait: tried again until timeout (before, mastctl
    said "Resource temporarily unavailable; is it running?" and the hotplug event was lost)."""
    end = time.monotonic() + timeout
    while True:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        try:
            s.connect(path)
            return s
        except BlockingIOError:
            s.close()
            if time.monotonic() >= end:
                raise QueueFull("mastd at %s took no connection for %g s: its queue of connections "
                                "is full (it is busy, or hung); try again, or see its log" % (path, timeout))
        except BaseException:
            s.close()
            raise
        _pause(0.02)


def request(path, req, timeout=5.0):
    """Send one request to mastd at path; its reply (a dict). OSError if nobody answers."""
    s = _connect(path, timeout)
    try:
        try:
            s.sendall(json.dumps(req).encode() + b"\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # (it answered before reading: out of file descriptors; that answer follows)
        buf = b""
        while not buf.endswith(b"\n"):
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
    finally:
        s.close()
    if buf and not buf.endswith(b"\n"):
        raise ReplyCut("mastd at %s cut its reply short after %d bytes (it answers a reader that "
                       "keeps up); try again" % (path, len(buf)))
    try:
        return json.loads(buf.decode("utf-8"))
    except ValueError:
        raise OSError("mastd at %s sent no valid reply" % path)


class ReplyCut(OSError):
    """mastd answered, but not all of it reached us."""


class QueueFull(OSError):
    """mastd's control socket took no connection in time: it runs, but is busy or hung."""
