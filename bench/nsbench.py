"""Shared by the network-namespace benchmarks (failover_netns.py, datapath.py, overhead.py):
processes in namespaces and their output, a fast nftables cut, TCP record streams (plain TCP or
MPTCP), mastd, statistics. Not a benchmark itself (`make bench` does not run it).

Some parts run as helper processes inside a namespace (`ip netns exec NS python nsbench.py MODE`):

    nft-agent             reads commands on stdin ("cut", "restore", "quit"), applies them with
                          libnftables (no process start per cut) and prints
                          "ok <monotonic us before> <monotonic us after>"
    tcp-recv PORT [--mptcp]
                          accepts one connection and prints "seq sent_us arrival_us" per record
    tcp-send DST PORT RATE [--mptcp] [--size N] [--max-s S]
                          sends RATE records/s until stdin closes (or --max-s)
    blast DST PORT SIZE RATE SECONDS
                          UDP datagrams of SIZE bytes at RATE/s (sendmmsg in batches, paced);
                          prints "sent <n> <seconds>"
    capture IFACE SECONDS
                          AF_PACKET capture of UDP/IPv4 frames on IFACE; prints one JSON line
                          per packet {"t_us", "src", "dst", "sport", "dport", "udp_len", "head"}

Every helper is bounded in time. The clocks are CLOCK_MONOTONIC everywhere (network namespaces
do not change it), so sender and receiver times compare directly.
"""

import json
import os
import random
import select
import signal
import socket
import struct
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
FIRMWARE = os.path.join(ROOT, "firmware")
for _p in (os.path.join(ROOT, "tests", "integration"), os.path.join(ROOT, "host-tools")):
    if _p not in sys.path:
        sys.path.insert(0, _p)

IPPROTO_MPTCP = 262
PSK = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
RECORD = 64  # bytes per TCP record: "S" | seq u32 | sent us u64 | padding (as the datagram stream)
BLACKHOLE = ("table inet mast_blackhole {\n"
             "  chain drop_all { type filter hook forward priority filter - 10; policy drop; }\n}\n")
UNBLACKHOLE = "delete table inet mast_blackhole\n"


def now_us():
    return time.monotonic_ns() // 1000


def now_ms():
    return time.monotonic_ns() / 1e6


def root_reason():
    """Why the namespace benchmarks cannot run here, or None."""
    import netns

    r = netns.unavailable()
    if r:
        return r
    if not os.path.exists("/dev/net/tun"):
        return "needs /dev/net/tun"
    return None


def venv_bin(name):
    p = os.path.join(ROOT, ".venv", "bin", name)
    return p if os.path.exists(p) else None


# ---- statistics ---------------------------------------------------------------------------------


def pct(xs, p):
    """Nearest-rank percentile (as bench/failover_sim.py)."""
    xs = sorted(xs)
    if not xs:
        return None
    return xs[min(len(xs) - 1, int(round(p / 100.0 * (len(xs) - 1))))]


def fmt_ms(v):
    return "–" if v is None else "%d ms" % round(v)


# ---- a process in a namespace with its output lines ---------------------------------------------


