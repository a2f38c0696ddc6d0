# Churn of timers (tests/core/test_churn.py has the rest; a module of its own, as each is near
# the edge of the 128K heap of the MicroPython runs): the endpoint's heap of timers stays
# within its bound however often the associations' timers move.


def test_a_stream_of_data_keeps_each_timer_heap_within_its_bound():
    # each DATA moves a timer earlier: a new heap entry (the old one goes stale) unless the
    # association's entry is the first, which is moved in place (test_timer_reuse.py); past
    # 2 x associations + 16 entries the endpoint rebuilds its heap, so 2,000 sends 3 ms apart
    # leave it within that bound, not one stale entry more per send that moves a timer
    from simnet import pair1, established

    net = pair1(0)
    net.run(net.now + 2000)
    assert established(net)
    a, b = net.nodes["a"].ep, net.nodes["b"].ep
    for n in ("a", "b"):  # (the simulator's records of 2,000 packets would fill a 128K heap)
        net.nodes[n].events = net.nodes[n].payloads = net.nodes[n].counts = None
    most = 0
    for _ in range(2000):
        a.send_data(b"x" * 10, net.now, "b")
        net.flush()
        net.run(net.now + 3)
        most = max(most, len(a._heap), len(b._heap))
    assert most <= 2 * 1 + 16, most
    assert established(net) and a.counters.get("internal_error") is None
