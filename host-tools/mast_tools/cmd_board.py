"""`mast reset` and `mast maintenance`: start a board's firmware again, and take it into and
out of maintenance mode, from the command line.

Both work whether or not the firmware is running:

- the firmware answers its console: `reboot` / `maintenance on|off` over it (the board
  finishes its reply, then reboots);
- it does not (it was stopped by mpremote or a Ctrl-C and the board sits at its REPL, or it
  crashes at boot): through the raw REPL, as `mast flash` does: the flag file is written or
  removed there, and the board is reset (machine.reset()).

Then each waits for the firmware's hello and says what mode it came back in. A board without
the firmware installed is told so (`mast flash`). Interrupted (Ctrl-C: exit 130), each says
what state it left the board in, as `mast flash` does: untouched, asked to reboot, perhaps at
its raw REPL, or reset and starting.
"""

from mast_tools import flashplan, portpick
from mast_tools.argtypes import seconds
from mast_tools.errors import CommandError
from mast_tools.output import emit, log
from mast_tools.serialport import add_port_args

BOOT_TIMEOUT_S = 30.0

# how far a reset or maintenance got, for what a Ctrl-C says: None (nothing sent), "asked" (the
# console asked to reboot), "repl" (in the raw REPL), "reset" (the board reset, booting)
_STAGE = [None]

_LEFT = {
    "reset": {
        None: "nothing was sent: the board is as it was",
        "asked": "the board was asked to reboot and may be rebooting; see whether its firmware "
                 "runs: mast config status --port %(port)s",
        "repl": "the board may be left at its raw REPL, its firmware stopped: run mast reset "
                "--port %(port)s again",
        "reset": "the board was reset and its firmware may be starting; see whether it runs: "
                 "mast config status --port %(port)s",
    },
    "maintenance": {
        None: "nothing was sent: the board is in the mode it was",
        "asked": "the board was asked for maintenance %(state)s and may be rebooting into %(want)s "
                 "mode; see its mode: mast config status --port %(port)s",
        "repl": "the board may be left at its raw REPL, its firmware stopped, with maintenance "
                "%(state)s done or not: run mast maintenance %(state)s --port %(port)s again",
        "reset": "the board was reset into %(want)s mode and its firmware may be starting; see its "
                 "mode: mast config status --port %(port)s",
    },
}


def _said_when_interrupted(command, args, body):
    """body(args, port), saying on a Ctrl-C what state the board was left in (cli.py exits 130)."""
    port = portpick.resolve(args.port, "mast " + command)
    _STAGE[0] = None
    try:
        return body(args, port)
    except KeyboardInterrupt:
        state = getattr(args, "state", None)
        log("mast: %s interrupted; %s" % (command, _LEFT[command][_STAGE[0]] % {
            "port": port, "state": state, "want": "maintenance" if state == "on" else "normal"}))
        raise


RESET_EXAMPLE = """\
example:
  mast reset --port /dev/ttyUSB0          # the firmware runs again (after mpremote, say)
  mast reset --json                       # {"mode": "normal", "version": ..., "how": ...}

With the firmware running, it reboots through its console; stopped at the REPL (mpremote,
Thonny and Ctrl-C stop it), the board is reset through its raw REPL."""

MAINT_EXAMPLE = """\
example:
  mast maintenance off --port /dev/ttyUSB0   # back to normal mode (the board reboots)
  mast maintenance on --port /dev/ttyUSB0    # only the console runs: no watchdog, uplinks, app

Maintenance mode (docs/HARDWARE.md): the board boots with its console only. `mast flash`
sets it while it works and clears it at the end; three crashed boots in a row set it too.
`mast config status` says why a board is in it."""


def argparse_reset(p):
    add_port_args(p)
    p.add_argument("--timeout", type=seconds, default=BOOT_TIMEOUT_S, metavar="S",
                   help="how long to wait for the firmware to answer (default %(default)s)")
    p.epilog = RESET_EXAMPLE


def argparse_maintenance(p):
    p.add_argument("state", choices=("on", "off"), help="on: into maintenance; off: out of it")
    add_port_args(p)
    p.add_argument("--timeout", type=seconds, default=BOOT_TIMEOUT_S, metavar="S",
                   help="how long to wait for the board to come back (default %(default)s)")
    p.epilog = MAINT_EXAMPLE


def _hello(port, baud):
    """(hello or None, what the port said when no console answered, the error the firmware
    answered hello with or None)."""
    from mast_tools.consoleclient import ConsoleClient, FirmwareRefused, NoFirmware

    con = ConsoleClient(port, baudrate=baud)
    try:
        return con.hello(2.0), [], None
    except NoFirmware as e:
        return None, e.seen, None
    except FirmwareRefused as e:  # it runs, but cannot carry out a request: its raw REPL can
        return None, ["(its console answered hello: %s)" % e.error], e.error
    finally:
        con.close()


def _not_running(refused):
    """What _through_repl says of a firmware whose console did not carry out the request."""
    if refused is not None:
        return "its console answered: %s" % refused
    return "the firmware was not running"


