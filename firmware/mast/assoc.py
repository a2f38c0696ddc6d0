# One MAST association: keys, sequence numbers, the peer's addresses, the paths
# to them, and the state machine. The endpoint (endpoint.py) owns the sockets'
# view: uplinks, demultiplexing by label, the stateless INIT/cookie exchange,
# and the timer queue (it asks an association for its next deadline only after
# something touched it).
# What each state does with each message type is one table, _TABLE, at the
# bottom of this file (docs/PROTOCOL.md section 7.1 prints it).

from .compat import SLOTS, const, struct
from . import wire, policy
from .policy import UNVERIFIED, ACTIVE, SUSPECT, FAILED, Path
from .replay import ReplayWindow
from .crypto import Mac, hkdf
from .addr import family, fmt
from .events import Event

COOKIE_WAIT = const(0)  # INIT sent, waiting for INIT-ACK
COOKIE_ECHOED = const(1)  # COOKIE-ECHO sent, waiting for COOKIE-ACK
ESTABLISHED = const(2)
SHUT_SENT = const(3)
SHUT_ACK_SENT = const(4)
CLOSED = const(5)  # lingering to answer a late SHUT-ACK, then forgotten
STATE_NAMES = ("cookie-wait", "cookie-echoed", "established", "shut-sent", "shut-ack-sent", "closed")

# What one peer can make us hold (implementation limits, docs/PROTOCOL.md 13):
_MAX_OBSERVED = const(4)  # source addresses learnt from packets, beside the <= 16 listed
_MAX_PATHS = const(24)  # (uplink, remote address) pairs
_CREDIT_MAX = const(1024)  # most bytes saved up for addresses not validated
_ECHO_TRIES = const(4)
_PROBE_LEN = const(55)  # a whole PROBE: header, 27-byte body, tag
_RING_MAX = const(576)  # resend ring: trimmed to policy.RESEND_MAX (512) when it passes this
_KA = bytearray(6)  # (reused) the body of a KEEPALIVE being sealed (seal copies it)


def serial_newer(a, b):
    """Serial number arithmetic (RFC 1982) on 32-bit numbers (TSNs, cookie stamps):
    is a after b?"""
    return 0 < ((a - b) & 0xFFFFFFFF) < 0x80000000


class Remote:
    """One address of the peer: advertised in INIT/SET and/or observed as a source."""

    if SLOTS:
        __slots__ = ("addr", "prio", "cost", "advertised", "validated", "paths")

    def __init__(self, addr, prio, cost, advertised):
        self.addr = addr
        self.prio = prio
        self.cost = cost
        self.advertised = advertised
        self.validated = False  # some path to it answered a challenge
        self.paths = {}  # our uplink's name -> Path (the same objects as Association.paths)


class Handshake:
    """The initiator's side of the handshake, until the association is up."""

    def __init__(self, now):
        self.attempt = 0  # INITs sent
        self.due = now
        self.path = None  # where the INIT-ACK came from: COOKIE-ECHO goes there
        self.tries = 0  # COOKIE-ECHOs sent
        self.sent = now
        self.cookie = None


# What most associations leave as it starts. On MicroPython these live on the class and an
# instance holds only what it changed: fewer than 30 names keep an instance's map at 29
# entries, not 37 (policy.Path does the same with its state).
_DEFAULTS = (
    ("hs", None),  # the initiator's handshake, until the association is up
    ("withdrawn", ()),  # addresses the peer's last list dropped (section 9)
    ("last_primary", None),
    ("req", None),  # [type, tsn, body, attempt, due]
    ("closed_at", None),
    ("err_sent", None),
)


