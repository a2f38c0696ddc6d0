# The presence client (firmware/presence/client.py) against the real presence server on
# a fake clock, with a stand-in for the MAST core (presence_fake.FakeEndpoint): what it
# registers and when, how it learns a peer's new addresses (NOTIFY, SUBSCRIBE-ACK, and
# LOOKUP while the association has no path), what it ignores, and peers named by DNS.
# The same client with the real cores: tests/host/test_presence_sim.py.
from presence import msg
from presence.report import client_status, server_status
from presence_fake import Wire, MemoryStore, two, FakeEndpoint, SERVER, BASE, key_of
from presence.client import Presence


def test_a_host_registers_its_complete_list_and_learns_where_the_server_sees_it():
    w = Wire(["a"])
    a = w.client("a")
    w.up("a", "eth", ("10.1.0.2", 6278))
    w.up("a", "cell", ("10.3.0.2", 6278), priority=30, cost=10)
    w.set_nat("a", "cell", ("100.64.0.9", 31000))  # presence goes out on the best uplink: cell
    a.start(w.now)
    w.run(w.now + 100)
    st = server_status(w.server, w.now)["names"]["a"]
    assert st["registered"] and st["addresses"] == ["10.3.0.2:6278", "10.1.0.2:6278"]
    assert st["observed"] == "100.64.0.9:31000" and st["ttl_left_s"] == 120
    reg = client_status(a)["registrations"]
    assert reg == [{"server": "10.53.0.1:6279", "ttl": 120, "observed": "100.64.0.9:31000", "answered_ms": 2}]
    assert [e.fields["observed"] for e in w.events("a", "presence_registered")] == ["100.64.0.9:31000"]


def test_a_host_registers_again_at_once_when_an_uplink_comes_goes_or_moves():
    w, a, b = two()
    t = w.now
    w.up("a", "eth", ("10.1.7.7", 6278))
    w.run(w.now + 2)
    assert server_status(w.server, w.now)["names"]["a"]["addresses"] == ["10.1.7.7:6278"]
    w.up("a", "wifi", ("10.2.0.2", 6278))
    w.run(w.now + 2)
    assert server_status(w.server, w.now)["names"]["a"]["addresses"] == ["10.1.7.7:6278", "10.2.0.2:6278"]
    w.down("a", "eth")
    w.run(w.now + 2)
    assert server_status(w.server, w.now)["names"]["a"]["addresses"] == ["10.2.0.2:6278"]
    assert w.now - t == 6


def test_registrations_and_subscriptions_are_refreshed_at_half_their_ttl():
    w, a, b = two()
    w.run(w.now + 5 * 60 * 1000)  # 2.5 registration TTLs, 1 subscription TTL
    assert w.sent("a", msg.REGISTER) == 1 + 5  # every 60 s
    assert w.sent("a", msg.SUBSCRIBE) == 1 + 2  # every 150 s
    st = server_status(w.server, w.now)["names"]
    assert st["a"]["registered"] and st["b"]["subscribers"] == ["a"]
    assert len(w.events("a", "presence_registered")) == 1  # a refresh is no news


def test_a_notify_hands_the_peers_new_addresses_to_the_core_and_is_acknowledged():
    w, a, b = two()
    t = w.now
    w.up("b", "wan", ("10.8.0.1", 6278))  # b moves
    w.run(w.now + 10)
    assert ("10.8.0.1", 6278) in a.ep.assocs["b"].remotes
    learnt = w.events("a", "presence_peer")[-1].fields
    assert (learnt["via"], learnt["addresses"], learnt["new"]) == ("notify", ["10.8.0.1:6278"], 1)
    assert w.sent("a", msg.NOTIFY_ACK, since=t) == 1
    w.run(w.now + 30000)
    assert w.server.counters.get("notify_sent") == 2  # b's registration, b's move; none again


