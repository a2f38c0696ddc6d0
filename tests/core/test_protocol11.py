# What MAST/1.1 settled that 1.0 left open (docs/PROTOCOL.md section 0), each shown on the
# real core: the maximum packet size at both ends, ERR 1 and ERR 3 ending a SET's
# retransmissions, COOKIE-ECHO's own timer, SHUT's timer, fresh KEEPALIVE feedback, withdrawn
# addresses, PROBE's filler, and one drop vocabulary for every type. (Long uptimes:
# test_uptime.py.)

from simnet import Net, config, pair, established, pair1, up1, packet_log
from mast import wire, policy
from mast.compat import sha256

A_ADDR = ("10.1.0.2", 6278)
B_ADDR = ("10.9.0.1", 6278)
DAY = 86400000


def test_a_sender_refuses_a_payload_over_2020_bytes_and_sends_nothing():
    big = bytes(wire.MAX_PAYLOAD + 1)  # (big blocks first: a small heap)
    net, a, b = up1(direct=False)  # (a's packets queued: the test reads them)
    ep = net.nodes["a"].ep
    ep.datagrams_to_send()
    seq = a.seq
    try:
        ep.send_data(big, net.now)
        raise AssertionError("a 2021-byte payload was taken")
    except ValueError as e:
        assert "2021" in str(e) and "2020" in str(e)
    assert ep.datagrams_to_send() == [] and a.seq == seq


# ---- 2./3. ERR answering a SET ------------------------------------------------------------------

def test_err_1_answers_a_set_with_an_unspecified_address_and_ends_its_retransmissions():
    net, a, b = up1()
    seen = packet_log(net, (wire.SET, wire.SET_ACK, wire.ERR))
    net.uplink("a", "bad", ("0.0.0.0", 6278))  # a's own list now names 0.0.0.0
    net.run(net.now + 60000)
    sets = [x for x in seen if x[2] == wire.SET]
    errs = [x for x in seen if x[2] == wire.ERR]
    assert len(sets) == 1 and len(errs) == 1, [(t, s, k) for t, s, k, d in seen]
    assert [x for x in seen if x[2] == wire.SET_ACK] == []
    code, tsn = wire.dec_err(wire.parse(errs[0][3])[3])
    assert code == wire.ERR_BAD_ADDRESSES and tsn == a.tsn
    assert a.req is None  # no retransmission pending
    assert [e.code for t, e in net.nodes["a"].events if e.kind == "peer_error"] == [1]
    # the list was not applied and the TSN not recorded
    assert [x[0] for x in b.peer_list] == [A_ADDR] and b.peer_tsn != a.tsn
    r = b.remotes.get(("0.0.0.0", 6278))  # (the simulator lets a probe from it: not listed)
    assert r is None or not r.advertised


def test_an_unspecified_address_in_a_handshake_list_is_kept_for_its_index_but_never_probed():
    net = pair(a_uplinks=[("eth", "10.1.0.2", 10, 0), ("bad", "0.0.0.0", 20, 0)])
    seen = []

    def spy(src, dst, data):
        seen.append((src, dst))
        return False

    net.drop = spy
    net.run(net.now + 30000)
    assert established(net)
    b = net.nodes["b"].ep.association("a")
    assert sorted(x[0] for x in b.peer_list) == [("0.0.0.0", 6278), A_ADDR]  # as the INIT listed
    assert ("0.0.0.0", 6278) not in b.remotes  # but no remote, no path...
    assert [d for s, d in seen if d[0] == "0.0.0.0"] == []  # ...and nothing ever sent there


