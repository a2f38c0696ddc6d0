# The presence server (firmware/presence/server.py) on a fake clock: only configured
# names, each with its own key; strictly increasing counters; registrations expire at
# their TTL; NOTIFY to subscribers until acknowledged; a rate limit per name that
# only the name's key can spend, so that a spoofed flood denies nobody; and
# nothing ever sent in answer to input that is not authenticated and fresh.
from presence.report import server_status
from presence import msg
from presence.server import Server

KEY_A = bytes(range(32))
KEY_B = bytes(range(32, 64))
STRANGER = bytes(range(64, 96))
A_SRC = ("198.51.100.7", 40001)
B_SRC = ("203.0.113.9", 6278)
ADDRS = [(("192.0.2.10", 6278), 10, 0), (("2001:db8::10", 6278), 20, 0)]
T0 = 1000000


class Host:
    """A requester with a name, a key and a counter: builds requests, reads answers."""

    def __init__(self, name, key, src, counter=1700000000000):
        self.name = name
        self.up, self.down = msg.keys(key, name)
        self.src = src
        self.counter = counter

    def req(self, ptype, body, counter=None):
        if counter is None:
            self.counter += 1
            counter = self.counter
        return msg.seal(self.up, ptype, counter, self.name, body)

    def register(self, ttl=120, addrs=ADDRS, counter=None):
        return self.req(msg.REGISTER, msg.enc_register(ttl, addrs), counter)

    def lookup(self, target):
        return self.req(msg.LOOKUP, msg.enc_lookup(target))

    def subscribe(self, target, ttl=300):
        return self.req(msg.SUBSCRIBE, msg.enc_subscribe(ttl, target))

    def read(self, pkt):
        """-> (type, counter, body) of an answer to us, checked under our k_down."""
        ptype, counter, name, body = msg.parse(pkt)
        assert name == self.name and msg.verify(self.down, pkt)
        return ptype, counter, body


def server(**kw):
    return Server({"a.example": KEY_A, "b.example": KEY_B}, notify_base=5000, **kw)


def one_answer(srv, to):
    out = srv.datagrams_to_send()
    assert [d for d, _ in out] == [to], out
    return out[0][1]


def test_register_is_answered_with_the_granted_ttl_and_the_observed_source():
    srv, a = server(), Host("a.example", KEY_A, A_SRC)
    srv.receive(A_SRC, a.register(ttl=120), T0)
    ptype, counter, body = a.read(one_answer(srv, A_SRC))
    assert (ptype, counter) == (msg.REGISTER_ACK, a.counter)
    assert msg.dec_register_ack(body) == (120, A_SRC)
    st = server_status(srv, T0)["names"]["a.example"]
    assert st["registered"] and st["observed"] == "198.51.100.7:40001"
    assert st["addresses"] == ["192.0.2.10:6278", "[2001:db8::10]:6278"]


def test_lookup_returns_the_registered_set_and_the_observed_source():
    srv, a, b = server(), Host("a.example", KEY_A, A_SRC), Host("b.example", KEY_B, B_SRC)
    srv.receive(A_SRC, a.register(ttl=60), T0)
    srv.datagrams_to_send()
    srv.receive(B_SRC, b.lookup("a.example"), T0 + 1500)
    ptype, counter, body = b.read(one_answer(srv, B_SRC))
    assert (ptype, counter) == (msg.LOOKUP_ACK, b.counter)
    status, target, ttl, observed, addrs = msg.dec_record_only(body)
    assert (status, target, ttl, observed, addrs) == (msg.REGISTERED, "a.example", 59, A_SRC, ADDRS)


def test_lookup_of_a_served_name_without_registration_is_absent_and_of_an_unserved_one_unknown():
    srv, b = server(), Host("b.example", KEY_B, B_SRC)
    srv.receive(B_SRC, b.lookup("a.example"), T0)
    assert msg.dec_record_only(b.read(one_answer(srv, B_SRC))[2])[:2] == (msg.ABSENT, "a.example")
    srv.receive(B_SRC, b.lookup("nobody.example"), T0)
    rec = msg.dec_record_only(b.read(one_answer(srv, B_SRC))[2])
    assert rec == (msg.UNKNOWN, "nobody.example", 0, None, [])


