"""Replay against the endpoint process (used by test_atk_replay.py and `make fuzz`): everything
the peer sent (handshake, DATA, a SET, probes and their answers) is captured and sent again: in
order, shuffled, from other source addresses, after the association was SHUT, and to a
restarted endpoint. During each replay the fuzzer's own core is paused (`quiet`), so that the
target receives the replayed datagrams and one sync PROBE, and nothing else: counts are exact.
"""

import random
import time

import atklib
import fuzzgen
import fuzzrun

N_DATA = 100


def start(space, tmp_path, runtime, mpy_dir, name="target"):
    t = atklib.Target(atklib.target_doc(connect_ini=False), str(tmp_path), name=name,
                      runtime=runtime, heapsize="176K", mpy_dir=mpy_dir, ns=space)
    t.wait_event("started", 60)
    return t


def legit_traffic(fz, n_data=N_DATA):
    """What a peer does: handshake, 100 datagrams, a SET, a few probes. Returns the capture
    (every datagram sent to the target) and the payloads."""
    fz.capture = []
    assert fz.handshake(20)
    b = fuzzgen.TableBuilder()
    payloads = [b"legit-%05d" % i for i in range(n_data)]
    for i, p in enumerate(payloads):
        fz.send_auth(fuzzgen.DATA, p)
        if i % 20 == 19:
            assert fz.sync()
    a = fz.ctx.assoc
    a.my_tsn = (a.my_tsn + 1) & 0xFFFFFFFF
    fz.send_auth(fuzzgen.SET, b.set_body(a.my_tsn, [(fuzzrun.MAIN, 10, 0), (("10.77.0.1", 6278), 20, 0)]))
    assert fz.sync()
    fz.pump(0.3)  # the target probes 10.77.0.1 and our address; the core answers
    cap, fz.capture = fz.capture, None
    return cap, payloads


CHUNK = 32  # replayed datagrams between two syncs: well inside any receive buffer


def replay(fz, t, packets, socks):
    """Send packets (each from socks[i % len(socks)]) with the core paused, CHUNK at a time:
    after each chunk a sync PROBE on the association if there is one, else a wait until the
    target has counted them. -> (counter deltas, syncs: None without an association, else
    how many were sent (all answered, or False), data events delta, answers heard by type
    and "seconds": how long the replay took)."""
    before = t.status()["counters"]
    data0 = t.events.get("data", 0)
    t0 = time.monotonic()
    fz.quiet = True
    fz.heard = {}
    syncs = 0 if fz.ctx.assoc is not None else None
    try:
        for c in range(0, len(packets), CHUNK):
            for i in range(c, min(c + CHUNK, len(packets))):
                fz.send(socks[i % len(socks)], packets[i])
            if syncs is not None:
                if not fz.sync():
                    syncs = False
                    break
                syncs += 1
            else:  # no association to sync on: wait until everything sent is counted
                want = before.get("rx", 0) + min(c + CHUNK, len(packets))
                end = time.monotonic() + 20
                while t.status()["counters"].get("rx", 0) < want and time.monotonic() < end:
                    fz.pump(0.01)
        fz.pump(0.2)  # a moment for late answers
    finally:
        fz.quiet = False
    after = t.status()["counters"]
    delta = dict((k, after.get(k, 0) - before.get(k, 0)) for k in after)
    heard = dict(fz.heard)
    heard["seconds"] = time.monotonic() - t0
    return delta, syncs, t.events.get("data", 0) - data0, heard


def run_replays(space, workdir, runtime="cpython", mpy_dir=None, n_data=N_DATA, rounds=1):
    """The whole scenario; -> {"legit": ..., step name: {"delta", "synced", "data", "heard",
    "packets"}, ...}. rounds: how many times the shuffled replay is repeated."""
    with atklib.inside(space):
        fz = fuzzrun.Fuzzer("replay", 32, 3.0)
    t = start(space, workdir, runtime, mpy_dir)
    fz.alive = t.alive
    out = {"runtime": runtime}
    try:
        cap, payloads = legit_traffic(fz, n_data)
        st = t.status()
        assoc = [a for a in st["associations"] if a["peer"] == "fz"][0]
        out["legit"] = {"packets": len(cap), "data_events": t.events.get("data", 0),
                        "assoc": assoc}

        def step(name, packets, socks):
            delta, synced, data, heard = replay(fz, t, packets, socks)
            out[name] = {"packets": packets, "delta": delta, "synced": synced, "data": data,
                         "heard": heard}

        step("in_order", cap, [fz.main])
        mixed = cap * (2 * rounds)
        random.Random(7).shuffle(mixed)
        step("shuffled", mixed, [fz.main])
        step("other_addresses", cap, fz.extra)
        out["assoc_after"] = [a for a in t.status()["associations"] if a["peer"] == "fz"][0]
        fz.ep.close(fuzzrun.now_ms())
        fz.flush()
        end = time.monotonic() + 10
        while any(a["peer"] == "fz" for a in t.status()["associations"]):
            assert time.monotonic() < end, "the SHUT did not close the association"
            fz.pump(0.1)
        fz.ctx.assoc = None
        step("after_shut", cap, [fz.main])
        out["after_shut_associations"] = [a["peer"] for a in t.status()["associations"]]
        out["after_shut_ups"] = t.events.get("association_up", 0)
        out["first_exit"] = t.stop(30)
        t = start(space, workdir, runtime, mpy_dir, name="restarted")
        fz.alive = t.alive
        step("after_restart", cap, [fz.main])
        out["after_restart_associations"] = t.status()["associations"]
        out["after_restart_ups"] = t.events.get("association_up", 0)
        out["second_exit"] = t.stop(30)
        out["stderr"] = t.stderr_tail()
    finally:
        if t.alive():
            t.stop(10)
        fz.close()
    return out
