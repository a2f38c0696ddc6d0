# mast/endpoint.py's API edges the other modules leave unchecked: an uplink's hints out of
# range, out-of-band addresses for an association not (or no longer) established, a reconfigure
# cut short by a full heap that changed an uplink's hint, a COOKIE-ECHO that a full heap cut
# short being retried, a deadline moved later, a key changed by set_peer, a removed peer's
# SHUT retransmitted, and a restarted peer whose name sorts after ours.
from simnet import pair, established
from mast import wire


def test_an_uplinks_priority_or_cost_above_255_is_refused():
    # (each goes on the wire in one byte: every SET after it would fail, or carry 0, the best)
    net = pair(a_uplinks=[("eth", "10.1.0.2", 10, 0)])
    a = net.nodes["a"].ep
    for prio, cost in ((256, 0), (0, 256), (-1, 0), (0, -1), (1000, 1000)):
        try:
            a.uplink_up("wifi", ("10.2.0.2", 6278), net.now, priority=prio, cost=cost)
            assert False, "took %d/%d" % (prio, cost)
        except ValueError as e:
            assert "0..255" in str(e)
    assert sorted(a.uplinks) == ["eth"]
    a.uplink_up("wifi", ("10.2.0.2", 6278), net.now, priority=255, cost=255)
    assert sorted(a.uplinks) == ["eth", "wifi"]


def test_out_of_band_addresses_count_only_for_an_established_association():
    net = pair(a_uplinks=[("eth", "10.1.0.2", 10, 0)])  # a's INIT is on its way
    a = net.nodes["a"].ep
    far = ("198.51.100.9", 6278)
    sent = []
    transmit = net.transmit

    def spy(n, uplink, dst, data):
        if dst == far:
            sent.append(data[1])
        transmit(n, uplink, dst, data)

    net.transmit = spy
    assert a.add_peer_addresses("b", [far], net.now) == 0  # in the handshake
    net.run(net.now + 2000)
    assert established(net)
    assert far not in a.association("b").remotes
    a.close(net.now, "b")  # SHUT sent: shutting down
    assert a.add_peer_addresses("b", [far], net.now) == 0
    net.flush()
    net.run(net.now + 5000)
    assert sent == []


def test_a_reconfigure_cut_short_after_changing_an_uplinks_priority_announces_it_when_redone():
    # the first apply changes eth's priority and runs out of memory before its SET goes; the
    # second, with the same configuration, finds nothing to change: it must send the SET
    from mast.assoc import Association

    net = pair(a_uplinks=[("eth", "10.1.0.2", 10, 0)])
    net.run(2000)
    a = net.nodes["a"].ep
    cfg = dict(a.cfg)
    cfg["uplinks"] = {"eth": {"priority": 50}}
    send_set = Association.send_set
    cut = []

    def send_set_once_out_of_memory(self, now):
        if not cut:
            cut.append(now)
            raise MemoryError("memory allocation failed")
        return send_set(self, now)

    Association.send_set = send_set_once_out_of_memory
    try:
        try:
            a.reconfigure(cfg, net.now)
            assert False, "the MemoryError did not come through"
        except MemoryError:
            pass
    finally:
        Association.send_set = send_set
    assert cut
    net.keep_log = True
    n0 = len(net.log)
    changed = len(net.events("b", "addresses_changed"))
    a.reconfigure(cfg, net.now)  # the same configuration again (a second `apply`)
    net.flush()
    net.run(net.now + 1000)
    assert [k for t, f, to, k in net.log[n0:] if f == "a" and k == wire.SET] == [wire.SET]
    assert len(net.events("b", "addresses_changed")) == changed + 1


def test_a_cookie_echo_a_full_heap_cut_short_is_taken_when_retransmitted():
    # b runs out of memory building the association: as if the COOKIE-ECHO never came, so
    # a's retransmission of it (the same cookie) brings the association up (before: refused
    # as stale until a gave up on that cookie and started over)
    from mast.assoc import Association

    net = pair(a_uplinks=[("eth", "10.1.0.2", 10, 0)])
    start = Association.start_responder
    cut = []

    def start_once_out_of_memory(self, *args):
        if not cut:
            cut.append(args[-1])
            raise MemoryError("memory allocation failed")
        return start(self, *args)

    Association.start_responder = start_once_out_of_memory
    try:
        net.run(net.now + 4000)
    finally:
        Association.start_responder = start
    assert cut and established(net)
    b = net.nodes["b"].ep
    assert b.counters.get("no_memory") == 1, b.counters
    assert "stale_cookie" not in b.counters, b.counters
    ups = [t for t, e in net.nodes["a"].events if e.kind == "association_up"]
    assert len(ups) == 1 and ups[0] - cut[0] <= 1500, (ups, cut)  # one COOKIE-ECHO timeout


