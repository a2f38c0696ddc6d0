# Churn of paths (tests/core/test_churn.py has the rest; a module of its own, as each is near
# the edge of the 128K heap of the MicroPython runs): failovers and back, outages that close the
# association, refused SETs, again and again; every container is back to its size after the
# first cycles, and on MicroPython the heap in use after a collection too.

from churnlib import _heap, _sizes


def test_failovers_and_back_and_outages_to_the_close_30_times_leave_both_endpoints_as_after_5():
    # a board on three uplinks streams to its server: its primary is cut and comes back every
    # cycle (failover, failback), every fifth cycle all three are cut until the association
    # closes (outage) and it connects again, and each cycle the server refuses a SET (ERR 1)
    from simnet import pair, established, Stream
    from mast import wire

    net = pair(replay_window=64, resend_ms=500)
    for n in net.nodes.values():
        n.events = n.payloads = n.counts = None
    net.run(net.now + 2000)
    assert established(net)
    a, b = net.nodes["a"].ep, net.nodes["b"].ep
    s = Stream(net, "a", rate=20)

    def cycle(i):
        net.link("a", "eth").cut = True
        net.run(net.now + 3000)
        net.link("a", "eth").cut = False
        net.run(net.now + 8000)
        if i % 5 == 4:
            for u in ("eth", "wifi", "cell"):
                net.link("a", u).cut = True
            s.stop()  # (a stream into no path for 5 min: only time)
            net.run(net.now + 310000)  # (outage_s: 300)
            s.next = net.now
            for u in ("eth", "wifi", "cell"):
                net.link("a", u).cut = False
            a.connect("b", net.now)
            net.flush()
            net.run(net.now + 5000)
            assert established(net), (i, a.counters)
        x = a.association("b")
        x.tsn = (x.tsn + 1) & 0xFFFFFFFF
        body = wire.enc_set(x.tsn, [(("0.0.0.0", 6278), 10, 0)])  # (refused: ERR 1)
        pkt = wire.seal(x.tx_mac, wire.SET, x.peer_label, x.seq, body)
        x.seq += 1
        b.receive("wan", ("10.1.0.2", 6278), pkt, net.now)
        net.flush()
        net.run(net.now + 1000)

    def sizes(ep):
        s = _sizes(ep)
        assert s[9] <= 2 * len(ep.assocs) + 16  # (the timer heap: rebuilt past this)
        s[9] = 0
        s[5] = 0  # (the counters: keyed by a fixed set of reasons, not all met by cycle 5)
        if len(s) > 13:
            assert s[-1] <= 576  # (the resend ring: resend_ms of DATA, trimmed past this)
            s[-1] = 0
        return s

    for i in range(5):
        cycle(i)
    base, heap = (sizes(a), sizes(b)), _heap()
    for i in range(5, 30):
        cycle(i)
    assert (sizes(a), sizes(b)) == base, (base, sizes(a), sizes(b))
    after = _heap()
    if heap is not None and after is not None:
        assert after - heap < 1024, (heap, after)  # (the timer heap and the resend ring vary within
        # their bounds: measured on the 64-bit port, 100 cycles stay within 800 bytes, no trend)
    assert b.counters.get("bad_addresses") == 30 and a.counters.get("internal_error") is None