def test_an_unserved_name_is_dropped_unanswered():
    srv = server()
    x = Host("x.example", STRANGER, A_SRC)
    srv.receive(A_SRC, x.register(), T0)
    srv.receive(A_SRC, x.lookup("a.example"), T0)
    assert srv.datagrams_to_send() == []
    assert srv.counters["unknown_name"] == 2


def test_a_strangers_register_for_a_served_name_is_refused_during_and_after_the_owners_registration():
    srv, a = server(), Host("a.example", KEY_A, A_SRC)
    stranger = Host("a.example", STRANGER, ("192.0.2.99", 6278), counter=1800000000000)
    srv.receive(A_SRC, a.register(ttl=10), T0)
    srv.datagrams_to_send()
    srv.receive(stranger.src, stranger.register(ttl=120, addrs=[(("192.0.2.99", 6278), 0, 0)]), T0 + 1)
    assert srv.datagrams_to_send() == []
    assert server_status(srv, T0 + 1)["names"]["a.example"]["addresses"][0] == "192.0.2.10:6278"
    srv.handle_timer(T0 + 10000)  # the owner's registration expires
    assert not server_status(srv, T0 + 10000)["names"]["a.example"]["registered"]
    srv.receive(stranger.src, stranger.register(ttl=120, addrs=[(("192.0.2.99", 6278), 0, 0)]), T0 + 11000)
    assert srv.datagrams_to_send() == []
    assert not server_status(srv, T0 + 11000)["names"]["a.example"]["registered"]  # not squatted
    assert srv.counters["mac"] == 2


def test_a_replayed_register_is_refused():
    srv, a = server(), Host("a.example", KEY_A, A_SRC)
    pkt = a.register(ttl=120)
    srv.receive(A_SRC, pkt, T0)
    assert len(srv.datagrams_to_send()) == 1
    srv.receive(A_SRC, pkt, T0 + 10)
    srv.receive(("192.0.2.66", 1234), pkt, T0 + 20)  # from elsewhere: still a replay
    assert srv.datagrams_to_send() == []
    assert srv.counters["replay"] == 2
    assert server_status(srv, T0 + 20)["names"]["a.example"]["observed"] == "198.51.100.7:40001"


def test_counters_must_grow_across_all_message_types():
    srv, a = server(), Host("a.example", KEY_A, A_SRC)
    srv.receive(A_SRC, a.lookup("b.example"), T0)  # counter c
    old = a.register(counter=a.counter - 5)
    srv.receive(A_SRC, old, T0 + 1)
    same = a.register(counter=a.counter)
    srv.receive(A_SRC, same, T0 + 2)
    assert len(srv.datagrams_to_send()) == 1
    assert srv.counters["replay"] == 2


def test_a_registration_expires_at_its_ttl():
    srv, a, b = server(), Host("a.example", KEY_A, A_SRC), Host("b.example", KEY_B, B_SRC)
    srv.receive(A_SRC, a.register(ttl=2), T0)
    srv.datagrams_to_send()
    assert srv.next_timer() == T0 + 2000
    srv.receive(B_SRC, b.lookup("a.example"), T0 + 1999)
    assert msg.dec_record_only(b.read(one_answer(srv, B_SRC))[2])[:3] == (msg.REGISTERED, "a.example", 1)
    srv.receive(B_SRC, b.lookup("a.example"), T0 + 2000)  # even before the timer fired
    assert msg.dec_record_only(b.read(one_answer(srv, B_SRC))[2])[0] == msg.ABSENT
    srv.handle_timer(T0 + 2000)
    kinds = []
    e = srv.next_event()
    while e is not None:
        kinds.append(e.kind)
        e = srv.next_event()
    assert kinds == ["registered", "expired"]


