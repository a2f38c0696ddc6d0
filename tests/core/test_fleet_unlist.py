# A fleet board that was listed with a key of its own, then unlisted (Endpoint.remove_peer,
# `mast endpoint`'s peer op): the name is still a fleet member, but its key is now the one
# derived from fleet_psk. The association keyed from the listed key must not outlive the
# listing: whoever holds that key (why it was unlisted) must not keep sending data and
# changing the association's addresses (docs/PROTOCOL.md section 13, "Address changes need
# the keys"; reconfigure closes it too).

from simnet import Net, PSK

FLEET = "ZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXp7fH1+f4CBgoM="  # the server's fleet_psk
BOARD = "b0.boards.example"


def _net():
    net = Net()
    net.node("srv", {"name": "srv", "fleet_domain": "boards.example", "fleet_psk": FLEET,
                     "peers": {BOARD: {"psk": PSK}}})  # listed: its own key, not the fleet's
    net.uplink("srv", "wan", ("10.9.0.1", 6278))
    net.node("b0", {"name": BOARD, "peers": {"srv": {"psk": PSK, "addresses": ["10.9.0.1"]}}})
    net.uplink("b0", "eth", ("10.1.0.2", 6278))
    net.nodes["b0"].ep.connect("srv", net.now)
    net.flush()
    net.run(net.now + 3000)
    a = net.nodes["srv"].ep.association(BOARD)
    assert a is not None and a.state == 2
    return net, a


def test_unlisting_a_fleet_board_ends_the_association_keyed_from_its_listed_key():
    net, a = _net()
    srv = net.nodes["srv"].ep
    srv.remove_peer(BOARD, net.now)
    net.flush()
    net.run(net.now + 3000)
    # the holder of the listed key (here the board itself) can neither send data nor move
    # the association to an address of its choosing (a SET)
    b0 = net.nodes["b0"]
    b0.ep.send_data(b"after", net.now, "srv")
    net.renumber("b0", "eth", ("10.1.0.7", 6278))
    net.run(net.now + 3000)
    assert net.nodes["srv"].payloads == []
    assert a.state == 5 and ("10.1.0.7", 6278) not in a.remotes, (a.state, list(a.remotes))
    assert srv.association(BOARD) is None and srv.assocs == {}
    assert [e.reason for e in net.events("srv", "association_closed")] == ["shut"]


def test_unlisting_a_fleet_board_keyed_like_the_fleet_lets_it_associate_again():
    # the cost of the close: a board whose key is the fleet's comes back with a new INIT
    from mast import keys
    import binascii

    net = Net()
    key = binascii.b2a_base64(keys.fleet_key({"fleet_psk": FLEET}, BOARD)).strip().decode()
    net.node("srv", {"name": "srv", "fleet_domain": "boards.example", "fleet_psk": FLEET,
                     "peers": {BOARD: {"psk": key}}})
    net.uplink("srv", "wan", ("10.9.0.1", 6278))
    net.node("b0", {"name": BOARD, "peers": {"srv": {"psk": key, "addresses": ["10.9.0.1"]}}})
    net.uplink("b0", "eth", ("10.1.0.2", 6278))
    b0 = net.nodes["b0"].ep
    b0.connect("srv", net.now)
    net.flush()
    net.run(net.now + 3000)
    srv = net.nodes["srv"].ep
    srv.remove_peer(BOARD, net.now)
    net.flush()
    net.run(net.now + 3000)
    assert b0.association("srv") is None
    b0.connect("srv", net.now)
    net.flush()
    net.run(net.now + 3000)
    assert srv.association(BOARD).state == 2 and b0.association("srv").state == 2
    assert b0.send_data(b"again", net.now, "srv")
    net.flush()
    net.run(net.now + 100)
    assert [p for t, p in net.nodes["srv"].payloads] == [b"again"]
