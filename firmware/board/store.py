# Persistence on the board's filesystem: the configuration, committed atomically,
# its last good copy, and the two small files of the maintenance flow.
#
#   mast.json       the committed configuration (plain JSON, one object)
#   mast.json.tmp   a commit in progress: written in full, then renamed over mast.json
#   mast.json.bak   the configuration mast.json held before the last commit
#   mast.maint      present = maintenance mode (its text says why); `maintenance off`
#                   or `mpremote rm :mast.maint` clears it
#   mast.boots      boots in a row that did not reach a stable run (boot-loop guard)
#
# A commit: write mast.json.tmp and flush it; move a valid mast.json to .bak; rename
# .tmp to mast.json. Each rename is atomic on littlefs and Linux. On FAT, MicroPython
# renames over an existing file by removing it first; the sequence only does that to
# .bak, or to a mast.json that is already corrupt. A power cut at any point leaves a
# state that load() reads as the old or the new configuration:
#   cut while .tmp is written    -> mast.json is the old one (the torn .tmp is removed)
#   cut after mast.json -> .bak  -> no mast.json; the complete .tmp is the new one, and
#                                   load() finishes the commit (renames it)
# load() takes the first of mast.json, .tmp, .bak that parses and validates, else
# the defaults, and says which it used and why (status shows it). Tested by cutting
# power at every block write of a commit on littlefs and FAT (tests/board).

from .compat import dumps, loads, os
from .files import Files, MAX_FILE as _MAX_FILE  # noqa: F401  (Files: for callers of store)

CONFIG = "mast.json"
TMP = "mast.json.tmp"
BAK = "mast.json.bak"
MAINT = "mast.maint"
BOOTS = "mast.boots"


def sync_fs():
    """Commit the filesystem where the port can (os.sync)."""
    if hasattr(os, "sync"):
        try:
            os.sync()
        except OSError:
            pass


def why(e):
    """An OSError of a write in words (MicroPython's says only its number)."""
    n = e.args[0] if e.args else None
    return "the flash is full" if n == 28 else "the flash is read-only" if n == 30 else "OSError %s" % n


def parse(data, check=None):
    """A config dict from a file's bytes; ValueError saying what is wrong."""
    if len(data) > _MAX_FILE:
        raise ValueError("larger than %d bytes" % _MAX_FILE)
    try:
        text = data.decode()
    except UnicodeError:
        raise ValueError("not UTF-8 text")
    if not text.strip():
        raise ValueError("empty")
    cfg = loads(text)  # ValueError: not JSON (truncated files end up here)
    if type(cfg) is not dict:
        raise ValueError("not a JSON object")
    if check is not None:
        check(cfg)
    return cfg


class Store:
    """check(cfg) raises ValueError when a parsed configuration is not usable (the
    schema): such a file counts as corrupt and the next one is tried."""

    def __init__(self, files=None, check=None):
        self.files = files or Files()
        self.check = check
        self.main_ok = False  # mast.json holds a valid configuration

    def load(self):
        """(config or None, source, warning). source: "mast.json", "mast.json.tmp",
        "mast.json.bak" or "defaults"; warning: None, or why it is not mast.json."""
        problems = []
        for name in (CONFIG, TMP, BAK):
            data = self.files.read(name)
            if data is None:
                if name == CONFIG:
                    problems.append(name + " is missing")
                continue
            try:
                cfg = parse(data, self.check)
            except ValueError as e:
                problems.append("%s is corrupt (%s)" % (name, e))
                continue
            self.main_ok = name == CONFIG
            if name == CONFIG:
                if self.files.exists(TMP):  # an interrupted commit: the old config stands
                    self.files.remove(TMP)
                return cfg, name, None
            if name == TMP:  # finish the interrupted commit, so the next one cannot tear it
                problems.append("recovered the commit that was interrupted")
                try:
                    self.files.rename(TMP, CONFIG)
                    self.main_ok = True
                except OSError:
                    pass
            else:
                problems.append("using the last good configuration")
            return cfg, name, "; ".join(problems)
        self.main_ok = False
        if problems == [CONFIG + " is missing"]:
            return None, "defaults", "no configuration saved yet"
        return None, "defaults", "; ".join(problems) + "; using the defaults"

    def commit(self, cfg):
        """Persist cfg atomically (see the top of this file). Returns the bytes written."""
        data = (dumps(cfg) + "\n").encode()
        if len(data) > _MAX_FILE:
            raise ValueError("configuration too large (%d bytes, at most %d)" % (len(data), _MAX_FILE))
        f = self.files
        try:
            f.write(TMP, data)
        except OSError as e:  # a full flash: the torn .tmp goes, mast.json stands
            f.remove(TMP)
            raise ValueError("cannot save the configuration: %s (writing %s); mast.json is as "
                             "it was" % (why(e), TMP))
        if self.main_ok and f.exists(CONFIG):  # gone if someone removed it (mpremote rm)
            f.rename(CONFIG, BAK)
        f.rename(TMP, CONFIG)
        sync_fs()
        self.main_ok = True
        return len(data)

    # ---- the maintenance flow ------------------------------------------------------

    def maintenance(self):
        """Why the board is in maintenance, or None. Presence of the file is what
        counts, so even a torn write of it means maintenance."""
        data = self.files.read(MAINT)
        if data is None:
            return None
        try:
            text = data.decode().strip()
        except UnicodeError:
            text = ""
        return text[:80] or "requested"

    def set_maintenance(self, reason):
        """ValueError if the flash would not even make the file (an empty one, as a full
        flash leaves, means maintenance all the same: its presence is what counts)."""
        try:
            self.files.write(MAINT, reason.encode())
        except OSError as e:
            if not self.files.exists(MAINT):
                raise ValueError("cannot set maintenance mode: %s (writing %s)" % (why(e), MAINT))
        sync_fs()

    def clear_maintenance(self):
        self.files.remove(MAINT)
        sync_fs()

    def boot_count(self):
        # no mast.boots but its .tmp: the power went inside the rename (FAT removes the old first)
        data = self.files.read(BOOTS) or self.files.read(BOOTS + ".tmp")
        try:
            return int(data.decode()) if data else 0
        except (ValueError, UnicodeError):
            return 0

    def set_boot_count(self, n):
        """None, or why the flash did not take it (full, read-only): that OSError is never
        raised, as a board that cannot count its boots still runs (a crash there rebooted it
        for ever)."""
        try:
            self.files.write(BOOTS + ".tmp", str(n).encode())
            self.files.rename(BOOTS + ".tmp", BOOTS)
        except OSError as e:
            self.files.remove(BOOTS + ".tmp")
            return why(e)
        sync_fs()
