# Churn: a board runs for months and a server sees thousands of peers come and go, so nothing
# an Endpoint or an Association holds may grow with the cycles. Each test drives the core
# through many bounded cycles on the simulated network (fake clock) and checks that every
# container is back to its size after the first cycles, and on MicroPython that the heap in use
# after a collection (gc.mem_alloc) is too. Modules of their own (the fleet's and the paths' churn
# too: tests/core/test_churn_*.py): the other modules are near the edge of the 128K heap of the
# MicroPython runs.

# (each test imports what it needs: the presence test runs on MicroPython without the core)
from churnlib import SRV, _heap, _sizes


def _cycle(net, i):
    """One cycle of a board's life: a close and a new association, its NAT rebinding to a new
    port while DATA flows, a second uplink up and gone, and (every other cycle) the server
    forgetting the board and taking it back (remove_peer, set_peer)."""
    from simnet import PSK, established

    a, b = net.nodes["a"].ep, net.nodes["b"].ep
    a.close(net.now, "b")
    net.flush()
    net.run(net.now + 5000)  # (SHUT, SHUT-ACK, SHUT-COMPLETE, the 3 s linger)
    a.connect("b", net.now)
    net.flush()
    net.run(net.now + 3000)
    assert established(net), (i, a.counters, b.counters)
    link = net.link("a", "eth")
    if link.nat is not None:
        del net.links[link.nat]  # (the simulated NAT forgets its old mapping)
    net.set_nat("a", "eth", ("203.0.113.9", 20000 + i % 5000))  # a new mapping each cycle
    for _ in range(5):
        a.send_data(b"x" * 40, net.now)
        net.flush()
        net.run(net.now + 400)
    name = "w%d" % (i % 3)
    net.uplink("a", name, ("10.5.%d.2" % (i % 200), 6278), delay=1)
    net.run(net.now + 1500)
    a.uplink_down(name, net.now)
    net.flush()
    del net.links[net.uplinks.pop(("a", name)).addr]
    net.run(net.now + 1500)
    if i % 2:
        b.remove_peer("a", net.now)
        net.flush()
        net.run(net.now + 5000)  # (a's association closes: peer_shut)
        b.set_peer("a", {"psk": PSK}, net.now)
        a.connect("b", net.now)
        net.flush()
        net.run(net.now + 3000)
        assert established(net), (i, a.counters, b.counters)
    net.run(net.now + 2000)


def test_120_closes_nat_rebindings_and_uplink_flaps_leave_a_board_and_its_server_as_after_4():
    from simnet import pair1, established

    net = pair1(replay_window=64)
    for n in net.nodes.values():
        n.events = n.payloads = n.counts = None  # (not kept: a board-sized heap)
    net.run(net.now + 2000)
    assert established(net)
    a, b = net.nodes["a"].ep, net.nodes["b"].ep
    for i in range(4):  # (every path taken once: every counter's name is in its table)
        _cycle(net, i)
    sa, sb, heap = _sizes(a), _sizes(b), _heap()
    for i in range(4, 120):
        _cycle(net, i)
    assert (_sizes(a), _sizes(b)) == (sa, sb), (sa, _sizes(a), sb, _sizes(b))
    after = _heap()
    if heap is not None and after is not None:
        assert after - heap < 256, (heap, after)  # (not a byte per cycle)
    assert b.association("a").state == 2 and a.counters.get("internal_error") is None


def test_a_presence_client_whose_peers_servers_change_at_each_lookup_keeps_one_floor_not_one_each():
    # a watched peer's DNS name gives another presence server at each lookup (every 10 min):
    # the NOTIFY floor of every server ever subscribed at was kept, one more each time
    from presence_fake import FakeEndpoint, key_of, BASE
    from presence.server import Server
    from presence.client import Presence

    srv = Server({"b1.ex": key_of("b1.ex"), "peer.ex": key_of("peer.ex")}, notify_base=BASE)
    at = [0]

    def resolver(name, port):
        i = at[0]
        server = ("10.53.%d.%d" % (i // 200, i % 200 + 1), 6279)
        return {"addresses": [("10.9.0.1", 6278)], "servers": [server]}

    p = Presence(FakeEndpoint("b1.ex"), key_of("b1.ex"), home=[], resolver=resolver, counter_base=BASE)
    p.watch("peer.ex", dns="peer.ex")
    now = 1000
    me = ("10.1.0.2", 6278)
    p.uplink_up("eth", me, now)
    p.start(now)
    for i in range(300):
        at[0] = i
        now += 600001  # (the next lookup is due)
        for _ in range(3):
            p.handle_timer(now)
            for uplink, dst, data in p.datagrams_to_send():
                srv.receive(me, data, now)
                for _, answer in srv.datagrams_to_send():
                    p.receive("eth", dst, answer, now)  # (from the server it was sent to)
        assert list(p.floors) == [resolver("peer.ex", 0)["servers"][0]], (i, len(p.floors))
        assert len(p.tasks) == 1 and len(p.pending) <= 32
