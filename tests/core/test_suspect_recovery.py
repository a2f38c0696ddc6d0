# A SUSPECT path brought back by feedback (mast/assoc.py on_keepalive; a module of its own for
# a board-sized heap): it starts again with no lost probes.
from simnet import Stream, pair
from mast import wire


def test_a_suspect_path_that_feedback_brings_back_has_no_lost_probes_left():
    # the primary misses feedback (SUSPECT) and two probes; then feedback comes back before
    # any probe answer: the path is ACTIVE with a clean slate, as status shows, and one more
    # lost probe later does not fail it (before: the two old ones counted toward probe_fail)
    from runtime.status import association_status

    net = pair(a_uplinks=[("eth", "10.1.0.2", 10, 0)])
    net.run(net.now + 2000)
    a = net.nodes["a"].ep.association("b")
    kinds = [()]
    net.drop = lambda src, dst, data: src == "b" and (not kinds[0] or data[1] in kinds[0])
    s = Stream(net, "a", rate=100)

    def lost():
        return association_status(a)["paths"][0]["lost_probes"]

    for _ in range(2000):
        net.run(net.now + 1)
        if lost() == 2:
            break
    assert lost() == 2 and association_status(a)["paths"][0]["state"] == "suspect"
    kinds[0] = (wire.PROBE_ACK,)  # feedback passes, probe answers do not
    net.run(net.now + 150)
    st = association_status(a)["paths"][0]
    assert st["state"] == "active" and st["lost_probes"] == 0, st
    kinds[0] = ()  # silent again: SUSPECT, and one probe lost
    before = lost()
    for _ in range(2000):
        net.run(net.now + 1)
        if lost() > before or net.events("a", "path_down"):
            break
    net.drop = None
    net.run(net.now + 2000)
    s.stop()
    assert net.events("a", "path_down") == []
