# More of the presence client (firmware/presence/client.py) on the fake clock of
# presence_fake: which uplink a request leaves from, what a record gives the core, a refused
# subscription, a second outage, and a counter store that fails once. (A module of its own:
# test_presence_client.py is near the edge of a 128K MicroPython heap.)
from presence import msg
from presence.report import server_status
from presence_fake import Wire, FakeAssoc, MemoryStore, two, SERVER, BASE, key_of

SERVER6 = ("2001:db8:53::1", 6279)


def _lookups(w, since):
    return [x[0] - since for x in w.log if x[3] == msg.LOOKUP and x[0] >= since]


def test_requests_leave_from_the_best_uplink_by_priority_not_by_name():
    w = Wire(["a"])
    a = w.client("a")
    w.up("a", "a-cell", ("10.3.0.2", 6278), priority=50, cost=10)
    w.up("a", "z-eth", ("10.1.0.2", 6278), priority=10)
    a.start(w.now)
    w.run(w.now + 100)
    assert [x[1] for x in w.log if x[3] == msg.REGISTER] == [("10.1.0.2", 6278)]
    assert server_status(w.server, w.now)["names"]["a"]["observed"] == "10.1.0.2:6278"


def test_a_server_of_one_family_is_sent_to_only_from_an_uplink_of_that_family():
    w = Wire(["a"])
    a = w.client("a", home=[SERVER6])
    w.up("a", "eth", ("10.1.0.2", 6278), priority=10)  # the best uplink, but IPv4
    w.up("a", "wan6", ("2001:db8:1::2", 6278), priority=20)
    a.start(w.now)
    w.run(w.now + 100)
    assert [(x[1], x[2]) for x in w.log if x[3] == msg.REGISTER] == [(("2001:db8:1::2", 6278), SERVER6)]
    w2 = Wire(["a"])
    a2 = w2.client("a", home=[SERVER6])
    w2.up("a", "eth", ("10.1.0.2", 6278))  # no IPv6 uplink at all: nothing can reach it
    a2.start(w2.now)
    w2.run(w2.now + 100)
    assert w2.log == [] and a2.presence_counters["tx_no_uplink"] == 1


def test_a_peer_behind_nat_is_learnt_where_the_server_saw_it_too():
    w, a, b = two(nat_b=("100.64.0.9", 31000))
    assert a.peers["b"].record == [("10.9.0.1", 6278), ("100.64.0.9", 31000)]
    assert ("100.64.0.9", 31000) in a.ep.assocs["b"].remotes


def test_an_observed_address_with_port_zero_is_not_given_to_the_core():
    # (a listed address with port 0 makes the whole record malformed: wire.dec_addrs)
    w, a, b = two()
    up, down = msg.keys(key_of("a"), "a")
    rec = msg.enc_record(msg.REGISTERED, "b", 60, ("10.8.0.6", 0), [(("10.8.0.5", 6278), 0, 0)])
    a.receive("eth", SERVER, msg.seal(down, msg.NOTIFY, a.floors[SERVER] + 1, "a", rec), w.now)
    assert a.peers["b"].record == [("10.8.0.5", 6278)], a.peers["b"].record
    assert ("10.8.0.6", 0) not in a.ep.assocs["b"].remotes


def test_a_refused_subscription_is_asked_again_a_minute_later():
    w = Wire(["a"])  # the server does not serve "nobody": its SUBSCRIBE-ACK grants ttl 0
    a = w.client("a")
    w.up("a", "eth", ("10.1.0.2", 6278))
    a.watch("nobody")
    a.start(w.now)
    t0 = w.now
    w.run(t0 + 130000)
    subs = [x[0] - t0 for x in w.log if x[3] == msg.SUBSCRIBE]
    assert len(subs) == 3 and subs[0] == 0, subs  # at once, then after 60 s, twice
    assert 60000 <= subs[1] - subs[0] <= 60010 and 60000 <= subs[2] - subs[1] <= 60010, subs


