# Addresses a SET withdrew (docs/PROTOCOL.md 9.3): a packet still in flight from one is
# dropped, but a host that comes back to an address it had before (a renumbering X -> Y -> X:
# a PPPoE or DHCP lease handed out again) is there now, and its first packet from X is newer
# than the SET that withdrew X.

from simnet import up1, pair, established
from mast import wire
from mast.policy import ACTIVE

X = ("10.1.0.2", 6278)
Y = ("10.1.0.7", 6278)


def test_a_host_renumbered_back_to_an_address_it_had_keeps_its_association():
    net, a, b = up1()
    nonce = b.peer_nonce
    net.renumber("a", "eth", Y)
    net.run(net.now + 5000)
    assert b.primary is not None and b.primary.raddr == Y and X in b.withdrawn
    net.renumber("a", "eth", X)  # back to X: Y is gone, and X is still withdrawn at b
    net.run(net.now + 5000)
    assert net.nodes["b"].ep.association("a") is b and b.peer_nonce == nonce  # not replaced
    assert b.primary is not None and b.primary.raddr == X and X not in b.withdrawn
    assert a.primary is not None and a.primary.state == ACTIVE
    ep = net.nodes["b"].ep
    assert ep.send_data(b"back", net.now, "a")
    net.run(net.now + 100)
    assert [p for t, p in net.nodes["a"].payloads] == [b"back"]


def test_a_packet_sent_from_a_withdrawn_address_before_the_set_is_still_dropped():
    net, a, b = up1()
    # a KEEPALIVE a sent from X before it moved (a seq below the SET's), arriving late
    late = wire.seal(a.tx_mac, wire.KEEPALIVE, a.peer_label, a.seq, wire.enc_keepalive(1))
    a.seq += 1
    net.renumber("a", "eth", Y)
    net.run(net.now + 5000)
    assert X in b.withdrawn
    ep = net.nodes["b"].ep
    ep.receive("wan", X, late, net.now)
    assert ep.counters.get("withdrawn", 0) == 1 and X not in b.remotes


def test_an_address_is_withdrawn_only_until_the_next_list():
    net, a, b = up1()
    late = wire.seal(a.tx_mac, wire.KEEPALIVE, a.peer_label, a.seq, wire.enc_keepalive(1))
    a.seq += 1
    net.renumber("a", "eth", Y)  # SET [Y]: X withdrawn
    net.run(net.now + 5000)
    net.renumber("a", "eth", ("10.1.0.8", 6278))  # SET [Z]: Y withdrawn, X no longer
    net.run(net.now + 5000)
    ep = net.nodes["b"].ep
    ep.receive("wan", X, late, net.now)  # (older than the newest: only a withdrawal drops it)
    assert ep.counters.get("withdrawn", 0) == 0 and X in b.remotes


def test_an_uplink_that_comes_back_as_the_only_one_after_its_set_is_taken_there():
    # a router with two uplinks: eth goes down (SET [wifi]: eth's address withdrawn at b), then
    # wifi goes down and eth comes back on its old address, all before b hears of anything else
    net = pair(a_uplinks=[("eth", "10.1.0.2", 10, 0), ("wifi", "10.2.0.2", 20, 0)])
    net.run(net.now + 3000)
    assert established(net)
    A, b = net.nodes["a"].ep, net.nodes["b"].ep.association("a")
    A.uplink_down("eth", net.now)
    net.flush()
    net.run(net.now + 3000)
    assert X in b.withdrawn
    A.uplink_down("wifi", net.now)
    net.uplink("a", "eth", X)
    net.run(net.now + 5000)
    assert net.nodes["b"].ep.association("a") is b and b.primary is not None and b.primary.raddr == X
    assert net.nodes["b"].ep.send_data(b"back", net.now, "a")
    net.run(net.now + 100)
    assert [p for t, p in net.nodes["a"].payloads] == [b"back"]