class Association:
    if SLOTS:
        __slots__ = ("ep", "peer", "label", "peer_label", "initiator", "state", "nonce",
                     "peer_nonce", "tsn", "peer_tsn", "seq", "window", "tx_mac", "rx_mac", "remotes",
                     "peer_list", "withdrawn", "plist", "primary", "down_since", "outage_since",
                     "last_primary", "req", "hs",
                     "ring", "closed_at", "err_sent", "credit", "due", "queued", "dirty")

    def __init__(self, ep, peer, label, initiator, now):
        if SLOTS:
            for k, v in _DEFAULTS:
                setattr(self, k, v)
        self.ep = ep
        self.peer = peer
        self.label = label  # ours: the peer puts it in every packet to us
        self.peer_label = 0
        self.initiator = initiator
        self.state = COOKIE_WAIT
        self.nonce = ep.random(wire.NONCE_LEN)
        self.peer_nonce = None
        self.tsn = int.from_bytes(ep.random(4), "big")
        self.peer_tsn = 0
        self.seq = 1
        self.window = ReplayWindow(ep.window_size)
        self.tx_mac = self.rx_mac = None
        self.remotes = {}
        self.peer_list = []  # the peer's last advertised list, in its order
        self.plist = []  # the same paths, as a list: iterating it allocates nothing (boards)
        self.primary = None
        self.down_since = now  # the primary last worked at (None while there is one)
        self.outage_since = now  # no usable path since
        if initiator:
            self.hs = Handshake(now)  # dropped once up
        self.ring = []  # (sent_ms, seq, packet) kept for resend_ms
        self.credit = 0  # anti-amplification budget toward addresses not validated
        self.due = None  # the next deadline, as last computed (endpoint's timer queue)
        self.queued = None  # the deadline of this association's live entry in that queue
        self.dirty = False  # touched since `due` was computed

    # ---- keys and sending ---------------------------------------------------

    def setup_keys(self, psk, nonce_i, nonce_r, label_i, label_r):
        okm = hkdf(nonce_i + nonce_r, psk, b"mast1 keys" + struct.pack(">II", label_i, label_r), 64)
        i2r, r2i = Mac(okm[:32]), Mac(okm[32:])
        self.tx_mac, self.rx_mac = (i2r, r2i) if self.initiator else (r2i, i2r)

    def send(self, path, ptype, body):
        seq = self.seq
        if seq > wire.SEQ_MAX:  # spent: nothing more under these keys (send_data closes at SEQ_MAX)
            return
        self.seq = seq + 1  # (first: a seq is never used twice, whatever emit raises)
        self.emit(path, self.ep.seal(self.tx_mac, ptype, self.peer_label, seq, body))

    def emit(self, path, pkt):
        r = self.remotes.get(path.raddr)
        if r is not None and not r.validated:
            # Not validated: only within the budget the peer's own packets earned
            # (section 9, anti-amplification).
            if self.credit < len(pkt):
                self.ep.count("tx_amplification_limit")
                return False
            self.credit -= len(pkt)
        path.tx += 1
        self.ep.emit(path.uplink.name, path.raddr, pkt)
        return True

    # ---- addresses and paths --------------------------------------------------

    @property
    def paths(self):
        """{(uplink name, (ip, port)): Path}, made when asked (status, tests): the paths
        live in plist and in each Remote's paths, not in a third table."""
        out = {}
        for p in self.plist:
            out[(p.uplink.name, p.raddr)] = p
        return out

    def add_remote(self, addr, prio, cost, advertised, now):
        r = Remote(addr, prio, cost, advertised)
        self.remotes[addr] = r
        for u in self.ep.uplinks.values():
            self.add_path(u, addr, now)
        return r

    def add_path(self, u, addr, now):
        r = self.remotes[addr]
        p = r.paths.get(u.name)
        if p is None and family(u.addr[0]) == family(addr[0]):
            if len(self.plist) >= _MAX_PATHS:
                self.ep.count("too_many_paths")
                return None
            p = Path(u, addr, now)
            r.paths[u.name] = p
            self.plist.append(p)
        return p

    def remove_paths(self, test, now):
        lost_primary = False
        keep = []  # a new list: a loop over the old one (timer) goes on safely
        for p in self.plist:
            if test(p):
                r = self.remotes.get(p.raddr)
                if r is not None:
                    r.paths.pop(p.uplink.name, None)
                if p is self.primary:
                    lost_primary = True
            else:
                keep.append(p)
        self.plist = keep
        if lost_primary:
            self.choose_primary(now)

    def remove_remote(self, addr, now):
        self.remotes.pop(addr, None)
        self.remove_paths(lambda p: p.raddr == addr, now)

    def apply_addrs(self, addrs, now):
        """The peer's complete list (INIT, SET or COOKIE-ACK) replaces what it advertised.
        What the previous list had and this one has not is `withdrawn` until the next list:
        packets from there are not taken as observed addresses again (section 9)."""
        new = {}
        for a, prio, cost in addrs:
            if a[0] != "0.0.0.0" and a[0] != "::":  # (unspecified: kept in the list for its index, never a remote)
                new[a] = (prio, cost)
        gone = []
        for a, _, _ in self.peer_list:
            if a not in new:
                gone.append(a)
        for a in list(self.remotes):
            r = self.remotes[a]
            if a in new:
                r.prio, r.cost = new.pop(a)
                r.advertised = True
            elif r.advertised:
                self.remove_remote(a, now)
        for a in new:
            self.add_remote(a, new[a][0], new[a][1], True, now)
        self.peer_list = addrs
        self.withdrawn = gone
        self.event("addresses_changed", [fmt(a) for a, _, _ in addrs])

    def learn(self, u, src, now, seq):
        """An authenticated packet arrived on uplink u from src: its path, or the reason
        (a str) it has none."""
        r = self.remotes.get(src)
        if r is None:
            if src in self.withdrawn and seq < self.window.highest:
                # (sent before the SET that withdrew src; the newest packet yet is from
                # after it: the peer is back at an address it had, section 9.3)
                return "withdrawn"
            if src[0] == "0.0.0.0" or src[0] == "::":  # (unspecified)
                return "bad_addresses"  # (no reply can go there)
            n = 0
            old = None
            t = 0
            for x in self.remotes.values():
                if not x.advertised:
                    n += 1
                    if self.primary is None or self.primary.raddr != x.addr:
                        k = 0  # when it last proved it works, on any path
                        for q in x.paths.values():
                            if q.last_ok is not None and q.last_ok > k:
                                k = q.last_ok
                        if old is None or k < t:
                            old, t = x, k
            if n >= _MAX_OBSERVED:
                # the source of a fresh authenticated packet is where the peer is now: the
                # observed address quiet longest goes (a NAT that rebinds every second left
                # its dead mappings here while the live one was refused), never the primary's
                self.remove_remote(old.addr, now)
            r = self.add_remote(src, policy.RANK_UNKNOWN, 0, False, now)
        p = r.paths.get(u.name)
        if p is None:
            p = self.add_path(u, src, now)
            if p is None:
                return "too_many_paths"
        p.rx += 1
        if p.state == FAILED:
            self.revive(p, now)  # the peer reaches us on it again
        return p

    def event(self, kind, *a):  # an event of this association's peer
        self.ep.events.append(Event(kind, self.peer, *a))

    def revive(self, p, now):
        """A failed path has news (the peer used it, presence names it): probe it
        now, not at the end of its backoff."""
        if p.state == FAILED and p.probe_due is not None and p.probe_due > now and not p.late:
            p.backoff = 0  # (no challenge is out while a probe is due later)
            p.probe_due = now

    def best(self, exclude=None):
        best = None
        bk = 0
        for p in self.plist:
            if p.state == ACTIVE and p is not exclude:
                k = policy.rank(p, self.remotes[p.raddr])
                if best is None or k < bk:
                    best, bk = p, k
        return best

    def choose_primary(self, now, failback=False, new=None):
        old = self.primary if self.primary is not None else self.last_primary
        if new is None:
            new = self.best()
        if new is None:
            if self.primary is not None:
                self.last_primary = self.primary
                self.down_since = self.primary.last_ok or now
                self.primary = None
                self.outage_since = now
            return
        if new is self.primary:
            return
        since = self.down_since if self.primary is None else (self.primary.last_ok or now)
        self.primary = new
        self.down_since = None
        new.unacked_until = None
        if self.state != ESTABLISHED:
            return
        self.event("failover", old.name if old else None, new.name,
                   max(0, now - (since if since is not None else now)), failback)
        if self.ep.resend_ms:
            # DATA the old primary's feedback does not cover, sent within resend_ms
            acked = old.fb_hi if old is not None else 0
            for t, seq, pkt in self.ring[-policy.RESEND_MAX :]:  # (send_data trims it in bulk)
                if t >= now - self.ep.resend_ms and seq > acked:
                    self.emit(new, pkt)
        if self.req is not None:
            self.req[4] = now  # a pending request goes out on the new primary at once

    def idle_exchange(self, p, now):
        """A probe on p answered, or the peer's probe arrived: if it came after an idle
        wait (not in the handshake or in a burst), the next idle probe may wait longer."""
        # (an active path has last_ok: 0 for None changes nothing below)
        last = max(p.last_ok or 0, p.peer_probe or 0)
        if p.state == ACTIVE and now - last >= self.ep.prof["probe"] // 2:
            p.idle_n += 1

    def path_ok(self, p, now):
        was = p.state
        if was == ACTIVE:
            self.idle_exchange(p, now)
        else:
            p.idle_n = 0
            # (after SUSPECT too: a failback wants `failback` ms without a miss; before the
            # state, so that a full heap below leaves no ACTIVE path without it)
            p.active_since = now
        p.state = ACTIVE
        if p.late:
            p.late = False
        p.unacked_until = None  # it answered: whatever was outstanding is not its fault
        p.lost = 0
        p.backoff = 0
        p.last_ok = now
        r = self.remotes[p.raddr]
        r.validated = True
        p.probe_due = now + self.idle(p, now)
        if was == UNVERIFIED or was == FAILED:
            self.event("path_up", p.name, p.srtt)
        if was == UNVERIFIED and not r.advertised:
            # a new observed address answered: the peer's NAT may have moved it (a rebinding).
            # Its other observed addresses on this uplink prove themselves with a probe or
            # fail, and the traffic moves to the new one (as QUIC does, RFC 9000 9.3), not
            # kept on a dead mapping until data sent there goes unanswered
            for x in self.remotes.values():
                q = x.paths.get(p.uplink.name)
                if q is not None and q.state == ACTIVE and q is not p and not x.advertised:
                    q.state = SUSPECT
                    q.probe_due = now
        if self.primary is None:
            self.choose_primary(now)

    def path_failed(self, p, now):
        p.state = FAILED
        p.active_since = None
        p.unacked_until = None
        p.idle_n = 0
        r = self.remotes[p.raddr]
        p.probe_due = now + policy.failed_backoff(p, self.ep.prof, r.validated)
        self.event("path_down", p.name)
        if p is self.primary:
            self.primary = None
            self.last_primary = p
            self.down_since = p.last_ok or now
            self.outage_since = now
            self.choose_primary(now)
        if not r.advertised:
            # an observed address (a NAT mapping) that no longer answers anywhere
            for q in r.paths.values():
                if q.state != FAILED:
                    return
            self.remove_remote(p.raddr, now)

    def idle(self, p, now):
        """How long an ACTIVE path may go unprobed: failback/2 if it may take the traffic back
        (the failback candidate, up for less than 2 x failback: a failback follows fresh
        answers, not one old one), else the idle interval."""
        f = self.ep.prof["failback"]
        if now - p.active_since < 2 * f and p is self.failback_candidate():
            return f // 2
        return policy.idle_probe_interval(p, self.remotes[p.raddr], self.ep.prof, self.ep.nat_refresh_ms)

    def probe(self, p, now, c=None):
        if not self.remotes[p.raddr].validated and self.credit < _PROBE_LEN:
            # no budget: wait as a failed path would (the peer's next packets earn more)
            self.ep.count("tx_amplification_limit")
            p.backoff += 1
            p.probe_due = now + policy.failed_backoff(p, self.ep.prof, False)
            return
        p.challenge = c or self.ep.random(wire.CHALLENGE_LEN)
        p.probe_sent = now
        p.probe_due = None
        lst = self.ep.addr_list()  # our uplink's index in our address list (255: none)
        i = 0
        while i < len(lst) and lst[i][0] != p.uplink.addr:
            i += 1
        self.send(p, wire.PROBE, wire.enc_probe(p.challenge, i if i < len(lst) else 255))

    # ---- handshake -----------------------------------------------------------

    def init_body(self):
        return wire.enc_init(self.label, self.nonce, self.tsn, self.ep.keying, self.ep.name, self.ep.addr_list())

    def handshake_timer(self, now):
        if self.state == COOKIE_ECHOED:
            if self.hs.tries < _ECHO_TRIES:  # 1 s, doubling, 4 tries (section 8.1)
                self.hs.tries += 1
                self.hs.sent = now
                self.send(self.hs.path, wire.COOKIE_ECHO, self.hs.cookie + self.init_body())
                self.hs.due = now + policy.request_rto(policy.RTO_INITIAL, self.hs.tries - 1)
                return
            self.state = COOKIE_WAIT  # the cookie may have gone stale: start again, with a
            self.nonce = self.ep.random(wire.NONCE_LEN)  # new nonce (no old INIT-ACK fits it)
            self.peer_nonce = None
        if self.hs.attempt > policy.INIT_RETRIES:
            self.close(now, "timeout")
            return
        pairs = []  # (uplink, peer address) pairs to try INIT on, best uplink first
        for addr in self.ep._connect_addrs.get(self.peer, ()):
            for u in self.ep.uplinks.values():
                if (":" in u.addr[0]) == (":" in addr[0]):
                    pairs.append((u, addr))
        pairs.sort(key=lambda p: (p[0].priority, p[0].cost, p[0].name))  # stable: address order kept
        if not pairs:  # no uplink yet: no attempt spent; uplink_up starts it
            self.hs.due = now + policy.RTO_INITIAL
            return
        u, addr = pairs[self.hs.attempt % len(pairs)]
        pkt = wire.seal(self.ep.init_mac(self.peer), wire.INIT, 0, 0, wire.pad_init(self.init_body()))
        self.ep.emit(u.name, addr, pkt)
        self.hs.due = now + policy.request_rto(policy.RTO_INITIAL, self.hs.attempt)
        self.hs.attempt += 1

    def on_init_ack(self, u, src, pkt, body, now):
        if self.state != COOKIE_WAIT:
            return "unexpected"
        if not wire.check(self.ep.init_mac(self.peer), pkt, body, self.nonce):
            return "mac"
        label_r, nonce_r, tsn_r, cookie = wire.dec_init_ack(body)
        p = self.learn(u, src, now, 0)
        if type(p) is str:
            return p
        self.setup_keys(self.ep.psk(self.peer), self.nonce, nonce_r, self.label, label_r)
        self.peer_label, self.peer_nonce, self.peer_tsn = label_r, nonce_r, tsn_r
        self.hs.cookie = cookie
        self.state = COOKIE_ECHOED
        self.hs.path = p
        # the tag binds our nonce: the responder got our INIT and answers from src
        self.remotes[src].validated = True
        self.hs.tries = 0
        self.handshake_timer(now)
        return None

    def start_responder(self, u, src, seq, pkt, nonce_i, nonce_r, tsn_i, tsn_r, label_i, addrs, rtt, now):
        self.nonce, self.peer_nonce = nonce_r, nonce_i
        self.tsn, self.peer_tsn, self.peer_label = tsn_r, tsn_i, label_i
        self.window.commit(seq)
        self.credit = 3 * len(pkt)  # the COOKIE-ECHO carries the list to validate
        # the handshake's path first, so no limit can refuse it
        r = self.add_remote(src, policy.RANK_UNKNOWN, 0, False, now)
        r.validated = True  # the cookie proved the peer receives there
        p = r.paths[u.name]
        p.rx += 1
        self.apply_addrs(addrs, now)
        p.rtt_sample(rtt)  # INIT-ACK (sent at the cookie's stamp) to COOKIE-ECHO
        self.establish(p, now)
        self.send(p, wire.COOKIE_ACK, wire.enc_addrs(self.ep.addr_list()))
        self.probe(p, now)  # an RTT sample, and NAT discovery from the PROBE-ACK

    def on_cookie_ack(self, p, body, now):
        addrs, off = wire.dec_addrs(body, 0)
        wire.check_end(body, off)
        self.apply_addrs(addrs, now)
        if self.hs.path in self.plist:  # (else an uplink flap removed it: the path p came on)
            p = self.hs.path
            if self.hs.tries == 1:  # Karn: no RTT sample from a retransmission
                p.rtt_sample(now - self.hs.sent)
        self.establish(p, now)
        self.probe(p, now)
        return None

    def establish(self, p, now):
        """The handshake validated p: the first path, and the primary."""
        self.state = ESTABLISHED
        self.hs = None  # (the initiator's handshake state: not needed any more)
        self.primary = p
        self.down_since = None
        self.event("association_up", p.name)
        self.path_ok(p, now)
        for q in self.plist:
            if q.state == UNVERIFIED:
                q.probe_due = now

    def on_cookie_echo_again(self, u, src, seq, pkt, body, now):
        """A retransmitted COOKIE-ECHO: our COOKIE-ACK was lost. Answer again."""
        why = self.authenticate(seq, pkt, body)
        if why:
            return why
        if self.state != ESTABLISHED:
            return "unexpected"
        p = self.learn(u, src, now, seq)
        if type(p) is str:
            return p
        self.send(p, wire.COOKIE_ACK, wire.enc_addrs(self.ep.addr_list()))
        return None

    # ---- requests (SET, SHUT) with retransmission ---------------------------

    def send_set(self, now):
        if self.state == ESTABLISHED:
            self.tsn = (self.tsn + 1) & 0xFFFFFFFF
            self.req = [wire.SET, self.tsn, wire.enc_set(self.tsn, self.ep.addr_list()), 0, now]
            self.request_timer(now)

    def request_timer(self, now):
        ptype, tsn, body, attempt, due = self.req
        limit = policy.REQUEST_RETRIES if ptype == wire.SET else policy.SHUT_RETRIES
        if ptype != wire.SET and attempt > limit:
            self.close(now, "shut" if ptype == wire.SHUT else "peer_shut")
            return
        p = self.primary or self.best()
        base = p.rto(self.ep.prof) if p is not None else policy.RTO_INITIAL
        self.req[4] = now + policy.request_rto(base, min(attempt, limit))
        if p is None:
            return  # no path: try again when one comes up
        self.req[3] = attempt + 1
        self.send(p, ptype, body)

    # ---- receiving ---------------------------------------------------------------

    def authenticate(self, seq, pkt, body):
        """Section 7 steps 4-6: the drop reason, or None (and the seq is recorded)."""
        if self.rx_mac is None:
            return "unexpected"  # no keys yet (cookie-wait)
        w = self.window
        if not w.check(seq):
            return "too_old" if seq <= w.highest - w.size else "duplicate"
        if not wire.check(self.rx_mac, pkt, body):
            return "mac"
        w.commit(seq)
        # anti-amplification (section 9): every authenticated byte from the peer earns one
        if self.credit < _CREDIT_MAX:
            self.credit = min(self.credit + len(pkt), _CREDIT_MAX)
        return None

    def receive(self, u, src, ptype, seq, pkt, body, now):
        """A packet for this association -> drop reason or None."""
        why = self.authenticate(seq, pkt, body)
        if why:
            if why == "duplicate" and ptype >= wire.DATA:
                # a redundant copy of DATA: still feedback for the path it came on
                r = self.remotes.get(src)
                p = r.paths.get(u.name) if r is not None else None
                if p is not None and p.state in (ACTIVE, SUSPECT) and wire.check(self.rx_mac, pkt, body):
                    self.maybe_ack(p, now)
            return why
        handler = _TABLE[self.state].get(ptype)
        if handler is None:
            return "unexpected"
        p = self.learn(u, src, now, seq)
        if type(p) is str:
            return p
        if ptype == wire.SET or ptype == wire.COOKIE_ACK:
            self.credit = 3 * len(pkt)  # a new list to validate: 3x its size, not more
        return handler(self, p, body, now)

    def on_set(self, p, body, now):
        tsn, addrs = wire.dec_set(body)
        if serial_newer(tsn, self.peer_tsn):
            for a, _, _ in addrs:
                if a[0] == "0.0.0.0" or a[0] == "::":  # (unspecified)
                    # refused: ERR 1 answers it instead of SET-ACK; the TSN is not recorded
                    self.send(p, wire.ERR, wire.enc_err(wire.ERR_BAD_ADDRESSES, tsn))
                    return "bad_addresses"
            self.peer_tsn = tsn
            self.apply_addrs(addrs, now)
        self.send(p, wire.SET_ACK, wire.enc_tsn(tsn))  # also re-acknowledges a retransmission
        return None

    def on_set_shutting(self, p, body, now):
        tsn, _ = wire.dec_set(body)
        self.send(p, wire.ERR, wire.enc_err(wire.ERR_SHUTTING_DOWN, tsn))
        return "shutting_down"

    def on_set_ack(self, p, body, now):
        tsn = wire.dec_tsn(body)
        if self.req is None or self.req[0] != wire.SET or self.req[1] != tsn:
            return "unexpected"
        self.req = None
        p.last_ok = now
        return None

    def on_probe(self, p, body, now):
        challenge, index = wire.dec_probe(body)
        r = self.remotes[p.raddr]
        if not r.advertised and index < len(self.peer_list):
            # an observed (NATed) address inherits the hints of the entry it stands for
            _, r.prio, r.cost = self.peer_list[index]
        if p.state == ACTIVE:  # the peer's idle probe: ours on this path may wait
            self.idle_exchange(p, now)
            p.peer_probe = now
        self.send(p, wire.PROBE_ACK, wire.enc_probe_ack(challenge, p.raddr))
        return None

    def on_probe_ack(self, p, body, now):
        challenge, observed = wire.dec_probe_ack(body)
        r = now - p.probe_sent
        if challenge != p.challenge:  # (None too: none outstanding)
            p.late = p.state == FAILED  # answered after its RTO: a slow path is no news (revive)
            if p.state == ACTIVE and r > p.rto(self.ep.prof):
                # answered, and this came after the RTO of our last probe: the answer to a
                # copy of it, or to an older one, so the RTT is at least r (section 10)
                p.rtt_sample(r)
            return "stale_probe_ack"
        p.challenge = None
        if not p.lost or p.state == FAILED:
            # (else one of several copies of the challenge was answered, which one is not
            # known: no sample, Karn's rule)
            p.rtt_sample(r)
        u = p.uplink
        if observed != u.addr and observed != u.public:
            u.public = observed
            u.natted = True
            self.ep.events.append(Event("nat_observed", u.name, fmt(u.addr), fmt(observed)))
        self.path_ok(p, now)
        return None

    def on_keepalive(self, p, body, now):
        # Section 10: fresh only if rx_highest rose on this path; it clears the path's
        # unacknowledged state once it reaches the highest DATA seq sent there.
        hi = wire.dec_keepalive(body)
        if hi > p.fb_hi:
            p.fb_hi = hi
            p.last_ok = now
            p.unacked_until = None if hi >= p.sent_hi else now + self.ep.prof["send_timeout"]
            if p.state == SUSPECT:
                p.state = ACTIVE
                p.lost = 0
                p.challenge = None
        return None

    def on_data(self, p, body, now, ip=False):
        if ip and not self.ep.accept_ip:
            if self.err_sent is None or now - self.err_sent >= 1000:
                self.err_sent = now
                self.send(p, wire.ERR, wire.enc_err(wire.ERR_UNSUPPORTED, 0))
            return "unsupported"
        ep = self.ep
        if ep.on_data is not None:  # the runtime takes DATA directly (payload valid during the call)
            ep.on_data(self.peer, body, ip, p.uplink.name, p.raddr)
        else:
            ep.events.append(Event("data", self.peer, bytes(body), ip))
        if p.ack_due is None or now >= p.ack_next:  # (else: feedback is due)
            self.maybe_ack(p, now)
        return None

    def on_data_ip(self, p, body, now):
        return self.on_data(p, body, now, True)

    def maybe_ack(self, p, now):
        """DATA arrived on p: feedback now, or (at most `ack` ms later) for the tail."""
        if p.ack_next is None or now >= p.ack_next:
            self.ack(p, now)
        elif p.ack_due is None:
            p.ack_due = p.ack_next

    def ack(self, p, now):
        # (the next deadline kept, not the time: on a 32-bit board, a clock past 2^30 ms is a
        # heap object, and arithmetic on it for each packet would allocate)
        p.ack_next = now + self.ep.prof["ack"]
        p.ack_due = None
        self.send(p, wire.KEEPALIVE, wire.enc_keepalive(self.window.highest, _KA))

    def on_err(self, p, body, now):
        code, tsn = wire.dec_err(body)
        req = self.req
        if (code == wire.ERR_BAD_ADDRESSES or code == wire.ERR_SHUTTING_DOWN) and (
                req is not None and req[0] == wire.SET and req[1] == tsn):
            self.req = None  # the SET is answered: no more retransmissions
        self.event("peer_error", code, tsn)
        return None

    def on_shut(self, p, body, now):
        tsn = wire.dec_tsn(body)
        if self.state == ESTABLISHED:
            self.state = SHUT_ACK_SENT
            self.req = [wire.SHUT_ACK, tsn, wire.enc_tsn(tsn), 0, now]
            self.request_timer(now)
        else:  # a retransmitted SHUT, or both sides shutting at once
            self.send(p, wire.SHUT_ACK, wire.enc_tsn(tsn))
        return None

    def on_shut_ack(self, p, body, now):
        self.send(p, wire.SHUT_COMPLETE, wire.enc_tsn(wire.dec_tsn(body)))
        if self.state == SHUT_SENT:
            self.close(now, "shut", linger=True)
        return None

    def on_shut_complete(self, p, body, now):
        wire.dec_tsn(body)
        self.close(now, "peer_shut")
        return None

    # ---- the app's side ---------------------------------------------------------

    def send_data(self, payload, ip, now):
        if self.seq >= wire.SEQ_MAX:  # never reuse a seq under the same keys
            self.close(now, "exhausted")
            return False
        p = self.primary
        if p is None or p.state not in (ACTIVE, SUSPECT):
            self.ep.count("tx_no_path")
            return False
        seq = self.seq
        ep = self.ep
        pkt = ep.seal(self.tx_mac, wire.DATA_IP if ip else wire.DATA, self.peer_label, seq, payload)
        self.seq = seq + 1
        self.emit(p, pkt)
        p.sent_hi = seq
        if p.unacked_until is None:  # (a deadline: no arithmetic on the clock per packet)
            p.unacked_until = now + ep.prof["send_timeout"]
        q = None
        if ep.mode == "redundant":  # a second copy on the best other ACTIVE or SUSPECT path
            qsame = True  # (suspect: still used, as a primary is; a path slower than
            qk = 0  # send_timeout is suspect at the start of every burst), preferring another uplink
            for c in self.plist:
                if c is not p and c.state in (ACTIVE, SUSPECT):
                    same = c.uplink is p.uplink
                    k = policy.rank(c, self.remotes[c.raddr])
                    if q is None or (qsame and not same) or (same == qsame and k < qk):
                        q, qsame, qk = c, same, k
        if q is not None:
            self.emit(q, pkt)
            q.sent_hi = seq
            if q.unacked_until is None:
                q.unacked_until = now + ep.prof["send_timeout"]
        if ep.resend_ms:
            # the last RESEND_MAX sent within resend_ms count (choose_primary); the others
            # go in bulk, not one per packet
            ring = self.ring
            # (a view of the send buffer, direct_send: a copy)
            ring.append((now, seq, bytes(pkt) if type(pkt) is memoryview else pkt))
            if len(ring) > _RING_MAX or ring[0][0] < now - ep.resend_ms:
                i = max(0, len(ring) - policy.RESEND_MAX)
                while ring[i][0] < now - ep.resend_ms:
                    i += 1
                del ring[:i]
        return True

    def shut(self, now):
        if self.state == ESTABLISHED:
            self.state = SHUT_SENT
            self.tsn = (self.tsn + 1) & 0xFFFFFFFF
            self.req = [wire.SHUT, self.tsn, wire.enc_tsn(self.tsn), 0, now]
            self.request_timer(now)
        elif self.state < ESTABLISHED:
            self.close(now, "shut")

    def close(self, now, reason, linger=False):
        was = self.state
        # closed_at first: a full heap at a new name of the instance's map (MicroPython) or at
        # the event leaves the association as it was or closed, never CLOSED without closed_at
        self.closed_at = now if linger else now - policy.LINGER
        self.state = CLOSED
        self.req = None
        if was != CLOSED and (was >= ESTABLISHED or reason == "timeout"):
            self.event("association_closed", reason)
        self.ep.forget(self, now)

    # ---- timers -------------------------------------------------------------------

    def next_timer(self):
        if self.state == CLOSED:
            return self.closed_at + policy.LINGER
        if self.state < ESTABLISHED:
            return self.hs.due
        t = None
        if self.req is not None:
            t = self.req[4]
        if self.primary is None and self.state == ESTABLISHED:
            t = _earlier(t, self.outage_since + self.ep.outage_ms)
        prof = self.ep.prof
        for p in self.plist:
            if p.challenge is not None:
                t = _earlier(t, p.probe_sent + p.rto(prof))
            elif p.probe_due is not None:
                t = _earlier(t, p.probe_due)
            if p.state == ACTIVE and p.unacked_until is not None:
                t = _earlier(t, p.unacked_until)
            if p.ack_due is not None:
                t = _earlier(t, p.ack_due)
        f = self.failback_candidate()
        if f is not None:
            t = _earlier(t, f.active_since + prof["failback"])
        return t

    def failback_candidate(self):
        p = self.primary
        if p is None:
            return None
        b = self.best(p)
        if b is None or b.challenge is not None:
            return None  # (a probe out on it: its answer first)
        if policy.rank(b, self.remotes[b.raddr]) >> 12 < policy.rank(p, self.remotes[p.raddr]) >> 12:
            return b  # better priority and cost, not just a better RTT
        return None

    def timer(self, now):
        if self.state == CLOSED:
            if now >= self.closed_at + policy.LINGER:
                self.ep.forget(self, now, True)
            return
        if self.state < ESTABLISHED:
            if now >= self.hs.due:
                self.handshake_timer(now)
            return
        prof = self.ep.prof
        for p in self.plist:  # (removing paths makes a new plist: this loop goes on)
            if p not in self.plist:
                continue  # removed by an earlier step of this loop
            if p.ack_due is not None and now >= p.ack_due:
                self.ack(p, now)  # feedback for the tail of a burst
            c = p.challenge
            if c and now >= p.probe_sent + p.rto(prof):
                p.challenge = None
                p.lost += 1
                p.idle_n = 0
                if p.state == FAILED:
                    p.backoff += 1
                    p.probe_due = now + policy.failed_backoff(p, prof, self.remotes[p.raddr].validated)
                elif p.lost >= prof["probe_fail"]:  # (an active path: 1, below it)
                    self.path_failed(p, now)
                else:
                    p.state = p.state and SUSPECT  # (active: suspect; unverified stays)
                    # the same challenge again: an answer to any copy (a path whose RTT rose
                    # past its RTO answers the first one late) shows the path works
                    self.probe(p, now, c)
            if p.state == ACTIVE and p.unacked_until is not None and now >= p.unacked_until:
                # REAP: we sent and heard nothing back: explore at once
                p.state = SUSPECT
                p.probe_due = now
            if p.challenge is None and p.probe_due is not None and now >= p.probe_due:
                # an idle ACTIVE path that proved itself lately (our probe answered, feedback,
                # or the peer's own probe on it) waits: one side's probes serve both
                last = max(p.last_ok or 0, p.peer_probe or 0)  # (as in idle_exchange)
                if p.state == ACTIVE and now - last < self.idle(p, now):
                    p.probe_due = last + self.idle(p, now)
                else:
                    self.probe(p, now)
        if self.state == CLOSED:
            return
        f = self.failback_candidate()
        if f is not None and now >= f.active_since + prof["failback"]:
            self.choose_primary(now, True, f)
        if self.primary is None and now >= self.outage_since + self.ep.outage_ms:
            self.close(now, "outage")
            return
        if self.req is not None and now >= self.req[4]:
            self.request_timer(now)


