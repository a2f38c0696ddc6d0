"""The board and a MAST peer on the PC (`mast endpoint`, at --peer-host): the association
comes up, losing the primary uplink fails over, and status reads as documented."""

import time

import pytest

from hw_options import PC_PEER
import status_schema


def association_status(con):
    st = con.call("status")
    found = [a for a in st["associations"] if a["peer"] == PC_PEER]
    assert found, st["associations"]
    return st, found[0]


def test_an_association_comes_up_with_mast_endpoint_on_the_pc(hw, association):
    with hw.console() as con:
        st, a = association_status(con)
        assert a["state"] == "established"
        up = [n for n in hw.uplinks_by_preference() if st["uplinks"].get(n, {}).get("state") == "up"]
        # it may come up on any uplink; the preferred one carries it once its path is verified
        end = time.monotonic() + 15
        while a["primary"].split(">")[0] != up[0]:
            assert time.monotonic() < end, "the primary stays on %s, not %s" % (a["primary"], up[0])
            time.sleep(0.2)
            st, a = association_status(con)
    assert a["primary"] == "%s>%s:%d" % (up[0], hw.peer_host, association.port)
    assert any(e.get("event") == "association_up" and e.get("peer") == hw.name for e in association.events)


def test_taking_the_primary_uplink_down_fails_over_as_status_shows(hw, association):
    with hw.console() as con:
        st, a = association_status(con)
        up = [n for n in hw.uplinks_by_preference() if st["uplinks"].get(n, {}).get("state") == "up"]
        if len(up) < 2:
            pytest.skip("the board has %d uplink up (%s): nothing to fail over to" % (len(up), ", ".join(up)))
        primary = a["primary"].split(">")[0]
        try:
            assert con.call("uplink", name=primary, state="down")["admin"] is False
            end = time.monotonic() + 15
            while True:
                st, a = association_status(con)
                if a["primary"] and not a["primary"].startswith(primary + ">"):
                    break
                assert time.monotonic() < end, "no failover from %s in 15 s: %r" % (primary, a)
                time.sleep(0.1)
            assert a["state"] == "established"
            assert a["primary"].split(">")[0] in up[1:]
            assert st["uplinks"][primary]["state"] == "off" and "mast" not in st["uplinks"][primary]
            assert any(e.get("event") == "failover" for e in con.events), con.events[-5:]
        finally:
            con.call("uplink", name=primary, state="up")


def test_status_matches_the_documented_schema(hw, association):
    with hw.console() as con:
        st = con.call("status")
    assert st["associations"], "the association is up, so status lists it"
    assert status_schema.check(st) == []
