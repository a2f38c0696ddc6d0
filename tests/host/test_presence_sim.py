"""Presence with the real MAST cores, on the simulated network of the core tests
(tests/core/simnet.py, fake clock, CPython): hosts register from their MAST sockets,
follow each other, and after a double jump (both ends lose every address at once and
come back on new ones) find each other again, and the SAME association resumes (same
nonces, no new INIT) and data flows. Peers named by DNS go through a fake resolver.

Too large for a board-sized heap (two cores, a server and three clients in one process):
tests/core/test_presence_client.py tests the client's logic on MicroPython with a fake
endpoint; tests/integration/test_presence_netns.py runs the real thing on sockets.
"""

from presence import msg
from presence.report import client_status, server_status
from presence_sim import SERVER, key_of, lookup, mobile_pair, presence_node, server_node
from simnet import Net, Stream, config, count_received


def until(net, pred, limit_ms):
    """Run the simulation in 1 ms steps until pred() or limit_ms passed; -> bool."""
    end = net.now + limit_ms
    while net.now < end:
        if pred():
            return True
        net.run(net.now + 1)
    return pred()


def _events(net, node, kind):
    return net.events(node, kind)


def _nonces(a, b):
    return (a.ep.association("b").nonce, a.ep.association("b").peer_nonce,
            b.ep.association("a").nonce, b.ep.association("a").peer_nonce)


def _up(p, peer):
    x = p.ep.association(peer)
    return x is not None and x.state == 2 and x.primary is not None


def test_double_jump_resumes_the_same_association_through_presence():
    net, srv, a, b = mobile_pair()
    net.run(net.now + 2000)
    assert _up(a, "b") and _up(b, "a")
    nonces = _nonces(a, b)
    s = Stream(net, "a", rate=50)
    net.run(net.now + 1000)
    a.uplink_down("eth", net.now)  # both ends lose every address at once
    b.uplink_down("wan", net.now)
    net.flush()
    net.run(net.now + 3000)
    assert a.ep.association("b").primary is None and b.ep.association("a").primary is None
    t0 = net.now
    net.uplink("b", "wan2", ("10.8.0.1", 6278), delay=1)  # ...and come back on new ones
    net.uplink("a", "eth2", ("10.4.0.9", 6278), delay=1)
    nb = net.nodes["b"]
    nb.mark = t0
    assert until(net, lambda: nb.first_after_mark is not None, 10000)
    resumed = nb.first_after_mark - t0
    assert _nonces(a, b) == nonces  # the same association: no new INIT
    assert len(_events(net, "a", "association_up")) == 1 and len(_events(net, "b", "association_up")) == 1
    assert a.ep.association("b").primary.raddr == ("10.8.0.1", 6278)
    assert b.ep.association("a").primary.raddr == ("10.4.0.9", 6278)
    assert resumed < 1000, resumed  # a few round trips on this 2-4 ms network
    learnt = [e for e in _events(net, "a", "presence_peer") if "10.8.0.1:6278" in e.fields["addresses"]]
    assert learnt and learnt[0].fields["peer"] == "b"
    assert "10.8.0.1:6278" in client_status(a)["peers"]["b"]["presence_addresses"]
    n = count_received(nb)
    net.run(net.now + 1000)
    s.stop()
    net.run(net.now + 100)
    assert count_received(nb) - n >= 48  # data flows again: 50 a second


def test_a_peer_in_an_outage_is_looked_up_when_no_notify_arrives():
    net, srv, a, b = mobile_pair(watch_b=False)  # b follows nobody: only a's lookups help
    net.run(net.now + 2000)
    net.drop = lambda src, dst, d: d[0] == msg.VERSION and d[1] == msg.NOTIFY
    a.uplink_down("eth", net.now)
    b.uplink_down("wan", net.now)
    net.flush()
    net.run(net.now + 3000)
    net.uplink("a", "eth2", ("10.4.0.9", 6278), delay=1)  # a first: its SUBSCRIBE learns nothing new
    net.run(net.now + 200)
    net.uplink("b", "wan2", ("10.8.0.1", 6278), delay=1)  # then b; the NOTIFY to a is lost
    t0 = net.now
    assert until(net, lambda: _up(a, "b") and _up(b, "a"), 20000)
    via = [e.fields["via"] for e in _events(net, "a", "presence_peer") if "10.8.0.1:6278" in e.fields["addresses"]]
    assert via[0] == "lookup", via
    assert net.now - t0 <= 9000  # lookups back off to 8 s at most
    assert len(_events(net, "a", "association_up")) == 1


def test_a_host_registers_its_complete_list_from_its_mast_socket():
    net, srv, a, b = mobile_pair()
    net.uplink("a", "cell", ("10.3.0.2", 6278), delay=1, priority=30, cost=10)
    net.set_nat("a", "cell", ("100.64.0.9", 31000))  # the server sees cell's NAT mapping:
    # presence goes out on the best uplink (priority 30 beats eth's default 100)
    net.run(net.now + 2000)
    st = server_status(srv, net.now)["names"]["a"]
    assert st["registered"] and st["addresses"] == ["10.3.0.2:6278", "10.1.0.2:6278"]
    assert st["observed"] == "100.64.0.9:31000"
    regs = client_status(a)["registrations"]
    assert regs[0]["server"] == "10.53.0.1:6279" and regs[0]["observed"] == "100.64.0.9:31000"
    assert regs[0]["ttl"] == 120
    assert len(_events(net, "a", "presence_registered")) >= 1


