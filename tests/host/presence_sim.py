"""Presence on the simulated network of the core tests (tests/core/simnet.py): a presence
server node and endpoints wrapped by the presence client, driven by the same fake clock.
CPython (a board-sized heap cannot hold two cores, a server and the clients at once)."""

from mast.endpoint import Endpoint
from presence.client import Presence
from presence.server import Server
from simnet import Net, Node, Rng, config

KEYS = {}  # name -> 32-byte presence key (deterministic per name)
SERVER = ("10.53.0.1", 6279)
BASE = 1700000000000  # the wall clock at the start of every simulation, ms


def key_of(name):
    k = KEYS.get(name)
    if k is None:
        k = Rng("presence key " + name)(32)
        KEYS[name] = k
    return k


class ServerEp:
    """A presence Server with the face simnet drives (an Endpoint's)."""

    def __init__(self, server):
        self.server = server
        self.uplinks = {}

    def uplink_up(self, name, addr, now, **kw):
        self.uplinks[name] = addr

    def receive(self, uplink, src, data, now):
        self.server.receive(src, data, now)

    def datagrams_to_send(self):
        return [("srv", dst, d) for dst, d in self.server.datagrams_to_send()]

    def next_event(self):
        return self.server.next_event()

    def next_timer(self):
        return self.server.next_timer()

    def handle_timer(self, now):
        self.server.handle_timer(now)


def server_node(net, names, name="pres", addr=SERVER, **kw):
    srv = Server(dict((n, key_of(n)) for n in names), notify_base=BASE + net.now, **kw)
    n = Node(net, name, ServerEp(srv))
    net.nodes[name] = n
    net.uplink(name, "srv", addr, delay=1)
    return srv


def presence_node(net, name, cfg, home=(SERVER,), key=None, **kw):
    ep = Endpoint(cfg, Rng(name + "-rng"))
    p = Presence(ep, key or key_of(name), home=list(home), counter_base=BASE + net.now, **kw)
    n = Node(net, name, p)
    net.nodes[name] = n
    return p


def mobile_pair(start=0, profile="fast", watch_a=True, watch_b=True, names=("a", "b")):
    """Two mobile hosts "a" and "b", each registered at one presence server, each
    following the other; a connects to b. -> (net, server, a, b) with a, b the
    Presence objects (their .ep the cores)."""
    net = Net(start)
    srv = server_node(net, list(names))
    a = presence_node(net, "a", config("a", {"b": {"addresses": ["10.9.0.1:6278"]}}, profile=profile))
    b = presence_node(net, "b", config("b", ["a"], profile=profile))
    net.uplink("b", "wan", ("10.9.0.1", 6278), delay=1)
    net.uplink("a", "eth", ("10.1.0.2", 6278), delay=1)
    if watch_a:
        a.watch("b")
    if watch_b:
        b.watch("a")
    a.start(net.now)
    b.start(net.now)
    a.ep.connect("b", net.now)
    net.flush()
    return net, srv, a, b


def lookup(net, client_name, target, server=SERVER):
    """A LOOKUP from a throwaway requester (its own key), answered on the fake clock:
    -> the decoded record, or None if nothing came back."""
    from presence import msg

    up, down = msg.keys(key_of(client_name), client_name)
    srv = net.nodes["pres"].ep.server
    net.now += 1
    c = BASE + net.now
    srv.receive(("10.77.0.1", 5000), msg.seal(up, msg.LOOKUP, c, client_name, msg.enc_lookup(target)), net.now)
    found = None
    for dst, d in srv.datagrams_to_send():
        if dst == ("10.77.0.1", 5000):
            ptype, counter, name, body = msg.parse(d)
            assert msg.verify(down, d) and counter == c and ptype == msg.LOOKUP_ACK
            found = msg.dec_record_only(body)
        else:
            srv.out.append((dst, d))  # the others go out as usual
    return found