class Proc:
    """A process (in a namespace), its stdout lines collected by a thread (each as
    (monotonic ms read, text)), stdin for commands, stderr to a file."""

    def __init__(self, ns, argv, name, workdir, env=None, cwd=None, on_line=None, keep=True):
        self.name = name
        self.errpath = os.path.join(workdir, name + ".stderr")
        self._err = open(self.errpath, "w")
        self.lines = []
        self.keep = keep
        self.on_line = on_line
        self.cond = threading.Condition()
        self.eof = False
        cmd = (["ip", "netns", "exec", ns] if ns else []) + list(argv)
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self._err, env=env, cwd=cwd or workdir)
        self.pid = self.proc.pid  # `ip netns exec` execs the command: this is its pid
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for raw in iter(self.proc.stdout.readline, b""):
            text = raw.decode(errors="replace").rstrip("\n")
            at = now_ms()
            if self.on_line is not None:
                try:
                    self.on_line(at, text)
                except Exception as e:  # noqa: BLE001 -- a parse error must not kill the reader
                    sys.stderr.write("%s: line %r: %r\n" % (self.name, text[:200], e))
            with self.cond:
                if self.keep:
                    self.lines.append((at, text))
                self.cond.notify_all()
        with self.cond:
            self.eof = True
            self.cond.notify_all()

    def send(self, text):
        self.proc.stdin.write((text + "\n").encode())
        self.proc.stdin.flush()

    def wait_line(self, pred, timeout, what, start=0):
        """Index and text of the first line from start on that pred accepts."""
        end = time.monotonic() + timeout
        i = start
        with self.cond:
            while True:
                while i < len(self.lines):
                    at, text = self.lines[i]
                    i += 1
                    if pred(text):
                        return i - 1, at, text
                if self.eof:
                    raise RuntimeError("%s ended while waiting for %s; stderr: %s" % (
                        self.name, what, self.stderr_tail()))
                left = end - time.monotonic()
                if left <= 0:
                    raise RuntimeError("%s: timed out after %.1f s waiting for %s; stderr: %s" % (
                        self.name, timeout, what, self.stderr_tail()))
                self.cond.wait(min(left, 0.2))

    def mark(self):
        with self.cond:
            return len(self.lines)

    def stderr_tail(self, n=800):
        try:
            with open(self.errpath) as f:
                return f.read()[-n:]
        except OSError:
            return ""

    def cpu_s(self):
        """utime + stime of the process so far, seconds (from /proc/<pid>/stat)."""
        return cpu_seconds(self.pid)

    def stop(self, sig=signal.SIGTERM, timeout=5):
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()
            except (OSError, ValueError):
                pass
            try:
                self.proc.wait(0.5)
            except subprocess.TimeoutExpired:
                try:
                    self.proc.send_signal(sig)
                    self.proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(5)
        self.reader.join(5)
        self._err.close()
        return self.proc.returncode


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / float(os.sysconf("SC_CLK_TCK"))


def dev_counters(pid, dev):
    """(rx_packets, tx_packets, rx_bytes, tx_bytes) of dev in the namespace of process pid."""
    with open("/proc/%d/net/dev" % pid) as f:
        for line in f:
            if ":" not in line:
                continue
            name, rest = line.split(":", 1)
            if name.strip() == dev:
                w = rest.split()
                return int(w[1]), int(w[9]), int(w[0]), int(w[8])
    raise KeyError(dev)


# ---- the nft agent: a silent blackhole in an ISP namespace, applied in about a millisecond ------


class NftAgent:
    """`nsbench.py nft-agent` in a namespace. cut()/restore() return the monotonic time (ms) at
    which the ruleset change was committed. Its pid reads the namespace's counters."""

    def __init__(self, ns, workdir, name):
        self.ns = ns
        self.proc = Proc(ns, [sys.executable, os.path.abspath(__file__), "nft-agent"], name, workdir)
        self.proc.wait_line(lambda t: t == "ready", 10, "nft agent ready")
        self.pid = self.proc.pid
        self.is_cut = False

    def _do(self, cmd):
        start = self.proc.mark()
        self.proc.send(cmd)
        _, _, text = self.proc.wait_line(lambda t: t.startswith(("ok", "err")), 10, cmd, start)
        if text.startswith("err"):
            raise RuntimeError("nft agent in %s: %s: %s" % (self.ns, cmd, text))
        w = text.split()
        return int(w[1]) / 1000.0, int(w[2]) / 1000.0

    def cut(self):
        t = self._do("cut")[1]
        self.is_cut = True
        return t

    def restore(self):
        t = self._do("restore")[1]
        self.is_cut = False
        return t

    def rx(self, dev="cust"):
        return dev_counters(self.pid, dev)[0]

    def close(self):
        if self.is_cut:
            try:
                self.restore()
            except Exception:  # noqa: BLE001 -- the namespace goes anyway
                pass
        self.proc.stop()


def _nft_agent():
    run = None
    try:
        import ctypes

        lib = ctypes.CDLL("libnftables.so.1")
        lib.nft_ctx_new.restype = ctypes.c_void_p
        lib.nft_ctx_new.argtypes = [ctypes.c_uint32]
        lib.nft_run_cmd_from_buffer.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
        lib.nft_run_cmd_from_buffer.restype = ctypes.c_int
        ctx = lib.nft_ctx_new(0)

        def run(text):
            return lib.nft_run_cmd_from_buffer(ctx, text.encode())
    except (OSError, AttributeError):
        def run(text):  # no libnftables: the nft command (slower; the times still bracket it)
            return subprocess.run(["nft", "-f", "-"], input=text.encode(), timeout=10).returncode

    cmds = {"cut": BLACKHOLE, "restore": UNBLACKHOLE}
    print("ready", flush=True)
    deadline = time.monotonic() + 3600
    while time.monotonic() < deadline:
        line = sys.stdin.readline()
        if not line or line.strip() == "quit":
            break
        cmd = line.strip()
        if cmd not in cmds:
            print("err unknown %s" % cmd, flush=True)
            continue
        t0 = now_us()
        rc = run(cmds[cmd])
        t1 = now_us()
        print(("ok %d %d" if rc == 0 else "err %d %d") % (t0, t1), flush=True)


