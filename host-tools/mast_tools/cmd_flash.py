"""`mast flash`: put the MAST firmware on a board over its serial port, nothing half-written.

    1. console: `maintenance on` (no watchdog, no app while we work); a board without MAST
       firmware has no console, and this step is skipped
    2. raw REPL (mpremote's transport; boardrepl.py): what MicroPython and .mpy version the board
       runs; set the maintenance flag; clear what an interrupted flash left
    3. compile the firmware with the mpy-cross that writes what the board reads (mpycross.py)
    4. compare SHA-256 hashes: unchanged files are not sent (flashplan.py decides)
    5. stage a changed /lib in /lib.new, verify every file there, switch with renames; root files
       via NAME.tmp, verified, renamed; board.json and the --config file the same way
    6. verify everything once more, clear the maintenance flag, hard reset, wait for `hello`
"""

import json
import os
import re
import time

from mast_tools import flashplan, mpycross
from mast_tools.errors import CommandError
from mast_tools.firmware import BOARDS_DIR, FIRMWARE_DIR
from mast_tools.output import emit, log, progress

EXAMPLE = """\
example:
  mast flash --port /dev/ttyUSB0 --board olimex-esp32-poe --config board.json
  mast flash --port /dev/ttyACM0 --board rpi-pico-w --dry-run --json

Boards: the names in boards/ (mast flash --board list), or the path of a board definition.
A flash that is cut off (power, cable, Ctrl-C) leaves the old firmware in place and bootable;
run the same command again. Progress goes to stderr; --json prints
{"copied": [...], "skipped": [...], "verified": [...], "version": ...} (board paths).
Real boards: docs/HARDWARE.md ("Flashing")."""

BOOT_TIMEOUT_S = 30.0


def argparse_flash(p):
    p.add_argument("--port", required=True, help="the board's serial port (/dev/ttyUSB0, COM3)")
    p.add_argument("--board", required=True,
                   help="board definition: a name from boards/ or a .json file")
    p.add_argument("--config", metavar="FILE",
                   help="a configuration (JSON) to install as /mast.json; checked first")
    p.add_argument("--dry-run", action="store_true",
                   help="compare only: say what would be copied; change nothing on the board")
    p.add_argument("--firmware", metavar="DIR",
                   help="flash the firmware from DIR (a firmware/ folder) instead of this mast's own")
    p.add_argument("--mpy-cross", metavar="CMD", help="the mpy-cross to compile with")
    p.add_argument("--timeout", type=float, default=BOOT_TIMEOUT_S, metavar="S",
                   help="how long to wait for the board to boot (default %(default)s)")
    p.epilog = EXAMPLE


# ---- what to flash (host files) ----------------------------------------------------------------


def board_names():
    return sorted(n[:-5] for n in os.listdir(BOARDS_DIR) if n.endswith(".json"))


def load_board(name):
    """(definition dict, its bytes). A name from boards/ or a path; checked with the
    firmware's own schema (board/boarddef.py)."""
    path = name if name.endswith(".json") and os.path.isfile(name) else os.path.join(BOARDS_DIR, name + ".json")
    if not os.path.isfile(path):
        raise CommandError("no board definition %r" % name, "pick one of: " + ", ".join(board_names()))
    with open(path, "rb") as f:
        data = f.read()
    from mast_tools.firmware import use_firmware

    use_firmware()
    from board import boarddef

    try:
        doc = json.loads(data.decode())
        boarddef.check(doc)
    except (ValueError, UnicodeError) as e:
        raise CommandError("board definition %s: %s" % (path, e), "fix that field (docs/HARDWARE.md)")
    return doc, data


def load_config(path, bd):
    """The configuration file, checked as the board will check it (the core's schema and
    the board's uplinks); CommandError naming the key otherwise."""
    try:
        with open(path, "rb") as f:
            cfg = json.loads(f.read().decode())
    except OSError as e:
        raise CommandError("cannot read %s: %s" % (path, e.strerror or e), "check the path")
    except (ValueError, UnicodeError) as e:
        raise CommandError("%s is not JSON (%s)" % (path, e), "fix the file")
    err = check_config(cfg, bd)
    if err:
        raise CommandError("%s: %s" % (path, err), "fix that key (docs/CONFIG.md lists them)")
    return cfg


