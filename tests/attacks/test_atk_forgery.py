"""Off-path forgery, on the simulated network: an attacker who never sees the association's
packets (so never its nonces or keys), in psk mode and in open mode.

Worst case, he knows the receiver's label. Whatever he forges is dropped (`mac`, `bad_cookie`,
`unknown_label`), never answered, and changes nothing; the association carries on. In open
mode he can run a handshake of his own under the peer's name (names are not authenticated
there): while the real association lives, even through an outage of its only path, he is
refused (`name_in_use`, issue 15.5), until its outage budget (`outage_s`) has run out.
"""

import pytest

import atklib  # noqa: F401  (sys.path)
import fuzzgen
import simnet
from mast import wire
from mast.crypto import Mac

ATTACKER = ("10.66.0.9", 6278)
POST = (wire.SET, wire.SET_ACK, wire.PROBE, wire.PROBE_ACK, wire.SHUT, wire.SHUT_ACK,
        wire.SHUT_COMPLETE, wire.ERR, wire.KEEPALIVE, wire.DATA, wire.DATA_IP, wire.COOKIE_ACK,
        wire.INIT_ACK)


def snapshot(a):
    return (a.state, sorted(a.remotes), list(a.peer_list), a.window.highest, a.peer_tsn,
            a.primary.name if a.primary else None, a.nonce, a.peer_nonce)


def forge(r, ptype, label, seq, peer_tsn):
    """A well-formed packet of ptype with a plausible body and a tag under a random key."""
    if ptype == wire.SET:
        body = wire.enc_set((peer_tsn + 1) & 0xFFFFFFFF, [(ATTACKER, 0, 0)])
    elif ptype in (wire.SET_ACK, wire.SHUT, wire.SHUT_ACK, wire.SHUT_COMPLETE):
        body = wire.enc_tsn(peer_tsn)
    elif ptype == wire.PROBE:
        body = wire.enc_probe(r.bytes(8), 0)
    elif ptype == wire.PROBE_ACK:
        body = wire.enc_probe_ack(r.bytes(8), ATTACKER)
    elif ptype == wire.ERR:
        body = wire.enc_err(3, 0)
    elif ptype == wire.KEEPALIVE:
        body = wire.enc_keepalive(seq)
    elif ptype == wire.COOKIE_ACK:
        body = wire.enc_addrs([(ATTACKER, 0, 0)])
    elif ptype == wire.INIT_ACK:
        body = r.bytes(44)
    else:
        body = b"forged payload"
    return bytes(wire.seal(Mac(r.bytes(32)), ptype, label, seq, body))


@pytest.mark.parametrize("keying", ("psk", "open"))
def test_forged_packets_of_every_type_with_the_real_label_change_nothing_and_get_no_answer(keying):
    net = simnet.pair(keying=keying)
    net.run(2000)
    b_ep = net.nodes["b"].ep
    b = b_ep.association("a")
    before = snapshot(b)
    sent_before = net.link("b", "wan").sent
    c0 = dict(b_ep.counters)
    r = fuzzgen.Rand("forge-" + keying)
    n = 0
    for ptype in POST:
        for i in range(50):
            # fresh seqs above the window, from the attacker's and from the peer's address
            src = ATTACKER if i % 2 else ("10.1.0.2", 6278)
            b_ep.receive("wan", src, forge(r, ptype, b.label, b.window.highest + 1 + i, b.peer_tsn),
                         net.now)
            n += 1
    net.flush()
    # each one dropped: by its tag (INIT-ACK in an established association even before that)
    assert atklib.drops(b_ep.counters) - atklib.drops(c0) == n
    assert b_ep.counters["mac"] - c0.get("mac", 0) == n - 50
    assert b_ep.counters.get("unexpected", 0) - c0.get("unexpected", 0) == 50
    assert b_ep.counters.get("accepted", 0) == c0.get("accepted", 0)
    assert net.link("b", "wan").sent == sent_before  # nothing answered
    assert snapshot(b) == before
    # and the association still works
    net.nodes["a"].ep.send_data(b"still here", net.now)
    net.flush()
    net.run(net.now + 50)
    assert [p for t, p in net.nodes["b"].payloads] == [b"still here"]