def _through_repl(port, baud, script, what):
    """Run script (may be None) in the raw REPL, then reset the board."""
    from mast_tools.boardrepl import INSTALLED_SCRIPT, DeviceError, RawBoard

    _STAGE[0] = "repl"
    rb = RawBoard(port, soft_reset=False, baudrate=baud, log=lambda m: log("mast: " + m)).open()
    try:
        rb.enter()
        installed = rb.run(INSTALLED_SCRIPT, 5.0).decode("utf-8", "replace")
        if "MAST-FW False" in installed:
            raise CommandError("no MAST firmware on the board at %s (a bare MicroPython)" % port,
                               "put it on: mast flash --port %s --board BOARD" % port)
        if script:
            rb.run(script)
        log("mast: %s; resetting the board through its raw REPL" % what)
        rb.reset()
        _STAGE[0] = "reset"
    except DeviceError as e:
        raise CommandError("the board did not answer in its raw REPL (%s)" % e,
                           "press its reset button (or unplug it and plug it in)")
    finally:
        rb.close()


def _wait(port, baud, timeout, mode=None):
    from mast_tools.consoleclient import ConsoleClient, NoFirmware, no_firmware_error

    con = ConsoleClient.open_when_back(port, timeout, baudrate=baud)
    try:
        return con.wait_hello(timeout, mode=mode)
    except NoFirmware as e:
        crash = [x for x in con.logs if x.get("log") == "crash"]
        if crash:
            raise CommandError("the firmware crashes at boot: %s" % crash[-1].get("error"),
                               "see `mast console --port %s`; after three crashed boots it stays in "
                               "maintenance mode, where the console works" % port)
        raise CommandError("the board did not come back%s (%s)" % (
            " in %s mode" % mode if mode else "", no_firmware_error(port, e.seen).what),
            "see what it prints: mast console --port %s" % port)
    finally:
        con.close()


def do_reset(args):
    return _said_when_interrupted("reset", args, _reset)


def _reset(args, port):
    from mast_tools.consoleclient import BoardError, ConsoleClient

    hello, seen, refused = _hello(port, args.baud)
    how = None
    if hello is not None:
        con = ConsoleClient(port, baudrate=args.baud)
        try:
            _STAGE[0] = "asked"
            con.call("reboot")
            how = "rebooted through its console"
        except (BoardError, TimeoutError) as e:  # (out of memory, say): its raw REPL can
            refused = str(e) or "no answer"
        finally:
            con.close()
        if how is None:
            _through_repl(port, args.baud, None, "its console did not take the reboot (%s)" % refused)
            how = "reset through its raw REPL (its console did not take the reboot: %s)" % refused
    else:
        from mast_tools.serialport import probe_alive, silent_error

        if not seen and not probe_alive(port, args.baud):
            raise silent_error(port, args.baud)
        _through_repl(port, args.baud, None, _not_running(refused))
        how = ("reset through its raw REPL (%s)" % _not_running(refused) if refused is not None
               else "reset through its raw REPL (the firmware was stopped)")
    info = _wait(port, args.baud, args.timeout)
    doc = {"port": port, "how": how, "mode": info.get("mode"), "version": info.get("version"),
           "board": info.get("board")}
    emit(args, doc, "the MAST firmware %s runs again on %s (%s mode; %s)"
         % (info.get("version"), port, info.get("mode"), how))
    return 0


def do_maintenance(args):
    return _said_when_interrupted("maintenance", args, _maintenance)


def _maintenance(args, port):
    from mast_tools.consoleclient import BoardError, ConsoleClient

    on = args.state == "on"
    want = "maintenance" if on else "normal"
    hello, seen, refused = _hello(port, args.baud)
    if hello is not None and hello.get("mode") == want:
        doc = {"port": port, "mode": want, "changed": False}
        emit(args, doc, "the board on %s is in %s mode already" % (port, want))
        return 0
    if hello is not None:
        con = ConsoleClient(port, baudrate=args.baud)
        try:
            _STAGE[0] = "asked"
            r = con.call("maintenance", state=args.state,
                         **({"reason": "mast maintenance on"} if on else {}))
        except BoardError as e:
            if "memory" not in str(e):
                raise CommandError("the board refused maintenance %s: %s" % (args.state, e),
                                   "make room on its flash (mpremote connect %s fs ls), then try "
                                   "again" % port if "the flash is" in str(e) else "try again")
            r, refused = None, str(e)  # no room for the op: its raw REPL can (below)
        except TimeoutError as e:
            raise CommandError("the board did not answer (%s)" % e, "try again")
        finally:
            con.close()
        if r is not None and not r.get("rebooting"):
            emit(args, {"port": port, "mode": hello.get("mode"), "changed": False},
                 "the board on %s did not change mode (%s)" % (port, hello.get("mode")))
            return 0
    if hello is None or refused is not None:
        from mast_tools.serialport import probe_alive, silent_error

        if not seen and not probe_alive(port, args.baud):
            raise silent_error(port, args.baud)
        script = (flashplan.maintenance_script("mast maintenance on") if on
                  else flashplan.clear_maintenance_script())
        _through_repl(port, args.baud, script, "maintenance %s%s" % (
            args.state, " (%s)" % _not_running(refused) if refused is not None else ""))
    info = _wait(port, args.baud, args.timeout, mode=want)
    doc = {"port": port, "mode": info.get("mode"), "changed": True, "version": info.get("version")}
    emit(args, doc, "the board on %s is in %s mode now (firmware %s)%s" % (
        port, info.get("mode"), info.get("version"),
        "; leave it with: mast maintenance off --port %s" % port if on else ""))
    return 0


# cli.py's _COMMANDS entries: (handler, argparse builder, one-line help)
RESET = (do_reset, argparse_reset, "start a board's firmware again (after mpremote, say): reboot or reset")
MAINTENANCE = (do_maintenance, argparse_maintenance,
               "take a board into or out of maintenance mode (console only, no watchdog)")
