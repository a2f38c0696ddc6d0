# The MAST endpoint: the core's public, sans-IO API (shaped like aioquic's).
#
#   ep = Endpoint(cfg, random_bytes)
#   ep.uplink_up("eth", ("192.0.2.7", 6278), now_ms)
#   ep.connect("server.example", now_ms)
#   ep.receive("eth", ("198.51.100.1", 6278), datagram, now_ms)
#   ep.send_data(b"payload", now_ms)
#   for uplink, addr, datagram in ep.datagrams_to_send(): ...
#   ep.next_timer() -> ms or None;  ep.handle_timer(now_ms);  ep.next_event()
#
# Time is a non-wrapping integer count of ms (see clock.py); randomness comes
# from the runtime (os.urandom). Addresses are ("canonical ip text", port).
# Peer input never raises: it is dropped and counted in ep.counters by reason.
# Caller misuse raises ValueError (config.ConfigError for bad config).

from heapq import heappush, heappop, heapify

from .compat import SLOTS, const
# config (the schema) is imported where it is used, not here: a board forgets it between
# uses (board/main.py ONCE_MP), which an import here would prevent
from . import wire, policy, keys
from .crypto import Mac, hkdf
from .addr import canonical, parse_addr
from .assoc import Association, COOKIE_WAIT, ESTABLISHED



class Uplink:
    if SLOTS:
        __slots__ = ("name", "addr", "priority", "cost", "natted", "public")

    def __init__(self, name, addr, priority, cost):
        self.name = name
        self.addr = addr
        self.priority = priority
        self.cost = cost
        self.natted = False
        self.public = None  # the address a PROBE-ACK saw, when it differs


_txbuf = None  # direct_send on MicroPython: the buffer every endpoint seals its packets in
_views = {}  # length -> a memoryview of _txbuf's first `length` bytes (kept: no new object)
_TX_STEP = const(256)  # _txbuf grows in steps of this many bytes


