# Churn of a fleet server (tests/core/test_churn.py has the rest; a module of its own, as each
# is near the edge of the 128K heap of the MicroPython runs): 200 boards' names associate and
# leave beside strangers' forged packets, and the server ends as it started.

import gc

from churnlib import SRV, _heap, _sizes


def _board(net, i):
    """Board i of the fleet (a name of its own, its fleet key) on node n0 or n1, connecting."""
    import binascii
    from simnet import config, PSK
    from mast import keys

    name = "b%d.f.ex" % i
    psk = binascii.b2a_base64(keys.fleet_key({"fleet_psk": PSK}, name))[:-1].decode()
    nm = "n%d" % (i % 2)
    net.node(nm, config(name, {"srv": {"addresses": ["10.9.0.1:6278"], "psk": psk}}, replay_window=64))
    net.nodes[nm].events = net.nodes[nm].payloads = net.nodes[nm].counts = None
    addr = ("10.1.%d.%d" % (i // 200 % 200, i % 200 + 2), 6278)
    net.uplink(nm, "eth", addr, delay=1)
    net.nodes[nm].ep.connect("srv", net.now)
    net.flush()
    return nm, addr


def test_a_server_whose_fleet_boards_come_and_go_and_strangers_probe_holds_no_more_after_200():
    # 200 board names associate and leave (SHUT), each beside an INIT with a forged tag, a PROBE
    # for no association and a COOKIE-ECHO that is not ours, from a new source each time: the
    # server ends as it started, its table of last cookies swept (at most 64 more than the names
    # accepted within a cookie's life, 60 s: docs/PROTOCOL.md 8.3)
    from simnet import Net, PSK
    from mast import wire
    from mast.crypto import Mac

    net = Net()
    net.node("srv", {"name": "srv", "fleet_domain": "f.ex", "fleet_psk": PSK,
                     "peers": {}, "replay_window": 64})
    net.nodes["srv"].events = net.nodes["srv"].payloads = net.nodes["srv"].counts = None
    net.uplink("srv", "wan", SRV)
    srv = net.nodes["srv"].ep
    junk = Mac(bytes(32))
    # the strangers' packets, made once while the heap is in one piece (a padded INIT is 1.2 KB:
    # made anew each time, a 128K heap in pieces had no block for the boards' own packets)
    body = wire.enc_init(7, bytes(16), 7, wire.KEYING_PSK, "x.f.ex", [(("198.51.0.1", 1024), 10, 0)])
    init = wire.seal(junk, wire.INIT, 0, 0, wire.pad_init(body))
    echo = wire.seal(junk, wire.COOKIE_ECHO, 777, 1, bytes(20) + body)
    probe = wire.seal(junk, wire.PROBE, 12345, 1, wire.enc_probe(bytes(8), 0))
    most = 0
    base = None
    for i in range(200):
        gc.collect()  # (a board's endpoint made in a heap in one piece: the test's, not the server's)
        nm, addr = _board(net, i)
        board = net.nodes[nm].ep
        for _ in range(12):  # (a 128K heap in pieces may lose a packet: no_memory, sent again)
            net.run(net.now + 500)
            if board.association("srv").state == 2:
                break
        assert board.association("srv").state == 2, (i, srv.counters)
        src = ("198.51.%d.%d" % (i % 200, i % 7 + 1), 1024 + i)
        for pkt in (init, probe, echo):
            srv.receive("wan", src, pkt, net.now)
        board.close(net.now)
        net.flush()
        net.run(net.now + 5000)  # (the SHUT, the linger)
        del net.nodes[nm]
        del net.links[net.uplinks.pop((nm, "eth")).addr]
        most = max(most, len(srv._last_stamp))
        if i == 3:
            base = _sizes(srv), _heap()
    assert srv.by_peer == {} and srv.assocs == {} and srv.counters.get("internal_error") is None
    assert most <= 64 + 60000 // 5500 + 1, most  # (a name every 5.5 s or more: 11 within 60 s)
    s = _sizes(srv)
    s[6] = base[0][6] = 0  # (the table of last cookies: its bound above)
    s[5] = base[0][5] = 0  # (the counters: keyed by a fixed set of reasons, one came later)
    assert s == base[0], (base[0], s)
    heap = _heap()
    if heap is not None and base[1] is not None:
        assert heap - base[1] < 64 * 120, (base[1], heap)  # (at most the 64 cookie entries more)
