"""Board definitions on the PC: the files in boards/ (or any path to one), checked with the
firmware's own schema (firmware/board/boarddef.py), and which of them suit the board that
answers on a port.

Every command that takes `--board` (flash, sim-board, config validate, hwtest) resolves it
here, so a name and a path to a .json file are accepted alike everywhere.

A board says what it is (`sys.platform`, `sys.implementation.version`) before anything is
written to it; mismatch() compares that with a definition, so `mast flash --board
esp32-devkitc` against a Pico W (or a simulated board) is refused with the board's real port
and the definitions that match it, before the board is touched.
"""

import json
import os

from mast_tools.errors import CommandError
from mast_tools.firmware import BOARDS_DIR

# The oldest MicroPython the firmware runs on (STYLE.md, "restricted Python"); flash refuses
# an older one. docs/HARDWARE.md says the same.
MIN_MICROPYTHON = (1, 22, 0)

# a definition's "port" -> the sys.platform values of the boards it suits
PLATFORMS = {"esp32": ("esp32",), "rp2": ("rp2",), "unix": ("linux", "darwin")}


def names():
    """The board names in boards/, sorted."""
    try:
        return sorted(n[:-5] for n in os.listdir(BOARDS_DIR) if n.endswith(".json"))
    except OSError:
        return []


def path_of(name):
    """The file of a board definition: `name` itself when it is a path to a file (it ends in
    .json or holds a folder), else boards/NAME.json; None when there is no such file."""
    if name.endswith(".json") or os.sep in name or (os.altsep and os.altsep in name):
        return name if os.path.isfile(name) else None
    path = os.path.join(BOARDS_DIR, name + ".json")
    return path if os.path.isfile(path) else None


def load(name):
    """(definition dict, its bytes) for a name from boards/ or a path; checked with the
    firmware's own schema. CommandError naming the choices otherwise."""
    path = path_of(name)
    if path is None:
        raise CommandError("no board definition %r" % name,
                           "pick one of: %s (or give the path of a .json file)" % ", ".join(names()))
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
    except RecursionError:  # (a traceback, before)
        raise CommandError("board definition %s nests objects and lists too deep" % path,
                           "fix the file (docs/HARDWARE.md)")
    return doc, data


def listing():
    """[(name, port, title)] of every definition in boards/ that loads."""
    out = []
    for n in names():
        try:
            doc = load(n)[0]
        except CommandError:
            continue
        out.append((n, doc["port"], doc["title"]))
    return out


def listing_text():
    rows = listing()
    width = max([len(n) for n, _, _ in rows] + [4])
    return "\n".join("%-*s  %-5s  %s" % (width, n, p, t) for n, p, t in rows)


def port_of_platform(platform):
    """The definition port ("esp32", "rp2", "unix") for a board's sys.platform, or None."""
    for port, platforms in PLATFORMS.items():
        if platform in platforms:
            return port
    return None


def matching(platform):
    """The names in boards/ whose port suits a board reporting `platform`."""
    port = port_of_platform(platform)
    return [n for n, p, _ in listing() if p == port]


def version_text(v):
    return ".".join(str(x) for x in v)


def mismatch(bd, platform, version=None):
    """None if the definition bd suits a board that reports `platform` (sys.platform) and
    `version` (MicroPython's, a tuple or None); else a CommandError saying what the board
    really is and which definitions fit it."""
    if version is not None and tuple(version[:3]) < MIN_MICROPYTHON:
        return CommandError(
            "the board runs MicroPython %s; the MAST firmware needs %s or newer"
            % (version_text(version), version_text(MIN_MICROPYTHON)),
            "put a newer MicroPython on it first (docs/HARDWARE.md, \"Getting MicroPython onto "
            "a board\")")
    want = PLATFORMS.get(bd.get("port"), ())
    if platform in want:
        return None
    port = port_of_platform(platform)
    fits = matching(platform)
    what = "%s (a %s board)" % (platform, port) if port else repr(platform)
    if fits:
        hint = "use --board " + (fits[0] if len(fits) == 1 else "with one of: " + ", ".join(fits))
    else:
        hint = "no definition in boards/ suits it: write one (docs/HARDWARE.md, \"Board definitions\")"
    return CommandError("%s is for %s boards, but this board runs MicroPython on %s; nothing "
                        "was changed on it" % (bd.get("name"), bd.get("port"), what), hint)
