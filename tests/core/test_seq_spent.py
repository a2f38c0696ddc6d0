# An association whose own sequence numbers are spent (2^48 packets under one set of keys):
# nothing more goes out under its keys, and the endpoint's timers go on (found by fuzzing on
# 32-bit). A keepalive or probe at SEQ_MAX + 1 raised struct.error out of handle_timer (the
# header's seq is 48 bits): a runtime's loop would have ended there.
from mast import wire
from simnet import up1


def _from_a(net):
    seen = []

    def drop(s, d, data):
        if s == "a":
            seen.append(data[1])
        return True  # the peer hears nothing: a keeps probing

    net.drop = drop
    return seen


def test_the_last_seq_goes_out_once_then_nothing_and_a_send_closes_it():
    net, a, b = up1()
    ep = net.nodes["a"].ep
    a.seq = wire.SEQ_MAX - 1
    seen = _from_a(net)
    assert ep.send_data(b"x", net.now, "b")  # seq SEQ_MAX - 1
    net.run(net.now + 120000)  # keepalives and probes come due: one more (SEQ_MAX), then none
    assert a.seq == wire.SEQ_MAX + 1 and len(seen) == 2, seen
    assert not ep.send_data(b"y", net.now, "b")  # spent: closed, "exhausted"
    net.flush()
    assert [e.reason for e in net.events("a", "association_closed")] == ["exhausted"]


def test_an_association_past_its_last_seq_sends_nothing_and_its_timers_go_on():
    net, a, b = up1()
    a.seq = wire.SEQ_MAX + 1  # (spent by its keepalives and probes)
    seen = _from_a(net)
    net.run(net.now + 120000)
    assert seen == [] and a.seq == wire.SEQ_MAX + 1
