"""A presence server (PRES/1) on a UDP socket: the sans-IO presence.server.Server, its timers
and its state file, for any poll loop. mastd hosts one with --presence-config; `mast presence`
runs one on its own (host-tools/mast_tools/presence_server.py). CPython, standard library only.

    host = PresenceHost(load_config("presence.json"), parse_listen("0.0.0.0:6279"), emit=print)
    host.open()
    loop: poll(host.sock, host.wait_ms()) -> host.on_readable(); host.tick()
    host.close()

The state file (config "state") keeps each name's highest accepted counter, so that requests
captured before a restart stay refused after it (docs/PROTOCOL.md, Presence, P.6), and a ceiling
for the server's NOTIFY counter. It is written atomically (temp file, fsync, rename, fsync of the
folder) *before* the answers of a batch leave: every request that was answered has its counter on
disk, so a crash at any moment (SIGKILL, power cut) cannot bring back a request that was answered
(a withdrawn registration, say). One write for each batch of datagrams read at one wake (up to
_READS) in which some request was accepted; unauthenticated input never causes one. NOTIFY
counters are reserved ahead in blocks of NOTIFY_BLOCK, one write a block: after a restart the
server starts above every NOTIFY counter it ever sent and every floor a SUBSCRIBE-ACK handed out
(the counter's start, its wall clock then), even with a clock that stepped back.
"""

import errno
import json
import os
import socket
import time

try:
    import fcntl
except ImportError:  # (not Linux: no lock, as before)
    fcntl = None

from mast.addr import canonical
from presence.conf import PresenceConfigError, check
from presence.report import server_status
from presence.server import Server

DEFAULT_LISTEN = ("0.0.0.0", 6279)
NOTIFY_BLOCK = 1000  # NOTIFY counters reserved on disk at a time
_READS = 64  # datagrams read per wake, so that a flood cannot starve the rest of the loop
_MAX_DATAGRAM = 2048


def load_config(path):
    """The checked configuration of a presence server; PresenceConfigError naming the key
    (the key is "file" when the file cannot be read or is not JSON)."""
    try:
        with open(path, "rb") as f:
            data = f.read()
            mode = os.fstat(f.fileno()).st_mode
    except OSError as e:
        raise PresenceConfigError("file", "cannot read %s (%s)" % (path, e.strerror or e))
    try:
        text = data.decode("utf-8")
    except UnicodeError:  # (the decoder's message quotes a byte of a file that holds keys)
        raise PresenceConfigError("file", "%s is not valid JSON (not UTF-8 text)" % path)
    from .settings import DuplicateKey, loads_json

    try:
        doc = loads_json(text)
    except DuplicateKey as e:  # (a name given twice: its first key was silently dropped)
        raise PresenceConfigError("file", "%s: %s" % (path, e))
    except ValueError as e:
        raise PresenceConfigError("file", "%s is not valid JSON (%s)" % (path, e))
    except RecursionError:  # (mast presence and mastd --presence-config: a traceback, before)
        raise PresenceConfigError("file", "%s nests objects and lists too deep for a presence "
                                  "configuration" % path)
    from .settings import readable_keys_warning, shown_key

    try:
        conf = check(doc)
    except PresenceConfigError as e:  # (a key pasted where a name goes: not repeated)
        raise PresenceConfigError(shown_key(e.key), str(e)[len(e.key) + 2:])
    w = readable_keys_warning(path, mode)  # (it holds a key for each name)
    conf["warnings"] = [w] if w else []
    return conf


