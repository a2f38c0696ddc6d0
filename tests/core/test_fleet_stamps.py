# A fleet server's endpoint (mast/endpoint.py; a module of its own for a board-sized heap): a
# COOKIE-ECHO a full heap cut short leaves no trace in the cookie stamps swept at 64 entries,
# and a fleet member listed by set_peer gets its association closed.
FLEET = "ZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXp7fH1+f4CBgoM="  # the server's fleet_psk


def test_a_cookie_echo_cut_short_by_a_full_heap_leaves_no_trace_for_the_64th_peer():
    # a fleet server keeps the last cookie stamp of each peer and sweeps the old ones when it
    # holds 64. A board whose COOKIE-ECHO ran out of memory, and which never tried again, must
    # leave nothing there: the next board then still gets in (before: the sweep met the empty
    # entry, failed, and refused every new board from then on)
    import binascii
    from simnet import Net
    from mast import keys
    from mast.assoc import Association

    net = Net()
    net.node("srv", {"name": "srv", "fleet_domain": "boards.example", "fleet_psk": FLEET, "peers": {}})
    net.uplink("srv", "wan", ("10.9.0.1", 6278))
    srv = net.nodes["srv"].ep
    net.nodes["srv"].events = None  # (not kept: 65 boards of them on a board-sized heap)

    def board(i):
        name = "b%d.boards.example" % i
        key = binascii.b2a_base64(keys.fleet_key({"fleet_psk": FLEET}, name)).strip().decode()
        net.node("n", {"name": name, "peers": {"srv": {"psk": key, "addresses": ["10.9.0.1"]}}})
        addr = ("10.1.%d.%d" % (i >> 8, i & 255 or 1), 6278)
        link = net.uplink("n", "eth", addr)
        net.nodes["n"].ep.connect("srv", net.now)
        net.flush()
        net.run(net.now + 50)
        up = srv.association(name) is not None and srv.association(name).state == 2
        srv.close(net.now, name)
        net.flush()
        net.run(net.now + 50)
        link.cut = True
        del net.nodes["n"], net.uplinks[("n", "eth")], net.links[addr]
        net.run(net.now + 3100)  # the server forgets it (a board-sized heap holds few)
        return up

    for i in range(1, 64):  # 63 boards in, and gone
        assert board(i), (i, srv.counters)
    start = Association.start_responder

    def out_of_memory(self, *args):
        net.links[("10.1.0.64", 6278)].cut = True  # and the board goes away (its echo is never repeated)
        raise MemoryError("memory allocation failed")

    Association.start_responder = out_of_memory
    try:
        assert not board(64)
    finally:
        Association.start_responder = start
    assert srv.counters.get("no_memory") == 1
    assert board(65), srv.counters  # the 65th name: (before: internal_error)
    assert "internal_error" not in srv.counters


def test_set_peer_listing_a_fleet_member_closes_its_association_keyed_from_the_fleet_key():
    # a board in by the fleet key is then listed with a key of its own (set_peer): its
    # association, keyed from the fleet key, is closed so that one under the listed key can start
    import binascii
    from simnet import Net
    from mast import keys

    net = Net()
    net.node("srv", {"name": "srv", "fleet_domain": "boards.example", "fleet_psk": FLEET, "peers": {}})
    net.uplink("srv", "wan", ("10.9.0.1", 6278))
    name = "b1.boards.example"
    key = binascii.b2a_base64(keys.fleet_key({"fleet_psk": FLEET}, name)).strip().decode()
    net.node("n", {"name": name, "peers": {"srv": {"psk": key, "addresses": ["10.9.0.1"]}}})
    net.uplink("n", "eth", ("10.1.0.2", 6278))
    net.nodes["n"].ep.connect("srv", net.now)
    net.flush()
    net.run(net.now + 1000)
    srv = net.nodes["srv"].ep
    assert srv.association(name).state == 2
    srv.set_peer(name, {"psk": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="}, net.now)
    net.flush()
    assert [e.reason for e in net.events("srv", "association_closed")] == ["reconfigured"]
    assert srv.association(name) is None
