"""`mast sim-board`: a simulated board (the MicroPython unix port running the board firmware)
on a pseudo-terminal that mpremote, pyserial and the other `mast` commands use like a real
board's serial port. The machinery is mast_tools.simboard.

Before it starts, it checks that the UDP addresses the board's uplinks will bind (the
definition's sim addresses and the MAST port of DIR/mast.json) are free: a second board on the
same definition and port would otherwise boot with every uplink failing on EADDRINUSE. While
it runs, it is listed by `mast ports` (simregistry), so commands find it without --port.
"""

import json
import os
import sys
import time

from mast_tools import simregistry
from mast_tools.atomic import write_atomic
from mast_tools.errors import CommandError
from mast_tools.netutil import udp_in_use
from mast_tools.output import emit, log
from mast_tools.simboard import SimBoard, SimBoardError, board_file, install_signals, load_board

EXAMPLE = """example:
  mast sim-board --dir board-fs --link /tmp/board --soft-reset &
  mpremote connect /tmp/board ls            # as with a board on /dev/ttyUSB0
  python -m serial.tools.miniterm /tmp/board 115200
      {"id": 1, "op": "hello"}              # the console: one JSON request a line

An empty (or new) --dir gets the firmware as .mpy, /main.py, /boot.py, /app.py and the
board's board.json; --bare leaves it empty, a plain MicroPython board for `mast flash`.
--board takes a name from boards/ or the path of a definition (as mast flash does).
The process runs until Ctrl-C (or its terminal closes). micropython is restarted whenever it
exits or is killed, as a board reboots; `kill -USR1 <pid>` cuts the power (for power-loss
tests). Two boards on one definition need their own MAST ports: --mast-port N writes it
into DIR/mast.json. `mast ports` lists the boards that run."""


def argparse_sim_board(p):
    p.add_argument("--dir", default="sim-board",
                   help="the board's filesystem (default: ./sim-board)")
    p.add_argument("--board", default="unix-sim",
                   help="board definition for a new --dir: a name from boards/ or a .json file "
                        "(default unix-sim)")
    p.add_argument("--link", metavar="PATH", help="keep a symlink to the device at PATH")
    p.add_argument("--bare", action="store_true",
                   help="do not install the firmware: a plain MicroPython board")
    p.add_argument("--soft-reset", action="store_true",
                   help="Ctrl-D in the raw REPL soft-resets as on a real board (boot.py, "
                        "'soft reboot', raw REPL), so mpremote works without `resume`")
    p.add_argument("--heapsize", help="micropython -X heapsize (default: the board's, 192K)")
    p.add_argument("--romfs", metavar="IMAGE",
                   help="a ROMFS image (mpremote romfs -o IMAGE build DIR) mounted at /rom before "
                        "boot, /rom/lib first on sys.path, as on a board whose MicroPython has a "
                        "ROMFS partition; the image's size is added to the heap (a board keeps "
                        "it in flash)")
    p.add_argument("--mast-port", type=int, metavar="N",
                   help="the board's MAST UDP port: written into DIR/mast.json (a second board "
                        "on the same definition needs its own)")
    p.epilog = EXAMPLE


def _read_json(path):
    try:
        with open(path) as f:
            doc = json.load(f)
        return doc if isinstance(doc, dict) else None
    except (OSError, ValueError, RecursionError):
        return None


def _set_mast_port(folder, port):
    """Write port into folder/mast.json (created if missing), atomically."""
    if not 1 <= port <= 65535:
        raise CommandError("--mast-port %d is not a UDP port" % port, "give a number from 1 to 65535")
    path = os.path.join(folder, "mast.json")
    cfg = _read_json(path) if os.path.exists(path) else {}
    if cfg is None:
        raise CommandError("%s is not a JSON object" % path, "fix or remove it")
    cfg["port"] = port
    if "name" not in cfg:
        cfg["name"] = "sim-%d" % port
    write_atomic(path, json.dumps(cfg))


