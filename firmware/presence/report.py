# Status documents of the presence server and client: what `mast presence`, mastd's
# `mastctl status` and the endpoint's {"op": "presence"} show. Reading state only; kept
# apart from server.py and client.py so that a board that never asks pays no heap for it.
# Restricted Python: runs on MicroPython and CPython.

from mast.addr import fmt
from . import msg


def server_status(srv, now):
    """A JSON-ready dict: each served name's registration and subscribers; drop counters."""
    names = {}
    for n in srv.names.values():
        reg = n.addrs is not None and n.expires > now
        names[n.name] = {
            "registered": reg,
            "addresses": [fmt(a) for a, _, _ in n.addrs] if reg else [],
            "observed": fmt(n.observed) if reg else None,
            "ttl_left_s": (n.expires - now + 999) // 1000 if reg else 0,
            "contact": fmt(n.contact) if n.contact else None,
            "subscribers": sorted([w for w in n.subs if n.subs[w].expires > now]),
        }
    return {"names": names, "counters": dict(srv.counters)}


def client_status(p):
    """A presence client's registrations, the peers it follows and its drop counters."""
    regs = []
    for t in p.tasks:
        if t.kind == msg.REGISTER:
            regs.append({"server": fmt(t.server), "ttl": t.granted,
                         "observed": fmt(t.observed) if t.observed else None,
                         "answered_ms": t.answered})
    peers = {}
    for w in p.peers.values():
        peers[w.peer] = {"dns": w.dns, "resolved": w.resolved,
                         "servers": [fmt(s) for s in p.servers_of(w)],
                         "dns_addresses": [fmt(a) for a in w.dns_addrs],
                         "presence_addresses": [fmt(a) for a in w.record or ()],
                         "outage": w.outage}
    return {"name": p.name, "registrations": regs, "peers": peers, "counters": dict(p.presence_counters)}
