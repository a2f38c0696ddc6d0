# Every message type in every association state has one outcome (docs/PROTOCOL.md 7.1): this
# module reads that table out of the document and walks every cell against the real core. For
# each state an association is brought there on the simulated network; the peer's own keys
# build an authenticated packet of each type (a valid body, a fresh seq), it is handed to the
# association, and what happened is compared with the cell: the packet type answered, the ERR
# code sent, data delivered, or the counter a silent drop went to.

import gc

from simnet import Net, config, Rng
from mast import wire

DOC = "docs/PROTOCOL.md"
STATES = ("cookie-wait", "cookie-echoed", "established", "shut-sent", "shut-ack-sent", "closed")
TYPES = {"INIT-ACK": wire.INIT_ACK, "COOKIE-ECHO": wire.COOKIE_ECHO, "COOKIE-ACK": wire.COOKIE_ACK,
         "SET": wire.SET, "SET-ACK": wire.SET_ACK, "PROBE": wire.PROBE, "PROBE-ACK": wire.PROBE_ACK,
         "SHUT": wire.SHUT, "SHUT-ACK": wire.SHUT_ACK, "SHUT-COMPLETE": wire.SHUT_COMPLETE,
         "ERR": wire.ERR, "KEEPALIVE": wire.KEEPALIVE, "DATA": wire.DATA, "DATA-IP": wire.DATA_IP}
A_ADDR = ("10.1.0.2", 6278)
B_ADDR = ("10.9.0.1", 6278)


