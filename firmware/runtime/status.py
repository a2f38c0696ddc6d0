# The status document of an endpoint: what `status` shows on the board console,
# `mastctl status` and `mast endpoint`. It reads the core's state; formatting is
# the runtime's business, so it lives here and not in the protocol core.

import sys

from mast.addr import fmt
from mast.compat import sha256, binascii
from mast.policy import STATE_NAMES as PATH_STATES
from mast.assoc import STATE_NAMES


def path_status(p):
    return {"path": p.name, "state": PATH_STATES[p.state], "rtt_ms": p.srtt,
            "rx": p.rx, "tx": p.tx, "lost_probes": p.lost}


def nonce_id(a):
    """A short fingerprint of an association's two nonces (the initiator's first): the same
    on both ends (a board, `mast endpoint`, mastd) for the association's whole life; a new INIT
    exchange gives a new one. Not secret."""
    if a.peer_nonce is None:
        return None
    n = (a.nonce + a.peer_nonce) if a.initiator else (a.peer_nonce + a.nonce)
    return binascii.hexlify(sha256(b"mast1 nonce id" + n).digest()[:8]).decode()


def association_status(a):
    return {
        "peer": a.peer,
        "state": STATE_NAMES[a.state],
        "label": a.label,
        "peer_label": a.peer_label,
        "initiator": a.initiator,
        # names the association without showing the nonces: the same on both ends
        "nonce_id": nonce_id(a),
        "primary": a.primary.name if a.primary else None,
        "paths": [path_status(p) for p in a.plist],
        "remotes": [fmt(r) for r in a.remotes],
        "tx_seq": a.seq,
        "rx_highest": a.window.highest,
    }


def uplink_status(u):
    return {"addr": fmt(u.addr), "priority": u.priority, "cost": u.cost,
            "public": fmt(u.public) if u.public else None}


def endpoint_status(ep, lazy=None):
    """A JSON-ready dict: uplinks, associations (paths, primary), drop counters. lazy(seq,
    fn), if given, makes the associations' entry instead of a list (mastd: one its control
    socket writes a few at a time, between turns of its loop)."""
    ups = {}
    for name, u in ep.uplinks.items():
        ups[name] = uplink_status(u)
    a = ep.by_peer.values()
    return {
        "name": ep.name,
        "uplinks": ups,
        "associations": lazy(a, association_status) if lazy else [association_status(x) for x in a],
        "counters": dict(ep.counters),
    }


def runtime_name():
    """"micropython 1.29.0" / "cpython 3.11.2"."""
    v = sys.implementation.version
    return "%s %d.%d.%d" % (sys.implementation.name, v[0], v[1], v[2])


def socket_status(u):
    """A runtime uplink's socket (runtime/driver.py Uplink): its addresses and counters."""
    return {"bind": fmt(u.bind), "public": fmt(u.public),
            "via": fmt(u.via) if u.via else None, "device": u.device,
            "tx": u.tx, "rx": u.rx, "tx_errors": u.tx_errors,
            "rx_errors": u.rx_errors, "rx_dropped": u.rx_dropped,
            "last_error": u.last_error, "dead": u.dead,
            "resting": u.resting is not None}


def runtime_status(rt, lazy=None):
    """Runtime.status: the endpoint's status, each uplink's socket and the runtime's own
    counters (and the heap, on MicroPython)."""
    from .driver import MICROPYTHON

    s = endpoint_status(rt.ep, lazy)
    for name, u in rt.uplinks.items():
        s["uplinks"].setdefault(name, {})["socket"] = socket_status(u)
    s["runtime"] = {"interpreter": runtime_name(), "counters": dict(rt.counters),
                    "now_ms": rt.now()}
    if MICROPYTHON:
        import gc

        gc.collect()  # so the figures are the live heap, not garbage waiting for a collection
        s["runtime"]["heap_free"] = gc.mem_free()
        s["runtime"]["heap_used"] = gc.mem_alloc()
    return s
