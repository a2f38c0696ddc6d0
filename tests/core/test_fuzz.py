# Random and mutated packets thrown at a live association: nothing raises out
# of the core, every packet is counted exactly once (accepted or dropped for a
# reason), and the association still carries traffic afterwards.

import simnet
from simnet import pair, Stream, count_received
from mast import wire

ROUNDS = 600


def _drops(counters):
    return sum([n for k, n in counters.items() if k != "rx" and not k.startswith("tx_")])


def _mutate(rng, pkt):
    p = bytearray(pkt)
    how = rng.randint(0, 5)
    if how == 0 and p:  # flip some bits
        for i in range(rng.randint(1, 4)):
            p[rng.randint(0, len(p) - 1)] ^= 1 << rng.randint(0, 7)
    elif how == 1:  # truncate
        p = p[: rng.randint(0, len(p))]
    elif how == 2:  # extend
        p += rng(rng.randint(1, 40))
    elif how == 3 and len(p) > 2:  # another type, same label
        p[1] = rng.randint(0, 20)
    elif how == 4:  # a body of random bytes under a real header
        p = p[:12] + rng(rng.randint(0, 80)) + p[-16:]
    else:  # replay it unchanged
        pass
    return bytes(p)


def test_fuzzed_input_is_counted_dropped_and_harmless():
    net = pair()
    net.run(2000)
    seen = []

    def keep(src, dst, data):
        if len(seen) < 40:
            seen.append(bytes(data))
        return False

    net.drop = keep
    s = Stream(net, "a", rate=100)
    net.run(net.now + 500)
    net.drop = None
    assert len(seen) >= 20
    rng = simnet.Rng("fuzz")
    for node in ("a", "b"):
        ep = net.nodes[node].ep
        c0 = dict(ep.counters)
        for i in range(ROUNDS):
            if i % 3 == 0:
                pkt = rng(rng.randint(0, 200))
            else:
                pkt = _mutate(rng, seen[rng.randint(0, len(seen) - 1)])
            src = ("10.9.0.1", 6278) if node == "a" else ("10.%d.0.2" % rng.randint(1, 3), 6278)
            up = "eth" if node == "a" else "wan"
            ep.receive(up, src, pkt, net.now)
            net.flush()
        rx = ep.counters["rx"] - c0.get("rx", 0)
        counted = _drops(ep.counters) - _drops(c0)
        assert rx == ROUNDS
        assert counted == rx, (node, ep.counters, c0)  # each packet counted exactly once
        assert ep.counters.get("internal_error", 0) == 0, ep.last_error
        assert ep.counters.get("accepted", 0) - c0.get("accepted", 0) < ROUNDS // 4
    # the association is intact and valid traffic still flows
    n0 = count_received(net.nodes["b"])
    m0 = s.seq
    net.run(net.now + 1000)
    s.stop()
    net.run(net.now + 100)
    assert simnet.established(net)
    assert count_received(net.nodes["b"]) - n0 >= (s.seq - m0) - 1
    assert net.nodes["a"].ep.association().nonce == net.nodes["b"].ep.association().peer_nonce


def test_every_truncation_of_every_message_type_is_dropped_cleanly():
    net = simnet.Net()
    seen = {}

    def keep(src, dst, data):
        seen.setdefault(data[1], bytes(data))
        return False

    net.drop = keep
    net.node("a", simnet.config("a", {"b": {"addresses": ["10.9.0.1"]}}))
    net.node("b", simnet.config("b", ["a"]))
    net.uplink("b", "wan", ("10.9.0.1", 6278))
    net.uplink("a", "eth", ("10.1.0.2", 6278))
    a = net.nodes["a"].ep
    a.connect("b", 0)
    net.flush()
    net.run(2000)
    s = Stream(net, "a", rate=100)
    net.run(net.now + 300)
    s.stop()
    net.renumber("a", "eth", ("10.1.0.3", 6278))
    net.run(net.now + 2000)
    assert a.send_data(b"\x45" + bytes(27), net.now, ip=True)  # refused by b with ERR
    net.flush()
    net.run(net.now + 100)
    a.close(net.now)
    net.flush()
    net.run(net.now + 1000)
    assert sorted(seen) == [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 16, 17]
    b = net.nodes["b"].ep
    c0 = dict(b.counters)
    n = 0
    for t, pkt in seen.items():
        for k in range(len(pkt)):
            b.receive("wan", ("10.1.0.2", 6278), pkt[:k], net.now)
            n += 1
    assert b.counters.get("internal_error", 0) == 0
    assert _drops(b.counters) - _drops(c0) == n
    assert b.counters.get("accepted", 0) == c0.get("accepted", 0)



AUTH_ROUNDS = 400