def _grow(n):
    """Make the send buffer at least n bytes (in steps of _TX_STEP, at most MAX_PACKET)."""
    global _txbuf, _views
    if _txbuf is not None and len(_txbuf) >= n:
        return
    _txbuf = None  # (the old one, and its views, can go before the new one is taken)
    _views = {}
    _txbuf = bytearray(min(wire.MAX_PACKET, (n + _TX_STEP - 1) // _TX_STEP * _TX_STEP))


class Endpoint:
    def __init__(self, cfg, random_bytes, accept_ip=False, window=None, checked=False):
        """checked: cfg is config.validate()'s result, from a check the caller made a moment
        ago (a board's): it is not checked again, and the schema's code is not loaded."""
        self.random = random_bytes
        self.window = window
        if not checked:
            from . import config

            cfg = config.validate(cfg)
        self._settings(cfg)
        self.accept_ip = accept_ip
        self.uplinks = {}
        self.assocs = {}  # our label -> Association (also lingering closed ones)
        self.by_peer = {}  # peer name -> live Association
        self.out = []
        self.events = []
        self._ev_next = 0  # next_event()'s place in events
        self.counters = {}
        self.last_error = None
        self.on_data = None  # if set: on_data(peer, payload, ip, uplink, src) instead of events
        self.on_send = None  # if set (direct_send): on_send(uplink, addr, packet) instead of out
        self._cookie_mac = Mac(random_bytes(32))  # the stateless-cookie secret
        self._last_stamp = {}  # peer -> (stamp, when) of the last cookie accepted from it
        self._connect_addrs = {}
        self._addrs = None  # addr_list(), until the uplinks change
        self._heap = []  # [deadline, label]: the associations' timers, lazily deleted
        self._dirty = []  # associations touched since their deadline was computed
        self._due = []  # (reused) the associations whose timers run now
        self._hdr = [0, 0, 0]  # (reused) type, label, seq of the packet being received
        self.cut_from = None  # the configuration from before a reconfigure a MemoryError cut short
        # (what is running as far as the peers know: board/applycfg.py plans against it)

    def _settings(self, c):
        self.cfg = c
        self.name = c["name"]
        self.prof = policy.PROFILES[c["profile"]]
        self.mode = c["mode"]
        self.keying = wire.KEYING_OPEN if c["keying"] == "open" else wire.KEYING_PSK
        self.window_size = self.window or c["replay_window"]
        self.resend_ms = c["resend_ms"]
        self.outage_ms = c["outage_s"] * 1000
        self.nat_refresh_ms = c["nat_refresh_s"] * 1000
        self._init_macs = {}

    def reconfigure(self, cfg, now_ms, checked=False):
        """Take a new configuration without a restart (console `apply`, SIGHUP). An
        association keeps its nonces and keys unless its peer is gone (then it is shut down
        gracefully, SHUT), or its key, our name or the keying changed: those are closed at
        once ("reconfigured"), so that a new INIT can start; the peer replaces its side when
        that INIT completes. ConfigError if cfg is bad, and then nothing changed.
        A MemoryError part way (a board's full heap) leaves the rest undone, and the next
        reconfigure does it: it compares with the configuration from before the one cut
        short, and announces the uplinks again (SET). checked: as for Endpoint()."""
        c = cfg
        if not checked:
            from . import config

            c = config.validate(cfg)
        again = self.cut_from is not None
        old = self.cut_from if again else self.cfg
        self.cut_from = old  # (until everything below is done)
        self._settings(c)
        for p in list(self._connect_addrs):  # a peer gone: the addresses its connect gave go too
            p in c["peers"] or self._connect_addrs.pop(p)
        for peer, a in list(self.by_peer.items()):
            pc = c["peers"].get(peer)
            was = old["peers"].get(peer)
            member = pc is None and keys.fleet_member(c, peer)  # still a fleet member
            if pc is None and not member:
                a.shut(now_ms)  # gone: a graceful close (one already closing goes on)
            elif (c["name"], c["keying"]) != (old["name"], old["keying"]) or not (
                    member and was is None and c.get("fleet_psk") == old.get("fleet_psk")
                    or pc is not None and was is not None and pc.get("psk") == was.get("psk")):
                a.close(now_ms, "reconfigured")
            self.touch(a)
        for name, u in list(self.uplinks.items()):
            uc = c["uplinks"].get(name)
            if uc:
                self.uplink_up(name, u.addr, now_ms, uc["priority"], uc["cost"])
        if again:  # the one cut short may have changed an uplink's hints and not said so
            for a in self.by_peer.values():
                a.send_set(now_ms)
                self.touch(a)
        self.cut_from = None

    # ---- helpers used by associations -------------------------------------

    def count(self, reason):
        c = self.counters
        try:
            c[reason] = c.get(reason, 0) + 1
        except MemoryError:  # (a reason's first count, the heap full: the table cannot grow)
            pass

    def psk(self, peer):
        if self.keying == wire.KEYING_OPEN:
            return b""
        pc = self.cfg["peers"].get(peer)
        if pc is None:  # a fleet member (checked by responder.check_init)
            return keys.fleet_key(self.cfg, peer)
        return keys.decode_psk(pc["psk"])

    def set_peer(self, name, peer, now_ms):
        """Add or change one peer without checking the others (a fleet of thousands):
        peer is its section ({"psk": ..., "addresses": [...]}). Its association, if any,
        is kept unless its key changed (then closed, "reconfigured"). ConfigError if bad,
        and then nothing changed."""
        from .peercfg import validate_peer

        pc = validate_peer(self.cfg, name, peer)
        old = self.cfg["peers"].get(name)
        self.cfg["peers"][name] = pc
        self._init_macs.pop(name, None)
        a = self.by_peer.get(name)
        if a is not None and (old is None and self.keying == wire.KEYING_PSK or
                              old is not None and old.get("psk") != pc.get("psk")):
            a.close(now_ms, "reconfigured")
            self.touch(a)

    def remove_peer(self, name, now_ms):
        """Forget one peer; its association is shut down gracefully (SHUT, then closed
        with reason "shut"), also when the name is still a fleet member: the association
        was keyed from the listed key, which must not outlive the listing (reconfigure
        closes it too). ValueError if there is no such peer."""
        if name not in self.cfg["peers"]:
            raise ValueError("no peer %r" % name)
        del self.cfg["peers"][name]
        self._init_macs.pop(name, None)
        self._connect_addrs.pop(name, None)
        a = self.by_peer.get(name)
        if a is not None:
            a.shut(now_ms)
            self.touch(a)

    def init_mac(self, peer):
        """The key of peer's INIT and INIT-ACK. Kept for a listed peer (open keying: the one
        key of every name); a fleet member's is made each time, as an INIT from any name under
        fleet_domain gets here before its tag is checked and must leave nothing behind."""
        k = None if self.keying == wire.KEYING_OPEN else peer
        m = self._init_macs.get(k)
        if m is None:
            m = Mac(hkdf(b"", self.psk(peer), b"mast1 init", 32))
            if k is None or peer in self.cfg["peers"]:
                self._init_macs[k] = m
        return m

    def addr_list(self):
        """Our complete address list, in a stable order: ((ip, port), priority, cost)."""
        if self._addrs is None:
            self._addrs = [(u.addr, u.priority, u.cost) for _, u in sorted(self.uplinks.items())]
        return self._addrs

    def new_label(self):
        # below 2^30: a small int on every port, so demultiplexing allocates nothing
        while True:
            label = int.from_bytes(self.random(4), "big") & 0x3FFFFFFF
            if label and label not in self.assocs:
                return label

    def forget(self, a, now, final=False):
        if self.by_peer.get(a.peer) is a:
            del self.by_peer[a.peer]
        if final or a.closed_at + policy.LINGER <= now:
            if self.assocs.get(a.label) is a:
                del self.assocs[a.label]

    # ---- uplinks ---------------------------------------------------------------

    def uplink_up(self, name, addr, now_ms, priority=None, cost=None):
        """An uplink has (or changed) its address. Sends SET to every peer."""
        addr = (canonical(addr[0]), int(addr[1]))
        uc = self.cfg["uplinks"].get(name, {})
        prio = uc.get("priority", 100) if priority is None else priority
        cost = uc.get("cost", 0) if cost is None else cost
        if not (0 <= prio <= 255 and 0 <= cost <= 255):
            raise ValueError("uplink %s: priority and cost must be 0..255" % name)
        old = self.uplinks.get(name)
        self._addrs = None
        if old is not None and old.addr == addr:
            if (old.priority, old.cost) == (prio, cost):
                return
            old.priority, old.cost = prio, cost
        else:
            if old is not None:
                self._drop_uplink(name, now_ms)
            u = Uplink(name, addr, prio, cost)
            self.uplinks[name] = u
            for a in self.by_peer.values():
                for raddr in a.remotes:
                    p = a.add_path(u, raddr, now_ms)
                    if p is not None:
                        p.probe_due = now_ms
        for a in self.by_peer.values():
            if a.state == COOKIE_WAIT and a.hs.attempt == 0:
                a.hs.due = now_ms
            a.send_set(now_ms)
            self.touch(a)

    def uplink_down(self, name, now_ms):
        if name not in self.uplinks:
            raise ValueError("no uplink %r" % name)
        self._drop_uplink(name, now_ms)
        for a in self.by_peer.values():
            a.send_set(now_ms)
            self.touch(a)

    def _drop_uplink(self, name, now):
        u = self.uplinks.pop(name)
        self._addrs = None
        for a in list(self.by_peer.values()):
            a.remove_paths(lambda p: p.uplink is u, now)
            self.touch(a)

    # ---- associations ---------------------------------------------------------------

    def connect(self, peer, now_ms, addrs=None):
        """Start an association with a configured peer (at addrs, or its configured addresses)."""
        if peer not in self.cfg["peers"]:
            raise ValueError("unknown peer %r: add it under peers.%s" % (peer, peer))
        if addrs is None:  # its configured addresses
            pc = self.cfg["peers"][peer]
            addrs = []
            for x in pc["addresses"]:
                host, port = parse_addr(x, pc["port"])
                addrs.append((canonical(host), port))
        else:
            addrs = [(canonical(h), int(p)) for h, p in addrs]
        if not addrs:
            raise ValueError("peers.%s.addresses is empty: give addresses (or resolve its dns name)" % peer)
        self._connect_addrs[peer] = addrs
        a = self.by_peer.get(peer)
        if a is not None:
            return
        a = Association(self, peer, self.new_label(), True, now_ms)
        self.assocs[a.label] = a
        self.by_peer[peer] = a
        a.handshake_timer(now_ms)
        self.touch(a)

    def add_peer_addresses(self, peer, addrs, now_ms):
        """Addresses of a peer learnt out of band (presence, DNS), e.g. after both ends
        moved: (ip, port), ranked unknown until the peer's SET says more. New ones are probed
        like advertised ones and carry nothing until a challenge is answered on them; known
        ones that failed are probed again at once. -> how many were new."""
        a = self.by_peer.get(peer)
        if a is None or a.state != ESTABLISHED:
            return 0
        n = 0
        for x in addrs[: wire.MAX_ADDRS]:
            addr = (canonical(x[0]), int(x[1]))
            if addr not in a.remotes and len(a.remotes) < wire.MAX_ADDRS + 4:
                a.add_remote(addr, policy.RANK_UNKNOWN, 0, True, now_ms)  # probed as if advertised
                a.credit += 55  # one PROBE's worth: the out-of-band source vouches for it
                n += 1
            r = a.remotes.get(addr)
            if r is not None:
                for p in r.paths.values():
                    a.revive(p, now_ms)
        self.touch(a)
        return n

    def association(self, peer=None):
        if peer is None:  # the (first) one: a board usually has one peer
            for k in self.by_peer:  # (iterating keys allocates nothing on MicroPython)
                return self.by_peer[k]
            return None
        return self.by_peer.get(peer)

    def send_data(self, payload, now_ms, peer=None, ip=False):
        """Send one datagram (or IP packet) to the peer. True if it went out."""
        if len(payload) > wire.MAX_PAYLOAD:
            raise ValueError("payload of %d bytes is larger than MAST's maximum of %d (a packet "
                             "is at most %d bytes)" % (len(payload), wire.MAX_PAYLOAD, wire.MAX_PACKET))
        a = self.association() if peer is None else self.by_peer.get(peer)
        if a is None or a.state != ESTABLISHED:
            if a is None and peer is not None and peer not in self.cfg["peers"]:
                raise ValueError("unknown peer %r" % peer)
            self.count("tx_no_association")
            return False
        self.touch(a)
        return a.send_data(payload, ip, now_ms)

    def close(self, now_ms, peer=None):
        """Graceful 3-way SHUT of one association (or all)."""
        for a in list(self.by_peer.values()):
            if peer is None or a.peer == peer:
                a.shut(now_ms)
                self.touch(a)

    # ---- input ------------------------------------------------------------------------

    def receive(self, uplink, addr, data, now_ms):
        """One datagram from addr ((ip, port)) on uplink. Never raises for what the
        peer sent: every drop is counted by reason (docs/PROTOCOL.md section 7)."""
        self.count("rx")
        try:
            reason = self._receive(uplink, addr, data, now_ms)
        except (ValueError, IndexError, KeyError):  # a malformed body
            reason = "malformed"
        except MemoryError:  # a full heap: this packet is lost, the endpoint lives on
            reason = "no_memory"
        except Exception as e:  # a bug: never let peer input raise out of the core
            reason = "internal_error"
            self.last_error = repr(e)
        self.count(reason or "accepted")

    def _receive(self, uplink, src, pkt, now):
        u = self.uplinks.get(uplink)
        if u is None:
            return "no_uplink"
        if (":" in src[0]) != (":" in u.addr[0]):  # (addr.family) no path joins the two
            return "wrong_family"  # (a relay uplink hands over the relay header's source)
        h = self._hdr
        try:
            body = wire.parse(pkt, h)
        except ValueError as e:
            return "bad_" + str(e)
        ptype, label, seq = h[0], h[1], h[2]
        if ptype == wire.INIT or ptype == wire.COOKIE_ECHO:  # the responder's handshake:
            from . import responder  # loaded at the first INIT or COOKIE-ECHO, and kept

            if ptype == wire.INIT:
                return responder.on_init(self, u, src, pkt, body, now)
            return responder.on_cookie_echo(self, u, src, pkt, label, seq, body,
                                            self.assocs.get(label), now)
        a = self.assocs.get(label)
        if a is None:
            return "unknown_label"
        self.touch(a)
        if ptype == wire.INIT_ACK:
            return a.on_init_ack(u, src, pkt, body, now)
        return a.receive(u, src, ptype, seq, pkt, body, now)

    # ---- output and timers --------------------------------------------------------------

    def direct_send(self, fn, reserve=0):
        """Hand each packet to fn(uplink, (ip, port), packet) as it is made, instead of
        queueing it for datagrams_to_send (None: queue again). The packet is valid during
        the call only, and fn must not make any endpoint send (copy the packet to keep it
        or to deliver it later): on MicroPython every packet is sealed in one reused buffer,
        one for the whole process, so sending allocates no packet (boards; the runtime
        sends this way). reserve: make that buffer this large now, while the heap is in
        one piece, so a packet of that size later needs no new block."""
        self.on_send = fn
        if fn is not None and reserve and not wire.FAST_C:
            _grow(reserve)

    def emit(self, uplink, addr, pkt):
        """A packet goes out: to on_send at once, or queued for datagrams_to_send."""
        if self.on_send is not None:
            self.on_send(uplink, addr, pkt)
        else:
            self.out.append((uplink, addr, pkt))

    def seal(self, mac, ptype, label, seq, body):
        """wire.seal; with direct_send on MicroPython, into the shared buffer: the packet
        is then a memoryview of it, valid until the next packet is sealed. The buffer is
        as large as the largest packet yet, in steps of _TX_STEP bytes (at most
        MAX_PACKET): a board that sends small packets keeps a small one."""
        global _views
        if self.on_send is None or wire.FAST_C:
            return wire.seal(mac, ptype, label, seq, body)
        n = wire.OVERHEAD + len(body)
        if _txbuf is None or len(_txbuf) < n:
            _grow(n)  # (past MAX_PACKET: wire.seal says it does not fit)
        n = wire.seal(mac, ptype, label, seq, body, None, _txbuf)
        v = _views.get(n)  # a view per length, kept: in steady state no new object
        if v is None:
            if len(_views) >= 8:
                _views = {}
            v = _views[n] = memoryview(_txbuf)[:n]
        return v

    def datagrams_to_send(self):
        """The packets queued since the last call: [(uplink, (ip, port), packet)]. When
        there are none, the (empty) queue itself: iterate it, do not keep it."""
        out = self.out
        if out:
            self.out = []
        return out

    def next_event(self):
        ev = self.events  # (read by index: pop(0) costs the length of a long backlog)
        i = self._ev_next
        if i >= len(ev):
            self._ev_next = 0  # (also if someone replaced the list)
            return None
        e = ev[i]
        if i + 1 == len(ev):
            ev.clear()
            self._ev_next = 0
        else:
            ev[i] = None
            self._ev_next = i + 1
        return e

    def touch(self, a):
        """Something changed a's timers: its deadline is computed again before the next
        next_timer()/handle_timer()."""
        if not a.dirty:
            self._dirty.append(a)  # (first: a full heap raises here, nothing changed)
            a.dirty = True

    def _settle(self):
        # A MemoryError (a board's full heap) may come from any allocation here: each step
        # allocates before it changes anything, so no timer is lost; the caller tries again
        dirty = self._dirty
        if not dirty:
            return
        heap = self._heap
        for a in dirty:
            d = a.next_timer()
            if d is not None and (a.queued is None or d < a.queued):
                # earlier than its entry: that entry made earlier in place if it is the first
                # (it stays first: a board's one association arms and disarms its feedback
                # timers with no new object), else a new one (the old one goes stale)
                if heap and heap[0][0] == a.queued and heap[0][1] == a.label:
                    heap[0][0] = d
                else:
                    heappush(heap, [d, a.label])
                a.queued = d
            a.due = d
            a.dirty = False
        dirty.clear()
        if len(heap) > 2 * len(self.assocs) + 16:  # too many stale entries: rebuild
            heap = []
            for a in self.assocs.values():
                if a.due is not None:
                    heap.append([a.due, a.label])
            heapify(heap)
            for a in self.assocs.values():
                a.queued = a.due
            self._heap = heap

    def next_timer(self):
        """The earliest deadline of any association, or None. O(log N): a heap of
        deadlines, entries that went stale dropped as they reach the top."""
        self._settle()
        heap = self._heap
        while heap:
            d, label = heap[0]
            a = self.assocs.get(label)
            if a is None or a.queued != d:
                heappop(heap)  # stale: forgotten, or superseded by an earlier entry
            elif a.due != d:  # its deadline moved later since: move the entry (the same
                e = heappop(heap)  # list at its new deadline: no new object)
                if a.due is not None:
                    e[0] = a.due
                    heappush(heap, e)  # (into the room the pop left: no allocation)
                a.queued = a.due
            else:
                return d
        return None

    def handle_timer(self, now_ms):
        """Run the timers that are due; the work is proportional to them, not to the
        number of associations."""
        self._settle()
        heap = self._heap
        due = self._due
        while heap and heap[0][0] <= now_ms:
            d, label = heap[0]
            a = self.assocs.get(label)
            if a is not None and a.queued == d:
                due.append(a)  # (first: see _settle)
                a.queued = None
            heappop(heap)
        for a in due:
            a.timer(now_ms)
            self.touch(a)
        due.clear()
