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
