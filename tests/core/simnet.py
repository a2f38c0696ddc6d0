# A simulated network for driving MAST cores back to back with a fake clock.
# No sockets and no sleeping: time jumps to the next packet delivery or timer
# (aioquic's roundtrip(), h11's ConnectionPair). Runs on CPython and MicroPython.
#
#   net = Net(start_ms)
#   a = net.node("a", cfg_a); net.uplink("a", "eth", ("10.0.0.2", 6278), delay=2)
#   ...
#   net.run(until_ms)
# Each uplink is a link with a one-way delay; `cut` drops everything both ways
# (a silent blackhole); `nat` rewrites the source the far side sees; `drop`
# is a predicate (src node, dst node, packet) -> True to lose that packet; `loss` loses
# that percentage of a link's packets at random (seeded: the same run every time).

import gc
import sys

from rng import Rng  # noqa: F401 (simnet.Rng, as the tests import it)
from mast.endpoint import Endpoint
from mast import wire

# On MicroPython (a board-sized heap) collect garbage at every step, before it
# fragments the heap; CPython does not need it.
_COLLECT = 1 if sys.implementation.name == "micropython" else 0
PSK = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="  # bytes 0..31, base64


class Counts:
    """How often each Stream datagram (by seq) arrived: one byte each, in small
    chunks, so a long run never needs a large block of a board-sized heap."""

    def __init__(self):
        self.chunks = []
        self.total = 0  # deliveries, duplicates included

    def add(self, seq):
        while len(self.chunks) <= seq >> 8:
            self.chunks.append(bytearray(256))
        c = self.chunks[seq >> 8]
        if c[seq & 255] < 255:
            c[seq & 255] += 1
        self.total += 1

    def __getitem__(self, seq):
        if seq >> 8 >= len(self.chunks):
            return 0
        return self.chunks[seq >> 8][seq & 255]


class Link:
    def __init__(self, node, name, addr, delay, jitter=0):
        self.node = node
        self.name = name
        self.addr = addr
        self.delay = delay
        self.jitter = jitter
        self.cut = False
        self.loss = 0  # percent of packets lost at random each way (the net's seeded Rng)
        self.nat = None  # public (ip, port) the far side sees, if behind NAT
        self.sent = 0


class Node:
    def __init__(self, net, name, ep):
        self.net = net
        self.name = name
        self.ep = ep
        self.events = []  # (time, event), Data events excepted (None: not kept)
        self.counts = Counts()  # Stream datagrams received, by seq
        self.mark = None  # watch for the first datagram sent after this time...
        self.first_after_mark = None  # ...and note when it arrived
        self.payloads = []  # (recv_ms, payload) of other datagrams received

    def send(self, uplink, dst, data):
        """The endpoint's packet as it makes it (direct_send): copied onto the network."""
        self.net.transmit(self, uplink, dst, bytes(data))


def config(name, peers, **kw):
    cfg = {"name": name, "peers": {}}
    for p in peers:
        pc = {"psk": PSK}
        if isinstance(peers, dict):
            pc.update(peers[p])
        cfg["peers"][p] = pc
    cfg.update(kw)
    return cfg


