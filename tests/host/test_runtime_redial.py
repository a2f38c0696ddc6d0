"""An association this side initiated that closed but by our own close is opened again
(runtime/driver.py REDIAL_MS): the server's graceful restart (its SHUT), INITs unanswered while
it was down. Boards and `mast endpoint` had no association from then on until a reboot or a
`connect`. On real sockets (127.0.0.x): the runtime in this process (CPython, a clock of the
test's own where the wait is minutes), and a board (the whole firmware as .mpy on the
simulated board, MicroPython) streaming telemetry to a server that shuts and comes back.

Each wait is jittered (runtime/driver.py jitter: between half and all of it), so that the
peers one server's restart shut do not all come back in the same millisecond; a redial whose
connect finds no address is tried again later (counted `redial_failed`).

Each waits on a condition, bounded in time and turns."""

import os
import random
import socket
import subprocess
import time

from mast import policy
from mast.endpoint import Endpoint
from runtime.driver import Runtime, REDIAL_MS, jitter

from test_runtime import PSK, pair, run, established, close_all
from test_runtime_restart import board_and_server_back

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BOUND_S = REDIAL_MS / 1000 + 10  # the wait, then a few seconds for the handshake


def _server(bind):
    b = Runtime(Endpoint({"name": "b", "peers": {"a": {"psk": PSK, "initiate": False}}}, os.urandom))
    b.add_uplink("wan", bind)
    return b


def _kinds(events, kind):
    return [e for e in events if e.kind == kind]


def test_an_initiator_opens_a_new_association_after_its_server_shut_the_old_one_and_came_back():
    a, b = pair({"eth": {"bind": ("127.0.0.22", 0)}})
    b2 = None
    try:
        a.connect("b")
        assert run([a, b], lambda: established(a, "b") and established(b, "a"))
        old = a.ep.association("b")
        b.close()  # a graceful restart: SHUT ...
        assert run([a, b], lambda: a.ep.association("b") is None)
        bind = b.uplinks["wan"].bind
        b.shutdown()
        b2 = _server(bind)  # ... and the server back on the same address
        t0 = time.monotonic()
        assert run([a, b2], lambda: established(a, "b") and established(b2, "a"),
                   limit_s=BOUND_S + 10, turns=100000)
        took = time.monotonic() - t0
        assert took < BOUND_S, took
        assert a.ep.association("b") is not old and a.counters.get("redial") == 1, a.counters
        evs = a.events()
        assert [e.reason for e in _kinds(evs, "association_closed")] == ["peer_shut"]
        assert len(_kinds(evs, "association_up")) == 2
        assert a.send(b"after", "b")
        got = []
        assert run([a, b2], lambda: got.extend(b2.recv()) or [g for g in got if g.payload == b"after"])
    finally:
        close_all(*[r for r in (a, b, b2) if r is not None])


def test_the_apps_own_close_is_not_opened_again():
    a, b = pair({"eth": {"bind": ("127.0.0.22", 0)}})
    try:
        a.connect("b")
        assert run([a, b], lambda: established(a, "b") and established(b, "a"))
        a.close("b")
        assert run([a, b], lambda: a.ep.association("b") is None and b.ep.association("a") is None)
        end = time.monotonic() + 3 * REDIAL_MS / 1000  # (longer than the wait, doubled once)
        run([a, b], lambda: a.ep.association("b") is not None or time.monotonic() > end,
            limit_s=3 * REDIAL_MS / 1000 + 5, turns=100000)
        assert a.ep.association("b") is None and b.ep.association("a") is None
        assert "redial" not in a.counters
        assert [e.reason for e in _kinds(a.events(), "association_closed")] == ["shut"]
    finally:
        close_all(a, b)


class _Clock:
    def __init__(self):
        self.ms = 1000

    def __call__(self):
        return self.ms


def _silent_server():
    """A socket where the server was: it reads nothing and answers nothing."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.21", 0))
    return s


def _initiator(clock, server_addr, name="a", rng=os.urandom):
    a = Runtime(Endpoint({"name": name, "peers": {"b": {
        "psk": PSK, "addresses": ["%s:%d" % server_addr]}}}, rng), clock)
    a.add_uplink("eth", ("127.0.0.22", 0))
    return a


def _turns(clock, rts, ms, until=None, step_ms=10):
    """Turns of each runtime's loop, the clock moved on step_ms each, for ms at most or until
    until() is true; returns until()'s value (None without one)."""
    end = clock.ms + ms
    while clock.ms < end and not (until is not None and until()):
        clock.ms += step_ms
        for rt in rts:
            rt.poll(0)
    return until() if until is not None else None


