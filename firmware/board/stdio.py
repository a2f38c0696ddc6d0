# The console's port: the REPL's own stdin and stdout (USB-serial, UART, or the
# simulated board's pty). The protocol itself is console.py; this only moves bytes.
#
# Input is read one byte at a time, and only while poll() says a byte is there,
# so the loop never blocks. Reading stops right after a Ctrl-C (0x03): the bytes
# behind it (mpremote's "\r\x01" for the raw REPL) are left for the REPL.

import sys
import select

from .compat import MICROPYTHON, os, json

_READ_MAX = 128  # bytes per call, so a flood of input cannot starve the network (a turn reads
# this much: a line of 2,048 bytes takes 16 turns, each a few ms while input waits)


class Stdio:
    def __init__(self):
        self.stream = sys.stdin
        self.inp = getattr(sys.stdin, "buffer", sys.stdin)
        self.fd = None if MICROPYTHON else sys.stdin.fileno()
        self.poller = select.poll()
        self.poller.register(sys.stdin, select.POLLIN)
        self.eof = False
        # the bytes of a read land here, taken once while the heap is in one piece: a board
        # whose heap traffic has cut into pieces has no block of this size to spare, and a
        # read that needed one found none each turn, so its console heard nothing again
        self.buf = bytearray(_READ_MAX + 3)
        self.view = memoryview(self.buf)
        # a line goes out only when stdout has room: a USB console that a PC holds open but
        # does not read makes each write wait up to 500 ms (rp2: mp_usbd_cdc_tx_strn), and a
        # line of many pieces outlasts the watchdog; such a line is dropped and counted
        self.dropped = 0
        self.room = select.poll()
        try:
            self.room.register(sys.stdout, select.POLLOUT)
        except (AttributeError, OSError, TypeError, ValueError):
            self.room = None  # a stdout that cannot be polled: written as before

    def _ready(self):
        for item in self.poller.poll(0):
            if item[1] & select.POLLIN:
                return True
            if item[1] & (select.POLLHUP | select.POLLERR):
                self.eof = True
        return False

    def read(self):
        """The bytes waiting on stdin, in this port's buffer until the next read (empty if
        none; self.eof is set at end of input)."""
        out = self.buf
        n = 0
        try:
            while n < _READ_MAX and not self.eof and self._ready():
                b = os.read(self.fd, 1) if self.fd is not None else self.inp.read(1)
                if not b:
                    self.eof = True
                    break
                if type(b) is str:  # a port whose stdin has no binary buffer (up to 4 bytes)
                    b = b.encode()
                for c in b:
                    out[n] = c
                    n += 1
                if b[0] == 3:
                    break
        except MemoryError:  # what was read goes on; the rest waits on stdin
            pass
        return self.view[:n]

    def wait(self, timeout_ms):
        """Sleep until input arrives or timeout_ms pass (maintenance mode's loop)."""
        if not self.eof:
            self.poller.poll(timeout_ms)
        else:
            import time

            time.sleep(timeout_ms / 1000)

    def _full(self):
        if self.room is not None and not self.room.poll(0):
            self.dropped += 1
            return True
        return False

    def write(self, line):
        if self._full():
            return
        out = sys.stdout
        out.write(line)
        out.write("\n")
        if hasattr(out, "flush"):
            out.flush()

    def send(self, obj):
        """One JSON object as a line, written as it is encoded (json.dump): a large reply
        (status) never exists as one string on the heap."""
        if self._full():
            return
        out = sys.stdout
        json.dump(obj, out)
        out.write("\n")
        if hasattr(out, "flush"):
            out.flush()
