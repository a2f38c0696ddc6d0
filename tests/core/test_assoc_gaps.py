# Protocol behaviour of mast/assoc.py the other modules leave unchecked: resend_ms's age limit,
# a failed path brought back by the peer's own packets, the withdrawn addresses of a SET kept
# only until the next one, a PROBE naming an entry the peer's list has just gained, feedback for
# a redundant copy of an IP packet, the anti-amplification budget a SET starts afresh, no
# failback while the better path's probe is out, and a data event's own copy of its payload.
from simnet import Net, Stream, config, pair, established, count_received, tally
from mast import wire
from mast.policy import FAILED


def _path(a, uplink):
    return [p for p in a.plist if p.uplink.name == uplink][0]


def test_at_failover_data_older_than_resend_ms_is_not_sent_again():
    # a burst, then silence: its tail went into a dead path, and the failover comes about a
    # second later, when those datagrams are older than resend_ms (200): they stay lost
    net = pair(resend_ms=200, a_uplinks=[("eth", "10.1.0.2", 10, 0), ("wifi", "10.2.0.2", 20, 0)])
    net.run(net.now + 2000)
    assert established(net)
    s = Stream(net, "a", rate=100)
    net.run(net.now + 500)
    net.link("a", "eth").cut = True
    net.run(net.now + 50)  # five more into the cut
    s.stop()
    got = count_received(net.nodes["b"])
    assert got < s.seq
    cut = net.now
    net.run(net.now + 5000)
    f = [e for t, e in net.nodes["a"].events if e.kind == "failover" and t >= cut]
    assert [e.new.split(">")[0] for e in f] == ["wifi"], f
    assert count_received(net.nodes["b"]) == got  # (before: the stale tail arrived late)
    assert net.nodes["b"].ep.counters.get("duplicate", 0) == 0


def test_the_same_burst_within_resend_ms_is_sent_again():
    net = pair(resend_ms=5000, a_uplinks=[("eth", "10.1.0.2", 10, 0), ("wifi", "10.2.0.2", 20, 0)])
    net.run(net.now + 2000)
    s = Stream(net, "a", rate=100)
    net.run(net.now + 500)
    net.link("a", "eth").cut = True
    net.run(net.now + 50)
    s.stop()
    net.run(net.now + 5000)
    assert count_received(net.nodes["b"]) == s.seq


def test_a_failed_path_the_peer_reaches_us_on_again_is_probed_at_once():
    # a's eth is metered: its probes of a failed path back off to 60 s, b's of the same path
    # to 10 s. When eth comes back just after a's probe went, b's next probe arrives within
    # 10 s, and a, hearing the peer on the path, probes it then rather than 60 s later
    net = pair(a_uplinks=[("eth", "10.1.0.2", 10, 5), ("wifi", "10.2.0.2", 20, 0)])
    net.run(net.now + 2000)
    assert established(net)
    eth = net.link("a", "eth")
    eth.cut = True
    net.run(net.now + 300000)  # a's back-off reaches 60 s
    a = net.nodes["a"].ep.association("b")
    assert _path(a, "eth").state == FAILED
    sent = eth.sent
    for _ in range(7000):  # 10 ms steps until a's next probe goes out (70 s at most)
        net.run(net.now + 10)
        if eth.sent > sent:
            break
    assert eth.sent == sent + 1
    eth.cut = False
    back = net.now
    net.run(net.now + 15000)
    ups = [t for t, e in net.nodes["a"].events if e.kind == "path_up" and e.path.startswith("eth>")
           and t >= back]
    assert ups and ups[0] - back <= 11000, (ups, back)  # (before: about 60 s)


