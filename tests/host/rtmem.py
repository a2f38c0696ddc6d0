"""The runtime's receive path when the heap has no free block for a datagram (issue 11.4), run
by tests/host/test_runtime_memory.py under the MicroPython unix port (mpy-cross output of the
firmware, `-X heapsize`): two real runtimes on 127.0.0.1 in one process.

    micropython -X heapsize=256K tests/host/rtmem.py PORT_A PORT_B PORT_C PORT_X PORT_Y PORT_Z

It fragments the heap on purpose (fills it with 400-byte blocks, then frees every other one:
half the heap free, but no block of 2,049 bytes in one piece, which is what a receive needs)
and prints one JSON line per phase:

- "reserve": the receiver holds its reserve; DATA sent meanwhile is delivered (the reserve's
  block takes the read, and is taken back);
- "rest": no reserve either; the socket rests, the loop still serves another reader and does
  not spin, and what was sent meanwhile arrives once the heap has room again;
- "late": a runtime started in a heap that is already fragmented (as a board's is once boot's
  code has come and gone) finds no block for a reserve and receives nothing; one given a
  reserve taken before (Runtime(reserve=...), as board/main.py does first thing) brings its
  association up and carries DATA in that same heap.
- "pinned": a runtime whose reserve is gone takes it back after a read only once the datagram
  it read is let go of (the heap free when it takes it, beside the heap free after the turn).

Every loop is bounded in turns and time.
"""

import gc
import json
import os
import sys
import time

from mast.endpoint import Endpoint
from runtime.driver import Runtime

PSK = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="  # bytes 0..31
HOST = "127.0.0.1"

try:
    import socket
except ImportError:  # (MicroPython builds name it usocket)
    import usocket as socket


def ms():
    return time.ticks_ms() if hasattr(time, "ticks_ms") else int(time.monotonic() * 1000)


def since(t0):
    return time.ticks_diff(ms(), t0) if hasattr(time, "ticks_diff") else ms() - t0


def runtime(name, peer, port, peer_port, box=None):
    """box: a list holding the reserve to hand over (popped here, in a frame that ends: the
    conservative collector scans what is left on a live frame's value stack, so a block passed
    from a frame that stays would never be free to take a read)."""
    ep = Endpoint({"name": name, "peers": {peer: {"psk": PSK, "addresses": [
        "%s:%d" % (HOST, peer_port)]}}}, os.urandom)
    rt = Runtime(ep, reserve=box.pop() if box else None)
    rt.add_uplink("lo", (HOST, port))
    return rt


def poll_until(rts, until, limit_ms):
    t0 = ms()
    for _ in range(20000):
        if until() or since(t0) > limit_ms:
            break
        for rt in rts:
            rt.poll(2)
    return until()


def up(rt, peer):
    a = rt.ep.association(peer)
    return a is not None and a.state == 2


def fragment():
    """Fill the heap with 400-byte blocks and free every other one. Returns the kept half."""
    gc.collect()
    blocks = []
    try:
        while True:
            blocks.append(bytearray(400))
    except MemoryError:
        pass
    for i in range(0, len(blocks), 2):
        blocks[i] = None
    gc.collect()
    return blocks


def largest_block_below(n):
    """True if no block of n bytes can be had now (what a receive of n bytes meets)."""
    try:
        b = bytearray(n)
    except MemoryError:
        return True
    b = None
    return False


