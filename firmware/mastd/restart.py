"""A peer that lost our association: a new INIT beside the old one (mastd, as initiator).

A concentrator that crashed and came back (a kill -9, an OOM kill, a power cut: no SHUT went
out) has no association with its routers any more. It drops their packets (`unknown_label`)
and answers none of their probes, so each router's association sees every path fail and, by
itself, waits out its outage budget (`outage_s`, 300 s) before a new INIT: five minutes
without a tunnel (measured). Once an association this mastd initiated has had no usable path
for RESTART_MS, an INIT goes out beside it, a new association in its own right (its own label
and nonce, keyed as any); the first of the two to work wins:

- the new one comes up: the peer had lost the old one, which is closed (`association_closed`,
  reason `replaced`, as in docs/PROTOCOL.md 8.3) and the new one is the peer's association;
- a path of the old one answers first (an outage of the network, not of the peer): the new
  attempt is dropped, unseen (it never came up: no event), and nothing changes;
- the old one reaches its outage budget first: the attempt goes on as the peer's association.

An attempt that has sent its last INIT but one is dropped and a new one starts, so the core
never reports a timeout for an association that is not the peer's. Only peers this mastd
initiates are watched (a server's fleet is not: it waits for its boards' INITs), so a turn
costs nothing per associated board. docs/MASTD.md, "A concentrator that restarts".
"""

from mast import policy
from mast.assoc import Association, ESTABLISHED, CLOSED

RESTART_MS = 10000  # no usable path this long: an INIT beside the association


class RestartWatch:
    def __init__(self, peers):
        """peers: the names of the peers this mastd initiates."""
        self.peers = peers
        self.attempts = {}  # peer -> the new association beside its old one

    def set_peers(self, ep, peers, now):
        """A new configuration's initiated peers; an attempt for a peer no longer among them goes."""
        self.peers = peers
        for peer in [p for p in self.attempts if p not in peers]:
            self.attempts.pop(peer).close(now, "abandoned")

    def step(self, ep, now):
        """Start, settle or drop the attempts; call once a loop turn (after the runtime's poll)."""
        for peer in self.peers:
            old = ep.by_peer.get(peer)
            a = self.attempts.get(peer)
            if a is None:
                if (old is not None and old.initiator and old.state == ESTABLISHED
                        and old.primary is None and now - old.outage_since >= RESTART_MS):
                    self._start(ep, peer, now)
                continue
            if a.state == CLOSED:
                del self.attempts[peer]  # (closed with the endpoint's other associations)
            elif old is None:  # the old one spent its outage budget: the attempt goes on
                del self.attempts[peer]
                ep.by_peer[peer] = a
            elif a.state == ESTABLISHED:  # the peer had lost the old one
                del self.attempts[peer]
                old.close(now, "replaced")
                ep.by_peer[peer] = a
            elif old.primary is not None or old.state != ESTABLISHED or a.hs.attempt >= policy.INIT_RETRIES:
                # the old one works again (or is closing), or the attempt would time out:
                # drop it, unseen (a new one starts next turn if the outage goes on)
                del self.attempts[peer]
                a.close(now, "abandoned")

    def _start(self, ep, peer, now):
        a = Association(ep, peer, ep.new_label(), True, now)
        a.handshake_timer(now)
        ep.assocs[a.label] = a
        self.attempts[peer] = a
        ep.touch(a)
