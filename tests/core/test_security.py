# Nobody changes an association's addresses without its keys; a new address
# carries no data until it has answered a challenge; nothing can be replayed;
# unauthenticated input is never answered.

import simnet
from simnet import pair, Stream, count_received
from mast import wire
from mast.crypto import Mac


def _capture(net, ptype):
    """Record every packet of ptype that crosses the network (and let it pass)."""
    got = []

    def watch(src, dst, data):
        if data[1] == ptype:
            got.append((src, bytes(data)))
        return False

    net.drop = watch
    return got


def _b(net):
    return net.nodes["b"].ep.association("a")


def test_a_spoofed_set_with_a_bad_tag_changes_nothing():
    net = pair()
    net.run(2000)
    b = _b(net)
    before = sorted(b.remotes)
    listed = list(b.peer_list)
    forged_key = Mac(bytes(32))  # not the association's key
    body = wire.enc_set(b.peer_tsn + 1, [(("203.0.113.66", 6278), 0, 0)])
    pkt = wire.seal(forged_key, wire.SET, b.label, 1000, body)
    sent_before = net.link("b", "wan").sent
    net.nodes["b"].ep.receive("wan", ("10.1.0.2", 6278), pkt, net.now)
    net.flush()
    assert sorted(b.remotes) == before
    assert ("203.0.113.66", 6278) not in b.remotes
    assert net.nodes["b"].ep.counters["mac"] == 1
    assert net.link("b", "wan").sent == sent_before  # not answered
    # a genuine SET (never delivered) with one bit flipped fails the same way
    got = []

    def steal(src, dst, data):
        if data[1] == wire.SET and not got:
            got.append(bytes(data))
            return True
        return False

    net.drop = steal
    net.renumber("a", "cell", ("10.3.0.50", 6278), priority=30, cost=10)
    net.run(net.now + 10)
    assert got
    evil = bytearray(got[0])
    evil[20] ^= 1
    net.nodes["b"].ep.receive("wan", ("10.1.0.2", 6278), evil, net.now)
    assert net.nodes["b"].ep.counters["mac"] == 2
    assert b.peer_list == listed  # the advertised list is unchanged


def test_a_replayed_set_is_rejected():
    net = pair()
    net.run(2000)
    got = _capture(net, wire.SET)
    net.renumber("a", "cell", ("10.3.0.50", 6278), priority=30, cost=10)
    net.run(net.now + 1000)
    net.renumber("a", "cell", ("10.3.0.51", 6278), priority=30, cost=10)
    net.run(net.now + 1000)
    b = _b(net)
    assert ("10.3.0.51", 6278) in b.remotes and ("10.3.0.50", 6278) not in b.remotes
    # an attacker replays the first SET (the one that listed 10.3.0.50)
    old = got[0][1]
    net.nodes["b"].ep.receive("wan", ("10.1.0.2", 6278), old, net.now)
    net.flush()
    assert ("10.3.0.50", 6278) not in b.remotes
    assert net.nodes["b"].ep.counters["duplicate"] >= 1  # its seq was seen, inside the window


def _one_data_delivered(payload):
    """a and b up; a sends one DATA (captured) and b gets it. -> (net, the capture)"""
    net = pair()
    net.run(2000)
    got = _capture(net, wire.DATA)
    net.nodes["a"].ep.send_data(payload, net.now)
    net.flush()
    net.run(net.now + 50)
    assert [p for t, p in net.nodes["b"].payloads] == [payload]
    return net, got


def test_replayed_data_is_delivered_once():
    net, got = _one_data_delivered(b"pay me once")
    for i in range(3):
        net.nodes["b"].ep.receive("wan", ("10.1.0.2", 6278), got[0][1], net.now)
    net.flush()
    assert [p for t, p in net.nodes["b"].payloads] == [b"pay me once"]
    assert net.nodes["b"].ep.counters["duplicate"] == 3


def test_a_duplicate_data_with_a_bad_tag_is_not_answered():
    # a redundant copy of DATA (its seq seen) still earns the path a KEEPALIVE, but only if
    # its tag checks: a forged "copy" is dropped and nothing is sent in answer
    net, got = _one_data_delivered(b"once")
    b_ep = net.nodes["b"].ep
    net.run(net.now + b_ep.prof["ack"])  # past the path's ack pacing: a KEEPALIVE may go now
    forged = bytearray(got[0][1])
    forged[-1] ^= 1  # one bit of the tag
    sent = net.link("b", "wan").sent
    dup = b_ep.counters.get("duplicate", 0)
    b_ep.receive("wan", ("10.1.0.2", 6278), forged, net.now)
    net.flush()
    assert b_ep.counters.get("duplicate", 0) == dup + 1, b_ep.counters  # (seen before its tag)
    assert net.link("b", "wan").sent == sent
    # the genuine copy is answered with a KEEPALIVE, and neither is delivered again
    b_ep.receive("wan", ("10.1.0.2", 6278), got[0][1], net.now)
    net.flush()
    assert net.link("b", "wan").sent == sent + 1
    assert [p for t, p in net.nodes["b"].payloads] == [b"once"]


def test_data_late_but_inside_the_window_is_accepted_once_and_older_is_refused():
    net = pair(replay_window=64)
    net.run(2000)
    got = _capture(net, wire.DATA)
    net.drop = None
    held = []

    def hold(src, dst, data):  # hold back the first DATA, deliver the rest
        if data[1] == wire.DATA and not held:
            held.append(bytes(data))
            return True
        return False

    net.drop = hold
    a = net.nodes["a"].ep
    for i in range(10):
        a.send_data(b"d%d" % i, net.now)
        net.flush()
    net.run(net.now + 50)
    assert len(net.nodes["b"].payloads) == 9
    b_ep = net.nodes["b"].ep
    b_ep.receive("wan", ("10.1.0.2", 6278), held[0], net.now)  # late, inside the window
    b_ep.receive("wan", ("10.1.0.2", 6278), held[0], net.now)  # and again
    net.flush()
    assert [p for t, p in net.nodes["b"].payloads].count(b"d0") == 1
    # a packet older than the window is refused even if never seen
    net.drop = hold
    held.clear()
    net.nodes["b"].payloads = None  # 70 more payloads would not fit a board-sized heap
    a.send_data(b"old", net.now)
    for i in range(70):
        a.send_data(b"n%d" % i, net.now)
        net.run(net.now + 1)
    net.run(net.now + 50)
    before = b_ep.counters.get("too_old", 0)
    accepted = b_ep.counters["accepted"]
    b_ep.receive("wan", ("10.1.0.2", 6278), held[0], net.now)
    assert b_ep.counters["too_old"] == before + 1
    assert b_ep.counters["accepted"] == accepted and b_ep.events == []  # "old" not delivered


def test_unauthenticated_input_is_never_answered():
    net = pair()
    net.run(2000)
    b_ep = net.nodes["b"].ep
    before = net.link("b", "wan").sent
    rng = simnet.Rng("junk")
    for i in range(200):
        junk = rng(rng.randint(0, 120))
        b_ep.receive("wan", ("10.66.0.1", 999), junk, net.now)
        # well-formed headers with random labels and types
        hdr = bytes([1, rng.randint(2, 17)]) + rng(10)
        b_ep.receive("wan", ("10.66.0.1", 999), hdr + rng(40), net.now)
    net.flush()
    assert net.link("b", "wan").sent == before
    assert b_ep.counters.get("internal_error", 0) == 0
