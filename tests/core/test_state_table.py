# Every message type in every association state has one outcome (docs/PROTOCOL.md 7.1): this
# module reads that table out of the document and walks every cell against the real core. For
# each state an association is brought there on the simulated network; the peer's own keys
# build an authenticated packet of each type (a valid body, a fresh seq), it is handed to the
# association, and what happened is compared with the cell: the packet type answered, the ERR
# code sent, data delivered, or the counter a silent drop went to. (Kept small: each test runs
# in a board-sized heap beside the core and the simulator.)

import gc

from simnet import Net, config
from mast import wire
from mast.crypto import Mac

STATES = ("cookie-wait", "cookie-echoed", "established", "shut-sent", "shut-ack-sent", "closed")
NAMES = ("INIT-ACK", "COOKIE-ECHO", "COOKIE-ACK", "SET", "SET-ACK", "PROBE", "PROBE-ACK", "SHUT",
         "SHUT-ACK", "SHUT-COMPLETE", "ERR", "KEEPALIVE", "DATA", "DATA-IP")
TYPES = (2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 16, 17)  # wire's numbers, in NAMES' order
A_ADDR = ("10.1.0.2", 6278)
B_ADDR = ("10.9.0.1", 6278)


def column(state):
    """[cell for each of NAMES] in the document's state table, for one state (None: all rows
    as read, to check the table's shape)."""
    out = []
    inside = False
    col = STATES.index(state) + 1 if state else 0
    for line in open("docs/PROTOCOL.md"):
        if "state-table:start" in line:
            inside = True
        elif "state-table:end" in line:
            break
        elif inside and line.startswith("| ") and line[2:6] != "type":
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            out.append(cells[col] if state else cells)
    return out


def stage(state):
    """-> (net, endpoint under test, its association, the peer's association or None, the
    uplink and source the peer's packets come by, extra) for an association in `state`."""
    net = Net(seed="state-table", direct=False)  # (the tests read the queued packets)
    net.node("a", config("a", {"b": {"addresses": ["10.9.0.1"]}}, replay_window=64))
    net.node("b", config("b", ["a"], replay_window=64))
    net.uplink("b", "wan", B_ADDR, delay=1)
    net.uplink("a", "eth", A_ADDR, delay=1)
    keep = {}

    def lose(*kinds):  # packets of these types are lost on the way; a's COOKIE-ECHO is kept
        def drop(src, dst, data):
            if data[1] in kinds or data[1] == wire.COOKIE_ECHO:
                keep.setdefault(data[1], bytes(data))
            return data[1] in kinds
        net.drop = drop

    lose(wire.INIT_ACK if state == "cookie-wait" else wire.COOKIE_ACK if state == "cookie-echoed" else 0)
    net.nodes["a"].ep.connect("b", 0)
    net.flush()
    net.run(20 if state.startswith("cookie") else 2000)
    if state == "shut-sent":  # b closes; its SHUT is lost
        lose(wire.SHUT)
        net.nodes["b"].ep.close(net.now)
    elif state == "shut-ack-sent":  # a closes; b answers; its SHUT-ACK is lost
        lose(wire.SHUT_ACK)
        net.nodes["a"].ep.close(net.now)
    elif state == "closed":  # b closes; a's SHUT-ACK comes; b's SHUT-COMPLETE is lost
        lose(wire.SHUT_COMPLETE)
        net.nodes["b"].ep.close(net.now)
    net.flush()
    net.run(net.now + 10)
    me, other = ("a", "b") if state.startswith("cookie") else ("b", "a")
    ep = net.nodes[me].ep
    assoc = ep.association(other)
    for x in ep.assocs.values():  # (a closed one is no longer by peer)
        assoc = assoc or x
    peer = net.nodes[other].ep.association(me) if state != "cookie-wait" else None
    assert assoc is not None and assoc.state == STATES.index(state), (state, ep.counters)
    return net, ep, assoc, peer, ("eth", B_ADDR) if me == "a" else ("wan", A_ADDR), keep