def udp_addresses(bd, cfg):
    """{uplink: (ip, port)} the firmware will bind on this board: each sim uplink's address
    (the configuration's uplinks.NAME.address first) on the configuration's MAST port."""
    from mast_tools.firmware import use_firmware

    use_firmware()
    from mast import config

    cfg = cfg or {}
    port = cfg.get("port")
    if not isinstance(port, int):
        port = config.validate({"name": "x"})["port"]  # the schema's default
    ups = dict((n, u) for n, u in bd["uplinks"].items() if u["kind"] == "sim")
    for n, u in (cfg.get("uplinks") or {}).items():
        if isinstance(u, dict) and u.get("address"):
            ups[n] = dict(ups.get(n) or {}, address=u["address"])
    return dict((n, (u["address"], port)) for n, u in ups.items() if u.get("address"))


def _check_free(folder, bd):
    """CommandError if an address this board's uplinks bind is taken (another sim board on
    the same definition, or any other program)."""
    addrs = udp_addresses(bd, _read_json(os.path.join(folder, "mast.json")))
    taken = [(n, a) for n, a in sorted(addrs.items(), key=lambda x: x[1])
             if udp_in_use(*a)]
    if not taken:
        return
    name, (ip, port) = taken[0]
    who = "another program"
    for info in simregistry.running():
        if "%s:%d" % (ip, port) in (info.get("udp") or []):
            who = "another simulated board (pid %s, --dir %s)" % (info["pid"], info.get("dir"))
            break
    raise CommandError(
        "UDP %s:%d, where this board's %s uplink (%s) would run MAST, is in use by %s"
        % (ip, port, name, bd["name"], who),
        "give this board its own MAST port: mast sim-board --dir %s --mast-port %d (or stop the "
        "other one)" % (folder, port + 1))


def do_sim_board(args):
    try:
        bd = load_board(args.board)
    except SimBoardError as e:
        raise CommandError(e.what, e.hint)
    if bd["port"] != "unix":
        raise CommandError("%s is a definition for %s boards; a simulated board is the unix port"
                           % (bd["name"], bd["port"]),
                           "use a unix definition (--board unix-sim, or a copy of it)")
    if os.path.exists(args.dir) and not os.path.isdir(args.dir):
        raise CommandError("--dir %s is not a directory" % args.dir,
                           "give the folder of the board's files (a new one is created)")
    for info in simregistry.running():  # (two boards on one folder: each rewrites the other's files)
        if info.get("dir") and os.path.realpath(info["dir"]) == os.path.realpath(args.dir):
            raise CommandError("--dir %s is the folder of a simulated board that runs (pid %s, %s)"
                               % (args.dir, info["pid"], info.get("device")),
                               "give this board a folder of its own, or stop that one first")
    board = SimBoard(args.dir, board=args.board, link=args.link, bare=args.bare,
                     soft_reset=args.soft_reset, heapsize=args.heapsize, romfs=args.romfs,
                     log=lambda m: log("mast sim-board: " + m))
    if args.mast_port is not None:
        _set_mast_port(board.folder, args.mast_port)
    if not args.bare:
        _check_free(board.folder, bd)
    try:
        written = board.prepare()
        device = board.open()
    except SimBoardError as e:
        raise CommandError(e.what, e.hint)
    if written:
        log("mast sim-board: installed %d files into %s" % (len(written), board.folder))
    install_signals(board)
    cfg = _read_json(os.path.join(board.folder, "mast.json"))

    def ready(b):
        info = {"device": device, "link": b.link, "dir": b.folder, "board": bd["name"],
                "board_file": os.path.abspath(board_file(args.board) or args.board),
                "pid": os.getpid(), "soft_reset": b.soft_reset, "heapsize": b.heapsize,
                "romfs": b.romfs, "romfs_bytes": b.romfs_bytes, "started": time.time(),
                "udp": sorted("%s:%d" % a for a in udp_addresses(bd, cfg).values())}
        simregistry.register(info)
        emit(args, dict((k, info[k]) for k in ("device", "link", "dir", "board", "pid",
                                                  "soft_reset", "heapsize", "romfs", "romfs_bytes")),
             "%s%s" % (device, " -> " + b.link if b.link else ""))
        sys.stdout.flush()

    try:
        board.serve(ready)
    finally:
        simregistry.unregister(os.getpid())
    return 0


# cli.py's _COMMANDS entry: (handler, argparse builder, one-line help)
COMMAND = (do_sim_board, argparse_sim_board,
           "a simulated board: the firmware in the MicroPython unix port on a pty")