def parse_listen(text):
    """"0.0.0.0:6279", "[::]:6279", "192.0.2.1" (port 6279) -> (ip, port); ValueError.
    Port 0 takes any free port (the "started" event tells which)."""
    if text.startswith("["):
        host, sep, port = text[1:].partition("]")
        if not sep or ":" not in host or port[:1] not in ("", ":") or port == ":":
            host = ""  # refused below: "[::1", "[192.0.2.1]", "[::1]7000", "[::1]:" (not port 6279)
        port = port[1:]
    elif text.count(":") == 1:
        host, port = text.split(":")
        if not port:
            host = ""  # "0.0.0.0:": a port left out by mistake, refused (not port 6279)
    else:
        host, port = text, ""
    try:
        host = canonical(host)
        if port.strip("0123456789"):  # (int() takes "+7000", " 7000" and "7_000" too)
            raise ValueError
        port = int(port) if port else DEFAULT_LISTEN[1]
    except ValueError:
        raise ValueError("expected ADDR:PORT, such as 0.0.0.0:6279 or [::]:6279, not %r" % text)
    if not 0 <= port < 65536:
        raise ValueError("port must be 1..65535 (or 0: any free one), not %d" % port)
    return host, port


class StateInUse(OSError):
    """Another presence server holds the state file (its lock)."""


def wall_ms():
    return int(time.time() * 1000)


