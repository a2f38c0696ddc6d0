"""The runtime when the heap runs short (issue 11.4) and at MAST's largest datagram (issue 11.5),
on real sockets on 127.0.0.x, under CPython and under the MicroPython unix port.

- MicroPython, a fragmented heap (tests/host/rtmem.py): half the heap free but no block of
  2,049 bytes, which a receive needs. With its reserve the receiver still reads every DATA;
  without one the socket rests, the loop serves another reader and does not spin, and the
  datagrams arrive once the heap has room. Counted: rx_no_memory, rx_rest. A reserve that is
  gone is taken back after a read, once the datagram read is let go of.
- MicroPython, the board's console in a heap cut into smaller pieces still
  (tests/host/consolemem.py, no block of 100 bytes): it reads its port and answers each
  request.
- MicroPython, names interned at run time (each can make MicroPython take a new table of
  names, KBs in one piece, at that moment): none while events are made, none while the core
  runs a failover, a failback, a new address and a close.
- CPython, a socket whose receive raises MemoryError: the same resting, counted.
- The largest payload (2,020 bytes) crosses whole through the endpoint process's `send`
  command (CPython, and the MicroPython process over stdin); a larger one is refused with the
  limit named; a datagram over 2,048 bytes is counted bad_long, not taken for a forgery; a
  payload starting with "S" is shown as it is unless stream_records is set.

Every loop is bounded in turns and time.
"""

import base64
import binascii
import json
import os
import socket
import subprocess
import threading
import time

import pytest

from mast import wire
from mast.endpoint import Endpoint
from runtime.driver import Runtime
from test_runtime import pair as rt_pair, run, established as up  # (tests/host/test_runtime.py)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(ROOT, "tests", "host", "rtmem.py")
CONSOLE_SCRIPT = os.path.join(ROOT, "tests", "host", "consolemem.py")
PSK = base64.b64encode(bytes(range(32))).decode()


def free_udp_ports(n):
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def pair():
    """Runtimes a and b on 127.0.0.52/51 with their association up."""
    a, b = rt_pair({"wan": {"bind": ("127.0.0.52", 0)}}, ("127.0.0.51", 0))
    a.connect("b")
    assert run((a, b), lambda: up(a, "b") and up(b, "a"))
    return a, b


# ---- MicroPython: a heap with no block for a datagram ----------------------------------------

def test_micropython_receives_in_a_fragmented_heap_with_its_reserve_and_rests_without(
        micropython, mpy_build):
    env = dict(os.environ, MICROPYPATH=os.path.join("build", "mpy") + os.pathsep + ".frozen")
    cmd = micropython + ["-X", "heapsize=256K", SCRIPT] + [str(p) for p in free_udp_ports(6)]
    p = subprocess.run(cmd, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       universal_newlines=True, timeout=120)
    assert p.returncode == 0, p.stderr[-3000:]
    phases = dict((d["phase"], d) for d in map(json.loads, p.stdout.splitlines()))

    r = phases["reserve"]
    assert r["up"] and r["had_reserve"] and r["blocked"], r  # the heap really had no block
    assert r["sent"] == 20 and r["got"] == 20 and r["intact"], r  # every DATA, whole
    assert r["counters"].get("rx_no_memory", 0) >= 1, r  # a read met the full heap...
    assert r["counters"].get("rx_reserve", 0) >= 20, r  # ...so each went into the reserve's block
    assert r["counters"].get("rx_rest", 0) == 0 and r["reserve_back"], r  # ...and got through

    r = phases["reserve_big"]  # (1,200-byte DATA in the same heap: no hole took their bytes)
    assert r["blocked"] and r["sent"] == 5 and r["got"] == 5 and r["intact"] and r["reserve_back"], r

    s = phases["rest"]
    assert s["blocked"] and s["sent"] == 10, s
    assert s["got_during"] == 0  # nothing could be read...
    rests = s["pressure"].get("rx_rest", 0) - s["before"].get("rx_rest", 0)
    assert rests >= 5, s  # ...the socket rested, again and again
    assert s["turns_in_1s"] <= 200, s  # the loop did not spin on the readable socket
    assert s["side_reader"] == [7], s  # another reader (a console) was served meanwhile
    assert s["got"] == 10 and s["intact"] and s["reserve_back"], s  # all of it, afterwards

    t = phases["late"]
    w = t["without"]  # a runtime started in it could not take a reserve...
    assert t["blocked"] and w["still_blocked"] and t["with"]["still_blocked"], t  # (all along)
    assert not w["had_reserve"] and not w["up"] and w["got"] == 0, t
    assert w["counters"].get("rx_rest", 0) >= 1, t  # ...and received nothing: each read rested
    g = t["with"]  # given one taken before (as a board takes it first thing): up, every DATA
    assert g["had_reserve"] and g["up"] and g["sent"] == 10 and g["got"] == 10 and g["intact"], t
    assert g["counters"].get("rx_reserve", 0) >= 10, t  # (each read went into that block)

    p = phases["pinned"]  # no reserve: taken back after a read, once its datagram is let go of
    for r in p["rounds"]:
        assert r["back"] and len(r["free_at_take"]) == 1, p
        # (held, the 2,000-byte datagram showed as ~2,800 bytes less: the block it was read
        # into stayed in pieces, and a board never had its reserve again)
        assert r["free_at_take"][0] > r["free_after"] - 1000, p