# ---- TCP record streams (plain TCP or MPTCP) -----------------------------------------------------


def _tcp_recv(argv):
    """Accept connections one after another (a new one replaces the old); print each record."""
    port = int(argv[0])
    proto = IPPROTO_MPTCP if "--mptcp" in argv else 0
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM, proto)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port))
    s.listen(4)
    print("listening", flush=True)
    c, buf = None, b""
    deadline = time.monotonic() + 3600
    out = sys.stdout
    while time.monotonic() < deadline:
        r, _, _ = select.select([s] + ([c] if c else []), [], [], 5)
        if s in r:
            n, peer = s.accept()
            if c is not None:
                c.close()
            c, buf = n, b""
            print("accepted %s" % peer[0], flush=True)
            continue
        if c is None or c not in r:
            continue
        try:
            b = c.recv(65536)
        except OSError as e:
            print("error %r" % e, flush=True)
            c.close()
            c = None
            continue
        if not b:
            c.close()
            c = None
            continue
        t = now_us()
        buf += b
        lines = []
        while len(buf) >= RECORD:
            rec, buf = buf[:RECORD], buf[RECORD:]
            lines.append("%d %d %d" % (int.from_bytes(rec[1:5], "big"), int.from_bytes(rec[5:13], "big"), t))
        if lines:
            out.write("\n".join(lines) + "\n")
            out.flush()
    print("eof", flush=True)


def _tcp_send(argv):
    """RATE records/s over one connection; on "connect" from stdin, a new connection (the
    sequence numbers run on); ends when stdin closes or after --max-s."""
    dst, port, rate = argv[0], int(argv[1]), int(argv[2])
    proto = IPPROTO_MPTCP if "--mptcp" in argv else 0
    max_s = float(argv[argv.index("--max-s") + 1]) if "--max-s" in argv else 1800.0

    def connect():
        c = socket.socket(socket.AF_INET, socket.SOCK_STREAM, proto)
        c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        c.settimeout(15)
        c.connect((dst, port))
        c.settimeout(None)
        print("connected %s:%d" % c.getsockname()[:2], flush=True)
        return c

    s = connect()
    period = 1.0 / rate
    seq = 0
    t0 = time.monotonic()
    nxt = t0
    pad = bytes(RECORD - 13)
    stdin = sys.stdin.buffer
    while time.monotonic() - t0 < max_s:
        wait = nxt - time.monotonic()
        if wait > 0:
            r, _, _ = select.select([stdin], [], [], wait)
            if r:
                line = stdin.readline()
                if not line:
                    break  # stdin closed: stop
                if line.strip() == b"connect":
                    s.close()
                    s = connect()
                continue
        s.sendall(b"S" + seq.to_bytes(4, "big") + now_us().to_bytes(8, "big") + pad)
        seq += 1
        nxt += period
        if nxt < time.monotonic() - 1.0:  # far behind (stalled): skip, do not burst
            nxt = time.monotonic()
    s.close()
    print("sent %d" % seq, flush=True)


class RecordStream:
    """A TCP record stream between two namespaces: the receiver's arrivals, live.
    arrivals: {seq: (sent_ms, arrival_ms)}; last_ok(): ms of the last on-time record."""

    def __init__(self, workdir, name, recv_ns, send_ns, dst, port, rate=100, mptcp=False):
        self.arr = {}
        self.lock = threading.Lock()  # the receiver's reader thread adds while the harness reads
        self.rate = rate
        flag = ["--mptcp"] if mptcp else []
        me = os.path.abspath(__file__)
        self.recv = Proc(recv_ns, [sys.executable, me, "tcp-recv", str(port)] + flag, name + "-recv",
                         workdir, on_line=self._line, keep=False)
        self.recv_ready = threading.Event()
        end = time.monotonic() + 10
        while not self.recv_ready.is_set() and time.monotonic() < end:
            time.sleep(0.02)
        if not self.recv_ready.is_set():
            raise RuntimeError("%s: receiver did not listen: %s" % (name, self.recv.stderr_tail()))
        self.send = Proc(send_ns, [sys.executable, me, "tcp-send", dst, str(port), str(rate)] + flag,
                         name + "-send", workdir)
        self.send.wait_line(lambda t: t.startswith("connected"), 15, "connected")
        self.error = None

    def reconnect(self):
        """A new connection (the old one is closed); the records' numbers run on."""
        start = self.send.mark()
        self.send.send("connect")
        self.send.wait_line(lambda t: t.startswith("connected"), 15, "connected", start)

    def _line(self, at, text):
        if text == "listening":
            self.recv_ready.set()
            return
        w = text.split()
        if len(w) == 3 and w[0].isdigit():
            with self.lock:
                self.arr[int(w[0])] = (int(w[1]) / 1000.0, int(w[2]) / 1000.0)
        elif text.startswith("error"):
            self.error = text

    def snapshot(self):
        """{seq: (sent_ms, arrival_ms)} so far (a copy)."""
        with self.lock:
            return dict(self.arr)

    def healthy_for(self, ms, late=50):
        """True if records kept arriving on time for the last ms (none later than late)."""
        now = now_ms()
        recent = [(s, v) for s, v in self.snapshot().items() if v[0] >= now - ms]
        if len(recent) < 0.7 * self.rate * ms / 1000.0:
            return False
        seqs = sorted(s for s, _ in recent)
        if seqs[-1] - seqs[0] + 1 != len(seqs):
            return False
        return all(v[1] - v[0] <= late for _, v in recent)

    def close(self):
        self.send.stop()
        time.sleep(0.2)
        self.recv.stop()


