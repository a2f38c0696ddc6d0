"""What `mast flash` does to a board's filesystem, decided without a board.

Everything here is pure: the files the firmware consists of go in (board path -> bytes), what
the board holds comes back from the scripts below as text, and the result is a Plan and the
MicroPython code to carry it out. boardrepl.py only runs that code over mpremote's raw REPL.

Nothing half-written: the firmware's packages live in /lib. A flash that changes any of them
builds the complete new /lib in /lib.new (the changed files sent over the port, the unchanged
ones and any other library the user put in /lib copied on the board), checks the SHA-256 of
every file there, and only then switches with two renames, lib -> lib.old and lib.new -> lib.
Power lost before the switch leaves the old /lib untouched; between the two renames, the board's
boot.py renames lib.old back (firmware/board/root/boot.py). The files in the root (boot.py,
main.py, app.py, board.json, mast.json) are each written to NAME.tmp, checked, then renamed over
NAME: each is the old or the new one, never a mix. The device code runs on MicroPython and on
CPython alike (tests run it on both).
"""

import binascii
import hashlib
import json

LIB = "lib"
STAGE = "lib.new"
OLD = "lib.old"
PACKAGES = ("mast", "runtime", "board")  # the firmware's packages in /lib
ROOT_FILES = ("boot.py", "main.py", "app.py")  # boot.py first: it carries the switch's recovery
KEEP = ("app.py",)  # the user's application: installed only where there is none
MAINT = "mast.maint"
BOOTS = "mast.boots"
CONFIG = "mast.json"
CHUNK = 2048  # raw bytes per exec when sending files (base64 on the wire)


def sha256(data):
    return hashlib.sha256(data).hexdigest()


# ---- which files the firmware consists of (host files) ---------------------------------------------


# Modules of the firmware's packages that a board loads only for some hardware or
# configuration (board path without .py -> why it would be needed). Every module not named
# here goes to every board; a name here goes only where board_modules() says.
CONDITIONAL = {
    "board/up_wlan": "a wlan, lan or ppp uplink (lan and ppp use its address helper and network check)",
    "board/up_lan": "a lan uplink (Ethernet)",
    "board/up_ppp": "a ppp uplink (a cellular modem)",
    "board/atchat": "a ppp uplink (the modem's AT dialogue)",
    "board/exclusive": "exclusive routing (rp2) with more than one uplink",
    "runtime/udpwrap": "a simulated board (its sim uplinks go through a relay, mast linkemu)",
    "board/install": "never: it finishes a `mip install` by hand; a flashed board has its root files",
    "runtime/endpoint_main": "never: the endpoint process of hosts (mast endpoint, tests)",
    "runtime/runconfig": "never: the endpoint process's file",
    "runtime/jsonrule": "never: the JSON rule of the endpoint process's and the hosts' files",
    "runtime/rendezvous": "never: DNS and presence for the endpoint process; the board has no presence client",
}


def board_modules(board_def, config=None):
    """The CONDITIONAL modules a board needs, from its definition (board.json) and its
    configuration (mast.json: extra sim uplinks count on the unix port)."""
    kinds = set(u["kind"] for u in board_def["uplinks"].values())
    names = set(board_def["uplinks"])
    if board_def.get("port") == "unix":
        for name, u in ((config or {}).get("uplinks") or {}).items():
            if isinstance(u, dict) and u.get("kind") == "sim":
                names.add(name)
    need = set()
    if kinds & set(("wlan", "lan", "ppp")):
        need.add("board/up_wlan")
    if "lan" in kinds:
        need.add("board/up_lan")
    if "ppp" in kinds:
        need.update(("board/up_ppp", "board/atchat"))
    if board_def.get("routing") == "exclusive" and len(names) > 1:
        need.add("board/exclusive")
    if board_def.get("port") == "unix" or "sim" in kinds:
        need.add("runtime/udpwrap")
    return need


