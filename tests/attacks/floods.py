"""INIT and COOKIE-ECHO floods against the endpoint process (in the caller's namespace), with
a legitimate peer connecting in the middle. Used by test_atk_floods.py and `make fuzz`.

Four floods, mixed, from 8 source addresses:
- offpath_init: INITs under a name the target serves, tagged with a key the attacker guessed
  (dropped: `mac`);
- insider_init: valid INITs from a holder of a peer's PSK (answered statelessly with INIT-ACK;
  no state);
- forged_cookie: COOKIE-ECHOs with a fresh stamp (read from a real INIT-ACK) and a forged
  cookie tag (`bad_cookie`);
- stale_cookie: COOKIE-ECHOs with random stamps (`stale_cookie`, checked before anything else).

Every 64 datagrams the flooder syncs on an association of its own (a PROBE answered only once
the target took everything before it), so the counts are exact and nothing is lost in socket
buffers: the measure is the endpoint's, not the kernel's.
"""

import os
import socket
import struct
import time

import atklib
import fuzzgen
import fuzzrun
from mast.endpoint import Endpoint

REAL = ("127.0.0.9", 7100)
BATCH = 64  # datagrams between syncs: well inside a default receive buffer (~1 KB each)
KINDS = ("offpath_init", "insider_init", "forged_cookie", "stale_cookie")
STAMP_AGE_MS = 1000  # how old a forged cookie's stamp is made (fresh: COOKIE_LIFE is 60 s)


def _init_body(b, name, r):
    body = b.init_body(r.below(1 << 30) + 1, r.bytes(16), r.below(1 << 32), 0, name, [])
    return body + bytes(max(0, fuzzgen.MIN_INIT - 28 - len(body)))


