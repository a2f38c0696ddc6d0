# Events the core hands to the runtime through Endpoint.next_event().
# One small class: `kind` names the event and FIELDS says which attributes it
# carries. A path is named "uplink>address:port", e.g. "eth>192.0.2.7:6278".
#
#   association_up      peer, path            the handshake finished on path
#   association_closed  peer, reason          "shut", "peer_shut", "timeout", "outage", "replaced",
#                                             "reconfigured", "exhausted" (2^48 seq used)
#   path_up             peer, path, rtt_ms    a path answered a challenge
#   path_down           peer, path            a path stopped answering (probe_fail probes lost)
#   failover            peer, old, new, gap_ms, failback
#                       the primary changed; gap_ms: since the old primary last proved
#                       it worked; failback: back to a better path after hysteresis
#   addresses_changed   peer, addresses       the peer's complete list (INIT, SET)
#   nat_observed        uplink, local, observed   a PROBE-ACK saw another source for our uplink
#   data                peer, payload, ip     a datagram (ip=False) or an IP packet (ip=True)
#   peer_error          peer, code, tsn       the peer sent an authenticated ERR

FIELDS = {
    "association_up": ("peer", "path"),
    "association_closed": ("peer", "reason"),
    "path_up": ("peer", "path", "rtt_ms"),
    "path_down": ("peer", "path"),
    "failover": ("peer", "old", "new", "gap_ms", "failback"),
    "addresses_changed": ("peer", "addresses"),
    "nat_observed": ("uplink", "local", "observed"),
    "data": ("peer", "payload", "ip"),
    "peer_error": ("peer", "code", "tsn"),
}


class Event:
    """ev.kind, and the fields FIELDS names for it as attributes (ev.peer, ev.rtt_ms). The
    values are kept as one tuple and read by name: no field is ever set by name. setattr
    interns the name (the names in FIELDS are string constants, not interned when the
    module loads) the first time an event of that kind is made, and when MicroPython's
    table of names is full at that moment it takes a new one, several KB in one piece: a
    MemoryError in the middle of a handshake or a failover on a fragmented heap."""

    def __init__(self, kind, *values):
        self.kind = kind
        self.values = values

    def __getattr__(self, name):
        if name == "kind" or name == "values":  # (an Event not made by __init__: a copy)
            raise AttributeError(name)
        f = FIELDS[self.kind]
        for i in range(min(len(f), len(self.values))):
            if f[i] == name:
                return self.values[i]
        raise AttributeError(name)

    def as_dict(self):
        d = {"event": self.kind}
        f = FIELDS[self.kind]
        for i in range(len(f)):
            d[f[i]] = self.values[i]
        return d

    def __repr__(self):
        d = self.as_dict()
        return "<%s %s>" % (self.kind, " ".join(["%s=%r" % (k, d[k]) for k in FIELDS[self.kind]]))