def test_a_second_outage_is_looked_up_at_once_and_from_the_shortest_wait_again():
    w, a, b = two()
    w.drop = lambda src, dst, d: d[1] == msg.NOTIFY
    assoc = a.ep.assocs["b"]
    assoc.primary = None  # first outage: long enough for the wait to reach its maximum
    a.handle_timer(w.now)
    w.run(w.now + 30000)
    assoc.primary = "path"  # over
    a.handle_timer(w.now)
    w.run(w.now + 5000)
    t0 = w.now
    assoc.primary = None  # the second outage
    a.handle_timer(w.now)
    w.run(t0 + 4000)
    assert _lookups(w, t0) == [0, 500, 1500, 3500], _lookups(w, t0)
    assert [e.fields["peer"] for e in w.events("a", "presence_outage")] == ["b", "b"]


def test_an_address_change_during_an_outage_looks_the_peer_up_at_once():
    w, a, b = two()
    w.drop = lambda src, dst, d: d[1] == msg.NOTIFY
    a.ep.assocs["b"].primary = None
    a.handle_timer(w.now)
    w.run(w.now + 20000)  # lookups every 8 s by now
    t0 = w.now
    w.up("a", "eth", ("10.1.7.7", 6278))  # a moves: from there, the peer may answer again
    w.run(t0 + 100)
    assert _lookups(w, t0) == [0], _lookups(w, t0)


def test_a_peer_found_by_dns_is_looked_up_at_its_own_server_not_at_home():
    w = Wire(["a", "b"])
    a = w.client("a", home=[("10.53.9.9", 6279)],
                 resolver=lambda name, port: {"addresses": [("10.9.0.1", port)], "servers": [SERVER]})
    w.up("a", "eth", ("10.1.0.2", 6278))
    a.ep.assocs["b"] = FakeAssoc()
    a.watch("b", dns="b.example")
    a.start(w.now)
    w.run(w.now + 100)
    a.ep.assocs["b"].primary = None
    t0 = w.now
    a.handle_timer(w.now)
    w.run(t0 + 100)
    assert [x[2] for x in w.log if x[3] == msg.LOOKUP] == [SERVER]


def test_a_counter_store_that_failed_once_is_written_at_the_next_request():
    # the first write failed (a full flash, say): the next request tries again, so a reboot
    # still starts above every counter sent, and the server takes it
    w = Wire(["a"])
    store = MemoryStore()
    store.fail = True
    a = w.client("a", counter_base=BASE, counter_store=store)
    w.up("a", "eth", ("10.1.0.2", 6278))
    a.start(w.now)
    w.run(w.now + 100)
    assert a.presence_counters["counter_store_error"] == 1
    store.fail = False
    w.run(w.now + 10 * 60 * 1000)  # refreshes every 60 s
    assert store.writes == 1 and store.value > a.counter
    w.clients.pop("a")
    a = w.client("a", counter_base=BASE, counter_store=store)  # reboot: the clock at BASE again
    w.up("a", "eth", ("10.1.0.2", 6278))
    a.start(w.now)
    w.run(w.now + 100)
    assert "replay" not in w.server.counters and server_status(w.server, w.now)["names"]["a"]["registered"]


def test_an_uplink_on_the_unspecified_address_is_left_out_of_the_registration():
    # the server refuses a whole REGISTER that lists 0.0.0.0 or :: (P.3): listed, it would
    # leave the host unregistered
    w = Wire(["a"])
    a = w.client("a")
    w.up("a", "any", ("0.0.0.0", 6278), priority=5)
    w.up("a", "eth", ("10.1.0.2", 6278), priority=10)
    a.start(w.now)
    w.run(w.now + 100)
    st = server_status(w.server, w.now)["names"]["a"]
    assert st["registered"] and st["addresses"] == ["10.1.0.2:6278"], st


