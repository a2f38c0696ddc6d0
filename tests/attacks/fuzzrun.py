"""Fuzz a real MAST endpoint process over UDP, in a network namespace of its own.

    .venv/bin/python tests/attacks/fuzzrun.py --runtime cpython --cases 1000000
    .venv/bin/python tests/attacks/fuzzrun.py --runtime micropython --heapsize 176K --cases 200000

The target is `mast endpoint` (CPython) or runtime.endpoint_main under the MicroPython unix port
importing mpy-cross output in `-X heapsize` (as a board runs it). The fuzzer is its peer: it
holds the pre-shared keys, opens an association with the real core (mast.endpoint, so it answers
the target's probes as a peer does), and then sends cases from fuzzgen.py: random datagrams and
structured packets of every message type, many of them tagged with the association's real keys
so that they reach the handlers. After every batch it sends a PROBE of its own and waits for the
PROBE-ACK: the target has then taken every datagram before it, nothing is in flight, and the
association still works. A SHUT among the cases closes it; the fuzzer opens a new one (the
target replaces the old one, as after a peer's restart).

At the end the target's `status` must show: the process alive, every datagram sent counted
(`rx` equal to what the fuzzer sent, and each one counted once: accepted or dropped for a
reason) and no `internal_error`; then `quit` must end it with status 0.

Root only (it makes the namespace atk<pid>-<n>-fz and removes it). Prints one JSON document;
--doc writes the figures to docs/SECURITY.md. If the target dies, the last cases are saved
(--keep) to reproduce it.
"""

import argparse
import json
import os
import select
import socket
import struct
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import atklib  # noqa: E402  (sets sys.path for firmware/ and the test helpers)
import fuzzgen  # noqa: E402
from mast.endpoint import Endpoint  # noqa: E402
from mast import config as mast_config  # noqa: E402

