"""mastd's agent: the core (mast.Endpoint) on the runtime's sockets (runtime.driver.Runtime),
plus what only a Linux router or server has: the TUN wedge, uplink discovery, the control
socket, signals and reloads. The protocol logic stays in the core.

Data paths:
  TUN -> packet.Routes (destination in a peer's allowed prefixes) -> Endpoint.send_data(ip=True)
  Runtime data event (ip) -> source in that peer's prefixes? -> TUN; else dropped and counted
  Runtime data event (not ip) -> the peer's app socket (app.py: a Unix socket only app_user /
  app_group can reach), and back

Signals: SIGTERM/SIGINT send SHUT to every peer and exit once it is acknowledged (at most
SHUT_WAIT_MS); SIGHUP reloads the configuration: only a change of our own name, keying or
port restarts every association; otherwise each association whose peer and key did not change
is kept (Endpoint.reconfigure), so adding or removing one peer touches only that peer. A bad
new configuration is refused with its message and the running one stays.
"""

import errno
import os
import signal
import socket
import time

from mast.assoc import STATE_NAMES
from mast.endpoint import Endpoint
from runtime import restart
from runtime.driver import Runtime, jitter
from runtime.rendezvous import Background, Pending, resolve_getaddrinfo
from runtime.status import nonce_id, runtime_status

from . import links, packet, peeredit, settings as settings_mod, tun as tun_mod
from .app import AppSocket
from .control import ControlServer, Items

SHUT_WAIT_MS = 3000
# A peer's association that closed is connected again (after a new DNS lookup) this long
# after, then twice as long after each attempt that fails, up to RECONNECT_MAX_MS; an
# association that comes up resets it. Each wait is jitter()ed (between half and all of it),
# as the runtime's redial: the peers a server's restart shut do not come back in lock-step.
RECONNECT_MS = 2000
RECONNECT_MAX_MS = 64000
# An uplink whose socket could not be opened (an IPv6 address netifd reports while the kernel
# still runs its duplicate address detection: EADDRNOTAVAIL) is tried again this long after,
# twice as long after each scan that fails again, up to UPLINK_RETRY_MAX_MS: on OpenWrt no netlink
# watch would wake mastd when it becomes bindable.
UPLINK_RETRY_MS = 2000
TUN_RETRY_MS = 2000  # a TUN that could not be made again is tried again this often
UPLINK_RETRY_MAX_MS = 60000
_RESOLVE_MAX_MS = 60000  # a name that does not resolve is tried again after 2, 4, 8 ... 60 s
_RESOLVE_AT_ONCE = 8  # names being looked up at a time (each in a thread of its own)
_RESOLVE_POLL_MS = 50  # how soon the loop sees a lookup that finished
_IDLE_MS = 1000
_TUN_READS = 64  # packets read from the TUN per wake, so the sockets are not starved
_HISTORY = 200  # events kept for status
# Uplink socket buffers: at failover resend_ms re-sends a burst (up to 512 packets, ~700 KB);
# the kernel's default 208 KB would drop most of it on the receiving side (RcvbufErrors).
SOCKET_BUFFER = 4 << 20
_SO_SNDBUFFORCE = 32  # Linux; root (CAP_NET_ADMIN) may exceed net.core.[rw]mem_max
_SO_RCVBUFFORCE = 33


def grow_buffers(sock, size=SOCKET_BUFFER):
    for force, plain in ((_SO_SNDBUFFORCE, socket.SO_SNDBUF), (_SO_RCVBUFFORCE, socket.SO_RCVBUF)):
        try:
            sock.setsockopt(socket.SOL_SOCKET, force, size)
        except OSError:
            try:
                sock.setsockopt(socket.SOL_SOCKET, plain, size)
            except OSError:
                pass


def _device_gone(u):
    """True if u's socket is bound (SO_BINDTODEVICE) to an interface that no longer exists. The
    socket holds the interface's index: one deleted and made again under the same name is a new
    interface, which it never follows (its sends fail ENODEV, or ENETUNREACH over IPv6, for
    good), and a scan that saw only the new one finds the uplink as it was."""
    if not u.device:
        return False
    try:
        got = u.sock.getsockopt(socket.SOL_SOCKET, getattr(socket, "SO_BINDTODEVICE", 25), 16)
    except OSError:  # ENODEV: its interface is gone
        return True
    return got.split(b"\0")[0] != u.device.encode()