def check_config(cfg, bd):
    """None if cfg suits the board bd, else the error text ("key: message"). The board's
    own check (board/main.py Board.check), run on the host."""
    from mast_tools.firmware import use_firmware

    use_firmware()
    from board.main import Board
    from mast.config import ConfigError

    if not isinstance(cfg, dict):
        return "a configuration is a JSON object"

    class _Def:
        pass

    b = _Def()
    b.bd = bd
    try:
        Board.check(b, cfg)
    except (ConfigError, ValueError) as e:
        return str(e)
    return None


def firmware_version(fw_dir):
    try:
        with open(os.path.join(fw_dir, "board", "compat.py")) as f:
            m = re.search(r'^VERSION\s*=\s*"([^"]+)"', f.read(), re.M)
        return m.group(1) if m else None
    except OSError:
        return None


def firmware_files(fw_dir, compile_):
    """{board path: bytes}: each package compiled to lib/<pkg>/*.mpy, and the root files."""
    files = {}
    for pkg in flashplan.PACKAGES:
        top = os.path.join(fw_dir, pkg)
        if not os.path.isdir(top):
            raise CommandError("no firmware package %s in %s" % (pkg, fw_dir),
                               "give a firmware/ folder (with mast/, runtime/, board/)")
        for dirpath, dirnames, filenames in os.walk(top):
            dirnames[:] = sorted(d for d in dirnames if d not in ("__pycache__", "root"))
            for name in sorted(filenames):
                if name.endswith(".py"):
                    src = os.path.join(dirpath, name)
                    rel = os.path.relpath(src, fw_dir).replace(os.sep, "/")
                    files["lib/" + rel[:-3] + ".mpy"] = compile_(src, rel)
    for name in flashplan.ROOT_FILES:
        with open(os.path.join(fw_dir, "board", "root", name), "rb") as f:
            files[name] = f.read()
    return files


# ---- the steps that talk to the board ---------------------------------------------------------------


def _console_first(port, dry_run, timeout):
    """Step 1. The board's hello (None: no MAST console answers); into maintenance unless it
    is there already (or this is a dry run)."""
    from mast_tools.consoleclient import BoardError, ConsoleClient, NoFirmware

    con = ConsoleClient(port)
    try:
        try:
            info = con.hello(2.0)
        except NoFirmware:
            log("flash: no MAST console answers on %s: a bare MicroPython board (or one at its REPL)" % port)
            return None
        log("flash: the board runs MAST firmware %s (%s, %s mode)"
            % (info.get("version"), info.get("board"), info.get("mode")))
        if not dry_run and info.get("mode") != "maintenance":
            log("flash: maintenance on (the board reboots: no watchdog, no app while flashing)")
            try:
                con.call("maintenance", state="on")
            except (BoardError, TimeoutError) as e:  # the raw REPL step sets the flag anyway
                log("flash: the board did not take maintenance on (%s); going on" % e)
            try:
                con.wait_hello(min(timeout, 15.0), mode="maintenance")
            except NoFirmware:
                crash = [x for x in con.logs if x.get("log") == "crash"]
                log("flash: the board did not come back in maintenance mode%s; flashing through "
                    "its REPL anyway" % (" (its firmware crashes: %s)" % crash[-1].get("error") if crash else ""))
        return info
    finally:
        con.close()


def _fail_on_device(e, what):
    raise CommandError("%s: %s" % (what, e),
                       "the old firmware is still in place; run mast flash again (if the board "
                       "does not answer, reset it by hand first)")


def _write_checked(rb, files, show):
    """Write [(where, bytes)] and check each file's hash where it landed; files that do not
    match are sent once more. DeviceError if they still do not."""
    from mast_tools.boardrepl import DeviceError

    want = dict((where, flashplan.sha256(data)) for where, data in files)
    todo = list(files)
    for attempt in range(2):
        rb.write(todo, show)
        got, _ = rb.hashes(files=[w for w, _ in todo])
        ok, bad = flashplan.check(dict((w, want[w]) for w, _ in todo), got)
        if not bad:
            return
        log("flash: %d file(s) did not verify (%s); sending them again"
            % (len(bad), ", ".join("%s: %s" % b for b in bad[:3])))
        todo = [(w, d) for w, d in todo if w in dict(bad)]
    raise DeviceError("%d file(s) still wrong after a retry: %s" % (len(bad), ", ".join(w for w, _ in bad[:5])))


