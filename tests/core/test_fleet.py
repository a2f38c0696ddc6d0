# A fleet on one server (docs/CONFIG.md "A fleet on one server", PROTOCOL.md section 4): with
# fleet_domain and fleet_psk the server takes any board named <x>.<fleet_domain> whose key is
# derived from the fleet key and its name, without a per-board entry; a board outside the
# domain, or with another key, is refused. One peer is added or removed without touching the
# other associations.

import binascii

from simnet import Net, config, PSK
from mast import keys, wire
from mast.crypto import Mac

FLEET = "ZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXp7fH1+f4CBgoM="  # the server's fleet_psk
SRV = ("10.9.0.1", 6278)


def _b64(raw):
    return binascii.b2a_base64(raw).strip().decode()


def _board_key(name):
    return _b64(keys.fleet_key({"fleet_psk": FLEET}, name))


def _net(**server):
    net = Net()
    cfg = {"name": "srv", "fleet_domain": "boards.example", "fleet_psk": FLEET, "peers": {}}
    cfg.update(server)
    if cfg["fleet_psk"] is None:
        del cfg["fleet_psk"]
    net.node("srv", cfg)
    net.uplink("srv", "wan", SRV)
    return net


def _board(net, node, name, addr, key):
    net.node(node, {"name": name, "peers": {"srv": {"psk": key, "addresses": ["10.9.0.1"]}}})
    net.uplink(node, "eth", (addr, 6278))
    net.nodes[node].ep.connect("srv", net.now)
    net.flush()


def test_a_fleet_key_is_the_hkdf_of_the_fleet_key_and_the_name():
    from mast.crypto import hkdf

    k = keys.fleet_key({"fleet_psk": FLEET}, "b1.boards.example")
    assert k == hkdf(b"", keys.decode_psk(FLEET), b"mast1 fleet b1.boards.example", 32)
    assert len(k) == 32 and k != keys.fleet_key({"fleet_psk": FLEET}, "b2.boards.example")


def test_boards_under_the_fleet_domain_associate_without_an_entry_each():
    net = _net()
    for i in range(2):  # (two boards: three endpoints fit a board-sized heap)
        name = "b%d.boards.example" % i
        _board(net, "b%d" % i, name, "10.1.0.%d" % (i + 2), _board_key(name))
    net.run(net.now + 3000)
    srv = net.nodes["srv"].ep
    assert sorted(srv.by_peer) == ["b0.boards.example", "b1.boards.example"], srv.counters
    assert srv.cfg["peers"] == {}  # nothing was listed, nothing was added
    for i in range(2):
        a = net.nodes["b%d" % i].ep.association("srv")
        assert a.state == 2
        assert srv.send_data(b"to b%d" % i, net.now, "b%d.boards.example" % i)
    net.flush()
    net.run(net.now + 50)
    for i in range(2):
        assert [p for t, p in net.nodes["b%d" % i].payloads] == [b"to b%d" % i]


def test_a_name_outside_the_domain_or_a_wrong_key_is_refused():
    net = _net()
    _board(net, "x", "x.other.example", "10.1.0.2", _board_key("x.other.example"))
    _board(net, "y", "y.boards.example", "10.1.0.3", _board_key("z.boards.example"))  # z's key
    _board(net, "z", "evilboards.example", "10.1.0.4", _board_key("evilboards.example"))
    net.run(net.now + 5000)
    srv = net.nodes["srv"].ep
    assert srv.by_peer == {} and srv.assocs == {}
    assert srv.counters.get("unknown_peer", 0) >= 2  # x.other.example, evilboards.example
    assert srv.counters.get("mac", 0) >= 1  # y: the INIT's tag is not under y's key


def test_without_fleet_psk_psk_keying_admits_no_unlisted_name():
    net = _net(fleet_psk=None)
    _board(net, "b", "b1.boards.example", "10.1.0.2", _board_key("b1.boards.example"))
    net.run(net.now + 3000)
    srv = net.nodes["srv"].ep
    assert srv.by_peer == {} and srv.counters.get("unknown_peer", 0) >= 1


def test_a_listed_name_wins_over_the_fleet():
    # revoking one board: list it with another key; its fleet key no longer works
    net = _net(peers={"b1.boards.example": {"psk": PSK}})
    _board(net, "old", "b1.boards.example", "10.1.0.2", _board_key("b1.boards.example"))
    net.run(net.now + 3000)
    assert net.nodes["srv"].ep.by_peer == {}
    _board(net, "new", "b1.boards.example", "10.1.0.3", PSK)
    net.run(net.now + 3000)
    assert net.nodes["srv"].ep.association("b1.boards.example").state == 2


