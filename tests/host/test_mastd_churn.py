"""mastd through months of churn, on a clock the test moves (no root, no TUN, no socket: no
uplink is configured): peers added and removed one at a time (`mastctl peer add/remove`, as a
concentrator whose fleet changes every day) leave nothing behind, in the agent, the runtime or
the core. What each keeps per peer is compared after the first cycle and after the last."""

from test_mastd_agent import PSK, made, turns  # noqa: F401 (made: the fixture)

CYCLES = 200


def _sizes(a):
    """The per-peer tables of the agent, its runtime and its core."""
    return {"lookup_fails": len(a._lookup_fails), "lookups": len(a._lookups),
            "reconnect": len(a._reconnect), "reconnect_wait": len(a._reconnect_wait),
            "apps": len(a.apps), "routes": len(a.routes.prefixes),
            "rt.dial": len(a.rt._dial), "rt.redial": len(a.rt._redial),
            "rt.initiated": len(a.rt.initiated),
            "ep.connect_addrs": len(a.ep._connect_addrs), "ep.assocs": len(a.ep.assocs),
            "ep.by_peer": len(a.ep.by_peer), "ep.init_macs": len(a.ep._init_macs),
            "ep.peers": len(a.ep.cfg["peers"])}


def _cycle(a, clock, res, i):
    """Peer p<i> added, given 4.5 s, removed: a name that does not resolve, a peer with
    addresses (and prefixes) that never answers, or a name that resolves (in turn)."""
    name = "p%d" % i
    if i % 3 == 0:
        res.answer = OSError("no such name")
        peer = {"psk": PSK, "dns": "p%d.example" % i}
    elif i % 3 == 1:
        peer = {"psk": PSK, "addresses": ["192.0.2.%d" % (i % 250 + 1)],
                "internal": "10.77.%d.1" % (i % 250), "allowed": ["10.78.%d.0/24" % (i % 250)]}
    else:
        res.answer = {"addresses": [("192.0.2.9", 6278)]}
        peer = {"psk": PSK, "dns": "p%d.example" % i}
    assert a.handle({"op": "peer_add", "name": name, "peer": peer})["peer"] == name
    for _ in range(3):
        clock.ms += 1500
        turns(a)
    assert a.handle({"op": "peer_remove", "name": name}) == {"peer": name}
    clock.ms += 5000
    turns(a)


def test_peers_added_and_removed_200_times_leave_nothing_behind(made):
    # a peer removed left its lookup backoff (when its name had not resolved), the addresses
    # its connect gave the core, and the runtime's note of them: one of each per peer ever
    # added, for as long as mastd ran (and a name added again later started at its old backoff)
    a, cfg, log, clock, res = made({"name": "r1", "peers": {"keep": {"psk": PSK}}})
    for i in range(3):  # (one cycle of each kind)
        _cycle(a, clock, res, i)
    first = _sizes(a)
    for i in range(3, CYCLES):
        _cycle(a, clock, res, i)
    last = _sizes(a)
    # (the runtime forgets removed peers' dials at a later connect: at most one per peer
    # configured is kept, whatever the cycles)
    assert last["rt.dial"] <= 2 and last["ep.peers"] == 1, last  # ("keep", and one removed)
    first.pop("rt.dial")
    last.pop("rt.dial")
    assert last == first, (first, last)
    assert last["lookup_fails"] == 0 and last["ep.connect_addrs"] == 0, last
    assert len(a.history) <= 200
    # and a name added again starts its lookups afresh (2 s), not at a removed one's backoff
    res.answer = OSError("no such name")
    a.handle({"op": "peer_add", "name": "p0", "peer": {"psk": PSK, "dns": "p0.example"}})
    clock.ms += 1500
    turns(a)
    assert log.said("warn")[-1] == "peer p0: no such name; trying again in 2 s"


def test_control_clients_that_vanish_mid_request_or_mid_reply_200_times_leave_no_reader_or_socket(
        made, monkeypatch):
    # each connection is a reader of the loop while its request comes in: one that vanished
    # before its newline, after it, or while its reply was being sent, or that mastd dropped
    # (silent past its time), must leave none behind
    import os
    import socket

    from mastd import control

    peers = dict(("p%d" % i, {"psk": PSK, "addresses": ["192.0.2.%d" % (i + 1)]}) for i in range(40))
    a, cfg, log, clock, res = made({"name": "r1", "peers": peers})
    monkeypatch.setattr(control, "_CLIENT_TIMEOUT_S", 0.0)  # (silent: dropped at the next turn)
    path = str(cfg.parent / "c.sock")
    a.control = control.ControlServer(path, a.handle, a._add_reader, a._remove_reader)
    a._add_reader(a.control.sock, a.control.on_readable)
    try:
        def sizes():
            return (len(a._readers), len(a.rt._handlers), len(a.control.clients),
                    len(a.control.replies), len(os.listdir("/proc/self/fd")))

        first = None
        for i in range(200):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(path)
            if i % 4 == 0:
                turns(a, 2)  # silent: mastd drops it
            elif i % 4 == 1:
                s.sendall(b'{"op": "sta')  # gone mid-request
            elif i % 4 == 2:
                s.sendall(b'{"op": "status"}\n')  # gone before its reply
            elif i % 4 == 3:
                s.sendall(b'{"op": "peer_list"}\n')
                turns(a, 1)
                s.recv(64)  # gone mid-reply
            turns(a, 1)
            s.close()
            turns(a, 3)
            if i == 3:
                first = sizes()
        assert sizes() == first == (1, 1, 0, 0, first[4]), (first, sizes())
    finally:
        a.control.close()
