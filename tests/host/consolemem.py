"""The board's console when the heap is in pieces (issue 11.4), run by
tests/host/test_runtime_memory.py under the MicroPython unix port (mpy-cross output of the
firmware), its stdin a pipe:

    micropython -X heapsize=256K tests/host/consolemem.py < requests

The console's port (board/stdio.py) is taken as a board takes it at boot, while the heap is in
one piece; then the heap is cut into pieces as traffic leaves a board's (fragment(): half of it
free, no block of SMALL bytes) and the requests on stdin are read and answered (each op needs
room of its own: in such a heap the answer is `out of memory`, with the request's id). Prints one
JSON line {"blocked": ...}, then the console's replies, then {"reads", "no_memory", "eof"} at
the end of input. Bounded: at most 400 turns of 25 ms.
"""

import gc
import json

from board.console import Console
from board.stdio import Stdio
from rtmem import largest_block_below

SLOTS = 4000  # more 64-byte blocks than the heap holds
SMALL = 100  # no block of this many bytes is left free: a read of 128 bytes (board/stdio.py
# _READ_MAX) needs more than that, so one that took a new block each turn read nothing


def fragment():
    """Fill the heap with 64-byte blocks and free every other one (the list that holds them is
    taken first, whole). main() then takes every block of SMALL bytes or more still free."""
    gc.collect()
    blocks = [None] * SLOTS
    try:
        for i in range(SLOTS):
            blocks[i] = bytearray(64)
    except MemoryError:
        pass
    for i in range(0, SLOTS, 2):
        blocks[i] = None
    gc.collect()
    return blocks


class Board:
    """What the console carries ops out on: hello only."""

    def hello(self):
        return {"firmware": "mast-board"}


def main():
    io = Stdio()
    con = Console(Board(), io.write, io.send)
    ballast = fragment()
    for _ in range(1000):  # every block of SMALL bytes still free, taken: blocked twice running,
        # as a check that fails leaves its MemoryError behind, which the next one's collection
        # frees (once, in a copy of the tree at another path, that made a block of SMALL bytes)
        if largest_block_below(SMALL) and largest_block_below(SMALL):
            break
        ballast = (ballast, bytearray(SMALL))
    io.write(json.dumps({"blocked": largest_block_below(SMALL)}))
    reads = no_memory = 0
    for _ in range(400):
        if io.eof:
            break
        io.wait(25)
        try:
            data = io.read()
        except MemoryError:  # (a read that needs a block the heap has not got)
            no_memory += 1
            continue
        if data:
            reads += 1
            con.feed(data)
    ballast = None  # noqa: F841
    io.write(json.dumps({"reads": reads, "no_memory": no_memory, "eof": io.eof}))


main()