def _auth_body(rng, ptype, a, own):
    """A valid body of ptype from the peer a, with one field mutated about half the time."""
    k = rng.randint(0, 9)
    if ptype == wire.SET:
        extra = []
        for i in range(rng.randint(0, 16 - len(own))):
            fam6 = rng.randint(0, 3) == 0
            ip = "2001:db8::%x" % rng.randint(1, 65535) if fam6 else "192.0.2.%d" % rng.randint(1, 254)
            extra.append(((ip, rng.randint(1, 65535)), rng.randint(0, 255), rng.randint(0, 255)))
        if k == 0 and extra:
            extra[0] = (("0.0.0.0", 6278), 0, 0)  # unspecified: refused with ERR 1
        a.tsn = (a.tsn + (0 if k == 1 else 1)) & 0xFFFFFFFF  # k == 1: the same TSN again
        body = bytearray(wire.enc_set(a.tsn, own + extra))  # a's own list first, intact
        if k == 2:
            body[4] = 17 + rng.randint(0, 200)  # too many entries
        elif k == 3 and len(body) > 5 + 9 * len(own):
            body[5 + 9 * len(own)] = rng.randint(7, 255)  # a bad family in an extra entry
        elif k == 4:
            body += bytes([rng.randint(1, 255)])  # a trailing byte that is not padding
        elif k == 5:
            body = body[: rng.randint(0, len(body) - 1)]
        return bytes(body)
    if ptype == wire.PROBE:
        body = bytearray(wire.enc_probe(rng(8), rng.randint(0, 255)))
    elif ptype == wire.PROBE_ACK:
        body = bytearray(rng(8) + wire.enc_sockaddr(("198.51.100.%d" % rng.randint(1, 254), 6278)))
        if k == 2:
            body[8] = rng.randint(0, 255)  # family
    elif ptype == wire.KEEPALIVE:
        body = bytearray(wire.enc_keepalive(rng.randint(0, 1 << 30)))
    elif ptype == wire.ERR:
        body = bytearray(wire.enc_err(rng.randint(0, 255), rng.randint(0, 1 << 30)))
    elif ptype in (wire.DATA, wire.DATA_IP):
        body = bytearray(rng(rng.randint(0, 300)))
    elif ptype == wire.COOKIE_ACK:
        body = bytearray(wire.enc_addrs(own))
    else:  # SET-ACK, SHUT-ACK, SHUT-COMPLETE, INIT-ACK: a TSN or random bytes
        body = bytearray(wire.enc_tsn(rng.randint(0, 1 << 30)) if ptype != wire.INIT_ACK else rng(44))
    if k >= 5 and body:
        if k == 5:
            body = body[: rng.randint(0, len(body) - 1)]
        elif k == 6:
            body += rng(rng.randint(1, 20))
        else:
            body[rng.randint(0, len(body) - 1)] ^= 1 << rng.randint(0, 7)
    return bytes(body)


def test_authenticated_packets_with_mutated_bodies_reach_the_handlers_and_are_counted():
    # the attacker holds the keys (the PSK is in the test): every packet passes the replay
    # window and the tag, so its body reaches the state table and the handlers (a with one
    # uplink: the fuzzed lists, not a's own uplinks, fill b's tables)
    net = pair(a_uplinks=[("eth", "10.1.0.2", 10, 0)])
    net.run(2000)
    a_ep, b_ep = net.nodes["a"].ep, net.nodes["b"].ep
    a = a_ep.association("b")
    own = a_ep.addr_list()
    types = (wire.SET, wire.SET, wire.PROBE, wire.PROBE_ACK, wire.KEEPALIVE, wire.ERR, wire.DATA,
             wire.DATA_IP, wire.COOKIE_ACK, wire.SET_ACK, wire.SHUT_ACK, wire.SHUT_COMPLETE,
             wire.INIT_ACK)  # (not SHUT: it would end the association, a valid outcome)
    net.nodes["b"].payloads = None
    net.nodes["a"].events = net.nodes["b"].events = None  # (not kept: a board-sized heap)
    rng = simnet.Rng("authfuzz")
    c0 = dict(b_ep.counters)
    for i in range(AUTH_ROUNDS):
        ptype = types[rng.randint(0, len(types) - 1)]
        pkt = wire.seal(a.tx_mac, ptype, a.peer_label, a.seq, _auth_body(rng, ptype, a, own))
        a.seq += 1
        b_ep.receive("wan", ("10.1.0.2", 6278), pkt, net.now)
        net.flush()
        if i % 50 == 49:
            net.run(net.now + 200)
    rx = b_ep.counters["rx"] - c0.get("rx", 0)
    assert rx >= AUTH_ROUNDS
    assert _drops(b_ep.counters) - _drops(c0) == rx  # each datagram counted once
    assert b_ep.counters.get("internal_error", 0) == 0, b_ep.last_error
    for reason in ("accepted", "malformed", "bad_addresses", "unexpected"):
        assert b_ep.counters.get(reason, 0) > c0.get(reason, 0), (reason, b_ep.counters)
    # the association is the same one and still carries data
    net.run(net.now + 3000)
    assert simnet.established(net)
    assert b_ep.association("a").peer_nonce == a.nonce
    net.nodes["b"].payloads = []
    assert a_ep.send_data(b"after the fuzz", net.now)
    net.flush()
    net.run(net.now + 100)
    assert [p for t, p in net.nodes["b"].payloads] == [b"after the fuzz"]
