# The runtime: real UDP sockets around the sans-IO core (mast.endpoint.Endpoint).
#
#   rt = Runtime(Endpoint(cfg, os.urandom))
#   rt.add_uplink("eth", ("192.0.2.7", 6278), priority=10, cost=0)
#   rt.connect("server")
#   while True:
#       rt.poll(1000)                 # wait for a packet or the core's next timer
#       for ev in rt.recv(): ...      # data events, with .uplink and .src added
#       for ev in rt.events(): ...    # the core's other events, and the runtime's own
#
# One UDP socket per uplink. An uplink names a device -> SO_BINDTODEVICE (Linux);
# otherwise the socket is bound to the uplink's address. An uplink may send
# through a relay (`via`, the link emulator or any SOCKS5 UDP relay): every
# datagram goes to the relay wrapped with its real destination (udpwrap), and
# replies are unwrapped to their real source; the core is told the relay's
# outside address (`public`) as the uplink's address.
#
# Nothing here decides anything about the protocol: that is the core's job.
# Errors: a failed send is counted on its uplink, never raised; a socket that
# dies is closed, reported as an "uplink_dead" event and taken down in the core.
#
# Restricted Python: the same file runs on CPython and the MicroPython unix port.

import gc
import sys
import socket
import select

from mast.compat import const
from mast.wire import MAX_PACKET
from mast.events import Event
from .sockaddr import from_socket, TextCache
from .clock import MonotonicMs

MICROPYTHON = sys.implementation.name == "micropython"
udpwrap = None  # runtime/udpwrap.py, imported when an uplink uses a relay (a board has none)

_POLLIN = select.POLLIN
_POLLNVAL = const(32)  # Linux; MicroPython's select has no name for it
_READS_PER_WAKE = const(16)  # bounded work per socket per poll, so no uplink starves another
# One more than the largest MAST packet, so a longer datagram shows as too long (the core
# counts it `bad_long`) instead of being cut to a packet that fails its tag.
_RX_BUF = const(2049)
_RX_BACKOFF_MS = const(50)  # a socket that could not be read for want of memory rests this long
_TIGHT_READS = const(16)  # after a read needed the reserve, this many more go straight to it
_QUEUE_MAX = const(256)  # received data / events kept for an app that does not read them
_EAGAIN = (11, 35)  # EAGAIN / EWOULDBLOCK (Linux, BSD)
_EBADF = const(9)
_ENODEV = const(19)  # a send from a socket bound to a device that was deleted (made again: a new one)
_MAX_SLEEP_MS = const(60000)
# An association this side initiated (connect) that closed, other than by our own close (the
# peer's SHUT, as a server's graceful restart sends; INITs unanswered; the outage budget spent;
# a new key): a new INIT this long after, then twice as long after each attempt that fails
# (or whose connect found no address to send to: counted `redial_failed`), up to
# _REDIAL_MAX_MS. Each wait is jitter()ed: the peers one server's restart shut at once do not
# all come back in the same millisecond, and again in lock-step at each doubling.
REDIAL_MS = 2000
_REDIAL_MAX_MS = const(64000)


# (at most 32000 x 255 on the way: a small int on a 32-bit port, no long int)
def jitter(ms, random):
    """ms less up to half of it, at random (random: the core's random_bytes): between ms/2
    and ms (as TCP/QUIC backoffs; mastd's reconnect too)."""
    return ms - (ms >> 1) * random(1)[0] // 256


def _errno(e):
    return e.args[0] if e.args and type(e.args[0]) is int else getattr(e, "errno", None)


def _errname(e):
    n = _errno(e)
    try:
        import errno

        name = errno.errorcode.get(n)
    except (ImportError, AttributeError):
        name = None
    if name is None and sys.platform == "linux":  # (MicroPython's table lacks these: "101")
        name = {90: "EMSGSIZE", 99: "EADDRNOTAVAIL", 100: "ENETDOWN", 101: "ENETUNREACH"}.get(n)
    return name or str(n)


class Uplink:
    """The runtime's side of an uplink: its socket and counters."""

    def __init__(self, name, sock, bind, public, via, device):
        self.name = name
        self.sock = sock
        self.bind = bind  # (ip, port) the socket is bound to
        self.public = public  # (ip, port) the core is told
        self.via = via  # the relay's inside (ip, port), or None
        self.device = device
        self.key = None  # what poll() reports for this socket
        self.tx = 0
        self.rx = 0
        self.tx_errors = 0
        self.rx_errors = 0
        self.rx_dropped = 0  # from a stranger (not the relay) or a bad relay header
        self.last_error = None
        self.dead = None  # why the socket died
        self.resting = None  # until when the socket is not read (no memory to receive)


