# SET carries the sender's complete address list with a TSN; the receiver applies it only if
# the TSN is newer than the last applied one (serial arithmetic, RFC 1982), and acknowledges
# every SET, retransmissions included (PROTOCOL.md section 9). A late copy of an older SET,
# authentic and inside the replay window, must not put back addresses the peer has left.

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
