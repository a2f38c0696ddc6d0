# Secrets never show: not in the status document, nor in events.

import simnet
from simnet import pair
from runtime.status import endpoint_status


def test_status_events_and_errors_never_show_a_psk():
    net = pair()
    net.run(2000)
    for shown in (endpoint_status(net.nodes["a"].ep), net.nodes["a"].events, endpoint_status(net.nodes["b"].ep)):
        s = repr(shown)
        assert simnet.PSK not in s
        assert repr(bytes(range(32)))[2:-1] not in s


def test_both_ends_show_one_nonce_id_and_a_status_is_a_snapshot():
    net = pair()
    net.set_nat("a", "cell", ("100.64.0.9", 31000))  # b sees a's cell from this address
    net.run(2000)
    sa, sb = endpoint_status(net.nodes["a"].ep), endpoint_status(net.nodes["b"].ep)
    nid = sa["associations"][0]["nonce_id"]
    assert nid is not None and len(nid) == 16
    assert sb["associations"][0]["nonce_id"] == nid  # (docs: the same on both ends)
    xa, xb = sa["associations"][0], sb["associations"][0]
    assert xa["label"] != xa["peer_label"]  # each end's label is the other's peer_label
    assert (xa["label"], xa["peer_label"]) == (xb["peer_label"], xb["label"])
    assert (xa["initiator"], xb["initiator"]) == (True, False)  # a called b
    assert sorted(x["path"] for x in xa["paths"]) == ["cell>10.9.0.1:6278", "eth>10.9.0.1:6278",
                                                      "wifi>10.9.0.1:6278"]
    assert xa["primary"] == "eth>10.9.0.1:6278"  # a's best uplink (priority 10) to b's address
    assert xb["rx_highest"] == xa["tx_seq"] - 1  # (tx_seq: the next to send) b heard all of a
    ups = sa["uplinks"]
    assert (ups["cell"]["public"], ups["eth"]["public"]) == ("100.64.0.9:31000", None)  # NAT seen
    assert (ups["cell"]["priority"], ups["cell"]["cost"]) == (30, 10)
    rtts = [x["rtt_ms"] for x in sa["associations"][0]["paths"] if x["state"] == "active"]
    assert rtts and rtts[0] is not None and rtts[0] > 0
    before = dict(sb["counters"])
    net.nodes["b"].ep.receive("wan", ("10.7.0.1", 9), b"\x00", net.now)  # counted as a drop
    assert endpoint_status(net.nodes["b"].ep)["counters"] != before
    assert sb["counters"] == before  # the document taken earlier did not change under its reader
