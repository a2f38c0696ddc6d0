"""Two real mastd on loopback: the concentrator killed (no SHUT) and started again, and the
router (the initiator) has a new association within seconds, not its outage budget
(runtime/restart.py; its rules are tested on the simulated network in tests/core/test_restart.py)."""

import os
import signal
import time

from runtime.restart import RESTART_MS
from test_mastd_control import Proc, conf, needs_root, wait_for


def _server_and_router(tmp_path, base):
    """A concentrator (server) and a router that calls it, each a real mastd:
    (the server's configuration, server, router)."""
    sconf = conf("server", "router1", base, [("lo", "127.0.0.10", 100)])
    srv = Proc(tmp_path, "srv", sconf)
    rtr = Proc(tmp_path, "rtr", conf("router1", "server", base, [("a", "127.0.0.11", 10)],
                                     "127.0.0.10:%d" % base))
    return sconf, srv, rtr


@needs_root
def test_a_router_reassociates_with_a_concentrator_killed_and_restarted_within_seconds(tmp_path):
    sconf, srv, rtr = _server_and_router(tmp_path, 21000 + os.getpid() % 19000)
    srv2 = None
    try:
        first = wait_for("association", rtr.assoc)
        srv.p.send_signal(signal.SIGKILL)  # a crash: no SHUT
        srv.p.wait()
        killed = time.monotonic()
        srv2 = Proc(tmp_path, "srv", sconf)  # (the stale control socket is replaced)
        new = wait_for("a new association", lambda: (rtr.assoc() or {}).get("nonce_id") not in
                       (None, first["nonce_id"]) and rtr.assoc(), timeout=RESTART_MS / 1000 + 15)
        took = time.monotonic() - killed
        assert took < RESTART_MS / 1000 + 10, took  # before: the outage budget, 300 s
        assert new["label"] != first["label"]
        closed = [e for e in rtr.status()["events"] if e["event"] == "association_closed"]
        assert [e["reason"] for e in closed] == ["replaced"], closed
        assert srv2.assoc() and srv2.assoc()["nonce_id"] == new["nonce_id"]
    finally:
        rtr.stop()
        srv.stop()
        if srv2 is not None:
            srv2.stop()


@needs_root
def test_a_router_whose_concentrator_stopped_cleanly_associates_again_once_it_is_back(tmp_path):
    # a SHUT closes the router's association: no association is left for runtime/restart.py to
    # watch, and only mastd's own reconnect (RECONNECT_MS after association_closed) brings it back
    sconf, srv, rtr = _server_and_router(tmp_path, 21500 + os.getpid() % 19000)
    srv2 = None
    try:
        first = wait_for("association", rtr.assoc)
        srv.stop()  # SIGTERM: SHUT to the router, which closes its association
        closed = wait_for("the router's association closed", lambda: [
            e for e in rtr.status()["events"] if e["event"] == "association_closed"])
        assert [e["peer"] for e in closed] == ["server"] and rtr.assoc() is None
        srv2 = Proc(tmp_path, "srv", sconf)
        new = wait_for("a new association", lambda: (rtr.assoc() or {}).get("nonce_id") not in
                       (None, first["nonce_id"]) and rtr.assoc(), timeout=RESTART_MS / 1000 + 5)
        assert srv2.assoc() and srv2.assoc()["nonce_id"] == new["nonce_id"]
    finally:
        rtr.stop()
        srv.stop()
        if srv2 is not None:
            srv2.stop()