TARGET = ("127.0.0.1", 6278)
MAIN = ("127.0.0.2", 7000)
INI = ("127.0.0.1", 7001)
EXTRA = [("127.0.0.%d" % (3 + i // 2), 7000 + i) for i in range(8)]  # 8 more sources
NAMES = {"main": ("fz", atklib.PSK), "hs": ("fzhs", atklib.PSK2), "ini": ("fzini", atklib.PSK3)}
_PSKS = dict((k, mast_config.decode_psk(v[1])) for k, v in NAMES.items())


def now_ms():
    return int(time.monotonic() * 1000)


class Fuzzer:
    def __init__(self, seed, batch, sync_timeout):
        self.batch = batch
        self.sync_timeout = sync_timeout
        self.main = self._sock(MAIN)
        self.extra = [self._sock(a) for a in EXTRA]
        self.ini = self._sock(INI)
        self.socks = [self.main] + self.extra
        names = dict((k, (v[0], _PSKS[k])) for k, v in NAMES.items())
        self.ctx = fuzzgen.Context(names)
        self.ctx.own = MAIN
        self.gen = fuzzgen.Generator(seed, self.ctx, n_sources=len(self.socks))
        self.pending_hs = {}  # label_i -> (nonce_i, tsn_i) of valid INITs we sent as fzhs
        self.sent = 0  # datagrams sent to the target, by anyone here
        self.received = 0
        self.handshakes = 0
        self.sync_failures = 0
        self.shut_seen = False
        self.ep = None
        self.core_assoc = None
        self.ring = []  # the last cases: (index, kind, source, hex)
        self._challenge = None
        self._synced = False
        self.alive = lambda: True  # the campaign sets it: is the target still running?
        self.quiet = False
        self.heard = {}  # with quiet: what arrived, by type
        self.capture = None  # a list: every datagram sent to the target is appended
        self.extra_heard = {}  # what came back to the other sources, by type
        self.extra_heard_bytes = 0

    def _sock(self, addr):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        s.bind(addr)
        s.setblocking(False)
        return s

    def close(self):
        for s in self.socks + [self.ini]:
            s.close()

    # ---- the real core as the peer -----------------------------------------------------------

    def new_core(self):
        cfg = {"name": "fz", "peers": {"target": {"psk": atklib.PSK,
                                                  "addresses": ["%s:%d" % TARGET]}}}
        self.ep = Endpoint(cfg, os.urandom)
        self.ep.uplink_up("lo", MAIN, now_ms())
        self.ep.connect("target", now_ms())
        self.ctx.assoc = None
        self.core_assoc = None
        self.shut_seen = False
        self.handshakes += 1
        self.flush()

    def flush(self):
        for _, dst, data in self.ep.datagrams_to_send():
            self.send(self.main, data, dst)
        e = self.ep.next_event()
        while e is not None:
            if e.kind == "association_up":
                a = self.ep.association("target")
                k_tx, k_rx = fuzzgen.direction_keys(_PSKS["main"], a.nonce, a.peer_nonce, a.label,
                                                    a.peer_label)
                self.ctx.assoc = fuzzgen.Assoc(a.peer_label, a.seq, k_tx, k_rx, a.peer_tsn, a.tsn)
                self.core_assoc = a
            e = self.ep.next_event()

    def send(self, sock, data, dst=TARGET):
        try:
            sock.sendto(data, dst)
        except OSError:
            return
        if dst == TARGET:
            self.sent += 1
            if self.capture is not None:
                self.capture.append(bytes(data))

    def pump(self, timeout):
        """Read what came back, feed the core, run its timers: at most timeout seconds.
        With .quiet set, the core is left alone (nothing of its own goes out): only a sync
        is watched for, and what arrives is counted in .heard by type."""
        r, _, _ = select.select(self.socks + [self.ini], [], [], timeout)
        for s in r:
            while True:
                try:
                    data, src = s.recvfrom(4096)
                except (BlockingIOError, InterruptedError):
                    break
                self.received += 1
                if not self.quiet:
                    self.dispatch(s, data, src)
                    continue
                t = data[1] if len(data) > 1 else None
                if s is not self.main and s is not self.ini:
                    self.extra_heard[t] = self.extra_heard.get(t, 0) + 1
                    self.extra_heard_bytes += len(data)
                if not self._is_sync(data):
                    self.heard[t] = self.heard.get(t, 0) + 1
        if self.quiet:
            return
        if self.ep.next_timer() is not None and self.ep.next_timer() <= now_ms():
            self.ep.handle_timer(now_ms())
        self.flush()

    def dispatch(self, s, data, src):
        if len(data) < 28:
            return
        ptype, label = data[1], struct.unpack_from(">I", data, 2)[0]
        if s is self.ini:
            if ptype == fuzzgen.INIT and len(data) >= 12 + 20:
                self.ctx.their_init = (struct.unpack_from(">I", data, 12)[0], bytes(data[16:32]))
            return
        if s is not self.main:  # answers to the other sources: counted by type, no more
            self.extra_heard[ptype] = self.extra_heard.get(ptype, 0) + 1
            self.extra_heard_bytes += len(data)
            return
        if self._is_sync(data):
            return
        if ptype == fuzzgen.INIT_ACK and label in self.pending_hs and len(data) == 72:
            self.harvest_cookie(label, data)
            return
        if ptype == fuzzgen.SHUT_ACK and self.core_assoc is not None and label == self.core_assoc.label:
            self.shut_seen = True  # a fuzzed SHUT was taken: the association is closing
        self.ep.receive("lo", src, data, now_ms())

    def _is_sync(self, data):
        """The answer to our sync PROBE (and then we are synced)."""
        a = self.ctx.assoc
        if len(data) < 28 or data[1] != fuzzgen.PROBE_ACK or a is None or self._challenge is None:
            return False
        if struct.unpack_from(">I", data, 2)[0] != self.core_assoc.label:
            return False
        if data[12:20] == self._challenge and fuzzgen.hmac256(a.k_rx, data[:-16])[:16] == data[-16:]:
            self._synced = True
            return True
        return False

    def harvest_cookie(self, label_i, data):
        nonce_i, tsn_i = self.pending_hs.pop(label_i)
        key = fuzzgen.k_init(_PSKS["hs"])
        if fuzzgen.hmac256(key, data[:-16] + nonce_i)[:16] != data[-16:]:
            return
        b = data[12:-16]
        label_r, tsn_r = struct.unpack_from(">I", b, 0)[0], struct.unpack_from(">I", b, 20)[0]
        ck = fuzzgen.Cookie("fzhs", _PSKS["hs"], label_i, nonce_i, tsn_i, label_r, bytes(b[4:20]),
                            tsn_r, bytes(b[24:44]))
        self.ctx.cookies.append(ck)
        if len(self.ctx.cookies) > 8:
            del self.ctx.cookies[0]

    # ---- handshake and sync --------------------------------------------------------------

    def handshake(self, timeout):
        self.new_core()
        end = time.monotonic() + timeout
        while self.ctx.assoc is None and time.monotonic() < end and self.alive():
            self.pump(0.05)
        return self.ctx.assoc is not None

    def sync(self):
        """A PROBE of our own, answered only once the target has taken everything before it."""
        a = self.ctx.assoc
        a.seq = max(a.seq, self.core_assoc.seq)  # the core may have sent since
        self._challenge = os.urandom(8)
        self._synced = False
        b = fuzzgen.TableBuilder()
        pkt = b.seal(a.k_tx, fuzzgen.PROBE, a.label, a.seq, b.probe(self._challenge, 0))
        a.seq += 1
        self.core_assoc.seq = a.seq
        self.send(self.main, pkt)
        end = time.monotonic() + self.sync_timeout
        while not self._synced and time.monotonic() < end and not self.shut_seen:
            self.pump(0.02)
            if not self._synced and not self.alive():
                break
        return self._synced

    def send_auth(self, ptype, body, sock=None):
        """One packet of the association under test, tagged with its key and the next seq,
        built from the field tables (fuzzgen.TableBuilder). Returns the packet."""
        a = self.ctx.assoc
        a.seq = max(a.seq, self.core_assoc.seq)
        pkt = fuzzgen.TableBuilder().seal(a.k_tx, ptype, a.label, a.seq, body)
        a.seq += 1
        self.core_assoc.seq = a.seq
        self.send(sock or self.main, pkt)
        return pkt

    def settle(self, timeout):
        """Wait until the target has taken everything sent (a sync, or a new association)."""
        if self.ctx.assoc is not None and not self.shut_seen and self.sync():
            return True
        self.sync_failures += 0 if self.shut_seen else 1
        return self.handshake(timeout) and self.sync()

    # ---- cases ---------------------------------------------------------------------------

    def run_batch(self, first):
        a = self.ctx.assoc
        a.seq = max(a.seq, self.core_assoc.seq)
        for i in range(self.batch):
            kind, src, pkt = self.gen.case()
            if kind == "init" and len(pkt) >= 12 + 20 + 16:
                self.note_init(pkt)
            sock = self.ini if kind == "initack" else self.socks[src]
            self.send(sock, pkt)
            self.ring.append((first + i, kind, src, pkt))
            if len(self.ring) > 4000:
                del self.ring[:1000]
        self.core_assoc.seq = max(self.core_assoc.seq, a.seq)

    def note_init(self, pkt):
        """Keep the label and nonce of a well-formed INIT we sent as fzhs, to take its cookie."""
        if pkt[1] != fuzzgen.INIT or len(self.pending_hs) > 256:
            if len(self.pending_hs) > 256:
                self.pending_hs.clear()
            return
        label_i = struct.unpack_from(">I", pkt, 12)[0]
        self.pending_hs[label_i] = (bytes(pkt[16:32]), struct.unpack_from(">I", pkt, 32)[0])


def save_ring(fz, path):
    with open(path, "w") as f:
        for idx, kind, src, pkt in fz.ring:
            f.write("%d %s %s:%d %s\n" % (idx, kind, (fz.socks[src].getsockname() if kind != "initack"
                                                      else INI)[0], (fz.socks[src].getsockname()
                                                                     if kind != "initack" else INI)[1],
                                           pkt.hex()))


def campaign(args, workdir):
    """Inside the namespace: start the target, fuzz it, check it. -> result dict."""
    mpy_dir = None
    if args.runtime == "micropython":
        mpy_dir = os.path.join(workdir, "mpy")
        atklib.build_mpy(mpy_dir)
    fz = Fuzzer(args.seed, args.batch, args.sync_timeout)
    target = atklib.Target(atklib.target_doc(), workdir, runtime=args.runtime,
                           heapsize=args.heapsize, mpy_dir=mpy_dir)
    fz.alive = target.alive
    res = {"runtime": args.runtime, "heapsize": target.heapsize, "seed": args.seed,
           "cases_asked": args.cases, "batch": args.batch}
    t0 = time.monotonic()
    done = 0
    death = None
    heap_min = None
    rss = []
    try:
        target.wait_event("started", 60)
        if not fz.handshake(30):
            raise AssertionError("no association with the target: %s" % target.stderr_tail())
        res["start_rss_kb"] = target.rss_kb()
        last_check = time.monotonic()
        last_progress = time.monotonic()
        while done < args.cases:
            if fz.ctx.assoc is None or fz.shut_seen:
                if not fz.handshake(args.sync_timeout * 10):
                    death = "no new association" if target.alive() else "exited"
                    break
            fz.run_batch(done)
            done += fz.batch
            if not fz.settle(args.sync_timeout * 10):
                death = "unresponsive" if target.alive() else "exited"
                break
            t = time.monotonic()
            if t - last_check >= args.check_every:
                last_check = t
                st = target.status(60)
                c = st["counters"]
                if c.get("internal_error"):
                    death = "internal_error"
                    res["last_error"] = st.get("last_error")
                    break
                hf = st.get("runtime", {}).get("heap_free")
                if hf is not None:
                    heap_min = hf if heap_min is None else min(heap_min, hf)
                rss.append(target.rss_kb())
                target.command("connect", peer="fzini")  # its attempt may have timed out
            if args.progress and t - last_progress >= 10:
                last_progress = t
                sys.stderr.write("fuzz %s: %d of %d cases, %.0f/s\n" % (
                    args.runtime, done, args.cases, done / (t - t0)))
        elapsed = time.monotonic() - t0
        res["cases"] = done
        res["seconds"] = round(elapsed, 1)
        res["cases_per_s"] = int(done / elapsed) if elapsed else None
        res["kinds"] = dict(fz.gen.counts)
        res["handshakes"] = fz.handshakes
        res["sync_failures"] = fz.sync_failures
        res["cookies_used"] = len(fz.ctx.cookies)
        if death is None and target.alive():
            st = target.status(60)
            c = st["counters"]
            res["counters"] = c
            res["target_rx"] = c.get("rx", 0)
            res["sent"] = fz.sent
            res["counted_once"] = atklib.drops(c) == c.get("rx", 0)
            res["internal_errors"] = c.get("internal_error", 0)
            res["last_error"] = st.get("last_error")
            rc = st.get("runtime", {}).get("counters") or {}
            res["runtime_counters"] = rc
            # a receive that ran out of memory may have taken its datagram from the kernel
            # (MicroPython copies it after the read): at most one lost per such receive
            res["rx_memory_misses"] = rc.get("rx_no_memory", 0) + rc.get("rx_rest", 0)
            hf = st.get("runtime", {}).get("heap_free")
            if hf is not None:
                heap_min = hf if heap_min is None else min(heap_min, hf)
            res["associations"] = len(st["associations"])
            rss.append(target.rss_kb())
    finally:
        alive = target.alive()
        code = target.stop(60)
        res["alive_at_end"] = alive
        res["exit_code"] = code
        res["stopped_line"] = target.stopped is not None
        res["exits"] = 0 if (alive and death is None) else 1
        res["death"] = death
        res["heap_free_min"] = heap_min
        res["rss_kb"] = [x for x in rss if x]
        res["end_rss_kb"] = res["rss_kb"][-1] if res["rss_kb"] else None
        if death is not None:
            res["stderr_tail"] = target.stderr_tail(2500)
            res["stdout_tail"] = target.tail[-5:]
            st = (target.stopped or {}).get("status") or {}  # what it said as it stopped
            res["final_counters"] = st.get("counters")
            res["final_runtime"] = st.get("runtime")
            res["final_associations"] = st.get("associations")
            res["died_after_cases"] = done
            if args.keep:
                os.makedirs(args.keep, exist_ok=True)
                path = os.path.join(args.keep, "fuzz-%s-%s-%s.cases" % (
                    args.runtime, args.heapsize, args.seed))
                save_ring(fz, path)
                res["cases_file"] = path
        fz.close()
    res["ok"] = bool(death is None and res.get("internal_errors") == 0 and res.get("counted_once")
                     and uncounted_ok(res) and res["exit_code"] == 0
                     and res["stopped_line"])
    return res


def uncounted_ok(res):
    """Every datagram sent was counted, but for those a receive without memory may have lost
    (rx_memory_misses: none on CPython)."""
    if res.get("target_rx") is None or res.get("sent") is None:
        return False
    return 0 <= res["sent"] - res["target_rx"] <= res.get("rx_memory_misses", 0)


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runtime", choices=("cpython", "micropython"), default="cpython")
    p.add_argument("--cases", type=int, default=20000)
    p.add_argument("--seed", default="1")
    p.add_argument("--heapsize", default="176K", help="MicroPython heap (default 176K)")
    p.add_argument("--batch", type=int, default=32, help="cases between two syncs")
    p.add_argument("--sync-timeout", type=float, default=None,
                   help="seconds to wait for a sync (default 0.5, MicroPython 2)")
    p.add_argument("--check-every", type=float, default=20.0, help="seconds between status checks")
    p.add_argument("--keep", help="folder for the last cases if the target dies")
    p.add_argument("--progress", action="store_true", help="progress on stderr every 10 s")
    p.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.sync_timeout is None:
        a.sync_timeout = 2.0 if a.runtime == "micropython" else 0.5
    if a.cases <= 0 or a.batch <= 0:
        p.error("--cases and --batch must be positive")
    return a


def run(argv):
    """Make the namespace, run this script inside it, remove it. -> result dict."""
    why = atklib.unavailable()
    if why:
        raise SystemExit("mast: fuzzrun: %s; run it as root" % why)
    atklib.cleanup_leftovers()
    space = atklib.Space("fz")
    try:
        proc = subprocess.run(atklib.in_netns(space.name, [sys.executable, os.path.abspath(__file__),
                                                           "--inside"] + list(argv)),
                              stdout=subprocess.PIPE, universal_newlines=True, timeout=6 * 3600)
    finally:
        space.close()
    try:
        return json.loads(proc.stdout)
    except ValueError:
        raise SystemExit("mast: fuzzrun: the campaign printed no result (exit %d): %s" % (
            proc.returncode, proc.stdout[-2000:]))


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if args.inside:
        with tempfile.TemporaryDirectory(prefix="atkfz") as wd:
            res = campaign(args, wd)
        print(json.dumps(res, sort_keys=True))
        return 0
    res = run(argv)
    print(json.dumps(res, indent=1, sort_keys=True))
    return 0 if res.get("ok") else 1


if __name__ == "__main__":
    sys.exit(main())