def test_the_ttl_is_capped_and_zero_withdraws():
    srv, a = server(max_ttl=30), Host("a.example", KEY_A, A_SRC)
    srv.receive(A_SRC, a.register(ttl=65535), T0)
    assert msg.dec_register_ack(a.read(one_answer(srv, A_SRC))[2])[0] == 30
    srv.receive(A_SRC, a.register(ttl=0, addrs=[]), T0 + 5)
    assert msg.dec_register_ack(a.read(one_answer(srv, A_SRC))[2])[0] == 0
    assert not server_status(srv, T0 + 5)["names"]["a.example"]["registered"]


def test_a_register_listing_an_unspecified_address_is_refused():
    srv, a = server(), Host("a.example", KEY_A, A_SRC)
    srv.receive(A_SRC, a.register(addrs=[(("0.0.0.0", 6278), 0, 0)]), T0)
    assert srv.datagrams_to_send() == [] and srv.counters["bad_addresses"] == 1


def _notifies(srv, host):
    out = []
    for dst, d in srv.datagrams_to_send():
        ptype, counter, body = host.read(d)
        assert ptype == msg.NOTIFY
        out.append((dst, counter, msg.dec_record_only(body)))
    return out


def test_a_subscriber_is_notified_of_a_change_until_it_acknowledges():
    srv, a, b = server(), Host("a.example", KEY_A, A_SRC), Host("b.example", KEY_B, B_SRC)
    srv.receive(B_SRC, b.subscribe("a.example"), T0)
    ttl, floor, rec = msg.dec_subscribe_ack(b.read(one_answer(srv, B_SRC))[2])
    assert (ttl, floor, rec[0]) == (300, 5000, msg.ABSENT)
    srv.receive(A_SRC, a.register(ttl=60), T0 + 10)
    out = srv.datagrams_to_send()
    assert [d for d, _ in out] == [A_SRC, B_SRC]  # REGISTER-ACK, then the NOTIFY
    ptype, counter, body = b.read(out[1][1])
    assert ptype == msg.NOTIFY and counter > floor
    assert msg.dec_record_only(body) == (msg.REGISTERED, "a.example", 60, A_SRC, ADDRS)
    srv.handle_timer(T0 + 1010)  # not acknowledged: sent again, with a new counter
    again = _notifies(srv, b)
    assert len(again) == 1 and again[0][1] > counter
    srv.receive(B_SRC, b.req(msg.NOTIFY_ACK, msg.enc_notify_ack(counter, "a.example")), T0 + 1020)
    assert srv.datagrams_to_send() == []  # NOTIFY-ACK is not answered
    srv.handle_timer(T0 + 10000)
    assert _notifies(srv, b) == []  # the first counter acknowledged it: no more


def test_subscribers_are_told_when_a_registration_expires():
    srv, a, b = server(), Host("a.example", KEY_A, A_SRC), Host("b.example", KEY_B, B_SRC)
    srv.receive(A_SRC, a.register(ttl=5), T0)
    srv.receive(B_SRC, b.subscribe("a.example"), T0)
    srv.datagrams_to_send()
    srv.handle_timer(T0 + 5000)
    n = _notifies(srv, b)
    assert len(n) == 1 and n[0][2][:2] == (msg.ABSENT, "a.example")


def test_notify_retransmissions_are_bounded_and_follow_the_subscriber_to_its_new_address():
    srv, a, b = server(), Host("a.example", KEY_A, A_SRC), Host("b.example", KEY_B, B_SRC)
    srv.receive(B_SRC, b.subscribe("a.example", ttl=3600), T0)
    srv.datagrams_to_send()
    srv.receive(A_SRC, a.register(ttl=3600), T0 + 1)
    srv.datagrams_to_send()
    sent = 1
    t = T0 + 1
    for _ in range(20):  # bounded: the server gives up after NOTIFY_TRIES
        nt = srv.next_timer()
        if nt is None or nt > T0 + 600000:
            break
        t = max(t, nt)
        srv.handle_timer(t)
        sent += len(_notifies(srv, b))
    assert sent == 6
    b.src = ("203.0.113.99", 6278)  # b moved: its next request comes from elsewhere
    srv.receive(b.src, b.lookup("a.example"), t + 1)
    out = srv.datagrams_to_send()
    assert [d for d, _ in out] == [b.src, b.src]  # LOOKUP-ACK and the pending NOTIFY
    assert b.read(out[1][1])[0] == msg.NOTIFY