def test_a_peer_in_an_outage_is_looked_up_at_once_then_with_backoff():
    w, a, b = two()
    w.drop = lambda src, dst, d: d[1] == msg.NOTIFY  # every NOTIFY is lost
    a.ep.assocs["b"].primary = None  # a's association to b has no usable path
    t0 = w.now
    a.handle_timer(w.now)
    w.flush()
    w.run(t0 + 20000)
    lookups = [x[0] - t0 for x in w.log if x[3] == msg.LOOKUP]
    assert lookups == [0, 500, 1500, 3500, 7500, 15500], lookups
    w.up("b", "wan", ("10.8.0.1", 6278))  # b moves; a hears it only by looking it up
    w.run(w.now + 9000)
    assert ("10.8.0.1", 6278) in a.ep.assocs["b"].remotes
    via = [e.fields["via"] for e in w.events("a", "presence_peer") if "10.8.0.1:6278" in e.fields["addresses"]]
    assert via == ["lookup"]
    a.ep.assocs["b"].primary = "path"  # a path works again: no more lookups
    a.handle_timer(w.now)
    n = len([x for x in w.log if x[3] == msg.LOOKUP])
    w.run(w.now + 60000)
    assert len([x for x in w.log if x[3] == msg.LOOKUP]) == n


def test_after_a_double_jump_each_end_learns_the_others_new_addresses():
    w, a, b = two()
    w.down("a", "eth")  # both lose every address...
    w.down("b", "wan")
    a.ep.assocs["b"].primary = None
    b.ep.assocs["a"].primary = None
    w.run(w.now + 3000)
    t0 = w.now
    w.up("b", "wan2", ("10.8.0.1", 6278))  # ...and come back on new ones
    w.up("a", "eth2", ("10.4.0.9", 6278))
    w.run(w.now + 20)
    assert ("10.8.0.1", 6278) in a.ep.assocs["b"].remotes
    assert ("10.4.0.9", 6278) in b.ep.assocs["a"].remotes
    st = server_status(w.server, w.now)["names"]
    assert st["a"]["addresses"] == ["10.4.0.9:6278"] and st["b"]["addresses"] == ["10.8.0.1:6278"]
    assert w.now - t0 == 20


def test_a_replayed_notify_and_answers_to_requests_never_sent_are_ignored():
    w, a, b = two()
    seen = []
    w.drop = lambda src, dst, d: (d[1] == msg.NOTIFY and seen.append(d)) or False
    w.up("b", "wan", ("10.8.0.2", 6278))
    w.run(w.now + 10)
    assert seen
    before = dict(a.presence_counters)
    a.receive("eth", SERVER, seen[0], w.now)  # the very NOTIFY again
    up, down = msg.keys(key_of("a"), "a")
    forged = msg.seal(down, msg.LOOKUP_ACK, BASE + 12345, "a",
                      msg.enc_record(msg.REGISTERED, "b", 60, None, [(("192.0.2.66", 6278), 0, 0)]))
    a.receive("eth", SERVER, forged, w.now)  # tagged right, but a never asked
    a.receive("eth", SERVER, msg.seal(up, msg.LOOKUP, BASE, "a", msg.enc_lookup("b")), w.now)
    a.receive("eth", SERVER, msg.seal(up, msg.NOTIFY, BASE + 10 ** 9, "a", seen[0][12:-16]), w.now)
    a.receive("eth", SERVER, b"\x50" + bytes(60), w.now)
    assert a.presence_counters["replay"] == before.get("replay", 0) + 1
    assert a.presence_counters["unexpected"] == before.get("unexpected", 0) + 1
    assert a.presence_counters["bad_type"] == 1  # a request: a is no server
    assert a.presence_counters["mac"] == 1  # a NOTIFY under the wrong key
    assert a.presence_counters["malformed"] == 1
    assert a.datagrams_to_send() == []  # nothing answered
    assert ("192.0.2.66", 6278) not in a.ep.assocs["b"].remotes


def test_a_stranger_with_a_served_name_but_not_its_key_cannot_register_it():
    w, a, b = two()
    thief = w.client("b", key=bytes(32))  # calls itself b
    w.clients["thief"] = w.clients.pop("b")
    w.notes["thief"] = w.notes["b"]
    w.up("thief", "eth", ("10.66.0.1", 6278))
    thief.start(w.now)
    w.run(w.now + 40000)
    assert server_status(w.server, w.now)["names"]["b"]["addresses"] == ["10.9.0.1:6278"]
    assert w.server.counters["mac"] == w.sent("thief", msg.REGISTER) == 6  # 1 + 5 retries in 40 s
    assert client_status(thief)["registrations"][0]["ttl"] is None


