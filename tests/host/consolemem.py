"""The board's console when the heap is in pieces (issue 11.4), run by
tests/host/test_runtime_memory.py under the MicroPython unix port (mpy-cross output of the
firmware), its stdin a pipe:

    micropython -X heapsize=256K tests/host/consolemem.py < requests

The console's port (board/stdio.py) is taken as a board takes it at boot, while the heap is in
one piece; then the heap is cut into pieces as traffic leaves a board's (fragment(): half of it
free, no block of 500 bytes) and the requests on stdin are read and answered. Prints one
JSON line {"blocked": ...}, then the console's replies, then {"reads", "no_memory", "eof"} at
the end of input. Bounded: at most 400 turns of 25 ms.
"""

import gc
import json

from board.console import Console
from board.stdio import Stdio
from rtmem import largest_block_below

SLOTS = 2000  # more 400-byte blocks than the heap holds


def fragment():
    """Fill the heap with 400-byte blocks and free every other one, then take whatever block
    of 500 bytes or more is still free (the list that holds them is taken first, whole)."""
    gc.collect()
    blocks = [None] * SLOTS
    try:
        for i in range(SLOTS):
            blocks[i] = bytearray(400)
    except MemoryError:
        pass
    for i in range(0, SLOTS, 2):
        blocks[i] = None
    gc.collect()
    for i in range(0, SLOTS, 2):
        try:
            blocks[i] = bytearray(500)
        except MemoryError:
            break
    return blocks


class Board:
    """What the console carries ops out on: hello only."""

    def hello(self):
        return {"firmware": "mast-board"}


def main():
    io = Stdio()
    con = Console(Board(), io.write, io.send)
    ballast = fragment()
    io.write(json.dumps({"blocked": largest_block_below(500)}))
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
