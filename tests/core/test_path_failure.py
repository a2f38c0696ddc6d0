# A path fails (path_down) after exactly `probe_fail` lost probes in a row, not one more
# (PROTOCOL.md section 10: 3 with the default profile, 2 with fast): an idle alternate, the
# primary while it carries data, and a new path that never answers. The probes are counted
# as they leave the node, on the silent path, from the last moment nothing was outstanding
# there until path_down.

from simnet import Net, Stream, config
from mast import wire, policy

B_ADDR = ("10.9.0.1", 6278)


class ProbeLog(Net):
    """A simulated network that notes every PROBE a node sends: (time, node, uplink, dst)."""

    def __init__(self):
        Net.__init__(self)
        self.probes = []

    def transmit(self, n, uplink, dst, data):
        if data[1] == wire.PROBE:
            self.probes.append((self.now, n.name, uplink, dst))
        Net.transmit(self, n, uplink, dst, data)


def _net(profile):
    """a (eth primary, wifi alternate) associated with b (one address); both paths active."""
    net = ProbeLog()
    net.node("a", config("a", {"b": {"addresses": ["10.9.0.1"]}}, profile=profile))
    net.node("b", config("b", ["a"], profile=profile))
    net.uplink("b", "wan", B_ADDR, delay=1)
    net.uplink("a", "eth", ("10.1.0.2", 6278), delay=1, priority=10)
    net.uplink("a", "wifi", ("10.2.0.2", 6278), delay=1, priority=20)
    net.nodes["a"].ep.connect("b", net.now)
    net.flush()
    net.run(3000)
    a = net.nodes["a"].ep.association("b")
    assert a is not None and a.state == 2
    for name in ("eth", "wifi"):
        assert a.paths[(name, B_ADDR)].state == policy.ACTIVE, name
    return net, a


def _quiet(net, path):
    """Run on until no challenge is outstanding on path (bounded)."""
    for i in range(1000):
        if path.challenge is None:
            return
        net.run(net.now + 1)
    raise AssertionError("a challenge stayed outstanding on %s" % path.name)


def _probes_until_down(net, uplink, since, limit_ms=120000):
    """Run until a's path on uplink goes down -> PROBEs a sent on it in [since, down)."""
    name = "%s>%s:%d" % (uplink, B_ADDR[0], B_ADDR[1])
    end = net.now + limit_ms
    while net.now < end:
        net.run(net.now + 50)
        down = [t for t, e in net.nodes["a"].events if e.kind == "path_down" and e.path == name and t >= since]
        if down:
            return [p for p in net.probes if p[1] == "a" and p[2] == uplink and since <= p[0] < down[0]], down[0]
    raise AssertionError("%s never went down" % name)


def _idle_alternate(profile):
    net, a = _net(profile)
    wifi = a.paths[("wifi", B_ADDR)]
    _quiet(net, wifi)
    t = net.now
    net.link("a", "wifi").cut = True
    probes, down = _probes_until_down(net, "wifi", t)
    fail = policy.PROFILES[profile]["probe_fail"]
    assert len(probes) == fail, (profile, probes, down)
    assert wifi.state == policy.FAILED and a.primary is a.paths[("eth", B_ADDR)]
    # it went down when the last of them timed out, not later
    assert down - probes[-1][0] <= policy.PROFILES[profile]["rto_max"]


def test_an_idle_alternate_goes_down_after_exactly_probe_fail_lost_probes_default():
    _idle_alternate("default")


def test_an_idle_alternate_goes_down_after_exactly_probe_fail_lost_probes_fast():
    _idle_alternate("fast")


def _busy_primary(profile):
    net, a = _net(profile)
    s = Stream(net, "a", rate=50)
    net.nodes["b"].payloads = None
    net.run(net.now + 1000)
    eth = a.paths[("eth", B_ADDR)]
    assert a.primary is eth
    _quiet(net, eth)
    t = net.now
    net.link("a", "eth").cut = True
    probes, down = _probes_until_down(net, "eth", t)
    s.stop()
    assert len(probes) == policy.PROFILES[profile]["probe_fail"], (profile, probes, down)
    assert a.primary is a.paths[("wifi", B_ADDR)]


def test_a_primary_carrying_data_goes_down_after_exactly_probe_fail_lost_probes_default():
    _busy_primary("default")


def test_a_primary_carrying_data_goes_down_after_exactly_probe_fail_lost_probes_fast():
    _busy_primary("fast")


def _never_answers(profile):
    net, a = _net(profile)
    t = net.now
    net.uplink("a", "cell", ("10.3.0.2", 6278), delay=1, priority=30)
    net.link("a", "cell").cut = True
    probes, down = _probes_until_down(net, "cell", t)
    assert len(probes) == policy.PROFILES[profile]["probe_fail"], (profile, probes, down)
    assert a.paths[("cell", B_ADDR)].state == policy.FAILED


def test_a_new_path_that_never_answers_fails_after_exactly_probe_fail_probes_default():
    _never_answers("default")


def test_a_new_path_that_never_answers_fails_after_exactly_probe_fail_probes_fast():
    _never_answers("fast")