class Net:
    def __init__(self, start=0, seed="net", direct=True):
        self.direct = direct  # endpoints hand packets over as they make them (direct_send), as
        # the runtime's do; False: they queue them for datagrams_to_send, flushed after each step
        self.now = start
        self.start = start
        self.nodes = {}
        self.links = {}  # address -> Link (local or NAT public)
        self.uplinks = {}  # (node, uplink) -> Link
        self.queue = []  # [time, order, node, uplink, src, data]
        self.order = 0
        self.rng = Rng(seed)
        self.drop = None
        self.log = []  # (time, from node, to node, type) of every packet sent
        self.keep_log = False
        self.apps = []

    def node(self, name, cfg, **kw):
        ep = Endpoint(cfg, Rng(name + "-rng"), **kw)
        n = Node(self, name, ep)
        self.nodes[name] = n
        if self.direct and hasattr(ep, "direct_send"):  # (an older core, a bench's baseline)
            ep.direct_send(n.send)
        return n

    def uplink(self, node, name, addr, delay=2, jitter=0, up=True, **kw):
        link = Link(self.nodes[node], name, addr, delay, jitter)
        self.uplinks[(node, name)] = link
        self.links[addr] = link
        if up:
            self.nodes[node].ep.uplink_up(name, addr, self.now, **kw)
            self.flush()
        return link

    def renumber(self, node, name, addr, **kw):
        link = self.uplinks[(node, name)]
        self.links.pop(link.addr, None)
        link.addr = addr
        self.links[addr] = link
        self.nodes[node].ep.uplink_up(name, addr, self.now, **kw)
        self.flush()

    def set_nat(self, node, name, public):
        link = self.uplinks[(node, name)]
        link.nat = public
        self.links[public] = link

    def link(self, node, name):
        return self.uplinks[(node, name)]

    # ---- moving packets ---------------------------------------------------------

    def flush(self):
        for n in self.nodes.values():
            if getattr(n.ep, "counters", {}).get("internal_error"):  # a core bug, not a peer's fault
                raise AssertionError("core internal error on %s: %s" % (n.name, n.ep.last_error))
            for uplink, dst, data in n.ep.datagrams_to_send():
                self.transmit(n, uplink, dst, data)
            e = n.ep.next_event()
            while e is not None:
                if e.kind != "data":
                    if n.events is not None:  # None: a test that does not need them
                        n.events.append((self.now, e))
                elif e.payload[:1] == b"S" and len(e.payload) >= 13:
                    p = e.payload
                    if n.counts is not None:  # None: a test that does not count them
                        n.counts.add(int.from_bytes(p[1:5], "big"))
                    if n.mark is not None and n.first_after_mark is None and int.from_bytes(p[5:13], "big") > n.mark:
                        n.first_after_mark = self.now
                elif n.payloads is not None:  # None: a test that does not need them
                    n.payloads.append((self.now, e.payload))
                e = n.ep.next_event()

    def transmit(self, n, uplink, dst, data):
        src_link = self.uplinks[(n.name, uplink)]
        src_link.sent += 1
        dst_link = self.links.get(dst)
        if dst_link is not None and dst_link.nat is not None and dst == dst_link.addr:
            dst_link = None  # an address behind NAT is not reachable from outside
        if self.keep_log:
            self.log.append((self.now, n.name, dst_link.node.name if dst_link else None, data[1]))
        if dst_link is None or src_link.cut or dst_link.cut:
            return
        if self.drop is not None and self.drop(n.name, dst_link.node.name, data):
            return
        if (src_link.loss or dst_link.loss) and self.rng.randint(0, 99) < src_link.loss + dst_link.loss:
            return
        seen = src_link.nat or src_link.addr
        d = src_link.delay + dst_link.delay
        if src_link.jitter or dst_link.jitter:
            j = src_link.jitter + dst_link.jitter
            d += self.rng.randint(-j, j)
        self.order += 1
        self.queue.append([self.now + max(d, 0), self.order, dst_link.node, dst_link.name, seen, data])

    def next_time(self):
        t = None
        for q in self.queue:
            if t is None or q[0] < t:
                t = q[0]
        for n in self.nodes.values():
            x = n.ep.next_timer()
            if x is not None and (t is None or x < t):
                t = x
        for app in self.apps:
            x = app.next
            if x is not None and (t is None or x < t):
                t = x
        return t

    def run(self, until, limit=400000):
        """Advance the clock to `until`, delivering packets and firing timers."""
        steps = 0
        while True:
            steps += 1
            if steps > limit:
                raise RuntimeError("simulation did not settle by %d ms" % (self.now - self.start))
            if _COLLECT and steps % _COLLECT == 0:
                gc.collect()  # a board-sized heap: collect before garbage fragments it
            t = self.next_time()
            if t is None or t > until:
                self.now = until
                return
            if t > self.now:
                self.now = t
            due = [q for q in self.queue if q[0] <= self.now]
            if due:
                due.sort(key=lambda q: (q[0], q[1]))
                for q in due:
                    self.queue.remove(q)
                for q in due:
                    q[2].ep.receive(q[3], q[4], q[5], self.now)
                    self.flush()
            for n in self.nodes.values():
                x = n.ep.next_timer()
                if x is not None and x <= self.now:
                    n.ep.handle_timer(self.now)
                    self.flush()
            for app in self.apps:
                if app.next is not None and app.next <= self.now:
                    app.tick(self.now)
                    self.flush()

    def events(self, node, kind):
        return [e for t, e in self.nodes[node].events if e.kind == kind]


