# A backup path slower than the profile's rto_max (a cellular link at 82 ms under `fast`, whose
# rto_max is 40 ms; a 1.2 s link under `default`, 1 s): its probes are answered, but after
# their timeout, so it stays failed. Those late answers are no news (docs/PROTOCOL.md section
# 10): the path is probed on its failed backoff (x6: metered), not once per round trip for as
# long as it is slow (7,314 probes in 10 minutes under fast, 486 under default, before). When
# the link is fast again, its next probe brings it back.

from mast.policy import ACTIVE, FAILED, PROFILES
from simnet import pair

UPS = [("eth", "10.1.0.2", 10, 0), ("cell", "10.3.0.2", 30, 10)]  # cell: metered


def _slow_cell(profile, one_way):
    net = pair(a_uplinks=UPS, profile=profile)
    net.run(net.now + 3000)
    a = net.nodes["a"].ep.association("b")
    cell = [p for p in a.plist if p.uplink.name == "cell"][0]
    assert cell.state == ACTIVE
    net.link("a", "cell").delay = one_way  # (b's side adds 1 ms)
    return net, a, cell


def _sent_on_cell_in(net, ms):
    link = net.link("a", "cell")
    n = link.sent
    net.run(net.now + ms)
    return link.sent - n  # a's probes there, and its answers to b's


def _probed_on_its_backoff(profile, one_way):
    # once its backoff is at its cap, each end probes it at most once per failed_max (a's cap
    # is x6: its cell is metered), and a answers b's: at most 2 x 600 s / failed_max and a few
    net, a, cell = _slow_cell(profile, one_way)
    most = 2 * 600000 // PROFILES[profile]["failed_max"] + 20
    net.run(net.now + 60000)  # it fails, and its backoff grows
    assert cell.state == FAILED
    n = _sent_on_cell_in(net, 600000)
    stale = net.nodes["a"].ep.counters.get("stale_probe_ack", 0)
    assert 0 < n <= most, (n, stale)
    assert stale > 0  # (its probes were answered: late)
    assert a.primary is not None and a.primary.uplink.name == "eth"


def test_a_path_slower_than_rto_max_is_probed_on_its_backoff_not_every_round_trip():
    _probed_on_its_backoff("fast", 40)  # RTT 82 ms, rto_max 40 ms


def test_the_same_under_the_default_profile():
    _probed_on_its_backoff("default", 600)  # RTT 1.2 s, rto_max 1 s


def test_a_slow_path_that_is_fast_again_comes_back_at_its_next_probe():
    net, a, cell = _slow_cell("fast", 40)
    net.run(net.now + 60000)
    assert cell.state == FAILED
    net.link("a", "cell").delay = 1
    t = net.now
    net.run(t + 31000)  # failed_max (5 s) x 6, metered, and a round trip
    ups = [e for x, e in net.nodes["a"].events if e.kind == "path_up" and x > t]
    assert cell.state == ACTIVE and [e.path for e in ups] == [cell.name], ups


def test_once_back_in_time_news_revives_the_path_again_when_it_fails_later():
    # slow (late answers: no news), fast again (back), then cut for a minute and more: a's own
    # next probe is over 20 s away (its backoff grows to 30 s: failed_max x 6, metered), b's
    # at most 5 s. When the link returns, b's next probe is news again and a probes at once:
    # back within b's 5 s, not at a's own probe
    net, a, cell = _slow_cell("fast", 40)
    net.run(net.now + 60000)
    link = net.link("a", "cell")
    link.delay = 1
    net.run(net.now + 31000)
    assert cell.state == ACTIVE
    link.cut = True
    net.run(net.now + 60000)
    assert cell.state == FAILED
    for _ in range(400):  # (bounded) until a's own next probe is more than 20 s away
        if cell.probe_due is not None and cell.probe_due - net.now > 20000:
            break
        net.run(net.now + 100)
    assert cell.probe_due - net.now > 20000
    link.cut = False
    t = net.now
    net.run(t + 5500)
    ups = [x - t for x, e in net.nodes["a"].events if e.kind == "path_up" and x > t]
    assert cell.state == ACTIVE and len(ups) == 1, ups