def test_requests_are_retransmitted_with_backoff_from_the_next_uplink():
    w = Wire(["a"])
    a = w.client("a")
    w.up("a", "eth", ("10.1.0.2", 6278), priority=10)
    w.up("a", "wifi", ("10.2.0.2", 6278), priority=20)
    w.drop = lambda src, dst, d: dst == SERVER  # the server is unreachable
    a.start(w.now)
    w.run(w.now + 60000)
    sends = [(x[0], x[1][0]) for x in w.log if x[3] == msg.REGISTER]
    assert sends == [(0, "10.1.0.2"), (1000, "10.2.0.2"), (3000, "10.1.0.2"), (7000, "10.2.0.2"),
                     (15000, "10.1.0.2"), (31000, "10.2.0.2"), (47000, "10.1.0.2")], sends


def test_without_an_uplink_nothing_is_sent_until_one_comes():
    w = Wire(["a"])
    a = w.client("a")
    a.start(w.now)
    w.run(w.now + 10000)
    assert w.log == [] and a.presence_counters["tx_no_uplink"] == 1 and a.next_timer() is None
    w.up("a", "eth", ("10.1.0.2", 6278))
    w.run(w.now + 10)
    assert server_status(w.server, w.now)["names"]["a"]["registered"]


def _boot(w, store, counter_base):
    """A host "a" starting with its clock at counter_base: registers at once."""
    w.clients.pop("a", None)
    a = w.client("a", counter_base=counter_base, counter_store=store)
    w.up("a", "eth", ("10.1.0.2", 6278))
    a.start(w.now)
    w.run(w.now + 100)
    return a


def test_a_host_without_a_clock_keeps_its_counters_growing_across_a_reboot_with_a_store():
    # a board without a real-time clock: its wall clock restarts at the same value at
    # every boot. With a counter_store its first REGISTER after a reboot is accepted...
    w = Wire(["a"])
    store = MemoryStore()
    a = _boot(w, store, BASE)
    w.run(w.now + 10 * 60 * 1000)  # 10 minutes: refreshes every 60 s
    assert w.server.counters["accepted"] == 11 and store.writes == 1  # one block: 1 h of clock
    last = a.counter
    assert last < store.value
    a = _boot(w, store, BASE)  # reboot: the clock starts at BASE again
    assert a.counter > last and w.server.counters["accepted"] == 12
    assert "replay" not in w.server.counters
    assert server_status(w.server, w.now)["names"]["a"]["registered"] and store.writes == 2
    # ...and without one it is refused as a replay until its clock passes the old counter
    w.clients.pop("a")
    a = w.client("a", counter_base=BASE)
    w.up("a", "eth", ("10.1.0.2", 6278))
    a.start(w.now)
    w.run(w.now + 100)
    assert w.server.counters["replay"] == 1 and w.server.counters["accepted"] == 12


def test_a_failing_counter_store_is_counted_and_requests_still_go_out():
    w = Wire(["a"])
    store = MemoryStore()
    store.fail = True
    a = _boot(w, store, BASE)
    assert a.presence_counters["counter_store_error"] == 1 and store.writes == 0
    assert server_status(w.server, w.now)["names"]["a"]["registered"]


def test_presence_and_mast_datagrams_share_the_socket_and_are_told_apart_by_their_first_byte():
    w, a, b = two()
    a.receive("eth", ("10.9.0.1", 6278), b"\x01\x10" + bytes(30), w.now)  # MAST/1
    assert a.ep.mast_rx == [("eth", ("10.9.0.1", 6278), b"\x01\x10" + bytes(30))]
    n = a.presence_counters["rx"]
    a.receive("eth", SERVER, b"\x50\x02" + bytes(30), w.now)  # PRES/1: the client's
    assert a.presence_counters["rx"] == n + 1 and len(a.ep.mast_rx) == 1


# ---- peers named by DNS (P.1) -------------------------------------------------------


def dns_pair(resolver, home=(SERVER,)):
    w = Wire(["a", "b"])
    a = w.client("a", home=home, resolver=resolver)
    w.up("a", "eth", ("10.1.0.2", 6278))
    a.watch("b", dns="b.example", connect=True, port=6278)
    a.start(w.now)
    w.flush()
    return w, a


