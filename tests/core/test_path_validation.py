# Return routability (PROTOCOL.md section 9): a path is validated only by a PROBE-ACK that
# carries the challenge sent on it and arrives on that same path (same local uplink, from the
# same remote address). An authentic PROBE-ACK with another challenge, or with the right one
# arriving on another path, validates nothing (`stale_probe_ack`).

from simnet import pair
from mast import wire, policy

B_ADDR = ("10.9.0.1", 6278)
WIFI = ("10.2.0.2", 6278)


def _new_silent_path():
    """a (eth, established) adds a wifi uplink whose packets vanish: its path to b is
    unverified, with a challenge outstanding. -> (net, a's association, b's, the path)."""
    net = pair(a_uplinks=[("eth", "10.1.0.2", 10, 0)])
    net.run(2000)
    net.uplink("a", "wifi", WIFI, delay=1, up=False).cut = True
    net.nodes["a"].ep.uplink_up("wifi", WIFI, net.now, 20, 0)
    net.flush()
    a = net.nodes["a"].ep.association("b")
    p = a.paths[("wifi", B_ADDR)]
    for i in range(100):
        if p.challenge is not None:
            break
        net.run(net.now + 1)
    assert p.state == policy.UNVERIFIED and p.challenge is not None
    return net, a, net.nodes["b"].ep.association("a"), p


def _probe_ack_from_b(b, challenge, observed):
    """An authentic PROBE-ACK from b (its key, its next seq)."""
    pkt = wire.seal(b.tx_mac, wire.PROBE_ACK, b.peer_label, b.seq, wire.enc_probe_ack(challenge, observed))
    b.seq += 1
    return pkt


def _wifi_up_events(net):
    return [e for t, e in net.nodes["a"].events if e.kind == "path_up" and e.path.startswith("wifi>")]


def test_a_probe_ack_with_another_challenge_validates_nothing():
    net, a, b, p = _new_silent_path()
    ep = net.nodes["a"].ep
    wrong = bytes([x ^ 0xFF for x in p.challenge])
    ep.receive("wifi", B_ADDR, _probe_ack_from_b(b, wrong, WIFI), net.now)
    net.flush()
    assert ep.counters.get("stale_probe_ack", 0) == 1, ep.counters
    assert p.state == policy.UNVERIFIED and _wifi_up_events(net) == []
    # the right challenge on the right path does validate it
    ep.receive("wifi", B_ADDR, _probe_ack_from_b(b, p.challenge, WIFI), net.now)
    net.flush()
    assert p.state == policy.ACTIVE and len(_wifi_up_events(net)) == 1


def test_a_challenge_is_compared_in_full_one_wrong_last_byte_validates_nothing():
    # all 8 bytes of the challenge must match: an answer wrong only in its last byte is stale
    net, a, b, p = _new_silent_path()
    ep = net.nodes["a"].ep
    sent = bytes(p.challenge)
    assert len(sent) == wire.CHALLENGE_LEN == 8
    near = sent[:7] + bytes([sent[7] ^ 1])  # all but the last bit of the last byte right
    ep.receive("wifi", B_ADDR, _probe_ack_from_b(b, near, WIFI), net.now)
    net.flush()
    assert ep.counters.get("stale_probe_ack", 0) == 1, ep.counters
    assert p.state == policy.UNVERIFIED and p.challenge == sent and _wifi_up_events(net) == []
    assert a.primary is a.paths[("eth", B_ADDR)]
    # the exact challenge does validate it
    ep.receive("wifi", B_ADDR, _probe_ack_from_b(b, sent, WIFI), net.now)
    net.flush()
    assert p.state == policy.ACTIVE and len(_wifi_up_events(net)) == 1


def test_the_right_challenge_arriving_on_another_path_validates_nothing():
    net, a, b, p = _new_silent_path()
    ep = net.nodes["a"].ep
    eth = a.paths[("eth", B_ADDR)]
    stale = ep.counters.get("stale_probe_ack", 0)
    # the answer to wifi's challenge comes in on eth (the wifi uplink may not receive at all)
    ep.receive("eth", B_ADDR, _probe_ack_from_b(b, p.challenge, WIFI), net.now)
    net.flush()
    assert ep.counters.get("stale_probe_ack", 0) == stale + 1, ep.counters
    assert p.state == policy.UNVERIFIED and p.challenge is not None and _wifi_up_events(net) == []
    assert eth.state == policy.ACTIVE
    # the same answer on the path the challenge went out on validates it
    ep.receive("wifi", B_ADDR, _probe_ack_from_b(b, p.challenge, WIFI), net.now)
    net.flush()
    assert p.state == policy.ACTIVE and len(_wifi_up_events(net)) == 1


def test_an_unverified_path_never_becomes_primary_even_when_it_is_the_only_one_left():
    net, a, b, p = _new_silent_path()
    ep = net.nodes["a"].ep
    ep.uplink_up("wifi", WIFI, net.now, 1, 0)  # now ranked above eth, still never answered
    net.flush()
    assert a.primary is a.paths[("eth", B_ADDR)]
    ep.uplink_down("eth", net.now)  # the only validated path goes
    net.flush()
    assert a.primary is None
    assert [e for t, e in net.nodes["a"].events if e.kind == "failover" and e.new is not None
            and e.new.startswith("wifi>")] == []
    assert ep.send_data(b"x", net.now) is False
    net.flush()
