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

