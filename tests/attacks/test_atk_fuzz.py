"""The endpoint process under fuzz (a short, fixed-seed smoke of `make fuzz`): random and
structured packets of every message type, many tagged with the association's real keys so that
they reach the handlers, sent over UDP in a network namespace to `mast endpoint` (CPython) and to
the same program under the MicroPython unix port at the documented heap (mpy-cross output).

Each run must end with the target alive, every datagram counted exactly once (`rx` equal to what
the fuzzer sent; accepted or dropped for a reason), no `internal_error`, and exit status 0 on
`quit`. The one exception is a receive that ran out of memory (MicroPython copies the datagram
after taking it from the kernel, so the read may lose it): each is counted (rx_no_memory,
rx_rest) and bounds the datagrams missing. The big runs (1M cases on CPython, 200k on
MicroPython) are `make fuzz`.
"""

import pytest

import fuzzrun
from netnsmark import needs_netns

pytestmark = needs_netns

# the drop reasons that show cases got past each layer: the header (bad_*), the label
# (unknown_label), the window (replay), the tag (mac), the state table (unexpected), the body
# (malformed), a handler's own checks (bad_addresses, unsupported), and the handshake's
# ("a|b": either name; the window's drops are "too_old" and "duplicate" since MAST/1.1)
LAYERS = ("bad_version", "bad_type", "bad_short", "unknown_label", "replay|too_old|duplicate",
          "mac", "unexpected", "malformed", "bad_addresses", "unsupported", "accepted",
          "bad_cookie", "stale_cookie", "short_init", "unknown_peer", "keying_mismatch")


def check_campaign(res):
    detail = dict((k, res.get(k)) for k in ("death", "stderr_tail", "last_error", "exit_code",
                                            "sent", "target_rx", "died_after_cases"))
    assert res["death"] is None, detail
    assert res["alive_at_end"] and res["exit_code"] == 0 and res["stopped_line"], detail
    assert res["internal_errors"] == 0, detail
    detail["rx_memory_misses"] = res.get("rx_memory_misses")
    # nothing lost or uncounted on the way, but what a receive without memory may have lost
    # (each counted: rx_no_memory, rx_rest; never on CPython)
    assert fuzzrun.uncounted_ok(res), detail
    assert res["counted_once"], res["counters"]  # each datagram: accepted or one drop reason
    assert res["cases"] >= res["cases_asked"]


def test_cpython_endpoint_takes_10k_fuzz_cases_alive_with_every_datagram_counted():
    res = fuzzrun.run(["--runtime", "cpython", "--cases", "10000", "--seed", "smoke-cpython"])
    check_campaign(res)
    assert sorted(res["kinds"]) == sorted(k for k, _ in fuzzrun.fuzzgen.CASE_KINDS)
    c = res["counters"]
    missing = [k for k in LAYERS if not any(c.get(x) for x in k.split("|"))]
    assert not missing, ("no case reached these checks", missing, res["counters"])
    assert res["handshakes"] >= 2  # fuzzed SHUTs closed the association; a new one replaced it


def test_micropython_endpoint_at_176k_takes_3k_fuzz_cases_alive_with_every_datagram_counted():
    if fuzzrun.atklib.micropython_missing():
        pytest.skip(fuzzrun.atklib.micropython_missing())
    res = fuzzrun.run(["--runtime", "micropython", "--heapsize", "176K", "--cases", "3000",
                       "--seed", "smoke-micropython"])
    check_campaign(res)
