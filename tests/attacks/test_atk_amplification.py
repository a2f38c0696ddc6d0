"""Amplification toward a third party, per message type (amplify.py; exact bytes on the
simulated network, the server b as the reflector, 198.18.0.66:6278 as the victim).

- A stranger without keys gets nothing at all sent to the victim, whatever type he sends.
- A holder of the PSK spoofing the victim gets one 72-byte INIT-ACK per INIT of at least 96.
- The peer itself, with the keys, sending from the victim's address: at most 3x what it sent
  (an address learnt only as a source; docs/PROTOCOL.md section 9).
- The peer's SET listing victims (issue 15.4): b probes the new addresses within a budget the
  peer's own bytes earned: at most 3x during validation, and over time no more than the peer
  sent (QUIC's anti-amplification rule).
"""

import pytest

import amplify
from amplify import TYPE_NAMES, ratio
from mast import wire

ALL_TYPES = sorted(TYPE_NAMES)
PEER_TYPES = (wire.SET, wire.SET_ACK, wire.PROBE, wire.PROBE_ACK, wire.SHUT, wire.SHUT_ACK,
              wire.SHUT_COMPLETE, wire.ERR, wire.KEEPALIVE, wire.DATA, wire.DATA_IP,
              wire.COOKIE_ACK, wire.INIT_ACK)


@pytest.mark.parametrize("ptype", ALL_TYPES, ids=[TYPE_NAMES[t] for t in ALL_TYPES])
def test_a_stranger_spoofing_a_victim_gets_nothing_sent_to_it(ptype):
    sent, out = amplify.stranger_ratio(ptype)
    assert sent > 0 and out == 0


def test_init_from_a_key_holder_is_answered_with_less_than_it_carries():
    sent, out = amplify.init_ratio(50)
    assert out == 50 * wire.INIT_ACK_LEN  # each INIT answered once, statelessly...
    assert sent == 50 * wire.MIN_INIT and ratio(out, sent) <= 0.75  # ...by a smaller packet


@pytest.mark.parametrize("ptype", PEER_TYPES, ids=[TYPE_NAMES[t] for t in PEER_TYPES])
def test_the_peer_spoofing_a_victim_as_its_source_gets_at_most_3x_sent_there(ptype):
    sent, out = amplify.spoofed_peer_ratio(ptype)
    assert sent > 0 and out <= 3 * sent, (TYPE_NAMES[ptype], sent, out)


def test_a_set_listing_15_victims_gets_probes_within_3x_then_no_more_than_the_peer_sends():
    r = amplify.set_victims()
    assert r["set_bytes"] == 177  # the SET: its own address and 15 victims
    assert r["out_300ms"] > 0  # the new addresses are probed (that is what SET is for)...
    assert r["out_300ms"] <= 3 * r["set_bytes"], r  # ...within 3x during validation
    # over 30 s: the SET's 3x, then no more than what the peer sent after it (section 9.4)
    assert r["out_all"] <= 3 * r["set_bytes"] + r["peer_in_all"] - r["set_in"], r
    assert r["out_late"] <= r["peer_in_late"], r  # and after validation, too


def test_a_fresh_15_victim_set_every_second_gets_at_most_3x_over_30_s():
    r = amplify.set_victims(rounds=30)
    assert r["victims"] == 450
    assert r["out_all"] <= 3 * r["peer_in_all"], r


def test_a_set_listing_a_multicast_group_or_the_broadcast_address_is_refused_and_nothing_goes_there():
    # The endpoint file, mastd and a board refuse such peer addresses (runtime/peeraddr.py:
    # "no one host's"), but a peer's SET listing one made the host probe it: measured with a
    # group member on the host's loopback, 224.0.0.251:5353 (mDNS) got PROBEs, each reaching
    # every member of the group; 255.255.255.255 cost a tx_error (EACCES) per probe
    from simnet import up1

    net, a, b = up1(direct=False)
    B = net.nodes["b"].ep
    B.datagrams_to_send()
    groups = (("224.0.0.251", 5353), ("255.255.255.255", 6278), ("ff02::fb", 5353))
    lst = [(("10.1.0.2", 6278), 10, 0)] + [(g, 20, 0) for g in groups]
    pkt = wire.seal(a.tx_mac, wire.SET, a.peer_label, a.seq, wire.enc_set(a.tsn + 1, lst))
    a.seq += 1
    B.receive("wan", ("10.1.0.2", 6278), pkt, net.now)
    out = B.datagrams_to_send()
    assert [wire.parse(d)[0] for u, dst, d in out] == [wire.ERR]  # ERR 1: a list it cannot use
    sent = []
    net.drop = lambda src, dst, data: sent.append(dst) and False
    net.run(net.now + 30000)
    assert [d for d in sent if d in groups] == [] and B.counters.get("tx_error", 0) == 0
