"""A user-space link emulator: one UDP relay per emulated uplink, no root, no netem.

    uplink socket --(wrapped)--> inside socket [ link "eth" ] outside socket --(plain)--> peer
                  <--(wrapped)--                            <--(plain)--

The uplink sends every datagram to its link's inside socket with the real destination in a
SOCKS5 UDP header (runtime/udpwrap.py, the same file the boards run). The link sends the payload
from its outside socket, bound to the link's public address (127.0.0.2:6278, say), so the peer sees
that address as the source. Replies arriving on the outside socket go back to the last inside
client, wrapped with their real source.

Each direction ("up": uplink to network, "down": network to uplink) has its own impairments:
delay_ms, jitter_ms (uniform +-), loss (0..1), rate_kbit (0 = unlimited; packets wait behind the
ones still being sent, at most `queue` of them, the rest are dropped) and cut (a silent
blackhole, also for packets already in flight). The public address can change at run time
(renumbering). One thread runs every link: a selector loop and a heap of scheduled deliveries.
With a seed, the random choices (loss, jitter) repeat exactly for the same traffic.
"""

import heapq
import random
import selectors
import socket
import threading
import time
from collections import deque

from mast_tools.firmware import use_firmware

use_firmware()
from runtime import udpwrap  # noqa: E402  (the firmware's own relay header code)

DIRECTIONS = ("up", "down")
DROP_REASONS = ("cut", "loss", "queue", "malformed", "no_client", "error")
_ALIASES = {"delay": "delay_ms", "jitter": "jitter_ms", "rate": "rate_kbit"}
_MAX_DATAGRAM = 65535
_READS_PER_WAKE = 64  # bounded work per socket per loop turn, so one busy link cannot starve others
_WAIT_S = 30.0  # a bound on waiting for the loop thread (a job, its end): a loaded machine can keep
# it from running for a while; only a loop that is stuck waits this long


def _number(key, value, low, high=None, integer=False):
    kind = "an integer" if integer else "a number"
    try:
        fraction = integer and isinstance(value, float) and not value.is_integer()
        if isinstance(value, bool) or fraction:
            raise ValueError(value)
        n = int(value) if integer else float(value)
        if n != n or abs(n) == float("inf"):
            raise ValueError(value)
    except (TypeError, ValueError):
        raise ValueError("%s: must be %s, not %r" % (key, kind, value))
    if n < low or (high is not None and n > high):
        limits = ">= %s" % low if high is None else "between %s and %s" % (low, high)
        raise ValueError("%s: must be %s, not %r" % (key, limits, value))
    return n


def _flag(key, value):
    if isinstance(value, bool):
        return value
    text = str(value).lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError("%s: must be true or false, not %r" % (key, value))


# field -> (parse(key, value), default)
_FIELDS = {
    "delay_ms": (lambda k, v: _number(k, v, 0), 0.0),
    "jitter_ms": (lambda k, v: _number(k, v, 0), 0.0),
    "loss": (lambda k, v: _number(k, v, 0, 1), 0.0),
    "rate_kbit": (lambda k, v: _number(k, v, 0), 0.0),
    "queue": (lambda k, v: _number(k, v, 1, integer=True), 100),
    "cut": (_flag, False),
}


def parse_settings(settings):
    """{key: value} -> [(direction, field, value)], checked. A key is a field (delay_ms, jitter_ms,
    loss, rate_kbit, queue, cut; or delay, jitter, rate) for both directions, or up_<field> /
    down_<field> for one. ValueError names the bad key."""
    out = []
    for key, value in settings.items():
        dirs, field = DIRECTIONS, key
        for d in DIRECTIONS:
            if key.startswith(d + "_"):
                dirs, field = (d,), key[len(d) + 1 :]
        field = _ALIASES.get(field, field)
        if field not in _FIELDS:
            raise ValueError("%s: unknown setting (known: delay, jitter, loss, rate, queue, cut, "
                             "address; up_KEY or down_KEY for one direction)" % key)
        value = _FIELDS[field][0](key, value)
        out.extend((d, field, value) for d in dirs)
    return out