def test_the_rate_limit_is_per_name_and_only_authenticated_fresh_requests_spend_it():
    srv = server(rate=5, burst=10)
    a, b = Host("a.example", KEY_A, A_SRC), Host("b.example", KEY_B, B_SRC)
    forger = Host("a.example", STRANGER, A_SRC)  # a's name and a's address, not a's key
    for i in range(30):
        srv.receive(A_SRC, forger.lookup("b.example"), T0)
    first = a.lookup("b.example")
    srv.receive(A_SRC, first, T0)
    for i in range(30):
        srv.receive(A_SRC, first, T0)  # replays spend nothing either
    assert len(srv.datagrams_to_send()) == 1
    assert (srv.counters["mac"], srv.counters["replay"]) == (30, 30)
    for i in range(24):
        srv.receive(("192.0.2.%d" % (i + 1), 1), a.lookup("b.example"), T0)  # a, from anywhere
    assert len(srv.datagrams_to_send()) == 9  # 10 in the burst, one was `first`
    assert srv.counters["rate_limited"] == 15
    srv.receive(B_SRC, b.lookup("a.example"), T0)  # another name is not affected
    assert len(srv.datagrams_to_send()) == 1
    for i in range(10):
        srv.receive(A_SRC, a.lookup("b.example"), T0 + 1000)  # 1 s later: 5 more
    assert len(srv.datagrams_to_send()) == 5
    assert srv.counters["rate_limited"] == 15 + 5


