# The handshake's harder cases, beyond test_handshake.py (whose module sits at the edge of the
# 128K heap the MicroPython runs give each module): an uplink that flaps (down, then up again
# with the same address: a Wi-Fi reconnect with the same lease) in the middle of a handshake,
# and an initiator that starts over after its COOKIE-ECHOs went unanswered.

import simnet
from simnet import pair, pair1
from mast import wire


def test_an_uplink_that_flaps_while_the_cookie_ack_is_in_flight_is_no_ghost_primary():
    # the handshake kept the path its COOKIE-ECHO went out on; eth went down and came back
    # (a Wi-Fi reconnect with the same lease) before the COOKIE-ACK came, and that removed
    # path became the primary: in no path list, never probed, so when eth died for good
    # nothing failed over and every datagram went to the dead uplink (0 of 1001 delivered)
    net = pair(a_uplinks=[("eth", "10.1.0.2", 10, 0), ("wifi", "10.2.0.2", 20, 0)])
    A = net.nodes["a"].ep
    held = []

    def hold_cookie_ack(src, dst, data):
        if data[1] == wire.COOKIE_ACK and not held:
            held.append(bytes(data))
            return True
        return False

    net.drop = hold_cookie_ack
    net.run(net.now + 30)
    assert len(held) == 1
    A.uplink_down("eth", net.now)
    net.flush()
    A.uplink_up("eth", ("10.1.0.2", 6278), net.now, priority=10, cost=0)
    net.flush()
    net.drop = None
    A.receive("eth", ("10.9.0.1", 6278), held[0], net.now)
    net.flush()
    a = A.association("b")
    assert a.state == 2 and a.primary in a.plist, (a.primary.name, [p.name for p in a.plist])
    net.run(net.now + 5000)
    net.link("a", "eth").cut = True
    A.uplink_down("eth", net.now)
    net.flush()
    net.nodes["b"].payloads = []
    s = simnet.Stream(net, "a", rate=50)
    net.run(net.now + 4000)
    s.stop()
    net.run(net.now + 100)
    assert a.primary.uplink.name == "wifi" and a.primary in a.plist
    assert simnet.count_received(net.nodes["b"]) >= s.seq - 2, (s.seq, simnet.count_received(net.nodes["b"]))


def test_an_initiator_that_starts_over_takes_no_init_ack_of_its_last_attempt():
    # four COOKIE-ECHOs unanswered: the initiator starts over with INIT. It kept its nonce, so
    # an INIT-ACK of the last attempt, replayed by someone on the path from any address, was
    # taken again and the COOKIE-ECHO went to that address
    net = pair1()
    A = net.nodes["a"].ep
    acks = []

    def lossy(src, dst, data):
        if data[1] == wire.INIT_ACK:
            acks.append(bytes(data))
        # b never gets a COOKIE-ECHO, and after the first INIT no INIT either
        return data[1] == wire.COOKIE_ECHO or (data[1] == wire.INIT and len(acks) > 0)

    net.drop = lossy
    net.run(net.now + 16000)  # 4 COOKIE-ECHOs (0, 1, 2, 4 s), 8 s later a new INIT
    a = A.association("b")
    assert len(acks) == 1 and a.state == 0, (len(acks), a.state)
    net.keep_log = True
    mac = A.counters.get("mac", 0)
    A.receive("eth", ("192.0.2.66", 6278), acks[0], net.now)
    net.flush()
    assert A.counters.get("mac", 0) == mac + 1 and a.state == 0, A.counters
    assert [x for x in net.log if x[1] == "a" and x[3] == wire.COOKIE_ECHO] == []
    net.drop = None  # and the new attempt gets in
    net.run(net.now + 20000)
    assert a.state == 2 and net.nodes["b"].ep.association("a").state == 2
