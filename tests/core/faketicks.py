# A board's time.ticks_ms for the clock tests (tests/core/test_units.py, test_boundaries.py):
# a module of its own, so that a small test module imports only this. (ticks_diff_for is here,
# not in runtime/clock.py: a board has time.ticks_diff, and its heap keeps no test's code.)


class FakeTicks:
    """A board's time.ticks_ms, wrapping at `period`."""

    def __init__(self, start, period):
        self.t = start
        self.period = period

    def __call__(self):
        return self.t % self.period

    def advance(self, ms):
        self.t += ms


def ticks_diff_for(period):
    """A ticks_diff for a counter that wraps at `period` (a power of two), as
    MicroPython's time.ticks_diff: the signed distance, for |d| < period / 2."""
    half = period // 2

    def diff(a, b):
        return ((a - b + half) & (period - 1)) - half

    return diff
