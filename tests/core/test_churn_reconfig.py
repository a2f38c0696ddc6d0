# Churn of peers through reconfigure (console `apply`, mastd's SIGHUP): a peer added, connected
# at addresses the caller gave (mastd's DNS answers, a board's resolved name) and removed, 60
# times under 60 names, leaves the endpoint as it started. A module of its own: the core test
# modules are near the edge of the 128K heap of the MicroPython runs.

from churnlib import _heap, _sizes


def test_peers_connected_at_given_addresses_and_removed_by_reconfigure_leave_nothing_behind():
    from simnet import Net, config

    net = Net()
    net.node("a", config("a", ["keep"], replay_window=64))
    net.nodes["a"].events = net.nodes["a"].payloads = net.nodes["a"].counts = None
    net.uplink("a", "eth", ("10.0.0.1", 6278))
    ep = net.nodes["a"].ep
    base = config("a", ["keep"], replay_window=64)

    def cycle(i):
        name = "p%d" % i
        cfg = config("a", ["keep", name], replay_window=64)
        ep.reconfigure(cfg, net.now)
        ep.connect(name, net.now, [("10.8.%d.%d" % (i // 200, i % 200 + 1), 6278)])
        net.run(net.now + 50)  # (its INIT goes out, unanswered)
        ep.reconfigure(base, net.now)
        net.run(net.now + 50)

    cycle(0)
    net.run(net.now + 60000)  # (the first name's closed association lingers, then goes)
    sizes, heap = _sizes(ep), _heap()
    for i in range(1, 60):
        cycle(i)
    net.run(net.now + 60000)
    assert _sizes(ep) == sizes, (sizes, _sizes(ep))
    after = _heap()
    if heap is not None and after is not None:
        assert after - heap < 256, (heap, after)  # (not an entry per name)