class Agent:
    def __init__(self, conf, log, control_path, config_path=None, discovery="auto", clock=None):
        self.conf = conf
        self.log = log
        self.control_path = control_path
        self.config_path = config_path
        self.discovery = discovery
        self.clock = clock
        self.counters = {}
        self._tun_tx = self._rx_bad_source = 0  # per-packet counters (agent_counters() adds them)
        self.history = []
        self.admin_down = set()
        self.links = {}
        self._retry_at = None  # when a scan tries again the uplinks it could not open
        self._retry_ms = UPLINK_RETRY_MS
        self._bind_errors = {}  # uplink -> its last bind error logged (a retry logs a new one only)
        self.stop_reason = None
        self._settling = None  # "stopping", or a reload's restart: SHUT waits, mastctl may only look
        self._sig = {"term": False, "hup": False}
        self._wake = ()
        self._reconnect = {}  # peer -> due ms
        self._reconnect_wait = {}  # peer -> its next wait (RECONNECT_MS when absent)
        self._resolver = Background(resolve_getaddrinfo)  # (in threads: never in the loop)
        self._lookups = {}  # peer -> (its DNS name, port) being looked up
        self._lookup_fails = {}  # peer -> lookups failed in a row (the backoff)
        self.tun_fd = None
        self._tun_retry_at = None  # when a TUN that could not be made again is tried again
        self._tun_routes = set()  # the routes through the TUN that mastd added (only those are deleted)
        self.not_taken = []  # routes another device holds: [{"route", "peer", "held_by", "message"}]
        self._masq_devices = None
        self.tun_name = None
        self.tun_mtu = None
        self.control = None
        self.source = None
        self.apps = {}  # peer -> AppSocket
        self._readers = []  # (obj, callback): registered again on a new Runtime
        self.presence = None  # a presence_host.PresenceHost (main.py sets it)
        self._build()
        self.started_ms = self.rt.now()  # (the runtime's monotonic clock: the wall clock steps at NTP sync)

    # ---- setup ------------------------------------------------------------------------

    def _build(self):
        c = self.conf.core
        self.ep = Endpoint(c, os.urandom, accept_ip=True)
        self.rt = Runtime(self.ep, self.clock)
        self.rt.redial = False  # (it connects again itself: _reconnect, after a new DNS lookup)
        self.rt.reads_per_wake = _TUN_READS  # as many datagrams a wake as TUN packets
        if hasattr(self.rt, "on_data"):  # a runtime that hands DATA over without an Event
            self.rt.on_data = self._on_data
            self.ep.on_data = self._on_data  # (straight from the core: one call less a packet)
        self.routes = packet.routes_from(c)
        restart.watch(self.rt, _initiated(c), 0)  # (a peer that lost an association)
        for obj, cb in self._readers:
            self.rt.add_reader(obj, cb)

    def _add_reader(self, obj, callback):
        self._readers.append((obj, callback))
        return self.rt.add_reader(obj, callback)

    def _remove_reader(self, obj):
        self._readers = [x for x in self._readers if x[0] is not obj]
        self.rt.remove_reader(obj, obj if type(obj) is int else obj.fileno())

    def count(self, reason):
        self.counters[reason] = self.counters.get(reason, 0) + 1

    def start(self):
        r, w = os.pipe()
        os.set_blocking(r, False)
        os.set_blocking(w, False)
        self._wake = (r, w)
        signal.set_wakeup_fd(w)
        for s in (signal.SIGTERM, signal.SIGINT):
            signal.signal(s, self._on_term)
        signal.signal(signal.SIGHUP, self._on_hup)
        self._add_reader(r, self._on_wake)
        self.control = ControlServer(self.control_path, self.handle, self._add_reader, self._remove_reader,
                                     self.log.error)
        self._add_reader(self.control.sock, self.control.on_readable)
        use_netifd = self.discovery == "netifd" or (
            self.discovery == "auto" and self.conf.uci_names is not None and links.have_ubus())
        cls = links.NetifdSource if use_netifd else links.LinuxSource
        self.source = cls(self.conf.core["uplinks"])
        watch = self.source.open_watch()
        if watch is not None:
            self._add_reader(watch, self._on_netlink)
        if self.conf.agent["internal"]:
            self._open_tun()
        self.rescan("start")
        if self.tun_fd is not None and self.conf.agent["masquerade"]:
            self._masquerade(True)
        self._open_apps()
        self._connect_all()
        if self.presence is not None:  # serve presence on its own socket
            self.presence.emit = lambda d: self._note("presence_" + d.pop("event"), **d)
            self._add_reader(self.presence.open(), self.presence.on_readable)
        self.log.info("started: %s, %d peer(s), uplinks from %s, control %s" % (
            self.conf.core["name"], len(self.conf.core["peers"]), self.source.name,
            self.control_path))

    def _open_tun(self):
        a = self.conf.agent
        self.tun_name = a["tun"]
        self.tun_fd = tun_mod.open_tun(self.tun_name)
        self.tun_mtu = tun_mod.tun_mtu([], False)
        prefixes = self._all_prefixes()
        not_taken = tun_mod.configure(self.tun_name, a["internal"], self.tun_mtu, prefixes, self._tun_routes)
        self._tun_prefixes = prefixes
        self._routes_not_taken(not_taken)
        self._add_reader(self.tun_fd, self._on_tun)

    def _tun_lost(self, e):
        """The TUN's descriptor fails (its interface was deleted under mastd): make it again,
        with its address, MTU and routes (the old routes went with it)."""
        self.count("tun_lost")
        self._remove_reader(self.tun_fd)
        os.close(self.tun_fd)
        self.tun_fd = None
        self._tun_routes.clear()
        e2 = self._remake_tun()
        if e2 is None:
            self.log.error("tun %s was deleted (%s); made again" % (self.tun_name, e.strerror or e))
        else:
            self.log.error("tun %s was deleted (%s); cannot make it again: %s; trying again every "
                           "%d s" % (self.tun_name, e.strerror or e, e2, TUN_RETRY_MS // 1000))

    def _remake_tun(self):
        """Make the TUN again -> None, or the OSError (then tried again in TUN_RETRY_MS: an
        interface of its name that is not a TUN may go, a module be loaded)."""
        try:
            self._open_tun()
            self._update_mtu()
            self._tun_retry_at = None
            return None
        except OSError as e:
            if self.tun_fd is not None:  # (made, but not configured: not read either)
                self._remove_reader(self.tun_fd)
                os.close(self.tun_fd)
                self.tun_fd = None
            self._tun_routes.clear()
            self._tun_retry_at = self.rt.now() + TUN_RETRY_MS
            return e

    def _all_prefixes(self):
        out = []
        seen = set()  # (not `in out`: quadratic with thousands of peers)
        for peer in sorted(self.routes.prefixes):
            for p in self.routes.prefixes[peer]:
                if p not in seen:
                    seen.add(p)
                    out.append(p)
        return out

    def _masquerade(self, on):
        """Concentrator egress: NAT what comes out of the tunnel and leaves by an uplink."""
        import subprocess

        table = "mastd_%s" % self.tun_name.replace("-", "_").replace(".", "_")
        try:
            subprocess.run(["nft", "delete", "table", "ip", table], stderr=subprocess.DEVNULL)
        except OSError:  # no nft (not installed, or not on PATH): no table of ours to delete
            pass
        devices = self._uplink_devices()
        self._masq_devices = devices if on else None
        if on and devices:
            rules = ("table ip %s {\n chain post {\n  type nat hook postrouting priority 100;\n"
                     "  iifname \"%s\" oifname { %s } masquerade\n }\n}\n"
                     % (table, self.tun_name, ", ".join('"%s"' % d for d in sorted(devices))))
            try:
                r = subprocess.run(["nft", "-f", "-"], input=rules, stderr=subprocess.PIPE,
                                   universal_newlines=True)
            except OSError as e:  # (it ended a reload, and mastd at start)
                self.log.error("masquerade: cannot run nft (%s): install nftables" % (e.strerror or e))
                return
            if r.returncode:
                self.log.error("masquerade: nft: %s" % r.stderr.strip())

    def _uplink_devices(self):
        devices = set(u.get("device") or n for n, u in self.conf.core["uplinks"].items())
        return devices | set(l.device for l in self.links.values() if l.device)

    def _open_apps(self, peers=None):
        """Open the app sockets of peers (default: all) that have one configured. A socket
        that cannot be made is logged and counted; the rest of mastd goes on."""
        for peer in sorted(self.conf.apps if peers is None else peers):
            conf = self.conf.apps.get(peer)
            if not conf or peer in self.apps:
                continue
            app = AppSocket(peer, conf, self.rt,
                            lambda data, peer=peer: self.ep.send_data(data, self.rt.now(), peer),
                            self.count, getattr(self.control, "spare", None))
            try:
                app.open()
            except OSError as e:
                self.count("app_socket_error")
                self.log.error(e.strerror or str(e))  # (not "[Errno 1] peer ...")
                continue
            self.apps[peer] = app

    def _close_apps(self, peers=None):
        for peer in list(self.apps if peers is None else peers):
            app = self.apps.pop(peer, None)
            if app is not None:
                app.close()

    def _connect_all(self):
        for peer, p in sorted(self.conf.core["peers"].items()):
            if p.get("initiate") and (p.get("addresses") or p.get("dns")):
                self._connect(peer)

    def _connect(self, peer):
        """Start an association with peer; a peer known by its DNS name only is looked up
        first, in a thread (getaddrinfo blocks for seconds when DNS does not answer: in the
        loop, every association stood still that long), and connected when it resolves."""
        p = self.conf.core["peers"][peer]
        if not p.get("addresses") and p.get("dns"):
            if peer not in self._lookups:
                if len(self._lookups) >= _RESOLVE_AT_ONCE:
                    self._reconnect[peer] = self.rt.now() + RECONNECT_MS
                else:
                    self._lookups[peer] = (p["dns"], p["port"])
                    self._looked_up()  # (starts it)
            return
        self._start(peer, None)

    def _start(self, peer, addrs):
        try:
            self.rt.connect(peer, addrs)
        except ValueError as e:
            self.log.warn("peer %s: %s" % (peer, e))
            if peer in self._reconnect_wait:  # (a reconnect: tried again later, backing off)
                self._reconnect_later(peer)

    def _reconnect_later(self, peer):
        """Connect peer again after its wait (jittered); the next wait is twice as long."""
        w = self._reconnect_wait.get(peer, RECONNECT_MS)
        self._reconnect_wait[peer] = min(w * 2, RECONNECT_MAX_MS)
        self._reconnect[peer] = self.rt.now() + jitter(w, self.ep.random)

    def _looked_up(self):
        """The lookups that finished: connect their peers, or try again later (backing off)."""
        for peer, (host, port) in list(self._lookups.items()):
            try:
                r = self._resolver(host, port)
                error = None
            except Pending:
                continue
            except (OSError, UnicodeError) as e:  # (a label too long for IDNA: UnicodeError)
                error = e
            del self._lookups[peer]
            p = self.conf.core["peers"].get(peer)
            if p is None or p.get("addresses") or (p.get("dns"), p["port"]) != (host, port):
                continue  # removed or changed while it was looked up
            if error is not None:
                n = self._lookup_fails.get(peer, 0) + 1
                self._lookup_fails[peer] = n
                wait = min(RECONNECT_MS << min(n - 1, 5), _RESOLVE_MAX_MS)
                self.log.warn("peer %s: %s; trying again in %d s" % (peer, error, wait // 1000))
                self._reconnect[peer] = self.rt.now() + wait
                continue
            self._lookup_fails.pop(peer, None)
            if self.ep.association(peer) is None:
                self._start(peer, r["addresses"])

    # ---- uplinks ----------------------------------------------------------------------

    def rescan(self, why):
        """Ask the source which uplinks are usable and tell the runtime (and so the core)."""
        try:
            found = self.source.scan()
        except (OSError, ValueError) as e:  # ubus failed or hung (links.UBUS_TIMEOUT_S)
            self.log.error("uplink scan failed (%s): %s; the uplinks stay as they were" % (why, e))
            if self._retry_at is not None:  # (its next try waits, as a bind's: not every turn)
                self._retry_at = self.rt.now() + self._retry_ms
                self._retry_ms = min(self._retry_ms * 2, UPLINK_RETRY_MAX_MS)
            return
        ucfg = self.conf.core["uplinks"]
        port = self.conf.core["port"]
        failed = False
        for name, link in sorted(found.items()):
            old = self.links.get(name)
            self.links[name] = link
            cur = self.rt.uplinks.get(name)
            want = link.up and name not in self.admin_down
            prio, cost = ucfg[name]["priority"], ucfg[name]["cost"]
            if want:
                if cur is not None and cur.dead is None and _device_gone(cur):
                    self.rt.remove_uplink(name)  # (add_uplink would keep that socket: same names)
                    self._note("uplink_down", uplink=name, why="device %s was replaced" % cur.device)
                    cur = None
                bind = (link.addr, port)
                core_u = self.ep.uplinks.get(name)
                same = (cur is not None and cur.dead is None and cur.bind == bind
                        and cur.device == link.device and core_u is not None
                        and (core_u.priority, core_u.cost) == (prio, cost))
                if same:
                    continue
                try:
                    u = self.rt.add_uplink(name, bind, prio, cost, link.device)
                    self._bind_errors.pop(name, None)
                    grow_buffers(u.sock)
                    self._note("uplink_up", uplink=name, addr=link.addr, device=link.device,
                               priority=prio, cost=cost, why=why)
                except (OSError, ValueError) as e:
                    self.count("uplink_error")
                    failed = True
                    err = getattr(e, "strerror", None) or str(e)  # (not "[Errno 98] uplink wan: ...")
                    if getattr(e, "errno", None) == errno.EADDRINUSE:
                        err += "; another program holds UDP port %d there (a second mastd?)" % port
                    if why != "retry" or self._bind_errors.get(name) != err:
                        # (a retry that fails alike is not logged again: one line a minute
                        # for good filled OpenWrt's log ring; uplink_error counts each)
                        self.log.error(err if err.startswith("uplink %s:" % name) else "uplink %s: %s" % (name, err))
                    self._bind_errors[name] = err
            elif cur is not None:
                self.rt.remove_uplink(name)
                reason = "admin" if name in self.admin_down else link.why
                self._note("uplink_down", uplink=name, why=reason)
            elif old is None or old.key() != link.key():
                self.log.info("uplink %s not usable: %s" % (name, link.why))
        for name in sorted(set(self.links) - set(found)):  # taken out of the configuration
            del self.links[name]
            self.admin_down.discard(name)
            if name in self.rt.uplinks:
                self.rt.remove_uplink(name)
                self._note("uplink_down", uplink=name, why="not in the configuration")
        if failed:  # (tried again later: UPLINK_RETRY_MS)
            self._retry_at = self.rt.now() + self._retry_ms
            self._retry_ms = min(self._retry_ms * 2, UPLINK_RETRY_MAX_MS)
        else:
            self._retry_at = None
            self._retry_ms = UPLINK_RETRY_MS
        self._update_mtu()
        if self._masq_devices is not None and self._masq_devices != self._uplink_devices():
            self._masquerade(True)  # netifd moved an uplink to another device

    def _update_mtu(self, prefixes=None):
        """The TUN's MTU for the uplinks in use and the prefixes routed through it (default:
        those routed now)."""
        if self.tun_fd is None:
            return
        mtus = [l.mtu for n, l in self.links.items() if l.up and l.mtu and n in self.rt.uplinks]
        v6 = any(":" in (l.addr or "") for l in self.links.values() if l.up)
        inner6 = ":" in self.conf.agent["internal"] or any(
            ":" in p for p in (self._tun_prefixes if prefixes is None else prefixes))
        mtu = tun_mod.tun_mtu(mtus, v6, inner6)
        if mtu != self.tun_mtu:
            try:
                tun_mod.set_mtu(self.tun_name, mtu)
                self.tun_mtu = mtu
                self.log.info("tun %s mtu %d" % (self.tun_name, mtu))
            except OSError as e:
                self.log.error("tun mtu: %s" % e)

    # ---- the data path ----------------------------------------------------------------

    def _mss(self):
        m = self.tun_mtu or 1444
        return m - 40, m - 60

    def _on_tun(self, fd, flags):
        """Every IP packet the TUN has (at most _TUN_READS a wake) -> DATA-IP to the peer whose
        prefix holds its destination; the datagrams go out together when the wake's readers
        are done (Runtime.poll runs the timers and sends what the core queued)."""
        ep, now, route = self.ep, self.rt.now(), self.routes.peer_for
        send, read = ep.send_data, os.read
        m4, m6 = self._mss()
        sent = lost = no_route = not_ip = too_big = 0
        for _ in range(_TUN_READS):
            try:
                pkt = read(fd, 65535)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as e:  # EBADFD: the interface was deleted (ip link del)
                self._tun_lost(e)
                break
            peer = route(pkt)
            if not peer:
                if peer is None:
                    no_route += 1
                else:
                    not_ip += 1
                continue
            if len(pkt) >= 40 and (pkt[9] == 6 or pkt[6] == 6):  # packet.maybe_tcp
                pkt = packet.clamp_mss(pkt, m4, m6)
            try:
                if send(pkt, now, peer, True):
                    sent += 1
                else:
                    lost += 1
            except ValueError:
                too_big += 1
        c = self.counters
        for k, v in (("tun_rx", sent), ("tun_no_association", lost), ("tun_no_route", no_route),
                     ("tun_not_ip", not_ip), ("tun_too_big", too_big)):
            if v:
                c[k] = c.get(k, 0) + v

    def _deliver(self, events):
        """Data events (a runtime without on_data): each as _on_data."""
        for ev in events:
            self._on_data(ev.peer, ev.payload, ev.ip, ev.uplink, ev.src)

    def _on_data(self, peer, payload, ip, uplink, src):
        """One DATA from a peer (the runtime's on_data: no event object, no queue; payload
        may be a memoryview, valid during the call). An IP packet goes to the TUN if its
        source lies in that peer's prefixes; a datagram to the peer's app."""
        if not ip:
            app = self.apps.get(peer)
            if app is None:
                self.count("rx_data_no_app")
            else:
                app.deliver(payload)
            return
        if not self.routes.source_ok(peer, payload):
            self._rx_bad_source += 1  # cryptokey routing: not from this peer's prefixes (or not IP)
            return
        fd = self.tun_fd
        if fd is None:
            self.count("rx_ip_no_tun")
            return
        if len(payload) >= 40 and (payload[9] == 6 or payload[6] == 6):  # packet.maybe_tcp
            m4, m6 = self._mss()
            payload = packet.clamp_mss(payload, m4, m6)
        try:
            os.write(fd, payload)
            self._tun_tx += 1
        except OSError:
            self.count("tun_write_error")

    def agent_counters(self):
        c = dict(self.counters)
        for k, v in (("tun_tx", self._tun_tx), ("rx_ip_bad_source", self._rx_bad_source),
                     ("log_lines_lost", getattr(self.log, "lost", 0)),
                     ("control_no_fd", getattr(self.control, "no_fds", 0))):
            if v:
                c[k] = c.get(k, 0) + v
        return c

    # ---- events and status ------------------------------------------------------------

    def _note(self, kind, **fields):
        d = {"event": kind, "t_ms": self.rt.now(), "time": round(time.time(), 3)}
        d.update(fields)
        self.history.append(d)
        if len(self.history) > _HISTORY:
            self.history.pop(0)
        self.log.info(" ".join([kind] + ["%s=%s" % (k, v) for k, v in sorted(fields.items())]))

    def _events(self):
        for ev in self.rt.events():
            d = ev.as_dict()
            kind = d.pop("event")
            if kind in ("failover", "association_up", "association_closed"):
                a = self.ep.association(d.get("peer"))
                if a is not None:
                    d["label"] = a.label
                    d["nonce_id"] = nonce_id(a)
            if kind == "association_up":
                self._reconnect_wait.pop(d.get("peer"), None)
            if kind == "association_closed":
                p = self.conf.core["peers"].get(d.get("peer"), {})
                if (self.stop_reason is None and p.get("initiate") and d.get("reason") != "replaced"
                        and (p.get("addresses") or p.get("dns"))):
                    self._reconnect_later(d["peer"])
            if kind == "uplink_dead":
                self._rescan_due = True
            self._note(kind, **d)

    def status(self):
        """The status document; its associations are written a few at a time (Items)."""
        s = runtime_status(self.rt, Items)
        s["pid"] = os.getpid()
        s["uptime_s"] = (self.rt.now() - self.started_ms) // 1000
        s["config"] = self.conf.where
        s["discovery"] = self.source.name if self.source else None
        for name, link in self.links.items():
            u = s["uplinks"].setdefault(name, {})
            u["link"] = link.as_dict()
            u["admin"] = "down" if name in self.admin_down else "up"
        s["tun"] = None if self.tun_fd is None else {
            "name": self.tun_name, "mtu": self.tun_mtu, "internal": self.conf.agent["internal"]}
        s["apps"] = dict((peer, a.status()) for peer, a in self.apps.items())
        s["routes"] = dict((p, list(v)) for p, v in self.routes.prefixes.items())
        s["routes_not_taken"] = [dict((k, m[k]) for k in ("route", "peer", "held_by")) for m in self.not_taken]
        s["agent_counters"] = self.agent_counters()
        s["presence"] = self.presence.status() if self.presence is not None else None
        s["failovers"] = [e for e in self.history if e["event"] == "failover"]
        s["events"] = list(self.history[-50:])
        return s

    # ---- control ----------------------------------------------------------------------

    def handle(self, req):
        op = req.get("op")
        if op == "status":
            return {"status": self.status()}
        if self._settling and op != "peer_list":
            # (asked while SHUT waits for its acknowledgements: served by that wait's loop,
            # a peer added then got INIT while mastd stopped, and an uplink taken down took
            # the SHUTs' path; a reload started associations that never heard a SHUT)
            raise ValueError("mastd is %s: nothing was changed; try again %s" % (
                self._settling, "once it runs again" if self._settling == "stopping"
                else "in a moment"))
        if op == "uplink":
            name, state = req.get("name"), req.get("state")
            if name not in self.conf.core["uplinks"]:
                raise ValueError("no uplink %r (configured: %s)" % (
                    name, ", ".join(sorted(self.conf.core["uplinks"])) or "none"))
            if state not in ("up", "down"):
                raise ValueError("state must be up or down")
            if state == "down":
                self.admin_down.add(name)
            else:
                self.admin_down.discard(name)
            self.rescan("mastctl uplink %s %s" % (name, state))
            return {"uplink": name, "state": state}
        if op == "hotplug":
            self.rescan("hotplug %s %s" % (req.get("action"), req.get("interface")))
            return {}
        if op == "reload":
            err = self.reload()
            return {"ok": err is None, "error": err} if err else {}
        if op == "peer_list":
            return {"peers": self.peer_list()}
        if op == "peer_add":
            return self.peer_add(req.get("name"), req.get("peer"))
        if op == "peer_remove":
            return self.peer_remove(req.get("name"))
        raise ValueError("unknown op %r (status, uplink, hotplug, reload, peer_list, peer_add, "
                         "peer_remove)" % (op if isinstance(op, str) else None))  # (an object
        # or a list is never repeated: it may hold a key, as a peer's settings do)

    def reload(self):
        """Read the configuration again; None if it was applied, else the error (the running
        configuration stays). Only a change of our own name, keying or port restarts every
        association; otherwise Endpoint.reconfigure keeps each one whose peer and key stayed."""
        if not self.config_path:
            return "no configuration file to reload"
        try:
            new = settings_mod.load(self.config_path)
        except OSError as e:
            msg = "reload refused, the running configuration stays: cannot read %s (%s)" % (
                self.config_path, e.strerror or e)
            self.log.error(msg)
            return msg
        except (ValueError, RecursionError) as e:  # (load turns a too deep file into a ConfigError)
            msg = "reload refused, the running configuration stays: %s" % e
            self.log.error(msg)
            return msg
        for w in new.warnings:  # once per load: a file holding keys that others may read
            self.log.warn(w)
        if new.agent["internal"] != self.conf.agent["internal"] or new.agent["tun"] != self.conf.agent["tun"]:
            msg = "reload refused: internal and tun change only with a restart of mastd"
            self.log.error(msg)
            return msg
        changed = restart_reason(self.conf, new)
        if changed:
            self.log.warn("reload: %s changed: every association restarts" % changed)
            self._restart_endpoint(new)
        else:
            try:
                self._apply(new, "reload")
            except ValueError as e:  # the core refused what mastd's settings accepted
                msg = "reload refused by the core, the running configuration stays: %s" % e
                self.log.error(msg)
                return msg
        if self.tun_fd is not None:
            self._masquerade(new.agent["masquerade"])
        self._note("reloaded", config=new.where)
        if self.not_taken:  # (applied; said to mastctl, which exits 1)
            return "reloaded, but %s" % "; ".join(m["message"] for m in self.not_taken)
        return None

    def _apply(self, new, why):
        """Take a configuration with the same name, keying and port without a restart: the core
        keeps every association whose peer and key did not change (Endpoint.reconfigure); a
        removed peer is sent SHUT and closed, a peer with a new key starts a new association,
        a new peer its first. Routes and app sockets change only for the peers that changed."""
        old = self.conf
        oldp, newp = old.core["peers"], new.core["peers"]
        now = self.rt.now()
        gone = [peer for peer in oldp if peer not in newp]
        for peer in gone:
            if self.ep.association(peer) is not None:
                self.ep.close(now, peer)  # SHUT, so that the peer hears of it at once
        self.ep.reconfigure(new.core, now)  # validated already: a ConfigError is a bug here
        self.conf = new
        restart.watch(self.rt, _initiated(new.core), now)
        self.source.cfg = new.core["uplinks"]
        touched = [peer for peer in set(oldp) | set(newp)
                   if oldp.get(peer) != newp.get(peer) or old.apps.get(peer) != new.apps.get(peer)]
        if self.not_taken or any(_route_keys(oldp.get(p)) != _route_keys(newp.get(p)) for p in touched):
            self._set_routes(packet.routes_from(new.core))
        self._close_apps([p for p in touched if old.apps.get(p) != new.apps.get(p)])
        self._open_apps([p for p in touched if p in new.apps])
        for peer in gone:
            self._reconnect.pop(peer, None)
            self._reconnect_wait.pop(peer, None)
            self._lookup_fails.pop(peer, None)  # (a peer added and removed each day: one each)
        for peer in touched:  # (its reconnect would find no address, warn, and wait again for ever)
            p = newp.get(peer)
            if p is not None and not (p.get("initiate") and (p.get("addresses") or p.get("dns"))):
                self._reconnect.pop(peer, None)  # (a reload made it one that waits for the peer)
                self._reconnect_wait.pop(peer, None)
        self.rescan(why)
        for peer in sorted(touched):
            p = newp.get(peer)
            if (p is not None and p.get("initiate") and (p.get("addresses") or p.get("dns"))
                    and self.ep.association(peer) is None):
                self._connect(peer)
        self.rt.run_timers()  # sends the SHUTs and INITs now

    # ---- peers, one at a time (mastctl peer) -------------------------------------------

    def peer_list(self):
        """The configured peers, then any unlisted one with an association (a fleet member,
        fleet_domain), each with its association's state and nonce_id; keys never shown.
        Written a few at a time (Items): each peer as it is when written."""
        peers = self.conf.core["peers"]
        return Items(sorted(peers) + sorted(n for n in self.ep.by_peer if n not in peers),
                     self._peer_entry)

    def _peer_entry(self, name):
        a = self.ep.by_peer.get(name)
        p = self.conf.core["peers"].get(name)
        if p is None:  # a fleet member (or a peer removed since the list began)
            d = {"name": name, "fleet": True, "addresses": [], "internal": None}
        else:
            d = {"name": name, "addresses": list(p.get("addresses", [])), "dns": p.get("dns"),
                 "port": p.get("port"), "initiate": p.get("initiate"), "internal": p.get("internal"),
                 "allowed": list(p.get("allowed", [])), "psk": "<redacted>" if p.get("psk") else None,
                 "app_socket": self.conf.apps.get(name, {}).get("app_socket")}
        d["association"] = STATE_NAMES[a.state] if a is not None else None
        d["nonce_id"] = nonce_id(a) if a is not None else None
        return d

    def peer_add(self, name, doc):
        """Add one peer to the running configuration and to the file it came from; only that
        peer is checked, and no other association is touched."""
        if not isinstance(name, str) or not name:
            raise ValueError("peer add needs the peer's name")
        if not isinstance(doc, dict):
            raise ValueError("peer add needs the peer's settings (an object)")
        if name in self.conf.core["peers"]:
            raise ValueError("peer %s is configured already; `mastctl peer remove %s` first"
                             % (name, name))
        if not self.config_path:
            raise ValueError("no configuration file to add the peer to")
        new = settings_mod.with_peer(self.conf, name, doc)  # ConfigError names the key
        section = peeredit.add_peer(self.config_path, name, doc)
        if section and new.uci_names is not None:
            new.uci_names["peers.%s" % name] = section
        self._apply(new, "mastctl peer add %s" % name)
        self._note("peer_added", peer=name, config=new.where)
        mine = [m["message"] for m in self.not_taken if m["peer"] == name]
        if mine:  # added all the same: mastctl says so and exits 1
            return {"ok": False, "peer": name, "section": section,
                    "error": "peer %s added, but %s" % (name, "; ".join(mine))}
        return {"peer": name, "section": section}

    def peer_remove(self, name):
        """Remove one peer from the running configuration (SHUT to it) and from the file."""
        if name not in self.conf.core["peers"]:
            raise ValueError("no peer %r (configured: %d peer(s); `mastctl peer list`)"
                             % (name, len(self.conf.core["peers"])))
        if not self.config_path:
            raise ValueError("no configuration file to remove the peer from")
        peeredit.remove_peer(self.config_path, name)
        self._apply(settings_mod.without_peer(self.conf, name), "mastctl peer remove %s" % name)
        self._note("peer_removed", peer=name, config=self.conf.where)
        return {"peer": name}

    def _set_routes(self, routes):
        self.routes = routes
        if self.tun_fd is not None:
            new = self._all_prefixes()
            self._update_mtu(new)  # (1280 first, if IPv6 comes: below it the routes fail)
            try:
                not_taken = tun_mod.set_routes(self.tun_name, self._tun_routes, new)
                self._tun_prefixes = new
            except OSError as e:
                self.log.error("routes: %s" % e)
                return
            self._routes_not_taken(not_taken)

    def _routes_not_taken(self, not_taken):
        """Log each route not taken (this host routes its prefix through another device
        already: tun.set_routes) saying what to do, once (not again at each retry while the
        same device holds it), and keep them for status, reload and mastctl peer add. Such a
        prefix's traffic keeps its route, outside the tunnel; what the peer sends from it is
        still accepted (the cryptokey check is the same)."""
        said = set((m["route"], tuple(m["held_by"])) for m in self.not_taken)
        self.not_taken = []
        for route, held in not_taken:
            peer = prefix = None
            for name in sorted(self.routes.prefixes):
                for p in self.routes.prefixes[name]:
                    if peer is None and route in tun_mod.kernel_routes(p):
                        peer, prefix = name, p
            whose = "" if peer is None else " of peer %s%s" % (peer, "" if prefix == route else " (%s)" % prefix)
            how = ", ".join("by its %s" % h if " " in h else "through %s" % h for h in held)
            msg = ("route %s%s not taken: this host routes it already, %s, and mastd leaves that route "
                   "alone: traffic to %s does not enter %s. To tunnel it, delete that route (ip route "
                   "del %s%s), then mastctl reload; or take %s out of %s allowed"
                   % (route, whose, how, route, self.tun_name, route,
                      " dev %s" % held[0] if len(held) == 1 and " " not in held[0] else "",
                      prefix or route, "peer %s's" % peer if peer else "the peer's"))
            if (route, tuple(held)) not in said:
                self.log.error(msg)
            self.not_taken.append({"route": route, "peer": peer, "held_by": list(held), "message": msg})

    def _restart_endpoint(self, new):
        self._settling = "restarting every association (a reload)"
        try:
            self._shut_all(SHUT_WAIT_MS)
        finally:
            self._settling = None
        for name in list(self.rt.uplinks):
            self.rt.remove_uplink(name)
        self._close_apps()
        self.rt.shutdown()
        self.conf = new
        self._build()  # a new Endpoint and Runtime; the TUN, control and signal readers carry over
        self.source.cfg = new.core["uplinks"]
        self.links = {}
        self._reconnect = {}  # (a peer removed with it was looked up again, and mastd ended)
        self._set_routes(packet.routes_from(new.core))
        self._reconnect_wait = {}
        self.rescan("reload")
        self._open_apps()
        self._connect_all()

    # ---- the loop ---------------------------------------------------------------------

    def _on_term(self, signum, frame):
        self._sig["term"] = True

    def _on_hup(self, signum, frame):
        self._sig["hup"] = True

    def _on_wake(self, fd, flags):
        try:
            while os.read(fd, 512):
                pass
        except (BlockingIOError, InterruptedError):
            pass

    def _on_netlink(self, sock, flags):
        if self.source.drain():
            self._rescan_due = True

    def turn(self, timeout_ms=_IDLE_MS):
        """One pass of the loop: wait, feed the core, deliver, act on signals."""
        self._rescan_due = False
        if self.presence is not None:  # wake for its timers too
            timeout_ms = self.presence.wait_ms(timeout_ms)
        busy = self.control.busy() if self.control is not None else None
        if busy:  # a reply being written goes on at once, one waiting for its reader soon
            timeout_ms = 0 if busy == "write" else min(timeout_ms, 5)
        if self._lookups:
            timeout_ms = min(timeout_ms, _RESOLVE_POLL_MS)
        self.rt.poll(timeout_ms)
        if self.presence is not None:
            self.presence.tick()
        rx = self.rt.recv()
        if rx:
            self._deliver(rx)
        self._events()
        if self._rescan_due:
            self.rescan("netlink")
        elif self._retry_at is not None and self.rt.now() >= self._retry_at:
            self.rescan("retry")
        if busy or (self.control is not None and self.control.clients):
            self.control.on_readable()  # (writes replies; drops a connection silent past its time)
        if self._lookups:
            self._looked_up()
        if self._tun_retry_at is not None and self.rt.now() >= self._tun_retry_at:
            if self._remake_tun() is None:
                self.log.info("tun %s made again" % self.tun_name)
        if self._reconnect:
            now = self.rt.now()
            for peer, due in list(self._reconnect.items()):
                if now >= due:
                    del self._reconnect[peer]
                    if self.ep.association(peer) is None:
                        self._connect(peer)
        if self._sig["hup"]:
            self._sig["hup"] = False
            self.reload()
        if self._sig["term"]:
            self.stop_reason = "signal"

    def run(self):
        while self.stop_reason is None:
            self.turn()
        self.shutdown()
        return 0

    def _shut_all(self, wait_ms):
        """SHUT every association; wait (bounded) until each is closed."""
        self.rt.close()
        end = self.rt.now() + wait_ms
        while self.ep.by_peer and self.rt.now() < end:
            self.rt.poll(min(100, max(0, end - self.rt.now())))
            self.rt.recv()
            self._events()

    def shutdown(self):
        self._settling = "stopping"
        self.log.info("stopping: SHUT to %d association(s)" % len(self.ep.by_peer))
        self._shut_all(SHUT_WAIT_MS)
        self.rt.shutdown()
        self._close_apps()
        if self.source is not None:
            self.source.close()
        if self.control is not None:
            self.control.close()
        if self.presence is not None:  # writes its state file
            self.presence.close()
        if self.tun_fd is not None:
            if self.conf.agent["masquerade"]:
                self._masquerade(False)
            os.close(self.tun_fd)  # the interface and its routes go with it
            self.tun_fd = None
        signal.set_wakeup_fd(-1)
        for fd in self._wake:
            os.close(fd)
        self.log.info("stopped")


def restart_reason(old, new):
    """What in new (Settings) needs every association restarted, or None: our own name,
    keying or port. Everything else (peers added, removed or re-keyed, uplinks, routes,
    timers) is applied by Endpoint.reconfigure to the associations it concerns."""
    for key in ("name", "keying", "port"):
        if old.core.get(key) != new.core.get(key):
            return key
    return None


def _route_keys(p):
    return None if p is None else (p.get("internal"), tuple(p.get("allowed", ())))


def _initiated(core):
    """The peers this mastd starts associations with (the runtime watches only those)."""
    return sorted(peer for peer, p in core["peers"].items() if p.get("initiate"))
