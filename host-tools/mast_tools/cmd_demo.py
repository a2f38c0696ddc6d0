"""`mast demo`: a simulated board keeps its stream alive while its uplinks die."""

import os
import sys

from mast_tools.errors import CommandError
from mast_tools.output import emit, log, progress

EXAMPLE = """\
example:
  mast demo                       the scenario, with a live table on stderr, then a summary
  mast demo --mode redundant      every datagram on two paths: nothing is lost
  mast demo --json > run.json     the summary as one JSON document
  mast demo --plot demo.svg       also draw the run (.svg, .png or .pdf; needs matplotlib)

The board is the real board firmware on `mast sim-board`: the MicroPython unix port on a
pseudo-terminal, the firmware as .mpy, booted as a board boots (-X heapsize=192K), driven over
its serial console (`status`, `uplink wifi addr ...`). Where that port is not installed (its
wheel exists only for x86_64 Linux) the board is the runtime's endpoint process under CPython,
and the demo says so. Its uplinks eth (2 ms), wifi (8+-2 ms) and cell (40 ms, metered) each go
through an emulated link (see `mast linkemu`) to a host endpoint in this process. The board's
app streams numbered telemetry; the scenario cuts eth, then wifi, brings eth back (failback),
then brings wifi back with a new address (renumbering). Each failover's gap is the core's own
measure: from the last sign of life of the old path to the switch. A run takes about 40 s;
Ctrl-C ends it early (so do SIGTERM and SIGHUP), with its summary.
"""

_PLOT_TYPES = (".svg", ".png", ".pdf")


def _rate(text):
    value = int(text)
    if not 1 <= value <= 200:
        raise ValueError(text)
    return value


_rate.__name__ = "rate"


def argparse_demo(p):
    p.epilog = EXAMPLE
    p.add_argument("--mode", choices=("failover", "redundant"), default="failover",
                   help="failover: one path at a time (default); redundant: two")
    p.add_argument("--plot", metavar="FILE", help="draw the run to FILE (.svg, .png or .pdf)")
    p.add_argument("--board", choices=("auto", "micropython", "cpython"), default="auto",
                   help="micropython: the board firmware on mast sim-board; cpython: the "
                        "runtime's endpoint process under CPython; auto (default): micropython "
                        "if the unix port is installed")
    p.add_argument("--heapsize", default=None, metavar="SIZE",
                   help="the simulated board's micropython -X heapsize (default 192K)")
    p.add_argument("--rate", type=_rate, default=50, metavar="N",
                   help="datagrams a second the board streams (default 50)")
    p.add_argument("--seed", type=int, default=1, help="seed of the links' jitter")


class LiveTable:
    """The demo's status on stderr: a table rewritten in place on a terminal; elsewhere log
    lines and a progress line every few seconds."""

    def __init__(self, stream=None):
        self.err = stream or sys.stderr
        try:
            self.tty = self.err.isatty()
        except (AttributeError, ValueError):
            self.tty = False
        self.height = 0
        self.lines = []

    def log(self, msg):
        if not self.tty:
            log(msg)
            return
        self._erase()
        self.err.write(msg + "\n")
        self._draw()

    def update(self, demo):
        self.lines = render(demo)
        if self.tty:
            self._erase()
            self._draw()
        else:
            progress(" | ".join(self.lines[-3:-1]))

    def _erase(self):
        if self.height:
            self.err.write("\x1b[%dA\r\x1b[J" % self.height)
            self.height = 0

    def _draw(self):
        for line in self.lines:
            self.err.write(line + "\x1b[K\n")
        self.height = len(self.lines)
        self.err.flush()

    def close(self):
        if not self.tty:
            progress(" | ".join(self.lines[-3:-1]) if self.lines else "demo over", done=True)


def _ms(v):
    return "-" if v is None else "%d ms" % v