def test_lookups_are_answered_under_a_spoofed_flood_from_thousands_of_addresses():
    # issue 15, point 3: 5,000 packets a second for 3 s (fake clock) from 2,000 spoofed
    # sources, one in ten of them the legitimate host's own address: requests that name
    # served names under wrong keys, replays of the host's own earlier request, junk.
    # Meanwhile b looks a up 10 times: every lookup must be answered, and nothing else.
    srv = server()
    a, b = Host("a.example", KEY_A, A_SRC), Host("b.example", KEY_B, B_SRC)
    srv.receive(A_SRC, a.register(ttl=600), T0)
    srv.datagrams_to_send()
    captured = b.lookup("a.example")
    srv.receive(B_SRC, captured, T0)
    srv.datagrams_to_send()
    fa, fb = Host("a.example", STRANGER, A_SRC), Host("b.example", STRANGER, B_SRC)
    flood = [fb.lookup("a.example"), fa.register(ttl=600, addrs=[(("192.0.2.66", 6278), 0, 0)]),
             fb.subscribe("a.example"), captured, b"\x50" + bytes(40), bytes(60)]
    answered = 0
    sent = 0
    for ms in range(3000):
        now = T0 + 1 + ms
        for k in range(5):
            if sent % 10 == 0:
                src = B_SRC
            else:
                j = sent % 2000
                src = ("10.9.%d.%d" % (j // 250, j % 250 + 1), 1024 + sent % 50000)
            srv.receive(src, flood[sent % len(flood)], now)
            sent += 1
        if ms % 300 == 150:
            srv.receive(B_SRC, b.lookup("a.example"), now)
        for dst, d in srv.datagrams_to_send():
            assert dst == B_SRC
            ptype, counter, body = b.read(d)
            rec = msg.dec_record_only(body)
            if (ptype, counter, rec[0], rec[4]) == (msg.LOOKUP_ACK, b.counter, msg.REGISTERED, ADDRS):
                answered += 1
    assert sent == 15000 and answered == 10, answered
    c = srv.counters
    assert c["mac"] == 7500 and c["replay"] == 2500 and c.get("rate_limited", 0) == 0, c
    assert c["accepted"] == 12  # a's REGISTER, the captured LOOKUP, the 10 lookups
    assert server_status(srv, T0 + 3001)["names"]["a.example"]["addresses"] == \
        ["192.0.2.10:6278", "[2001:db8::10]:6278"]


def test_answers_cannot_be_reflected_to_the_server():
    srv, a = server(), Host("a.example", KEY_A, A_SRC)
    srv.receive(A_SRC, a.register(), T0)
    ack = srv.datagrams_to_send()[0][1]
    srv.receive(A_SRC, ack, T0 + 1)  # an answer sent back as if it were a request
    forged = bytearray(ack)
    forged[1] = msg.REGISTER  # retyped: the tag is under k_down, not k_up
    srv.receive(A_SRC, bytes(forged), T0 + 2)
    assert srv.datagrams_to_send() == []
    assert srv.counters["bad_type"] == 1 and srv.counters["mac"] == 1


def test_malformed_input_is_counted_and_never_answered_or_raised():
    srv, a = server(), Host("a.example", KEY_A, A_SRC)
    good = a.register()
    junk = [b"", b"\x50", b"\x01" + bytes(40), good[:20], good[:-1], good + b"\x00",
            bytes([0x50, 9]) + good[2:], bytes([0x50, 1]) + bytes(8) + b"\x00" + bytes(20),
            bytes([0x50, 1]) + bytes(8) + b"\x7f" + bytes(20)]
    for i in range(len(good)):  # every single-byte corruption
        b = bytearray(good)
        b[i] ^= 0x40
        junk.append(bytes(b))
    n = 0
    for j in junk:
        srv.receive(A_SRC, j, T0 + n)
        n += 100  # within the rate
    assert srv.datagrams_to_send() == []
    assert srv.counters.get("accepted", 0) == 0 and srv.counters["rx"] == len(junk)
    assert "internal_error" not in srv.counters
    srv.receive(A_SRC, good, T0 + n)  # the genuine one still works
    assert len(srv.datagrams_to_send()) == 1


def test_floors_restored_after_a_restart_keep_old_requests_refused():
    srv, a = server(), Host("a.example", KEY_A, A_SRC)
    pkt = a.register()
    srv.receive(A_SRC, pkt, T0)
    floors = srv.floors()
    assert floors == {"a.example": a.counter}
    srv2 = Server({"a.example": KEY_A}, floors=floors)
    srv2.receive(A_SRC, pkt, T0 + 10)
    assert srv2.datagrams_to_send() == [] and srv2.counters["replay"] == 1


def test_a_late_ack_of_an_earlier_notify_leaves_the_newer_change_pending():
    srv, a, b = server(), Host("a.example", KEY_A, A_SRC), Host("b.example", KEY_B, B_SRC)
    srv.receive(B_SRC, b.subscribe("a.example"), T0)
    srv.datagrams_to_send()
    srv.receive(A_SRC, a.register(ttl=60), T0 + 10)
    old = b.read(srv.datagrams_to_send()[1][1])[1]  # the NOTIFY of the first change
    srv.receive(A_SRC, a.register(ttl=60, addrs=ADDRS[:1]), T0 + 20)  # a second change
    out = srv.datagrams_to_send()
    assert [d for d, _ in out] == [A_SRC, B_SRC]
    new = b.read(out[1][1])[1]
    assert new > old
    srv.receive(B_SRC, b.req(msg.NOTIFY_ACK, msg.enc_notify_ack(old, "a.example")), T0 + 30)
    assert srv.datagrams_to_send() == []
    srv.handle_timer(T0 + 1020)  # the ack was for the old record: the new one is sent again
    again = _notifies(srv, b)
    assert len(again) == 1 and again[0][1] > new and again[0][2][4] == ADDRS[:1]
    srv.receive(B_SRC, b.req(msg.NOTIFY_ACK, msg.enc_notify_ack(again[0][1], "a.example")), T0 + 1030)
    srv.handle_timer(T0 + 10000)
    assert _notifies(srv, b) == []


def test_a_subscribe_asking_for_more_than_the_longest_subscription_gets_the_longest():
    srv, b = server(), Host("b.example", KEY_B, B_SRC)
    srv.receive(B_SRC, b.subscribe("a.example", ttl=65535), T0)
    assert msg.dec_subscribe_ack(b.read(one_answer(srv, B_SRC))[2])[0] == 3600
    assert srv.next_timer() == T0 + 3600 * 1000
