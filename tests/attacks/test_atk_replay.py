"""Replay against the endpoint process, in a network namespace: everything the peer sent
(handshake, DATA, a SET, probes and their answers) is captured and sent again: in order,
shuffled, from other source addresses, after the association was SHUT, and to a restarted
endpoint.

Nothing replayed is accepted: no datagram reaches the app twice, the association's state does
not move, no new association appears, and every replayed datagram is counted as a drop
(`duplicate`/`too_old` inside an association, `unknown_label` after it, `stale_cookie` or
`bad_cookie` for COOKIE-ECHO). Nothing is answered, except an INIT, which is answered
statelessly by design (an INIT-ACK to where it came from, smaller than the INIT).

During each replay the fuzzer's own core is paused (`quiet`), so that the target receives the
replayed datagrams and one sync PROBE, and nothing else: the counts are exact.
"""

import random
import time

import pytest

import atklib
import fuzzgen
import fuzzrun
from conftest import needs_netns

pytestmark = needs_netns
N_DATA = 100


def start(space, tmp_path, runtime, mpy_dir, name="target"):
    t = atklib.Target(atklib.target_doc(connect_ini=False), str(tmp_path), name=name,
                      runtime=runtime, heapsize="176K", mpy_dir=mpy_dir, ns=space)
    t.wait_event("started", 60)
    return t


def legit_traffic(fz):
    """What a peer does: handshake, 100 datagrams, a SET, a few probes. Returns the capture
    (every datagram sent to the target) and the payloads."""
    fz.capture = []
    assert fz.handshake(20)
    b = fuzzgen.TableBuilder()
    payloads = [b"legit-%03d" % i for i in range(N_DATA)]
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


def replay(fz, t, packets, socks):
    """Send packets (each from socks[i % len(socks)]) with the core paused, then a sync.
    -> (counter deltas, accepted delta, data events delta, answers heard by type)."""
    before = t.status()["counters"]
    data0 = t.events.get("data", 0)
    fz.quiet = True
    fz.heard = {}
    try:
        for i, p in enumerate(packets):
            fz.send(socks[i % len(socks)], p)
        synced = fz.sync() if fz.ctx.assoc is not None else None
        # everything sent has been counted (with no association to sync on, the status
        # could overtake datagrams still queued); then a moment for late answers
        want = before.get("rx", 0) + len(packets) + (1 if synced is not None else 0)
        end = time.monotonic() + 20
        while t.status()["counters"].get("rx", 0) < want and time.monotonic() < end:
            fz.pump(0.05)
        fz.pump(0.2)
    finally:
        fz.quiet = False
    after = t.status()["counters"]
    delta = dict((k, after.get(k, 0) - before.get(k, 0)) for k in after)
    return delta, synced, t.events.get("data", 0) - data0, dict(fz.heard)


def check_refused(delta, packets, syncs):
    """Every replayed datagram dropped, except INITs: those are answered statelessly (and
    counted accepted), which creates nothing."""
    inits = sum(1 for p in packets if p[1] == fuzzgen.INIT)
    assert delta.get("rx") == len(packets) + syncs, delta
    assert delta.get("accepted", 0) == syncs + inits, delta  # our sync PROBE, the INITs
    assert atklib.drops(delta) - delta.get("accepted", 0) == len(packets) - inits, delta


def check_answers(heard, packets, from_path):
    """What the replays got back: an INIT-ACK per INIT at most; and, for DATA replayed on the
    association's validated path, KEEPALIVE feedback at most once per `ack` interval (100 ms:
    a redundant copy of DATA still tells that path works; section 10)."""
    inits = sum(1 for p in packets if p[1] == fuzzgen.INIT)
    assert set(heard) <= {fuzzgen.INIT_ACK, fuzzgen.KEEPALIVE}, heard
    assert heard.get(fuzzgen.INIT_ACK, 0) <= inits, heard
    assert heard.get(fuzzgen.KEEPALIVE, 0) <= (3 if from_path else 0), heard


@pytest.mark.parametrize("runtime", ("cpython", "micropython"))
def test_replays_in_order_shuffled_from_other_addresses_after_shut_and_restart_are_refused(
        space, tmp_path, runtime, request):
    mpy_dir = request.getfixturevalue("atk_mpy") if runtime == "micropython" else None
    with atklib.inside(space):
        fz = fuzzrun.Fuzzer("replay", 32, 3.0)
    t = start(space, tmp_path, runtime, mpy_dir)
    fz.alive = t.alive
    try:
        cap, payloads = legit_traffic(fz)
        assert t.events.get("data", 0) == N_DATA
        st = t.status()
        assoc = [a for a in st["associations"] if a["peer"] == "fz"][0]
        assert "10.77.0.1:6278" in assoc["remotes"]
        assert len(cap) >= N_DATA + 5

        # 1. in order, from where they came
        delta, synced, data, heard = replay(fz, t, cap, [fz.main])
        assert synced and data == 0, (delta, heard)
        check_refused(delta, cap, 1)
        check_answers(heard, cap, True)
        assert delta.get("duplicate", 0) + delta.get("too_old", 0) + delta.get("replay", 0) >= N_DATA

        # 2. shuffled, twice over
        mixed = cap * 2
        random.Random(7).shuffle(mixed)
        delta, synced, data, heard = replay(fz, t, mixed, [fz.main])
        assert synced and data == 0, (delta, heard)
        check_refused(delta, mixed, 1)
        check_answers(heard, mixed, True)

        # 3. from 8 other source addresses: no new address learnt either
        delta, synced, data, heard = replay(fz, t, cap, fz.extra)
        assert synced and data == 0, (delta, heard)
        check_refused(delta, cap, 1)
        check_answers(heard, cap, False)
        assoc2 = [a for a in t.status()["associations"] if a["peer"] == "fz"][0]
        assert (assoc2["label"], assoc2["nonce_id"]) == (assoc["label"], assoc["nonce_id"])
        assert sorted(assoc2["remotes"]) == sorted(assoc["remotes"])

        # 4. after the association was SHUT (the peer's own graceful close)
        fz.ep.close(fuzzrun.now_ms())
        fz.flush()
        end = time.monotonic() + 10
        while any(a["peer"] == "fz" for a in t.status()["associations"]):
            assert time.monotonic() < end, "the SHUT did not close the association"
            fz.pump(0.1)
        fz.ctx.assoc = None
        delta, synced, data, heard = replay(fz, t, cap, [fz.main])
        assert data == 0, (delta, heard)
        check_refused(delta, cap, 0)
        check_answers(heard, cap, False)
        assert not any(a["peer"] == "fz" for a in t.status()["associations"])
        assert t.events.get("association_up", 0) == 1

        # 5. to a restarted endpoint (a new process, a new cookie secret)
        assert t.stop(30) == 0
        t = start(space, tmp_path, runtime, mpy_dir, name="restarted")
        fz.alive = t.alive
        delta, synced, data, heard = replay(fz, t, cap, [fz.main])
        assert data == 0, (delta, heard)
        check_refused(delta, cap, 0)
        check_answers(heard, cap, False)
        assert delta.get("bad_cookie", 0) + delta.get("stale_cookie", 0) >= 1, delta
        assert t.status()["associations"] == [] and t.events.get("association_up", 0) == 0
        assert t.stop(30) == 0, t.stderr_tail()
    finally:
        if t.alive():
            t.stop(10)
        fz.close()
