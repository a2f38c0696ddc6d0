"""Issue 15.8: bursty floods must not cost a legitimate stream its datagrams (bursts.py).

A burst of 200 datagrams of 1,200 bytes from another process arrives faster than any endpoint
reads; whatever does not fit the socket's receive buffer is dropped by the kernel, the stream's
datagrams with it. With the system's default receive buffer (~208 KB) a burst overflows it; a
buffer sized for bursts (`mast endpoint`'s default, 1 MiB asked for) keeps it whole.

The test takes the worst case a burst can find, and no clock: the endpoint reads nothing
(stopped) while the burst and then ten of the stream's datagrams arrive; let go, it must read
all of them. (Against the clock, a loaded machine would decide: bench/security.py measures
bursts every 10 ms for 10 s, with bursts.run_bursts; docs/SECURITY.md.)
"""

import pytest

import bursts
from netnsmark import needs_netns

pytestmark = needs_netns


def test_a_burst_that_comes_while_the_endpoint_is_not_reading_costs_the_stream_nothing(space, tmp_path):
    r = bursts.run_paused_burst(space, str(tmp_path), "cpython")
    assert r["exit_code"] == 0 and r["internal_errors"] == 0, r
    assert r["flood_sent"] == bursts.BURST and r["stream_sent"] == 10, r  # the load was applied
    assert r["stream_lost"] == 0, r
    assert r["target_rx"] >= r["flood_sent"] + r["stream_sent"], r  # every datagram kept and read
