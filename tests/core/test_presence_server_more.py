# More of the presence server (firmware/presence/server.py): an unspecified IPv6 address is
# refused as the IPv4 one is, a refresh that changes nothing is no news to subscribers, and a
# SUBSCRIBE with ttl 0 ends a subscription. (A module of its own: small for a board's heap.)
from presence import msg
from presence.server import Server

KEY_A = bytes(range(32))
KEY_B = bytes(range(32, 64))
A_SRC = ("198.51.100.7", 40001)
B_SRC = ("203.0.113.9", 6278)
ADDRS = [(("192.0.2.10", 6278), 10, 0)]
T0 = 1000000


class Host:
    def __init__(self, name, key, src):
        self.name = name
        self.up, self.down = msg.keys(key, name)
        self.src = src
        self.counter = 1700000000000

    def req(self, ptype, body):
        self.counter += 1
        return msg.seal(self.up, ptype, self.counter, self.name, body)


def _setup():
    srv = Server({"a.example": KEY_A, "b.example": KEY_B}, notify_base=5000)
    return srv, Host("a.example", KEY_A, A_SRC), Host("b.example", KEY_B, B_SRC)


def _to(srv, dst):
    return [d for x, d in srv.datagrams_to_send() if x == dst]


def test_a_register_listing_the_unspecified_ipv6_address_is_refused():
    srv, a, b = _setup()
    srv.receive(A_SRC, a.req(msg.REGISTER, msg.enc_register(120, [(("::", 6278), 0, 0)] + ADDRS)), T0)
    assert srv.datagrams_to_send() == [] and srv.counters["bad_addresses"] == 1


def test_a_refresh_that_changes_nothing_sends_no_notify():
    srv, a, b = _setup()
    srv.receive(B_SRC, b.req(msg.SUBSCRIBE, msg.enc_subscribe(300, "a.example")), T0)
    srv.datagrams_to_send()
    srv.receive(A_SRC, a.req(msg.REGISTER, msg.enc_register(120, ADDRS)), T0 + 10)
    notify = _to(srv, B_SRC)
    assert len(notify) == 1 and notify[0][1] == msg.NOTIFY
    counter = msg.parse(notify[0])[1]
    srv.receive(B_SRC, b.req(msg.NOTIFY_ACK, msg.enc_notify_ack(counter, "a.example")), T0 + 20)
    srv.receive(A_SRC, a.req(msg.REGISTER, msg.enc_register(120, ADDRS)), T0 + 60000)  # a refresh
    srv.handle_timer(T0 + 70000)
    assert _to(srv, B_SRC) == [] and srv.counters["notify_sent"] == 1


def test_a_subscribe_with_ttl_zero_ends_the_subscription():
    srv, a, b = _setup()
    srv.receive(B_SRC, b.req(msg.SUBSCRIBE, msg.enc_subscribe(300, "a.example")), T0)
    srv.receive(B_SRC, b.req(msg.SUBSCRIBE, msg.enc_subscribe(0, "a.example")), T0 + 10)
    srv.datagrams_to_send()
    srv.receive(A_SRC, a.req(msg.REGISTER, msg.enc_register(120, ADDRS)), T0 + 20)
    srv.handle_timer(T0 + 5000)
    assert _to(srv, B_SRC) == [] and "notify_sent" not in srv.counters
