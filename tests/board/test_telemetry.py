# The example app (board/telemetry.py) against a stand-in for the hook's mast object: one
# record per interval while the association is up, none while it is down, what was refused
# counted, and after a stall (a long flash write) one record and the schedule moved on, not
# a burst of the ones missed. Plain test functions: pytest and MicroPython.

from board.telemetry import Telemetry
from runtime import stream


class _Mast:
    def __init__(self):
        self.is_up = True
        self.accept = True
        self.sent = []

    def up(self, peer=None):
        return self.is_up

    def send(self, payload, peer=None):
        if not self.accept:
            return False
        self.sent.append(bytes(payload))
        return True


def _seqs(mast):
    return [stream.decode(p)[0] for p in mast.sent]


def test_one_record_an_interval_while_up_none_while_down_and_the_refused_counted():
    mast = _Mast()
    app = Telemetry(mast, interval_ms=1000)
    for t in range(0, 3000, 100):
        app.tick(t)
    assert _seqs(mast) == [0, 1, 2]
    assert mast.sent[0].endswith(b"}") and b'"free":' in mast.sent[0]
    mast.is_up = False
    for t in range(3000, 6000, 100):
        app.tick(t)
    assert len(mast.sent) == 3 and app.status()["sent"] == 3  # nothing sent into a dead association
    mast.is_up = True
    mast.accept = False  # the runtime refuses (no path yet, a full queue)
    for t in range(6000, 8000, 100):
        app.tick(t)
    mast.accept = True
    for t in range(8000, 9000, 100):
        app.tick(t)
    assert app.status() == {"interval_ms": 1000, "seq": 6, "sent": 4, "refused": 2, "received": 0}
    assert _seqs(mast) == [0, 1, 2, 5]  # the refused ones used their numbers: the far end counts them lost


def test_after_a_stall_one_record_goes_and_the_next_is_an_interval_later():
    mast = _Mast()
    app = Telemetry(mast, interval_ms=1000)
    assert app.tick(0) == 1000
    assert app.tick(10500) == 1000  # ten intervals late (a long flash write): one record now
    for t in range(10600, 11500, 100):
        assert app.tick(t) > 0
    assert _seqs(mast) == [0, 1], _seqs(mast)  # not the nine missed in a burst
    app.tick(11500)
    assert _seqs(mast) == [0, 1, 2]


def test_the_app_leaves_the_test_stream_s_code_unloaded_and_writes_the_header_it_reads():
    # the header is runtime/stream.py's (stream.decode reads it), written by the app itself:
    # importing that module for one line kept all its code in a board's heap for good
    import builtins
    import sys

    seen = []
    real = builtins.__import__

    def record(name, *args):
        seen.append((name, tuple(args[2] or ()) if len(args) > 2 else ()))
        return real(name, *args)

    saved = sys.modules.pop("board.telemetry", None)
    builtins.__import__ = record
    try:
        mod = __import__("board.telemetry", None, None, ("Telemetry",))
        mast = _Mast()
        app = mod.Telemetry(mast, interval_ms=20)
        for t in (0, 20, 40, 2 ** 32 + 60):
            app.tick(t)
    finally:
        builtins.__import__ = real
        if saved is not None:
            sys.modules["board.telemetry"] = saved
    assert [x for x in seen if "stream" in x[0] or "stream" in x[1]] == [], seen
    assert [stream.decode(p) for p in mast.sent] == [(0, 0), (1, 20), (2, 40), (3, 2 ** 32 + 60)]
