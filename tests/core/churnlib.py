# What the churn tests (tests/core/test_churn*.py) measure: the sizes of everything an
# endpoint and its associations hold, and on MicroPython the heap in use after a collection.
# Each churn test is in a small module of its own, importing only this: the core test
# modules are near the edge of the 128K heap of the MicroPython runs.

import gc

SRV = ("10.9.0.1", 6278)


def _sizes(ep):
    """The sizes of everything the endpoint and its associations hold."""
    s = [len(ep.uplinks), len(ep.assocs), len(ep.by_peer), len(ep.out), len(ep.events),
         len(ep.counters), len(ep._last_stamp), len(ep._connect_addrs), len(ep._init_macs),
         len(ep._heap), len(ep._dirty), len(ep._due), len(ep.cfg["peers"])]
    for k in ep.assocs:
        a = ep.assocs[k]
        n = 0
        for r in a.remotes.values():
            n += len(r.paths)
        s += [len(a.remotes), len(a.plist), n, len(a.peer_list), len(a.withdrawn), len(a.ring)]
    return s


def _heap():
    """Bytes in use after a collection (MicroPython), else None; None too where a collection
    frees nothing until the test returns (the wasm32 build: tests/test_micropython32_core.py)."""
    if not hasattr(gc, "mem_alloc"):
        return None
    gc.collect()
    a = gc.mem_alloc()
    x = bytearray(256)  # (small: a heap the test has cut into pieces still has room for it)
    x = None  # noqa: F841
    gc.collect()
    return gc.mem_alloc() if gc.mem_alloc() < a + 256 else None