class RealPeer:
    """A legitimate peer (the real core, name fzreal) on its own socket."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(REAL)
        self.sock.setblocking(False)
        cfg = {"name": "fzreal", "peers": {"target": {"psk": atklib.PSK,
                                                      "addresses": ["%s:%d" % fuzzrun.TARGET]}}}
        self.ep = Endpoint(cfg, os.urandom)
        self.ep.uplink_up("lo", REAL, fuzzrun.now_ms())
        self.started = None
        self.up_at = None
        self.sent = 0

    def connect(self):
        self.started = time.monotonic()
        self.ep.connect("target", fuzzrun.now_ms())
        self.flush()

    def flush(self):
        for _, dst, data in self.ep.datagrams_to_send():
            self.sock.sendto(data, dst)
            self.sent += 1
        e = self.ep.next_event()
        while e is not None:
            if e.kind == "association_up" and self.up_at is None:
                self.up_at = time.monotonic()
            e = self.ep.next_event()

    def pump(self):
        while True:
            try:
                data, src = self.sock.recvfrom(4096)
            except (BlockingIOError, InterruptedError):
                break
            self.ep.receive("lo", src, data, fuzzrun.now_ms())
        t = self.ep.next_timer()
        if t is not None and t <= fuzzrun.now_ms():
            self.ep.handle_timer(fuzzrun.now_ms())
        self.flush()


def run_flood(space, workdir, runtime="cpython", n_each=2000, mpy_dir=None, heapsize="176K",
              time_limit=120.0, seed="flood"):
    """-> dict of what happened (see the test for what must hold)."""
    with atklib.inside(space):
        fz = fuzzrun.Fuzzer(seed, 32, 3.0)
        real = RealPeer()
    t = atklib.Target(atklib.target_doc(connect_ini=False), workdir, runtime=runtime,
                      heapsize=heapsize, mpy_dir=mpy_dir, ns=space)
    fz.alive = t.alive
    r = fuzzgen.Rand(seed)
    b = fuzzgen.TableBuilder()
    k_hs = fuzzgen.k_init(fuzzrun._PSKS["hs"])
    res = {"runtime": runtime, "heapsize": t.heapsize, "n_each": n_each}
    sent = dict((k, 0) for k in KINDS)
    fresh_stamp = [None]
    try:
        t.wait_event("started", 60)
        assert fz.handshake(20), t.stderr_tail()
        # one real INIT-ACK tells the target's clock (an insider can read it)
        with atklib.inside(space):  # a socket belongs to the namespace it is made in
            probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            probe.bind(("127.0.0.8", 7200))
            probe.settimeout(5)
            probe.sendto(b.seal(k_hs, fuzzgen.INIT, 0, 0, _init_body(b, "fzhs", r)), fuzzrun.TARGET)
            data, _ = probe.recvfrom(4096)
            fresh_stamp[0] = struct.unpack_from(">I", data, 12 + 24)[0]
            stamp_t = time.monotonic()
        finally:
            probe.close()
        st0 = t.status()
        c0 = st0["counters"]
        res["rss_before_kb"] = t.rss_kb()
        res["heap_free_before"] = st0.get("runtime", {}).get("heap_free")
        sent0 = fz.sent
        t0 = time.monotonic()
        total = 4 * n_each
        i = 0
        while i < total and time.monotonic() - t0 < time_limit:
            for _ in range(BATCH):
                if i >= total:
                    break
                kind = KINDS[i % 4]
                src = fz.extra[i % len(fz.extra)]
                if kind == "offpath_init":
                    pkt = b.seal(r.bytes(32), fuzzgen.INIT, 0, 0, _init_body(b, "fz", r))
                elif kind == "insider_init":
                    pkt = b.seal(k_hs, fuzzgen.INIT, 0, 0, _init_body(b, "fzhs", r))
                else:
                    if kind == "forged_cookie":  # the target's clock, as of the INIT-ACK,
                        # less STAMP_AGE_MS: the target reads its clock once for a batch of
                        # datagrams, so a stamp of "now" can be a ms ahead of it, which is a
                        # stale stamp (its age wraps past COOKIE_LIFE), not a forged one
                        age = int((time.monotonic() - stamp_t) * 1000) - STAMP_AGE_MS
                        stamp = (fresh_stamp[0] + age) & 0xFFFFFFFF
                    else:
                        stamp = (fresh_stamp[0] + 0x40000000 + r.below(1 << 31)) & 0xFFFFFFFF
                    body = struct.pack(">I", stamp) + r.bytes(16) + _init_body(b, "fzhs", r)
                    pkt = b.seal(r.bytes(32), fuzzgen.COOKIE_ECHO, r.below(1 << 30) + 1, 1, body)
                fz.send(src, pkt)
                sent[kind] += 1
                i += 1
            if real.started is None and i >= total // 3:
                real.connect()
            real.pump()
            fz.pump(0)  # (counts what came back to the flood's sources: fz.extra_heard)
            if not fz.sync():
                res["death"] = "unresponsive" if t.alive() else "exited"
                res["at"] = i
                if t.alive():
                    res["status_at_death"] = t.status()
                break
        res["flood_seconds"] = round(time.monotonic() - t0, 2)
        end = time.monotonic() + 10
        while real.up_at is None and time.monotonic() < end and t.alive():
            real.pump()
            time.sleep(0.01)
        res["real_peer_connect_s"] = round(real.up_at - real.started, 3) if real.up_at else None
        res["sent"] = dict(sent)
        res["flood_total"] = sum(sent.values())
        res["flood_pps"] = int(res["flood_total"] / res["flood_seconds"]) if res["flood_seconds"] else None
        fz.pump(0.2)
        res["answers_to_flood_sources"] = dict(fz.extra_heard)
        res["init_acks"] = fz.extra_heard.get(fuzzgen.INIT_ACK, 0)
        res["answer_bytes"] = fz.extra_heard_bytes
        res["insider_init_bytes"] = sent["insider_init"] * fuzzgen.MIN_INIT
        if t.alive():
            st = t.status()
            c = st["counters"]
            res["delta"] = dict((k, c.get(k, 0) - c0.get(k, 0)) for k in c)
            res["sent_to_target"] = fz.sent - sent0 + real.sent
            res["associations"] = sorted(a["peer"] for a in st["associations"])
            res["internal_errors"] = c.get("internal_error", 0)
            res["heap_free_after"] = st.get("runtime", {}).get("heap_free")
            res["rss_after_kb"] = t.rss_kb()
    finally:
        res["alive"] = t.alive()
        res["exit_code"] = t.stop(30)
        res.setdefault("death", None if res["exit_code"] == 0 else "exited")
        res["stderr"] = t.stderr_tail(1500) if res["exit_code"] else ""
        fz.close()
        real.sock.close()
    return res