def test_a_host_registers_again_at_once_when_an_uplink_moves():
    net, srv, a, b = mobile_pair()
    net.run(net.now + 2000)
    t = net.now
    net.renumber("a", "eth", ("10.1.7.7", 6278))
    net.run(net.now + 10)
    assert server_status(srv, net.now)["names"]["a"]["addresses"] == ["10.1.7.7:6278"]
    assert net.now - t <= 10


def test_registrations_are_refreshed_before_they_expire():
    net, srv, a, b = mobile_pair()
    net.run(net.now + 5 * 60 * 1000)  # 2.5 TTLs
    assert server_status(srv, net.now)["names"]["a"]["registered"]
    assert server_status(srv, net.now)["names"]["b"]["registered"]
    assert client_status(a)["registrations"][0]["answered_ms"] >= net.now - 60000  # at half the TTL
    assert len(_events(net, "a", "presence_registered")) == 1  # a refresh is no news


def test_a_replayed_notify_or_an_unsolicited_answer_is_ignored():
    net, srv, a, b = mobile_pair()
    net.run(net.now + 2000)
    seen = []
    net.drop = lambda src, dst, d: (d[0] == msg.VERSION and d[1] == msg.NOTIFY and seen.append(d)) or False
    net.renumber("b", "wan", ("10.8.0.2", 6278))
    net.run(net.now + 100)
    assert seen, "b's move was notified to a"
    before = dict(a.presence_counters)
    a.receive("eth", SERVER, seen[0], net.now)  # the very NOTIFY again
    up, down = msg.keys(key_of("a"), "a")
    forged = msg.seal(down, msg.LOOKUP_ACK, 12345, "a", msg.enc_record(msg.REGISTERED, "b", 60, None,
                                                                     [(("192.0.2.66", 6278), 0, 0)]))
    a.receive("eth", SERVER, forged, net.now)  # tagged right, but a never asked
    a.receive("eth", SERVER, b"\x50" + bytes(60), net.now)
    assert a.presence_counters["replay"] == before.get("replay", 0) + 1
    assert a.presence_counters["unexpected"] == before.get("unexpected", 0) + 1
    assert a.datagrams_to_send() == []  # nothing answered
    assert ("192.0.2.66", 6278) not in a.ep.association("b").remotes


def test_a_stranger_cannot_register_a_name_of_the_server():
    net, srv, a, b = mobile_pair(names=("a", "b", "c"))
    net.run(net.now + 2000)
    thief = presence_node(net, "thief", config("b", ["a"]), key=bytes(32))  # calls itself b
    net.uplink("thief", "eth", ("10.66.0.1", 6278), delay=1)
    thief.start(net.now)
    net.run(net.now + 3000)
    assert server_status(srv, net.now)["names"]["b"]["addresses"] == ["10.9.0.1:6278"]
    assert srv.counters["mac"] >= 1
    assert lookup(net, "c", "b")[4] == [(("10.9.0.1", 6278), 100, 0)]


def _dns_net(resolver, home=(SERVER,)):
    net = Net(0)
    server_node(net, ["a", "b"])
    a = presence_node(net, "a", config("a", {"b": {"dns": "b.example"}}, profile="fast"),
                      home=home, resolver=resolver)
    b = presence_node(net, "b", config("b", ["a"], profile="fast"))
    net.uplink("b", "wan", ("10.9.0.1", 6278), delay=1)
    net.uplink("a", "eth", ("10.1.0.2", 6278), delay=1)
    a.watch("b", dns="b.example", connect=True)
    b.start(net.now)
    a.start(net.now)
    net.flush()
    return net, a, b


def test_a_peer_named_by_dns_is_connected_at_its_a_records_and_followed_at_its_srv_server():
    asked = []

    def resolver(name, port):
        asked.append((name, port))
        return {"addresses": [("10.9.0.1", port)], "servers": [SERVER]}

    net, a, b = _dns_net(resolver, home=())
    net.run(net.now + 2000)
    assert asked == [("b.example", 6278)]
    assert _up(a, "b")
    st = client_status(a)["peers"]["b"]
    assert st["resolved"] == "srv" and st["servers"] == ["10.53.0.1:6279"]
    assert st["dns_addresses"] == ["10.9.0.1:6278"] and st["dns"] == "b.example"


def test_a_dns_name_without_srv_falls_back_to_its_a_records():
    def resolver(name, port):
        return {"addresses": [("10.9.0.1", port)], "servers": []}

    net, a, b = _dns_net(resolver, home=())
    net.run(net.now + 2000)
    st = client_status(a)["peers"]["b"]
    assert st["resolved"] == "a" and st["servers"] == ["10.9.0.1:6279"]  # its own A, port 6279
    assert _up(a, "b")  # the association used the A records
    net2, a2, b2 = _dns_net(resolver)  # with a configured presence server: that one
    net2.run(net2.now + 500)
    assert client_status(a2)["peers"]["b"]["servers"] == ["10.53.0.1:6279"]
    assert client_status(a2)["peers"]["b"]["resolved"] == "config"