# ---- failure analysis ----------------------------------------------------------------------------


def analyse(records, t_fail, t_end, late_ms=50, before_ms=500):
    """Gap and outage of one failure from records {seq: (sent_ms, arrival_ms or None)}, all in
    the harness's clock (ms). Records sent in [t_fail - before_ms, t_end) are judged; seqs missing
    between received ones are lost.

    gap: failure -> arrival of the first record sent after the failure.
    outage: failure -> arrival of the first delivered record after which none (up to t_end) is
    lost or later than late_ms. 0 when nothing was lost or late. None if not recovered by t_end.
    """
    got = sorted((s, v) for s, v in records.items() if v[1] is not None and t_fail - before_ms <= v[0] < t_end)
    if not got:
        return None
    lo, hi = got[0][0], got[-1][0]
    by = dict(got)
    gap = None
    for s, (sent, arr) in got:
        if sent > t_fail:
            gap = arr - t_fail
            break
    lost = [s for s in range(lo, hi + 1) if s not in by]
    bad = set(lost) | set(s for s, (sent, arr) in got if arr - sent > late_ms)
    late = len([s for s, (sent, arr) in got if arr - sent > late_ms])
    if not bad:
        outage = 0.0
    else:
        last_bad = max(bad)
        nxt = by.get(last_bad + 1)
        outage = None if nxt is None else max(0.0, nxt[1] - t_fail)
    return {"gap": gap, "outage": outage, "lost": len(lost), "late": late, "judged": hi - lo + 1}


def summary(trials, key):
    xs = [t[key] for t in trials if t.get(key) is not None]
    missing = len([t for t in trials if t.get(key) is None])
    if not xs:
        return {"p50": None, "p95": None, "max": None, "n": 0, "missing": missing}
    return {"p50": pct(xs, 50), "p95": pct(xs, 95), "max": max(xs), "n": len(xs), "missing": missing}


# ---- mastd ---------------------------------------------------------------------------------------


class Mastd:
    """mastd from firmware/ (the same files the .ipk installs), in a namespace."""

    def __init__(self, ns, conf, workdir, name, profile_to=None):
        self.name = name
        self.cfg = os.path.join(workdir, name + ".json")
        with open(self.cfg, "w") as f:
            json.dump(conf, f)
        self.control = os.path.join(workdir, name + ".sock")
        env = dict(os.environ, PYTHONPATH=FIRMWARE)
        argv = [sys.executable]
        if profile_to:
            argv += ["-m", "cProfile", "-o", profile_to]
        argv += ["-m", "mastd", "--config", self.cfg, "--control", self.control, "--discovery", "linux"]
        self.proc = Proc(ns, argv, name, workdir, env=env)
        self.pid = self.proc.pid

    def request(self, req, timeout=5.0):
        sys.path.insert(0, FIRMWARE)
        try:
            from mastd.control import request
        finally:
            sys.path.remove(FIRMWARE)
        return request(self.control, req, timeout)

    def status(self):
        try:
            r = self.request({"op": "status"})
        except OSError:
            return None
        return r.get("status") if r.get("ok") else None

    def assoc(self):
        s = self.status()
        if s and s["associations"] and s["associations"][0]["state"] == "established":
            return s["associations"][0]
        return None

    def wait_assoc(self, timeout=20, paths=1):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            a = self.assoc()
            if a and len([p for p in a["paths"] if p["state"] == "active"]) >= paths:
                return a
            time.sleep(0.1)
        raise RuntimeError("%s: no association with %d active path(s) after %d s; log: %s" % (
            self.name, paths, timeout, self.proc.stderr_tail()))

    def cpu_s(self):
        return cpu_seconds(self.pid)

    def stop(self):
        if self.proc.proc.poll() is None:
            self.proc.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.proc.kill()
        return self.proc.stop()


