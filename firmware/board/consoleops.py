# The console's occasional ops: maintenance, logs, inventory, reboot, and the boot
# counter's reset once a boot has run STABLE_MS. main.py imports this module for the
# request and forgets it after (main.ONCE, with store.py), so that their code takes
# no heap the rest of the time; the configuration's ops are getop.py, settings.py and
# cfgops.py, apply is applycfg.py, hello and status are statusop.py, uplink is uplinkops.py.
#
# `maintenance on|off` (with an optional reason, which `status` shows) writes or
# clears the flag; the board reboots when its mode changes.
#
# `inventory`: what `mast flash --dry-run` needs to know about the board, asked while
# the firmware runs, so that a dry run changes nothing: no raw REPL (which would
# stop the firmware), no reset, the boot counter untouched.
#
#   {"info": {"name", "version", "mpy", "platform", "sha256", "base64", "free", "shadow"},
#    "hashes": {"lib/board/main.mpy": "<sha256 hex>" or null, "boot.py": ...},
#    "dirs": ["lib", "lib/board", ...]}
#
# The same facts mast flash reads through the raw REPL (host-tools flashplan.py:
# info_script, hash_script).
#
# `logs`: the last few logs and events as the board printed them (Board.recent in
# main.py), and the last crash, which main.run() saves to mast.crash before the
# reset that follows it: what happened before a console was attached.
#
#   {"recent": ["{\"log\": \"boot\", ...}", ...], "last_crash": {"log": "crash", ...} or null}

import sys

from .compat import os

ROOT_FILES = ("boot.py", "main.py", "app.py", "board.json", "mast.json")


def _isdir(p):
    try:
        return os.stat(p)[0] & 0x4000 != 0
    except OSError:
        return None  # missing


def _hasher():
    try:
        import hashlib

        hashlib.sha256
        return hashlib
    except (ImportError, AttributeError):
        return None


def _digest(hl, path, buf):
    if hl is None:
        return None  # the board cannot hash: mast flash counts it as changed
    from binascii import hexlify

    s = hl.sha256()
    mv = memoryview(buf)
    f = open(path, "rb")
    try:
        while True:
            n = f.readinto(buf)
            if not n:
                break
            s.update(mv[:n])
    finally:
        f.close()
    return hexlify(s.digest()).decode()


def info():
    i = sys.implementation
    try:
        import binascii

        b64 = hasattr(binascii, "a2b_base64")
    except ImportError:
        b64 = False
    try:
        st = os.statvfs(".")
        free = st[0] * st[3]
    except (AttributeError, OSError):
        free = None
    sh = None  # a ROMFS image ahead of /lib on sys.path that holds the firmware: a flash into
    for p in ("/rom/lib", "/rom"):  # /lib would never run (flashplan.info_script: the same)
        if p in sys.path:
            for n in ("board", "mast", "runtime"):
                if sh is None and _isdir(p + "/" + n) is not None:
                    sh = p + "/" + n
    return {"name": i.name, "version": list(i.version[:3]), "mpy": getattr(i, "_mpy", None),
            "platform": sys.platform, "sha256": _hasher() is not None, "base64": b64,
            "free": free, "shadow": sh}


def report(b=None, top="lib"):
    hl = _hasher()
    buf = bytearray(512)
    hashes = {}
    dirs = []
    todo = [top] if _isdir(top) else []
    while todo:
        d = todo.pop()
        dirs.append(d)
        for name in sorted(os.listdir(d)):
            p = d + "/" + name
            if _isdir(p):
                todo.append(p)
            else:
                hashes[p] = _digest(hl, p, buf)
    for p in ROOT_FILES:
        if _isdir(p) is False:
            hashes[p] = _digest(hl, p, buf)
    return {"info": info(), "hashes": hashes, "dirs": sorted(dirs)}


def _store(b):
    from .store import Store

    return Store(b.files, b.check)


def stable(b):
    """The boot has run STABLE_MS: it is not part of a boot loop."""
    _store(b).set_boot_count(0)


def reboot(b):
    if not b.stable and b.mode == "normal":
        # asked for, not a crash: this boot ends the row of boots that crashed or hung
        # (three in a row: maintenance), as a stable run would
        stable(b)
        b.stable = True
    b.pending = "requested from the console"
    return {"rebooting": True}


def maintenance(b, on, reason=None):
    st = _store(b)
    if on:
        if b.mode != "maintenance":
            st.set_maintenance(reason or "requested from the console")
            b.pending = "maintenance on"
    elif b.mode == "maintenance" or st.maintenance() is not None:
        st.clear_maintenance()
        full = st.set_boot_count(0)
        if full:  # (a full or read-only flash: is the next boot in maintenance all the same?)
            from .main import CRASH_LIMIT, OpError

            if st.maintenance() is not None or st.boot_count() >= CRASH_LIMIT:
                raise OpError("cannot leave maintenance mode: %s (writing mast.boots); the next "
                              "boot would be in maintenance again" % full)
        b.pending = "maintenance off"
    return {"maintenance": on, "rebooting": b.pending is not None}


def logs(board, name="mast.crash"):
    crash = board.files.read(name)  # main.CRASH_FILE
    if crash is not None:
        from .compat import loads

        try:
            crash = loads(crash.decode())
        except (ValueError, UnicodeError):
            crash = {"log": "crash", "error": "(unreadable: %d bytes)" % len(crash)}
    return {"recent": list(board.recent), "last_crash": crash}
