# The presence client, sans-IO (PRES/1, docs/PROTOCOL.md "Presence").
#
# Presence wraps a mast Endpoint and looks like one to the runtime, so the same loop
# (runtime.driver.Runtime, tests/core/simnet.py) drives both, over the same uplink
# sockets: a datagram whose first byte is PRES/1's version goes to the client, any
# other to the core. Sending from the MAST sockets means that the source the presence
# server observes (behind NAT too) is where the peer's MAST packets must go.
#
#   p = Presence(ep, key, home=[("192.0.2.53", 6279)], counter_base=wall_ms,
#                counter_store=store)   # optional: load() -> int or None; save(int)
#   p.watch("peer.example", dns="peer.example", connect=True)
#   p.start(now_ms)
#   rt = Runtime(p)            # instead of Runtime(ep); everything else is unchanged
#
# What it does:
# - REGISTER this host's complete address list (the core's addr_list()) at its home
#   servers, again at half the TTL and at once whenever an uplink comes, goes or moves;
# - SUBSCRIBE to every watched peer at the peer's server(s), so that a NOTIFY tells it
#   when the peer's set changes; again when our addresses change (the server then sends
#   NOTIFYs to where we are now);
# - while a watched peer's association is established but has no usable path (its
#   primary is None), LOOKUP the peer with backoff;
# - every record learnt goes to Endpoint.add_peer_addresses(): candidates that the core
#   probes and uses only once a challenge is answered on them. The association is the
#   same one (same nonces, no new INIT).
# - request counters keep growing across restarts: they follow counter_base (the wall
#   clock), and with a counter_store (a host without a real-time clock) also a floor that
#   is reserved ahead on the store, _COUNTER_BLOCK at a time: one write at start and one
#   per _COUNTER_BLOCK ms of counters, never one per request. After a reboot the counters
#   start above everything sent before, so the server does not refuse them as replays.
# - a watched peer named by DNS is resolved through the runtime's resolver (the only
#   I/O, injected: resolver(name, port) -> {"addresses": [...], "servers": [...]}); a peer
#   with `connect` is connected to once addresses are known (DNS or presence).
#
# Restricted Python: runs on MicroPython and CPython.

from mast.compat import const
from mast.addr import fmt
from . import msg
from runtime.note import Note

_ESTABLISHED = const(2)  # mast.assoc.ESTABLISHED (not imported: assoc is large)

# implementation defaults (not on the wire)
_REGISTER_TTL_S = const(120)
_SUBSCRIBE_TTL_S = const(300)
_RTO = const(1000)  # first retransmission of REGISTER / SUBSCRIBE, doubling...
_RTO_MAX = const(16000)  # ...up to this
_LOOKUP_MIN = const(500)  # during an outage: LOOKUP at once, then after this, doubling...
_LOOKUP_MAX = const(8000)  # ...up to this
_REFUSED_RETRY = const(60000)  # a SUBSCRIBE answered with ttl 0 (unknown name, full)
_RESOLVE_MIN = const(2000)  # a DNS failure: retry after this, doubling...
_RESOLVE_MAX = const(60000)  # ...up to this
_RESOLVE_EVERY = const(600000)  # a resolved name is resolved again this often
_MAX_SERVERS = const(4)  # presence servers a peer is subscribed at, at most
_CONNECT_EVERY = const(2000)  # a `connect` peer without an association: connect() this often
_PENDING_MAX = const(32)  # unanswered requests remembered
_COUNTER_BLOCK = const(3600000)  # counters reserved on the counter_store at a time (1 h of clock)
_NOTES_MAX = const(64)


def _usable(addr):
    return addr[1] != 0 and addr[0] != "0.0.0.0" and addr[0] != "::"


class Task:
    """A REGISTER or SUBSCRIBE kept alive at one server: sent until answered, then
    refreshed at half the granted TTL. A LOOKUP is a Task that is never re-armed."""

    def __init__(self, kind, server, target=None):
        self.kind = kind
        self.server = server
        self.target = target
        self.due = None
        self.attempt = 0
        self.counters = []  # of the sends not answered yet
        self.granted = None  # the TTL the last answer granted
        self.observed = None  # REGISTER-ACK: where the server saw us
        self.answered = None  # when


class Watch:
    """A peer we follow: where to look it up and what we learnt."""

    def __init__(self, peer, dns, servers, connect, port):
        self.peer = peer
        self.dns = dns
        self.port = port
        self.servers = list(servers or ())  # configured for this peer
        self.connect = connect
        self.resolve_due = None
        self.resolve_backoff = _RESOLVE_MIN
        self.resolved = None  # "srv", "a" or None
        self.dns_addrs = []
        self.record = None  # candidate addresses of the last record; None: none heard yet
        self.outage = False
        self.lookup_due = None
        self.lookup_backoff = _LOOKUP_MIN
        self.connect_due = None


