# Presence clients and a presence server on a fake clock, with a stand-in for the MAST
# core (FakeEndpoint): small enough for a board-sized heap, so the client's logic is
# tested on MicroPython too. The same client with the real cores: tests/host/
# test_presence_sim.py. Runs on CPython and MicroPython.

from presence.server import Server
from presence.client import Presence

SERVER = ("10.53.0.1", 6279)
BASE = 1700000000000  # the wall clock at the start, ms
ESTABLISHED = 2


def key_of(name):
    """A deterministic 32-byte presence key per name."""
    s = 0
    for c in name:
        s = (s * 31 + ord(c)) & 0xFFFF
    return bytes([(s + i * 97) & 255 for i in range(32)])


class FakeUplink:
    def __init__(self, name, addr, priority, cost):
        self.name = name
        self.addr = addr
        self.priority = priority
        self.cost = cost


class FakeAssoc:
    def __init__(self, state=ESTABLISHED):
        self.state = state
        self.primary = "path" if state == ESTABLISHED else None
        self.remotes = []


class FakeEndpoint:
    """What the presence client uses of mast.endpoint.Endpoint, and a record of its calls."""

    def __init__(self, name):
        self.name = name
        self.uplinks = {}
        self.assocs = {}
        self.connects = []  # (peer, addrs)
        self.mast_rx = []  # non-presence datagrams the client passed on

    def uplink_up(self, name, addr, now, priority=None, cost=None):
        self.uplinks[name] = FakeUplink(name, addr, 100 if priority is None else priority,
                                        0 if cost is None else cost)

    def uplink_down(self, name, now):
        del self.uplinks[name]

    def addr_list(self):
        return [(self.uplinks[n].addr, self.uplinks[n].priority, self.uplinks[n].cost)
                for n in sorted(self.uplinks)]

    def association(self, peer):
        return self.assocs.get(peer)

    def add_peer_addresses(self, peer, addrs, now):
        a = self.assocs[peer]
        n = 0
        for x in addrs:
            if x not in a.remotes:
                a.remotes.append(x)
                n += 1
        return n

    def connect(self, peer, now, addrs=None):
        self.connects.append((peer, addrs))
        if peer not in self.assocs:
            self.assocs[peer] = FakeAssoc(0)

    def receive(self, uplink, addr, data, now):
        self.mast_rx.append((uplink, addr, bytes(data)))

    def datagrams_to_send(self):
        return []

    def next_event(self):
        return None

    def next_timer(self):
        return None

    def handle_timer(self, now):
        pass


class MemoryStore:
    """A counter_store in memory: what a board keeps in a file across reboots."""

    def __init__(self):
        self.value = None
        self.writes = 0
        self.fail = False

    def load(self):
        return self.value

    def save(self, value):
        if self.fail:
            raise OSError(28, "no space left")
        self.value = value
        self.writes += 1


