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
import socket

DEFAULT_PATH = "/var/run/mast/mastd.sock"
_LINE_MAX = 4096
_CLIENT_TIMEOUT_S = 0.5  # a client sends its line at once; a silent one is dropped after this


class ControlServer:
    def __init__(self, path, handler):
        """handler(request dict) -> reply dict (without "ok": it is added)."""
        self.path = path
        self.handler = handler
        d = os.path.dirname(path)
        if d:
            os.makedirs(d, exist_ok=True)
        if os.path.exists(path):
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

    def on_readable(self, obj, flags):
        for _ in range(8):
            try:
                conn, _ = self.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            try:
                conn.settimeout(_CLIENT_TIMEOUT_S)
                self._serve(conn)
            except OSError:
                pass
            finally:
                conn.close()

    def _serve(self, conn):
        buf = b""
        while b"\n" not in buf and len(buf) < _LINE_MAX:
            chunk = conn.recv(_LINE_MAX)
            if not chunk:
                break
            buf += chunk
        try:
            req = json.loads(buf.split(b"\n", 1)[0].decode("utf-8"))
            if not isinstance(req, dict):
                raise ValueError("not an object")
        except ValueError:
            reply = {"ok": False, "error": "bad request: one JSON object per line"}
        else:
            try:
                reply = self.handler(req)
                reply.setdefault("ok", True)
            except (ValueError, KeyError, TypeError, OSError) as e:
                reply = {"ok": False, "error": str(e)}
        conn.sendall(json.dumps(reply).encode() + b"\n")

    def close(self):
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
    try:
        return json.loads(buf.decode("utf-8"))
    except ValueError:
        raise OSError("mastd at %s sent no valid reply" % path)
