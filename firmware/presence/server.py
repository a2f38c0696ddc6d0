# The presence server, sans-IO (PRES/1, docs/PROTOCOL.md "Presence").
#
#   srv = Server({"board1.example": key32, ...}, notify_base=wall_ms)
#   srv.receive(("198.51.100.7", 6278), datagram, now_ms)
#   for dst, datagram in srv.datagrams_to_send(): ...
#   srv.next_timer() -> ms or None;  srv.handle_timer(now_ms);  srv.next_event()
#
# Names are not first-come-first-served: only the configured names are served,
# each with its own key. A request is acted on only if, in this order, it parses,
# its name is served, its tag verifies under the name's k_up, its counter is
# greater than the last one accepted from that name, and the name is within its
# rate. Anything else is dropped, counted in .counters, and never answered.
# Every answer goes to the source of the request it answers; NOTIFY goes to the
# subscriber's contact (the source of its latest accepted request).
#
# Denial of service. Source addresses can be spoofed, so no limit here is keyed by
# one: a flood from many (or from a victim's) addresses would drain it for the
# legitimate hosts behind them. What tells a host from a flood is its name's key,
# and checking that costs one HMAC (a few microseconds on CPython: cheaper than
# receiving the datagram), so every well-formed request for a served name is
# checked, and the rate limit is per *name*, spent only by requests that carry the
# name's tag and a fresh counter. Only the key's holder can spend a name's budget;
# an unauthenticated packet costs a parse and at most one HMAC, keeps no state and
# is never answered (docs/PROTOCOL.md, P.8, P.10).
#
# Restricted Python: runs on MicroPython and CPython.

from mast.compat import const
from mast.addr import fmt
from . import msg
from runtime.note import Note

# implementation defaults (not on the wire)
_MAX_TTL_S = const(3600)  # longest registration granted
_SUB_TTL_MAX_S = const(3600)  # longest subscription granted
_MAX_SUBS = const(32)  # subscribers per name
_RATE = const(10)  # authenticated requests per second per name...
_BURST = const(20)  # ...with bursts of this many
_NOTIFY_RTO = const(1000)  # first NOTIFY retransmission, doubling...
_NOTIFY_TRIES = const(6)  # ...this many sends, then wait for the subscriber's next request
_EVENTS_MAX = const(64)


class Sub:
    """One subscription: `who` is told about changes of a name until `expires`."""

    def __init__(self, expires):
        self.expires = expires
        self.pending = False  # a change not yet acknowledged by NOTIFY-ACK
        self.first = 0  # the counters of that NOTIFY: the first sent...
        self.last = 0  # ...and the latest (each retransmission takes a new counter)
        self.due = None  # next (re)transmission; None: given up, or nothing pending
        self.tries = 0


class Name:
    """A served name: its keys, replay counter, contact, registration and subscribers."""

    def __init__(self, name, key):
        self.name = name
        self.up, self.down = msg.keys(key, name)
        self.last = -1  # highest counter accepted from this name
        self.contact = None  # where its latest accepted request came from
        self.addrs = None  # the registered list; None: not registered
        self.observed = None
        self.expires = 0
        self.subs = {}  # subscriber name -> Sub
        self.tokens = 0  # its rate bucket, tokens x 1000 (Server sets it full)...
        self.refill = 0  # ...as of this time


