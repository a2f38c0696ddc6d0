"""Presence under an address flood (issue 15.3), measured on the sans-IO server with a
simulated clock: `flood_pps` requests a second from `sources` spoofed addresses (well-formed
LOOKUPs under a served name, with tags the attacker cannot make), while a legitimate host sends
one LOOKUP a second. How many of its lookups are answered, and what does a flood packet cost
the server (CPU time per packet, measured here)?

The presence helper's netns benchmark (bench/presence_flood.py) measures the real server
process; this is the protocol logic alone, exact and fast, for before/after comparisons.
"""

import time

import atklib  # noqa: F401  (sys.path: the firmware under test)
import fuzzgen

KEY_BOARD = bytes(range(32))
KEY_PEER = bytes(range(32, 64))
LEGIT = ("198.51.100.7", 6278)


def measure(seconds=14, flood_pps=5000, sources=2000, seed="pres"):
    from presence import msg
    from presence.server import Server

    srv = Server({"board1.example": KEY_BOARD, "peer.example": KEY_PEER})
    up_peer, _ = msg.keys(KEY_PEER, "peer.example")
    r = fuzzgen.Rand(seed)
    per_ms = flood_pps / 1000.0
    due = 0.0
    counter = 1
    asked = answered = 0
    flood = 0
    cost = 0.0
    k = 0
    t0 = 1000000
    for ms in range(seconds * 1000):
        now = t0 + ms
        due += per_ms
        while due >= 1:
            due -= 1
            k += 1
            src = ("10.%d.%d.%d" % (k % sources // 65536, k % sources // 256 % 256, k % sources % 256), 6279)
            name = "board1.example" if k % 2 else "peer.example"
            pkt = msg.seal(fuzzgen_mac(r), msg.LOOKUP, r.below(1 << 62), name,
                           msg.enc_lookup("board1.example"))
            c = time.perf_counter()
            srv.receive(src, pkt, now)
            cost += time.perf_counter() - c
            flood += 1
            srv.out = []  # (nothing is answered; kept empty)
        if ms % 1000 == 500:
            counter += 1
            pkt = msg.seal(up_peer, msg.LOOKUP, counter, "peer.example", msg.enc_lookup("board1.example"))
            srv.receive(LEGIT, pkt, now)
            asked += 1
            for dst, data in srv.out:
                if dst == LEGIT and data[1] == msg.LOOKUP_ACK:
                    answered += 1
            srv.out = []
    return {"seconds": seconds, "flood_pps": flood_pps, "sources": sources, "flood_sent": flood,
            "asked": asked, "answered": answered,
            "us_per_flood_packet": round(1e6 * cost / flood, 1) if flood else None,
            "cpu_share_at_rate": round(cost / seconds, 3),
            "counters": dict(srv.counters)}


_macs = []


def fuzzgen_mac(r):
    """A tag under a key the attacker made up (a Mac object, as msg.seal wants)."""
    from mast.crypto import Mac

    if len(_macs) < 64:
        _macs.append(Mac(r.bytes(32)))
    return _macs[r.below(len(_macs))]