def parse_addr(value, what="address"):
    """"HOST:PORT", "[V6HOST]:PORT" or (host, port) -> (host, port); numeric hosts only."""
    if isinstance(value, (tuple, list)) and len(value) == 2:
        host, port = value
    elif isinstance(value, str):
        host, sep, port = value.rpartition(":")
        if host.startswith("[") and host.endswith("]"):
            host = host[1:-1]
        elif ":" in host:
            sep = ""  # an IPv6 host needs brackets: [::1]:6278
        if not sep:
            raise ValueError("%s: expected HOST:PORT (IPv6: [HOST]:PORT), not %r" % (what, value))
    else:
        raise ValueError("%s: expected HOST:PORT, not %r" % (what, value))
    try:
        udpwrap.host_to_bytes(str(host))
    except ValueError:
        raise ValueError("%s: %r is not a numeric IPv4 or IPv6 address" % (what, host))
    return str(host), _number(what + " port", port, 0, 65535, integer=True)


def format_addr(addr):
    host, port = addr[0], addr[1]
    return ("[%s]:%d" if ":" in host else "%s:%d") % (host, port)


class LinkConfig:
    """One emulated uplink: its public `address`, the `inside` address where the uplink reaches
    the relay (default 127.0.0.1 on a free port), and impairments (see parse_settings)."""

    def __init__(self, address, inside=("127.0.0.1", 0), **settings):
        self.address = parse_addr(address, "address")
        self.inside = parse_addr(inside, "inside")
        self.up = dict((f, spec[1]) for f, spec in _FIELDS.items())
        self.down = dict(self.up)
        self.apply(parse_settings(settings))

    def apply(self, parsed):
        for d, field, value in parsed:
            getattr(self, d)[field] = value

    def as_dict(self):
        return {"address": format_addr(self.address), "inside": format_addr(self.inside),
                "up": dict(self.up), "down": dict(self.down)}


def check_scenario(steps, link_names):
    """A scenario (a list of {"at": s, "link": name, "set": {...}}) checked and sorted by time
    (steps at the same time keep their order). ValueError names the step and the field."""
    if not isinstance(steps, list):
        raise ValueError("a scenario is a JSON list of steps, not %s" % type(steps).__name__)
    out = []
    for i, step in enumerate(steps, 1):
        where = "step %d" % i
        if not isinstance(step, dict):
            raise ValueError("%s: must be an object with at, link and set" % where)
        extra = set(step) - {"at", "link", "set", "note"}
        if extra:
            raise ValueError("%s: unknown field %s (known: at, link, set, note)"
                             % (where, sorted(extra)[0]))
        if "at" not in step:
            raise ValueError("%s: 'at' (seconds from the start) is missing" % where)
        _number(where + ": at", step["at"], 0)
        if step.get("link") not in link_names:
            raise ValueError("%s: link: %r is not one of %s"
                             % (where, step.get("link"), sorted(link_names)))
        changes = step.get("set")
        if not isinstance(changes, dict) or not changes:
            raise ValueError("%s: set: must be an object of settings, e.g. {\"cut\": true}"
                             % where)
        changes = dict(changes)
        if "address" in changes:
            parse_addr(changes.pop("address"), where + ": address")
        try:
            parse_settings(changes)
        except ValueError as e:
            raise ValueError("%s: set: %s" % (where, e))
        out.append(step)
    return sorted(out, key=lambda s: float(s["at"]))


def _bind(addr, name, role):
    family = socket.AF_INET6 if ":" in addr[0] else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        sock.bind(addr)
    except OSError as e:
        sock.close()
        raise OSError(e.errno, "link %s: cannot bind its %s socket to %s (%s)"
                      % (name, role, format_addr(addr), e.strerror))
    sock.setblocking(False)
    return sock


class _Link:
    def __init__(self, name, cfg):
        self.name = name
        self.cfg = cfg
        self.inside = self.outside = None
        self.client = None  # the inside client's address: where replies go
        self.busy_until = {"up": 0.0, "down": 0.0}  # when the rate limiter finishes its queue
        self.backlog = {"up": deque(), "down": deque()}  # departure times of queued packets
        self.counters = dict((d, {"packets_in": 0, "bytes_in": 0, "packets_out": 0,
                                  "bytes_out": 0, "dropped": dict((r, 0) for r in DROP_REASONS)})
                             for d in DIRECTIONS)


