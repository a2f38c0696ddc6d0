"""`mast flash`: put the MAST firmware on a board over its serial port, nothing half-written.

    1. console: the board's hello (what it is, which firmware); the board definition is
       checked against it before anything changes; then `maintenance on` (no watchdog, no app
       while we work). A board without MAST firmware has no console: this step is skipped,
       and a port where nothing answers at all is refused within seconds
    2. raw REPL (mpremote's transport; boardrepl.py): what MicroPython and .mpy version the
       board runs, checked against the definition (its port) and the minimum MicroPython
       before anything is written; set the maintenance flag; clear what an interrupted flash left
    3. compile the firmware with the mpy-cross that writes what the board reads (mpycross.py)
    4. compare SHA-256 hashes: unchanged files are not sent (flashplan.py decides)
    5. stage a changed /lib in /lib.new, verify every file there, switch with renames; root files
       via NAME.tmp, verified, renamed; board.json and the --config file the same way
    6. verify everything once more, clear the maintenance flag, hard reset, wait for `hello`

--dry-run changes nothing on the board, the boot counter included: while the firmware runs,
it is asked over its console (the `inventory` op) and keeps running; a board without running
firmware is read through its raw REPL and left as it was.
"""

import json
import os
import re
import time

from mast_tools import boards, flashplan, mpycross, portpick
from mast_tools.argtypes import seconds
from mast_tools.errors import CommandError, how_interrupted
from mast_tools.firmware import FIRMWARE_DIR
from mast_tools.output import emit, log, progress, reset_progress
from mast_tools.serialport import add_port_args

EXAMPLE = """\
example:
  mast flash --port /dev/ttyUSB0 --board olimex-esp32-poe --config board.json
  mast flash --port /dev/ttyACM0 --board rpi-pico-w --dry-run --json
  mast flash --board list                  # the board definitions
  mast flash                               # the one board found; its firmware names its definition

Boards: the names in boards/ (mast flash --board list), or the path of a board definition.
Without --board, the definition the board's running firmware reports is used (or the one a
simulated board was started with). A definition for another kind of board (esp32, rp2, unix)
is refused before anything changes. A flash that is cut off (power, cable, Ctrl-C, SIGTERM) leaves the
old firmware in place and bootable; run the same command again. Progress goes to stderr (one
line per 10 % when it is not a terminal); --json prints
{"copied": [...], "skipped": [...], "verified": [...], "version": ...} (board paths).
Real boards: docs/HARDWARE.md ("Getting MicroPython onto a board", "Flashing")."""

BOOT_TIMEOUT_S = 30.0
MAINT_REASON = "mast flash in progress"


def argparse_flash(p):
    add_port_args(p)
    p.add_argument("--board",
                   help="board definition: a name from boards/, a .json file, or `list`; "
                        "default: the one the board's firmware reports")
    p.add_argument("--config", metavar="FILE",
                   help="a configuration (JSON) to install as /mast.json; checked first")
    p.add_argument("--dry-run", action="store_true",
                   help="compare only: say what would be copied; change nothing on the board")
    p.add_argument("--firmware", metavar="DIR",
                   help="flash the firmware from DIR (a firmware/ folder) instead of this mast's own")
    p.add_argument("--mpy-cross", metavar="CMD", help="the mpy-cross to compile with")
    p.add_argument("--line-numbers", action="store_true",
                   help="keep line numbers in the modules (tracebacks say where; about 2.5 KB "
                        "more of the board's heap: default -O3, without them)")
    p.add_argument("--timeout", type=seconds, default=BOOT_TIMEOUT_S, metavar="S",
                   help="how long to wait for the board to boot (default %(default)s)")
    p.epilog = EXAMPLE


# ---- what to flash (host files) ----------------------------------------------------------------


def board_names():
    return boards.names()


def load_board(name):
    """(definition dict, its bytes). A name from boards/ or a path; checked with the
    firmware's own schema (board/boarddef.py)."""
    return boards.load(name)


