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

import json
import os
import select
import socket
import stat
import time

DEFAULT_PATH = "/var/run/mast/mastd.sock"
_LINE_MAX = 4096
_CLIENT_TIMEOUT_S = 0.5  # a client sends its line at once; one silent this long is dropped
_CLIENTS_MAX = 16  # open connections at once; one more drops the oldest
_SEND_S = 0.1  # a reply larger than the socket's buffer waits this long at most for its reader
_SO_SNDBUFFORCE = 32  # Linux (the socket module may lack the name)


class ControlServer:
    """Never blocks the loop it runs in (the data path): every connection is non-blocking, its
    request gathered as it comes, and answered once its line is complete. The loop calls
    on_readable() when the listening socket or a connection is readable (watch(conn, callback)
    registers a connection, unwatch(conn) forgets it); without watch, each on_readable() call
    looks at every connection."""

    def __init__(self, path, handler, watch=None, unwatch=None):
        """handler(request dict) -> reply dict (without "ok": it is added)."""
        self.path = path
        self.handler = handler
        self.watch, self.unwatch = watch, unwatch
        self.clients = {}  # connection -> [bytes so far, deadline (monotonic s)]
        d = os.path.dirname(path)
        if d:
            os.makedirs(d, exist_ok=True)
        if os.path.lexists(path):
            if not stat.S_ISSOCK(os.lstat(path).st_mode):  # never remove what is not ours
                raise OSError("%s exists and is not a socket: give --control another path" % path)
            probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                probe.connect(path)
                raise OSError("another mastd answers on %s" % path)
            except (ConnectionRefusedError, FileNotFoundError):
                os.unlink(path)  # a stale socket from a mastd that died
            finally:
                probe.close()
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)
        try:
            s.bind(path)
        finally:
            os.umask(old)
        s.listen(8)
        s.setblocking(False)
        self.sock = s

    def on_readable(self, obj=None, flags=0):
        now = time.monotonic()
        for _ in range(8):
            try:
                conn, _ = self.sock.accept()
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                break
            conn.setblocking(False)
            if len(self.clients) >= _CLIENTS_MAX:
                self._drop(min(self.clients, key=lambda c: self.clients[c][1]))
            self.clients[conn] = [b"", now + _CLIENT_TIMEOUT_S]
            if self.watch is not None:
                self.watch(conn, self.on_readable)
        for conn in list(self.clients):
            self._read(conn, now)

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
        if st[0]:
            data = json.dumps(self._reply(st[0])).encode() + b"\n"
            # (its time from now: a status of thousands of associations takes ~0.1 s to build,
            # and with the time counted from the request it was cut short, every time)
            self._send(conn, data, time.monotonic() + _SEND_S)
        self._drop(conn)

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

    def _send(self, conn, data, deadline):
        """All of data, or as much as a client that reads leaves room for by the deadline.
        As root the socket's send buffer is first made large enough for all of it
        (SO_SNDBUFFORCE), so the loop hands a large reply (a status of thousands of
        associations: megabytes) to the kernel at once and does not wait for its reader."""
        if len(data) > 65536:
            try:
                conn.setsockopt(socket.SOL_SOCKET, _SO_SNDBUFFORCE, len(data) + 65536)
            except OSError:  # (not root: the reader has until the deadline)
                pass
        while data:
            try:
                n = conn.send(data)
            except (BlockingIOError, InterruptedError):
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                select.select([], [conn], [], left)
                continue
            except OSError:
                return
            data = data[n:]

    def _drop(self, conn):
        self.clients.pop(conn, None)
        if self.unwatch is not None:
            self.unwatch(conn)
        conn.close()

    def close(self):
        for conn in list(self.clients):
            self._drop(conn)
        self.sock.close()
        try:
            os.unlink(self.path)
        except OSError:
            pass


def request(path, req, timeout=5.0):
    """Send one request to mastd at path; its reply (a dict). OSError if nobody answers."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(path)
        s.sendall(json.dumps(req).encode() + b"\n")
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
