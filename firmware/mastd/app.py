"""A peer's application socket: how a local program sends datagrams to one peer and receives
the peer's, through mastd, without any other local user being able to do either.

It is a Unix SOCK_SEQPACKET socket (datagrams with boundaries, over a connection) at the peer's
`app_socket` path. Two checks stand between a local user and the peer:

1. The file: owned by app_user (default root), group app_group (default root's), mode app_mode
   (0600, or 0660 with a group). Connecting to a Unix socket needs write permission on it, so
   the kernel refuses everyone else (EACCES) before mastd sees anything.
2. The credentials: on every connection mastd reads the peer process's uid and gids
   (SO_PEERCRED, and its supplementary groups from /proc/<pid>/status) and closes it unless
   the uid is root or app_user, or the process is in app_group. So a socket file whose mode
   someone widened by hand (chmod 0666) still lets nobody else in: refused and counted
   (`app_refused`).

One program at a time: a new accepted connection replaces the old one (the app restarted).
While no app is connected the peer's datagrams are dropped and counted (`rx_data_no_app`):
unlike a UDP port, there is nothing another user could bind to receive them. A datagram the
app does not read in time (its receive queue full) is dropped and counted (`app_tx_dropped`),
never waited for.
"""

import errno
import os
import socket
import stat
import struct

from .control import no_fds_message

_SO_PEERCRED = getattr(socket, "SO_PEERCRED", 17)  # Linux
_READS = 64  # datagrams taken from the app per wake
_MAX = 65535


def process_groups(pid):
    """The supplementary group ids of process pid (from /proc); empty if it is gone."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("Groups:"):
                    return set(int(g) for g in line.split()[1:])
    except (OSError, ValueError):
        pass
    return set()


def peer_credentials(conn):
    """(pid, uid, gid) of the process at the other end of a Unix socket connection."""
    return struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, _SO_PEERCRED, 12))


class AppSocket:
    """The listening socket of one peer's app, and the app's connection once it has one.

    rt: the runtime (add_reader / remove_reader); send(payload) -> True if the core took it,
    False if there is no association (raises ValueError for a payload too big); count(reason)
    counts on the agent."""

    def __init__(self, peer, conf, rt, send, count, spare=None):
        self.peer = peer
        self.path = conf["app_socket"]
        self.uid = conf.get("_uid", 0)
        self.gid = conf.get("_gid")
        self.mode = int(conf["app_mode"], 8)
        self.conf = conf
        self.rt = rt
        self.send = send
        self.count = count
        self.spare = spare  # control.Spare: a descriptor for when there is none left
        self.sock = None
        self.key = None
        self.conn = None
        self.conn_key = None
        self.app = None  # (pid, uid, gid) of the connected app

    # ---- setup -------------------------------------------------------------------------------

    def open(self):
        """Make the socket file (replacing a stale socket, never another kind of file), owned
        and moded as configured. OSError with the path in the message."""
        d = os.path.dirname(self.path)
        try:
            if d and not os.path.isdir(d):
                os.makedirs(d, 0o755)
            try:
                st = os.lstat(self.path)
            except FileNotFoundError:
                pass
            else:
                if not stat.S_ISSOCK(st.st_mode):
                    raise OSError("%s exists and is not a socket; remove it or choose another "
                                  "app_socket" % self.path)
                os.unlink(self.path)  # a socket left by a mastd that died
            s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            old = os.umask(0o177)  # nobody but root can reach it before chown/chmod below
            try:
                s.bind(self.path)
            finally:
                os.umask(old)
            os.chown(self.path, self.uid, self.gid if self.gid is not None else 0)
            os.chmod(self.path, self.mode)
            s.listen(4)
            s.setblocking(False)
        except OSError as e:
            if isinstance(e.args[0], str):
                raise
            hint = ""
            if e.errno in (errno.EMFILE, errno.ENFILE):  # (a peer's app socket takes two)
                hint = "; " + no_fds_message(e, "this app socket is not made")
            if e.errno == errno.EPERM:  # chown: mastd is not root
                hint = "; only root may give it to app_user %s: run mastd as root" % self.conf.get(
                    "app_user", "root")
            raise OSError(e.errno, "peer %s: app socket %s: %s%s" % (self.peer, self.path, e.strerror, hint))
        self.sock = s
        self.key = self.rt.add_reader(s, self._on_accept)

    def close(self):
        self._drop_conn()
        if self.sock is not None:
            self.rt.remove_reader(self.sock, self.key)
            self.sock.close()
            self.sock = None
            try:
                if stat.S_ISSOCK(os.lstat(self.path).st_mode):
                    os.unlink(self.path)
            except OSError:
                pass

    def allowed(self, pid, uid, gid):
        """May the process (pid, uid, gid) use this peer's app socket?"""
        if uid == 0 or uid == self.uid:
            return True
        if self.gid is None:
            return False
        return gid == self.gid or self.gid in process_groups(pid)

    def status(self):
        return {"socket": self.path, "user": self.conf.get("app_user", "root"),
                "group": self.conf.get("app_group"), "mode": self.conf["app_mode"],
                "connected": self.app is not None,
                "app_pid": self.app[0] if self.app else None,
                "app_uid": self.app[1] if self.app else None}

    # ---- connections -------------------------------------------------------------------------

    def _on_accept(self, obj, flags):
        for _ in range(4):
            try:
                conn, _ = self.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:
                self.count("app_accept_error")
                if e.errno in (errno.EMFILE, errno.ENFILE) and self.spare is not None:
                    conn = self.spare.shed(self.sock)  # (else it waits, and wakes the loop for ever)
                    if conn is not None:
                        conn.close()  # the app sees its connection closed: it may try again
                        self.count("app_no_fd")
                    self.spare.take()
                return
            try:
                cred = peer_credentials(conn)
            except OSError:
                cred = None
            if cred is None or not self.allowed(*cred):
                self.count("app_refused")  # another local user: closed unread
                conn.close()
                continue
            self._drop_conn()
            conn.setblocking(False)
            self.conn = conn
            self.app = cred
            self.conn_key = self.rt.add_reader(conn, self._on_app)
            self.count("app_connected")

    def _drop_conn(self):
        if self.conn is not None:
            self.rt.remove_reader(self.conn, self.conn_key)
            self.conn.close()
            self.conn = None
            self.app = None

    def _on_app(self, conn, flags):
        """Datagrams from the app -> the peer."""
        if conn is not self.conn:
            return
        for _ in range(_READS):
            try:
                data = conn.recv(_MAX)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                data = b""
            if not data:  # the app closed its end (an empty datagram cannot be told apart)
                self._drop_conn()
                break
            try:
                if self.send(data):
                    self.count("app_rx")
                else:
                    self.count("app_no_association")
            except ValueError:
                self.count("app_too_big")
        self.rt.run_timers()  # sends what the core queued

    def deliver(self, payload):
        """A datagram from the peer -> the app, if one is connected."""
        if self.conn is None:
            self.count("rx_data_no_app")
            return
        try:
            self.conn.send(payload)
            self.count("app_tx")
        except (BlockingIOError, InterruptedError):
            self.count("app_tx_dropped")  # the app does not read: never wait for it
        except OSError:
            self.count("app_tx_error")
            self._drop_conn()