def render(demo):
    """The live table's lines."""
    from mast_tools.demo import LINK_TEXT, UPLINKS

    t, paths, primary = demo.samples[-1] if demo.samples else (0, {}, None)
    loss = demo.link_loss()
    per = dict((n, 0) for n in UPLINKS)
    for _, _, link in demo.deliveries:
        per[link] = per.get(link, 0) + 1
    free = " (%d KB free)" % (demo.heap_free[-1] // 1024) if demo.heap_free else ""
    lines = ["MAST demo  %5.1f s  mode %s   host endpoint: %s" % (
        demo.t(), demo.mode, _host_runtime()),
        "board: %s%s" % (demo.board_label(), free),
        "%-6s %-8s %-11s %7s %6s %10s" % ("uplink", "link", "state", "rtt", "loss", "delivered")]
    for n in UPLINKS:
        state, rtt = paths.get(n, ("-", None))
        lo = loss.get(n)
        lines.append("%-6s %-8s %-11s %7s %6s %10d%s" % (
            n, LINK_TEXT[n], state, _ms(rtt), "-" if lo is None else "%d%%" % round(100 * lo),
            per.get(n, 0), "   <- primary" if n == primary else ""))
    # the board's count comes with its status (4 a second): never show fewer than have arrived
    sent = max(demo.sent(), max(demo.seen) + 1 if demo.seen else 0)
    lines.append("sent %d  delivered %d  lost %d  duplicates %d" % (
        sent, len(demo.seen), demo.live_lost(),
        sum(c - 1 for c in demo.seen.values() if c > 1)))
    fos = ["%s %s->%s %s" % ("failback" if f["failback"] else "failover", f["from"], f["to"],
                             _ms(f["gap_ms"])) for f in demo.failovers]
    lines.append("; ".join(fos) or "no failover yet")
    if demo.steps and demo.step_i < len(demo.steps):
        s = demo.steps[demo.step_i]
        wait = " (waiting for %s)" % s.waiting_for if s.done is None and s.waiting_for else ""
        lines.append("step: %s%s" % (s.name, wait))
    return lines


def _host_runtime():
    return "%s %d.%d.%d" % ((sys.implementation.name,) + tuple(sys.version_info[:3]))


def summary_text(s):
    b = s.get("board") or {}
    heap = ""
    if b.get("heap_free_min") is not None:
        heap = ", at least %d KB of it free" % (b["heap_free_min"] // 1024)
    out = ["board: %s%s" % (b.get("what") or s["board_runtime"], heap),
           "host endpoint: %s   mode %s" % (s["peer_runtime"], s["mode"]),
        "sent %d   delivered %d (%.1f %%)   lost %d   duplicates %d" % (
            s["sent"], s["delivered"], s["delivered_pct"], s["lost"], s["duplicates"])]
    for f in s["failovers"]:
        out.append("%-8s %-4s -> %-4s  gap %s (bound %d ms)  at %.1f s  host saw no data for %s"
                   % ("failback" if f["failback"] else "failover", f["from"], f["to"],
                      _ms(f["gap_ms"]), f["bound_ms"], f["at_s"], _ms(f["delivery_gap_ms"])))
    r = s.get("renumbered")
    if r:
        seen = ("at %.1f s" % r["host_saw_at_s"]) if r["host_saw_at_s"] is not None else "never"
        out.append("wifi renumbered %s -> %s; the host saw the new address %s"
                   % (r["old"], r["new"], seen))
    if s.get("ended_by") == "interrupt":  # (else the checks' FAILED reads as a failed demo)
        out.append("interrupted (Ctrl-C) before the scenario's end: what it did not reach reads "
                   "FAILED below")
    out.append("checks: " + ", ".join("%s %s" % (k, "ok" if v else "FAILED")
                                      for k, v in sorted(s["checks"].items())))
    for n in s["notes"]:
        out.append("note: " + n)
    return "\n".join(out)


def do_demo(args):
    from mast_tools.demo import Demo, DemoError

    if args.plot:
        ext = os.path.splitext(args.plot)[1].lower()
        if ext not in _PLOT_TYPES:
            raise CommandError("cannot draw %s: unknown file type %r" % (args.plot, ext),
                               "name the plot file .svg, .png or .pdf")
        try:
            import matplotlib  # noqa: F401  (checked now, used at the end)
        except ImportError:
            raise CommandError("--plot needs matplotlib, which is not installed",
                               "pip install matplotlib (requirements.txt pins it)")
    from mast_tools.demo import scenario_text

    log(scenario_text(args.mode, args.rate))
    view = LiveTable()
    kw = {"heapsize": args.heapsize} if args.heapsize else {}
    demo = Demo(mode=args.mode, rate=args.rate, board=args.board, seed=args.seed, view=view,
                **kw)
    try:  # (SIGTERM and SIGHUP end it as Ctrl-C does: cli.main's StopSignal)
        result = demo.run()
    except DemoError as e:
        raise CommandError(e.what, e.hint)
    view.close()
    if args.plot:
        from mast_tools.demo_plot import plot

        try:
            plot(demo.timeline(), result, args.plot)
        except OSError as e:
            raise CommandError("cannot write %s: %s" % (args.plot, e.strerror or e),
                               "check the path")
        log("plot: %s" % args.plot)
    emit(args, result, summary_text(result))
    if result["ended_by"] == "interrupt":
        return 130
    return 0 if result["ok"] else 1  # a run that failed a check (lost data, ...) says so