def test_an_address_withdrawn_two_lists_ago_may_be_observed_again():
    # b drops its second address X (SET: X withdrawn), then changes a hint (SET again: X no
    # longer withdrawn); later b's NAT maps it to X. a takes X as the observed address it is
    # and the traffic moves there (before: everything from X was refused for ever)
    net = Net(0)
    net.node("a", config("a", {"b": {"addresses": ["10.9.0.1:6278"]}}))
    net.node("b", config("b", ["a"]))
    W, X = ("10.9.0.1", 6278), ("10.9.0.2", 6278)
    net.uplink("b", "wan", W, delay=1, priority=10, cost=0)
    net.uplink("b", "wan2", X, delay=1, priority=20, cost=0)
    net.uplink("a", "eth", ("10.1.0.2", 6278), delay=1, priority=10, cost=0)
    net.nodes["a"].ep.connect("b", net.now)
    net.flush()
    net.run(net.now + 3000)
    assert established(net)
    B = net.nodes["b"].ep
    B.uplink_down("wan2", net.now)
    net.flush()
    net.run(net.now + 1000)
    B.uplink_up("wan", W, net.now, priority=11, cost=0)
    net.flush()
    net.run(net.now + 1000)
    a = net.nodes["a"].ep.association("b")
    assert sorted(a.remotes) == [W]
    net.set_nat("b", "wan", X)  # b's packets now come from X; W no longer reaches b
    s = Stream(net, "a", rate=50)
    net.run(net.now + 20000)
    s.stop()
    net.run(net.now + 100)
    assert a.primary is not None and a.primary.raddr == X, a.primary
    t = tally(net.nodes["b"], s.seq)  # (the move waits for b's next packet: its idle probe)
    assert sum(t[s.seq // 2 :]) == s.seq - s.seq // 2, list(t)


def test_a_probe_from_an_entry_the_peers_list_just_gained_is_answered():
    # b brings up wan2 behind a NAT: its SET (on the slow primary) and its first PROBE on
    # wan2 (fast) go at once, and the PROBE, naming entry 1 of b's new list, arrives while a
    # still has the old list of one entry. a answers it: the new path is up in a round trip,
    # not after a retransmission
    net = Net(0)
    net.node("a", config("a", {"b": {"addresses": ["10.9.0.1:6278"]}}))
    net.node("b", config("b", ["a"]))
    net.uplink("b", "wan", ("10.9.0.1", 6278), delay=40, priority=10, cost=0)
    net.uplink("a", "eth", ("10.1.0.2", 6278), delay=1, priority=10, cost=0)
    net.nodes["a"].ep.connect("b", net.now)
    net.flush()
    net.run(net.now + 3000)
    assert established(net)
    net.uplink("b", "wan2", ("192.168.1.2", 6278), delay=1, up=False)
    net.set_nat("b", "wan2", ("10.9.0.7", 40000))
    t0 = net.now
    net.nodes["b"].ep.uplink_up("wan2", ("192.168.1.2", 6278), t0, priority=20, cost=0)
    net.flush()
    net.run(net.now + 3000)
    ups = [t for t, e in net.nodes["b"].events if e.kind == "path_up" and e.path.startswith("wan2>")]
    assert ups and ups[0] - t0 <= 20, (ups, t0)  # (before: about 1 s)
    assert "malformed" not in net.nodes["a"].ep.counters


def test_a_redundant_copy_of_an_ip_packet_earns_its_path_feedback_as_a_datagrams_does():
    # (redundant mode: the second copy keeps the second path's feedback, else it turns SUSPECT)
    net = pair(a_uplinks=[("eth", "10.1.0.2", 10, 0)])
    net.run(2000)
    b_ep = net.nodes["b"].ep
    b_ep.accept_ip = True  # (a tun device: mastd)
    got = []

    def watch(src, dst, data):
        if data[1] == wire.DATA_IP:
            got.append(bytes(data))
        return False

    net.drop = watch
    net.nodes["a"].ep.send_data(b"E" * 40, net.now, ip=True)
    net.flush()
    net.run(net.now + 50)
    assert [p for t, p in net.nodes["b"].payloads] == [b"E" * 40] and len(got) == 1
    net.run(net.now + b_ep.prof["ack"])  # past the path's ack pacing
    sent = net.link("b", "wan").sent
    b_ep.receive("wan", ("10.1.0.2", 6278), got[0], net.now)
    net.flush()
    assert b_ep.counters.get("duplicate") == 1
    assert net.link("b", "wan").sent == sent + 1  # a KEEPALIVE
    assert [p for t, p in net.nodes["b"].payloads] == [b"E" * 40]


def test_a_set_starts_the_budget_for_its_addresses_afresh_at_three_times_its_size():
    # section 9: what the peer's packets saved up before (up to the saved maximum) is not
    # spent on the addresses a new list names: a SET naming third parties gets them 3x its
    # size, however much the peer sent before it
    net = pair(a_uplinks=[("eth", "10.1.0.2", 10, 0)])
    net.run(2000)
    a = net.nodes["a"].ep.association()
    b_ep = net.nodes["b"].ep
    payload = bytes(200)
    for i in range(10):  # 2 KB of DATA: b saves up its maximum (1 KB)
        net.nodes["a"].ep.send_data(payload, net.now)
        net.run(net.now + 1)  # (on a board-sized heap: garbage collected at each step)
    net.run(net.now + 50)
    net.link("a", "eth").cut = True  # from now on b hears from a only what the test hands it
    victims = [("198.51.100.%d" % i, 6278) for i in range(1, 4)]
    sent = []
    transmit = net.transmit

    def spy(n, uplink, dst, data):
        if n.name == "b" and dst in victims:
            sent.append(len(data))
        transmit(n, uplink, dst, data)

    net.transmit = spy
    lst = [(("10.1.0.2", 6278), 10, 0)] + [(v, 20, 0) for v in victims]
    a.tsn += 1
    pkt = wire.seal(a.tx_mac, wire.SET, a.peer_label, a.seq, wire.enc_set(a.tsn, lst))
    a.seq += 1
    b_ep.receive("wan", ("10.1.0.2", 6278), pkt, net.now)
    net.flush()
    net.run(net.now + 30000)
    assert 0 < sum(sent) <= 3 * len(pkt), (sum(sent), len(pkt))  # (before: about 1 KB)


def test_no_failback_while_the_better_paths_last_probe_is_unanswered():
    # eth (no delay: a LAN) comes back; in its failback window it is probed every failback/2,
    # and the probe that falls due as the window ends goes in the same step. eth died just
    # before: the traffic stays on wifi until that probe is answered, and it never is (before:
    # the traffic went back to the dead eth, and was lost until eth failed again)
    net = Net(0)
    net.node("a", config("a", {"b": {"addresses": ["10.9.0.1:6278"]}}))
    net.node("b", config("b", ["a"]))
    net.uplink("b", "wan", ("10.9.0.1", 6278), delay=0)
    net.uplink("a", "eth", ("10.1.0.2", 6278), delay=0, priority=10, cost=0)
    net.uplink("a", "wifi", ("10.2.0.2", 6278), delay=5, priority=20, cost=0)
    A = net.nodes["a"]
    A.ep.connect("b", net.now)
    net.flush()
    net.run(net.now + 2000)
    assert established(net)
    s = Stream(net, "a", rate=100)
    eth = net.link("a", "eth")
    eth.cut = True
    net.run(net.now + 3000)  # failover to wifi
    eth.cut = False
    back = net.now
    up = None
    for _ in range(30000):  # 1 ms steps until eth is up again (30 s at most)
        net.run(net.now + 1)
        ups = [t for t, e in A.events if e.kind == "path_up" and e.path.startswith("eth>") and t >= back]
        if ups:
            up = ups[0]
            break
    assert up is not None
    sent = eth.sent
    for _ in range(3000):  # until a's next probe on eth goes out (and is answered at once)
        net.run(net.now + 1)
        if eth.sent > sent:
            break
    assert eth.sent > sent and net.now - up < 2000, (net.now, up)
    eth.cut = True
    dead = net.now
    net.run(net.now + 10000)
    f = [e for t, e in A.events if e.kind == "failover" and t >= back]
    assert f == [], [(e.old, e.new, e.failback) for e in f]
    s.stop()
    net.run(net.now + 100)
    counts = net.nodes["b"].counts
    n = (dead - s.start) // s.period
    got = 0
    for i in range(n, s.seq):  # (no tally of the whole stream: a large block of a 128K heap)
        got += counts[i]
    assert got == s.seq - n, [counts[i] for i in range(n, s.seq)]


def test_a_data_event_keeps_its_payload_when_the_receive_buffer_is_reused():
    # a runtime receives into one buffer (recv_into) and may read the events later: each data
    # event holds its own copy (before: a view of the buffer, showing the next packet instead)
    net = pair(a_uplinks=[("eth", "10.1.0.2", 10, 0)])
    net.run(2000)
    got = []
    net.drop = lambda src, dst, data: data[1] == wire.DATA and got.append(bytes(data)) is None
    for p in (b"first!", b"second"):
        net.nodes["a"].ep.send_data(p, net.now)
        net.flush()
    assert len(got) == 2
    b_ep = net.nodes["b"].ep
    buf = bytearray(len(got[0]))
    for pkt in got:
        buf[:] = pkt
        b_ep.receive("wan", ("10.1.0.2", 6278), buf, net.now)
    net.flush()
    assert [bytes(p) for t, p in net.nodes["b"].payloads] == [b"first!", b"second"]
