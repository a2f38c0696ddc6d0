# Redundant mode (docs/PROTOCOL.md section 11: "nothing is lost while either path works") with a
# second path slower than send_timeout: a cellular backup at 600 ms RTT beside an Ethernet
# primary that loses 10 % of its packets. The backup's feedback comes back after 600 ms, so at
# the start of every burst it turns suspect (no feedback within 300 ms, section 10), and a
# suspect path is still used. Before, the copies went only on an active path: they stopped
# until the backup's probe or feedback came back, and what the primary lost then was lost
# (18 of 1,005 datagrams here).

from simnet import pair, Stream

TWO = [("eth", "10.1.0.2", 10, 0), ("wifi", "10.2.0.2", 20, 0)]


def _bursts(one_way, loss=10, n=5):
    net = pair(a_uplinks=TWO, mode="redundant")
    net.run(net.now + 3000)
    net.link("a", "wifi").delay = one_way
    net.run(net.now + 20000)  # (its RTT learnt)
    net.link("a", "eth").loss = loss
    s = Stream(net, "a", rate=100)
    for _ in range(n):  # bursts of 2 s, 10 s apart
        s.next = net.now
        net.run(net.now + 2000)
        s.stop()
        net.run(net.now + 10000)
    b = net.nodes["b"]
    return [i for i in range(s.seq) if b.counts[i] == 0], s.seq, net


def test_redundant_mode_loses_nothing_beside_a_backup_slower_than_send_timeout():
    lost, sent, net = _bursts(299)  # RTT 600 ms (b's side adds 1 ms each way)
    assert sent == 1005 and lost == [], lost
    assert net.nodes["b"].ep.counters.get("duplicate", 0) > 800  # (the copies went)


def test_the_same_beside_a_backup_at_900ms():
    lost, sent, net = _bursts(449)
    assert sent == 1005 and lost == [], lost