def test_a_deadline_that_moved_later_does_not_wake_the_endpoint_early():
    # one datagram arms send_timeout (300 ms); its feedback comes within a few ms and clears
    # it: the endpoint's next deadline is then the idle probe seconds away, not the 300 ms
    net = pair(a_uplinks=[("eth", "10.1.0.2", 10, 0)])
    net.run(net.now + 1000)
    assert established(net)
    a = net.nodes["a"].ep
    quiet = a.next_timer()
    assert quiet - net.now > 2000, (quiet, net.now)  # (the idle probe)
    a.send_data(b"one", net.now)
    net.flush()
    sent = net.now
    assert a.next_timer() == sent + a.prof["send_timeout"]
    net.run(net.now + 20)  # the feedback is in
    assert [p for t, p in net.nodes["b"].payloads] == [b"one"]
    assert a.next_timer() == quiet, (a.next_timer(), quiet, sent)


def test_after_set_peer_gives_a_new_key_the_peer_gets_in_under_it():
    # the server takes the board's new key by set_peer, the board by a reconfigure: the
    # board's INIT under the new key is answered (before: the server checked INITs with the
    # old key it had kept, and the board could not get in again)
    from simnet import up1

    net, a, b = up1()
    srv, board = net.nodes["b"].ep, net.nodes["a"].ep
    new = "ZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXp7fH1+f4CBgoM="
    srv.set_peer("a", {"psk": new}, net.now)
    cfg = dict(board.cfg)
    cfg["peers"] = {"b": dict(cfg["peers"]["b"], psk=new)}
    board.reconfigure(cfg, net.now)
    net.flush()
    assert srv.association("a") is None and board.association("b") is None
    board.connect("b", net.now)
    net.flush()
    net.run(net.now + 3000)
    assert srv.association("a") is not None and srv.association("a").state == 2, srv.counters
    assert "mac" not in srv.counters



def test_a_peer_removed_by_reconfigure_gets_its_shut_again_when_the_first_is_lost():
    # the SHUT of a peer gone from the configuration is retransmitted on its RTO like any
    # request (before: not before the association's earlier deadline, an idle probe seconds on)
    net = pair(a_uplinks=[("eth", "10.1.0.2", 10, 0)])
    net.run(net.now + 2000)
    a = net.nodes["a"].ep
    shuts = []

    def drop_first_shut(src, dst, data):
        if data[1] == wire.SHUT:
            shuts.append(net.now)
            return len(shuts) == 1
        return False

    net.drop = drop_first_shut
    cfg = dict(a.cfg)
    cfg["peers"] = {}
    a.reconfigure(cfg, net.now)
    net.flush()
    net.run(net.now + 3000)
    assert len(shuts) >= 2 and shuts[1] - shuts[0] <= a.prof["rto_max"], shuts
    assert [e.reason for e in net.events("a", "association_closed")] == ["shut"]

def test_a_restarted_peer_named_after_us_replaces_the_old_association_too():
    # "z" (after the server's name "m" in order) reboots and connects again: its COOKIE-ECHO
    # replaces the established association (the name order settles only two handshakes at
    # once; before: "collision", and z stayed locked out while the server held the old one)
    from simnet import Net, config
    from rng import Rng
    from mast.endpoint import Endpoint

    net = Net()
    net.node("z", config("z", {"m": {"addresses": ["10.9.0.1"]}}))
    net.node("m", config("m", ["z"]))
    net.uplink("m", "wan", ("10.9.0.1", 6278))
    net.uplink("z", "eth", ("10.1.0.2", 6278))
    net.nodes["z"].ep.connect("m", net.now)
    net.flush()
    net.run(net.now + 2000)
    old = net.nodes["m"].ep.association("z")
    assert old is not None and old.state == 2
    z = Endpoint(net.nodes["z"].ep.cfg, Rng("z-again"))  # a fresh endpoint: same name and key
    net.nodes["z"].ep = z
    z.uplink_up("eth", ("10.1.0.2", 6278), net.now)
    z.connect("m", net.now)
    net.flush()
    net.run(net.now + 2000)
    new = net.nodes["m"].ep.association("z")
    assert new is not old and new.state == 2 and z.association("m").state == 2
    assert [e.reason for e in net.events("m", "association_closed")] == ["replaced"]
