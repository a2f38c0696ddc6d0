"""The `mast` command: one table of subcommands, one way to fail.

Adding a subcommand: write `do_<name>(args)` and `argparse_<name>(parser)` in a module (the
builder adds its arguments and sets `parser.epilog` to an example), import them here, and add one
line to _COMMANDS. Every subcommand gets --json from here (a builder may replace it: console
refuses it as a usage error).

Failure: a handler raises CommandError(what, hint); main() prints `mast: <what>; <hint>` on
stderr and returns 1. Usage errors are argparse's (exit 2). Ctrl-C exits 130 quietly, and so do
SIGTERM and SIGHUP: they raise errors.StopSignal, a KeyboardInterrupt, where Ctrl-C would, so
each command ends as Ctrl-C ends it, with the same last messages (a command that runs a loop of
its own, as endpoint and presence do, may set its own handlers while it runs). A second signal
while the first is handled changes nothing. An OSError nobody caught becomes a message with a
hint. Never a traceback.
"""

import argparse
import errno
import os
import signal
import sys

from mast_tools import __version__
from mast_tools.cmd_demo import argparse_demo, do_demo
from mast_tools.cmd_endpoint import argparse_endpoint, do_endpoint
from mast_tools.cmd_apk import COMMAND as APK
from mast_tools.cmd_ipk import argparse_ipk, do_ipk
from mast_tools.cmd_linkemu import argparse_linkemu, do_linkemu
from mast_tools.cmd_presence import COMMAND as PRESENCE
from mast_tools.cmd_simboard import COMMAND as SIM_BOARD
from mast_tools.cmd_flash import COMMAND as FLASH
from mast_tools.cmd_config import COMMAND as CONFIG
from mast_tools.cmd_console import COMMAND as CONSOLE
from mast_tools.cmd_ports import COMMAND as PORTS
from mast_tools.cmd_genkey import COMMAND as GENKEY
from mast_tools.cmd_hwtest import COMMAND as HWTEST
from mast_tools.cmd_board import MAINTENANCE, RESET
from mast_tools.errors import CommandError, StopSignal
from mast_tools.output import log

# name -> (handler, argparse builder, one-line help)
_COMMANDS = {
    "linkemu": (do_linkemu, argparse_linkemu, "emulate uplinks: delay, jitter, loss, rate, cuts"),
    "endpoint": (do_endpoint, argparse_endpoint, "run a MAST endpoint on this PC's sockets"),
    "demo": (do_demo, argparse_demo, "a simulated board keeps streaming while its uplinks die"),
    "ipk": (do_ipk, argparse_ipk, "build the OpenWrt package of mastd (dist/mast_*_all.ipk)"),
    "apk": APK,
    "sim-board": SIM_BOARD,
    "flash": FLASH,
    "config": CONFIG,
    "console": CONSOLE,
    "reset": RESET,
    "maintenance": MAINTENANCE,
    "ports": PORTS,
    "genkey": GENKEY,
    "hwtest": HWTEST,
    "presence": PRESENCE,
}

_OS_HINTS = {
    errno.EADDRINUSE: "another program is using that address; pick another port or stop it",
    errno.EADDRNOTAVAIL: "that address is not on this machine; use one of its own (127.0.0.x)",
    errno.EACCES: "check the permissions (serial ports usually need the dialout group)",
    errno.EPERM: "check the permissions, or run it as a user allowed to do this",
    errno.ENOENT: "check the path (for a board: is it plugged in?)",
    errno.EBUSY: "another program holds it; close it (another mpremote or serial console?)",
    errno.ECONNREFUSED: "nothing is listening there; start it first",
    errno.ENOSPC: "the disk is full: make room (df -h shows it), or write elsewhere",
    errno.EROFS: "that filesystem is read-only: write elsewhere",
}
_ACCES_FILE = "this user may not use that path (ls -ld it); give one of your own, e.g. under your home"


def build_parser():
    parser = argparse.ArgumentParser(
        prog="mast",
        description="MAST host tools: keep a session alive while uplinks come and go.",
    )
    parser.add_argument("--version", action="version", version="mast " + __version__)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name, (handler, builder, summary) in _COMMANDS.items():
        p = sub.add_parser(
            name,
            help=summary,
            description=summary,
            formatter_class=argparse.RawDescriptionHelpFormatter,
            conflict_handler="resolve",  # a builder may replace --json (console refuses it)
        )
        # each its own --json (not a shared parent's: replacing a shared one changes them all)
        p.add_argument(
            "--json", action="store_true", help="print one JSON document on stdout; logs go to stderr"
        )
        builder(p)
        p.set_defaults(handler=handler)
    return parser


def _fail(what, hint):
    log("mast: %s; %s" % (what, hint))
    return 1


def _stop_signals():
    """SIGTERM and SIGHUP as Ctrl-C (StopSignal), the first one only. -> put_back(): what main
    calls at its end."""
    fired = []

    def on_signal(signum, frame):
        if not fired:
            fired.append(signum)
            raise StopSignal(signal.Signals(signum).name)

    try:
        before = [(sig, signal.signal(sig, on_signal)) for sig in (signal.SIGTERM, signal.SIGHUP)]
    except ValueError:  # (not the main thread: signals stay as they were)
        return lambda: None

    def put_back():
        """The handlers as they were, where ours is still set (a command may have set its own:
        mast endpoint ignores them once it stops, and that stays). Once a signal came, they stay
        ignored: a second one, as the process exits, must not kill it while it writes its last
        lines."""
        for sig, h in before:
            if signal.getsignal(sig) is on_signal:
                signal.signal(sig, signal.SIG_IGN if fired else h)

    return put_back


def main(argv=None):
    args = build_parser().parse_args(argv)
    put_back = _stop_signals()
    try:
        return _main(args)
    finally:
        put_back()


def _main(args):
    try:
        return args.handler(args) or 0
    except CommandError as e:
        return _fail(e.what, e.hint)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader of our stdout went away (`mast ... | head`): stop quietly.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except OSError as e:
        what = e.strerror or str(e) or type(e).__name__
        if e.filename:
            what = "%s: %s" % (what, e.filename)
            if e.filename2:  # (rename, link: the second is often the path the user gave)
                what += " -> %s" % e.filename2
        hint = _OS_HINTS.get(e.errno, "check the path, device or address; try again")
        if e.errno == errno.EACCES and e.filename and not str(e.filename).startswith("/dev/"):
            hint = _ACCES_FILE  # (not a serial port: the dialout group would not help)
        return _fail(what, hint)


if __name__ == "__main__":
    sys.exit(main())