if not SLOTS:
    for _k, _v in _DEFAULTS:
        setattr(Association, _k, _v)
    del _DEFAULTS, _k, _v  # (on the class now: __init__ reads them only with SLOTS)


def _earlier(t, x):
    return x if t is None or x < t else t


A = Association
_DATA = {
    wire.PROBE: A.on_probe, wire.PROBE_ACK: A.on_probe_ack, wire.KEEPALIVE: A.on_keepalive,
    wire.DATA: A.on_data, wire.DATA_IP: A.on_data_ip, wire.ERR: A.on_err, wire.SHUT: A.on_shut,
}
# state -> {type: handler}; a type not listed is dropped as "unexpected" in that state.
# COOKIE-ECHO and INIT-ACK are handled by the endpoint (on_cookie_echo_again, on_init_ack).
_TABLE = {
    COOKIE_WAIT: {},
    COOKIE_ECHOED: {wire.COOKIE_ACK: A.on_cookie_ack},
    ESTABLISHED: dict(_DATA),
    SHUT_SENT: dict(_DATA),
    SHUT_ACK_SENT: dict(_DATA),
    CLOSED: {wire.SHUT_ACK: A.on_shut_ack},
}
_TABLE[ESTABLISHED][wire.SET] = A.on_set
_TABLE[ESTABLISHED][wire.SET_ACK] = A.on_set_ack
_TABLE[SHUT_SENT][wire.SET] = A.on_set_shutting
_TABLE[SHUT_SENT][wire.SHUT_ACK] = A.on_shut_ack
_TABLE[SHUT_ACK_SENT][wire.SET] = A.on_set_shutting
_TABLE[SHUT_ACK_SENT][wire.SHUT_COMPLETE] = A.on_shut_complete
del A, _DATA  # (only to build the table: a board's heap keeps none of it)