def test_a_peer_named_by_dns_is_connected_at_its_a_records_and_followed_at_its_srv_server():
    asked = []

    def resolver(name, port):
        asked.append((name, port))
        return {"addresses": [("10.9.0.1", port), ("2001:db8::9", port)], "servers": [SERVER]}

    w, a = dns_pair(resolver, home=())
    w.run(w.now + 100)
    assert asked == [("b.example", 6278)]
    assert a.ep.connects == [("b", [("10.9.0.1", 6278), ("2001:db8::9", 6278)])]
    st = client_status(a)["peers"]["b"]
    assert st["resolved"] == "srv" and st["servers"] == ["10.53.0.1:6279"]
    assert server_status(w.server, w.now)["names"]["b"]["subscribers"] == ["a"]
    assert client_status(a)["registrations"] == []  # no home server: a registers nowhere


def test_a_dns_name_without_srv_falls_back_to_its_a_records():
    def resolver(name, port):
        return {"addresses": [("10.9.0.1", port)], "servers": []}

    w, a = dns_pair(resolver, home=())
    w.run(w.now + 100)
    st = client_status(a)["peers"]["b"]
    assert st["resolved"] == "a" and st["servers"] == ["10.9.0.1:6279"]  # its own A, port 6279
    assert a.ep.connects == [("b", [("10.9.0.1", 6278)])]
    w2, a2 = dns_pair(resolver)  # with a configured presence server: that one
    w2.run(w2.now + 100)
    st = client_status(a2)["peers"]["b"]
    assert st["resolved"] == "config" and st["servers"] == ["10.53.0.1:6279"]


def failing_twice(addresses):
    """(the names asked, a resolver whose first two lookups fail, then answer addresses
    (at the port asked) and SERVER)."""
    calls = []

    def resolver(name, port):
        calls.append(name)
        if len(calls) <= 2:
            raise OSError("no answer from the DNS server")
        return {"addresses": [(a, port) for a in addresses], "servers": [SERVER]}

    return calls, resolver


def test_a_failed_resolution_is_retried_with_backoff():
    calls, resolver = failing_twice(["10.9.0.1"])
    w, a = dns_pair(resolver)
    w.run(w.now + 1000)
    assert len(calls) == 1 and a.ep.connects == []
    w.run(w.now + 5100)  # again after 2 s, then after 4 s
    assert len(calls) == 3
    assert [e.fields["error"] for e in w.events("a", "presence_resolve_failed")] == ["no answer from the DNS server"] * 2
    assert a.ep.connects == [("b", [("10.9.0.1", 6278)])]


def test_a_blocking_lookup_that_fails_is_retried_counting_from_its_end():
    # MicroPython resolves blocking (getaddrinfo): with a DNS server that does not answer a
    # lookup took 5 s, and its retry, due 2 s after the lookup began, came at once: two
    # failed lookups back to back, the loop standing still for both
    w = Wire(["a", "b"])
    calls = []

    def resolver(name, port):
        calls.append(w.now)
        w.now += 5000  # the wall clock runs on while the lookup blocks
        raise OSError("no answer from the DNS server")

    a = w.client("a", home=(), resolver=resolver)
    a.clock = lambda: w.now
    w.up("a", "eth", ("10.1.0.2", 6278))
    a.watch("b", dns="b.example", connect=True, port=6278)
    t0 = w.now
    a.start(t0)
    w.run(t0 + 20000)
    # each retry 2 s, then 4 s, after the failed lookup ended (5 s after it began)
    assert calls == [t0, t0 + 7000, t0 + 16000], [c - t0 for c in calls]