def _up_then_shut_by_the_server(clock, a, b):
    """a connects to b; once both are up the server shuts the association (a new INIT due
    REDIAL_MS later on a)."""
    a.connect("b")
    assert _turns(clock, [a, b], 10000, lambda: established(a, "b") and established(b, "a"))
    b.close()
    assert _turns(clock, [a, b], 5000, lambda: a.ep.association("b") is None)


def _attempts(a, clock, turns, step_ms=100):
    """Turns of a's loop, its clock moved on step_ms each: [(ms, event kind, reason)] of the
    association's starts (a new association for b) and closes."""
    seen, cur = [], None
    for _ in range(turns):
        clock.ms += step_ms
        a.poll(0)
        for e in a.events():
            if e.kind == "association_closed":
                seen.append((clock.ms, "closed", e.reason))
        now = a.ep.association("b")
        if now is not None and now is not cur:
            seen.append((clock.ms, "started", None))
        cur = now
    return seen


def test_inits_that_go_unanswered_are_tried_again_later_each_wait_twice_the_last():
    clock = _Clock()
    silent = _silent_server()
    a = _initiator(clock, silent.getsockname())
    try:
        a.connect("b")
        seen = _attempts(a, clock, 40000)  # 4,000 s of its clock
        closes = [t for t, what, why in seen if what == "closed"]
        starts = [t for t, what, why in seen if what == "started"]
        assert [why for _, what, why in seen if what == "closed"] == ["timeout"] * len(closes)
        assert len(closes) >= 4, seen
        # after each timeout, a new INIT (a new association) REDIAL_MS later, then 2x, 4x, ...
        # each less up to half of it (jitter; +100: the step of the test's clock)
        waits = [s - c for c, s in zip(closes, starts[1:])]
        for i, w in enumerate(waits[:4]):
            assert (REDIAL_MS << i) // 2 <= w <= (REDIAL_MS << i) + 100, (i, waits)
        assert a.counters["redial"] == len(starts) - 1
        # each attempt is a whole handshake: its INITs, as the first one's
        took = [c - s for s, c in zip(starts, closes)]
        assert max(took) - min(took) <= 200 and policy.INIT_RETRIES > 1, took
    finally:
        close_all(a)
        silent.close()


def test_the_waits_stop_growing_at_64_s_and_a_server_back_gets_its_association():
    clock = _Clock()
    silent = _silent_server()
    addr = silent.getsockname()
    a = _initiator(clock, addr)
    b = None
    try:
        a.connect("b")
        seen = _attempts(a, clock, 120000)  # 12,000 s
        closes = [t for t, what, _ in seen if what == "closed"]
        starts = [t for t, what, _ in seen if what == "started"]
        waits = [s - c for c, s in zip(closes, starts[1:])]
        assert min(waits[-3:]) >= 32000 and max(waits) <= 64000 + 100, waits
        silent.close()
        silent = None
        b = _server(addr)  # the server comes back, on the address a keeps trying
        assert _turns(clock, [a, b], 200000, lambda: established(a, "b") and established(b, "a"),
                      step_ms=100)
    finally:
        close_all(*[r for r in (a, b) if r is not None])
        if silent is not None:
            silent.close()


def test_a_runtime_told_not_to_redial_leaves_a_closed_association_closed():
    # mastd (redial False) connects again itself, after a new DNS lookup (agent._reconnect)
    clock = _Clock()
    silent = _silent_server()
    a = _initiator(clock, silent.getsockname())
    a.redial = False
    try:
        a.connect("b")
        seen = _attempts(a, clock, 10000)
        assert [what for _, what, _ in seen] == ["started", "closed"], seen
        assert "redial" not in a.counters
    finally:
        close_all(a)
        silent.close()


def test_a_board_whose_server_shuts_and_comes_back_streams_to_it_again(micropython, tmp_path):
    def graceful(peer):  # a graceful restart: SHUT, answered by the board
        peer.stop = True
        peer.thread.join(5)
        peer.rt.close()
        end = time.monotonic() + 10
        while peer.rt.ep.association("board1") is not None and time.monotonic() < end:
            peer.rt.poll(50)
        assert peer.rt.ep.association("board1") is None
        peer.rt.shutdown()

    took, st = board_and_server_back(tmp_path, graceful, BOUND_S, "peer_shut")
    assert took < BOUND_S + 5, took
    assert st["runtime"]["counters"].get("redial") == 1, st["runtime"]


