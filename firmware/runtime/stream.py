# A test stream: numbered datagrams at a steady rate, so the far side can count
# what arrived, what was lost and what came twice. The payload is the one the
# core tests' simulator uses (tests/core/simnet.py Stream):
#
#   "S" | seq u32 BE (modulo 2^32) | send time u64 BE (ms, the sender's clock) | zero padding
#
# Restricted Python: runs on MicroPython and CPython.

HEAD = 13


def encode(seq, t_ms, size=64):
    # (the field is 32 bits: the seq wraps, 49.7 days into a stream of 1,000 a second)
    p = b"S" + (seq & 0xFFFFFFFF).to_bytes(4, "big") + t_ms.to_bytes(8, "big")
    if size > HEAD:
        p += bytes(size - HEAD)
    return p


def decode(payload):
    """(seq, send time ms) of a stream payload, or None for any other payload."""
    if len(payload) < HEAD or payload[0] != 0x53:  # "S"
        return None
    return int.from_bytes(payload[1:5], "big"), int.from_bytes(payload[5:13], "big")


class Stream:
    """Sends `rate` datagrams a second to `peer` through a Runtime, starting when
    start() is called, until stopped or `count` were sent (0: no limit)."""

    def __init__(self, rt, peer, rate=50, size=64, count=0):
        self.rt = rt
        self.peer = peer
        self.size = size
        self.count = count
        self.seq = 0
        self.sent = 0  # the core took it (send_data returned True)
        self.refused = 0  # no association or no usable path at that moment
        self.next = None
        self.rate = 0
        self.set_rate(rate)

    def set_rate(self, rate):
        self.rate = rate
        self.period = 1000 // rate if rate else 0

    def start(self, now):
        if self.next is None and self.rate:
            self.next = now

    def wait_ms(self, now):
        """ms until the next datagram is due, or None when idle."""
        if self.next is None or not self.rate:
            return None
        return max(0, self.next - now)

    def tick(self, now):
        """Send what is due (at most a few, if the loop fell behind)."""
        if self.next is None or not self.rate:
            return
        n = 0
        while self.next <= now and n < 4:
            if self.count and self.seq >= self.count:
                self.next = None
                return
            if self.rt.send(encode(self.seq, now, self.size), self.peer):
                self.sent += 1
            else:
                self.refused += 1
            self.seq += 1
            self.next += self.period
            n += 1
        if self.next <= now:  # far behind (a stalled process): skip, don't burst
            self.next = now + self.period

    def stop(self):
        self.next = None

    def status(self):
        return {"peer": self.peer, "rate": self.rate, "seq": self.seq, "sent": self.sent,
                "refused": self.refused, "running": self.next is not None}
