# A non-wrapping millisecond clock built from a wrapping tick counter.
# A board's time.ticks_ms() wraps (at 2**30 on most ports); the core wants a
# count that only grows. The runtime builds one of these from ticks_ms and
# ticks_diff and calls now() at least once per half wrap period (ticks_diff is right for
# gaps under half the period: 6 days at 2**30; a board calls it every second; a longer gap is
# lost, counted as none).
# Pure: the tick functions are passed in, so tests can wrap it at will (tests/core/faketicks.py).


class MonotonicMs:
    def __init__(self, ticks_ms, ticks_diff, start=0):
        self._ticks = ticks_ms
        self._diff = ticks_diff
        self._last = ticks_ms()
        self._now = start

    def now(self):
        t = self._ticks()
        d = self._diff(t, self._last)
        if d > 0:  # never step back, even if a port's ticks misbehave
            self._now += d
        self._last = t  # (a gap of half the period or more reads as negative: counted as none,
        # but counting goes on from here, not frozen until the ticks come round again)
        return self._now