# ---- MicroPython: no name interned at run time ------------------------------------------------

# Every kind of event made, shown and turned into a dict, between two counts of MicroPython's
# interned names. A name interned at run time can make MicroPython take a new table of names,
# several KB in one piece, at that moment: the 6th table holds 640 names, 7 KB on this port. A
# core test (test_board_settings) lost its handshake that way, in a heap with 46 KB free.
EVENTS_SCRIPT = """
import micropython
from mast.events import Event, FIELDS
micropython.qstr_info()
for k in list(FIELDS):
    e = Event(k, *range(len(FIELDS[k])))
    repr(e)
    e.as_dict()
micropython.qstr_info()
"""


def test_micropython_the_console_reads_and_answers_in_a_heap_in_pieces(micropython, mpy_build):
    """A board's heap that traffic has cut into pieces: seen on the simulated board at 152K, its
    console read nothing at all (each read wanted a new 515-byte block) while its telemetry
    flowed; the console's port now reads into a buffer it took at boot (no free block of 100
    bytes here: a read of 128 into a new one would find none)."""
    env = dict(os.environ, MICROPYPATH=os.path.join("build", "mpy") + os.pathsep + ".frozen")
    requests = b'{"id": 1, "op": "hello"}\n{"id": "two", "op": "hello"}\n'
    p = subprocess.run(micropython + ["-X", "heapsize=256K", CONSOLE_SCRIPT], env=env, cwd=ROOT,
                       input=requests, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    assert p.returncode == 0, p.stderr[-3000:]
    lines = [json.loads(x) for x in p.stdout.decode().splitlines()]
    assert lines[0] == {"blocked": True}, lines  # the heap really had no such block
    # each request answered, with its id (in such a heap the op has no room for its own code:
    # request.py's checks, then hello; `out of memory` is the answer then)
    answers = [(x["id"], x.get("result") or x.get("error")) for x in lines[1:-1]]
    assert [a[0] for a in answers] == [1, "two"], lines
    assert all(a[1] in ({"firmware": "mast-board"}, "out of memory") for a in answers), lines
    end = lines[-1]
    assert end["reads"] >= 1 and end["no_memory"] == 0 and end["eof"], end


def test_micropython_events_intern_no_name_at_run_time(micropython, mpy_build):
    n, out = _names_interned(micropython, EVENTS_SCRIPT, "128K")
    assert n == 0, "%d names interned while making events" % n


# The core in a failover, a failback, a new address and a close, on the simulated network
# (tests/core/simnet.py), between two counts: it interns no name while it runs.
_UP = """
import micropython, simnet
net = simnet.pair()
net.run(2000)
s = simnet.Stream(net, "a", rate=100)
net.run(net.now + 1000)
"""
_FAILOVER_AND_BACK = """
link = net.link("a", "eth")
link.cut = True
net.run(net.now + 3000)
link.cut = False
net.run(net.now + 4000)
"""
CORE_RUN_SCRIPT = _UP + "micropython.qstr_info()" + _FAILOVER_AND_BACK + """
net.renumber("a", "wifi", ("10.2.0.77", 6278), priority=20)
net.run(net.now + 2000)
s.stop()
for n in ("a", "b"):
    net.nodes[n].ep.close(net.now)
net.run(net.now + 3000)
micropython.qstr_info()
print(sorted(set(e.kind for t, e in net.nodes["a"].events)))
"""


def _run_mpy(micropython, script, heap):
    """script run on the MicroPython unix port over build/mpy, in -X heapsize=heap (it must exit 0)."""
    env = dict(os.environ, MICROPYPATH=os.path.join("build", "mpy") + os.pathsep + ".frozen")
    p = subprocess.run(micropython + ["-X", "heapsize=" + heap, "-c", script], env=env, cwd=ROOT,
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr
    return p


def _names_interned(micropython, script, heap):
    p = _run_mpy(micropython, script, heap)
    counts = [int(line.split("n_qstr=")[1].split(",")[0]) for line in p.stdout.splitlines()
              if line.startswith("qstr pool:")]
    assert len(counts) == 2 and counts[0] > 0, p.stdout
    return counts[1] - counts[0], p.stdout


def test_micropython_the_core_interns_no_name_in_a_failover_a_new_address_and_a_close(
        micropython, mpy_build):
    n, out = _names_interned(micropython, CORE_RUN_SCRIPT, "256K")
    kinds = out.strip().splitlines()[-1]
    for kind in ("failover", "path_down", "addresses_changed", "association_closed"):
        assert kind in kinds, out  # (what the run went through)
    assert n == 0, "%d names interned while the core ran" % n


# An association's attributes, on MicroPython, live in a map that grows 17, 23, 29, 37, ...
# entries (16 B each on 64-bit, 8 B on 32-bit), and each growth allocates the new map while the
# old one is still held. What most associations never change (mast.assoc._DEFAULTS) stays on
# the class, so an association up on both sides, through a failover and a failback, holds at
# most 29 names. (A core test lost a handshake to the growth to 37: "allocating 592 bytes" in
# Association.__init__, in a 128K heap.)
ASSOC_NAMES_SCRIPT = _UP + _FAILOVER_AND_BACK + """
s.stop()
for n, peer in (("a", "b"), ("b", "a")):
    x = net.nodes[n].ep.association(peer)
    print(n, x.state, len(x.__dict__), " ".join(sorted(x.__dict__)))
print(sorted(set(e.kind for t, e in net.nodes["a"].events)))
"""


def test_micropython_an_association_keeps_at_most_29_names_through_a_failover_and_back(micropython, mpy_build):
    p = _run_mpy(micropython, ASSOC_NAMES_SCRIPT, "256K")
    lines = p.stdout.strip().splitlines()
    assert "failover" in lines[-1] and "path_down" in lines[-1], p.stdout  # (what the run went through)
    for line in lines[:2]:
        node, state, n, names = line.split(" ", 3)
        assert state == "2", line  # established
        assert 20 <= int(n) <= 29, line
        assert "closed_at" not in names.split() and "err_sent" not in names.split(), line


# ---- CPython: a receive that raises MemoryError --------------------------------------------

class Starved:
    """A socket whose recvfrom raises MemoryError while .starved (as MicroPython's does when
    the heap has no block); everything else is the real socket."""

    def __init__(self, sock):
        self._sock = sock
        self.starved = True

    def recvfrom(self, n):
        if self.starved:
            raise MemoryError("no block of %d bytes" % n)
        return self._sock.recvfrom(n)

    def __getattr__(self, name):
        return getattr(self._sock, name)


def test_cpython_a_starved_socket_rests_counted_and_its_datagrams_arrive_after():
    a, b = pair()
    try:
        u = b.uplinks["wan"]
        u.sock = Starved(u.sock)
        got = []
        b.on_data = lambda peer, payload, ip, uplink, src: got.append(bytes(payload))
        for i in range(5):
            assert a.send(bytes([i]) * 300, "b")
        turns = 0
        t0 = time.monotonic()
        # (at least 0.5 s, and until two rests are counted: a loaded machine may turn the loop
        # less often, never more; at most 10 s)
        while time.monotonic() < t0 + 10 and turns < 100000:
            b.poll(500)
            turns += 1
            if time.monotonic() - t0 >= 0.5 and b.counters.get("rx_rest", 0) >= 2 \
                    and b.counters.get("rx_no_memory", 0) >= 2:
                break
        assert got == []
        assert b.counters["rx_no_memory"] >= 2 and b.counters["rx_rest"] >= 2, b.counters
        assert turns <= 100, turns  # rests of 50 ms, not a spin
        # the status says so (a board's `status` op: uplinks.*.mast.socket.resting)
        assert b.status()["uplinks"]["wan"]["socket"]["resting"] is True
        u.sock.starved = False
        assert run((b,), lambda: len(got) == 5, 3.0)
        assert got == [bytes([i]) * 300 for i in range(5)]
        assert b.status()["uplinks"]["wan"]["socket"]["resting"] is False  # read again
    finally:
        a.shutdown()
        b.shutdown()


def test_cpython_a_full_heap_as_a_turn_settles_the_timers_is_counted_not_the_end_of_the_loop():
    # seen on a board at -X heapsize=152K: the MemoryError came from the core's next_timer(),
    # which poll() asked before its guarded part: the board crashed and rebooted
    a, b = pair()
    try:
        real = a.ep.next_timer
        calls = [0]

        def full_once():
            calls[0] += 1
            if calls[0] == 1:
                raise MemoryError("memory allocation failed, allocating 256 bytes")
            return real()

        a.ep.next_timer = full_once
        a.poll(10)  # (before: the MemoryError left poll())
        assert a.counters.get("no_memory") == 1 and calls[0] >= 2
        got = []
        b.on_data = lambda peer, payload, ip, uplink, src: got.append(bytes(payload))
        assert a.send(b"after", "b")
        assert run((a, b), lambda: got == [b"after"], 3.0)
    finally:
        a.shutdown()
        b.shutdown()


def runtime_and_process(rt_name, p_name):
    """A runtime named rt_name on 127.0.0.51 and an endpoint process (runtime/endpoint_main)
    named p_name on 127.0.0.52, started, their association up: (runtime, process, the
    process's output lines)."""
    from runtime.endpoint_main import Process
    from runtime.runconfig import check

    r = Runtime(Endpoint({"name": rt_name, "peers": {p_name: {"psk": PSK, "initiate": False}}},
                         os.urandom))
    r.add_uplink("wan", ("127.0.0.51", 0))
    port = r.uplinks["wan"].bind[1]
    out = []
    p = Process(check({"mast": {"name": p_name, "peers": {rt_name: {
        "psk": PSK, "addresses": ["127.0.0.51:%d" % port]}}},
        "uplinks": {"eth": {"bind": "127.0.0.52:0"}}, "connect": [rt_name]}), out.append)
    try:
        p.start()
        assert run((r, p.rt), lambda: up(r, p_name) and up(p.rt, rt_name))
    except BaseException:
        r.shutdown()
        p.rt.shutdown()
        raise
    return r, p, out


def test_cpython_a_data_event_with_no_room_for_its_copy_holds_the_datagram_instead(monkeypatch):
    # seen on the MicroPython endpoint at 176K (test_atk_memory, one run in two): the DATA of
    # 1,200 bytes was read and checked, but its copy for the data event (1,201 bytes in one
    # piece) found no block, and the datagram was lost (no_memory). The event now holds a view
    # of the datagram as it was read, and the process writes it out as any payload.
    import runtime.driver as driver

    a, p, out = runtime_and_process("a", "b")
    b = p.rt
    try:
        copies = []

        def no_block(x=b""):  # bytes(), as a heap with no block of 1,000 bytes has it
            if not isinstance(x, int) and len(x) >= 1000:
                copies.append(len(x))
                raise MemoryError("memory allocation failed, allocating %d bytes" % (len(x) + 1))
            return bytes(x)

        monkeypatch.setattr(driver, "bytes", no_block, raising=False)
        big = bytes(range(256)) * 4 + bytes(176)
        assert a.send(big, "b")
        assert run((a, b), lambda: b._rx)
        monkeypatch.undo()
        assert copies == [1200]  # the copy was tried, and found no room
        del out[:]
        p.pump()
        data = [json.loads(x) for x in out if '"data"' in x]
        assert len(data) == 1 and data[0]["len"] == 1200, out
        assert binascii.unhexlify(data[0]["hex"]) == big  # whole
        assert "no_memory" not in b.counters and "no_memory" not in b.ep.counters, b.counters
    finally:
        a.shutdown()
        b.shutdown()


# ---- the largest datagram ---------------------------------------------------------------------

def test_the_largest_payload_crosses_a_larger_is_refused_and_a_long_datagram_is_bad_long():
    b, p, out = runtime_and_process("b", "a")
    a = p.rt
    try:
        got = []
        b.on_data = lambda peer, payload, ip, uplink, src: got.append(bytes(payload))
        big = bytes(range(256)) * 7 + bytes(range(wire.MAX_PAYLOAD - 1792))
        assert len(big) == 2020
        p.command(json.dumps({"op": "send", "peer": "b", "hex": binascii.hexlify(big).decode()}))
        assert json.loads(out[-1]) == {"reply": "send", "ok": True}
        assert run((a, b), lambda: got)
        assert got == [big]  # whole: 2,048 bytes on the wire, read by a 2,049-byte receive

        p.command(json.dumps({"op": "send", "peer": "b", "hex": "00" * 2021}))
        reply = json.loads(out[-1])
        assert reply["reply"] == "send" and "2021" in reply["error"] and "2020" in reply["error"]

        before = dict(b.ep.counters)
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.52", 0))
        s.sendto(b"\x01" + bytes(2100), b.uplinks["wan"].bind)
        s.close()
        assert run((b,), lambda: b.ep.counters.get("bad_long", 0) > before.get("bad_long", 0))
        assert b.ep.counters.get("mac", 0) == before.get("mac", 0)  # not taken for a forgery
    finally:
        a.shutdown()
        b.shutdown()


def test_micropython_endpoint_process_carries_the_largest_payload_and_shows_payloads_as_they_are(
        tmp_path):
    """The endpoint process on the MicroPython unix port (.mpy): a 2,020-byte payload given on
    stdin in hex reaches the peer whole; 2,021 bytes are refused naming the limit; a received
    payload that starts with "S" (a stream record's first byte) is shown as hex, since stream
    records are decoded only with stream_records."""
    from mast_tools.board_process import board_command

    try:
        board_command("", str(tmp_path / "mpy"), prefer="micropython")
    except RuntimeError as e:
        pytest.skip(str(e))
    host = Runtime(Endpoint({"name": "host", "peers": {"board": {"psk": PSK}}}, os.urandom))
    host.add_uplink("wan", ("127.0.0.53", 0))
    port = free_udp_ports(1)[0]
    doc = {"mast": {"name": "board", "peers": {"host": {"psk": PSK, "addresses": [
        "127.0.0.53:%d" % host.uplinks["wan"].bind[1]]}}},
        "uplinks": {"eth": {"bind": "127.0.0.1:%d" % port}}, "connect": ["host"]}
    path = tmp_path / "board.json"
    path.write_text(json.dumps(doc))
    cmd = board_command(str(path), str(tmp_path / "mpy"), prefer="micropython")
    proc = subprocess.Popen(cmd.argv, env=cmd.env, cwd=str(tmp_path), stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    lines = []
    reader = threading.Thread(target=lambda: lines.extend(
        json.loads(x) for x in iter(proc.stdout.readline, b"")), daemon=True)
    reader.start()

    def say(obj):
        proc.stdin.write((json.dumps(obj) + "\n").encode())
        proc.stdin.flush()

    try:
        assert run([host], lambda: up(host, "board"), limit_s=20.0)
        big = bytes(range(256)) * 7 + bytes(range(wire.MAX_PAYLOAD - 1792))
        say({"op": "send", "hex": binascii.hexlify(big).decode()})
        got = []
        assert run([host], lambda: got.extend(e.payload for e in host.recv()) or got, limit_s=10.0)
        assert got == [big]
        say({"op": "send", "hex": "00" * 2021})
        record_like = b"S" + bytes(range(20))
        assert host.send(record_like, "board")

        def shown():
            return [x for x in lines if x.get("event") == "data"] and len(
                [x for x in lines if x.get("reply") == "send"]) >= 2

        assert run([host], shown, limit_s=10.0)
        say({"op": "quit"})
        proc.wait(timeout=20)
        reader.join(10)
    finally:
        proc.kill()
        host.shutdown()
    sends = [x for x in lines if x.get("reply") == "send"]
    assert sends[0] == {"reply": "send", "ok": True}
    assert "2021" in sends[1]["error"] and "2020" in sends[1]["error"]
    data = [x for x in lines if x.get("event") == "data"]
    assert len(data) == 1 and data[0]["hex"] == binascii.hexlify(record_like).decode()
    assert "seq" not in data[0] and data[0]["len"] == 21
    assert lines[-1]["event"] == "stopped" and proc.returncode == 0