def test_a_failed_resolution_is_retried_with_backoff():
    calls = []

    def resolver(name, port):
        calls.append(len(calls))
        if len(calls) <= 2:
            raise OSError("no answer from the DNS server")
        return {"addresses": [("10.9.0.1", port)], "servers": [SERVER]}

    net, a, b = _dns_net(resolver)
    net.run(net.now + 1000)
    assert len(calls) == 1
    net.run(net.now + 6000)  # again after 2 s, then after 4 s
    assert len(calls) == 3
    assert [e.fields["dns"] for e in _events(net, "a", "presence_resolve_failed")] == ["b.example"] * 2
    net.run(net.now + 2000)
    assert _up(a, "b")


def test_the_server_status_shows_a_registration_and_a_subscriber_only_while_they_last():
    from presence.server import Server

    ka, kb = bytes(range(32)), bytes(range(32, 64))
    srv = Server({"a": ka, "b": kb}, notify_base=5000)
    t0 = 1000000
    srv.receive(("198.51.100.7", 40001), msg.seal(msg.keys(ka, "a")[0], msg.REGISTER, 1, "a",
                                                  msg.enc_register(60, [(("192.0.2.10", 6278), 0, 0)])), t0)
    srv.receive(("203.0.113.9", 6278), msg.seal(msg.keys(kb, "b")[0], msg.SUBSCRIBE, 1, "b",
                                                msg.enc_subscribe(30, "a")), t0)
    st = server_status(srv, t0 + 1)["names"]["a"]
    assert st == {"registered": True, "addresses": ["192.0.2.10:6278"], "observed": "198.51.100.7:40001",
                  "ttl_left_s": 60, "contact": "198.51.100.7:40001", "subscribers": ["b"]}
    st = server_status(srv, t0 + 30000)["names"]["a"]
    assert st["registered"] and st["ttl_left_s"] == 30 and st["subscribers"] == []  # b's 30 s are up
    st = server_status(srv, t0 + 60000)["names"]["a"]
    assert st == {"registered": False, "addresses": [], "observed": None, "ttl_left_s": 0,
                  "contact": "198.51.100.7:40001", "subscribers": []}


def test_the_client_status_says_which_peer_is_in_an_outage():
    net, srv, a, b = mobile_pair(watch_b=False)
    net.run(net.now + 2000)
    assert client_status(a)["peers"]["b"]["outage"] is False
    a.uplink_down("eth", net.now)
    b.uplink_down("wan", net.now)
    net.flush()
    net.run(net.now + 3000)
    assert client_status(a)["peers"]["b"]["outage"] is True
    assert _events(net, "a", "presence_outage")


def test_the_server_status_tells_where_a_name_registered_from_and_where_it_last_spoke_from():
    # observed: the source of the registration (what its REGISTERED said); contact: the
    # source of the name's latest accepted request (where a NOTIFY goes). A status is a
    # snapshot: the counters shown do not change under their reader
    from presence.server import Server

    ka, kb = bytes(range(32)), bytes(range(32, 64))
    kc = bytes(range(64, 96))
    srv = Server({"a": ka, "b": kb, "c": kc}, notify_base=5000)
    t0 = 1000000
    up = msg.keys(ka, "a")[0]
    srv.receive(("198.51.100.7", 40001), msg.seal(up, msg.REGISTER, 1, "a",
                                                  msg.enc_register(60, [(("192.0.2.10", 6278), 0, 0)])), t0)
    srv.receive(("203.0.113.9", 6278), msg.seal(msg.keys(kb, "b")[0], msg.SUBSCRIBE, 1, "b",
                                                msg.enc_subscribe(30, "c")), t0)
    srv.receive(("198.51.100.7", 40002), msg.seal(up, msg.SUBSCRIBE, 2, "a", msg.enc_subscribe(30, "c")), t0)
    st = server_status(srv, t0 + 1)
    assert st["names"]["c"]["subscribers"] == ["a", "b"]  # sorted: b asked first
    assert (st["names"]["c"]["registered"], st["names"]["c"]["ttl_left_s"]) == (False, 0)  # never
    assert (st["names"]["a"]["observed"], st["names"]["a"]["contact"]) == \
        ("198.51.100.7:40001", "198.51.100.7:40002")
    before = dict(st["counters"])
    srv.receive(("203.0.113.9", 1), b"\x50" + bytes(60), t0 + 2)  # dropped and counted
    assert server_status(srv, t0 + 2)["counters"] != before
    assert st["counters"] == before


def test_a_client_status_is_a_snapshot_of_its_drop_counters():
    net, srv, a, b = mobile_pair()
    net.run(net.now + 2000)
    st = client_status(a)
    before = dict(st["counters"])
    a.receive("eth", SERVER, b"\x50" + bytes(60), net.now)  # dropped and counted
    assert client_status(a)["counters"] != before
    assert st["counters"] == before