def load_config(path, bd):
    """The configuration file, checked as the board will check it (the core's schema and
    the board's uplinks); CommandError naming the key otherwise."""
    from mast_tools.cmd_config import read_json_unique
    from mast_tools.firmware import use_firmware

    use_firmware()
    from runtime.jsonrule import DuplicateKey

    try:
        with open(path, "rb") as f:
            cfg = read_json_unique(f.read().decode())
    except DuplicateKey as e:  # (as mast config validate: a peer given twice lost its first)
        raise CommandError("%s: %s" % (path, e), "give each key once")
    except OSError as e:
        raise CommandError("cannot read %s: %s" % (path, e.strerror or e), "check the path")
    except (ValueError, UnicodeError) as e:
        raise CommandError("%s is not JSON (%s)" % (path, e), "fix the file")
    except RecursionError:  # (a traceback, before)
        raise CommandError("%s nests objects and lists too deep for a configuration" % path, "fix the file")
    from mast_tools.cmd_config import REDACTED, leaves

    hidden = sorted(k for k, v in leaves(cfg).items() if v == REDACTED) if isinstance(cfg, dict) else []
    if hidden:  # (else "must be standard base64 ...": not that it is an exported file's stand-in)
        raise CommandError("%s: %s reads \"%s\" (a file `mast config export` wrote; a flash has no "
                           "secret of the board's to keep)" % (path, hidden[0], REDACTED),
                           "write the secret itself there (a new key: mast genkey)")
    err = check_config(cfg, bd)
    if err:
        raise CommandError("%s: %s" % (path, err), "fix that key (docs/CONFIG.md lists them)")
    return cfg


def check_config(cfg, bd):
    """None if cfg suits the board bd, else the error text ("key: message"). The board's
    own check (board/cfgops.py check, which the firmware runs at boot), run on the host."""
    from mast_tools.firmware import use_firmware

    use_firmware()
    from board.cfgops import check
    from mast.config import ConfigError

    if not isinstance(cfg, dict):
        return "a configuration is a JSON object"
    try:
        check(bd, cfg)
    except ConfigError as e:
        from runtime.jsonrule import error_text

        return error_text(e)  # (a key that may be a secret not repeated, as mastd says it)
    except ValueError as e:
        return str(e)
    return None


def firmware_version(fw_dir):
    try:
        with open(os.path.join(fw_dir, "board", "compat.py")) as f:
            m = re.search(r'^VERSION\s*=\s*"([^"]+)"', f.read(), re.M)
        return m.group(1) if m else None
    except OSError:
        return None


def check_firmware_dir(fw_dir):
    """CommandError unless fw_dir holds a firmware (its packages and root files): checked
    before the board is touched."""
    try:
        chosen = flashplan.select_firmware_files(fw_dir)
    except (OSError, ValueError) as e:
        raise CommandError(str(e), "give a firmware/ folder (with mast/, runtime/, board/)")
    missing = [src for _, src, _ in chosen if not os.path.isfile(src)]  # (the root files)
    if missing:
        raise CommandError("no %s in %s: not a firmware folder" % (os.path.relpath(missing[0], fw_dir), fw_dir),
                           "give a firmware/ folder (with mast/, runtime/, board/)")


def firmware_files(fw_dir, compile_, bd=None, cfg=None):
    """{board path: bytes}: what flashplan.select_firmware_files() picks for the board bd and
    the configuration cfg (only the modules that board loads), the modules compiled
    (compile_(src, name) -> bytes), the root files as they are."""
    try:
        chosen = flashplan.select_firmware_files(fw_dir, bd, cfg)
    except ValueError as e:
        raise CommandError(str(e), "give a firmware/ folder (with mast/, runtime/, board/)")
    files = {}
    for dest, src, compiled in chosen:
        if compiled:
            files[dest] = compile_(src, os.path.relpath(src, fw_dir).replace(os.sep, "/"))
        else:
            with open(src, "rb") as f:
                files[dest] = f.read()
    return files


# ---- the steps that talk to the board ---------------------------------------------------------------


def hello_version(info):
    """MicroPython's version (a tuple) from a hello's "micropython 1.24.1", or None."""
    m = re.search(r"(\d+)\.(\d+)\.(\d+)", info.get("micropython") or "")
    return tuple(int(x) for x in m.groups()) if m else None


