# A fleet server's reload (Endpoint.reconfigure) of its fleet keys (docs/CONFIG.md "A fleet on
# one server": revoke every board at once by changing fleet_psk; docs/MASTD.md's reload table):
# a new fleet_psk closes every fleet member's association and the old keys are refused; a new
# fleet_domain shuts down the members no longer under it. A module of its own: test_fleet.py's
# tests run at the edge of a 128K MicroPython heap.

import binascii

from simnet import Net
from mast import keys

FLEET = "ZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXp7fH1+f4CBgoM="  # the server's fleet_psk
FLEET2 = "gIGCg4SFhoeIiYqLjI2Oj5CRkpOUlZaXmJmam5ydnp8="  # another one


def _key(name):
    return binascii.b2a_base64(keys.fleet_key({"fleet_psk": FLEET}, name)).strip().decode()


def _server(domain, fleet):
    return {"name": "srv", "fleet_domain": domain, "fleet_psk": fleet, "peers": {}}


def _net_with_b1():
    net = Net()
    net.node("srv", _server("boards.example", FLEET))
    net.uplink("srv", "wan", ("10.9.0.1", 6278))
    _board(net, "b", "b1.boards.example", "10.1.0.2")
    net.run(net.now + 3000)
    assert net.nodes["srv"].ep.association("b1.boards.example").state == 2
    return net


def _board(net, node, name, addr):
    net.node(node, {"name": name, "peers": {"srv": {"psk": _key(name), "addresses": ["10.9.0.1"]}}})
    net.uplink(node, "eth", (addr, 6278))
    net.nodes[node].ep.connect("srv", net.now)
    net.flush()


def _closed(net, node):
    return [(e.peer, e.reason) for e in net.events(node, "association_closed")]


def test_a_new_fleet_psk_closes_every_fleet_members_association_and_the_old_keys_are_refused():
    net = _net_with_b1()
    srv = net.nodes["srv"].ep
    srv.reconfigure(_server("boards.example", FLEET2), net.now)
    net.flush()
    net.run(net.now + 100)
    assert _closed(net, "srv") == [("b1.boards.example", "reconfigured")]
    assert srv.association("b1.boards.example") is None
    mac = srv.counters.get("mac", 0)
    _board(net, "c", "b2.boards.example", "10.1.0.3")  # keyed from the old fleet_psk
    net.run(net.now + 3000)
    assert srv.association("b2.boards.example") is None
    assert srv.counters.get("mac", 0) > mac, srv.counters


def test_a_new_fleet_domain_shuts_down_the_members_no_longer_under_it():
    net = _net_with_b1()
    net.nodes["srv"].ep.reconfigure(_server("other.example", FLEET), net.now)
    net.flush()
    net.run(net.now + 1000)
    assert _closed(net, "srv") == [("b1.boards.example", "shut")]
    assert _closed(net, "b") == [("srv", "peer_shut")]
