"""Flashing the simulated board: `mast flash` (a first flash, then a reflash with nothing changed)
against a plain `mpremote cp -r` of the same files, in the same run. Needs no root.

    .venv/bin/python bench/flash.py [--repeat N] [--baud B]

Each case gets a fresh bare board (`mast sim-board --bare`: the MicroPython unix port behind a
pseudo-terminal, with a mast.json of its own as a board's owner would write it). mpremote copies
exactly the files `mast flash` put on the first board (lib/{mast,runtime,board}/*.mpy, boot.py,
main.py, app.py, board.json), with `resume` as this board needs; mpremote skips a file whose
SHA-256 already matches, so its second run is its own "nothing changed" case.

A pseudo-terminal moves bytes as fast as the processes can; a board's USB-serial bridge does
not. So every case runs twice: straight on the pty, and through a relay that paces each
direction at B baud (default 115200, 10 bits a byte), which also counts the bytes each way.
Writes the `flash` section of docs/BENCHMARKS.md.
"""

import argparse
import json
import os
import pty
import random
import select
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import tty

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path[:0] = [HERE, os.path.join(ROOT, "host-tools")]
import benchdoc  # noqa: E402

TARGET_S = 3.0


def log(msg):
    sys.stderr.write("[%s] %s\n" % (time.strftime("%H:%M:%S"), msg))
    sys.stderr.flush()


class SlowLine:
    """A pty between a client and the board's device that passes bytes at `baud` (10 bits a
    byte) in each direction, and counts them. baud None: no pacing, counting only."""

    def __init__(self, device, baud):
        self.bps = baud / 10.0 if baud else None
        self.board = os.open(device, os.O_RDWR | os.O_NOCTTY)
        tty.setraw(self.board)
        self.master, self.slave = pty.openpty()
        tty.setraw(self.slave)
        self.path = os.ttyname(self.slave)
        self.count = {"to_board": 0, "from_board": 0}
        self.stop = False
        self.threads = [threading.Thread(target=self._pump, args=(self.master, self.board, "to_board"), daemon=True),
                        threading.Thread(target=self._pump, args=(self.board, self.master, "from_board"), daemon=True)]
        for t in self.threads:
            t.start()

    def _pump(self, src, dst, key):
        free = time.monotonic()
        while not self.stop:
            r, _, _ = select.select([src], [], [], 0.2)
            if not r:
                continue
            try:
                data = os.read(src, 64)
            except OSError:
                time.sleep(0.01)  # the client side closed (EIO) until the next client opens it
                continue
            if not data:
                continue
            self.count[key] += len(data)
            if self.bps:
                free = max(free, time.monotonic()) + len(data) / self.bps
                wait = free - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
            view = memoryview(data)
            while view:
                try:
                    n = os.write(dst, view)
                    view = view[n:]
                except BlockingIOError:
                    time.sleep(0.001)

    def take(self):
        c = dict(self.count)
        self.count = {"to_board": 0, "from_board": 0}
        return c

    def close(self):
        self.stop = True
        for t in self.threads:
            t.join(2)
        for fd in (self.board, self.master, self.slave):
            try:
                os.close(fd)
            except OSError:
                pass


def bare_board(folder):
    from mast_tools import simboard

    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "mast.json"), "w") as f:
        json.dump({"name": "board1", "port": random.randint(40000, 59999)}, f)
    return simboard.SimBoardProcess(folder, "--bare")


def timed(argv, timeout=600, env=None):
    t = time.monotonic()
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
                       timeout=timeout, env=env)
    return time.monotonic() - t, r


def mast_flash(port):
    env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "host-tools"))
    s, r = timed([sys.executable, "-m", "mast_tools", "flash", "--port", port, "--board", "unix-sim", "--json"],
                 env=env)
    if r.returncode != 0:
        raise RuntimeError("mast flash failed (%d): %s" % (r.returncode, r.stderr[-800:]))
    doc = json.loads(r.stdout)
    return s, doc


def mpremote_cp(port, stage, names):
    mp = os.path.join(benchdoc.VENV_BIN, "mpremote")
    cwd = os.getcwd()
    os.chdir(stage)
    try:
        s, r = timed([mp, "connect", port, "resume", "fs", "cp", "-r"] + names + [":./"])  # ":" alone fails with several sources
    finally:
        os.chdir(cwd)
    if r.returncode != 0:
        raise RuntimeError("mpremote cp failed (%d): %s" % (r.returncode, (r.stderr or r.stdout)[-800:]))
    return s, r


def installed(folder):
    """The files `mast flash` put on the board: /lib/{mast,runtime,board} and the root files."""
    out = []
    for dirpath, dirnames, filenames in os.walk(os.path.join(folder, "lib")):
        for n in filenames:
            out.append(os.path.relpath(os.path.join(dirpath, n), folder))
    for n in ("boot.py", "main.py", "app.py", "board.json"):
        if os.path.exists(os.path.join(folder, n)):
            out.append(n)
    return sorted(out)


