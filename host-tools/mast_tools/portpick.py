"""Which port to use when the user gave no --port, as mpremote does: the one likely board.

Likely boards are serial ports whose USB IDs are those of a known board's USB-serial chip or
of MicroPython's own USB (cmd_ports.likely_boards), and the simulated boards that run now
(simregistry). With exactly one, it is used (and said on stderr); with several, a person at a
terminal is asked which, and otherwise (a script) the command stops and lists them; with none,
it says so. --port always wins.

candidates() is given the ports as pyserial lists them (a list of its ListPortInfo, or
objects with the same attributes), so it is tested without hardware.
"""

from mast_tools.errors import CommandError
from mast_tools.output import log, shown


def candidates(comports=None):
    """[{"device", "what", "boards": [likely board names], "sim": bool}] of likely boards."""
    from mast_tools import simregistry
    from mast_tools.cmd_ports import likely_boards

    if comports is None:
        try:
            from serial.tools import list_ports

            comports = list_ports.comports()
        except ImportError:
            comports = []
    out = []
    for p in sorted(comports, key=lambda p: p.device):
        what, boards = likely_boards(getattr(p, "vid", None), getattr(p, "pid", None),
                                     getattr(p, "manufacturer", None), getattr(p, "product", None))
        if what:
            out.append({"device": p.device, "what": what, "boards": boards, "sim": False})
    for info in simregistry.running():
        out.append({"device": info.get("link") or info["device"],
                    "what": "mast sim-board, pid %s, --dir %s" % (info["pid"], info.get("dir")),
                    "boards": [info["board"]] if info.get("board") else [], "sim": True,
                    "board_file": info.get("board_file")})
    return out


def describe(c):
    """One line for a candidate; its text (a USB device's own product and maker strings among it)
    shown as output.shown shows untrusted text: the question of _ask writes it as it is."""
    return shown("%s (%s%s)" % (c["device"], c["what"],
                                "; likely " + ", ".join(c["boards"]) if c["boards"] and not c["sim"] else ""))


def resolve(port, command="mast", comports=None, ask=None):
    """The port to use: `port` when given, else the one likely board. With several, a person
    at a terminal is asked which (ask: the function that asks; by default, when stdin and
    stderr are terminals); otherwise, and when there is none, CommandError."""
    if port:
        return port
    found = candidates(comports)
    if len(found) == 1:
        log("%s: no --port given; using %s" % (command, describe(found[0])))
        return found[0]["device"]
    if not found:
        raise CommandError("no board found (no USB serial port of a known board, no running "
                           "mast sim-board)",
                           "plug the board in and give its port: --port /dev/ttyUSB0 (`mast ports "
                           "--all` lists every serial port)")
    if ask is None and _at_terminal():
        ask = _ask
    if ask is not None:
        choice = ask(command, found)
        if choice is not None:
            return found[choice]["device"]
    raise CommandError("%d boards found: %s" % (len(found), "; ".join(describe(c) for c in found)),
                       "pick one with --port")


def _at_terminal():
    import sys

    try:
        return sys.stdin.isatty() and sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def _ask(command, found):
    """Which of found (an index), asked on the terminal; None when the answer is not one."""
    import sys

    sys.stderr.write("%s: no --port given, and %d boards are here:\n" % (command, len(found)))
    for i, c in enumerate(found):
        sys.stderr.write("  %d) %s\n" % (i + 1, describe(c)))
    sys.stderr.write("which one? [1-%d] " % len(found))
    sys.stderr.flush()
    answer = sys.stdin.readline().strip()
    if answer.isdigit() and 1 <= int(answer) <= len(found):
        return int(answer) - 1
    return None


def board_of(device):
    """The board definition a running sim board on `device` was started with, or None."""
    from mast_tools import simregistry

    info = simregistry.find(device)
    if info is None:
        return None
    return info.get("board_file") or info.get("board")
