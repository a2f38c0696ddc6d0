"""The failover demo: a simulated board with three uplinks keeps streaming while they die.

    board (MicroPython unix port, .mpy firmware)           host (CPython, this process)
      eth  --via--> [linkemu eth  2 ms   ] --127.0.0.2-->
      wifi --via--> [linkemu wifi 8+-2 ms] --127.0.0.3-->  127.0.0.10  Runtime + Endpoint
      cell --via--> [linkemu cell 40 ms  ] --127.0.0.4-->

The board runs firmware/runtime/endpoint_main (the very code a board runs) and streams numbered
datagrams to the host. The host counts what arrives, and on which path: the source address of
each DATA packet names the emulated link it came through. The scenario cuts eth, then wifi, then
brings eth back (the board fails back), then brings wifi back with a new address (renumbering:
the host sees a SET). Each step waits for its effect, with a time limit; a run takes ~35 s.

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
from mast_tools.board_process import board_command

use_firmware()
from mast.endpoint import Endpoint  # noqa: E402
from runtime import stream as stream_codec  # noqa: E402
from runtime.driver import Runtime, runtime_name  # noqa: E402

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
HOST_ADDRESS = ("127.0.0.10", 0)
# A failover must complete within the profile's bound plus the new path's RTT (the "default"
# profile detects a silent cut within 800 ms: tests/core/test_failover.py).
GAP_BOUND_MS = {"default": 800}
TIME_LIMIT_S = 55.0
STATUS_EVERY_S = 0.25
LOSS_WINDOW_S = 2.0


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


class Demo:
    def __init__(self, mode="failover", rate=50, board="auto", seed=1, view=None,
                 profile="default"):
        self.mode = mode
        self.rate = rate
        self.prefer = board
        self.seed = seed
        self.view = view
        self.profile = profile
        self.t0 = time.monotonic()
        self.emu = None
        self.host = None
        self.proc = None
        self.tmp = None
        self.board_cmd = None
        self.board_runtime = None
        self.board_out = b""
        self.board_err = b""
        self.board_eof = False
        self.keys = []
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
        self.final_status = None
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

    # ---- setting up ---------------------------------------------------------------------------

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
        host_addr = self.host.uplinks["wan"].bind
        board_file = {
            "mast": {"name": "board", "mode": self.mode, "profile": self.profile,
                     "peers": {"host": {"psk": psk, "addresses": [format_addr(host_addr)]}}},
            "uplinks": dict((n, {"bind": "127.0.0.1:0",
                                 "via": format_addr(self.emu.inside_addr(n)),
                                 "public": format_addr(self.emu.outside_addr(n)),
                                 "priority": PRIORITY[n], "cost": COST[n]}) for n in UPLINKS),
            "connect": ["host"],
            "stream": {"peer": "host", "rate": self.rate, "size": 64},
        }
        path = os.path.join(self.tmp.name, "board.json")
        with open(path, "w") as f:
            json.dump(board_file, f, indent=1)
        try:
            self.board_cmd = board_command(path, os.path.join(self.tmp.name, "mpy"), self.prefer)
        except RuntimeError as e:
            raise DemoError(str(e), "run `make venv` to install requirements.txt, or use "
                                    "--board cpython")
        if self.board_cmd.note:
            self.note(self.board_cmd.note)
        self.proc = subprocess.Popen(
            self.board_cmd.argv, env=self.board_cmd.env, cwd=self.tmp.name,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            start_new_session=True)  # Ctrl-C reaches us only; we stop the board ourselves
        for pipe, cb in ((self.proc.stdout, self._on_board_stdout),
                         (self.proc.stderr, self._on_board_stderr)):
            os.set_blocking(pipe.fileno(), False)
            self.keys.append((pipe.fileno(), self.host.add_reader(pipe.fileno(), cb)))
        self.steps = self._scenario()

    def _scenario(self):
        # The dwells give the stream time to run on each path: in failover mode each cut loses
        # what was sent during its gap (~0.6 s), so a run of ~35 s delivers ~96 %.
        return [
            Step("start", None, self._ready, 15.0, 5.0,
                 "the association and all three paths"),
            Step("eth cut", lambda: self._cut("eth"), lambda: self._failed_over("eth"), 5.0,
                 4.0, "a failover away from eth"),
            Step("wifi cut", lambda: self._cut("wifi"), lambda: self._failed_over("wifi"), 5.0,
                 3.0, "a failover away from wifi"),
            Step("eth back", lambda: self._restore("eth"), self._failed_back_to_eth, 20.0, 4.0,
                 "the failback to eth"),
            Step("wifi back with a new address", self._renumber_wifi, self._wifi_renumbered, 8.0,
                 5.0, "the host to see wifi's new address"),
            Step("stop", self._stop_stream, None, 0.0, 0.8, ""),
        ]

    # ---- the board's output ---------------------------------------------------------------

    def _on_board_stdout(self, fd, flags):
        data = self._read(fd)
        if data is None:
            return
        if not data:
            self.board_eof = True
            self.host.remove_reader(fd, dict(self.keys)[fd])
            return
        self.board_out += data
        while b"\n" in self.board_out:
            line, self.board_out = self.board_out.split(b"\n", 1)
            try:
                msg = json.loads(line.decode("utf-8", "replace"))
            except ValueError:
                self.notes.append("board said: %s" % line[:200])
                continue
            self._board_message(msg)

    def _on_board_stderr(self, fd, flags):
        data = self._read(fd)
        if data is None:
            return
        if not data:
            self.host.remove_reader(fd, dict(self.keys)[fd])
            return
        self.board_err = (self.board_err + data)[-4000:]

    @staticmethod
    def _read(fd):
        try:
            return os.read(fd, 65536)
        except BlockingIOError:
            return None
        except OSError:
            return b""

    def _board_message(self, msg):
        t = self.t()
        kind = msg.get("event")
        if kind == "started":
            self.board_runtime = msg.get("runtime")
        elif kind == "failover":
            self._failover(t, msg)
        elif kind in ("path_up", "path_down", "association_up", "association_closed",
                      "uplink_dead"):
            self._log("board: %s %s" % (kind, msg.get("path") or msg.get("uplink") or
                                        msg.get("reason") or ""))
        elif kind == "stopped":
            self.final_status = msg.get("status")
        if kind is not None:
            self.board_events.append((t, msg))
        if msg.get("reply") == "status" and "status" in msg:
            self.last_status = msg["status"]
            self._sample(t, msg["status"])
        elif msg.get("error"):
            self.notes.append("board refused a command: %s" % msg["error"])

    def _sample(self, t, status):
        paths, primary = {}, None
        for a in status.get("associations", ()):
            if a.get("peer") != "host":
                continue
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

    def board_command(self, obj):
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            self.proc.stdin.write((json.dumps(obj) + "\n").encode())
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            pass

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
        self.board_command({"op": "uplink", "name": "wifi", "addr": format_addr(new)})
        self.marks.append((self.t(), "wifi back, new address"))

    def _stop_stream(self):
        self.board_command({"op": "stream", "rate": 0})

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
            if self.proc.poll() is not None or self.board_eof:
                self._board_died()
            if t >= self.next_status:
                self.next_status = t + STATUS_EVERY_S
                self.board_command({"op": "status"})
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
                                        "uplinks within %d s" % step.timeout, self._board_hint())
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
        self.last_status = None
        self.board_command({"op": "status"})
        end = time.monotonic() + 3.0
        while self.last_status is None and time.monotonic() < end:
            self.host.poll(20)
            self._host_pump()
            if self.proc.poll() is not None:
                break
        self.final_status = self.last_status

    def _board_hint(self):
        err = self.board_err.decode("utf-8", "replace").strip().splitlines()
        if err:
            return "the board's last words: %s" % " | ".join(err[-3:])
        return "run it by hand: %s" % " ".join(self.board_cmd.argv) if self.board_cmd else "?"

    def _board_died(self):
        try:
            rc = self.proc.wait(2.0)
        except subprocess.TimeoutExpired:
            rc = "still running, its output closed"
        data = self._read(self.proc.stderr.fileno())
        while data:
            self.board_err = (self.board_err + data)[-4000:]
            data = self._read(self.proc.stderr.fileno())
        raise DemoError("the simulated board exited (status %s)" % rc, self._board_hint())

    def stop(self):
        """Stop the board, the relays and the host's sockets. Safe to call twice."""
        if self.proc is not None:
            if self.proc.poll() is None:
                self.board_command({"op": "quit"})
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
        if self.host is not None:
            for fd, key in self.keys:
                self.host.remove_reader(fd, key)
            self.keys = []
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
            "board_heapsize": self.board_cmd.heapsize if self.board_cmd else None,
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