def test_err_3_answers_a_set_to_a_host_that_is_closing_and_ends_its_retransmissions():
    net, a, b = up1()
    lost = []

    def lose_shut(src, dst, data):  # b's SHUT never arrives: a does not know b is closing
        if data[1] == wire.SHUT:
            lost.append(1)
            return True
        return False

    net.drop = lose_shut
    net.nodes["b"].ep.close(net.now)
    net.flush()
    seen = []
    spy_base = net.drop

    def both(src, dst, data):
        if data[1] in (wire.SET, wire.ERR, wire.SET_ACK):
            seen.append((src, data[1], bytes(data)))
        return spy_base(src, dst, data)

    net.drop = both
    net.renumber("a", "eth", ("10.1.0.2", 6278), priority=11)  # a sends SET (priority changed)
    net.run(net.now + 200)
    assert [(s, k) for s, k, d in seen] == [("a", wire.SET), ("b", wire.ERR)], [(s, k) for s, k, d in seen]
    code, tsn = wire.dec_err(wire.parse(seen[1][2])[3])
    assert code == wire.ERR_SHUTTING_DOWN and tsn == a.tsn and a.req is None
    assert net.nodes["b"].ep.counters.get("shutting_down", 0) == 1


# ---- 4. timers ----------------------------------------------------------------------------------

def test_cookie_echo_is_resent_after_1_2_and_4_s_and_init_starts_over_8_s_later():
    net = Net()
    net.node("a", config("a", {"b": {"addresses": ["10.9.0.1"]}}))
    net.node("b", config("b", ["a"]))
    net.uplink("b", "wan", B_ADDR)
    net.uplink("a", "eth", A_ADDR)
    sent = []

    def lose_echoes(src, dst, data):
        if src == "a" and data[1] in (wire.INIT, wire.COOKIE_ECHO):
            sent.append((net.now, data[1]))
        return data[1] == wire.COOKIE_ECHO  # every COOKIE-ECHO is lost

    net.drop = lose_echoes
    net.nodes["a"].ep.connect("b", 0)
    net.flush()
    net.run(16000)
    t0 = sent[1][0]  # the first COOKIE-ECHO (right after the INIT-ACK)
    echoes = [t - t0 for t, k in sent if k == wire.COOKIE_ECHO and t - t0 < 15000]
    inits = [t - t0 for t, k in sent if k == wire.INIT]
    assert echoes == [0, 1000, 3000, 7000], echoes
    assert inits[1:2] == [15000], inits  # 8 s after the fourth, INIT again


def test_shut_is_resent_from_the_paths_rto_doubling_then_the_sender_closes():
    net, a, b = up1()
    sent = []

    def lose_shut(src, dst, data):
        if data[1] == wire.SHUT:
            sent.append(net.now)
            return True
        return False

    net.drop = lose_shut
    rto = a.primary.rto(a.ep.prof)
    t0 = net.now
    net.nodes["a"].ep.close(net.now)
    net.flush()
    net.run(net.now + 60000)
    gaps = [sent[i + 1] - sent[i] for i in range(len(sent) - 1)]
    assert len(sent) == 1 + policy.SHUT_RETRIES, sent
    assert gaps == [rto << i for i in range(policy.SHUT_RETRIES)], (gaps, rto)
    closed = [e for t, e in net.nodes["a"].events if e.kind == "association_closed"]
    assert [e.reason for e in closed] == ["shut"] and sent[0] == t0


# ---- 5. fresh feedback -------------------------------------------------------------------------

def test_keepalive_feedback_is_fresh_only_when_it_rises_and_clears_only_at_the_highest_seq_sent():
    # the example of PROTOCOL.md 6.10, on the real core
    net, a, b = up1()
    ep = net.nodes["a"].ep
    p = a.primary
    t = net.now
    net.drop = lambda src, dst, data: True  # nothing gets through: we play b's part
    for i in range(3):
        ep.send_data(b"d%d" % i, t)
    ep.datagrams_to_send()
    hi = a.seq - 1
    assert p.sent_hi == hi and p.unacked_until == t + ep.prof["send_timeout"]
    bt = b  # b's association: its keys build the KEEPALIVEs

    def keepalive(rx_highest, when):
        pkt = wire.seal(bt.tx_mac, wire.KEEPALIVE, bt.peer_label, bt.seq, wire.enc_keepalive(rx_highest))
        bt.seq += 1
        ep.receive("eth", B_ADDR, pkt, when)

    keepalive(hi - 1, t + 40)  # fresh, below sent_hi: the timeout restarts at 40
    assert p.fb_hi == hi - 1 and p.unacked_until == t + 40 + ep.prof["send_timeout"] and p.last_ok == t + 40
    keepalive(hi - 1, t + 60)  # the same value again: not fresh, nothing changes
    assert p.unacked_until == t + 40 + ep.prof["send_timeout"] and p.last_ok == t + 40
    keepalive(hi + 1, t + 90)  # fresh and at or above sent_hi: nothing outstanding
    assert p.fb_hi == hi + 1 and p.unacked_until is None and p.last_ok == t + 90