def select_firmware_files(fw_dir, board_def=None, config=None):
    """The one place that decides what goes onto a board: [(board path, host source file,
    compiled)], the packages' modules as lib/<pkg>/<module>.mpy (compiled with mpy-cross; the
    source name when compiled is False is the .py), then the root files (ROOT_FILES, as they
    are). With board_def (the board's definition) only the modules that board loads: every
    module but those of CONDITIONAL, and of those the ones board_modules() names for the
    definition and the configuration (config: mast.json's content, or None). Without
    board_def, every module (a simulated board filled for any definition). OSError/ValueError
    if fw_dir is not a firmware folder."""
    import os

    need = board_modules(board_def, config) if board_def is not None else None
    out = []
    for pkg in PACKAGES:
        top = os.path.join(fw_dir, pkg)
        if not os.path.isdir(top):
            raise ValueError("no firmware package %s in %s" % (pkg, fw_dir))
        for dirpath, dirnames, filenames in os.walk(top):
            dirnames[:] = sorted(d for d in dirnames if d not in ("__pycache__", "root"))
            for name in sorted(filenames):
                if name.endswith(".py"):
                    src = os.path.join(dirpath, name)
                    rel = os.path.relpath(src, fw_dir).replace(os.sep, "/")
                    if need is not None and rel[:-3] in CONDITIONAL and rel[:-3] not in need:
                        continue
                    out.append(("lib/" + rel[:-3] + ".mpy", src, True))
    for name in ROOT_FILES:
        out.append((name, os.path.join(fw_dir, "board", "root", name), False))
    return out


# ---- device code (MicroPython; the same text runs on CPython in the tests) ------------------------

_PRELUDE = """\
import os
def _ex(p):
    try:
        os.stat(p)
        return True
    except OSError:
        return False
def _isdir(p):
    try:
        return os.stat(p)[0] & 0x4000 != 0
    except OSError:
        return False
def _ls(d):
    if hasattr(os, 'ilistdir'):
        return sorted([(e[0], e[1] & 0x4000 != 0) for e in os.ilistdir(d)])
    return sorted([(n, _isdir(d + '/' + n)) for n in os.listdir(d)])
def _rm(p):
    if _isdir(p):
        for e in _ls(p):
            _rm(p + '/' + e[0])
        os.rmdir(p)
    elif _ex(p):
        os.remove(p)
"""

_HASH = """\
try:
    import hashlib as _hl
    import binascii as _ba
    _hl.sha256
except (ImportError, AttributeError):
    _hl = None
_buf = bytearray(512)
def _h(p):
    if _hl is None:
        print('N', p)
        return
    s = _hl.sha256()
    mv = memoryview(_buf)
    with open(p, 'rb') as f:
        while True:
            n = f.readinto(_buf)
            if not n:
                break
            s.update(mv[:n])
    print('H', _ba.hexlify(s.digest()).decode(), p)
def _walk(d):
    for e in _ls(d):
        p = d + '/' + e[0]
        if e[1]:
            print('D', p)
            _walk(p)
        else:
            _h(p)
"""


def info_script():
    """Prints one line: a dict literal with what the board is (the first thing flash asks)."""
    return """\
import sys, os
i = sys.implementation
try:
    import hashlib
    h = hasattr(hashlib, 'sha256')
except ImportError:
    h = False
try:
    import binascii
    b = hasattr(binascii, 'a2b_base64')
except ImportError:
    b = False
try:
    s = os.statvfs('.')
    free = s[0] * s[3]
except (AttributeError, OSError):
    free = None
try:
    cwd = os.getcwd()
except (AttributeError, OSError):
    cwd = None
sh = None
for p in ('/rom/lib', '/rom'):  # a ROMFS image comes before /lib on sys.path
    if p in sys.path:
        for n in ('board', 'mast', 'runtime'):
            try:
                os.stat(p + '/' + n)
                sh = sh or p + '/' + n
            except OSError:
                pass
print(repr({'name': i.name, 'version': tuple(i.version[:3]), 'mpy': getattr(i, '_mpy', None),
            'platform': sys.platform, 'sha256': h, 'base64': b, 'free': free, 'cwd': cwd,
            'shadow': sh}))
"""


