"""`mast sim-board`: a simulated board (the MicroPython unix port running the board firmware)
on a pseudo-terminal that mpremote, pyserial and the other `mast` commands use like a real
board's serial port. The machinery is mast_tools.simboard."""

import os
import sys

from mast_tools.errors import CommandError
from mast_tools.output import emit, log
from mast_tools.simboard import SimBoard, SimBoardError, board_names, install_signals

EXAMPLE = """example:
  mast sim-board --dir board-fs --link /tmp/board --soft-reset &
  mpremote connect /tmp/board ls            # as with a board on /dev/ttyUSB0
  python -m serial.tools.miniterm /tmp/board 115200
      {"id": 1, "op": "hello"}              # the console: one JSON request a line

An empty (or new) --dir gets the firmware as .mpy, /main.py, /boot.py, /app.py and the
board's board.json; --bare leaves it empty, a plain MicroPython board for `mast flash`.
The process runs until Ctrl-C. micropython is restarted whenever it exits or is killed,
as a board reboots; `kill -USR1 <pid>` cuts the power (for power-loss tests)."""


def argparse_sim_board(p):
    p.add_argument("--dir", default="sim-board",
                   help="the board's filesystem (default: ./sim-board)")
    p.add_argument("--board", default="unix-sim",
                   help="board definition for a new --dir (boards/*.json; default unix-sim)")
    p.add_argument("--link", metavar="PATH", help="keep a symlink to the device at PATH")
    p.add_argument("--bare", action="store_true",
                   help="do not install the firmware: a plain MicroPython board")
    p.add_argument("--soft-reset", action="store_true",
                   help="Ctrl-D in the raw REPL soft-resets as on a real board (boot.py, "
                        "'soft reboot', raw REPL), so mpremote works without `resume`")
    p.add_argument("--heapsize", help="micropython -X heapsize (default: the board's, 192K)")
    p.epilog = EXAMPLE


def do_sim_board(args):
    if args.board not in board_names():
        raise CommandError("no board definition %r" % args.board,
                           "pick one of: " + ", ".join(board_names()))
    board = SimBoard(args.dir, board=args.board, link=args.link, bare=args.bare,
                     soft_reset=args.soft_reset, heapsize=args.heapsize,
                     log=lambda m: log("mast sim-board: " + m))
    try:
        written = board.prepare()
        device = board.open()
    except SimBoardError as e:
        raise CommandError(e.what, e.hint)
    if written:
        log("mast sim-board: installed %d files into %s" % (len(written), board.folder))
    install_signals(board)

    def ready(b):
        info = {"device": device, "link": b.link, "dir": b.folder, "board": b.board,
                "pid": os.getpid(), "soft_reset": b.soft_reset, "heapsize": b.heapsize}
        emit(args, info, "%s%s" % (device, " -> " + b.link if b.link else ""))
        sys.stdout.flush()

    board.serve(ready)
    return 0


# cli.py's _COMMANDS entry: (handler, argparse builder, one-line help)
COMMAND = (do_sim_board, argparse_sim_board,
           "a simulated board: the firmware in the MicroPython unix port on a pty")