def packet(i, ep, a, peer, via, keep, now):
    """An authenticated packet of type NAMES[i] from the peer, with a valid body."""
    ptype = TYPES[i]
    src = via[1]
    body = b"payload"
    if ptype == wire.INIT_ACK:
        if a.state == 0:
            return keep[wire.INIT_ACK]  # the genuine one, held back on its way
        body = wire.enc_init_ack(1, bytes(16), 7, bytes(20))
        return wire.seal(ep.init_mac(a.peer), ptype, a.label, 0, body, bytes(16))
    if ptype == wire.COOKIE_ECHO:
        if a.initiator:  # a cookie this host never issued, for its own label, fresh
            init = wire.enc_init(9, bytes(16), 7, 0, a.peer, [(src, 10, 0)])
            body = wire.enc_tsn(now) + bytes(16) + init
        else:  # a's genuine COOKIE-ECHO again: a retransmission
            body = wire.parse(keep[wire.COOKIE_ECHO])[3]
    elif ptype == wire.COOKIE_ACK:
        body = wire.enc_addrs([(src, 10, 0)])
    elif ptype == wire.SET:
        body = wire.enc_set(peer.tsn + 1 if peer else 1, [(src, 10, 0)])
    elif ptype == wire.SET_ACK:
        if a.state == 2:
            a.send_set(now)  # an outstanding SET for it to name
        body = wire.enc_tsn(a.req[1] if a.req and a.req[0] == wire.SET else 99)
    elif ptype == wire.PROBE:
        body = wire.enc_probe(b"\x07" * 8, 0)
    elif ptype == wire.PROBE_ACK:
        p = a.paths.get((via[0], src))
        if p is not None and 2 <= a.state <= 4:
            a.probe(p, now)  # a challenge outstanding for it to answer
        body = wire.enc_probe_ack(p.challenge if p and p.challenge else bytes(8), src)
    elif ptype in (wire.SHUT, wire.SHUT_ACK, wire.SHUT_COMPLETE):
        body = wire.enc_tsn(a.tsn)
    elif ptype == wire.ERR:
        body = wire.enc_err(wire.ERR_SHUTTING_DOWN, 0)
    elif ptype == wire.KEEPALIVE:
        body = wire.enc_keepalive(1)
    ep.datagrams_to_send()
    if peer is None:  # no keys on either side yet: any tag (it cannot be checked)
        return wire.seal(Mac(bytes(32)), ptype, a.label, 5, body)
    peer.seq += 1
    return wire.seal(peer.tx_mac, ptype, peer.peer_label, peer.seq - 1, body)


def check(cell, i, ep, via, pkt, now):
    """None if handing pkt to ep did what the cell says, else what happened."""
    before = dict(ep.counters)
    got = []
    ep.on_data = lambda peer, payload, ip, uplink, src: got.append(bytes(payload))
    ep.receive(via[0], via[1], pkt, now)
    ep.on_data = None
    sent = [d[1] for u, dst, d in ep.datagrams_to_send() if dst == via[1] and u == via[0]]
    changed = [k for k in ep.counters if ep.counters[k] != before.get(k, 0) and k != "rx"]
    name = NAMES[i]
    if cell.startswith("`"):
        ok = changed == [cell.strip("`")] and sent == [] and got == []
    elif cell.startswith("ERR "):  # "ERR 3 `shutting_down`"
        ok = changed == [cell.split("`")[1]] and sent == [wire.ERR]
    elif cell.startswith("→ "):
        ok = changed == ["accepted"] and sent[:1] == [TYPES[NAMES.index(cell[2:])]]
    elif cell == "act":
        ok = changed == ["accepted"] and got == []
    elif name == "DATA-IP":  # "deliver", at a host without a TUN: ERR 2 (6.9)
        ok = changed == ["unsupported"] and sent == [wire.ERR]
    else:  # "deliver"
        ok = changed == ["accepted"] and got == [b"payload"]
    return None if ok else "counters %s, sent types %s, delivered %d" % (changed, sent, len(got))


def _cell(state, i, cell, st):
    """Hand the peer's packet of type NAMES[i] to an association in `state` (st: the stage
    a silent drop left as it was, else None) -> (what went wrong or None, the stage for the
    next cell or None). A function of its own, so that no stale reference in the caller's
    frame keeps an old stage alive in a board-sized heap."""
    if st is None:
        gc.collect()
        st = stage(state)
    net, ep, a, peer, via, keep = st
    now = net.now + 1
    why = check(cell, i, ep, via, packet(i, ep, a, peer, via, keep, now), now)
    return why, (st if cell.startswith("`") else None)  # a handled packet changed it: anew


def walk(state):
    cells = column(state)
    bad = []
    st = None
    for i in range(len(NAMES)):
        why, st = _cell(state, i, cells[i], st)
        if why:
            bad.append("%s in %s: the table says %s; %s" % (NAMES[i], state, cells[i], why))
    assert not bad, "\n".join(bad)


def test_the_document_has_a_cell_for_every_type_in_every_state():
    rows = column(None)
    assert [r[0] for r in rows] == list(NAMES), [r[0] for r in rows]
    assert all(len(r) == 1 + len(STATES) and all(r) for r in rows)


def test_cookie_wait():
    walk("cookie-wait")


def test_cookie_echoed():
    walk("cookie-echoed")


def test_established():
    walk("established")


def test_shut_sent():
    walk("shut-sent")


def test_shut_ack_sent():
    walk("shut-ack-sent")


def test_closed():
    walk("closed")