def parse_info(out):
    """The dict info_script() printed; ValueError if it printed something else."""
    import ast

    text = out.decode("utf-8", "replace").strip().splitlines()
    for line in reversed(text):
        line = line.strip()
        if line.startswith("{"):
            info = ast.literal_eval(line)
            if isinstance(info, dict) and "version" in info:
                return info
    raise ValueError("the board did not say what it is: %r" % out[-200:])


def hash_script(dirs=(), files=()):
    """Prints `H <sha256> <path>` for every file under dirs and each of files that exists,
    `D <path>` for each folder, `N <path>` where the board cannot hash (no hashlib)."""
    return _PRELUDE + _HASH + """\
for d in %r:
    if _isdir(d):
        print('D', d)
        _walk(d)
for p in %r:
    if _ex(p) and not _isdir(p):
        _h(p)
""" % (list(dirs), list(files))


def parse_hashes(out):
    """(files {path: sha256 or None}, folders set) from hash_script()'s output."""
    files, dirs = {}, set()
    for line in out.decode("utf-8", "replace").splitlines():
        parts = line.strip().split(" ", 2)
        if parts[0] == "H" and len(parts) == 3:
            files[parts[2]] = parts[1]
        elif parts[0] == "N" and len(parts) >= 2:  # (a path may hold spaces)
            files[" ".join(parts[1:])] = None
        elif parts[0] == "D" and len(parts) >= 2:
            dirs.add(" ".join(parts[1:]))
    return files, dirs


def recover_script():
    """Finish what an interrupted flash left (as boot.py does at boot), then clear the
    leftovers: a lib.new that never got switched in, a lib.old that was not removed."""
    return _PRELUDE + """\
if not _ex(%r) and _ex(%r):
    os.rename(%r, %r)
    print('restored', %r)
for d in (%r, %r):
    if _ex(d):
        _rm(d)
        print('removed', d)
for d in [e[0] for e in _ls('.')]:
    if d.endswith('.tmp') and d[:-4] in %r:
        os.remove(d)
        print('removed', d)
""" % (LIB, OLD, OLD, LIB, LIB, STAGE, OLD, list(ROOT_FILES) + ["board.json", CONFIG])


def maintenance_script(reason):
    """Sets the maintenance flag (the board then boots with no watchdog, no app)."""
    return "f = open(%r, 'w')\nf.write(%r)\nf.close()\nprint('maintenance')\n" % (MAINT, reason)


def clear_maintenance_script():
    return _PRELUDE + """\
if _ex(%r):
    os.remove(%r)
f = open(%r + '.tmp', 'w')
f.write('0')
f.close()
os.rename(%r + '.tmp', %r)
print('cleared')
""" % (MAINT, MAINT, BOOTS, BOOTS, BOOTS)


def read_boots_script():
    """Prints the boot-loop counter (mast.boots; 0 when there is none)."""
    return """\
try:
    with open(%r) as f:
        print(int(f.read()))
except (OSError, ValueError):
    print(0)
""" % BOOTS


def restore_boots_script(boots):
    """Before a reset that only restarts the firmware (a dry run on a board whose firmware
    has no `files` op): the counter one lower than it was, so that the boot's own count
    leaves it where it was."""
    try:
        n = int(boots) - 1
    except ValueError:
        n = -1
    return """\
f = open(%r, 'w')
f.write(%r)
f.close()
import os
try:
    os.rename(%r, %r)
except OSError:
    os.remove(%r)
    os.rename(%r, %r)
""" % (BOOTS + ".tmp", str(n), BOOTS + ".tmp", BOOTS, BOOTS, BOOTS + ".tmp", BOOTS)