def jitter(lo_ms, hi_ms):
    time.sleep(random.uniform(lo_ms, hi_ms) / 1000.0)


# ---- capture (AF_PACKET) -------------------------------------------------------------------------


def _capture(argv):
    dev, seconds = argv[0], float(argv[1])
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))  # ETH_P_ALL: outgoing frames too
    s.bind((dev, 0))
    s.settimeout(0.2)
    print("capturing", flush=True)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            frame, addr = s.recvfrom(65535)
        except socket.timeout:
            continue
        if len(frame) < 14 + 28 or frame[12:14] != b"\x08\x00":  # IPv4 only
            continue
        ip = frame[14:]
        if ip[0] >> 4 != 4 or ip[9] != 17:
            continue
        ihl = (ip[0] & 15) * 4
        udp = ip[ihl:]
        sport, dport, ulen = struct.unpack(">HHH", udp[:6])
        print(json.dumps({"t_us": now_us(), "out": addr[2] == socket.PACKET_OUTGOING,
                          "src": socket.inet_ntoa(ip[12:16]), "dst": socket.inet_ntoa(ip[16:20]),
                          "sport": sport, "dport": dport, "ip_len": struct.unpack(">H", ip[2:4])[0],
                          "udp_len": ulen, "head": udp[8:24].hex()}), flush=True)
    print("done", flush=True)


# ---- blast: a paced UDP load that costs little CPU (sendmmsg through ctypes) ---------------------


def _blast(argv):
    import ctypes

    dst, port, size, rate, seconds = argv[0], int(argv[1]), int(argv[2]), float(argv[3]), float(argv[4])
    batch = 32

    class IoVec(ctypes.Structure):
        _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]

    class MsgHdr(ctypes.Structure):
        _fields_ = [("name", ctypes.c_void_p), ("namelen", ctypes.c_uint32),
                    ("iov", ctypes.POINTER(IoVec)), ("iovlen", ctypes.c_size_t),
                    ("control", ctypes.c_void_p), ("controllen", ctypes.c_size_t),
                    ("flags", ctypes.c_int)]

    class MMsgHdr(ctypes.Structure):
        _fields_ = [("hdr", MsgHdr), ("len", ctypes.c_uint)]

    libc = ctypes.CDLL(None, use_errno=True)
    libc.sendmmsg.argtypes = [ctypes.c_int, ctypes.POINTER(MMsgHdr), ctypes.c_uint, ctypes.c_int]
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
    s.connect((dst, port))
    payload = ctypes.create_string_buffer(b"B" * size, size)
    iov = IoVec(ctypes.cast(payload, ctypes.c_void_p), size)
    msgs = (MMsgHdr * batch)()
    for m in msgs:
        m.hdr.iov = ctypes.pointer(iov)
        m.hdr.iovlen = 1
    fd = s.fileno()
    sent = 0
    t0 = time.monotonic()
    end = t0 + seconds
    while True:
        now = time.monotonic()
        if now >= end:
            break
        due = int((now - t0) * rate) - sent
        if due <= 0:
            time.sleep(min(0.001, end - now))
            continue
        n = libc.sendmmsg(fd, msgs, min(batch, due), 0)
        if n > 0:
            sent += n
        else:
            time.sleep(0.0002)  # a full socket buffer: let the queue drain
    print("sent %d %.6f" % (sent, time.monotonic() - t0), flush=True)


if __name__ == "__main__":
    mode = sys.argv[1] if len(sys.argv) > 1 else ""
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
    if mode == "nft-agent":
        _nft_agent()
    elif mode == "tcp-recv":
        _tcp_recv(sys.argv[2:])
    elif mode == "tcp-send":
        _tcp_send(sys.argv[2:])
    elif mode == "capture":
        _capture(sys.argv[2:])
    elif mode == "blast":
        _blast(sys.argv[2:])
    elif mode == "sleep":
        sys.stdin.read()  # a process in a namespace, so /proc/<pid>/net shows its counters
    else:
        sys.exit(__doc__)