def test_own_presence_servers_from_dns_are_looked_up_again_until_found_then_registered_at():
    # looked up once at start: a host that started before DNS worked (a board's modem still
    # dialling) never registered, and nothing said so
    calls, resolver = failing_twice([])
    w = Wire(["a"])
    a = w.client("a", home=(), resolver=resolver)
    w.up("a", "eth", ("10.1.0.2", 6278))
    a.home_from("a.example")
    a.start(w.now)
    w.run(w.now + 1000)
    assert calls == ["a.example"] and a.home == []
    failed = w.events("a", "presence_resolve_failed")
    assert [(e.fields["peer"], e.fields["dns"]) for e in failed] == [(None, "a.example")]
    w.run(w.now + 5100)  # again after 2 s, then after 4 s: found
    assert len(calls) == 3 and a.home == [SERVER]
    assert [e.fields["servers"] for e in w.events("a", "presence_home")] == [["10.53.0.1:6279"]]
    w.run(w.now + 100)
    assert server_status(w.server, w.now)["names"]["a"]["registered"]


class Underway(Exception):
    retry_ms = 50


def test_a_lookup_under_way_is_asked_again_soon_and_is_not_a_failure():
    calls = []
    w = Wire(["a", "b"])

    def resolver(name, port):  # (a resolver that works in the background, as on CPython)
        calls.append(w.now)
        if len(calls) <= 3:
            raise Underway()
        return {"addresses": [("10.9.0.1", port)], "servers": [SERVER]}

    a = w.client("a", resolver=resolver)
    w.up("a", "eth", ("10.1.0.2", 6278))
    a.watch("b", dns="b.example", connect=True, port=6278)
    a.start(w.now)
    w.run(w.now + 1000)
    assert [t - calls[0] for t in calls] == [0, 50, 100, 150]
    assert w.events("a", "presence_resolve_failed") == []
    assert a.ep.connects == [("b", [("10.9.0.1", 6278)])]


def test_a_peer_known_only_to_presence_is_connected_where_it_registered():
    w = Wire(["a", "b"])
    a, b = w.client("a"), w.client("b")
    w.up("a", "eth", ("10.1.0.2", 6278))
    w.up("b", "wan", ("10.9.0.1", 6278))
    b.start(w.now)
    a.watch("b", connect=True)
    a.start(w.now)
    w.flush()
    w.run(w.now + 100)
    assert a.ep.connects == [("b", [("10.9.0.1", 6278)])]


def test_without_a_key_dns_names_are_resolved_and_connected_but_nothing_is_registered():
    def resolver(name, port):
        return {"addresses": [("10.9.0.1", port)], "servers": [SERVER]}

    w = Wire(["a", "b"])
    a = w.client("a", key=None, resolver=resolver)
    w.up("a", "eth", ("10.1.0.2", 6278))
    a.watch("b", dns="b.example", connect=True)
    a.start(w.now)
    w.run(w.now + 10000)
    assert a.ep.connects == [("b", [("10.9.0.1", 6278)])]
    assert w.log == []  # no presence traffic at all
    assert client_status(a)["registrations"] == [] and client_status(a)["peers"]["b"]["servers"] == []


def test_a_connect_peer_is_connected_again_when_its_association_is_gone():
    w = Wire(["a", "b"])
    a, b = w.client("a"), w.client("b")
    w.up("a", "eth", ("10.1.0.2", 6278))
    w.up("b", "wan", ("10.9.0.1", 6278))
    b.start(w.now)
    a.watch("b", connect=True)
    a.start(w.now)
    w.run(w.now + 100)
    assert len(a.ep.connects) == 1
    a.ep.assocs["b"].state = 2
    w.run(w.now + 60000)
    assert len(a.ep.connects) == 1  # it has one: no wake-ups to connect again
    del a.ep.assocs["b"]  # closed (outage_s passed, say)
    a.handle_timer(w.now)
    assert a.ep.connects[-1] == ("b", [("10.9.0.1", 6278)]) and len(a.ep.connects) == 2