def stage_script(copies, dirs):
    """Creates lib.new with `dirs` (paths under lib.new, parents first) and copies each
    (src, dest) on the board: the unchanged files, and other libraries in /lib."""
    return _PRELUDE + """\
if _ex(%r):
    _rm(%r)
os.mkdir(%r)
for d in %r:
    os.mkdir(d)
_b = bytearray(1024)
for s, d in %r:
    with open(s, 'rb') as fs:
        with open(d, 'wb') as fd:
            while True:
                n = fs.readinto(_b)
                if not n:
                    break
                fd.write(memoryview(_b)[:n])
    print('C', d)
""" % (STAGE, STAGE, STAGE, list(dirs), list(copies))


def switch_script():
    """lib -> lib.old, lib.new -> lib, then lib.old goes. boot.py covers the gap."""
    return _PRELUDE + """\
if _ex(%r):
    if _ex(%r):
        _rm(%r)
    os.rename(%r, %r)
os.rename(%r, %r)
if _ex(%r):
    _rm(%r)
print('switched')
""" % (LIB, OLD, OLD, LIB, OLD, STAGE, LIB, OLD, OLD)


def rename_script(pairs):
    """Each (tmp, final): rename tmp over final (atomic on littlefs; FAT removes the old
    first). For mast.json, the old one becomes mast.json.bak, as the firmware's commit does:
    only if it reads as JSON (a corrupt one never takes the place of the last good copy)."""
    return _PRELUDE + """\
def _json_ok(p):
    import json
    try:
        g = open(p)
        try:
            json.load(g)
        finally:
            g.close()
        return True
    except (OSError, ValueError):
        return False
for t, f in %r:
    if f == %r and _ex(f) and _json_ok(f):
        if _ex(f + '.bak'):
            os.remove(f + '.bak')
        os.rename(f, f + '.bak')
    try:
        os.rename(t, f)
    except OSError:
        os.remove(f)
        os.rename(t, f)
    print('R', f)
""" % (list(pairs), CONFIG)


def write_commands(files, chunk=CHUNK):
    """The exec commands that write files ([(board path, bytes)]) in base64: several small
    files per command, a large one over several. Yields (command, bytes sent, paths done)."""
    head = "from binascii import a2b_base64 as _a\n"
    parts, size, done = [], 0, []
    for path, data in files:
        if size and size + len(data) > chunk:
            yield head + "".join(parts), size, done
            parts, size, done = [], 0, []
        if len(data) <= chunk:
            parts.append("f = open(%r, 'wb')\nf.write(_a(%r))\nf.close()\n"
                         % (path, binascii.b2a_base64(data).decode().strip()))
            size += len(data)
            done.append(path)
            continue
        first = True
        for i in range(0, len(data), chunk):
            piece = binascii.b2a_base64(data[i:i + chunk]).decode().strip()
            last = i + chunk >= len(data)
            cmd = "%sf = open(%r, %r)\nf.write(_a(%r))\nf.close()\n" % (
                head, path, "wb" if first else "ab", piece)
            yield cmd, min(chunk, len(data) - i), [path] if last else []
            first = False
    if parts:
        yield head + "".join(parts), size, done


# ---- the plan --------------------------------------------------------------------------------------


class Plan:
    """What a flash does. Board paths throughout (lib/board/main.mpy, board.json).

    copy: files sent over the port; skip: files already on the board with the right hash;
    lib_changed: /lib is rebuilt in lib.new and switched; stage_copies: (src, dest) copied on
    the board into lib.new; stage_dirs: folders to create there; root: root files to write
    (each via NAME.tmp); expected: {path: sha256} of every file the board must hold after the
    flash (the firmware's files, and the other files kept in /lib); dropped: stale files of
    the firmware's packages left out of the new /lib."""

    def __init__(self):
        self.copy = []
        self.skip = []
        self.kept = []
        self.lib_changed = False
        self.stage_copies = []
        self.stage_dirs = []
        self.root = []
        self.expected = {}
        self.dropped = []

    def as_dict(self):
        return {"copy": self.copy, "skip": self.skip, "kept": self.kept,
                "lib_changed": self.lib_changed, "dropped": self.dropped}


