"""Issue 15.8: bursty floods must not cost a legitimate stream its datagrams (bursts.py).

Bursts of 200 datagrams of 1,200 bytes every 10 ms (20,000 a second on average) from another
process, while a legitimate peer streams 100 datagrams a second of the same size to the
endpoint (`mast endpoint`, its default configuration). With the system's default receive buffer
(~208 KB) each burst overflows it and the stream loses about 2% (measured here; the issue saw
24.5% on its machine); a buffer sized for bursts (4 MB: measured 0 lost, every flood datagram
read) loses none. The test allows 1%.
"""

import pytest

import bursts
from netnsmark import needs_netns

pytestmark = needs_netns


def test_a_stream_loses_at_most_1_percent_under_bursts_of_200_datagrams(space, tmp_path):
    r = bursts.run_bursts(space, str(tmp_path), "cpython", seconds=3.0)
    assert r["exit_code"] == 0 and r["internal_errors"] == 0, r
    assert r["flood_sent"] >= 50000 and r["stream_sent"] >= 250, r  # the load was applied
    assert r["stream_lost"] <= r["stream_sent"] // 100, r
