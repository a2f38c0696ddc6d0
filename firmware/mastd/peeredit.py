"""One peer added to or removed from mastd's configuration file (`mastctl peer add|remove`).

The file is edited as it is on disk: everything else in it stays as it was (UCI comments,
order, other sections; a JSON file is written back with two-space indents). The new text goes
to a temporary file beside the old one (mode 0600: it holds keys), is flushed to disk, gets the
old file's mode and owner, and is renamed over it: a power cut leaves the old file or the new
one, never half of either. The edit holds libuci's lock on the file (flock LOCK_EX on the
file itself, as `uci commit` takes it) from its read to its rename, so a `uci commit` at the
same moment neither loses the new peer nor is lost; a lock held past LOCK_WAIT refuses the edit.

UCI: a peer is a `config peer '<section>'` block; its section name is the peer's name with
every character other than A-Za-z0-9_ made "_" (and _2, _3, ... if taken), with `option name`
giving the real name. Removing finds the block by its `option name` (else its section name)
and deletes it, from its `config` line to its last option.
"""

import fcntl
import json
import os
import time

from . import uci

LOCK_WAIT = 1.0  # s: a `uci commit` holds it for milliseconds; mastd's loop waits meanwhile
_NAME_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")


def write_atomic(path, text):
    """Replace path's contents with text: temp file + fsync + rename, keeping mode and owner."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        st = None
    d = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(d, ".%s.%d.tmp" % (os.path.basename(path), os.getpid()))
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        if st is not None:
            os.chmod(tmp, st.st_mode & 0o7777)
            try:
                os.chown(tmp, st.st_uid, st.st_gid)
            except OSError:
                pass  # not root: the file stays ours
        os.replace(tmp, path)
    except BaseException as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(e, OSError):  # (a full disk's write names no file: mastctl said only
            # "[Errno 28] No space left on device"; a read-only one named the temporary file)
            err = OSError("cannot write %s (%s); it is as it was" % (path, e.strerror or e))
            err.errno = e.errno
            raise err
        raise
    try:  # the rename itself reaches the disk
        dfd = os.open(d, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass


def quote(value):
    """A UCI word in single quotes ("it's" -> 'it'\\''s')."""
    return "'" + value.replace("'", "'\\''") + "'"


def _uci_value(v):
    if v is True or v is False:
        return "1" if v else "0"
    return str(v)


def uci_block(section, name, doc):
    """The lines of a `config peer` block for peer name with settings doc (JSON-typed)."""
    lines = ["config peer %s" % quote(section)]
    if name != section:
        lines.append("\toption name %s" % quote(name))
    for k, v in doc.items():
        if isinstance(v, (list, tuple)):
            lines += ["\tlist %s %s" % (k, quote(_uci_value(x))) for x in v]
        else:
            lines.append("\toption %s %s" % (k, quote(_uci_value(v))))
    return lines


def _uci_sections(text, where):
    """[(type, section name or None, first line index, last line index, `option name`)] of
    UCI text, read by the reader mastd itself uses (uci.py: libuci's rules), so that what is
    edited is what mastd reads: `option name 'x'; option port '7000'` on one line, the
    keywords shortened to c and o, a quoted value over lines. (A scan of its own, word by word
    on `config` and `option name` lines, missed all three: mastctl peer remove said a peer
    mastd ran was not in the file, and a section written `c peer 'b7'` was not seen as taken,
    so peer add wrote a second block of that name: libuci's one section, another peer's.)
    Line indexes count lines as the reader does (split at "\n" only): _split_lines()."""
    out = []
    r = uci._Reader(text, where)
    for kw, first, a, b in r.statements():
        if kw == "config":
            out.append([a, b or None, first - 1, r.line - 1, None])
        elif out and kw in ("option", "list"):
            out[-1][3] = r.line - 1
            if kw == "option" and a == "name" and b:
                out[-1][4] = b  # (the last one, as parse() takes it)
    return out


def _split_lines(text):
    """The lines of text as the UCI reader counts them: split at "\n" only (str.splitlines()
    splits at "\r", form feeds, U+2028 and others too: its line numbers then named other
    lines than the reader's, and a removal took the wrong ones); a "\r" before the "\n"
    stays on its line, so a CRLF file is written back CRLF."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def _locked(path):
    """path opened and locked as libuci locks it -> the descriptor (closing it unlocks).
    The lock is on the file the path names once it is held: a file renamed over it while this
    waited (another commit's) is opened and locked again. ValueError after LOCK_WAIT."""
    deadline = time.monotonic() + LOCK_WAIT
    while True:
        fd = os.open(path, os.O_RDONLY)
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise ValueError("%s is being written by another program (a `uci commit`?);"
                                         " nothing was changed: try again" % path)
                    time.sleep(0.02)
            if os.fstat(fd).st_ino == os.stat(path).st_ino:
                return fd
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)


def _read(path):
    """The file's text; ValueError (quoting none of its bytes: it holds keys) if it is not
    UTF-8."""
    with open(path, "rb") as f:
        data = f.read()
    try:
        return data.decode("utf-8")
    except UnicodeError:
        raise ValueError("%s is not UTF-8 text; save it as UTF-8" % path)


def _json(path, text):
    from .settings import DuplicateKey, loads_json

    try:
        return loads_json(text)
    except DuplicateKey as e:  # (rewritten, the first of the two would be gone for good)
        raise ValueError("%s: %s; give each key once" % (path, e))
    except RecursionError:
        raise ValueError("%s: objects and lists nest too deep for a configuration" % path)


def _is_uci(path, text):
    return not (path.endswith(".json") or text.lstrip().startswith("{"))


def add_peer(path, name, doc):
    """Add peer name (settings doc, JSON-typed, already checked) to the file at path.
    -> the UCI section name ("mast.<section>") or None for JSON. OSError; ValueError if the
    file is not what mastd reads or stays locked."""
    fd = _locked(path)
    try:
        return _add_peer(path, name, doc)
    finally:
        os.close(fd)


def _add_peer(path, name, doc):
    text = _read(path)
    if not _is_uci(path, text):
        cfg = _json(path, text)
        if not isinstance(cfg, dict):
            raise ValueError("%s does not hold one JSON object" % path)
        peers = cfg.setdefault("peers", {})
        if not isinstance(peers, dict):
            raise ValueError("%s: peers is not an object" % path)
        peers[name] = doc
        write_atomic(path, json.dumps(cfg, indent=2) + "\n")
        return None
    lines = _split_lines(text)
    taken = set(s[1] for s in _uci_sections(text, path) if s[1])
    base = "".join(c if c in _NAME_CHARS else "_" for c in name)
    section, n = base, 1
    while section in taken:
        n += 1
        section = "%s_%d" % (base, n)
    block = uci_block(section, name, doc)
    while lines and not lines[-1].strip():
        lines.pop()
    write_atomic(path, "\n".join(lines + [""] + block) + "\n")
    return "mast." + section


def remove_peer(path, name):
    """Remove peer name from the file at path. OSError; ValueError if it is not there or the
    file stays locked."""
    fd = _locked(path)
    try:
        _remove_peer(path, name)
    finally:
        os.close(fd)


def _remove_peer(path, name):
    text = _read(path)
    if not _is_uci(path, text):
        cfg = _json(path, text)
        peers = cfg.get("peers") if isinstance(cfg, dict) else None
        if not isinstance(peers, dict) or name not in peers:
            raise ValueError("peer %s is not in %s" % (name, path))
        del peers[name]
        write_atomic(path, json.dumps(cfg, indent=2) + "\n")
        return
    lines = _split_lines(text)
    for typ, section, first, last, opt_name in _uci_sections(text, path):
        if typ == "peer" and (opt_name or section) == name:
            if first > 0 and not lines[first - 1].strip():
                first -= 1  # the blank line before the block goes with it
            del lines[first:last + 1]
            write_atomic(path, "\n".join(lines) + "\n")
            return
    raise ValueError("peer %s is not in %s" % (name, path))