class Emulator:
    """Relays for named links: Emulator({"eth": LinkConfig("127.0.0.2:6278", delay_ms=2)}, seed=1).
    Use as a context manager, or start() and stop()."""

    def __init__(self, links, seed=None):
        self._links = {}
        for name, cfg in links.items():  # a LinkConfig, or its keyword arguments as a dict
            cfg = cfg if isinstance(cfg, LinkConfig) else LinkConfig(**cfg)
            self._links[name] = _Link(name, cfg)
        self._rng = random.Random(seed)
        self._heap = []  # (due, seq, link, direction, peer, payload)
        self._seq = 0
        self._jobs = deque()
        self._sel = self._wake_r = self._wake_w = self._thread = None
        self._stopping = threading.Event()
        self._error = None

    # -- life cycle ------------------------------------------------------------------------------

    def start(self):
        self._sel = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._sel.register(self._wake_r, selectors.EVENT_READ, None)
        try:
            for link in self._links.values():
                link.inside = _bind(link.cfg.inside, link.name, "inside")
                self._sel.register(link.inside, selectors.EVENT_READ, (link, "up"))
                link.outside = _bind(link.cfg.address, link.name, "outside")
                self._sel.register(link.outside, selectors.EVENT_READ, (link, "down"))
        except OSError:
            self._close()
            raise
        self._stopping.clear()
        self._thread = threading.Thread(target=self._loop, name="mast-linkemu", daemon=True)
        self._thread.start()
        return self

    def stop(self):
        """Stop relaying (woken, the loop thread ends within its turn; joined) and close every
        socket. The sockets are closed only once the thread is gone: it uses them until then."""
        self._stopping.set()
        thread = self._thread
        if thread is not None:
            self._wake()
            thread.join(_WAIT_S)
            if thread.is_alive():
                raise RuntimeError("the link emulator's loop did not stop within %.0f s (%r)"
                                   % (_WAIT_S, self._error))
            self._thread = None
        self._heap = []  # what was still in flight is gone
        self._close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # -- the API for tests, the demo and the CLI -------------------------------------------------

    def inside_addr(self, name):
        """(host, port) where the uplink for `name` sends its wrapped datagrams."""
        return self._bound(name, "inside")

    def outside_addr(self, name):
        """(host, port) the far side sees as the source of `name`'s datagrams."""
        return self._bound(name, "outside")

    def set(self, name, **changes):
        """Change a link at run time: any impairment (see parse_settings) and `address` (a new
        public address: the outside socket is rebound). Checked first, then applied at once."""
        link = self._link(name)
        changes = dict(changes)
        address = changes.pop("address", None)
        if address is not None:
            address = parse_addr(address, "address")
        parsed = parse_settings(changes)

        def apply():
            if address is not None:
                self._renumber(link, address)
            link.cfg.apply(parsed)

        self._call(apply)

    def settings(self, name):
        link = self._link(name)
        return self._call(link.cfg.as_dict)

    def counters(self):
        """{link: {"up"|"down": {packets_in, bytes_in, packets_out, bytes_out,
        dropped: {cut, loss, queue, malformed, no_client, error}}}} (payload bytes)."""
        def snapshot():
            return dict((link.name, dict((d, dict(c, dropped=dict(c["dropped"])))
                                         for d, c in link.counters.items()))
                        for link in self._links.values())
        return self._call(snapshot)

    def run_scenario(self, steps, on_step=None):
        """Apply each step's settings at its time (seconds from this call), in time order, calling
        on_step(step) after each. Returns when the last step is applied (True) or when the
        emulator stops first (False)."""
        steps = check_scenario(steps, self._links)
        t0 = time.monotonic()
        for step in steps:
            if self._stopping.wait(max(0.0, t0 + float(step["at"]) - time.monotonic())):
                return False
            self.set(step["link"], **step["set"])
            if on_step is not None:
                on_step(step)
        return True

    # -- the loop thread -------------------------------------------------------------------------

    def _link(self, name):
        if name not in self._links:
            raise ValueError("link: %r is not one of %s" % (name, sorted(self._links)))
        return self._links[name]

    def _bound(self, name, role):
        link = self._link(name)

        def address():  # on the loop thread: a scenario step may be rebinding the socket
            sock = getattr(link, role)
            if sock is None:
                raise RuntimeError("the link emulator is not running; start() it first")
            return sock.getsockname()[:2]

        return self._call(address)

    def _call(self, fn):
        """Run fn on the loop thread (all link state belongs to it) and return its result."""
        thread = self._thread
        if thread is None or not thread.is_alive() or thread is threading.current_thread():
            return fn()
        done, box = threading.Event(), []

        def job():
            try:
                box.append((True, fn()))
            except Exception as e:  # handed back to the caller
                box.append((False, e))
            done.set()

        self._jobs.append(job)
        self._wake()
        end = time.monotonic() + _WAIT_S
        while not done.wait(0.05):
            if not thread.is_alive():  # it ended (stopped, or failed) before it ran the job
                try:
                    self._jobs.remove(job)
                except ValueError:
                    pass
                if not done.is_set():
                    return fn()
                break
            if time.monotonic() > end:
                raise RuntimeError("link emulator loop is not responding (%r)" % (self._error,))
        ok, value = box[0]
        if not ok:
            raise value
        return value

    def _wake(self):
        try:
            self._wake_w.send(b"!")
        except (OSError, AttributeError):
            pass

    def _loop(self):
        try:
            while not self._stopping.is_set():
                timeout = None
                if self._heap:
                    timeout = max(0.0, self._heap[0][0] - time.monotonic())
                for key, _ in self._sel.select(timeout):
                    if key.data is None:
                        self._drain_wake()
                    else:
                        self._receive(key.fileobj, *key.data)
                while self._jobs:
                    self._jobs.popleft()()
                now = time.monotonic()
                while self._heap and self._heap[0][0] <= now:
                    self._deliver(*heapq.heappop(self._heap)[2:])
        except Exception as e:  # reported by _call; the loop must not die silently
            self._error = e
            raise

    def _drain_wake(self):
        try:
            self._wake_r.recv(512)
        except OSError:
            pass

    def _receive(self, sock, link, direction):
        for _ in range(_READS_PER_WAKE):
            try:
                data, src = sock.recvfrom(_MAX_DATAGRAM)
            except OSError:  # nothing more (BlockingIOError), or an error report: try next turn
                return
            if direction == "down":
                self._admit(link, "down", src[:2], data)
                continue
            try:
                host, port, payload = udpwrap.unwrap(data)
            except ValueError:
                self._count_in(link, "up", len(data))
                self._drop(link, "up", "malformed")
                continue
            link.client = src
            self._admit(link, "up", (host, port), bytes(payload))

    def _count_in(self, link, direction, size):
        c = link.counters[direction]
        c["packets_in"] += 1
        c["bytes_in"] += size

    def _drop(self, link, direction, reason):
        link.counters[direction]["dropped"][reason] += 1

    def _admit(self, link, d, peer, payload):
        """Decide a packet's fate when it arrives: dropped now, or delivered at some time."""
        self._count_in(link, d, len(payload))
        imp = getattr(link.cfg, d)
        if imp["cut"]:
            return self._drop(link, d, "cut")
        if d == "down" and link.client is None:
            return self._drop(link, d, "no_client")
        if imp["loss"] and self._rng.random() < imp["loss"]:
            return self._drop(link, d, "loss")
        now = depart = time.monotonic()
        if imp["rate_kbit"]:
            backlog = link.backlog[d]
            while backlog and backlog[0] <= now:
                backlog.popleft()
            if len(backlog) >= imp["queue"]:
                return self._drop(link, d, "queue")
            depart = max(now, link.busy_until[d]) + len(payload) * 8 / (imp["rate_kbit"] * 1000.0)
            link.busy_until[d] = depart
            backlog.append(depart)
        due = depart + imp["delay_ms"] / 1000.0
        if imp["jitter_ms"]:
            due = max(depart, due + self._rng.uniform(-imp["jitter_ms"], imp["jitter_ms"]) / 1000.0)
        self._seq += 1
        heapq.heappush(self._heap, (due, self._seq, link, d, peer, payload))

    def _deliver(self, link, d, peer, payload):
        if getattr(link.cfg, d)["cut"]:  # cut while in flight
            return self._drop(link, d, "cut")
        try:
            if d == "up":
                link.outside.sendto(payload, peer)
            else:
                link.inside.sendto(udpwrap.wrap(peer[0], peer[1], payload), link.client)
        except ValueError:  # a source address the header cannot carry (an IPv6 scope, say)
            return self._drop(link, d, "malformed")
        except OSError:  # wrong address family, full socket buffer, ...
            return self._drop(link, d, "error")
        c = link.counters[d]
        c["packets_out"] += 1
        c["bytes_out"] += len(payload)

    def _renumber(self, link, address):
        if link.outside is None:  # not started: takes effect at start()
            link.cfg.address = address
            return
        if address == link.outside.getsockname()[:2]:
            link.cfg.address = address
            return
        new = _bind(address, link.name, "outside")  # the old socket stays if this fails
        self._sel.unregister(link.outside)
        link.outside.close()
        link.outside = new
        self._sel.register(new, selectors.EVENT_READ, (link, "down"))
        link.cfg.address = address

    def _close(self):
        for link in self._links.values():
            for sock in (link.inside, link.outside):
                if sock is not None:
                    sock.close()
            link.inside = link.outside = None
        for sock in (self._wake_r, self._wake_w):
            if sock is not None:
                sock.close()
        self._wake_r = self._wake_w = None
        if self._sel is not None:
            self._sel.close()
            self._sel = None