def _live_bytes():
    """The heap in use after a collection: gc.mem_alloc() on MicroPython, tracemalloc's count
    on CPython (the caller started it); None where a collection frees nothing until the test
    returns (the wasm32 build: tests/test_micropython32_core.py)."""
    import gc

    if not hasattr(gc, "mem_alloc"):
        import tracemalloc

        gc.collect()
        return tracemalloc.get_traced_memory()[0]
    gc.collect()
    a = gc.mem_alloc()
    x = bytearray(4096)
    x = None
    gc.collect()
    return gc.mem_alloc() if gc.mem_alloc() < a + 4096 else None


def test_inits_with_forged_tags_from_many_fleet_names_leave_nothing_behind():
    # any name under fleet_domain gets as far as its INIT's tag; the key it was checked with
    # was kept for the name, tag good or not: ~500 B per name (a server's memory grew without
    # bound, and a 128K MicroPython heap was full after ~60 names, every datagram then lost)
    net = _net()
    srv = net.nodes["srv"].ep
    src = ("10.1.0.9", 6278)
    junk = Mac(bytes(32))

    def forged(i):
        body = wire.enc_init(0x0A000001 + i, bytes(16), 7, wire.KEYING_PSK, "x%d.boards.example" % i,
                             [(src, 10, 0)])
        return wire.seal(junk, wire.INIT, 0, 0, wire.pad_init(body))

    try:
        import tracemalloc

        tracemalloc.start()
    except ImportError:  # MicroPython: gc.mem_alloc()
        tracemalloc = None
    try:
        for i in range(20):
            srv.receive("wan", src, forged(i), net.now)
        before = _live_bytes()
        for i in range(20, 500):
            srv.receive("wan", src, forged(i), net.now)
        after = _live_bytes()
    finally:
        if tracemalloc is not None:
            tracemalloc.stop()
    assert srv.counters.get("mac") == 500, srv.counters
    if before is not None:
        assert after - before < 8192, after - before
    # and a real board still gets in
    _board(net, "b", "b1.boards.example", "10.1.0.2", _board_key("b1.boards.example"))
    net.run(net.now + 3000)
    assert srv.association("b1.boards.example").state == 2, srv.counters


def test_adding_and_removing_one_peer_leaves_the_other_associations_alone():
    net = Net()
    net.node("srv", config("srv", ["b0"]))
    net.uplink("srv", "wan", SRV)
    net.node("b0", config("b0", {"srv": {"addresses": ["10.9.0.1"]}}))
    net.uplink("b0", "eth", ("10.1.0.2", 6278))
    net.nodes["b0"].ep.connect("srv", net.now)
    net.flush()
    net.run(net.now + 3000)
    srv = net.nodes["srv"].ep
    b0 = srv.association("b0")
    assert b0.state == 2
    # a bad section is refused and changes nothing
    try:
        srv.set_peer("b1", {"psk": "not base64"}, net.now)
        raise AssertionError("a bad PSK was taken")
    except ValueError as e:
        assert "peers.b1.psk" in str(e) and "not base64" not in str(e)
    assert "b1" not in srv.cfg["peers"]
    # b0's section changes but not its key: its association stays; b1 is added
    srv.set_peer("b0", {"psk": PSK, "addresses": ["10.1.0.2"]}, net.now)
    srv.set_peer("b1", {"psk": PSK}, net.now)
    assert srv.association("b0") is b0 and srv.cfg["peers"]["b0"]["addresses"] == ["10.1.0.2"]
    net.node("b1", config("b1", {"srv": {"addresses": ["10.9.0.1"]}}))
    net.uplink("b1", "eth", ("10.1.0.3", 6278))
    net.nodes["b1"].ep.connect("srv", net.now)
    net.flush()
    net.run(net.now + 3000)
    b1 = srv.association("b1")
    assert b1 is not None and b1.state == 2
    assert srv.association("b0") is b0 and b0.state == 2
    assert [e.peer for t, e in net.nodes["srv"].events if e.kind == "association_closed"] == []
    # removing b0 shuts b0 down (gracefully: b0 hears of it) and only b0
    srv.remove_peer("b0", net.now)
    net.flush()
    net.run(net.now + 1000)
    closed = [(e.peer, e.reason) for t, e in net.nodes["srv"].events if e.kind == "association_closed"]
    assert closed == [("b0", "shut")]
    assert [(e.peer, e.reason) for t, e in net.nodes["b0"].events if e.kind == "association_closed"] == [
        ("srv", "peer_shut")]
    assert srv.association("b1") is b1 and b1.state == 2
    assert srv.association("b0") is None
