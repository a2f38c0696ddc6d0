# A configuration the caller has checked (Endpoint(cfg, ..., checked=True), reconfigure(...,
# checked=True)): a board checks its configuration with board/settings.py and hands the result
# on, so that the endpoint takes it as it is and the schema's code stays out of the heap
# (board/main.py ONCE_MP). Plain test functions: pytest and MicroPython.

import simnet
from simnet import pair


def test_a_configuration_the_caller_checked_is_taken_without_the_schema():
    import sys
    import mast
    from mast import config
    from mast.endpoint import Endpoint

    def rand(n):
        return b"\x07" * n

    def without_schema(fn):
        """fn() with the schema forgotten, as a board leaves it between two ops; whether
        fn loaded it again."""
        sys.modules.pop("mast.config")
        try:
            fn()
            return "mast.config" in sys.modules
        finally:
            sys.modules["mast.config"] = mast.config = config

    cfg = config.validate({"name": "a", "profile": "fast", "peers": {"b": {"psk": simnet.PSK}}})
    made = []
    assert not without_schema(lambda: made.append(Endpoint(cfg, rand, checked=True)))
    assert made[0].cfg is cfg and made[0].prof["ack"] == 20
    del made[:]
    net = pair()
    net.run(2000)
    a = net.nodes["a"].ep
    nonce = a.association().nonce
    cfg = config.validate(dict(a.cfg, profile="fast"))
    assert not without_schema(lambda: a.reconfigure(cfg, net.now, True))
    assert a.cfg is cfg and a.association().nonce == nonce and a.association().ep.prof["ack"] == 20
    # without checked, the same calls check it again
    for call in (lambda bad: a.reconfigure(bad, net.now), lambda bad: Endpoint(bad, rand)):
        try:
            call(dict(cfg, replay_window=1000))
            assert False, "accepted a bad config"
        except ValueError as e:
            assert str(e).startswith("replay_window: ")
    assert a.cfg is cfg
