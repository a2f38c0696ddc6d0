"""Amplification toward a third party, measured exactly on the simulated network (simnet).

The reflector is the server b of simnet.pair() (an association with the board a). Bytes are
counted as sent by the core (MAST packets; add 28 per packet for UDP/IPv4 on the wire):

- out: what b sends to the victims (addresses that belong to nobody here);
- in: what the attacker sent to b to make it do so.

Attackers: a stranger without keys who spoofs the victim's address as source (every message
type, the association's real label, random tags); a holder of the PSK sending INITs from the
victim's address (b answers INIT-ACK there, statelessly); and a malicious peer (a, with the
association's keys) who sends authenticated packets from the victim's address, or SETs that list
victims (issue 15.4: b probes every new address).
"""

import os

import atklib  # noqa: F401  (sys.path)
import fuzzgen
import simnet
from mast import wire
from mast.crypto import Mac

VICTIM = ("198.18.0.66", 6278)
A_ADDR = ("10.1.0.2", 6278)  # a's eth: where a's packets come from
TYPE_NAMES = {1: "INIT", 2: "INIT-ACK", 3: "COOKIE-ECHO", 4: "COOKIE-ACK", 5: "SET",
              6: "SET-ACK", 7: "PROBE", 8: "PROBE-ACK", 9: "SHUT", 10: "SHUT-ACK",
              11: "SHUT-COMPLETE", 12: "ERR", 13: "KEEPALIVE", 16: "DATA", 17: "DATA-IP"}


class Meter:
    """Counts what each node sends, by destination, from the moment it is made."""

    def __init__(self, net):
        self.net = net
        self.sent = []  # (time, node, dst, length)
        orig = net.transmit

        def transmit(n, uplink, dst, data):
            self.sent.append((net.now, n.name, dst, len(data)))
            orig(n, uplink, dst, data)

        net.transmit = transmit

    def bytes(self, node, dsts=None, since=None, until=None, exclude=None):
        total = 0
        for t, n, dst, length in self.sent:
            if n != node or (since is not None and t < since) or (until is not None and t >= until):
                continue
            if dsts is not None and dst not in dsts:
                continue
            if exclude is not None and dst in exclude:
                continue
            total += length
        return total


def established_pair():
    net = simnet.pair()
    net.run(2000)
    assert simnet.established(net)
    net.nodes["a"].payloads = net.nodes["b"].payloads = None
    return net


def deliver(net, data, src, node="b", uplink="wan"):
    net.nodes[node].ep.receive(uplink, src, data, net.now)
    net.flush()


def peer_packet(net, ptype, body):
    """A packet from a, tagged with the association's key and a's next seq."""
    a = net.nodes["a"].ep.association("b")
    pkt = wire.seal(a.tx_mac, ptype, a.peer_label, a.seq, body)
    a.seq += 1
    return bytes(pkt)


def body_for(ptype, r, a):
    """A valid body of ptype, as a peer would send it."""
    if ptype == wire.SET:
        a.tsn = (a.tsn + 1) & 0xFFFFFFFF
        return wire.enc_set(a.tsn, a.ep.addr_list())
    if ptype in (wire.SET_ACK, wire.SHUT_ACK, wire.SHUT_COMPLETE):
        return wire.enc_tsn(a.peer_tsn)
    if ptype == wire.PROBE:
        return wire.enc_probe(r.bytes(8), 0)
    if ptype == wire.PROBE_ACK:
        return wire.enc_probe_ack(r.bytes(8), VICTIM)
    if ptype == wire.ERR:
        return wire.enc_err(2, 0)
    if ptype == wire.KEEPALIVE:
        return wire.enc_keepalive(a.window.highest if a.window.highest > 0 else 1)
    if ptype in (wire.DATA, wire.DATA_IP):
        return r.bytes(64)
    if ptype == wire.COOKIE_ACK:
        return wire.enc_addrs(a.ep.addr_list())
    if ptype == wire.INIT_ACK:
        return r.bytes(44)
    return r.bytes(40)


