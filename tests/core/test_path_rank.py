# Which path carries the traffic (mast/policy.py rank): the peer's own priorities and costs for
# its addresses count as much as ours for our uplinks (docs/PROTOCOL.md, "Path selection").
from simnet import Net, config, established


def _peer_with_two_addresses(first, second, delays=(1, 1)):
    """a (one uplink) connects to b at b's first address; b has a second one. first/second:
    (priority, cost) b gives each. -> (net, a's association to b) once it has settled."""
    net = Net(0)
    net.node("a", config("a", {"b": {"addresses": ["10.9.0.1:6278"]}}))
    net.node("b", config("b", ["a"]))
    net.uplink("b", "wan1", ("10.9.0.1", 6278), delay=delays[0], priority=first[0], cost=first[1])
    net.uplink("b", "wan2", ("10.9.0.2", 6278), delay=delays[1], priority=second[0], cost=second[1])
    net.uplink("a", "eth", ("10.1.0.2", 6278), delay=1, priority=10, cost=0)
    net.nodes["a"].ep.connect("b", net.now)
    net.flush()
    net.run(net.now + 15000)
    assert established(net)
    return net, net.nodes["a"].ep.association("b")


def test_the_traffic_goes_to_the_address_the_peer_prefers():
    net, a = _peer_with_two_addresses((50, 0), (10, 0))
    assert a.primary is not None and a.primary.raddr == ("10.9.0.2", 6278), a.primary.name


def test_the_traffic_avoids_an_address_the_peer_says_is_metered():
    net, a = _peer_with_two_addresses((10, 10), (10, 0))
    assert a.primary is not None and a.primary.raddr == ("10.9.0.2", 6278), a.primary.name


def test_the_peers_first_choice_keeps_the_traffic_when_it_is_also_the_address_connected_to():
    net, a = _peer_with_two_addresses((10, 0), (50, 10))
    assert a.primary is not None and a.primary.raddr == ("10.9.0.1", 6278), a.primary.name


def test_on_failover_between_addresses_the_peer_likes_as_much_the_faster_one_is_taken():
    # (RTT alone never moves the traffic off a working path: failback is for priority and
    # cost; it decides where the traffic goes when the primary fails)
    net = Net(0)
    net.node("a", config("a", {"b": {"addresses": ["10.9.0.1:6278"]}}))
    net.node("b", config("b", ["a"]))
    for i, delay in ((1, 1), (2, 40), (3, 2), (4, 30)):
        net.uplink("b", "wan%d" % i, ("10.9.0.%d" % i, 6278), delay=delay, priority=10, cost=0)
    net.uplink("a", "eth", ("10.1.0.2", 6278), delay=1, priority=10, cost=0)
    net.nodes["a"].ep.connect("b", net.now)
    net.flush()
    net.run(net.now + 15000)
    assert established(net)
    a = net.nodes["a"].ep.association("b")
    assert a.primary.raddr == ("10.9.0.1", 6278), a.primary.name
    net.link("b", "wan1").cut = True
    net.run(net.now + 5000)
    assert a.primary is not None and a.primary.raddr == ("10.9.0.3", 6278), a.primary.name