def _hello(port, baud):
    """Step 1: the board's hello, or None when no MAST console answers; CommandError at once
    when nothing at all answers on the port (not even a REPL to a Ctrl-C)."""
    from mast_tools.consoleclient import ConsoleClient, FirmwareRefused, NoFirmware
    from mast_tools.serialport import probe_alive, silent_error

    con = ConsoleClient(port, baudrate=baud)
    try:
        info = con.hello(2.0)
        log("flash: the board runs MAST firmware %s (%s, %s mode, %s)"
            % (info.get("version"), info.get("board"), info.get("mode"), info.get("micropython")))
        return info
    except NoFirmware as e:
        seen = e.seen
    except FirmwareRefused as e:  # it runs but cannot carry out a request: its raw REPL can
        log("flash: the MAST firmware on %s answers hello with an error (%s): flashing through "
            "its REPL" % (port, e.error))
        return None
    finally:
        con.close()
    if not seen and not probe_alive(port, baud):
        raise silent_error(port, baud)
    log("flash: no MAST console answers on %s: a bare MicroPython board (or one at its REPL)" % port)
    return None


def _choose_board(args, port, hello):
    """The board definition: --board, else the one the running firmware reports, else the one
    a simulated board was started with. (dict, bytes)."""
    if args.board:
        return load_board(args.board)
    name = hello.get("board") if hello else None
    if name and boards.path_of(name):
        log("flash: no --board given; the board's firmware says it is %s" % name)
        return load_board(name)
    sim = portpick.board_of(port)
    if sim:
        log("flash: no --board given; %s is a simulated board started with %s" % (port, sim))
        return load_board(sim)
    raise CommandError("which board is on %s? --board is needed for a board without the MAST "
                       "firmware%s" % (port, " (its firmware says %r, which is not in boards/)" % name
                                       if name else ""),
                       "mast flash --board list names the definitions (`mast ports` may say "
                       "which is likely)")


def _maintenance_on(port, baud, timeout):
    """Step 1, last: maintenance on through the console, saying it is this flash that set it."""
    from mast_tools.consoleclient import BoardError, ConsoleClient, NoFirmware

    con = ConsoleClient(port, baudrate=baud)
    try:
        log("flash: maintenance on (the board reboots: no watchdog, no app while flashing)")
        try:
            try:
                con.call("maintenance", state="on", reason=MAINT_REASON)
            except BoardError as e:
                if "reason" not in str(e):
                    raise
                con.call("maintenance", state="on")  # firmware older than the reason field
        except (BoardError, TimeoutError) as e:  # the raw REPL step sets the flag anyway
            log("flash: the board did not take maintenance on (%s); going on" % e)
        try:
            con.wait_hello(min(timeout, 15.0), mode="maintenance")
        except NoFirmware:
            crash = [x for x in con.logs if x.get("log") == "crash"]
            log("flash: the board did not come back in maintenance mode%s; flashing through "
                "its REPL anyway" % (" (its firmware crashes: %s)" % crash[-1].get("error") if crash else ""))
    finally:
        con.close()


def _left_stopped(e, port, maintenance):
    """e (a CommandError raised after this flash stopped the board's firmware) with what to
    type next: the board sits at its REPL, in maintenance mode unless a dry run stopped it."""
    if maintenance:
        e.hint += ("; the board is left in maintenance mode, its old firmware stopped: fix that and "
                   "run mast flash again, or start the old firmware: mast maintenance off --port %s" % port)
    else:
        e.hint += "; the board's firmware is left stopped: start it again: mast reset --port %s" % port
    return e


class _DeviceFailure(CommandError):
    """A step on the board failed; its hint says what to type next."""


class _DryRunRefused(CommandError):
    """What a flash would stop with, found by a dry run that left the board as it was."""


_SWITCHED = [False]  # this flash has switched /lib: the old firmware is gone from the board


def _fail_on_device(e, what):
    raise _DeviceFailure("%s: %s" % (what, e), _AFTER_SWITCH if _SWITCHED[0] else
                         "the old firmware is still in place; run mast flash again (if the board "
                         "does not answer, reset it by hand first)")