def stranger_ratio(ptype, n=50, seed="amp"):
    """A stranger (no keys) sends n packets of ptype to b from the victim's address, with b's
    real label and fresh seqs, random bodies and tags. -> (bytes in, bytes out to victim)."""
    net = established_pair()
    m = Meter(net)
    r = fuzzgen.Rand(seed)
    b_label = net.nodes["b"].ep.association("a").label
    a = net.nodes["a"].ep.association("b")
    sent = 0
    for i in range(n):
        if ptype == wire.INIT:
            body = wire.pad_init(wire.enc_init(r.below(1 << 30) + 1, r.bytes(16), 1, 0, "a",
                                               [(VICTIM, 0, 0)]))
            pkt = wire.seal(Mac(r.bytes(32)), wire.INIT, 0, 0, body)
        else:
            body = body_for(ptype, r, a)
            if ptype == wire.COOKIE_ECHO:
                body = r.bytes(20) + wire.pad_init(wire.enc_init(r.below(1 << 30) + 1, r.bytes(16), 1,
                                                                 0, "a", [(VICTIM, 0, 0)]))
            pkt = wire.seal(Mac(r.bytes(32)), ptype, b_label, a.seq + 10 + i, body)
        sent += len(pkt)
        deliver(net, bytes(pkt), VICTIM)
    net.run(net.now + 5000)
    return sent, m.bytes("b", dsts=(VICTIM,))


def init_ratio(n=50):
    """A PSK holder sends n valid INITs (96 bytes) from the victim's address.
    -> (bytes in, bytes out to victim); b answers each with a 72-byte INIT-ACK."""
    net = established_pair()
    m = Meter(net)
    b_ep = net.nodes["b"].ep
    mac = Mac(fuzzgen.k_init(bytes(range(32))))  # simnet.PSK: bytes 0..31
    sent = 0
    for i in range(n):
        body = wire.pad_init(wire.enc_init(1000 + i, os.urandom(16), i, 0, "a", [(VICTIM, 0, 0)]))
        pkt = bytes(wire.seal(mac, wire.INIT, 0, 0, body))
        sent += len(pkt)
        deliver(net, pkt, VICTIM)
    assert b_ep.counters.get("mac", 0) == 0
    return sent, m.bytes("b", dsts=(VICTIM,))


def spoofed_peer_ratio(ptype, n=20, seed="amp"):
    """The peer itself (with the keys) sends n fresh authenticated packets of ptype to b,
    one every 100 ms, with the victim's address as source. -> (bytes in, bytes out to the
    victim, within 10 s)."""
    net = established_pair()
    m = Meter(net)
    r = fuzzgen.Rand(seed)
    a = net.nodes["a"].ep.association("b")
    sent = 0
    for i in range(n):
        pkt = peer_packet(net, ptype, body_for(ptype, r, a))
        sent += len(pkt)
        deliver(net, pkt, VICTIM)
        net.run(net.now + 100)
    net.run(net.now + 10000)
    return sent, m.bytes("b", dsts=(VICTIM,))


def victims(k, base=0):
    return [("198.18.%d.%d" % (1 + (base + i) // 200, 10 + (base + i) % 200), 6278) for i in range(k)]


def set_victims(rounds=1, every_ms=1000, watch_ms=30000, k=15):
    """The peer sends SETs listing its own address and k victims (issue 15.4: a 177-byte SET
    for k = 15); with rounds > 1 a fresh list every every_ms. -> dict of bytes: set_in (the
    SETs), peer_in (everything a sent to b), out (b to the victims) at 300 ms, 1 s, watch_ms,
    and after the first 3 s (out_late, peer_in_late)."""
    net = established_pair()
    m = Meter(net)
    a = net.nodes["a"].ep.association("b")
    t0 = net.now
    set_in = 0
    all_victims = []
    for i in range(rounds):
        vs = victims(k, i * k)
        all_victims += vs
        a.tsn = (a.tsn + 1) & 0xFFFFFFFF
        pkt = peer_packet(net, wire.SET, wire.enc_set(a.tsn, [(A_ADDR, 10, 0)] + [(v, 10, 0) for v in vs]))
        set_in += len(pkt)
        deliver(net, pkt, A_ADDR)
        net.run(net.now + every_ms)
    net.run(t0 + watch_ms)
    vset = set(all_victims)
    res = {"set_bytes": set_in // rounds, "set_in": set_in, "rounds": rounds, "victims": len(vset)}
    for name, until in (("300ms", t0 + 300), ("1s", t0 + 1000), ("all", t0 + watch_ms)):
        res["out_" + name] = m.bytes("b", dsts=vset, until=until)
        res["peer_in_" + name] = m.bytes("a", dsts=(("10.9.0.1", 6278),), until=until) + set_in
    res["out_late"] = m.bytes("b", dsts=vset, since=t0 + 3000)
    res["peer_in_late"] = m.bytes("a", dsts=(("10.9.0.1", 6278),), since=t0 + 3000)
    return res


def ratio(out, inp):
    return out / float(inp) if inp else 0.0