def _read_board(rb, bd):
    """Step 2: into the raw REPL; what the board is (flashplan.info_script)."""
    from mast_tools.boardrepl import DeviceError

    try:
        rb.enter()
        info = rb.info()
        if info.get("cwd") not in (None, "/", "") and bd.get("port") != "unix":
            rb.run("import os\nos.chdir('/')\n")  # a board's files are relative to its root
    except DeviceError as e:
        _fail_on_device(e, "the board did not answer in its raw REPL")
    if info.get("name") != "micropython":
        raise CommandError("the board runs %s, not MicroPython" % info.get("name"),
                           "install MicroPython on it first (micropython.org/download)")
    if not info.get("base64"):
        raise CommandError("the board's MicroPython has no binascii.a2b_base64",
                           "use a MicroPython build with binascii (every official one has it)")
    return info


def _stage_lib(rb, p, local, show):
    """Step 5 for /lib: build lib.new, verify all of it, switch."""
    from mast_tools.boardrepl import DeviceError

    changed = [x for x in p.copy if x.startswith("lib/")]
    log("flash: staging the new /lib in /%s (%d changed, %d unchanged copied on the board)"
        % (flashplan.STAGE, len(changed), len(p.stage_copies)))
    rb.run(flashplan.stage_script(p.stage_copies, p.stage_dirs), 120)
    _write_checked(rb, [(flashplan.staged_path(x), local[x]) for x in changed], show)
    staged, _ = rb.hashes(dirs=[flashplan.STAGE])
    lib = dict((k, v) for k, v in p.expected.items() if k.startswith("lib/"))
    ok, bad = flashplan.check(lib, staged, where=flashplan.staged_path)
    extra = sorted(set(staged) - set(flashplan.staged_path(k) for k in lib))
    if bad or extra:
        rb.run(flashplan.recover_script())
        raise DeviceError("/%s does not verify: %s" % (flashplan.STAGE, ", ".join(
            ["%s (%s)" % b for b in bad[:3]] + ["%s (not expected)" % x for x in extra[:3]])))
    log("flash: %d files verified in /%s; switching" % (len(ok), flashplan.STAGE))
    rb.run(flashplan.switch_script())


