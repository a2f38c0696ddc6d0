"""MicroPython footprint of the whole firmware, beyond the core's figures in bench/heap.py: the
firmware's .mpy size, the heap in use with an association up and 3x3 paths, how the heap grows
with associations and paths, and the smallest heap in which the whole board firmware carries
the demo traffic.

    .venv/bin/python bench/footprint.py

- Sizes: every .py of firmware/ except mastd/ (the Linux agent never ships to a board),
  compiled with mpy-cross as `mast flash` compiles them.
- Heap in use: the endpoint process (runtime/endpoint_main: the core, the runtime, the line
  protocol) on the MicroPython unix port, importing mpy-cross output, -X heapsize=1M so that
  nothing is tight; `gc.mem_alloc()` after `gc.collect()`, as its status reports it. Its peers
  are MAST endpoints under CPython in this process, on loopback addresses 127.77.x.y (a random
  port per run).
- Smallest heap for the whole firmware: the board firmware (.mpy: core, runtime, board app,
  console, uplink managers) on the simulated board with the demo traffic, console use and an
  uplink failure of tests/host/test_sim_board_traffic.py, searched in 8K steps.

The unix port is 64-bit: objects take about twice what they take on a 32-bit ESP32 or RP2040.
Writes the `footprint` section of docs/BENCHMARKS.md. Needs no root.
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
CORE_BUDGET = 28 * 1024
WHOLE_TARGET_K, WHOLE_AIM_K = 192, 128


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


def whole_firmware_runs(heap_k, workdir):
    import test_sim_board_traffic as T

    saved = tempfile.tempdir
    tempfile.tempdir = workdir  # the scenario's board folder goes where this run cleans up
    try:
        r = T.scenario("%dK" % heap_k, random.randint(30000, 45000))
    except AssertionError as e:
        log("whole firmware at %dK: fails (%s)" % (heap_k, str(e)[:160]))
        return None
    finally:
        tempfile.tempdir = saved
    ok = r["received"] >= 300 and r["lost"] <= 30
    log("whole firmware at %dK: %s %s" % (heap_k, "runs" if ok else "fails", r))
    return r if ok else None


def smallest_whole(workdir, lo=128, hi=256):
    """Binary search in 8K steps from 192K (the target): the smallest that runs, and what was
    tried. lo (128K, the aim) is tried only if the search gets there."""
    runs = {}
    r = whole_firmware_runs(192, workdir)
    runs[192] = r
    if r is None:
        hi_ok = None
        for k in (224, 256):
            runs[k] = whole_firmware_runs(k, workdir)
            if runs[k]:
                hi_ok = k
                break
        if hi_ok is None:
            return None, runs
        lo, hi = 192, hi_ok
    else:
        hi = 192
    while hi - lo > 8:
        mid = (lo + hi) // 2 // 8 * 8
        runs[mid] = whole_firmware_runs(mid, workdir)
        if runs[mid]:
            hi = mid
        else:
            lo = mid
    return hi, runs


def core_heap_text():
    try:
        text = open(benchdoc.DOC).read()
    except OSError:
        return "about 55 KB"
    import re

    m = re.search(r"Heap in use after `import mast.endpoint` \(the whole core\): \*\*(\d+) bytes\*\*", text)
    return "%d KB" % (int(m.group(1)) // 1024) if m else "about 55 KB"


def fit(xs, ys):
    n = float(len(xs))
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx
    return my - b * mx, b


def _on_term(signum, frame):
    raise SystemExit(128 + signum)  # so the finally clauses remove what this run made


def main():
    if not os.path.exists(MICROPYTHON):
        print("bench/footprint.py: no MicroPython unix port here (x86_64 only); skipped", file=sys.stderr)
        return 0
    t0 = time.monotonic()
    work = tempfile.mkdtemp(prefix="mast-footprint-")
    items = []
    try:
        sizes = mpy_sizes(os.path.join(work, "all"))
        from mast_tools.board_process import build_mpy

        mpy_dir = os.path.join(work, "mpy")
        build_mpy(mpy_dir)
        port = random.randint(20000, 29000)
        grid = heap_grid(mpy_dir, work, port)
        assoc = heap_associations(mpy_dir, work, port + 1)
        smallest, runs = smallest_whole(work)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    lines = ["### Size: the firmware's .mpy (firmware/ except mastd/ and the freezing manifest)", "",
             "| package | files | .mpy bytes |", "|---|---|---|"]
    total = 0
    core = sum(s for _, s in sizes.get("mast", []))
    for pkg in sorted(sizes):
        n = sum(s for _, s in sizes[pkg])
        total += n
        lines.append("| %s | %d | %d |" % (pkg, len(sizes[pkg]), n))
    flashed = sum(sum(s for _, s in sizes.get(p, [])) for p in ("mast", "runtime", "board")) + \
        sum(s for _, s in sizes.get("board/root (the board's / files)", []))
    lines += ["| **all** | %d | **%d** (%.1f KB) |" % (sum(len(v) for v in sizes.values()), total, total / 1024.0), "",
              "What `mast flash` installs (mast, runtime, board and the root files; presence and the "
              "top-level manifest.py are not flashed): %d bytes (%.1f KB). The core (`mast`) alone: "
              "%d bytes, budget %d." % (flashed, flashed / 1024.0, core, CORE_BUDGET)]
    items.append({"what": "the core's .mpy (firmware/mast)", "target": "≤ 28 KB (%d B)" % CORE_BUDGET,
                  "measured": "%d B (%.1f KB)" % (core, core / 1024.0), "met": core <= CORE_BUDGET})
    items.append({"what": "the whole firmware's .mpy (firmware/ except mastd)", "target": "(reported)",
                  "measured": "%d B (%.1f KB); flashed %.1f KB" % (total, total / 1024.0, flashed / 1024.0),
                  "met": None})

    lines += ["", "### Heap in use: the endpoint process (core + runtime), one association", "",
              "`gc.mem_alloc()` after a collection, in bytes, on the 64-bit unix port (about half on "
              "a 32-bit board). Before: the process with its uplinks, before `connect`.", "",
              "| uplinks × peer addresses | active paths | before connect | with the association | the association costs |",
              "|---|---|---|---|---|"]
    for (u, r), g in sorted(grid.items()):
        lines.append("| %d × %d | %d | %d | %d | %d |" % (u, r, g["paths"], g["before"], g["with"], g["with"] - g["before"]))
    if grid:
        xs = [u * r for (u, r) in grid]
        ys = [g["with"] - g["before"] for g in grid.values()]
        a0, per_path = fit(xs, ys)
        lines += ["", "Fit over the grid: an association costs about %d bytes plus %d per path." % (a0, per_path)]
        g33 = grid.get((3, 3))
        if g33:
            items.append({"what": "heap in use, association up with 3×3 paths (endpoint process, 64-bit port)",
                          "target": "(reported)", "measured": "%d B (%.0f KB)" % (g33["with"], g33["with"] / 1024.0),
                          "met": None})
    lines += ["", "### Heap in use against the number of associations (one uplink, one address each)", "",
              "| associations | " + " | ".join(str(i) for i in range(len(assoc))) + " |",
              "|---|" + "---|" * len(assoc),
              "| heap in use (bytes) | " + " | ".join(str(v) for v in assoc) + " |"]
    if len(assoc) > 2:
        a0, per = fit(list(range(len(assoc))), assoc)
        lines += ["", "Each association adds about **%d bytes** (least-squares slope over 0–%d)." % (per, len(assoc) - 1)]
    lines += ["", "### Smallest heap for the whole firmware with the demo traffic", "",
              "The board firmware on the simulated board (`mast sim-board`'s launcher, .mpy files, the "
              "unix-sim board): tests/host/test_sim_board_traffic.py's scenario, 50 telemetry datagrams "
              "a second to a CPython peer, console commands under traffic, an uplink down and back up; "
              "it must deliver at least 300 datagrams and lose at most 30.", "",
              "| -X heapsize | result | heap in use at the end (bytes) |", "|---|---|---|"]
    for k in sorted(runs):
        r = runs[k]
        lines.append("| %dK | %s | %s |" % (k, "runs" if r else "fails", r["mem_end"]["alloc"] if r else "–"))
    if smallest:
        lines += ["", "Smallest: **%dK** (target %dK, aim %dK: about %d and %d KB on a 32-bit board)." % (
            smallest, WHOLE_TARGET_K, WHOLE_AIM_K, WHOLE_TARGET_K // 2, WHOLE_AIM_K // 2)]
        ends = [r["mem_end"]["alloc"] for r in runs.values() if r]
        if smallest > WHOLE_AIM_K and ends:
            lines += ["", "Why not %dK: the firmware holds about %d KB live at the end of the demo "
                      "(`gc.mem_alloc()` after a collection), more than %dK before the collector "
                      "has any room to work; the core alone takes %s after import (bench/heap.py) and "
                      "the endpoint process about %d KB before its first association (above). On a "
                      "board, modules frozen into the firmware image (firmware/manifest.py) keep their "
                      "bytecode in flash instead of the heap; the unix port here cannot show that." % (
                          WHOLE_AIM_K, min(ends) // 1024, WHOLE_AIM_K, core_heap_text(),
                          (min(g["before"] for g in grid.values()) // 1024) if grid else 0)]
    items.append({"what": "whole firmware runs the demo traffic in -X heapsize", "target": "≤ 192K (aim 128K)",
                  "measured": "%dK" % smallest if smallest else "not even 256K", "met": bool(smallest and smallest <= WHOLE_TARGET_K)})
    if smallest:
        items.append({"what": "whole firmware in the aimed heap", "target": "128K", "measured": "%dK" % smallest,
                      "met": smallest <= WHOLE_AIM_K})
    lines += ["", "Run time %d s." % (time.monotonic() - t0), "", "<!-- results: %s -->" % json.dumps(items)]
    benchdoc.write_section("footprint", "MicroPython footprint of the whole firmware",
                           ".venv/bin/python bench/footprint.py", "\n".join(lines))
    return 0


if __name__ == "__main__":
    import signal

    signal.signal(signal.SIGTERM, _on_term)
    sys.exit(main())
