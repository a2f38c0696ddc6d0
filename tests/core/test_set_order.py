# SET carries the sender's complete address list with a TSN; the receiver applies it only if
# the TSN is newer than the last applied one (serial arithmetic, RFC 1982), and acknowledges
# every SET, retransmissions included (PROTOCOL.md section 9). A late copy of an older SET,
# authentic and inside the replay window, must not put back addresses the peer has left.
# SET-ACK and ERR carry the TSN of the SET they answer: a late one for an older SET does not
# end the retransmission of a newer one.

from simnet import pair
from mast import wire

CELL = ("10.3.0.2", 6278)


def _hold_first_set(net):
    """Lose (and keep) the first SET a sends from now on; let the rest through."""
    held = []

    def hold(src, dst, data):
        if data[1] == wire.SET and src == "a" and not held:
            held.append(bytes(data))
            return True
        return False

    net.drop = hold
    return held


def _renumber_twice(net):
    """a moves its cell uplink to .50 (that SET's first copy is held back), then to .51."""
    held = _hold_first_set(net)
    net.renumber("a", "cell", ("10.3.0.50", 6278), priority=30, cost=10)
    net.run(net.now + 3000)  # the retransmission gets through
    assert held
    b = net.nodes["b"].ep.association("a")
    assert ("10.3.0.50", 6278) in b.remotes
    net.renumber("a", "cell", ("10.3.0.51", 6278), priority=30, cost=10)
    net.run(net.now + 3000)
    assert ("10.3.0.51", 6278) in b.remotes and ("10.3.0.50", 6278) not in b.remotes
    return b, held[0]


def _late_copy_changes_nothing(net, b, old_set):
    ep = net.nodes["b"].ep
    listed = list(b.peer_list)
    remotes = sorted(b.remotes)
    tsn = b.peer_tsn
    accepted = ep.counters.get("accepted", 0)
    ep.receive("wan", ("10.1.0.2", 6278), old_set, net.now)  # authentic, inside the window
    assert ep.counters.get("accepted", 0) == accepted + 1, ep.counters
    assert b.peer_list == listed and sorted(b.remotes) == remotes and b.peer_tsn == tsn
    assert ("10.3.0.50", 6278) not in b.remotes
    acks = [d for u, to, d in ep.out if d[1] == wire.SET_ACK]
    assert len(acks) == 1  # re-acknowledged all the same
    net.flush()


def test_a_late_copy_of_an_older_set_is_acknowledged_but_not_applied():
    net = pair(direct=False)  # (b's packets queued: the test reads them)
    net.run(2000)
    b, old_set = _renumber_twice(net)
    _late_copy_changes_nothing(net, b, old_set)


def test_set_tsns_compare_as_serial_numbers_across_the_wrap():
    net = pair(direct=False)  # (b's packets queued: the test reads them)
    net.run(2000)
    a = net.nodes["a"].ep.association("b")
    b = net.nodes["b"].ep.association("a")
    # a long-lived association: the next two SETs carry TSN 0xFFFFFFFF and then 0
    a.tsn = b.peer_tsn = 0xFFFFFFFE
    b, old_set = _renumber_twice(net)
    assert b.peer_tsn == 0, b.peer_tsn
    assert wire.dec_set(wire.parse(old_set)[3])[0] == 0xFFFFFFFF
    _late_copy_changes_nothing(net, b, old_set)


def _two_sets_the_newer_lost(net):
    """a moves its cell uplink twice at once: SET n (to .50), then SET n+1 (to .51), whose
    first copy is lost. -> (n, n+1, the TSN of every SET a sends from now on)"""
    a = net.nodes["a"].ep.association("b")
    n, n1 = (a.tsn + 1) & 0xFFFFFFFF, (a.tsn + 2) & 0xFFFFFFFF
    sent = []

    def lose_first_newer(src, dst, data):
        if data[1] == wire.SET and src == "a":
            sent.append(wire.dec_set(wire.parse(data)[3])[0])
            return sent == [n, n1]
        return False

    net.drop = lose_first_newer
    net.renumber("a", "cell", ("10.3.0.50", 6278), priority=30, cost=10)
    net.renumber("a", "cell", ("10.3.0.51", 6278), priority=30, cost=10)
    assert sent == [n, n1]
    return n, n1, sent


def _newest_list_arrives(net, n1, sent):
    net.run(net.now + 3000)
    assert sent.count(n1) >= 2, sent  # SET n+1 was retransmitted...
    b = net.nodes["b"].ep.association("a")
    assert b.peer_tsn == n1, (b.peer_tsn, n1)  # ...and applied: b has a's newest list
    listed = [x[0] for x in b.peer_list]
    assert ("10.3.0.51", 6278) in listed and ("10.3.0.50", 6278) not in listed
    assert net.nodes["a"].ep.association("b").req is None


def test_a_late_set_ack_for_an_older_set_does_not_end_the_newer_sets_retransmission():
    # SET-ACK n arrives after SET n+1 left (and was lost): it answers SET n only, so SET n+1 is
    # still retransmitted until its own SET-ACK (PROTOCOL.md section 9)
    net = pair()
    net.run(2000)
    n, n1, sent = _two_sets_the_newer_lost(net)
    unexpected = net.nodes["a"].ep.counters.get("unexpected", 0)
    net.run(net.now + 10)  # SET n reaches b; its SET-ACK comes back
    assert net.nodes["b"].ep.association("a").peer_tsn == n
    assert net.nodes["a"].ep.counters.get("unexpected", 0) == unexpected + 1  # the late ack
    _newest_list_arrives(net, n1, sent)


def test_an_err_for_an_older_set_does_not_end_the_newer_sets_retransmission():
    # ERR (bad addresses, or shutting down) answers the SET whose TSN it carries: one for SET n
    # arriving after SET n+1 left (and was lost) must not stop SET n+1's retransmission
    net = pair()
    net.run(2000)
    n, n1, sent = _two_sets_the_newer_lost(net)
    b = net.nodes["b"].ep.association("a")
    err = wire.seal(b.tx_mac, wire.ERR, b.peer_label, b.seq, wire.enc_err(wire.ERR_BAD_ADDRESSES, n))
    b.seq += 1
    net.nodes["a"].ep.receive("eth", ("10.9.0.1", 6278), err, net.now)
    net.flush()
    assert [(e.code, e.tsn) for e in net.events("a", "peer_error")] == [(wire.ERR_BAD_ADDRESSES, n)]
    _newest_list_arrives(net, n1, sent)