_AFTER_SWITCH = ("the switch to the new firmware's /lib had begun, so the board may hold the new "
                 "/lib with old files at its root: run mast flash again to finish it (the board "
                 "stays in maintenance mode until then)")


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
    """Step 2: into the raw REPL; what the board is (flashplan.info_script). CommandError,
    before anything is written, if it is not a MicroPython the definition bd suits."""
    from mast_tools.boardrepl import DeviceError

    try:
        rb.enter()
        info = rb.info()
    except DeviceError as e:
        _fail_on_device(e, "the board did not answer in its raw REPL")
    _check_info(info, bd)
    if info.get("cwd") not in (None, "/", "") and bd.get("port") != "unix":
        try:
            rb.run("import os\nos.chdir('/')\n")  # a board's files are relative to its root
        except DeviceError as e:
            _fail_on_device(e, "the board did not answer in its raw REPL")
    return info


def _check_info(info, bd):
    if info.get("name") != "micropython":
        raise CommandError("the board runs %s, not MicroPython" % info.get("name"),
                           "install MicroPython on it first (docs/HARDWARE.md, \"Getting "
                           "MicroPython onto a board\")")
    err = boards.mismatch(bd, info.get("platform"), info.get("version"))
    if err:
        raise err
    if info.get("shadow"):
        raise CommandError("the board imports the firmware from %s (a ROMFS image), ahead of /lib: a "
                           "flash into /lib would never run" % info["shadow"],
                           "deploy the new firmware as a ROMFS image (docs/HARDWARE.md, \"Installing\": "
                           "ROMFS)")
    if not info.get("base64"):
        raise CommandError("the board's MicroPython has no binascii.a2b_base64",
                           "use a MicroPython build with binascii (every official one has it)")


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
    _SWITCHED[0] = True  # (from the moment the switch is asked for: it may be done)
    rb.run(flashplan.switch_script())