def test_a_peer_no_longer_initiated_or_no_longer_configured_is_not_opened_again():
    for change in ("initiate", "remove"):
        clock = _Clock()
        b = _server(("127.0.0.21", 0))
        a = _initiator(clock, b.uplinks["wan"].bind)
        try:
            _up_then_shut_by_the_server(clock, a, b)
            if change == "initiate":  # ... and meanwhile a's configuration changes
                a.ep.set_peer("b", {"psk": PSK, "addresses": a.ep.cfg["peers"]["b"]["addresses"],
                                    "initiate": False}, clock.ms)
            else:
                a.ep.remove_peer("b", clock.ms)
            _turns(clock, [a, b], 10 * REDIAL_MS, step_ms=50)
            assert a.ep.association("b") is None and b.ep.association("a") is None, change
            assert "redial" not in a.counters, (change, a.counters)
        finally:
            close_all(a, b)


def test_the_loop_wakes_for_the_new_init_when_nothing_else_is_due():
    # (the endpoint process polls with no timeout of its own: it would sleep a minute)
    clock = _Clock()
    silent = _silent_server()
    a = _initiator(clock, silent.getsockname())
    try:
        a.connect("b")
        for _ in range(40000):
            clock.ms += 100
            a.poll(0)
            if a.ep.association("b") is None:
                break
        assert a.ep.association("b") is None  # its INITs went unanswered
        closed_at = clock.ms
        assert a.ep.next_timer() is None  # nothing of the core's to wake for
        clock.ms += 500
        due = clock.ms + a.wait_ms(None)  # (jittered: REDIAL_MS less up to half of it)
        assert closed_at + REDIAL_MS // 2 <= due <= closed_at + REDIAL_MS, (closed_at, due)
        clock.ms = due - 1
        assert a.wait_ms(None) == 1
        a.poll(0)
        assert a.ep.association("b") is None
        clock.ms = due
        assert a.wait_ms(None) == 0
        a.poll(0)
        assert a.ep.association("b") is not None and a.counters["redial"] == 1
    finally:
        close_all(a)
        silent.close()


def test_the_apps_close_while_a_new_init_is_waiting_stops_it():
    clock = _Clock()
    b = _server(("127.0.0.21", 0))
    a = _initiator(clock, b.uplinks["wan"].bind)
    try:
        _up_then_shut_by_the_server(clock, a, b)  # a new INIT due REDIAL_MS later ...
        assert a.wait_ms(None) <= REDIAL_MS
        a.close("b")  # ... which the app's close, meanwhile, calls off
        _turns(clock, [a, b], 10 * REDIAL_MS, step_ms=50)
        assert a.ep.association("b") is None and "redial" not in a.counters, a.counters
    finally:
        close_all(a, b)


def test_the_peers_one_servers_shut_closed_at_once_come_back_spread_over_half_the_wait():
    # a server's graceful restart SHUTs every association at once: without jitter every board
    # sent its new INIT REDIAL_MS later in the same millisecond (and again at 2x, 4x ...)
    n = 8
    clock = _Clock()
    b = Runtime(Endpoint({"name": "b", "peers": dict(
        ("a%d" % i, {"psk": PSK, "initiate": False}) for i in range(n))}, os.urandom), clock)
    b.add_uplink("wan", ("127.0.0.21", 0))
    peers = [_initiator(clock, b.uplinks["wan"].bind, "a%d" % i, random.Random(i).randbytes)
             for i in range(n)]
    try:
        for a in peers:
            a.connect("b")
        assert _turns(clock, peers + [b], 10000, lambda: all(established(a, "b") for a in peers))
        b.close()
        assert _turns(clock, peers + [b], 5000, lambda: all(a.ep.association("b") is None
                                                            for a in peers))
        closed_at = clock.ms  # (each closed in this turn: the SHUTs went out at once)
        back = {}

        def all_back():
            for i, a in enumerate(peers):
                if i not in back and a.ep.association("b") is not None:
                    back[i] = clock.ms - closed_at  # its new INIT went out in this turn
            return len(back) == n

        assert _turns(clock, peers + [b], 3 * REDIAL_MS, all_back, step_ms=1)
        waits = sorted(back.values())
        assert REDIAL_MS // 2 <= waits[0] and waits[-1] <= REDIAL_MS, waits
        assert len(set(waits)) >= n // 2 and waits[-1] - waits[0] >= REDIAL_MS // 8, waits
        assert [a.counters.get("redial") for a in peers] == [1] * n
        assert _turns(clock, peers + [b], 10000, lambda: all(
            established(a, "b") and established(b, a.ep.cfg["name"]) for a in peers))
    finally:
        close_all(b, *peers)


