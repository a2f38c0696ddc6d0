# A board's heap can be full at any allocation: MicroPython raises MemoryError, and the runtime
# counts it and goes on (runtime/driver.py poll). The core's timers allocate before they change
# anything, so one such error never loses an association's timer: seen at -X heapsize=152K, a
# MemoryError in the heap of deadlines (endpoint._settle's heappush) left the association's
# deadline out of it for good. Plain test functions: pytest and MicroPython.

import mast.endpoint as E
from simnet import up1


class _FullOnce:
    """heappush, on a heap that is full the first time (MemoryError), then has room."""

    def __init__(self):
        self.real = E.heappush
        self.armed = True

    def __call__(self, heap, item):
        if self.armed:
            self.armed = False
            raise MemoryError("memory allocation failed, allocating 256 bytes")
        self.real(heap, item)


def _with_a_full_heap_once(fn, *args):
    """fn(*args) with heappush failing once; whether it raised MemoryError."""
    full = _FullOnce()
    E.heappush = full
    try:
        fn(*args)
        raised = False
    except MemoryError:
        raised = True
    finally:
        E.heappush = full.real
    return raised, full.armed


def test_a_full_heap_while_the_deadlines_settle_loses_no_timer():
    net, a, b = up1()
    ep = net.nodes["a"].ep
    for _ in range(3):  # a timer runs (a probe, say), then its next deadline is settled
        t = ep.next_timer()
        assert t is not None and t == a.next_timer()
        net.now = t
        ep.handle_timer(t)  # (the association's entry is taken: its deadline needs a new one)
        raised, armed = _with_a_full_heap_once(ep.next_timer)
        assert raised and not armed
        assert ep.next_timer() == a.next_timer() is not None  # (before: None, the timer lost)
    net.run(net.now + 3000)  # and the association goes on: probes answered, still up
    assert a.state == 2 and b.state == 2 and ep.next_timer() == a.next_timer()


def test_a_full_heap_while_timers_are_taken_loses_none():
    net, a, b = up1()
    ep = net.nodes["a"].ep
    t = ep.next_timer()
    net.now = t
    due = ep._due
    ep._due = _NoRoomList()  # the list of due associations has no room to grow
    try:
        try:
            ep.handle_timer(t)
            raised = False
        except MemoryError:
            raised = True
    finally:
        ep._due = due
    assert raised and ep.next_timer() == t  # still due: taken on the next try
    ep.handle_timer(t)
    assert ep.next_timer() is not None and ep.next_timer() > t


class _NoRoomList(list):
    def append(self, x):
        raise MemoryError("memory allocation failed, allocating 64 bytes")
