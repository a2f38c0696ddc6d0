# A peer that lost our association: a new INIT beside the old one (any initiator: a board,
# `mast endpoint`, mastd). The runtime (driver.py) loads this only when an association it
# initiated has no usable path, and calls turn() each loop turn from then on.
#
# A server that crashed and came back (a kill -9, an OOM kill, a power cut, a board's reset:
# no SHUT went out) has no association with its peers any more. It drops their packets
# (`unknown_label`) and answers none of their probes, so each peer's association sees every
# path fail and, by the protocol alone, waits out its outage budget (`outage_s`, 300 s) before
# a new INIT: five minutes without a tunnel (measured). Once an association this side
# initiated has had no usable path for RESTART_MS, an INIT goes out beside it, a new
# association in its own right (its own label and nonce, keyed as any); the first of the two
# to work wins:
#
# - the new one comes up: the peer had lost the old one, which is closed (`association_closed`,
#   reason `replaced`, as in docs/PROTOCOL.md 8.3) and the new one is the peer's association;
# - a path of the old one answers first (an outage of the network, not of the peer): the new
#   attempt is dropped, unseen (it never came up: no event), and nothing changes;
# - the old one reaches its outage budget first: the attempt goes on as the peer's association.
#
# An attempt that has sent its last INIT but one is dropped and a new one starts, so the core
# never reports a timeout for an association that is not the peer's. Only peers this side
# initiates are watched (a server's fleet is not: it waits for its boards' INITs), so a turn
# costs nothing per associated board. At most `limit` attempts at once (a board: one, as each
# is an association's worth of heap); the slot a dropped attempt frees goes to the other peers
# in an outage first, so each gets its turn. docs/RUNTIME.md, "A peer that restarts".
#
# Restricted Python: the same file runs on CPython and MicroPython.

import sys

from mast import policy
from mast.assoc import Association, ESTABLISHED, CLOSED

MICROPYTHON = sys.implementation.name == "micropython"  # (not driver's: tests load this alone)
RESTART_MS = 10000  # no usable path this long: an INIT beside the association
LIMIT = 1 if MICROPYTHON else None  # attempts at once: heap


def turn(rt, ep, now):
    """The runtime's turn (driver.py run_timers calls it while an association of rt.initiated
    has no usable path, or a watch is on): step the watch, made now if need be; once there is
    nothing left to watch, let it go, and on MicroPython this module too (a board gets its heap
    back)."""
    w = rt.restarts
    if w is None:
        w = rt.restarts = RestartWatch(rt.initiated)
    if not w.step(ep, now):
        rt.restarts = None
        if MICROPYTHON:
            sys.modules.pop("runtime.restart", None)
            pkg = sys.modules.get("runtime")
            if pkg is not None and hasattr(pkg, "restart"):
                delattr(pkg, "restart")


def watch(rt, peers, now):
    """A new configuration's initiated peers (rt: the runtime; mastd's reload): all of them
    (rt.connect adds one); an attempt for a peer no longer among them goes."""
    rt.initiated[:] = peers
    w = rt.restarts
    if w is not None:
        for peer in [p for p in w.attempts if p not in peers]:
            w.attempts.pop(peer).close(now, "abandoned")
        w.rekeyed(getattr(rt.ep, "ep", rt.ep), now)  # (before the loop reads another packet)


class RestartWatch:
    def __init__(self, peers, limit=LIMIT):
        """peers: a list of the names of the peers this side initiates (kept, not copied: the
        runtime's own list); limit: attempts at once (None: no limit)."""
        self.peers = peers
        self.limit = limit
        self.attempts = {}  # peer -> the new association beside its old one
        self.keys = {}  # peer -> the key its attempt is keyed from (the peer's at its start)

    def step(self, ep, now):
        """Start, settle or drop the attempts; call once a loop turn (after the runtime's poll).
        -> whether there is anything left to watch: an attempt, or an association of these
        peers without a usable path (False: the runtime lets the watch go)."""
        busy = self.rekeyed(ep, now)
        for peer in self.peers:
            old = ep.by_peer.get(peer)
            a = self.attempts.get(peer)
            if a is None:
                if (old is not None and old.initiator and old.state == ESTABLISHED
                        and old.primary is None):
                    busy = True
                    if (now - old.outage_since >= RESTART_MS
                            and (self.limit is None or len(self.attempts) < self.limit)):
                        self._start(ep, peer, now)
                continue
            if a.state == CLOSED:
                del self.attempts[peer]  # (closed with the endpoint's other associations)
            elif old is None:  # the old one spent its outage budget: the attempt goes on
                ep.by_peer[peer] = a
                del self.attempts[peer]
            elif a.state == ESTABLISHED:  # the peer had lost the old one
                ep.by_peer[peer] = a  # (first: a full heap in close() cannot undo it)
                del self.attempts[peer]
                closing = old.state != ESTABLISHED
                old.close(now, "replaced")
                if closing:  # the old one was being shut (a close, a shutdown): so is this one
                    a.shut(now)
                    ep.touch(a)
            elif old.primary is not None or old.state != ESTABLISHED or a.hs.attempt >= policy.INIT_RETRIES:
                # the old one works again (or is closing), or the attempt would time out:
                # drop it, unseen (a new one starts next turn if the outage goes on; the
                # peers after it in this turn, and those before it in the next, go first)
                del self.attempts[peer]
                a.close(now, "abandoned")
                busy = True  # (the next turn looks again)
        return busy or len(self.attempts) > 0

    def rekeyed(self, ep, now):
        """Drop each attempt whose peer's key (or our keying) changed since it started (set_peer,
        reconfigure, a reload): it may be keyed from the old key already (its INIT-ACK came),
        and must not come up as the peer's association under it, as the old association does
        not (the core closed it, "reconfigured"); the runtime's redial starts a new INIT under
        the new key. -> whether one was dropped."""
        gone = [p for p in self.attempts if _key(ep, p) != self.keys.get(p)]
        for peer in gone:
            self.attempts.pop(peer).close(now, "abandoned")
        return len(gone) > 0

    def _start(self, ep, peer, now):
        self.keys[peer] = _key(ep, peer)
        a = Association(ep, peer, ep.new_label(), True, now)
        a.handshake_timer(now)
        ep.assocs[a.label] = a
        self.attempts[peer] = a
        ep.touch(a)


def _key(ep, peer):
    """The key an association with peer is keyed from now; None if peer has none (removed)."""
    try:
        return ep.psk(peer)
    except Exception:  # (KeyError, ValueError: no longer a peer, nor a fleet member)
        return None