class Wire:
    """Presence clients and one server; every datagram takes `delay` ms. `nat` maps a
    client's (name, uplink) to the public address the server sees; `drop(src, dst,
    data)` -> True loses a datagram; `log` keeps (time, src, dst, type) of each sent."""

    def __init__(self, names, delay=1, **kw):
        self.now = 0
        self.delay = delay
        self.server = Server(dict([(n, key_of(n)) for n in names]), notify_base=BASE + 500, **kw)
        self.clients = {}
        self.where = {}  # address -> (client, uplink)
        self.nat = {}
        self.queue = []
        self.order = 0
        self.drop = None
        self.log = []
        self.notes = {}  # client -> [event]

    def client(self, name, home=(SERVER,), key=False, **kw):
        """A presence client for host `name` (key: its own by default; None: no key)."""
        if "counter_base" not in kw:
            kw["counter_base"] = BASE + self.now  # the wall clock; a board without one: BASE
        p = Presence(FakeEndpoint(name), key_of(name) if key is False else key, home=list(home), **kw)
        self.clients[name] = p
        self.notes[name] = []
        return p

    def up(self, name, uplink, addr, **kw):
        p = self.clients[name]
        old = p.ep.uplinks.get(uplink)
        if old is not None:
            self.where.pop(old.addr, None)
        self.where[addr] = (name, uplink)
        p.uplink_up(uplink, addr, self.now, **kw)
        self.flush()

    def down(self, name, uplink):
        p = self.clients[name]
        self.where.pop(p.ep.uplinks[uplink].addr, None)
        p.uplink_down(uplink, self.now)
        self.flush()

    def set_nat(self, name, uplink, public):
        self.nat[(name, uplink)] = public
        self.where[public] = (name, uplink)

    def send(self, src, dst, data):
        self.log.append((self.now, src, dst, data[1]))
        if self.drop is not None and self.drop(src, dst, data):
            return
        self.order += 1
        self.queue.append([self.now + self.delay, self.order, src, dst, data])

    def flush(self):
        for name in self.clients:
            p = self.clients[name]
            for uplink, dst, data in p.datagrams_to_send():
                u = p.ep.uplinks[uplink]
                self.send(self.nat.get((name, uplink), u.addr), dst, data)
            e = p.next_event()
            while e is not None:
                self.notes[name].append(e)
                e = p.next_event()
        for dst, data in self.server.datagrams_to_send():
            self.send(SERVER, dst, data)

    def next_time(self):
        t = self.server.next_timer()
        for q in self.queue:
            if t is None or q[0] < t:
                t = q[0]
        for p in self.clients.values():
            x = p.next_timer()
            if x is not None and (t is None or x < t):
                t = x
        return t

    def run(self, until, limit=20000):
        self.flush()
        for _ in range(limit):  # bounded
            t = self.next_time()
            if t is None or t > until:
                self.now = until
                return
            self.now = max(self.now, t)
            due = [q for q in self.queue if q[0] <= self.now]
            for q in due:
                self.queue.remove(q)
            due.sort(key=lambda q: q[1])
            for q in due:
                if q[3] == SERVER:
                    self.server.receive(q[2], q[4], self.now)
                elif q[3] in self.where:
                    name, uplink = self.where[q[3]]
                    self.clients[name].receive(uplink, q[2], q[4], self.now)
                self.flush()
            x = self.server.next_timer()
            if x is not None and x <= self.now:
                self.server.handle_timer(self.now)
            for p in self.clients.values():
                x = p.next_timer()
                if x is not None and x <= self.now:
                    p.handle_timer(self.now)
            self.flush()
        raise RuntimeError("the simulation did not settle")

    def events(self, name, kind):
        return [e for e in self.notes[name] if e.kind == kind]

    def sent(self, src_name, ptype, since=0):
        """How many datagrams of ptype the client sent since a time."""
        p = self.clients[src_name]
        mine = [p.ep.uplinks[u].addr for u in p.ep.uplinks]
        mine += [self.nat[k] for k in self.nat if k[0] == src_name]
        return len([x for x in self.log if x[0] >= since and x[3] == ptype and x[1] in mine])


def two(nat_b=None, **kw):
    """Clients a and b of one server (Wire(**kw)), each following the other, a with an
    association to b (established, with a path); b behind a NAT that maps it to nat_b if
    given. Returns (wire, a, b), settled."""
    w = Wire(["a", "b", "c"], **kw)
    a, b = w.client("a"), w.client("b")
    w.up("a", "eth", ("10.1.0.2", 6278))
    w.up("b", "wan", ("10.9.0.1", 6278))
    if nat_b is not None:
        w.set_nat("b", "wan", nat_b)
    a.ep.assocs["b"] = FakeAssoc()
    b.ep.assocs["a"] = FakeAssoc()
    a.watch("b")
    b.watch("a")
    a.start(w.now)
    b.start(w.now)
    w.flush()
    w.run(w.now + 100)
    return w, a, b