def run_case(work, tag, baud, repeat):
    """First flash and no-change reflashes with mast flash, then mpremote cp -r of the same files
    onto a second bare board: {name: (seconds list, bytes to/from)}."""
    res = {}
    folder = os.path.join(work, tag + "-mast")
    with bare_board(folder) as sb:
        line = SlowLine(sb.device, baud)
        try:
            s, doc = mast_flash(line.path)
            res["mast flash: first (bare board)"] = ([s], line.take(), len(doc.get("copied", [])))
            log("%s: mast flash, first: %.2f s, %d files" % (tag, s, len(doc.get("copied", []))))
            times, cnt = [], None
            for _ in range(repeat):
                s, doc = mast_flash(line.path)
                if doc.get("copied"):
                    raise RuntimeError("a reflash with nothing changed copied %r" % doc["copied"])
                times.append(s)
                cnt = line.take()
            res["mast flash: again, nothing changed"] = (times, cnt, 0)
            log("%s: mast flash, no change: %s s" % (tag, ", ".join("%.2f" % t for t in times)))
        finally:
            line.close()
    files = installed(folder)
    stage = os.path.join(work, tag + "-stage")
    for f in files:
        os.makedirs(os.path.dirname(os.path.join(stage, f)) or stage, exist_ok=True)
        shutil.copy2(os.path.join(folder, f), os.path.join(stage, f))
    names = sorted(set(f.split(os.sep)[0] for f in files))
    with bare_board(os.path.join(work, tag + "-mpremote")) as sb:
        line = SlowLine(sb.device, baud)
        try:
            s, _ = mpremote_cp(line.path, stage, names)
            res["mpremote cp -r: first (bare board)"] = ([s], line.take(), len(files))
            log("%s: mpremote cp -r, first: %.2f s" % (tag, s))
            times = []
            for _ in range(repeat):
                s, _ = mpremote_cp(line.path, stage, names)
                times.append(s)
                cnt = line.take()
            res["mpremote cp -r: again, nothing changed"] = (times, cnt, 0)
            log("%s: mpremote cp -r, no change: %s s" % (tag, ", ".join("%.2f" % t for t in times)))
        finally:
            line.close()
    return res, files, sum(os.path.getsize(os.path.join(stage, f)) for f in files)


def _on_term(signum, frame):
    raise SystemExit(128 + signum)  # so the finally clauses remove what this run made


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3, help="no-change runs per case (median reported)")
    ap.add_argument("--baud", type=int, default=115200)
    args = ap.parse_args()
    mpy = os.path.join(benchdoc.VENV_BIN, "micropython")
    if not os.path.exists(mpy):
        print("bench/flash.py: no MicroPython unix port here (x86_64 only); skipped", file=sys.stderr)
        return 0
    try:
        from mast_tools import cmd_flash  # noqa: F401
    except ImportError:
        print("bench/flash.py: `mast flash` does not exist yet; skipped", file=sys.stderr)
        return 0
    t0 = time.monotonic()
    work = tempfile.mkdtemp(prefix="mast-flash-")
    cases = {}
    try:
        for tag, baud in (("pty", None), ("%d baud" % args.baud, args.baud)):
            cases[tag] = run_case(work, tag.replace(" ", ""), baud, args.repeat)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    rows = ["| line | what | files sent | seconds (median of runs) | runs | bytes to / from the board |",
            "|---|---|---|---|---|---|"]
    items = []
    for tag, (res, files, size) in cases.items():
        for what, (times, cnt, nfiles) in res.items():
            med = sorted(times)[len(times) // 2]
            rows.append("| %s | %s | %d | %.2f | %s | %d / %d |" % (
                "pseudo-terminal (unpaced)" if tag == "pty" else tag, what, nfiles, med,
                ", ".join("%.2f" % t for t in times), cnt["to_board"], cnt["from_board"]))
            if what.startswith("mast flash: again"):
                items.append({"what": "no-change reflash with `mast flash` (%s)" % (
                    "simulated board, pty" if tag == "pty" else "simulated board at " + tag),
                    "target": "≤ 3 s", "measured": "%.2f s" % med, "met": med <= TARGET_S})
    any_files = list(cases.values())[0]
    body = ["The files: %d (%d bytes): what `mast flash` installed on the first board. `mast flash` "
            "also compiles the firmware with mpy-cross (each run), checks the board and verifies "
            "every file by SHA-256 after the copy, and restarts the board and waits for its "
            "console (first flash and reflash alike); mpremote only copies (and, the second time, "
            "compares hashes). The paced line stands for a board's USB-serial bridge; real "
            "boards add their own flash-write time." % (len(any_files[1]), any_files[2]), ""]
    body += rows
    body += ["", "Run time %d s." % (time.monotonic() - t0), "", "<!-- results: %s -->" % json.dumps(items)]
    benchdoc.write_section("flash", "Flashing the simulated board: mast flash against mpremote cp",
                           ".venv/bin/python bench/flash.py --repeat %d --baud %d" % (args.repeat, args.baud),
                           "\n".join(body))
    return 0


if __name__ == "__main__":
    import signal

    signal.signal(signal.SIGTERM, _on_term)
    sys.exit(main())