def _parents(path):
    parts = path.split("/")[:-1]
    return ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]


def _ours(path):
    """A path under /lib that belongs to the firmware's packages."""
    parts = path.split("/")
    return len(parts) > 2 and parts[0] == LIB and parts[1] in PACKAGES


def plan(local, remote, remote_dirs=(), keep=KEEP):
    """The Plan to make the board hold `local` ({board path: bytes}: lib/... and root files).

    remote: {board path: sha256 or None} of what the board holds under /lib and in its root
    (hash_script); remote_dirs: its folders. A file with a None hash (a board that cannot
    hash) counts as changed. Root files in `keep` stay as they are when the board has one."""
    p = Plan()
    want = dict((path, sha256(data)) for path, data in local.items())
    lib_local = sorted(x for x in local if x.startswith(LIB + "/"))
    lib_remote = sorted(x for x in remote if x.startswith(LIB + "/"))
    # /lib: changed if any of our files differs, is missing, or is stale
    for path in lib_local:
        if remote.get(path) is not None and remote[path] == want[path]:
            p.skip.append(path)
        else:
            p.copy.append(path)
    foreign = [x for x in lib_remote if x not in local and not _ours(x)]
    p.dropped = [x for x in lib_remote if x not in local and _ours(x)]
    p.lib_changed = bool(p.copy or p.dropped)
    for path in lib_local:
        p.expected[path] = want[path]
    for path in foreign:
        p.expected[path] = remote[path]
        p.kept.append(path)
    if p.lib_changed:
        dirs = set()
        for path in lib_local + foreign:
            dirs.update(_parents(path))
        for d in remote_dirs:
            if d.startswith(LIB + "/") and d.split("/")[1] not in PACKAGES:
                dirs.add(d)  # a folder of another library (even an empty one)
        dirs.discard(LIB)
        p.stage_dirs = [STAGE + d[len(LIB):] for d in sorted(dirs, key=lambda d: (d.count("/"), d))]
        for path in p.skip + foreign:
            p.stage_copies.append((path, STAGE + path[len(LIB):]))
    # the root: boot.py first
    order = [x for x in ROOT_FILES if x in local] + sorted(
        x for x in local if not x.startswith(LIB + "/") and x not in ROOT_FILES)
    for path in order:
        if path in keep and path in remote:
            p.kept.append(path)
            p.expected[path] = remote[path]
            continue
        p.expected[path] = want[path]
        if remote.get(path) is not None and remote[path] == want[path]:
            p.skip.append(path)
        else:
            p.copy.append(path)
            p.root.append(path)
    return p


def staged_path(path):
    """Where a file of /lib is written while staging (lib.new/...); root files: NAME.tmp."""
    if path.startswith(LIB + "/"):
        return STAGE + path[len(LIB):]
    return path + ".tmp"


def check(expected, got, where=None):
    """([paths verified], [(path, what is wrong)]) comparing {path: sha256} expected with
    what the board reports. where(path) maps a final path to where it is checked (staging)."""
    ok, bad = [], []
    for path in sorted(expected):
        at = where(path) if where else path
        h = got.get(at, "missing")
        if h is None:  # (even when nothing else was expected: nothing was verified)
            bad.append((path, "cannot be hashed on the board"))
        elif h == expected[path]:
            ok.append(path)
        elif h == "missing":
            bad.append((path, "missing"))
        else:
            bad.append((path, "SHA-256 %s..., expected %s..." % (h[:12], expected[path][:12])))
    return ok, bad


def config_bytes(cfg):
    """mast.json as the firmware writes it (store.py: one JSON object and a newline), UTF-8
    with no \\u escapes (the board's json would take one of a character beyond U+FFFF apart)."""
    return (json.dumps(cfg, ensure_ascii=False) + "\n").encode()