class Presence:
    def __init__(self, ep, key, home=(), ttl=_REGISTER_TTL_S, counter_base=0, resolver=None,
                 sub_ttl=_SUBSCRIBE_TTL_S, counter_store=None):
        """ep: the mast Endpoint; key: the 32-byte key this host's name shares with its
        presence servers (None: no presence, only peers' DNS names); home: servers
        (ip, port) to register at, also where a peer without its own server is looked
        up; counter_base: the counter at start (the wall clock in ms, so that counters
        keep growing across restarts); counter_store: where a host without a real-time
        clock keeps its counter floor (load() -> int or None, save(int); OSError or
        ValueError on failure, counted as counter_store_error)."""
        self.ep = ep
        self.name = ep.name
        self.up = self.down = None  # no key: DNS names only (resolve, connect), no presence
        if key is not None:
            self.up, self.down = msg.keys(key, ep.name)
        self.home = list(home) if key is not None else []
        self.home_w = None  # our own name, its SRV giving home (home_from)
        self.ttl = ttl
        self.sub_ttl = sub_ttl
        self.base = counter_base
        self.resolver = resolver
        self.clock = None  # () -> ms: read after a lookup (rendezvous.start sets the runtime's)
        self.start_ms = None
        self.counter = 0
        self.peers = {}  # peer -> Watch
        self.tasks = []  # REGISTER and SUBSCRIBE tasks
        self.pending = {}  # counter -> Task
        self.floors = {}  # server -> NOTIFY counter floor (from SUBSCRIBE-ACK)
        self._out = []  # not `out`: that is the core's
        self.notes = []
        self.presence_counters = {}  # not `counters`: that is the core's (status)
        self.store = counter_store
        self.reserved = 0  # counters up to this are reserved on the store
        if counter_store is not None:
            try:
                floor = counter_store.load()
            except (OSError, ValueError):
                floor = None
                self._count("counter_store_error")
            if floor:
                self.counter = self.reserved = floor

    # ---- setup ------------------------------------------------------------------------

    def watch(self, peer, dns=None, servers=None, connect=False, port=6278):
        """Follow a configured peer: look it up at servers (else at the servers its DNS
        name gives, else at home), and connect to it if connect."""
        w = Watch(peer, dns, servers, connect, port)
        self.peers[peer] = w
        if self.start_ms is not None:
            self._arm(w, self.start_ms)
        return w

    def home_from(self, name):
        """No server configured: this host's presence servers are its name's SRV record,
        resolved as a watched peer's name is (again after a failure, backing off: DNS may
        come up after us, a board's modem still dialling; and every _RESOLVE_EVERY)."""
        self.home_w = Watch(None, name, None, False, 6278)
        if self.start_ms is not None:
            self.home_w.resolve_due = self.start_ms

    def _set_home(self, servers, now):
        if servers == self.home:
            return
        self.home = servers
        self.tasks = [t for t in self.tasks if t.kind != msg.REGISTER or t.server in servers]
        have = [t.server for t in self.tasks if t.kind == msg.REGISTER]
        for server in servers:
            if server not in have:
                t = Task(msg.REGISTER, server)
                t.due = now
                self.tasks.append(t)
        for w in self.peers.values():  # the peers looked up at home
            if w.dns is None and not w.servers:
                self._subscribe_all(w, servers, now)
        self.note("presence_home", servers=[fmt(x) for x in servers])

    def start(self, now):
        self.start_ms = now
        if self.home_w is not None:
            self.home_w.resolve_due = now
        for server in self.home:
            t = Task(msg.REGISTER, server)
            t.due = now
            self.tasks.append(t)
        for w in self.peers.values():
            self._arm(w, now)
        self._tick(now)

    def _arm(self, w, now):
        if w.dns is not None:
            w.resolve_due = now
        elif self.up is not None:
            self._subscribe_all(w, w.servers or self.home, now)
        w.connect_due = now if w.connect else None

    def _subscribe_all(self, w, servers, now):
        """w's subscriptions: one at each of servers (the first _MAX_SERVERS), none elsewhere
        (a server a new DNS answer no longer names is dropped: tasks stay bounded, P.10)."""
        servers = servers[:_MAX_SERVERS]
        self.tasks = [t for t in self.tasks
                      if not (t.kind == msg.SUBSCRIBE and t.target == w.peer and t.server not in servers)]
        for server in servers:
            found = False
            for t in self.tasks:
                if t.kind == msg.SUBSCRIBE and t.target == w.peer and t.server == server:
                    found = True
            if not found:
                t = Task(msg.SUBSCRIBE, server, w.peer)
                t.due = now
                self.tasks.append(t)
        # the NOTIFY floor of a server no subscription is at any more goes too (a DNS answer
        # that names new servers each time left one for each, for good); its NOTIFYs are then
        # unknown_server, and a new SUBSCRIBE-ACK from it gives a floor again (P.6)
        at = [t.server for t in self.tasks if t.kind == msg.SUBSCRIBE]
        for server in list(self.floors):
            if server not in at:
                del self.floors[server]

    def servers_of(self, w):
        out = []
        for t in self.tasks:
            if t.kind == msg.SUBSCRIBE and t.target == w.peer:
                out.append(t.server)
        return out

    # ---- the Endpoint's face: what the runtime calls ----------------------------------

    def __getattr__(self, name):  # everything else is the core's
        return getattr(self.ep, name)

    def receive(self, uplink, addr, data, now):
        if len(data) and data[0] == msg.VERSION:
            self._count("rx")
            if self.start_ms is None or self.up is None:
                self._count("not_started" if self.up is not None else "no_key")
                return
            try:
                reason = self._receive(uplink, (addr[0], addr[1]), data, now)
            except (ValueError, IndexError, KeyError):
                reason = "malformed"
            except MemoryError:
                raise
            except Exception:  # a bug: peer input never raises out of here
                reason = "internal_error"
            self._count(reason or "accepted")
        else:
            self.ep.receive(uplink, addr, data, now)
        self._paths(now)

    def datagrams_to_send(self):
        out = self.ep.datagrams_to_send()
        if self._out:
            out = out + self._out
            self._out = []
        return out

    def next_event(self):
        e = self.ep.next_event()
        if e is None and self.notes:
            e = self.notes.pop(0)
        return e

    def next_timer(self):
        t = self.ep.next_timer()
        p = self._next_due()
        if p is not None and (t is None or p < t):
            t = p
        return t

    def handle_timer(self, now):
        self.ep.handle_timer(now)
        self._paths(now)
        self._tick(now)

    def uplink_up(self, name, addr, now, priority=None, cost=None):
        self.ep.uplink_up(name, addr, now, priority, cost)
        self._moved(now)

    def uplink_down(self, name, now):
        self.ep.uplink_down(name, now)
        self._moved(now)

    # ---- helpers ------------------------------------------------------------------------

    def _count(self, reason):
        c = self.presence_counters
        c[reason] = c.get(reason, 0) + 1

    def note(self, kind, **fields):
        if len(self.notes) >= _NOTES_MAX:
            self.notes.pop(0)
        self.notes.append(Note(kind, **fields))

    def _next_counter(self, now):
        c = self.base + (now - self.start_ms)
        if c <= self.counter:
            c = self.counter + 1
        if self.store is not None and c > self.reserved:
            try:  # reserve the next block before a counter of it leaves
                self.store.save(c + _COUNTER_BLOCK)
                self.reserved = c + _COUNTER_BLOCK
            except (OSError, ValueError):
                self._count("counter_store_error")  # sent anyway; tried again next time
        self.counter = c
        return c

    def _uplink_for(self, server, attempt, prefer=None):
        """The uplink to send to server from: `prefer` if it is up, else the best of the
        server's family, the next one on each retransmission."""
        ups = self.ep.uplinks
        if prefer is not None and prefer in ups:
            return ups[prefer]
        v6 = ":" in server[0]
        cands = [u for u in ups.values() if (":" in u.addr[0]) == v6]
        if not cands:
            return None
        cands.sort(key=lambda u: (u.priority, u.cost, u.name))
        return cands[attempt % len(cands)]

    def _send(self, server, ptype, body, now, attempt=0, prefer=None):
        """Seal and queue a request; its counter, or None if no uplink can reach server."""
        u = self._uplink_for(server, attempt, prefer)
        if u is None:
            self._count("tx_no_uplink")
            return None
        c = self._next_counter(now)
        self._out.append((u.name, server, msg.seal(self.up, ptype, c, self.name, body)))
        return c

    def _my_addrs(self):
        out = []
        for a, prio, cost in self.ep.addr_list():
            if _usable(a) and len(out) < 16:
                out.append((a, prio, cost))
        return out

    # ---- timers -------------------------------------------------------------------------

    def _next_due(self):
        if self.start_ms is None:
            return None
        t = None
        for task in self.tasks:
            if task.due is not None and (t is None or task.due < t):
                t = task.due
        for w in self.peers.values():
            for x in (w.resolve_due, w.lookup_due if w.outage else None, w.connect_due):
                if x is not None and (t is None or x < t):
                    t = x
        h = self.home_w
        if h is not None and h.resolve_due is not None and (t is None or h.resolve_due < t):
            t = h.resolve_due
        return t

    def _tick(self, now):
        if self.start_ms is None:
            return
        h = self.home_w
        if h is not None and h.resolve_due is not None and h.resolve_due <= now:
            self._resolve(h, now)
        for w in self.peers.values():
            if w.resolve_due is not None and w.resolve_due <= now:
                self._resolve(w, now)
            if w.connect_due is not None and w.connect_due <= now:
                self._connect(w, now)
            if w.outage and w.lookup_due is not None and w.lookup_due <= now:
                self._lookup(w, now)
        for t in self.tasks:
            if t.due is not None and t.due <= now:
                self._send_task(t, now)

    def _send_task(self, t, now):
        if t.kind == msg.REGISTER:
            body = msg.enc_register(self.ttl, self._my_addrs())
        else:
            body = msg.enc_subscribe(self.sub_ttl, t.target)
        c = self._send(t.server, t.kind, body, now, t.attempt)
        if c is None:
            t.due = None  # no uplink: _moved() re-arms it when one comes
            return
        self._remember(c, t)
        t.due = now + min(_RTO << min(t.attempt, 5), _RTO_MAX)
        t.attempt += 1

    def _remember(self, c, t):
        t.counters.append(c)
        if len(t.counters) > 4:
            self.pending.pop(t.counters.pop(0), None)
        self.pending[c] = t
        if len(self.pending) > _PENDING_MAX:
            oldest = min(self.pending)
            old = self.pending.pop(oldest)
            if oldest in old.counters:
                old.counters.remove(oldest)

    def _lookup(self, w, now):
        if self.up is None:
            w.lookup_due = None
            return
        for server in self.servers_of(w) or w.servers or self.home:
            t = Task(msg.LOOKUP, server, w.peer)
            c = self._send(server, msg.LOOKUP, msg.enc_lookup(w.peer), now)
            if c is not None:
                self._remember(c, t)
        w.lookup_due = now + w.lookup_backoff
        w.lookup_backoff = min(w.lookup_backoff * 2, _LOOKUP_MAX)

    def _moved(self, now):
        """Our addresses changed: register and subscribe again at once (from where we are
        now), and look up peers in an outage at once."""
        if self.start_ms is None:
            return
        for t in self.tasks:
            t.due = now
            t.attempt = 0
            for c in t.counters:  # an answer to what we sent from before is stale now
                self.pending.pop(c, None)
            t.counters = []
        for w in self.peers.values():
            if w.outage:
                w.lookup_due = now
                w.lookup_backoff = _LOOKUP_MIN

    def _paths(self, now):
        """Watch the associations: a peer whose association is established but has no
        usable path is in an outage, and is looked up until it has one again."""
        if self.start_ms is None:
            return
        for w in self.peers.values():
            a = self.ep.association(w.peer)
            if a is None and w.connect and w.connect_due is None:
                w.connect_due = now  # closed (or never made): connect again
            out = a is not None and a.state == _ESTABLISHED and a.primary is None
            if out and not w.outage:
                w.outage = True
                w.lookup_due = now
                w.lookup_backoff = _LOOKUP_MIN
                self.note("presence_outage", peer=w.peer)
            elif not out and w.outage:
                w.outage = False
                w.lookup_due = None

    def _resolve(self, w, now):
        try:
            r = self.resolver(w.dns, w.port)
        except Exception as e:  # the resolver's I/O failed: try again later
            now = self._after(now)
            wait = getattr(e, "retry_ms", None)
            if wait is not None:  # not failed: under way (a resolver that works in the background)
                w.resolve_due = now + wait
                return
            w.resolve_due = now + w.resolve_backoff
            w.resolve_backoff = min(w.resolve_backoff * 2, _RESOLVE_MAX)
            self.note("presence_resolve_failed", peer=w.peer, dns=w.dns, error=str(e))
            return
        now = self._after(now)
        w.resolve_due = now + _RESOLVE_EVERY
        w.resolve_backoff = _RESOLVE_MIN
        if w is self.home_w:
            self._set_home(list(r.get("servers") or ())[:_MAX_SERVERS], now)
            return
        w.dns_addrs = [a for a in r.get("addresses", ()) if _usable(a)]
        servers = list(r.get("servers") or ())
        how = "srv"
        if not servers:  # no SRV record: the configured server, else the name's own addresses
            how = "config" if (w.servers or self.home) else "a"
            servers = w.servers or self.home or [(a[0], msg.DEFAULT_PORT) for a in w.dns_addrs]
        w.resolved = how
        if self.up is not None:
            self._subscribe_all(w, servers, now)
        self.note("presence_resolved", peer=w.peer, dns=w.dns, how=how,
                  addresses=[fmt(a) for a in w.dns_addrs], servers=[fmt(s) for s in servers])
        if w.connect:
            self._connect(w, now)

    def _after(self, now):
        """The time once a lookup has returned: a blocking one (getaddrinfo, MicroPython's
        only way) may have taken seconds, and a retry counted from before it came due as it
        ended (two failed lookups back to back, the loop standing still for both)."""
        return now if self.clock is None else self.clock()

    def _connect(self, w, now):
        if self.ep.association(w.peer) is not None:
            w.connect_due = None  # _paths() re-arms it if the association ever goes
            return
        w.connect_due = now + _CONNECT_EVERY
        addrs = []
        for a in (w.record or []) + w.dns_addrs:
            if a not in addrs:
                addrs.append(a)
        if addrs:
            self.ep.connect(w.peer, now, addrs)

    # ---- input --------------------------------------------------------------------------

    def _receive(self, uplink, src, pkt, now):
        ptype, counter, name, body = msg.parse(pkt)
        if msg.is_up(ptype):
            return "bad_type"  # a request: we are not a server
        if name != self.name:
            return "wrong_name"
        if not msg.verify(self.down, pkt):
            return "mac"
        if ptype == msg.NOTIFY:
            floor = self.floors.get(src)
            if floor is None:
                return "unknown_server"  # no SUBSCRIBE-ACK from there: no floor to check
            if counter <= floor:
                return "replay"
            rec = msg.dec_record_only(body)
            self.floors[src] = counter
            self._send(src, msg.NOTIFY_ACK, msg.enc_notify_ack(counter, rec[1]), now, 0, uplink)
            return self._learn(rec, src, "notify", now)
        t = self.pending.get(counter)
        if t is None or ptype != t.kind + 1:
            return "unexpected"  # not the answer to a request of ours (stale or replayed)
        for c in t.counters:
            self.pending.pop(c, None)
        t.counters = []
        t.attempt = 0
        t.answered = now
        if ptype == msg.REGISTER_ACK:
            ttl, observed = msg.dec_register_ack(body)
            if (ttl, observed) != (t.granted, t.observed):  # news only: not every refresh
                self.note("presence_registered", server=fmt(src), ttl=ttl,
                          observed=fmt(observed) if observed else None)
            t.granted, t.observed = ttl, observed
            t.due = now + ttl * 500 if ttl else None
            return None
        if ptype == msg.LOOKUP_ACK:
            rec = msg.dec_record_only(body)
            if rec[1] != t.target:
                return "unexpected"
            return self._learn(rec, src, "lookup", now)
        ttl, floor, rec = msg.dec_subscribe_ack(body)
        if rec[1] != t.target:
            return "unexpected"
        t.granted = ttl
        t.due = now + (ttl * 500 if ttl else _REFUSED_RETRY)
        if floor < self.floors.get(src, 0):
            # older than a NOTIFY taken since (held back on the path): its record is older too,
            # and the floor never goes down, or that NOTIFY could be taken again (P.6)
            return None
        self.floors[src] = floor
        return self._learn(rec, src, "subscribe", now)

    def _learn(self, rec, server, via, now):
        status, target, ttl, observed, addrs = rec
        w = self.peers.get(target)
        if w is None:
            return "not_watched"
        if status != msg.REGISTERED:
            if w.record != []:  # news only
                self.note("presence_peer", peer=target, via=via, server=fmt(server),
                          status="absent" if status == msg.ABSENT else "unknown", addresses=[], new=0)
            w.record = []
            return None
        cands = []
        for a, _, _ in addrs:
            if _usable(a) and a not in cands:
                cands.append(a)
        if observed is not None and _usable(observed) and observed not in cands:
            cands.append(observed)
        changed = cands != w.record
        w.record = cands
        new = 0
        a = self.ep.association(target)
        if a is not None and a.state == _ESTABLISHED:
            new = self.ep.add_peer_addresses(target, cands, now)
        elif a is None and w.connect:
            self._connect(w, now)
        if changed or new:  # news only: not every refresh
            self.note("presence_peer", peer=target, via=via, server=fmt(server), status="registered",
                      addresses=[fmt(x) for x in cands], new=new)
        return None
