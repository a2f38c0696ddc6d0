# The presence server's tables stay bounded (firmware/presence/server.py): subscribers per
# name and the events nobody drains. Its own module: each MicroPython process starts on a
# board-sized heap, and these tests need dozens of served names.
from presence import msg
from presence.server import Server

KEY_A = bytes(range(32))
A_SRC = ("198.51.100.7", 40001)
ADDRS = [(("192.0.2.10", 6278), 10, 0)]
T0 = 1000000
MAX_SUBS = 32  # server.py's _MAX_SUBS
EVENTS_MAX = 64  # server.py's _EVENTS_MAX


def seal(name, key, ptype, counter, body):
    up, _ = msg.keys(key, name)
    return msg.seal(up, ptype, counter, name, body)


def read(name, key, pkt):
    """-> (type, counter, body) of an answer to name, checked under its k_down."""
    _, down = msg.keys(key, name)
    ptype, counter, to, body = msg.parse(pkt)
    assert to == name and msg.verify(down, pkt)
    return ptype, counter, body


def test_past_the_subscriber_maximum_a_new_subscribe_gets_ttl_zero_and_is_counted():
    names = {"a.example": KEY_A}
    for i in range(MAX_SUBS + 1):
        names["s%d.example" % i] = bytes([i + 1]) * 32
    srv = Server(names, notify_base=5000)

    def subscribe(i, now):
        name = "s%d.example" % i
        src = ("203.0.113.%d" % (i + 1), 6278)
        srv.receive(src, seal(name, names[name], msg.SUBSCRIBE, now, msg.enc_subscribe(300, "a.example")), now)
        out = srv.datagrams_to_send()
        assert [d for d, _ in out] == [src]
        return msg.dec_subscribe_ack(read(name, names[name], out[0][1])[2])[0]

    for i in range(MAX_SUBS):
        assert subscribe(i, T0 + i) == 300
    assert subscribe(MAX_SUBS, T0 + 100) == 0  # refused: a's subscribers are full
    assert srv.counters["subs_full"] == 1
    assert subscribe(0, T0 + 200) == 300  # a subscriber renewing is not a new one
    assert srv.counters["subs_full"] == 1
    # a's record changes: the 32 subscribers are told, the refused one is not
    srv.receive(A_SRC, seal("a.example", KEY_A, msg.REGISTER, T0 + 300, msg.enc_register(60, ADDRS)), T0 + 300)
    out = srv.datagrams_to_send()
    assert len(out) == 1 + MAX_SUBS and ("203.0.113.%d" % (MAX_SUBS + 1), 6278) not in [d for d, _ in out]


def test_the_events_nobody_drains_stay_at_most_their_maximum_and_the_newest_are_kept():
    srv = Server({"a.example": KEY_A}, notify_base=5000)
    for i in range(EVENTS_MAX + 20):
        now = T0 + i * 1000  # within the rate limit
        srv.receive(A_SRC, seal("a.example", KEY_A, msg.REGISTER, now, msg.enc_register(i + 1, ADDRS)), now)
        srv.datagrams_to_send()
        assert len(srv.events) <= EVENTS_MAX
    assert srv.counters["accepted"] == EVENTS_MAX + 20
    ttls = []
    e = srv.next_event()
    while e is not None:
        assert e.kind == "registered"
        ttls.append(e.fields["ttl"])
        e = srv.next_event()
    assert ttls == list(range(21, EVENTS_MAX + 21))  # the oldest were dropped