def do_flash(args):
    t0 = time.monotonic()
    fw_dir = os.path.abspath(args.firmware) if args.firmware else FIRMWARE_DIR
    bd, bd_bytes = load_board(args.board)
    cfg = load_config(args.config, bd) if args.config else None  # checked before the board
    version = firmware_version(fw_dir)
    from mast_tools.boardrepl import DeviceError, RawBoard

    before = _console_first(args.port, args.dry_run, args.timeout)  # 1
    rb = RawBoard(args.port, soft_reset=bool(bd.get("soft_reset")),
                  log=lambda m: log("flash: " + m)).open()
    try:
        info = _read_board(rb, bd)  # 2
        mp = ".".join(str(x) for x in info["version"])
        cmd, emitted, note = mpycross.choose(info, args.mpy_cross)  # 3
        log("flash: board: MicroPython %s on %s; compiling with %s" % (mp, info.get("platform"), note))
        local = firmware_files(fw_dir, lambda src, name: mpycross.compile_file(cmd, src, name))
        local["board.json"] = bd_bytes
        if cfg is not None:
            local[flashplan.CONFIG] = flashplan.config_bytes(cfg)
        size = sum(len(v) for v in local.values())
        if info.get("free") is not None and info["free"] < size + 16384:
            raise CommandError("the board has %d KB free; staging the firmware needs about %d KB"
                               % (info["free"] // 1024, size // 1024 + 16),
                               "remove files from the board (mpremote rm) and try again")
        try:  # 4
            if not args.dry_run:
                rb.run(flashplan.maintenance_script("mast flash in progress"))
                for line in rb.run(flashplan.recover_script()).decode().splitlines():
                    log("flash: left by an interrupted flash: " + line)
            remote, rdirs = rb.hashes(dirs=[flashplan.LIB], files=[x for x in local if not x.startswith("lib/")])
        except DeviceError as e:
            _fail_on_device(e, "reading the board's files failed")
        p = flashplan.plan(local, remote, rdirs)
        report = {"copied": p.copy, "skipped": p.skip, "verified": [], "kept": p.kept,
                  "dropped": p.dropped, "version": version, "board": bd["name"],
                  "micropython": mp, "mpy": "%d.%d" % emitted, "bare": before is None}
        if args.dry_run:
            report["dry_run"] = True
            log("flash: dry run: %d file(s) would be copied, %d are up to date" % (len(p.copy), len(p.skip)))
            if before is not None:
                rb.reset()  # the firmware was running: let it run again
            emit(args, report, _text(report))
            return 0

        def show(sent, total, path):
            progress("flash: sending %d file(s): %d of %d KB%s" % (
                len(p.copy), sent // 1024, max(1, total // 1024), " (%s)" % path if path else ""))

        try:  # 5
            if p.lib_changed:
                _stage_lib(rb, p, local, show)
            if p.root:  # boot.py, main.py, app.py, board.json, mast.json: each via NAME.tmp
                _write_checked(rb, [(flashplan.staged_path(x), local[x]) for x in p.root], show)
                rb.run(flashplan.rename_script([(flashplan.staged_path(x), x) for x in p.root]))
            if p.copy:
                progress("flash: sent %d file(s), %d KB" % (len(p.copy), sum(len(local[x]) for x in p.copy) // 1024),
                         done=True)
            # 6
            final, _ = rb.hashes(dirs=[flashplan.LIB], files=[x for x in p.expected if not x.startswith("lib/")])
            verified, bad = flashplan.check(p.expected, final)
            if bad:
                raise DeviceError("after the flash, %d file(s) do not verify: %s"
                                  % (len(bad), ", ".join("%s (%s)" % b for b in bad[:3])))
            report["verified"] = verified
            rb.run(flashplan.clear_maintenance_script())
        except DeviceError as e:
            _fail_on_device(e, "flashing failed")
        log("flash: %d files verified; restarting the board" % len(verified))
        rb.reset()
    finally:
        rb.close()
    report["version"] = _wait_for_hello(args, bd, version)  # 7
    report["seconds"] = round(time.monotonic() - t0, 1)
    emit(args, report, _text(report))
    return 0


def _wait_for_hello(args, bd, version):
    """Step 7: the new firmware answers hello, in normal mode, with the expected version."""
    from mast_tools.consoleclient import ConsoleClient, NoFirmware, no_firmware_error

    con = ConsoleClient.open_when_back(args.port, args.timeout)
    try:
        hello = con.wait_hello(args.timeout, mode="normal")
    except NoFirmware as e:
        crash = [x for x in con.logs if x.get("log") == "crash"]
        if crash:
            raise CommandError("the new firmware crashed at boot: %s" % crash[-1].get("error"),
                               "see `mast console --port %s`; fix the firmware and flash again" % args.port)
        raise CommandError("the board did not answer after the flash (%s)"
                           % no_firmware_error(args.port, e.seen, bd["name"]).what,
                           "see what it prints: mast console --port %s" % args.port)
    finally:
        con.close()
    if version and hello.get("version") != version:
        raise CommandError("the board came back with firmware %s, not %s" % (hello.get("version"), version),
                           "run mast flash again")
    return hello.get("version")


def _text(r):
    what = "would copy" if r.get("dry_run") else "copied"
    lines = ["%s %d file(s), %d unchanged%s" % (what, len(r["copied"]), len(r["skipped"]),
                                              ", %d verified" % len(r["verified"]) if r["verified"] else "")]
    for p in r["copied"]:
        lines.append("  %s %s" % ("+" if not r.get("dry_run") else "~", p))
    if not r.get("dry_run"):
        lines.append("firmware %s on %s (MicroPython %s, .mpy v%s) in %.1f s"
                     % (r["version"], r["board"], r["micropython"], r["mpy"], r.get("seconds", 0)))
    return "\n".join(lines)


# cli.py's _COMMANDS entry: (handler, argparse builder, one-line help)
COMMAND = (do_flash, argparse_flash, "put the MAST firmware on a board (mpy-cross + mpremote), verified")
