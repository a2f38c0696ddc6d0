"""INIT and COOKIE-ECHO floods against the endpoint process (floods.py), in a network namespace,
on CPython and on the MicroPython unix port at 176K: the endpoint keeps no state for any of
them, answers only the INITs that verify (statelessly, with a smaller INIT-ACK), counts every
datagram, and a legitimate peer connecting in the middle of the flood gets in.
"""

import pytest

import floods
import fuzzgen
from netnsmark import needs_netns

pytestmark = needs_netns


@pytest.mark.parametrize("runtime,n_each", (("cpython", 2000), ("micropython", 500)))
def test_init_and_cookie_floods_keep_no_state_and_a_real_peer_still_connects(
        space, tmp_path, request, runtime, n_each):
    mpy_dir = request.getfixturevalue("atk_mpy") if runtime == "micropython" else None
    r = floods.run_flood(space, str(tmp_path), runtime, n_each, mpy_dir=mpy_dir)
    assert r["death"] is None and r["alive"] and r["exit_code"] == 0, r
    sent, d = r["sent"], r["delta"]
    assert r["flood_total"] == 4 * n_each
    assert d["rx"] == r["sent_to_target"], d  # every datagram reached the endpoint, counted
    assert d.get("internal_error", 0) == 0
    assert d["mac"] == sent["offpath_init"]  # a guessed key: dropped
    assert d["bad_cookie"] == sent["forged_cookie"]  # a fresh stamp, a forged cookie: dropped
    assert d["stale_cookie"] == sent["stale_cookie"]
    # valid INITs are answered, each once, by a smaller INIT-ACK, and nothing else answers
    assert r["answers_to_flood_sources"] == {fuzzgen.INIT_ACK: sent["insider_init"]}
    assert r["answer_bytes"] == 72 * sent["insider_init"] < r["insider_init_bytes"]
    # no state: the flooder's INITs made no association; the real peer got one
    assert r["associations"] == ["fz", "fzreal"]
    assert r["real_peer_connect_s"] is not None and r["real_peer_connect_s"] < 5.0
