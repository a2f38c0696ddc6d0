# Sliding replay window over 48-bit sequence numbers (IPsec / RFC 6479 style).
# The bitmap is a ring of `size` bits in a preallocated bytearray: bit (seq % size)
# says whether seq was seen. Advancing clears only the bits skipped over, so the
# common case (seq = highest + 1) costs one bit, with no allocation.


class ReplayWindow:
    def __init__(self, size):
        if size < 64 or size % 64:
            raise ValueError("replay window must be a multiple of 64, at least 64")
        self.size = size
        self.bits = bytearray(size // 8)
        self.highest = -1  # nothing seen yet

    def check(self, seq):
        """True if seq is new and inside the window. Does not record it."""
        if seq > self.highest:
            return True
        if seq <= self.highest - self.size:
            return False
        i = seq % self.size
        return not (self.bits[i >> 3] & (1 << (i & 7)))

    def commit(self, seq):
        """Record seq as seen (call only after check() and authentication)."""
        size = self.size
        bits = self.bits
        if seq > self.highest:
            gap = seq - self.highest
            if gap >= size:
                for j in range(len(bits)):
                    bits[j] = 0
            else:
                n = self.highest + 1
                while n < seq:
                    i = n % size
                    bits[i >> 3] &= ~(1 << (i & 7)) & 0xFF
                    n += 1
            self.highest = seq
        i = seq % size
        bits[i >> 3] |= 1 << (i & 7)
