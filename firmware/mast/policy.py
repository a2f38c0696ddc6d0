# Timer and path policy: every implementation default and every rule that
# decides when to probe, when a path is suspect or failed, and which path is
# primary. Spec constants (sizes, types) live in wire.py; nothing here is on
# the wire, so two implementations may choose differently and still talk.

from .compat import SLOTS, const
from .addr import fmt

# Path states
UNVERIFIED = const(0)  # never answered a challenge: PROBEs only
ACTIVE = const(1)  # answered a challenge; may carry data
SUSPECT = const(2)  # missed feedback or a probe; still used, probed every RTO
FAILED = const(3)  # probe_fail probes in a row unanswered; probed with backoff
STATE_NAMES = ("unverified", "active", "suspect", "failed")

# Timer profiles (all in ms). See docs/PROTOCOL.md "Timer profiles".
#  ack: a receiver of DATA sends KEEPALIVE feedback at most this often
#  send_timeout: DATA outstanding and no feedback for this long -> primary SUSPECT
#  rto_min/rto_max: clamp of the RFC 6298 RTO used as probe timeout
#  probe_fail: consecutive lost probes that make a path FAILED
#  probe: first interval of probes on an idle ACTIVE path (x METERED_FACTOR if cost > 0);
#    it doubles with every routine answer, up to probe_max, and starts again at
#    `probe` when the path misses a probe or comes back (REAP: idle is cheap)
#  failed_min/failed_max: backoff of probes on FAILED paths
#  failback: how long a better path must stay ACTIVE before it becomes primary again
PROFILES = {
    "default": {
        "ack": 100, "send_timeout": 300, "rto_min": 100, "rto_max": 1000,
        "probe_fail": 3, "probe": 5000, "probe_max": 60000, "failed_min": 1000,
        "failed_max": 10000, "failback": 2000,
    },
    "fast": {
        "ack": 20, "send_timeout": 60, "rto_min": 20, "rto_max": 40,
        "probe_fail": 2, "probe": 1000, "probe_max": 10000, "failed_min": 200,
        "failed_max": 5000, "failback": 1000,
    },
}
METERED_FACTOR = const(6)
RTO_INITIAL = const(1000)  # before any RTT sample (RFC 6298)
REQUEST_RTO_MAX = const(30000)  # cap of the backoff of INIT/SET/SHUT retransmissions
INIT_RETRIES = const(10)
REQUEST_RETRIES = const(12)
SHUT_RETRIES = const(5)
COOKIE_LIFE = const(60000)
LINGER = const(3000)  # a closed association still answers a late SHUT-ACK this long
RESEND_MAX = const(512)  # DATA packets kept for resend_ms
RANK_UNKNOWN = const(255)  # priority of an observed address whose entry is unknown


def rto(srtt, rttvar, prof):
    if srtt is None:
        r = RTO_INITIAL
    else:
        r = srtt + max(1, 4 * rttvar)
    return min(max(r, prof["rto_min"]), max(prof["rto_max"], prof["rto_min"]))


# A path's state beyond its uplink, address, state and next probe, with the value a new path
# has. On MicroPython these live on the class and an instance holds only what changed (a
# path that never answers, as under a flood of address lists, stays small: issue 15.1); on
# CPython each path has them in __slots__.
_DEFAULTS = (
    ("srtt", None), ("rttvar", 0),
    ("lost", 0),  # consecutive probes lost
    ("challenge", None), ("probe_sent", 0),  # the outstanding challenge, and when it went
    ("backoff", 0),  # failed: probes are spaced by backoff steps
    ("late", False),  # failed, and its probe was answered after its RTO (slower than rto_max)
    ("idle_n", 0),  # routine answers in a row to idle probes: the interval doubles
    ("peer_probe", None),  # when the peer's own PROBE last arrived on this path
    ("active_since", None),
    ("last_ok", None),  # last time the path proved it works (probe answer or feedback)
    ("rx", 0), ("tx", 0),  # packets received and sent on it
    # REAP-style failure detection while DATA flows on this path
    ("sent_hi", 0),  # highest DATA seq sent on it
    ("fb_hi", 0),  # highest seq the peer reported in KEEPALIVE on it
    ("unacked_until", None),  # DATA sent and no feedback since: when the path turns SUSPECT
    ("ack_next", None),  # feedback sent on it: when more may go at once
    ("ack_due", None),  # feedback owed for DATA received since
)


class Path:
    """One (local uplink, remote address) pair of an association."""

    if SLOTS:
        __slots__ = ("uplink", "raddr", "state", "probe_due") + tuple(k for k, _ in _DEFAULTS)

    def __init__(self, uplink, raddr, now):
        self.uplink = uplink  # Uplink object (endpoint.py)
        self.raddr = raddr  # ("ip", port)
        self.state = UNVERIFIED
        self.probe_due = now  # next probe time (None: no periodic probe)
        if SLOTS:
            for k, v in _DEFAULTS:
                setattr(self, k, v)

    @property
    def name(self):
        """"uplink>address:port", for events and status (made when asked: one attribute
        less per path is a smaller block on a board)."""
        return self.uplink.name + ">" + fmt(self.raddr)

    def rto(self, prof):
        # a FAILED path's probe asks whether it works at all: it waits rto_max, so an answer
        # slower than the old RTO (the RTT rose) still counts and brings the path back
        return rto(None if self.state == FAILED else self.srtt, self.rttvar, prof)

    def rtt_sample(self, r):
        if self.srtt is None:
            self.srtt = r
            self.rttvar = r // 2
        else:
            self.rttvar = (3 * self.rttvar + abs(self.srtt - r)) // 4
            self.srtt = (7 * self.srtt + r) // 8


if not SLOTS:
    for _k, _v in _DEFAULTS:
        setattr(Path, _k, _v)
    del _DEFAULTS, _k, _v  # (on the class now: __init__ reads them only with SLOTS)


def rank(path, remote):
    """Lower is better: our uplink's priority + the peer's priority for the
    address, then both costs, then the measured RTT, as one int below 2^30 (a
    small int on every port): sums of 9 bits each, RTT in 12 bits (capped)."""
    u = path.uplink
    r = path.srtt
    r = RTO_INITIAL if r is None else min(r, 4095)
    return ((u.priority + remote.prio) << 9 | (u.cost + remote.cost)) << 12 | r


def idle_probe_interval(path, remote, prof, nat_refresh):
    """Interval of keep-alive probes on an ACTIVE path that carries no feedback:
    from `probe`, doubling while the path answers, up to `probe_max`; longer where
    either end is metered, never longer than the NAT refresh."""
    i = min(prof["probe"] << min(path.idle_n, 8), prof["probe_max"])
    if path.uplink.cost or remote.cost:
        i *= METERED_FACTOR
    if path.uplink.natted:
        i = min(i, nat_refresh)
    return i


def failed_backoff(path, prof, validated=True):
    """Wait before the next probe of a FAILED path: from failed_min, doubling, up to
    failed_max; x METERED_FACTOR on a metered uplink, and again for an address that never
    answered at all (a private address behind the peer's NAT answers never)."""
    b = prof["failed_min"] << min(path.backoff, 16)
    cap = prof["failed_max"] * (METERED_FACTOR if path.uplink.cost else 1)
    if not validated:
        cap *= METERED_FACTOR
    return min(b, cap)


def request_rto(base, attempt):
    return min(base << min(attempt, 16), REQUEST_RTO_MAX)
