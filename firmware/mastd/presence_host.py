"""A presence server (PRES/1) on a UDP socket: the sans-IO presence.server.Server, its timers
and its state file, for any poll loop. mastd hosts one with --presence-config; `mast presence`
runs one on its own (host-tools/mast_tools/presence_server.py). CPython, standard library only.

    host = PresenceHost(load_config("presence.json"), parse_listen("0.0.0.0:6279"), emit=print)
    host.open()
    loop: poll(host.sock, host.wait_ms()) -> host.on_readable(); host.tick()
    host.close()

The state file (config "state") keeps each name's highest accepted counter, so that requests
captured before a restart stay refused after it (docs/PROTOCOL.md, Presence, P.6). It is written
atomically (temp file + rename) at most every STATE_EVERY_MS and at close.
"""

import json
import os
import socket
import time

from mast.addr import canonical
from presence.conf import PresenceConfigError, check
from presence.report import server_status
from presence.server import Server

DEFAULT_LISTEN = ("0.0.0.0", 6279)
STATE_EVERY_MS = 5000
_READS = 64  # datagrams read per wake, so that a flood cannot starve the rest of the loop
_MAX_DATAGRAM = 2048


def load_config(path):
    """The checked configuration of a presence server; PresenceConfigError naming the key
    (the key is "file" when the file cannot be read or is not JSON)."""
    try:
        with open(path) as f:
            text = f.read()
    except OSError as e:
        raise PresenceConfigError("file", "cannot read %s (%s)" % (path, e.strerror or e))
    try:
        doc = json.loads(text)
    except ValueError as e:
        raise PresenceConfigError("file", "%s is not valid JSON (%s)" % (path, e))
    return check(doc)


def parse_listen(text):
    """"0.0.0.0:6279", "[::]:6279", "192.0.2.1" (port 6279) -> (ip, port); ValueError.
    Port 0 takes any free port (the "started" event tells which)."""
    if text.startswith("["):
        host, _, port = text[1:].partition("]")
        port = port[1:] if port.startswith(":") else ""
    elif text.count(":") == 1:
        host, port = text.split(":")
    else:
        host, port = text, ""
    try:
        host = canonical(host)
        port = int(port) if port else DEFAULT_LISTEN[1]
    except ValueError:
        raise ValueError("expected ADDR:PORT, such as 0.0.0.0:6279 or [::]:6279, not %r" % text)
    if not 0 <= port < 65536:
        raise ValueError("port must be 1..65535 (or 0: any free one), not %d" % port)
    return host, port


def wall_ms():
    return int(time.time() * 1000)


def _unmap(addr):
    """A v4 peer seen on a dual-stack socket (::ffff:a.b.c.d) is a.b.c.d to the protocol."""
    if addr[0].startswith("::ffff:") and "." in addr[0]:
        return addr[0][7:], addr[1]
    return addr


class PresenceHost:
    def __init__(self, conf, listen=DEFAULT_LISTEN, emit=None, clock=None):
        self.conf = conf
        self.listen = listen
        self.emit = emit or (lambda d: None)
        self.clock = clock or (lambda: int(time.monotonic() * 1000))
        self.server = Server(conf["names"], notify_base=wall_ms(), max_ttl=conf["max_ttl"],
                             rate=conf["rate"], burst=conf["burst"], floors=self._load_state())
        self.sock = None
        self.v6 = ":" in listen[0]
        self.counters = {}
        self._saved = dict(self.server.floors())
        self._save_due = None

    def count(self, reason):
        self.counters[reason] = self.counters.get(reason, 0) + 1

    # ---- socket ---------------------------------------------------------------------

    def open(self):
        """Bind the socket (OSError if the address is taken or not ours)."""
        fam = socket.AF_INET6 if self.v6 else socket.AF_INET
        s = socket.socket(fam, socket.SOCK_DGRAM)
        try:
            if self.v6:
                s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)  # v4 peers too
            s.bind(self.listen)
        except OSError:
            s.close()
            raise
        s.setblocking(False)
        self.sock = s
        if self.listen[1] == 0:
            self.listen = (self.listen[0], s.getsockname()[1])
        return s

    def on_readable(self, obj=None, flags=None):
        now = self.clock()
        for _ in range(_READS):
            try:
                data, sa = self.sock.recvfrom(_MAX_DATAGRAM)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:  # an ICMP error for an earlier answer: the socket lives on
                self.count("rx_error")
                break
            try:
                src = _unmap((canonical(sa[0].split("%")[0]), sa[1]))
            except ValueError:
                self.count("rx_bad_source")
                continue
            self.server.receive(src, data, now)
        self.flush()

    def _send(self, dst, data):
        if self.v6 and ":" not in dst[0]:
            dst = ("::ffff:" + dst[0], dst[1])
        try:
            self.sock.sendto(data, dst)
        except OSError:
            self.count("tx_error")

    def flush(self):
        for dst, data in self.server.datagrams_to_send():
            self._send(dst, data)
        e = self.server.next_event()
        while e is not None:
            self.emit(e.as_dict())
            e = self.server.next_event()
        if self._save_due is None and self.conf["state"] and self.server.floors() != self._saved:
            self._save_due = self.clock() + STATE_EVERY_MS

    # ---- timers -----------------------------------------------------------------------

    def next_timer(self):
        t = self.server.next_timer()
        if self._save_due is not None and (t is None or self._save_due < t):
            t = self._save_due
        return t

    def wait_ms(self, cap=1000):
        """How long a loop may sleep before tick() has work (at most cap)."""
        t = self.next_timer()
        if t is None:
            return cap
        return max(0, min(cap, t - self.clock()))

    def tick(self):
        now = self.clock()
        t = self.server.next_timer()
        if t is not None and t <= now:
            self.server.handle_timer(now)
        self.flush()
        if self._save_due is not None and self._save_due <= now:
            self.save_state()

    # ---- state file -------------------------------------------------------------------

    def _load_state(self):
        path = self.conf["state"]
        if not path or not os.path.exists(path):
            return None
        try:
            with open(path) as f:
                doc = json.load(f)
            return dict((k, int(v)) for k, v in doc.get("floors", {}).items())
        except (OSError, ValueError, AttributeError, TypeError) as e:
            raise PresenceConfigError("state", "cannot read %s (%s); fix or remove it" % (path, e))

    def save_state(self):
        self._save_due = None
        path = self.conf["state"]
        if not path:
            return
        floors = self.server.floors()
        tmp = path + ".tmp"
        try:
            with open(tmp, "w") as f:
                json.dump({"floors": floors}, f, sort_keys=True)
                f.flush()
                os.fsync(f.fileno())
            os.rename(tmp, path)
            self._saved = dict(floors)
        except OSError:
            self.count("state_write_error")

    # ---- status and end ---------------------------------------------------------------

    def status(self):
        s = server_status(self.server, self.clock())
        s["listen"] = ("[%s]:%d" if self.v6 else "%s:%d") % self.listen
        s["host_counters"] = dict(self.counters)
        return s

    def close(self):
        if self.conf["state"] and self.server.floors() != self._saved:
            self.save_state()
        if self.sock is not None:
            self.sock.close()
            self.sock = None
