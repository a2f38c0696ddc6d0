# An uplink that flaps (down, then up again with the same address: a Wi-Fi reconnect with the
# same lease) in the middle of a handshake. (Its own module: test_handshake's sits at the edge
# of the 128K heap the MicroPython runs give each module.)

import simnet
from simnet import pair
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