class Stream:
    """An app sending numbered datagrams from node `src` at `rate` per second,
    one every 1000/rate ms from its start, so datagram seq was sent at
    start + seq * period. Payload: "S" | seq u32 | send time u64 (ms) | zeros."""

    def __init__(self, net, src, rate=100, size=64, peer=None):
        self.net = net
        self.src = net.nodes[src]
        self.period = 1000 // rate
        self.size = size
        self.peer = peer
        self.seq = 0
        self.start = net.now
        self.accepted = 0  # datagrams the core took (send_data returned True)
        self.next = net.now
        net.apps.append(self)

    def tick(self, now):
        p = b"S" + self.seq.to_bytes(4, "big") + now.to_bytes(8, "big")
        p += bytes(self.size - len(p))
        if self.src.ep.send_data(p, now, self.peer):
            self.accepted += 1
        self.seq += 1
        self.next = now + self.period

    def stop(self):
        self.next = None

    def sent_at(self, seq):
        return self.start + seq * self.period


def count_received(node):
    """Stream datagrams delivered to node, duplicates included."""
    return node.counts.total


def tally(node, n):
    """bytearray: how often each Stream seq < n reached node."""
    t = bytearray(n)
    for i in range(n):
        t[i] = node.counts[i]
    return t


def pair(start=0, profile="default", mode="failover", a_uplinks=None, b_uplinks=None, direct=True, **kw):
    """Board-like node "a" (uplinks eth/wifi/cell) and a server "b" with one
    address; a connects to b and the association comes up. direct=False: the endpoints
    queue their packets (a test that reads datagrams_to_send or .out)."""
    net = Net(start, direct=direct)
    ca = config("a", {"b": {"addresses": ["10.9.0.1:6278"]}}, profile=profile, mode=mode, **kw)
    cb = config("b", ["a"], profile=profile, mode=mode, **kw)
    net.node("a", ca)
    net.node("b", cb)
    net.uplink("b", "wan", ("10.9.0.1", 6278), delay=1)
    ups = a_uplinks or [("eth", "10.1.0.2", 10, 0), ("wifi", "10.2.0.2", 20, 0), ("cell", "10.3.0.2", 30, 10)]
    for name, ip, prio, cost in ups:
        net.uplink("a", name, (ip, 6278), delay=1, priority=prio, cost=cost)
    net.nodes["a"].ep.connect("b", net.now)
    net.flush()
    return net


def pair1(start=0, **kw):
    """pair() with a on one uplink (eth, 10.1.0.2)."""
    return pair(start=start, a_uplinks=[("eth", "10.1.0.2", 10, 0)], **kw)


def up1(start=0, **kw):
    """pair1() run until the association is up: (net, a's association, b's association)."""
    net = pair1(start, **kw)
    net.run(net.now + 2000)
    assert established(net)
    return net, net.nodes["a"].ep.association("b"), net.nodes["b"].ep.association("a")


def packet_log(net, kinds):
    """From now on, record (time, from, type, bytes) of the packets of these types (the
    network loses none: this replaces net.drop)."""
    seen = []

    def spy(src, dst, data):
        if data[1] in kinds:
            seen.append((net.now, src, data[1], bytes(data)))
        return False

    net.drop = spy
    return seen


def established(net):
    a = net.nodes["a"].ep.association("b")
    b = net.nodes["b"].ep.association("a")
    return a is not None and b is not None and a.state == 2 and b.state == 2


def cut_and_measure(profile, start=0, mode="failover", run_ms=3000, rate=100, spy=None, **kw):
    """Stream a->b, cut a's eth silently, and measure: -> (net, stream, gap_ms,
    lost seqs, duplicated seqs, cut time). The gap runs from the cut to the
    arrival of the first datagram sent after it. spy(net): a net.drop function, set before
    the handshake's replies (it sees every packet the network carries from then on)."""
    net = pair(start=start, profile=profile, mode=mode, **kw)
    if spy is not None:
        net.drop = spy(net)
    net.run(net.now + 2000)
    assert established(net)
    s = Stream(net, "a", rate=rate)
    net.run(net.now + 1000)
    t0 = net.now
    b = net.nodes["b"]
    b.mark = t0
    net.link("a", "eth").cut = True
    net.run(net.now + run_ms)
    s.stop()
    net.run(net.now + 100)
    assert b.first_after_mark is not None, "nothing delivered after the cut"
    lost = [i for i in range(s.seq) if b.counts[i] == 0]
    dups = [i for i in range(s.seq) if b.counts[i] > 1]
    return net, s, b.first_after_mark - t0, lost, dups, t0