class Sender:
    """flash's progress while files go over the port: percent, KB and the time left, from the
    rate so far; one line per 10 % when stderr is not a terminal. The sends of one flash (the
    staged /lib, then the root files) count as one: total is all their bytes."""

    def __init__(self, nfiles, total, clock=time.monotonic):
        self.nfiles = nfiles
        self.total = max(1, total)
        self.clock = clock
        self.t0 = None
        self.base = 0  # bytes of the earlier sends
        self.batch = (0, 0)  # (sent, total) of the send in progress
        reset_progress()

    def line(self, sent):
        """(percent, text) with `sent` bytes of all sent."""
        now = self.clock()
        if self.t0 is None:
            self.t0 = now
        sent = min(sent, self.total)
        pct = 100 * sent // self.total
        eta = ""
        took = now - self.t0
        if sent and took > 0.5 and sent < self.total:
            eta = ", about %d s left" % max(1, round((self.total - sent) * took / sent))
        return pct, "flash: sending %d file(s): %3d%% (%d of %d KB)%s" % (
            self.nfiles, pct, sent // 1024, max(1, self.total // 1024), eta)

    def __call__(self, sent, total, path):
        """What boardrepl.RawBoard.write reports: `sent` of `total` bytes of one send."""
        if sent < self.batch[0] or total != self.batch[1]:  # the next send began
            self.base += self.batch[0]
        self.batch = (sent, total)
        pct, msg = self.line(self.base + sent)
        progress(msg, milestone=pct // 10)


def _check_board_config(rb, bd, port, running):
    """Before anything is written: the board's /mast.json, which a flash without --config
    keeps, checked with the new firmware's rules, as that firmware checks it at boot. One the
    old firmware took and a rule added since refuses (more than 16 peers, a multicast peer
    address) would otherwise be dropped at the first boot, the board running on its last good
    copy or its defaults (no peers) while the flash said it went well. The CommandError that
    the flash would stop with, or None (a dry run raises it once the board is as it was)."""
    from mast_tools.boardrepl import DeviceError

    try:  # (hex: any bytes come back whole, a file that is not UTF-8 too)
        out = rb.run("import binascii\ntry:\n with open('%s', 'rb') as f:\n  print(binascii.hexlify("
                     "f.read()).decode())\nexcept Exception:\n pass\n" % flashplan.CONFIG)
    except DeviceError as e:
        _fail_on_device(e, "reading the board's /%s failed" % flashplan.CONFIG)
    try:
        cfg = json.loads(bytes.fromhex(out.decode().strip()).decode())
    except (ValueError, UnicodeError):
        return None  # none, or not JSON: the old firmware does not run on it either
    err = check_config(cfg, bd)
    if not err:
        return None
    if running:  # (its console can change the key)
        how = ("change that key on the board (mast config --port %s set or unset, then commit: "
               "it works in maintenance mode too), or " % port)
    else:
        how = "remove the file (mpremote connect %s rm :%s) or " % (port, flashplan.CONFIG)
    return CommandError(
        "the board's configuration (/%s) does not pass this firmware's checks: %s; the new "
        "firmware would boot without it" % (flashplan.CONFIG, err),
        how + "flash with a configuration that passes: mast flash --config FILE")


def _local_files(args, fw_dir, info, bd, bd_bytes, cfg):
    """Step 3: the firmware compiled for what the board reads, with board.json and mast.json."""
    mp = ".".join(str(x) for x in info["version"])
    cmd, emitted, note = mpycross.choose(info, args.mpy_cross)
    log("flash: board: MicroPython %s on %s; compiling with %s" % (mp, info.get("platform"), note))
    flags = () if args.line_numbers else mpycross.FLAGS
    local = firmware_files(fw_dir, lambda src, name: mpycross.compile_file(cmd, src, name, flags), bd, cfg)
    left = sorted(m.split("/")[-1] for m in flashplan.CONDITIONAL
                  if "lib/%s.mpy" % m not in local)
    if left:
        log("flash: %d modules for %s; not needed there: %s" % (
            len([x for x in local if x.startswith("lib/")]), bd["name"], ", ".join(left)))
    local["board.json"] = bd_bytes
    if cfg is not None:
        local[flashplan.CONFIG] = flashplan.config_bytes(cfg)
    return local, mp, emitted


def _report(p, version, bd, mp, emitted, bare):
    return {"copied": p.copy, "skipped": p.skip, "verified": [], "kept": p.kept,
            "dropped": p.dropped, "version": version, "board": bd["name"],
            "micropython": mp, "mpy": "%d.%d" % emitted, "bare": bare}


def _dry_run_console(args, port, fw_dir, bd, bd_bytes, cfg, version):
    """--dry-run on a board whose firmware runs: everything over its console (the `inventory`
    op), so the firmware keeps running and nothing on the board changes. None when the
    firmware is older than that op (the caller reads the board through its raw REPL)."""
    from mast_tools.consoleclient import BoardError, ConsoleClient

    con = ConsoleClient(port, baudrate=args.baud)
    try:
        try:
            r = con.call("inventory", timeout=60)
        except BoardError as e:
            if "unknown op" in str(e):
                return None
            raise CommandError("the board could not list its files: %s" % e, "try again")
        except TimeoutError as e:
            raise CommandError("the board did not list its files (%s)" % e, "try again")
    finally:
        con.close()
    info = dict(r["info"], version=tuple(r["info"]["version"]))
    _check_info(info, bd)
    local, mp, emitted = _local_files(args, fw_dir, info, bd, bd_bytes, cfg)
    remote = dict((k, v) for k, v in r["hashes"].items() if k.startswith("lib/") or k in local)
    p = flashplan.plan(local, remote, set(r["dirs"]))
    report = _report(p, version, bd, mp, emitted, False)
    report["dry_run"] = True
    report["firmware_kept_running"] = True
    report["config_checked"] = cfg is not None
    log("flash: dry run over the console: %d file(s) would be copied, %d are up to date; the "
        "firmware kept running" % (len(p.copy), len(p.skip)))
    if cfg is None:  # (its secrets never leave the board over the console)
        log("flash: the board's /%s is not read over the console: the flash checks it with this "
            "firmware's rules before it writes anything" % flashplan.CONFIG)
    return report


def do_flash(args):
    if args.board == "list":
        rows = boards.listing()
        emit(args, [{"name": n, "port": p, "title": t} for n, p, t in rows], boards.listing_text())
        return 0
    t0 = time.monotonic()
    fw_dir = os.path.abspath(args.firmware) if args.firmware else FIRMWARE_DIR
    bd = bd_bytes = None
    if args.board:
        bd, bd_bytes = load_board(args.board)
    cfg = load_config(args.config, bd) if args.config and bd else None  # checked before the board
    check_firmware_dir(fw_dir)  # host inputs first: a mistake there leaves the board running
    if args.mpy_cross:
        mpycross.given(args.mpy_cross)
    version = firmware_version(fw_dir)
    port = portpick.resolve(args.port, "mast flash")
    _SWITCHED[0] = False
    try:
        return _flash(args, port, fw_dir, bd, bd_bytes, cfg, version, t0)
    except KeyboardInterrupt as e:  # cli.py exits 130; the board may be anywhere between the steps
        how = how_interrupted(e)  # (SIGTERM and SIGHUP: cli.py raises them as Ctrl-C)
        if how != "Ctrl-C":
            log("flash: stopped by %s, as Ctrl-C stops it" % how)
        if _SWITCHED[0]:
            log("mast: flash interrupted; " + _AFTER_SWITCH)
        else:
            log("mast: flash interrupted; the board may be left in maintenance mode or at its REPL, "
                "with its old firmware in place: run mast flash again, or start the old firmware: "
                "mast maintenance off --port %s" % port)
        raise


def _flash(args, port, fw_dir, bd, bd_bytes, cfg, version, t0):
    """Steps 1 to 7 on the board at port (do_flash checked what is on this PC)."""
    before = _hello(port, args.baud)  # 1
    if bd is None:
        bd, bd_bytes = _choose_board(args, port, before)
        if args.config:
            cfg = load_config(args.config, bd)
    stopped = None  # how this flash left a running firmware, once it stopped it
    if before is not None:
        err = boards.mismatch(bd, before.get("platform"), hello_version(before))
        if err:
            raise err  # the board is untouched: it runs on
        if args.dry_run:
            report = _dry_run_console(args, port, fw_dir, bd, bd_bytes, cfg, version)
            if report is not None:
                emit(args, report, _text(report))
                return 0
            log("flash: the board's firmware has no `inventory` op (older than this mast): reading "
                "it through the raw REPL, then restarting it with its boot counter as it was")
            stopped = "repl"
        else:
            if before.get("mode") != "maintenance":
                _maintenance_on(port, args.baud, args.timeout)
            stopped = "maintenance"
    try:
        report = _through_raw_repl(args, port, fw_dir, bd, bd_bytes, cfg, version, before)  # 2-6
    except (_DeviceFailure, _DryRunRefused):
        raise  # (its hint says what to type next; a dry run's board runs as before)
    except CommandError as e:
        if stopped:
            raise _left_stopped(e, port, stopped == "maintenance")
        raise
    if not report.get("dry_run"):
        report["version"] = _wait_for_hello(args, port, bd, version)  # 7
        report["seconds"] = round(time.monotonic() - t0, 1)
    emit(args, report, _text(report))
    return 0


def _through_raw_repl(args, port, fw_dir, bd, bd_bytes, cfg, version, before):
    """Steps 2 to 6 in the board's raw REPL; the report (a dry run's: "dry_run" set)."""
    from mast_tools.boardrepl import DeviceError, RawBoard

    rb = RawBoard(port, soft_reset=bool(bd.get("soft_reset")), baudrate=args.baud,
                  log=lambda m: log("flash: " + m)).open()
    try:
        info = _read_board(rb, bd)  # 2
        refused = None
        if cfg is None:
            refused = _check_board_config(rb, bd, port, before is not None)
            if refused and not args.dry_run:
                raise refused
        local, mp, emitted = _local_files(args, fw_dir, info, bd, bd_bytes, cfg)  # 3
        size = sum(len(v) for v in local.values())
        if info.get("free") is not None and info["free"] < size + 16384:
            raise CommandError("the board has %d KB free; staging the firmware needs about %d KB"
                               % (info["free"] // 1024, size // 1024 + 16),
                               "remove files from the board (mpremote rm) and try again")
        try:  # 4
            if args.dry_run:
                boots = rb.run(flashplan.read_boots_script()).decode().strip()
            else:
                rb.run(flashplan.maintenance_script(MAINT_REASON))
                for line in rb.run(flashplan.recover_script()).decode().splitlines():
                    log("flash: left by an interrupted flash: " + line)
            remote, rdirs = rb.hashes(dirs=[flashplan.LIB], files=[x for x in local if not x.startswith("lib/")])
        except DeviceError as e:
            _fail_on_device(e, "reading the board's files failed")
        p = flashplan.plan(local, remote, rdirs)
        report = _report(p, version, bd, mp, emitted, before is None)
        if args.dry_run:
            report["dry_run"] = True
            report["firmware_kept_running"] = False
            report["config_checked"] = True
            log("flash: dry run: %d file(s) would be copied, %d are up to date" % (len(p.copy), len(p.skip)))
            if before is not None:
                # an older firmware was running: it runs again, its boot counter as it was
                rb.run(flashplan.restore_boots_script(boots))
                rb.reset()
            if refused:  # what the flash would stop with (the board is as it was)
                raise _DryRunRefused(refused.what, "the flash would stop here; " + refused.hint)
            return report
        show = Sender(len(p.copy), sum(len(local[x]) for x in p.copy))
        try:  # 5
            if p.root:  # boot.py, main.py, app.py, board.json, mast.json: each via NAME.tmp,
                # written before /lib is switched, so that the renames follow the switch at once
                _write_checked(rb, [(flashplan.staged_path(x), local[x]) for x in p.root], show)
            if p.lib_changed:
                _stage_lib(rb, p, local, show)
            if p.root:
                rb.run(flashplan.rename_script([(flashplan.staged_path(x), x) for x in p.root]))
            if p.copy:
                progress("flash: sent %d file(s), %d KB in %.1f s"
                         % (len(p.copy), sum(len(local[x]) for x in p.copy) // 1024,
                            time.monotonic() - (show.t0 or time.monotonic())), done=True)
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
    return report


def _wait_for_hello(args, port, bd, version):
    """Step 7: the new firmware answers hello, in normal mode, with the expected version."""
    from mast_tools.consoleclient import ConsoleClient, NoFirmware, no_firmware_error

    con = ConsoleClient.open_when_back(port, args.timeout, baudrate=args.baud)
    try:
        hello = con.wait_hello(args.timeout, mode="normal")
    except NoFirmware as e:
        crash = [x for x in con.logs if x.get("log") == "crash"]
        if crash:
            raise CommandError("the new firmware crashed at boot: %s" % crash[-1].get("error"),
                               "see `mast console --port %s`; fix the firmware and flash again" % port)
        raise CommandError("the board did not answer after the flash (%s)"
                           % no_firmware_error(port, e.seen, bd["name"]).what,
                           "see what it prints: mast console --port %s" % port)
    finally:
        con.close()
    if version and hello.get("version") != version:
        raise CommandError("the board came back with firmware %s, not %s" % (hello.get("version"), version),
                           "run mast flash again")
    return hello.get("version")


def _text(r):
    what = "would copy" if r.get("dry_run") else "copied"
    if r.get("dry_run"):
        what = "dry run (nothing on the board changed): would copy"
    lines = ["%s %d file(s), %d unchanged%s" % (what, len(r["copied"]), len(r["skipped"]),
                                              ", %d verified" % len(r["verified"]) if r["verified"] else "")]
    for p in r["copied"]:
        lines.append("  %s %s" % ("+" if not r.get("dry_run") else "~", p))
    if r["dropped"]:  # (an older firmware's modules this one does not have, mip's .py of ours)
        lines.append("%s %d file(s) of the old firmware this one does not have"
                     % ("would remove" if r.get("dry_run") else "removed", len(r["dropped"])))
        lines.extend("  - %s" % p for p in r["dropped"])
    if r["kept"]:
        lines.append("kept as they are: %s" % ", ".join(r["kept"]))
    if not r.get("dry_run"):
        lines.append("firmware %s on %s (MicroPython %s, .mpy v%s) in %.1f s"
                     % (r["version"], r["board"], r["micropython"], r["mpy"], r.get("seconds", 0)))
    return "\n".join(lines)


# cli.py's _COMMANDS entry: (handler, argparse builder, one-line help)
COMMAND = (do_flash, argparse_flash, "put the MAST firmware on a board (mpy-cross + mpremote), verified")