# ---- presence's deadlines against the core's next timer (Presence.next_timer) ------------
# The runtime sleeps until next_timer(): presence's own deadlines must not wait for a later
# timer of the core (an idle path's probe, a minute away), nor hide an earlier one.


def _core_timer(p, w, after):
    """p's core has its own next timer `after` ms from now, always."""
    p.ep.next_timer = lambda: w.now + after


def test_presence_deadlines_earlier_than_the_cores_next_timer_come_first():
    w = Wire(["a"])
    asked = []

    def no_dns(name, port):
        asked.append((w.now, name))
        raise OSError("no answer from the DNS server")

    w.drop = lambda src, dst, d: True  # the server never answers: REGISTER is sent again
    a = w.client("a", resolver=no_dns)
    _core_timer(a, w, 3600000)
    w.up("a", "eth", ("10.1.0.2", 6278))
    a.home_from("a.example")  # our own name (home servers from DNS): failing
    a.start(w.now)
    w.run(w.now + 10000)
    assert [x[0] for x in w.log if x[3] == msg.REGISTER] == [0, 1000, 3000, 7000]
    assert asked == [(0, "a.example"), (2000, "a.example"), (6000, "a.example")], asked


def test_a_lookup_in_an_outage_does_not_wait_for_the_cores_later_timer():
    w, a, b = two()
    _core_timer(a, w, 3600000)
    w.drop = lambda src, dst, d: d[1] == msg.NOTIFY
    a.ep.assocs["b"].primary = None
    t0 = w.now
    a.handle_timer(w.now)
    w.run(t0 + 4000)
    assert _lookups(w, t0) == [0, 500, 1500, 3500], _lookups(w, t0)


def test_a_connect_due_on_receipt_does_not_wait_for_the_cores_later_timer():
    # the association went while a datagram came in (the peer's SHUT): connect again at once,
    # not at the next refresh a minute later
    w = Wire(["a", "b"])
    a = w.client("a", resolver=lambda name, port: {"addresses": [("10.9.0.1", port)], "servers": [SERVER]})
    _core_timer(a, w, 3600000)
    w.up("a", "eth", ("10.1.0.2", 6278))
    a.ep.assocs["b"] = FakeAssoc()
    a.watch("b", dns="b.example", connect=True)
    a.start(w.now)
    w.run(w.now + 100)
    assert a.ep.connects == []
    del a.ep.assocs["b"]
    a.receive("eth", ("10.9.0.1", 6278), b"\x10" + bytes(20), w.now)  # a MAST datagram
    w.run(w.now + 100)
    assert a.ep.connects == [("b", [("10.9.0.1", 6278)])]


def test_the_cores_earlier_timer_comes_before_presence_deadlines():
    w = Wire(["a"])
    a = w.client("a")
    w.up("a", "eth", ("10.1.0.2", 6278))
    a.start(w.now)
    w.run(w.now + 100)  # registered: the next presence deadline is the refresh, 60 s away
    _core_timer(a, w, 25)
    assert a.next_timer() == w.now + 25
    a.ep.next_timer = lambda: None
    assert a.next_timer() == 60002


def test_a_name_that_keeps_failing_is_resolved_again_at_least_every_minute():
    # DNS down for ten minutes (a board's modem still dialling): the retries back off from
    # 2 s, doubling, but never past a minute, or DNS back up goes unused for that long; and
    # each retry comes when due, the core's own next timer an hour away
    w = Wire(["a"])
    asked = []

    def no_dns(name, port):
        asked.append(w.now)
        raise OSError("no answer from the DNS server")

    a = w.client("a", home=(), resolver=no_dns)
    _core_timer(a, w, 3600000)
    w.up("a", "eth", ("10.1.0.2", 6278))
    a.watch("b", dns="b.example")
    a.start(w.now)
    w.run(w.now + 600000)
    gaps = [y - x for x, y in zip(asked, asked[1:])]
    assert gaps[:5] == [2000, 4000, 8000, 16000, 32000] and set(gaps[5:]) == {60000}, gaps