class Runtime:
    def __init__(self, endpoint, clock=None, rcvbuf=None, reserve=None):
        self.ep = endpoint
        if clock is None:  # a non-wrapping ms count for this interpreter
            import time

            if hasattr(time, "ticks_ms"):
                clock = MonotonicMs(time.ticks_ms, time.ticks_diff).now
            else:
                clock = lambda: int(time.monotonic() * 1000)  # noqa: E731
        self.now = clock
        self.rcvbuf = rcvbuf  # SO_RCVBUF of each uplink's socket (None: the system's default)
        self.reads_per_wake = _READS_PER_WAKE  # datagrams read from one socket per wake
        self.uplinks = {}
        self.counters = {}
        self._poll = select.poll()
        self._ipoll = getattr(self._poll, "ipoll", None)  # MicroPython: no list per turn
        self._handlers = {}  # poll key -> Uplink, or (reader object, callback)
        self._rx = []
        self._events = []
        self._addrs = {}  # (ip, port) -> MicroPython sockaddr, from getaddrinfo
        self._text = TextCache()
        self._stuck = None  # a timer the core did not move: wait 1 ms, not 0
        # the reserve: a block of _RX_BUF bytes given back for a receive when the heap has no
        # other in one piece (_squeeze). A board takes it first thing at boot, while the heap
        # is still in one piece, and hands it here (reserve): by the time the runtime starts,
        # the code boot loads has been loaded, and what it leaves when it is freed is holes
        # too small for one (measured: bench/footprint.py, docs/BENCHMARKS.md)
        if reserve is not None and len(reserve) < _RX_BUF:
            raise ValueError("a reserve of %d bytes: a receive needs %d" % (len(reserve), _RX_BUF))
        self._reserve = reserve
        # and a second block beside it where the runtime takes its own (hosts; a board keeps
        # its heap): a squeezed read needs two blocks on MicroPython, recvfrom's buffer of the
        # size asked and the datagram's bytes, and with one a large datagram read was lost
        # when no other hole took its bytes (tests/attacks/test_atk_memory.py at 176K: 5 runs
        # of 12). Taken back when it can be; without it the reserve works as before.
        self._spare = None
        self._spares = MICROPYTHON and reserve is None
        if MICROPYTHON and reserve is None:
            self._take_reserve()  # (none now: _read takes it when it can)
        self._resting = 0  # sockets resting
        self._squeezed = False  # the last read needed the reserve's block
        self._tight = 0  # reads left that go straight to the reserve's block
        self._cu = self._cs = None  # uplink and source of the datagram being handed to the core
        self.on_data = None  # on_data(peer, payload, ip, uplink, src): instead of recv()
        # the core hands DATA straight to _on_data, no event object (also through a wrapper
        # such as the presence client, which keeps the core as .ep: the wrapper answers for
        # the core's attributes, on_data too, so .ep is looked for first)
        core = getattr(endpoint, "ep", endpoint)
        self.initiated = []  # peers connect() started: watched for one that lost our association
        self.restarts = None  # restart.RestartWatch, while one of them has no usable path
        self.redial = True  # reopen a closed association of theirs (mastd: False, it does so itself)
        self._redial = {}  # peer -> [due ms (None while its attempt runs), wait ms]
        self._dial = {}  # peer -> the addresses connect() was given (None: the configured)
        self._core = None  # the core that hands DATA over directly (events only for the rest)
        if hasattr(core, "on_data"):
            core.on_data = self._on_data
            self._core = core
        # and the core hands each packet straight to _send as it makes it (on MicroPython
        # sealed in one reused buffer: no packet object per send); a wrapper's own packets
        # still come from datagrams_to_send
        self._dying = []  # uplinks whose socket a send found dead (EBADF, ENODEV), for _flush
        if hasattr(core, "direct_send"):
            core.direct_send(self._send)

    # ---- helpers --------------------------------------------------------------------

    def count(self, reason):
        self.counters[reason] = self.counters.get(reason, 0) + 1

    def _sockaddr(self, addr):
        """The form bind() and sendto() take on this runtime."""
        if not MICROPYTHON:
            return addr
        sa = self._addrs.get(addr)
        if sa is None:
            sa = socket.getaddrinfo(addr[0], addr[1])[0][-1]
            if len(self._addrs) >= 32:
                self._addrs = {}
            self._addrs[addr] = sa
        return sa

    def _register(self, obj, handler):
        key = obj if (MICROPYTHON or type(obj) is int) else obj.fileno()
        self._poll.register(obj, _POLLIN)
        self._handlers[key] = handler
        return key

    def _unregister(self, obj, key):
        self._handlers.pop(key, None)
        try:
            self._poll.unregister(key if (type(key) is int) else obj)
        except (OSError, KeyError, ValueError):
            pass

    # ---- uplinks --------------------------------------------------------------------------

    def add_uplink(self, name, bind, priority=None, cost=None, device=None, via=None, public=None):
        """Open the uplink's socket and tell the core. bind: (ip, port) (port 0: any;
        CPython only, unless public is given). via: the relay's inside (ip, port);
        public: the address the core advertises (required with via). Renumbering:
        call again with the new addresses (the socket is reopened if bind changes)."""
        return self._op("add_uplink", name, bind, priority, cost, device, via, public)

    def remove_uplink(self, name):
        """The uplink went away: close its socket and tell the core."""
        self._op("remove_uplink", name)

    def _op(self, fn, *args):
        """fn(self, *args) of runtime/uplinkops.py (an uplink's coming and going, which a board
        runs now and then): loaded for the call and, on MicroPython, forgotten after (a board
        gets its heap back)."""
        from . import uplinkops

        try:
            return getattr(uplinkops, fn)(self, *args)
        finally:
            if MICROPYTHON:
                sys.modules.pop("runtime.uplinkops", None)
                pkg = sys.modules.get("runtime")
                if pkg is not None and hasattr(pkg, "uplinkops"):
                    delattr(pkg, "uplinkops")

    def _close(self, u):
        if u.resting is not None:  # (no longer counted: else every later wait was cut to
            u.resting = None  # _RX_BACKOFF_MS, for good, for a socket that is gone)
            self._resting -= 1
        self._unregister(u.sock, u.key)
        try:
            u.sock.close()
        except OSError:
            pass

    def _dead(self, u, why):
        if u.dead is not None:
            return
        u.dead = why
        self._close(u)
        self.count("uplink_dead")
        if u.name in self.ep.uplinks:
            self.ep.uplink_down(u.name, self.now())
        from .note import Note  # (loaded only now: a board whose sockets live never needs it)

        self._note(Note("uplink_dead", uplink=u.name, error=why))

    # ---- other things to wait for (stdin, a child's output) -----------------------------

    def add_reader(self, obj, callback):
        """Call callback(obj, flags) when obj (an int fd or a stream with fileno) is
        readable, or hung up. Returns a key for remove_reader."""
        return self._register(obj, (obj, callback))

    def remove_reader(self, obj, key):
        self._unregister(obj, key)

    # ---- the app's side ---------------------------------------------------------------------

    def connect(self, peer, addrs=None):
        self.ep.connect(peer, self.now(), addrs)
        if peer not in self.initiated:
            self.initiated.append(peer)
        self._dial[peer] = addrs
        # more than the peers configured: some were removed since (the core's remove_peer, a
        # reload) and are forgotten here, or a peer added and removed every day left one
        # each, for good (a list walked every turn). (A restart watch running holds the list.)
        peers = getattr(self.ep, "ep", self.ep).cfg["peers"]
        if len(self._dial) > len(peers):
            for p in list(self._dial):
                if p not in peers:
                    del self._dial[p]
        if len(self.initiated) > len(peers) and self.restarts is None:
            self.initiated[:] = [p for p in self.initiated if p in peers]
        self._flush()

    def send(self, payload, peer=None, ip=False):
        """One datagram (or, with ip, one IP packet) to the peer; True if the core took it."""
        ok = self.ep.send_data(payload, self.now(), peer, ip)
        self._flush()
        return ok

    def close(self, peer=None):
        """Graceful SHUT to peer (None: every peer); not opened again (REDIAL_MS)."""
        self.ep.close(self.now(), peer)  # (an attempt beside it goes: restart.py)
        for p in [peer] if peer is not None else list(self._dial):
            self._dial.pop(p, None)
            self._redial.pop(p, None)
        self._flush()

    def recv(self):
        """Data events received since the last call, each with .uplink and .src (the
        (ip, port) the DATA came from: which path it took). Not used when on_data is set.
        A payload is bytes; a memoryview of the datagram as read when the heap had no block
        for its copy (MicroPython)."""
        out = self._rx
        self._rx = []
        return out

    def _on_data(self, peer, payload, ip, uplink, src):
        """The core delivers DATA here (payload: a memoryview, valid during the call)."""
        if self.on_data is not None:
            self.on_data(peer, payload, ip, uplink, src)
            return
        try:
            data = bytes(payload)
        except MemoryError:  # no block for a copy: the datagram's own bytes, held by the view
            data = payload
        ev = Event("data", peer, data, ip)
        ev.uplink = uplink
        ev.src = src
        if len(self._rx) >= _QUEUE_MAX:
            self._rx.pop(0)
            self.count("rx_overflow")
        self._rx.append(ev)

    def events(self):
        """The core's other events and the runtime's own (Note), since the last call (to
        iterate). None since: an empty tuple, so that a board's turn makes no new list."""
        out = self._events
        if not out:
            return ()
        self._events = []
        return out

    def _note(self, ev):
        if len(self._events) >= _QUEUE_MAX:
            self._events.pop(0)
            self.count("events_overflow")
        self._events.append(ev)

    def status(self):
        from .status import runtime_status  # (only when asked: a board's heap)

        return runtime_status(self)

    def shutdown(self):
        """Close every socket and give back the receive reserve (the core is left as it is)."""
        for u in list(self.uplinks.values()):
            if u.dead is None:
                self._close(u)
        self.uplinks = {}
        self._reserve = None

    # ---- the loop ---------------------------------------------------------------------------

    def wait_ms(self, timeout_ms=None):
        """How long poll() would sleep: until the core's next timer, at most timeout_ms."""
        t = self.ep.next_timer()
        wait = timeout_ms
        if t is not None:
            d = t - self.now()
            if d <= 0:
                d = 1 if t == self._stuck else 0
            if wait is None or d < wait:
                wait = d
        if self._resting and (wait is None or wait > _RX_BACKOFF_MS):
            wait = _RX_BACKOFF_MS  # wake to read the resting sockets again
        for peer in self._redial:
            t = self._redial[peer][0]
            if t is not None:
                d = max(0, t - self.now())
                if wait is None or d < wait:
                    wait = d
        return wait

    def poll(self, timeout_ms=None):
        """One turn: wait for a packet, a reader or the core's next timer (at most
        timeout_ms; None: a minute), then feed the core and send what it queued.
        Returns the number of datagrams received. A full heap anywhere in the turn loses
        what was being handled (counted `no_memory`), never the loop."""
        try:
            if self._resting:  # sockets that rested for want of memory: read again once due
                now = self.now()
                for u in self.uplinks.values():
                    if u.resting is not None and now >= u.resting and u.dead is None:
                        u.key = self._register(u.sock, u)  # (first: a full heap raises here,
                        u.resting = None  # and it stays resting, woken on a later turn)
                        self._resting -= 1
                        if self._reserve is None and MICROPYTHON:
                            self._take_reserve()  # (lost or never had: the next squeeze needs it)
            wait = self.wait_ms(timeout_ms)
        except MemoryError:  # (no room to wake a socket or settle the core's timers: soon again)
            self._no_memory()
            wait = 1
        if wait is None or wait > _MAX_SLEEP_MS:
            wait = _MAX_SLEEP_MS  # read the clock often: ticks_ms wraps (MonotonicMs)
        got = 0
        try:
            ready = self._ipoll(wait) if self._ipoll is not None else self._poll.poll(wait)
            for item in ready:
                h = self._handlers.get(item[0])
                if h is None:
                    continue
                try:
                    if isinstance(h, Uplink):
                        got += self._read(h, item[1])
                    else:
                        h[1](h[0], item[1])
                except MemoryError:
                    self._no_memory()
            if got and self._reserve is None and MICROPYTHON:
                # a read found a block: there may be room again, now that the datagrams read
                # are let go of (taken back while _read held the last one, the block it was
                # read into stayed in pieces: a board never had its reserve again, and its
                # sockets read nothing more)
                gc.collect()
                self._take_reserve()
            elif got and self._spares and self._spare is None:
                self._take_reserve()  # (the second block: no collection for it)
        except MemoryError:
            self._no_memory()
        try:
            self.run_timers()
        except MemoryError:
            self._no_memory()
        return got

    def _no_memory(self):
        self.count("no_memory")
        gc.collect()

    def run_timers(self):
        now = self.now()
        t = self.ep.next_timer()
        if t is not None and t <= now:
            self.ep.handle_timer(now)
            self._drain()
            t2 = self.ep.next_timer()
            self._stuck = t2 if (t2 is not None and t2 <= t) else None
        if self.initiated:  # (a peer that may have lost our association: restart.py)
            ep = getattr(self.ep, "ep", self.ep)
            for peer in self.initiated:
                a = ep.by_peer.get(peer)
                if self.restarts is not None or (a is not None and a.initiator and a.state == 2
                                                 and a.primary is None):  # (2: ESTABLISHED)
                    from . import restart  # (loaded only then, and forgotten after)

                    restart.turn(self, ep, now)
                    break
        if self._redial:
            # a new INIT for each peer whose redial is due (see REDIAL_MS); a peer no longer
            # configured (or no longer initiated: `initiate` false), or one whose association
            # is back (the app's connect, a board's apply), is let go
            ep = getattr(self.ep, "ep", self.ep)
            for peer in list(self._redial):
                r = self._redial[peer]
                if r[0] is None:  # its attempt runs, or ended unseen (a connect out of memory):
                    if ep.by_peer.get(peer) is None:  # then as an attempt that failed
                        r[0] = now + jitter(r[1], ep.random)
                    continue
                if now < r[0]:
                    continue
                pc = ep.cfg["peers"].get(peer)
                if ep.by_peer.get(peer) is not None or pc is None or not pc.get("initiate", True):
                    del self._redial[peer]
                    continue
                r[0] = None  # its attempt runs: the next close of it doubles the wait
                r[1] = min(r[1] * 2, _REDIAL_MAX_MS)
                try:
                    self.ep.connect(peer, now, self._dial.get(peer))
                    self.count("redial")
                except ValueError:  # (no addresses now): tried again later, as a failed attempt
                    r[0] = now + jitter(r[1], ep.random)
                    self.count("redial_failed")
        self._flush()

    def run(self, until_ms=None, max_turns=None):
        """poll() until the runtime clock reaches until_ms (None: for ever), or max_turns."""
        n = 0
        while until_ms is None or self.now() < until_ms:
            if max_turns is not None and n >= max_turns:
                break
            self.poll(None if until_ms is None else max(0, until_ms - self.now()))
            n += 1

    def _squeeze(self, u, tried=True):
        """u's recvfrom when the heap has no free block of _RX_BUF bytes in one piece (tried:
        a plain recvfrom just raised MemoryError, after the port's own collection): (data,
        sockaddr), or None when there is no room for a datagram now."""
        if tried:
            self.count("rx_no_memory")
        if self._reserve is not None:
            # give back the reserve, read into its block, and take it back at once, before
            # the datagram's handling scatters small objects over that block
            self._reserve = self._spare = None
            gc.collect()
            try:
                r = u.sock.recvfrom(_RX_BUF)
            except MemoryError:  # (it may have taken a datagram: counted, as a loss is)
                r = None
                self.count("rx_no_memory")
            self._take_reserve()
            if r is not None:
                self.count("rx_reserve")  # a datagram read into the reserve's block
                self._squeezed = True  # (this wake reads no more: each read would cost this)
                self._tight = _TIGHT_READS  # the next reads go straight here: one collection each
                return r
        elif not tried:  # (straight here, but no reserve: the plain way after all)
            try:
                return u.sock.recvfrom(_RX_BUF)
            except MemoryError:
                self.count("rx_no_memory")
        # still none: this socket rests a little (the kernel keeps its datagrams); the
        # timers, the console and the other uplinks go on
        self.count("rx_rest")
        u.resting = self.now() + _RX_BACKOFF_MS
        self._resting += 1
        self._unregister(u.sock, u.key)
        return None

    def give_up_reserve(self):
        """The reserve block, no longer this runtime's (None if it has none): for the runtime
        that replaces this one (a board's apply that needs a new endpoint)."""
        r = self._reserve
        self._reserve = None
        return r

    def _take_reserve(self):
        if self._reserve is None:
            try:
                self._reserve = bytearray(_RX_BUF)
            except MemoryError:
                return
        if self._spares and self._spare is None:
            try:
                self._spare = bytearray(_RX_BUF)
            except MemoryError:
                pass  # (taken with the reserve, later)

    def _read(self, u, flags):
        if flags & _POLLNVAL:
            self._dead(u, "socket closed (POLLNVAL)")
            return 0
        got = 0
        now = self.now()  # one clock read per wake (the datagrams came meanwhile)
        # the loop runs per datagram: what it calls is looked up once
        recvfrom, receive, name, text, via = u.sock.recvfrom, self.ep.receive, u.name, self._text, u.via
        size = _RX_BUF if via is None else _RX_BUF + udpwrap.MAX_HEAD  # (a relay's header too)
        # a core that hands DATA to _on_data: its other events are taken once, after the reads;
        # otherwise each datagram's data events are taken at once, with their uplink and source
        events = self._core is None or self._core.on_data is None
        for _ in range(self.reads_per_wake):
            try:
                if self._tight:  # the heap has been full lately: no plain try first
                    self._tight -= 1
                    r = self._squeeze(u, False)
                else:
                    try:
                        r = recvfrom(size)
                    except MemoryError:
                        r = self._squeeze(u)
            except OSError as e:
                n = _errno(e)
                if n in _EAGAIN:
                    break
                if n == _EBADF:
                    self._dead(u, "EBADF")
                    break
                u.rx_errors += 1  # an ICMP error report (ECONNREFUSED, ...): the socket lives
                u.last_error = _errname(e)
                break
            if r is None:
                break
            data, src = r
            if via is not None or MICROPYTHON or len(src) != 2:
                # (CPython's IPv4 (ip, port) pair is the core's form already: the text is
                # canonical; its IPv6 addresses come as 4 items)
                try:
                    src = from_socket(src, text)
                    if via is not None:
                        if src != via:
                            u.rx_dropped += 1  # not from our relay
                            continue
                        host, port, payload = udpwrap.unwrap(data)
                        src, data = (host, port), bytes(payload)
                except ValueError:
                    u.rx_dropped += 1
                    continue
            got += 1
            if events:
                self._cu, self._cs = name, src
                receive(name, src, data, now)
                self._drain()
                self._cu = self._cs = None
            else:
                receive(name, src, data, now)
            if self._squeezed:
                self._squeezed = False
                break
        if got:
            u.rx += got
            self._flush()  # (and the core's events)
        return got

    def _drain(self):
        """The core's events other than data (the core hands data to _on_data)."""
        ev = self.ep.next_event()
        while ev is not None:
            if ev.kind == "data":  # from a core that cannot hand DATA over directly
                self._on_data(ev.peer, ev.payload, ev.ip, self._cu, self._cs)
            else:
                k = ev.kind
                if k == "association_up":
                    self._redial.pop(ev.peer, None)
                elif (k == "association_closed" and self.redial and ev.reason != "shut"
                      and ev.reason != "replaced" and ev.peer in self._dial):
                    r = self._redial.get(ev.peer)  # (an attempt of ours that failed: doubled)
                    w = REDIAL_MS if r is None else r[1]
                    j = jitter(w, getattr(self.ep, "ep", self.ep).random)
                    self._redial[ev.peer] = [self.now() + j, w]
                self._note(ev)
            ev = self.ep.next_event()

    def _flush(self):
        """Send what the core (or its wrapper) queued; then the core's events."""
        for name, dst, data in self.ep.datagrams_to_send():
            self._send(name, dst, data)
        dying = self._dying
        while dying:  # (here, not in _send: taking an uplink down calls into the core)
            u = dying.pop()
            self._dead(u, u.last_error)
        self._drain()

    def _send(self, name, dst, data):
        """One datagram out on uplink `name`; a send error is counted on its uplink, not
        raised (the core calls this as it makes each packet: direct_send)."""
        u = self.uplinks.get(name)
        if u is None or u.dead is not None:
            self.count("tx_no_socket")
            return
        try:
            if u.via is not None:
                data = udpwrap.wrap(dst[0], dst[1], data)
                dst = u.via
            u.sock.sendto(data, self._sockaddr(dst) if MICROPYTHON else dst)
            u.tx += 1
        except OSError as e:
            u.tx_errors += 1
            u.last_error = _errname(e)
            self.count("tx_error")
            if (_errno(e) == _EBADF or (_errno(e) == _ENODEV and u.device)) and u not in self._dying:
                self._dying.append(u)  # closed by _flush, outside the core
        except ValueError:  # an address the relay header cannot carry
            u.tx_errors += 1
            self.count("tx_error")
        except MemoryError:  # (the relay header's copy): this datagram is lost, as on a wire
            u.tx_errors += 1
            self.count("tx_no_memory")