def table():
    """{type name: {state: cell}} from the document's state table."""
    rows = {}
    inside = False
    for line in open(DOC):
        if "state-table:start" in line:
            inside = True
        elif "state-table:end" in line:
            break
        elif inside and line.startswith("| ") and not line.startswith("| type") and not line.startswith("|---"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            rows[cells[0]] = dict(zip(STATES, cells[1:]))
    return rows


# ---- an association in each state ----------------------------------------------------------

class Stage:
    """The association under test (`assoc`, on endpoint `ep`, node `me`) and the peer whose
    keys build the packets (`peer`: its association, or None where there is none)."""

    def __init__(self, net, me, peer_node):
        self.net = net
        self.ep = net.nodes[me].ep
        other = "b" if me == "a" else "a"
        self.assoc = self.ep.association(other) or self._closed()
        self.peer = net.nodes[peer_node].ep.association(me) if peer_node else None
        self.uplink = "eth" if me == "a" else "wan"
        self.src = B_ADDR if me == "a" else A_ADDR
        self.held = {}  # packets held back on the way, by type

    def _closed(self):
        for a in self.ep.assocs.values():
            return a


def _pair():
    net = Net(seed="state-table")
    net.node("a", config("a", {"b": {"addresses": ["10.9.0.1"]}}))
    net.node("b", config("b", ["a"]))
    net.uplink("b", "wan", B_ADDR, delay=1)
    net.uplink("a", "eth", A_ADDR, delay=1)
    return net


def _hold(net, kinds, into):
    """Lose every packet of these types (keeping the first of each in `into`)."""
    def drop(src, dst, data):
        if data[1] in kinds:
            into.setdefault(data[1], bytes(data))
            return True
        return False
    net.drop = drop


def stage(state):
    net = _pair()
    held = {}
    if state == "cookie-wait":
        _hold(net, (wire.INIT_ACK,), held)
        net.nodes["a"].ep.connect("b", 0)
        net.flush()
        net.run(20)
        s = Stage(net, "a", None)
    elif state == "cookie-echoed":
        _hold(net, (wire.COOKIE_ACK,), held)  # b comes up (keys to build with), a waits
        net.nodes["a"].ep.connect("b", 0)
        net.flush()
        net.run(20)
        s = Stage(net, "a", "b")
    else:
        seen = {}

        def spy(src, dst, data):  # keeps a's COOKIE-ECHO (to send it again), loses nothing
            if data[1] == wire.COOKIE_ECHO:
                seen.setdefault("echo", bytes(data))
            return False

        net.drop = spy
        net.nodes["a"].ep.connect("b", 0)
        net.flush()
        net.run(2000)
        if state == "established":
            pass
        elif state == "shut-sent":  # b closes; its SHUT is lost
            _hold(net, (wire.SHUT,), held)
            net.nodes["b"].ep.close(net.now)
            net.flush()
        elif state == "shut-ack-sent":  # a closes; b answers, its SHUT-ACK is lost
            _hold(net, (wire.SHUT_ACK,), held)
            net.nodes["a"].ep.close(net.now)
            net.flush()
            net.run(net.now + 10)
        elif state == "closed":  # b closes; a's SHUT-ACK comes, b's SHUT-COMPLETE is lost
            _hold(net, (wire.SHUT_COMPLETE,), held)
            net.nodes["b"].ep.close(net.now)
            net.flush()
            net.run(net.now + 10)
        s = Stage(net, "b", "a")
        s.echo_body = bytes(wire.parse(seen["echo"])[3])
    s.held = held
    assert s.assoc is not None and s.assoc.state == STATES.index(state), (state, s.assoc)
    return s


# ---- a packet of each type -----------------------------------------------------------------

def _seal(s, ptype, body):
    p = s.peer
    if p is None:  # no keys exist yet on either side: any tag will do (it cannot be checked)
        from mast.crypto import Mac
        pkt = wire.seal(Mac(bytes(32)), ptype, s.assoc.label, 5, body)
    else:
        pkt = wire.seal(p.tx_mac, ptype, p.peer_label, p.seq, body)
        p.seq += 1
    return pkt


def packet(s, name, now):
    a = s.assoc
    ptype = TYPES[name]
    if name == "INIT-ACK":
        if a.state == 0:  # the genuine one, held back on its way
            return s.held[wire.INIT_ACK]
        body = wire.enc_init_ack(0x0B000002, bytes(16), 7, bytes(20))
        return wire.seal(s.ep.init_mac("b" if s.uplink == "eth" else "a"), wire.INIT_ACK, a.label, 0, body, bytes(16))
    if name == "COOKIE-ECHO":
        if a.initiator:  # a cookie this host never issued, for its own label, fresh and well formed
            init = wire.enc_init(0x0A000009, bytes(16), 7, 0, "b", [(B_ADDR, 10, 0)])
            return _seal(s, ptype, wire.enc_tsn(now & 0xFFFFFFFF) + bytes(16) + init)
        # the initiator's genuine COOKIE-ECHO again, with a new seq (a retransmission)
        return _seal(s, ptype, s.echo_body)
    if name == "COOKIE-ACK":
        return _seal(s, ptype, wire.enc_addrs([(s.src, 10, 0)]))
    if name == "SET":
        tsn = 1
        if s.peer is not None:
            s.peer.tsn = tsn = (s.peer.tsn + 1) & 0xFFFFFFFF
        return _seal(s, ptype, wire.enc_set(tsn, [(s.src, 10, 0)]))
    if name == "SET-ACK":
        if a.state == 2:
            a.send_set(now)  # an outstanding SET for the SET-ACK to name
            s.ep.datagrams_to_send()
        tsn = a.req[1] if a.req is not None and a.req[0] == wire.SET else 12345
        return _seal(s, ptype, wire.enc_tsn(tsn))
    if name == "PROBE":
        return _seal(s, ptype, wire.enc_probe(b"\x07" * 8, 0))
    if name == "PROBE-ACK":
        p = a.paths.get((s.uplink, s.src))
        if p is not None and a.state in (2, 3, 4) and a.tx_mac is not None:
            a.probe(p, now)  # a challenge outstanding for the PROBE-ACK to answer
            s.ep.datagrams_to_send()
        ch = p.challenge if p is not None and p.challenge is not None else b"\x01" * 8
        return _seal(s, ptype, wire.enc_probe_ack(ch, s.src))
    if name in ("SHUT", "SHUT-ACK", "SHUT-COMPLETE"):
        return _seal(s, ptype, wire.enc_tsn(a.tsn if name != "SHUT" else (s.peer.tsn if s.peer else 1)))
    if name == "ERR":
        return _seal(s, ptype, wire.enc_err(wire.ERR_SHUTTING_DOWN, 0))
    if name == "KEEPALIVE":
        return _seal(s, ptype, wire.enc_keepalive(a.seq - 1))
    return _seal(s, ptype, b"payload of " + name.encode())  # DATA, DATA-IP


# ---- what happened ---------------------------------------------------------------------------

def outcome(s, pkt, now):
    ep = s.ep
    before = dict(ep.counters)
    ep.datagrams_to_send()
    ep.events = []
    got = []
    ep.on_data = lambda peer, payload, ip, uplink, src: got.append(bytes(payload))
    ep.receive(s.uplink, s.src, pkt, now)
    sent = [d for u, dst, d in ep.datagrams_to_send() if dst == s.src and u == s.uplink]
    ep.on_data = None
    changed = [k for k in ep.counters if ep.counters[k] != before.get(k, 0) and k != "rx"]
    return changed, sent, got


def _expect(cell, changed, sent, got, name):
    names = dict((v, k) for k, v in TYPES.items())
    if cell.startswith("`"):
        want = cell.strip("`")
        return changed == [want] and sent == [] and got == [], "dropped as %s, nothing sent" % want
    if cell.startswith("ERR "):
        code, counter = cell[4:].split(" ")
        ok = (changed == [counter.strip("`")] and len(sent) == 1 and sent[0][1] == wire.ERR
              and wire.dec_err(wire.parse(sent[0])[3])[0] == int(code))
        return ok, "ERR %s sent, counted %s" % (code, counter)
    if cell.startswith("→ "):
        want = cell[2:]
        types = [names.get(d[1], d[1]) for d in sent]
        return changed == ["accepted"] and types[:1] == [want], "accepted and answered with %s" % want
    if cell == "act":
        return changed == ["accepted"] and got == [], "accepted"
    if cell == "deliver":
        if name == "DATA-IP":  # this endpoint has no TUN: ERR 2 instead (6.9)
            return (changed == ["unsupported"] and len(sent) == 1 and sent[0][1] == wire.ERR,
                    "ERR 2 (no TUN here)")
        return changed == ["accepted"] and got == [b"payload of " + name.encode()], "delivered"
    raise AssertionError("unknown cell %r" % cell)


def test_the_document_has_a_cell_for_every_type_in_every_state():
    t = table()
    assert sorted(t) == sorted(TYPES), sorted(t)
    for name in TYPES:
        assert sorted(t[name]) == sorted(STATES) and all(t[name].values()), name


def _walk(state):
    t = table()
    bad = []
    for name in TYPES:
        s = stage(state)
        now = s.net.now + 1
        pkt = packet(s, name, now)
        changed, sent, got = outcome(s, pkt, now)
        ok, what = _expect(t[name][state], changed, sent, got, name)
        if not ok:
            bad.append("%s in %s: the table says %s (%s); counters %s, sent types %s, delivered %d"
                       % (name, state, t[name][state], what, changed, [d[1] for d in sent], len(got)))
        s = None
        gc.collect()
    assert not bad, "\n".join(bad)


def test_cookie_wait():
    _walk("cookie-wait")


def test_cookie_echoed():
    _walk("cookie-echoed")


def test_established():
    _walk("established")


def test_shut_sent():
    _walk("shut-sent")


def test_shut_ack_sent():
    _walk("shut-ack-sent")


def test_closed():
    _walk("closed")