def test_the_jitter_is_between_half_and_all_of_the_wait_and_spread_over_it():
    for w in (REDIAL_MS, 64000, 3):
        assert jitter(w, lambda n: b"\x00") == w
        assert jitter(w, lambda n: b"\xff") == w - (w >> 1) * 255 // 256 >= w - w // 2
    rng = random.Random(7).randbytes
    got = [jitter(REDIAL_MS, rng) for _ in range(2000)]
    assert REDIAL_MS // 2 <= min(got) < REDIAL_MS * 0.52 and REDIAL_MS * 0.98 < max(got) <= REDIAL_MS
    assert len(set(got)) > 200


def test_a_redial_that_finds_no_address_is_tried_again_later_and_counted():
    # (before, it was dropped: counted `redial` as if it had been sent, and never tried again)
    clock = _Clock()
    b = _server(("127.0.0.21", 0))
    a = _initiator(clock, b.uplinks["wan"].bind)
    addresses = a.ep.cfg["peers"]["b"]["addresses"]
    try:
        _up_then_shut_by_the_server(clock, a, b)
        # meanwhile the peer is known by its DNS name only, not resolved now: no address
        a.ep.set_peer("b", {"psk": PSK, "dns": "b.example"}, clock.ms)
        closed_at = clock.ms
        _turns(clock, [a, b], REDIAL_MS + 100, lambda: "redial_failed" in a.counters)
        assert a.counters.get("redial_failed") == 1 and "redial" not in a.counters, a.counters
        failed_at = clock.ms
        assert REDIAL_MS // 2 <= failed_at - closed_at <= REDIAL_MS + 10
        # tried again after the next wait (twice as long, jittered), again without an address
        due = a._redial["b"][0]
        assert REDIAL_MS <= due - failed_at <= 2 * REDIAL_MS, due - failed_at
        _turns(clock, [a, b], 4 * REDIAL_MS, lambda: a.counters.get("redial_failed") == 2)
        assert a.counters.get("redial_failed") == 2 and clock.ms >= due
        # its address back (the name resolves again): the next attempt opens the association
        a.ep.set_peer("b", {"psk": PSK, "addresses": addresses}, clock.ms)
        assert _turns(clock, [a, b], 10 * REDIAL_MS,
                      lambda: established(a, "b") and established(b, "a"), step_ms=50)
        assert a.counters.get("redial") == 1 and a.counters["redial_failed"] == 2, a.counters
    finally:
        close_all(a, b)


def test_a_redial_whose_connect_ran_out_of_memory_is_tried_again_later():
    # (a board's full heap: the MemoryError went to the loop, which counts it, and the attempt,
    # marked running, was never tried again: no association until a reboot)
    clock = _Clock()
    b = _server(("127.0.0.21", 0))
    a = _initiator(clock, b.uplinks["wan"].bind)
    connect = a.ep.connect
    failed = []

    def no_heap(*args):
        if not failed:
            failed.append(clock.ms)
            raise MemoryError
        return connect(*args)

    try:
        _up_then_shut_by_the_server(clock, a, b)
        a.ep.connect = no_heap
        _turns(clock, [a, b], REDIAL_MS + 100, lambda: failed)
        assert failed and a.counters.get("no_memory") == 1 and "redial" not in a.counters, a.counters
        clock.ms += 10
        a.poll(0)
        due = a._redial["b"][0]  # the next wait, twice as long (jittered)
        assert due is not None and REDIAL_MS <= due - failed[0] <= 2 * REDIAL_MS + 10, due
        assert _turns(clock, [a, b], 4 * REDIAL_MS + 1000,
                      lambda: established(a, "b") and established(b, "a"), step_ms=50)
        assert a.counters.get("redial") == 1 and clock.ms >= due
    finally:
        close_all(a, b)


MP_JITTER = """
import os
from runtime.driver import jitter, REDIAL_MS
for w in (REDIAL_MS, 64000):
    got = [jitter(w, os.urandom) for _ in range(1000)]
    print(w, min(got), max(got), len(set(got)))
"""


def test_micropython_the_jitter_is_between_half_and_all_of_the_wait(micropython, mpy_build):
    env = dict(os.environ, MICROPYPATH=os.path.join("build", "mpy") + os.pathsep + ".frozen")
    p = subprocess.run(micropython + ["-X", "heapsize=256K", "-c", MP_JITTER], env=env,
                       cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr
    for line in p.stdout.split("\n")[:2]:
        w, lo, hi, distinct = [int(x) for x in line.split()]
        assert w // 2 <= lo < w * 0.52 and w * 0.98 < hi <= w and distinct > 200, line