def test_a_subscribe_ack_held_back_on_the_path_never_lowers_the_notify_floor():
    # a's refreshed SUBSCRIBE-ACK (floor f) is held back while two NOTIFYs (f+1, f+2) go
    # through; delivered late, it set the floor back to f, and the NOTIFY f+1 replayed was taken
    # again: the peer's record went back to a stale address (P.6)
    w, a, b = two()
    held, notifies = [], []

    def drop(src, dst, d):
        if src == SERVER and dst == ("10.1.0.2", 6278):
            if d[1] == msg.SUBSCRIBE_ACK:
                held.append(d)
                return True
            if d[1] == msg.NOTIFY:
                notifies.append(d)
        return False

    w.drop = drop
    a._moved(w.now)  # a refreshes its REGISTER and SUBSCRIBE
    w.run(w.now + 10)
    w.up("b", "wan", ("10.8.0.1", 6278))
    w.run(w.now + 10)
    w.up("b", "wan", ("10.7.0.1", 6278))
    w.run(w.now + 10)
    assert len(held) == 1 and len(notifies) == 2
    latest = a.peers["b"].record
    w.drop = None
    a.receive("eth", SERVER, held[0], w.now)
    replays = a.presence_counters.get("replay", 0)
    a.receive("eth", SERVER, notifies[0], w.now)
    assert a.presence_counters.get("replay", 0) == replays + 1, a.presence_counters
    assert a.peers["b"].record == latest


def test_subscriptions_follow_the_servers_dns_names_now_and_are_at_most_four():
    # each re-resolution (every 10 min) that named other servers added subscriptions, and
    # those no answer named any more were retransmitted to for ever: 580 after a day of a
    # round-robin answer (a 256K MicroPython heap ran out after 6 to 12 hours)
    calls = [0]

    def resolver(name, port):
        calls[0] += 1
        i = calls[0]
        return {"addresses": [("192.0.2.%d" % (i % 250 + 1), port)],
                "servers": [("198.51.%d.%d" % (i % 250, j + 1), 6279) for j in range(6)]}

    ep = FakeEndpoint("a")
    ep.uplink_up("eth", ("10.1.0.2", 6278), 0)
    p = Presence(ep, key_of("a"), home=[("10.53.0.1", 6279)], counter_base=BASE, resolver=resolver)
    p.watch("b", dns="b.example")
    p.start(0)
    now = 0
    for hour in (1, 2, 3):
        for _ in range(20000):  # bounded
            t = p.next_timer()
            if t is None or t > hour * 3600000:
                break
            now = t
            p.handle_timer(now)
            p.datagrams_to_send()
        subs = sorted(t.server for t in p.tasks if t.kind == msg.SUBSCRIBE)
        i = calls[0]
        assert subs == sorted(("198.51.%d.%d" % (i % 250, j + 1), 6279) for j in range(4)), (hour, subs)
    assert calls[0] >= 18


def test_an_answer_taken_once_is_not_taken_again():
    # a REGISTER-ACK replayed (a copy held back on the path, or an attacker's) answers no request
    # any more: counted unexpected, and the refresh it would move stays where the first put it
    w, a, b = two()
    acks = []
    w.drop = lambda src, dst, d: (d[1] == msg.REGISTER_ACK and acks.append(d)) or False
    a._moved(w.now)  # a registers again at once
    w.run(w.now + 10)
    assert len(acks) == 1
    reg = [t for t in a.tasks if t.kind == msg.REGISTER][0]
    due, answered = reg.due, reg.answered
    unexpected = a.presence_counters.get("unexpected", 0)
    w.run(w.now + 20000)
    a.receive("eth", SERVER, acks[0], w.now)  # the same REGISTER-ACK, 20 s later
    assert a.presence_counters.get("unexpected", 0) == unexpected + 1, a.presence_counters
    assert (reg.due, reg.answered) == (due, answered)


def test_a_record_listing_unspecified_addresses_gives_only_its_usable_ones():
    # 0.0.0.0 and :: are never a peer's address (PROTOCOL.md 6.1): a record carrying them (in
    # its list or as observed) hands the core only the rest
    w, a, b = two()
    up, down = msg.keys(key_of("a"), "a")
    rec = msg.enc_record(msg.REGISTERED, "b", 60, ("0.0.0.0", 40000),
                         [(("0.0.0.0", 6278), 0, 0), (("::", 6278), 0, 0), (("10.8.0.5", 6278), 0, 0)])
    a.receive("eth", SERVER, msg.seal(down, msg.NOTIFY, a.floors[SERVER] + 1, "a", rec), w.now)
    assert a.peers["b"].record == [("10.8.0.5", 6278)], a.peers["b"].record
    assert a.ep.assocs["b"].remotes == [("10.9.0.1", 6278), ("10.8.0.5", 6278)]
