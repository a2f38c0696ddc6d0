"""Replay against the endpoint process, in a network namespace (replays.py): everything the
peer sent (handshake, DATA, a SET, probes and their answers) is captured and sent again: in
order, shuffled, from other source addresses, after the association was SHUT, and to a
restarted endpoint.

Nothing replayed is accepted: no datagram reaches the app twice, the association's state does
not move, no new association appears, and every replayed datagram is counted as a drop
(`duplicate`/`too_old` inside an association, `unknown_label` after it, `stale_cookie` or
`bad_cookie` for COOKIE-ECHO). Nothing is answered, except an INIT, which is answered
statelessly by design (an INIT-ACK to where it came from, smaller than the INIT), and DATA
replayed on the association's own path, which still earns KEEPALIVE feedback at most once per
`ack` interval (a redundant copy tells the path works; section 10).
"""

import pytest

import atklib
import fuzzgen
import replays
from netnsmark import needs_netns

pytestmark = needs_netns


def check_refused(delta, packets, syncs):
    """Every replayed datagram dropped, except INITs: those are answered statelessly (and
    counted accepted), which creates nothing."""
    inits = sum(1 for p in packets if p[1] == fuzzgen.INIT)
    assert delta.get("rx") == len(packets) + syncs, delta
    assert delta.get("accepted", 0) == syncs + inits, delta  # our sync PROBE, the INITs
    assert atklib.drops(delta) - delta.get("accepted", 0) == len(packets) - inits, delta


def check_answers(heard, packets, from_path):
    """What the replays got back: an INIT-ACK per INIT at most; and, for DATA replayed on the
    association's validated path, KEEPALIVE feedback at most once per `ack` interval (100 ms:
    a redundant copy of DATA still tells that path works; section 10)."""
    inits = sum(1 for p in packets if p[1] == fuzzgen.INIT)
    heard = dict(heard)
    seconds = heard.pop("seconds")
    assert set(heard) <= {fuzzgen.INIT_ACK, fuzzgen.KEEPALIVE}, heard
    assert heard.get(fuzzgen.INIT_ACK, 0) <= inits, heard
    ack_bound = 1 + int(seconds / 0.1) if from_path else 0  # the default profile's `ack`
    assert heard.get(fuzzgen.KEEPALIVE, 0) <= ack_bound, (heard, seconds)


@pytest.mark.parametrize("runtime", ("cpython", "micropython"))
def test_replays_in_order_shuffled_from_other_addresses_after_shut_and_restart_are_refused(
        space, tmp_path, runtime, request):
    mpy_dir = request.getfixturevalue("atk_mpy") if runtime == "micropython" else None
    r = replays.run_replays(space, str(tmp_path), runtime, mpy_dir)
    legit = r["legit"]
    assert legit["data_events"] == replays.N_DATA and legit["packets"] >= replays.N_DATA + 5
    assert "10.77.0.1:6278" in legit["assoc"]["remotes"]  # the SET was taken
    for name, on_path in (("in_order", True), ("shuffled", True), ("other_addresses", False),
                          ("after_shut", False), ("after_restart", False)):
        s = r[name]
        assert s["data"] == 0, (name, s["delta"])  # nothing reached the app again
        if s["synced"] is not None:
            assert s["synced"], name  # every sync answered: the association still works
        check_refused(s["delta"], s["packets"], s["synced"] or 0)
        check_answers(s["heard"], s["packets"], on_path)
    d = r["in_order"]["delta"]
    assert d.get("duplicate", 0) + d.get("too_old", 0) + d.get("replay", 0) >= replays.N_DATA
    before, after = legit["assoc"], r["assoc_after"]
    assert (after["label"], after["nonce_id"]) == (before["label"], before["nonce_id"])
    assert sorted(after["remotes"]) == sorted(before["remotes"])  # no address learnt
    assert "fz" not in r["after_shut_associations"] and r["after_shut_ups"] == 1
    d = r["after_restart"]["delta"]
    assert d.get("bad_cookie", 0) + d.get("stale_cookie", 0) >= 1, d
    assert r["after_restart_associations"] == [] and r["after_restart_ups"] == 0
    assert r["first_exit"] == 0 and r["second_exit"] == 0, r["stderr"]
