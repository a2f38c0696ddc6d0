# A board's time.ticks_ms for the clock tests (tests/core/test_units.py, test_boundaries.py):
# a module of its own, so that a small test module imports only this.


class FakeTicks:
    """A board's time.ticks_ms, wrapping at `period`."""

    def __init__(self, start, period):
        self.t = start
        self.period = period

    def __call__(self):
        return self.t % self.period

    def advance(self, ms):
        self.t += ms