def _fsync_dir(path):
    """Make a rename in path durable (a power cut then finds the new file, not the old)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


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
        floors, notify = self._load_state()
        base = max(wall_ms(), notify)  # above every NOTIFY counter sent before this start
        self.server = Server(conf["names"], notify_base=base, max_ttl=conf["max_ttl"],
                             rate=conf["rate"], burst=conf["burst"], floors=floors)
        self.sock = None
        self.v6 = ":" in listen[0]
        self.counters = {}
        self._saved = dict(self.server.floors())  # what the state file holds
        self._notify_ok = base  # NOTIFY counters up to this need no write (see the top)
        self._notify_saved = notify
        self._write_failing = False  # the last state write failed (said once, until one works)
        self._lock_fd = None  # the state file's lock, held from open() to close()

    def count(self, reason):
        self.counters[reason] = self.counters.get(reason, 0) + 1

    # ---- socket ---------------------------------------------------------------------

    def open(self):
        """Take the state file (OSError if another server has it), then bind the socket
        (OSError if the address is taken or not ours)."""
        self._lock_state()
        fam = socket.AF_INET6 if self.v6 else socket.AF_INET
        s = socket.socket(fam, socket.SOCK_DGRAM)
        try:
            if self.v6:
                s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)  # v4 peers too
            s.bind(self.listen)
        except OSError as e:
            s.close()
            self._unlock_state()
            where = "[%s]:%d" % self.listen[:2] if self.v6 else "%s:%d" % self.listen[:2]
            raise OSError(e.errno, "presence: cannot listen on %s (%s); give --presence-listen "
                                   "another ADDR:PORT" % (where, e.strerror))
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
        """Persist what the server accepted, then send its answers and emit its events."""
        if self.conf["state"] and (self.server.notify_ctr > self._notify_ok
                                   or self.server.floors() != self._saved):
            self.save_state()  # before any answer leaves (see the top of this file)
        for dst, data in self.server.datagrams_to_send():
            self._send(dst, data)
        e = self.server.next_event()
        while e is not None:
            self.emit(e.as_dict())
            e = self.server.next_event()

    # ---- timers -----------------------------------------------------------------------

    def next_timer(self):
        return self.server.next_timer()

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

    # ---- state file -------------------------------------------------------------------

    def _lock_state(self):
        """Hold STATE.lock (an flock) while this server serves: a second server given the same
        state file (`mast presence` twice on two addresses, or beside mastd's) is refused. Both
        wrote it before, each its own counters over the other's, so that a request the one had
        answered was taken again after its restart (and their STATE.tmp interleaved). The state
        is read again once the lock is held: a server that ended since __init__ wrote it last."""
        path = self.conf["state"]
        if not path or fcntl is None or self._lock_fd is not None:
            return
        lock = path + ".lock"
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o600)
        except OSError:  # (a folder not there or not writable: the state writes fail, and say so)
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            try:
                pid = os.read(fd, 32).decode("ascii", "replace").strip() or "?"
            except OSError:
                pid = "?"
            os.close(fd)
            if e.errno not in (errno.EAGAIN, errno.EACCES):
                return
            raise StateInUse(errno.EBUSY, "presence: the state file %s is another presence "
                             "server's (pid %s): each server needs a state file of its own"
                             % (path, pid))
        try:
            os.ftruncate(fd, 0)
            os.write(fd, b"%d\n" % os.getpid())  # (who holds it, for the message above)
        except OSError:
            pass
        self._lock_fd = fd
        try:
            floors, notify = self._load_state()
        except ValueError:  # (PresenceConfigError: a bad file, naming it)
            self._unlock_state()
            raise
        for name, counter in (floors or {}).items():
            n = self.server.names.get(name)
            if n is not None and counter > n.last:
                n.last = counter
        if notify > self._notify_saved:
            self._notify_saved = notify
            self._notify_ok = max(self._notify_ok, notify)
            self.server.notify_ctr = max(self.server.notify_ctr, notify)
        self._saved = dict(self.server.floors())

    def _unlock_state(self):
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # (the lock goes with it; the file stays, for the next one)
            self._lock_fd = None

    def _load_state(self):
        """-> ({name: counter} or None, NOTIFY ceiling or 0) from the state file."""
        path = self.conf["state"]
        if not path or not os.path.exists(path):
            return None, 0
        try:
            with open(path) as f:
                doc = json.load(f)
            floors = dict((k, int(v)) for k, v in doc.get("floors", {}).items())
            notify = int(doc.get("notify", 0))
            if not all(0 <= n < 2 ** 64 for n in list(floors.values()) + [notify]):
                raise ValueError("a counter outside 0 to 2^64 - 1")
            return floors, notify
        except (OSError, ValueError, AttributeError, TypeError, OverflowError, RecursionError) as e:
            raise PresenceConfigError("state", "cannot read %s (%s); fix or remove it" % (path, e))

    def save_state(self):
        """Write the state file atomically and durably; on failure count state_write_error
        (the answers still go out: a full disk must not stop the service)."""
        path = self.conf["state"]
        if not path:
            return
        floors = self.server.floors()
        notify = self._notify_saved
        if self.server.notify_ctr > notify:  # (also the start's: a SUBSCRIBE-ACK hands it out)
            notify = self.server.notify_ctr + NOTIFY_BLOCK
        tmp = path + ".tmp"
        try:
            # (0600 whatever the umask: a floor that others could lower would let an old
            # request through again)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
            with os.fdopen(fd, "w") as f:
                json.dump({"floors": floors, "notify": notify}, f, sort_keys=True)
                f.flush()
                os.fsync(f.fileno())
            os.rename(tmp, path)
            _fsync_dir(os.path.dirname(os.path.abspath(path)))
        except OSError as e:
            self.count("state_write_error")
            try:  # (a full disk: the torn .tmp would stay beside the state file)
                os.unlink(tmp)
            except OSError:
                pass
            if not self._write_failing:  # said once, not at every batch (only a count said it)
                self._write_failing = True
                self.emit({"event": "state_write_failed", "file": path, "error": e.strerror or str(e),
                           "note": "counters kept in memory only until a write works"})
            return
        self._write_failing = False
        self.count("state_writes")
        self._saved = floors
        self._notify_saved = notify
        self._notify_ok = max(self._notify_ok, notify)

    # ---- status and end ---------------------------------------------------------------

    def status(self):
        s = server_status(self.server, self.clock())
        s["listen"] = ("[%s]:%d" if self.v6 else "%s:%d") % self.listen
        s["host_counters"] = dict(self.counters)
        return s

    def close(self):
        if self.conf["state"] and self.server.floors() != self._saved:
            self.save_state()  # only if a failed write left something unsaved
        if self.sock is not None:
            self.sock.close()
            self.sock = None
        self._unlock_state()
