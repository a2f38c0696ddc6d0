# A full heap where the core must still keep its word (found by fuzzing the core on MicroPython
# at a 128K heap): an association that closes, and a drop reason counted for the first time.
from simnet import up1


class _Full(list):
    """An event queue whose heap is full when the association_closed event comes."""

    refused = 0

    def append(self, e):
        if e.kind == "association_closed" and not self.refused:
            self.refused += 1
            raise MemoryError
        list.append(self, e)


def test_a_full_heap_at_the_closed_event_leaves_the_timers_working():
    net, a, b = up1()
    b_ep = net.nodes["b"].ep
    full = _Full()
    b_ep.events = full
    net.nodes["a"].ep.close(net.now)  # SHUT; b closes on the SHUT-COMPLETE
    net.flush()
    net.run(net.now + 100)
    assert full.refused == 1 and b_ep.counters.get("no_memory") == 1, b_ep.counters
    b_ep.next_timer()  # raised TypeError (closed_at None) from here on
    net.run(net.now + 60000)  # its linger ends: forgotten
    assert b_ep.association("a") is None and not b_ep.assocs


class _NoNewKeys:
    """Counters whose table has no room for one more key (a dict at its size's step)."""

    def __init__(self, d):
        self.d = d

    def get(self, k, default=None):
        return self.d.get(k, default)

    def __getitem__(self, k):
        return self.d[k]

    def __setitem__(self, k, v):
        if k not in self.d:
            raise MemoryError
        self.d[k] = v


def test_a_full_heap_at_a_reasons_first_count_is_not_raised_out_of_receive():
    net, a, b = up1()
    b_ep = net.nodes["b"].ep
    assert "bad_version" not in b_ep.counters
    rx = b_ep.counters["rx"]
    b_ep.counters = _NoNewKeys(b_ep.counters)
    bad = b"\x07" + bytes(39)  # (version 7: dropped as bad_version, a reason not counted yet)
    b_ep.receive("wan", ("10.1.0.2", 6278), bad, net.now)  # raised MemoryError
    b_ep.counters = b_ep.counters.d
    assert b_ep.counters["rx"] == rx + 1 and "bad_version" not in b_ep.counters
    b_ep.receive("wan", ("10.1.0.2", 6278), bad, net.now)  # room again: counted
    assert b_ep.counters["rx"] == rx + 2 and b_ep.counters["bad_version"] == 1
