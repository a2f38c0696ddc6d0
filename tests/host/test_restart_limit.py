"""The watch of runtime/restart.py with two servers (tests/core/test_restart.py has one, on
CPython and both MicroPythons): at most `limit` attempts at once, and a slot an attempt frees
goes to the other peer. Three endpoints in one process (the initiator and both servers: 148K
of MicroPython heap, more than a board's 128K, of which a board is one), so on CPython only."""

from simnet import Net, config

from test_restart import Watcher, RESTART_MS, _restart_b, _kinds


def _two_servers(limit):
    """a initiates to two servers, b and c, each on its own address, watched with limit."""
    net = Net()
    net.node("a", config("a", {"b": {"addresses": ["10.9.0.1:6278"]},
                               "c": {"addresses": ["10.9.0.2:6278"]}}))
    for name, ip in (("b", "10.9.0.1"), ("c", "10.9.0.2")):
        net.node(name, config(name, ["a"])).events = None  # (not needed: heap for three)
        net.uplink(name, "wan", (ip, 6278), delay=1)
    net.uplink("a", "eth", ("10.1.0.2", 6278), delay=1)
    for name in ("b", "c"):
        net.nodes["a"].ep.connect(name, net.now)
    net.flush()
    net.run(net.now + 2000)
    w = Watcher(net, ("b", "c"), limit)
    net.apps.append(w)
    return net, w, net.nodes["a"]


def _both_servers_restart(limit):
    """b and c restart at once: both come back (replaced); -> most attempts at once."""
    net, w, A = _two_servers(limit)
    old = {p: A.ep.association(p) for p in ("b", "c")}
    assert old["b"].state == 2 and old["c"].state == 2
    crash = net.now
    _restart_b(net, "b")
    _restart_b(net, "c")
    net.run(crash + RESTART_MS + 5000)
    for p in ("b", "c"):
        new = A.ep.association(p)
        assert new is not old[p] and new.state == 2 and old[p].state == 5, (limit, p)
        assert net.nodes[p].ep.association("a").state == 2
    assert sorted(e.reason for t, e in _kinds(A, "association_closed")) == ["replaced"] * 2
    return w.most


def test_a_watch_limited_to_one_attempt_has_one_at_a_time_and_gets_both_servers_back():
    assert _both_servers_restart(1) == 1


def test_a_watch_without_a_limit_tries_both_servers_at_once():
    assert _both_servers_restart(None) == 2


def test_a_peer_whose_attempt_gets_no_answer_lets_the_next_one_have_its_turn():
    # one attempt at a time; b's server is gone for good (its attempt never comes up), c's
    # restarted: c gets its turn once b's attempt is dropped (INIT_RETRIES), not never
    net, w, A = _two_servers(1)
    old_c = A.ep.association("c")
    net.link("b", "wan").cut = True
    net.run(net.now + RESTART_MS + 5000)
    assert list(w.w.attempts) == ["b"]  # b's turn first
    _restart_b(net, "c")
    net.run(net.now + 200000)  # b's attempt: 10 INITs, 1 s doubling to 30 s, ~150 s
    new_c = A.ep.association("c")
    assert new_c is not old_c and new_c.state == 2 and old_c.state == 5
    assert w.most == 1 and A.ep.association("b").primary is None



def test_a_peer_a_reload_adds_while_the_watch_runs_is_watched_too():
    # the watch runs for b (away); a reload makes a initiate to c as well (restart.watch, as
    # mastd's reload calls it): when c's server then restarts, c has a new association once its
    # idle paths have noticed (within a minute), not after its outage budget (5 minutes)
    from test_restart_more import Turner
    from runtime import restart

    net, w, A = _two_servers(None)
    net.apps.remove(w)
    t = Turner(net, ("b",))
    net.apps.append(t)
    net.link("b", "wan").cut = True
    net.run(net.now + RESTART_MS + 5000)
    assert t.rt.restarts is not None
    restart.watch(t.rt, ["b", "c"], net.now)
    old_c = A.ep.association("c")
    crash = net.now
    _restart_b(net, "c")
    net.run(crash + 60000)
    new_c = A.ep.association("c")
    assert new_c is not old_c and new_c.state == 2 and old_c.state == 5
    assert net.nodes["c"].ep.association("a").state == 2
    assert [e.reason for t, e in _kinds(A, "association_closed")] == ["replaced"]
