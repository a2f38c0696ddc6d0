# More protocol edges of mast/assoc.py (beside test_assoc_gaps.py; a module of its own for a
# board-sized heap): the IPv6 unspecified address in a SET, each end's first RTT sample,
# per-path counts in status, no path across address families, redundant mode's second copy and
# its failure detection, and a handshake started over.
from simnet import Net, Stream, config, pair, established, count_received
from mast import wire


def _sealed_set(a, lst):
    """a's next SET listing lst, sealed with its keys (as a peer that holds them would)."""
    a.tsn += 1
    pkt = wire.seal(a.tx_mac, wire.SET, a.peer_label, a.seq, wire.enc_set(a.tsn, lst))
    a.seq += 1
    return pkt


def test_a_set_listing_the_ipv6_unspecified_address_is_refused_as_the_ipv4_one_is():
    net = pair(a_uplinks=[("eth", "10.1.0.2", 10, 0)])
    net.run(2000)
    a = net.nodes["a"].ep.association()
    b_ep = net.nodes["b"].ep
    for unspec in ("::", "0.0.0.0"):
        lst = [(("10.1.0.2", 6278), 10, 0), ((unspec, 6278), 20, 0)]
        b_ep.receive("wan", ("10.1.0.2", 6278), _sealed_set(a, lst), net.now)
        net.flush()
        net.run(net.now + 100)
    assert b_ep.counters.get("bad_addresses") == 2, b_ep.counters
    errs = [e.code for e in net.events("a", "peer_error")]
    assert errs == [wire.ERR_BAD_ADDRESSES] * 2, errs
    assert sorted(b_ep.association("a").remotes) == [("10.1.0.2", 6278)]


def test_each_ends_first_path_up_carries_the_handshakes_round_trip():
    # the responder's: INIT-ACK to COOKIE-ECHO; the initiator's: COOKIE-ECHO to COOKIE-ACK
    net = pair(a_uplinks=[("eth", "10.1.0.2", 10, 0)])  # 1 ms each way on each side: 4 ms
    net.run(net.now + 2000)
    for node in ("b", "a"):
        ups = net.events(node, "path_up")
        assert ups and ups[0].rtt_ms == 4, (node, [(e.path, e.rtt_ms) for e in ups])


def test_status_counts_the_packets_each_path_received():
    from runtime.status import association_status

    net = pair(a_uplinks=[("eth", "10.1.0.2", 10, 0)])
    net.run(net.now + 2000)
    s = Stream(net, "a", rate=100)
    net.run(net.now + 500)
    s.stop()
    net.run(net.now + 100)
    paths = association_status(net.nodes["b"].ep.association("a"))["paths"]
    assert len(paths) == 1 and paths[0]["rx"] >= s.seq, (paths, s.seq)


def test_no_path_joins_an_ipv4_uplink_to_an_ipv6_address():
    from runtime.status import association_status

    net = Net(0)
    net.node("a", config("a", {"b": {"addresses": ["10.9.0.1:6278"]}}))
    net.node("b", config("b", ["a"]))
    net.uplink("b", "wan", ("10.9.0.1", 6278), delay=1)
    net.uplink("b", "wan6", ("2001:db8::1", 6278), delay=1)
    net.uplink("a", "eth", ("10.1.0.2", 6278), delay=1)
    net.nodes["a"].ep.connect("b", net.now)
    net.flush()
    net.run(net.now + 5000)
    assert established(net)
    a = net.nodes["a"].ep.association("b")
    assert ("2001:db8::1", 6278) in a.remotes  # known, but no path reaches it
    names = [p["path"] for p in association_status(a)["paths"]]
    assert names == ["eth>10.9.0.1:6278"], names
    assert "wrong_family" not in net.nodes["b"].ep.counters


def test_redundant_mode_with_a_single_path_sends_each_datagram_once():
    # (no other ACTIVE path: no second copy, least of all on the same path again)
    net = pair(a_uplinks=[("eth", "10.1.0.2", 10, 0)], mode="redundant")
    net.run(net.now + 2000)
    eth = net.link("a", "eth")
    sent = eth.sent
    s = Stream(net, "a", rate=100)
    net.run(net.now + 300)
    s.stop()
    net.run(net.now + 100)
    assert count_received(net.nodes["b"]) == s.seq
    assert net.nodes["b"].ep.counters.get("duplicate", 0) == 0
    assert eth.sent - sent < s.seq + 10, (eth.sent - sent, s.seq)  # (a probe or two beside)


def test_in_redundant_mode_a_second_path_that_goes_silent_is_found_out_as_the_primary_is():
    # the copies on wifi get no feedback once it is cut: wifi turns SUSPECT after send_timeout
    # and fails within a second, as a primary would (before: only its idle probe, 5 s on)
    net = pair(a_uplinks=[("eth", "10.1.0.2", 10, 0), ("wifi", "10.2.0.2", 20, 0)], mode="redundant")
    net.run(net.now + 3000)
    s = Stream(net, "a", rate=100)
    net.run(net.now + 500)
    net.link("a", "wifi").cut = True
    cut = net.now
    net.run(net.now + 4000)
    s.stop()
    down = [t for t, e in net.nodes["a"].events if e.kind == "path_down" and t >= cut]
    assert [e.path.split(">")[0] for t, e in net.nodes["a"].events if e.kind == "path_down"] == ["wifi"]
    assert down[0] - cut <= 1000, (down, cut)


def test_an_initiator_that_starts_over_shows_no_nonce_id_of_the_old_attempt():
    # every COOKIE-ECHO lost: after 4 tries a starts over with a new INIT; until it is
    # answered, status names no association (before: the abandoned attempt's nonce id)
    from runtime.status import association_status

    net = pair(a_uplinks=[("eth", "10.1.0.2", 10, 0)])
    net.drop = lambda src, dst, data: data[1] == wire.COOKIE_ECHO
    net.run(net.now + 100)
    a = net.nodes["a"].ep.association("b")
    st = association_status(a)
    assert st["state"] == "cookie-echoed" and st["nonce_id"] is not None
    net.drop = lambda src, dst, data: data[1] in (wire.COOKIE_ECHO, wire.INIT)
    for _ in range(300):  # (100 ms steps, 30 s at most)
        net.run(net.now + 100)
        if association_status(a)["state"] == "cookie-wait":
            break
    st = association_status(a)
    assert st["state"] == "cookie-wait" and st["nonce_id"] is None, st