def main(argv):
    pa, pb, pc = int(argv[0]), int(argv[1]), int(argv[2])
    a = runtime("a", "b", pa, pb)
    b = runtime("b", "a", pb, pa)
    a.connect("b")
    ok = poll_until((a, b), lambda: up(a, "b") and up(b, "a"), 5000)
    got = []
    b.on_data = lambda peer, payload, ip, uplink, src: got.append(bytes(payload))

    # ---- phase 1: no 2,049-byte block, but the receiver holds its reserve --------------------
    had_reserve = b._reserve is not None
    fill = [None] * 256  # (the end of the phase fills every hole of 1,300 bytes left into these)
    big = [bytes([i]) * 1200 for i in range(5)]  # (for the end of the phase: made while there is room,
    a.send(big[0], "b")  # and the sender's buffer grown to their size)
    poll_until((b,), lambda: len(got) > 0, 500)
    del got[:]
    ballast = fragment()
    blocked = largest_block_below(2100)
    sent = 0
    for i in range(20):
        sent += 1 if a.send(bytes([i]) * 100, "b") else 0
        poll_until((b,), lambda: len(got) > i, 500)
    print(json.dumps({"phase": "reserve", "up": ok, "had_reserve": had_reserve,
                      "blocked": blocked, "sent": sent, "got": len(got),
                      "intact": got == [bytes([i]) * 100 for i in range(len(got))],
                      "counters": dict(b.counters),
                      "reserve_back": b._reserve is not None}))
    # the same heap, 1,200-byte DATA: a squeezed read needs two blocks (recvfrom's buffer and
    # the datagram's bytes), and no hole of 400 bytes takes the bytes: the reserve takes both
    # (what arrived, without a copy of 1,200 bytes: there is no room for one)
    del got[:]
    b.on_data = lambda peer, payload, ip, uplink, src: got.append((len(payload), payload[0], payload[-1]))
    for j in range(len(fill)):  # no hole for a datagram's bytes is left but the runtime's own
        try:
            fill[j] = bytearray(1300)
        except MemoryError:
            break
    sent = 0
    for i in range(5):
        sent += 1 if a.send(big[i], "b") else 0
        poll_until((b,), lambda: len(got) > i, 500)
    print(json.dumps({"phase": "reserve_big", "blocked": largest_block_below(1300), "sent": sent,
                      "got": len(got), "intact": got == [(1200, i, i) for i in range(len(got))],
                      "counters": dict(b.counters), "reserve_back": b._reserve is not None}))
    big = fill = None
    b.on_data = lambda peer, payload, ip, uplink, src: got.append(bytes(payload))
    ballast = None

    # ---- phase 2: no reserve and no block: the socket rests, the loop goes on -----------------
    del got[:]
    b._reserve = None  # (as after a first failure in a heap that stays full)
    ballast = fragment()
    blocked = largest_block_below(2100)
    side = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    side.bind(socket.getaddrinfo(HOST, pc)[0][-1])
    heard = []

    def on_side(obj, flags):
        heard.append(len(obj.recv(16)))  # (a small read: it fits in the holes)

    b.add_reader(side, on_side)
    before = dict(b.counters)
    sent = 0
    for i in range(10):
        sent += 1 if a.send(bytes([i]) * 100, "b") else 0
    poke = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    poke.sendto(b"console", socket.getaddrinfo(HOST, pc)[0][-1])
    turns = 0
    t0 = ms()
    while since(t0) < 1000 and turns < 100000:
        b.poll(1000)
        turns += 1
    during = len(got)
    pressure = dict(b.counters)
    ballast = None
    gc.collect()
    poll_until((b,), lambda: len(got) >= sent, 3000)
    after = dict(b.counters)
    print(json.dumps({"phase": "rest", "blocked": blocked, "sent": sent, "got_during": during,
                      "got": len(got), "turns_in_1s": turns, "side_reader": heard,
                      "intact": got == [bytes([i]) * 100 for i in range(len(got))],
                      "before": before, "pressure": pressure, "after": after,
                      "reserve_back": b._reserve is not None}))
    side.close()
    poke.close()
    a.shutdown()
    b.shutdown()
    late(int(argv[3]), int(argv[4]))
    pinned(int(argv[5]))


def late(px, py):
    """Phase 3: runtimes started after the heap was fragmented."""
    x = runtime("x", "y", px, py)  # started while the heap had room
    box = [bytearray(2049)]  # (board/main.py's RX_RESERVE)
    ballast = fragment()
    blocked = largest_block_below(2100)
    res = {"phase": "late", "blocked": blocked}
    for name in ("without", "with"):
        y = runtime("y", "x", py, px, box if name == "with" else None)
        y.connect("x")
        got = []
        y.on_data = lambda peer, payload, ip, uplink, src: got.append(bytes(payload))
        r = {"had_reserve": y._reserve is not None,
             "up": poll_until((x, y), lambda: up(y, "x") and up(x, "y"), 3000)}
        sent = 0
        if r["up"]:
            for i in range(10):
                sent += 1 if x.send(bytes([i]) * 100, "y") else 0
                poll_until((x, y), lambda: len(got) > i, 500)
        r.update({"sent": sent, "got": len(got), "counters": dict(y.counters),
                  "intact": got == [bytes([i]) * 100 for i in range(len(got))],
                  "still_blocked": largest_block_below(2100)})
        res[name] = r
        y.shutdown()
        y = None
        gc.collect()
    print(json.dumps(res))
    ballast = None  # noqa: F841
    x.shutdown()


def pinned(port):
    """Phase 4: a runtime without its reserve (gone: a read into it met the datagram's own
    objects as it took it back) takes it back after a read, once the datagram it read is let
    go of: while that datagram's objects are held they may keep the only block of that size
    in pieces (a board at 152K never had its reserve again, and no socket read again). The
    heap free (after a collection) when the reserve is taken back, beside the heap free after
    the turn: a 2,000-byte datagram still held shows as 2,000 bytes less."""
    dst = socket.getaddrinfo(HOST, port)[0][-1]
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    y = runtime("y", "x", port, port + 1)
    take = y._take_reserve
    free_at_take = []

    def taking():
        gc.collect()
        free_at_take.append(gc.mem_free())
        take()

    y._take_reserve = taking
    s.sendto(b"x" * 100, dst)  # (the first read grows the runtime's tables)
    poll_until((y,), lambda: y.uplinks["lo"].rx, 1000)
    res = {"phase": "pinned", "rounds": []}
    for i in range(3):
        y._reserve = None
        del free_at_take[:]
        s.sendto(bytes(2000), dst)
        poll_until((y,), lambda: y.uplinks["lo"].rx > i + 1, 1000)
        back = y._reserve is not None
        y._reserve = None
        gc.collect()
        res["rounds"].append({"rx": y.uplinks["lo"].rx, "back": back,
                              "free_at_take": free_at_take[:], "free_after": gc.mem_free()})
    print(json.dumps(res))
    s.close()
    y.shutdown()


if __name__ == "__main__":
    main(sys.argv[1:])