def test_forged_cookie_echoes_and_init_acks_create_nothing():
    net = simnet.pair()
    net.run(2000)
    a_ep, b_ep = net.nodes["a"].ep, net.nodes["b"].ep
    r = fuzzgen.Rand("cookie")
    assocs = (len(a_ep.assocs), len(b_ep.assocs))
    for i in range(200):
        # half with a fresh-looking stamp (the attacker guesses b's clock), half stale
        stamp = (net.now & 0xFFFFFFFF) if i % 2 else r.below(1 << 32)
        body = stamp.to_bytes(4, "big") + r.bytes(16) + wire.pad_init(wire.enc_init(r.below(1 << 30) + 1, r.bytes(16), 1, 0,
                                                         "a", [(ATTACKER, 0, 0)]))
        b_ep.receive("wan", ATTACKER, bytes(wire.seal(Mac(r.bytes(32)), wire.COOKIE_ECHO,
                                                      r.below(1 << 30) + 1, 1, body)), net.now)
        a_ep.receive("eth", ("10.9.0.1", 6278), bytes(wire.seal(
            Mac(r.bytes(32)), wire.INIT_ACK, r.below(1 << 30) + 1, 0, r.bytes(44))), net.now)
    net.flush()
    assert b_ep.counters["bad_cookie"] == 100
    assert b_ep.counters.get("stale_cookie", 0) == 100
    assert a_ep.counters["unknown_label"] >= 200 - 1  # INIT-ACK for labels a never chose
    assert (len(a_ep.assocs), len(b_ep.assocs)) == assocs
    assert len(net.events("b", "association_up")) == 1


def test_random_labels_find_no_association():
    net = simnet.pair()
    net.run(2000)
    b_ep = net.nodes["b"].ep
    r = fuzzgen.Rand("labels")
    c0 = b_ep.counters.get("unknown_label", 0)
    label = b_ep.association("a").label
    n = 0
    for i in range(2000):
        guess = r.below(1 << 32)
        if guess == label:
            continue
        b_ep.receive("wan", ATTACKER, forge(r, wire.SET, guess, 5, 0), net.now)
        n += 1
    assert b_ep.counters["unknown_label"] - c0 == n


def open_outage(outage_s=300):
    """Open mode; a has one uplink; b streams to a; a's link goes silent. -> (net, cut time)"""
    net = simnet.pair(keying="open", outage_s=outage_s, a_uplinks=[("eth", "10.1.0.2", 10, 0)])
    net.run(2000)
    assert simnet.established(net)
    simnet.Stream(net, "b", rate=100, peer="a")
    net.nodes["a"].payloads = None
    net.run(net.now + 1000)
    t_cut = net.now
    net.link("a", "eth").cut = True
    return net, t_cut


def attacker_under_a_name(net):
    """An off-path host that claims a's name (open keying: no key to hold)."""
    m = net.node("m", simnet.config("a", {"b": {"addresses": ["10.9.0.1:6278"]}}, keying="open"))
    net.uplink("m", "eth", ATTACKER, delay=1)
    return m


def test_open_mode_an_established_name_is_held_through_an_outage_of_its_only_path():
    net, t_cut = open_outage()
    b_ep = net.nodes["b"].ep
    real = b_ep.association("a")
    net.run(t_cut + 1000)
    assert real.primary is None  # the path was found dead: the association is in outage
    m = attacker_under_a_name(net)
    m.ep.connect("b", net.now)
    net.flush()
    net.run(t_cut + 30000)  # 29 s of handshakes under a's name (INIT, COOKIE-ECHO, again)
    assert b_ep.counters.get("name_in_use", 0) >= 2, b_ep.counters
    assert b_ep.association("a") is real and real.state == 2
    assert [e.reason for e in net.events("b", "association_closed")] == []
    # the real a comes back: the same association carries on
    net.link("a", "eth").cut = False
    net.run(net.now + 15000)
    assert real.primary is not None and b_ep.association("a") is real
    assert net.nodes["a"].ep.association("b").nonce == real.peer_nonce


def test_open_mode_a_name_is_free_again_once_its_outage_budget_is_spent():
    net, t_cut = open_outage(outage_s=10)
    b_ep = net.nodes["b"].ep
    net.run(t_cut + 12000)
    assert b_ep.association("a") is None  # closed: outage
    assert [e.reason for e in net.events("b", "association_closed")] == ["outage"]
    m = attacker_under_a_name(net)
    m.ep.connect("b", net.now)
    net.flush()
    net.run(net.now + 3000)
    assert b_ep.association("a") is not None and b_ep.association("a").state == 2
    assert b_ep.association("a").peer_nonce == m.ep.association("b").nonce