# ---- 6. withdrawn addresses ---------------------------------------------------------------------

def test_packets_from_an_address_a_set_withdrew_do_not_bring_it_back():
    net = pair()
    net.run(2000)
    b = net.nodes["b"].ep.association("a")
    a = net.nodes["a"].ep.association("b")
    assert ("10.2.0.2", 6278) in b.remotes
    # a KEEPALIVE a sent from wifi before it left, still on its way
    late = wire.seal(a.tx_mac, wire.KEEPALIVE, a.peer_label, a.seq, wire.enc_keepalive(1))
    a.seq += 1
    net.nodes["a"].ep.uplink_down("wifi", net.now)  # SET without 10.2.0.2
    net.flush()
    net.run(net.now + 100)
    assert ("10.2.0.2", 6278) not in b.remotes and ("10.2.0.2", 6278) in b.withdrawn
    b_ep = net.nodes["b"].ep
    b_ep.receive("wan", ("10.2.0.2", 6278), late, net.now)
    assert b_ep.counters.get("withdrawn", 0) == 1
    assert ("10.2.0.2", 6278) not in b.remotes
    assert [p for p in b.paths if p[1] == ("10.2.0.2", 6278)] == []
    # the same packet again is a duplicate: its seq was recorded
    b_ep.receive("wan", ("10.2.0.2", 6278), late, net.now)
    assert b_ep.counters.get("duplicate", 0) >= 1 and b_ep.counters["withdrawn"] == 1


# ---- 8. PROBE filler, one vocabulary --------------------------------------------------------------

def test_a_probe_with_a_nonzero_filler_is_answered():
    net, a, b = up1(direct=False)  # (b's packets queued: the test reads them)
    body = bytearray(wire.enc_probe(b"\x42" * 8, 0))
    for i in range(9, len(body)):
        body[i] = 0xA5
    pkt = wire.seal(a.tx_mac, wire.PROBE, a.peer_label, a.seq, bytes(body))
    a.seq += 1
    b_ep = net.nodes["b"].ep
    b_ep.datagrams_to_send()
    b_ep.receive("wan", A_ADDR, pkt, net.now)
    out = b_ep.datagrams_to_send()
    assert [d[1] for u, dst, d in out] == [wire.PROBE_ACK]
    assert wire.dec_probe_ack(wire.parse(out[0][2])[3])[0] == b"\x42" * 8


def test_a_replayed_control_packet_is_a_duplicate_and_one_older_than_the_window_too_old():
    net, a, b = up1(replay_window=64)
    pkt = wire.seal(a.tx_mac, wire.PROBE, a.peer_label, a.seq, wire.enc_probe(b"\x01" * 8, 0))
    a.seq += 1
    b_ep = net.nodes["b"].ep
    b_ep.receive("wan", A_ADDR, pkt, net.now)
    b_ep.receive("wan", A_ADDR, pkt, net.now)
    assert b_ep.counters.get("duplicate", 0) == 1 and b_ep.counters.get("too_old", 0) == 0
    a.seq += 100  # the window moves on past it
    fresh = wire.seal(a.tx_mac, wire.KEEPALIVE, a.peer_label, a.seq, wire.enc_keepalive(1))
    a.seq += 1
    b_ep.receive("wan", A_ADDR, fresh, net.now)
    b_ep.receive("wan", A_ADDR, pkt, net.now)
    assert b_ep.counters.get("too_old", 0) == 1 and "replay" not in b_ep.counters