class Server:
    def __init__(self, names, notify_base=0, max_ttl=_MAX_TTL_S, rate=_RATE, burst=_BURST,
                 floors=None):
        """names: {name: 32-byte key}. notify_base: where NOTIFY counters start (the
        wall clock in ms, so that they grow across restarts). floors: {name: counter}
        restored from a state file, so that requests seen before a restart stay refused."""
        self.names = {}
        for n in names:
            self.names[n] = Name(n, names[n])
            self.names[n].tokens = burst * 1000
        # the floors of names not served now are kept and saved again (floors()): a name taken
        # out of the configuration and put back later, with the same key, still refuses every
        # request it sent before (P.6), not once more each
        self.kept = {}
        for n in floors or ():
            if n in self.names:
                self.names[n].last = floors[n]
            else:
                self.kept[n] = floors[n]
        self.max_ttl = max_ttl
        self.rate = rate
        self.burst = burst
        self.notify_ctr = notify_base
        self.out = []
        self.events = []
        self.counters = {}

    # ---- helpers ------------------------------------------------------------------

    def count(self, reason):
        self.counters[reason] = self.counters.get(reason, 0) + 1

    def note(self, kind, **fields):
        if len(self.events) >= _EVENTS_MAX:
            self.events.pop(0)
        self.events.append(Note(kind, **fields))

    def floors(self):
        """{name: highest counter accepted}: what a state file keeps across restarts (the
        names served now, and those a state file had that are not served now)."""
        out = dict(self.kept)
        for n in self.names.values():
            if n.last >= 0:
                out[n.name] = n.last
        return out

    def _allow(self, n, now):
        """Token bucket per served name; True if this request is within the rate. Only
        requests with the name's tag and a fresh counter get here: only its key's holder
        can spend it."""
        full = self.burst * 1000
        tokens = n.tokens
        if now > n.refill:  # a clock that steps back refills nothing
            tokens += (now - n.refill) * self.rate
            n.refill = now
        if tokens > full:
            tokens = full
        if tokens < 1000:
            n.tokens = tokens
            return False
        n.tokens = tokens - 1000
        return True

    def _record(self, target, now):
        n = self.names.get(target)
        if n is None:
            return msg.enc_record(msg.UNKNOWN, target)
        if n.addrs is None or n.expires <= now:
            return msg.enc_record(msg.ABSENT, target)
        ttl = (n.expires - now + 999) // 1000
        return msg.enc_record(msg.REGISTERED, target, min(ttl, 65535), n.observed, n.addrs)

    def _answer(self, n, dst, ptype, counter, body):
        self.out.append((dst, msg.seal(n.down, ptype, counter, n.name, body)))

    # ---- input --------------------------------------------------------------------

    def receive(self, src, data, now):
        """A datagram from src (ip, port). Never raises for anything the sender did."""
        self.count("rx")
        try:
            reason = self._receive(src, data, now)
        except (ValueError, IndexError, KeyError):
            reason = "malformed"
        except MemoryError:
            raise
        except Exception:  # a bug: peer input never raises out of the server
            reason = "internal_error"
        self.count(reason or "accepted")

    def _receive(self, src, pkt, now):
        try:
            ptype, counter, name, body = msg.parse(pkt)
        except ValueError as e:
            return "bad_" + str(e)
        if not msg.is_up(ptype):
            return "bad_type"
        n = self.names.get(name)
        if n is None:
            return "unknown_name"
        if not msg.verify(n.up, pkt):
            return "mac"
        if counter <= n.last:
            return "replay"
        if not self._allow(n, now):
            return "rate_limited"
        if ptype == msg.REGISTER:
            ttl, addrs = msg.dec_register(body)
            for (ip, port), _, _ in addrs:
                if ip == "0.0.0.0" or ip == "::":
                    return "bad_addresses"
        elif ptype == msg.LOOKUP:
            target = msg.dec_lookup(body)
        elif ptype == msg.SUBSCRIBE:
            ttl, target = msg.dec_subscribe(body)
        else:
            acked, target = msg.dec_notify_ack(body)
        # authenticated, fresh and well-formed: act
        n.last = counter
        moved = n.contact != src
        n.contact = src
        if ptype == msg.REGISTER:
            self._register(n, src, counter, ttl, addrs, now)
        elif ptype == msg.LOOKUP:
            self._answer(n, src, msg.LOOKUP_ACK, counter, self._record(target, now))
        elif ptype == msg.SUBSCRIBE:
            self._subscribe(n, src, counter, ttl, target, now)
        else:
            t = self.names.get(target)
            s = t.subs.get(n.name) if t is not None else None
            if s is not None and s.pending and s.first <= acked <= s.last:
                s.pending = False
                s.due = None
        if moved:
            self._contact_moved(n, now)
        return None

    def _register(self, n, src, counter, ttl, addrs, now):
        ttl = min(ttl, self.max_ttl)
        was = None if (n.addrs is None or n.expires <= now) else (n.addrs, n.observed)
        if ttl == 0:
            n.addrs = None
            n.observed = None
            if was is not None:
                self.note("withdrawn", name=n.name)
        else:
            n.addrs = addrs
            n.observed = src
            n.expires = now + ttl * 1000
        self._answer(n, src, msg.REGISTER_ACK, counter, msg.enc_register_ack(ttl, src))
        if ttl:
            self.note("registered", name=n.name, observed=fmt(src), ttl=ttl,
                      addresses=[fmt(a) for a, _, _ in addrs])
        now_is = None if ttl == 0 else (n.addrs, n.observed)
        if now_is != was:
            self._changed(n, now)

    def _subscribe(self, n, src, counter, ttl, target, now):
        ttl = min(ttl, _SUB_TTL_MAX_S)
        t = self.names.get(target)
        if t is not None:
            if ttl == 0:
                t.subs.pop(n.name, None)
            else:
                s = t.subs.get(n.name)
                if s is None and len(t.subs) >= _MAX_SUBS:
                    self._expire_subs(t, now)
                if s is None and len(t.subs) >= _MAX_SUBS:
                    ttl = 0  # refused: too many subscribers
                    self.count("subs_full")
                else:
                    if s is None:
                        s = Sub(0)
                        t.subs[n.name] = s
                    s.expires = now + ttl * 1000
                    s.pending = False  # the answer carries the current record
                    s.due = None
        else:
            ttl = 0
        self._answer(n, src, msg.SUBSCRIBE_ACK, counter,
                     msg.enc_subscribe_ack(ttl, self.notify_ctr, self._record(target, now)))

    # ---- notifications ------------------------------------------------------------

    def _changed(self, t, now):
        """t's record changed: every live subscriber gets a NOTIFY now."""
        self._expire_subs(t, now)
        for who in t.subs:
            s = t.subs[who]
            s.first = self.notify_ctr + 1
            s.pending = True
            s.tries = 0
            s.due = now
        self._send_notifies(t, now)

    def _contact_moved(self, n, now):
        """n sends from a new address: what it was not yet told goes there at once."""
        for t in self.names.values():
            s = t.subs.get(n.name)
            if s is not None and s.pending:
                s.tries = 0
                s.due = now
                self._send_notifies(t, now)

    def _send_notifies(self, t, now):
        rec = None
        for who in t.subs:
            s = t.subs[who]
            if not s.pending or s.due is None or s.due > now:
                continue
            w = self.names.get(who)
            if w is None or w.contact is None or s.tries >= _NOTIFY_TRIES:
                s.due = None  # given up until `who` sends from a new address (_contact_moved)
                continue
            if rec is None:
                rec = self._record(t.name, now)
            self.notify_ctr += 1
            s.last = self.notify_ctr
            s.due = now + (_NOTIFY_RTO << s.tries)
            s.tries += 1
            self.out.append((w.contact, msg.seal(w.down, msg.NOTIFY, s.last, w.name, rec)))
            self.count("notify_sent")

    def _expire_subs(self, t, now):
        for who in list(t.subs):
            if t.subs[who].expires <= now:
                del t.subs[who]

    # ---- timers -------------------------------------------------------------------

    def next_timer(self):
        t = None
        for n in self.names.values():
            if n.addrs is not None and (t is None or n.expires < t):
                t = n.expires
            for s in n.subs.values():
                x = s.due if (s.pending and s.due is not None) else s.expires
                if t is None or x < t:
                    t = x
        return t

    def handle_timer(self, now):
        for n in self.names.values():
            if n.addrs is not None and n.expires <= now:
                n.addrs = None
                n.observed = None
                self.note("expired", name=n.name)
                self._changed(n, now)
            self._expire_subs(n, now)
            self._send_notifies(n, now)

    # ---- output -------------------------------------------------------------------

    def datagrams_to_send(self):
        out = self.out
        self.out = []
        return out

    def next_event(self):
        return self.events.pop(0) if self.events else None
