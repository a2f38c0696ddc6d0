"""`mast console`, `mast flash` and `mast linkemu` ended by SIGTERM (a service manager, `kill`)
or SIGHUP (the terminal closed): as Ctrl-C ends them, with the same last messages. Before, the
signal killed them: no last line, no recovery hint, no summary (exit status -15 or -1)."""

import json
import os
import pty
import select
import signal
import subprocess
import sys
import time
import tty

import pytest

from boardcli import env_for_mast, sim_board_device

MAST = [sys.executable, "-m", "mast_tools"]


def _read_until(proc, stream, text, timeout=60):
    """What `stream` of proc printed, read until `text` is in it (bounded by timeout)."""
    got = b""
    end = time.monotonic() + timeout
    while text not in got:
        left = end - time.monotonic()
        assert left > 0 and proc.poll() is None, (got, proc.poll())
        if select.select([stream], [], [], min(left, 0.5))[0]:
            chunk = os.read(stream.fileno(), 65536)
            assert chunk, got
            got += chunk
    return got


def _stopped(proc, name, ready):
    """ready() waits until proc is under way; then the signal `name` (SIGTERM, SIGHUP) ->
    (stdout, stderr) once proc has ended (bounded: killed if it does not)."""
    try:
        ready()
        proc.send_signal(getattr(signal, name))
        return proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def board(tmp_path_factory):
    yield from sim_board_device(tmp_path_factory, "sig")


@pytest.mark.parametrize("name", ["SIGTERM", "SIGHUP"])
def test_a_console_stopped_by_a_signal_says_how_it_ended_and_leaves_the_board_running(board, name):
    proc = subprocess.Popen(MAST + ["console", "--port", board], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env_for_mast())
    out, err = _stopped(proc, name, lambda: _read_until(proc, proc.stdout, b"board unix-sim"))
    assert proc.returncode == 0, err
    assert err.decode().strip().endswith("mast console: session ended (%s); the board was not "
                                         "interrupted, its firmware runs on" % name)
    assert b"Traceback" not in err


@pytest.mark.parametrize("name", ["SIGTERM", "SIGHUP"])
def test_a_flash_stopped_by_a_signal_says_how_the_board_is_left_and_the_way_back(name):
    # a port where nothing answers yet: the flash waits for the board's hello (step 1)
    master, slave = pty.openpty()
    tty.setraw(slave)
    port = os.ttyname(slave)
    proc = subprocess.Popen(MAST + ["flash", "--port", port, "--board", "unix-sim"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=env_for_mast())
    def asked():
        seen = b""
        end = time.monotonic() + 60
        while b'"op": "hello"' not in seen:  # it asks: the flash has begun
            assert time.monotonic() < end and proc.poll() is None, proc.stderr.read()
            if select.select([master], [], [], 0.5)[0]:
                seen += os.read(master, 4096)

    try:
        out, err = _stopped(proc, name, asked)
    finally:
        os.close(master)
        os.close(slave)
    err = err.decode()
    assert proc.returncode == 130, err
    assert err.splitlines()[-2:] == [
        "flash: stopped by %s, as Ctrl-C stops it" % name,
        "mast: flash interrupted; the board may be left in maintenance mode or at its REPL, with its "
        "old firmware in place: run mast flash again, or start the old firmware: mast maintenance off "
        "--port %s" % port]
    assert "Traceback" not in err


@pytest.mark.parametrize("name", ["SIGTERM", "SIGHUP"])
def test_linkemu_stopped_by_a_signal_prints_its_summary_as_after_ctrl_c(name):
    from mast_tools.netutil import free_udp_port

    proc = subprocess.Popen(MAST + ["linkemu", "--json", "--link", "eth=127.0.0.1:%d,delay=2"
                                    % free_udp_port(["127.0.0.1"])],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=env_for_mast())
    out, err = _stopped(proc, name, lambda: _read_until(proc, proc.stderr, b"the network sees"))  # (its links up)
    assert proc.returncode == 0, err
    doc = json.loads(out)
    assert doc["ended_by"] == "interrupt" and "counters" in doc["links"]["eth"]
    assert b"Traceback" not in err


def _own_terminal():
    """In the child: a session whose controlling terminal is its stdin (the pty), as in a
    terminal window: closing the window (the pty's master) hangs it up (SIGHUP)."""
    import fcntl
    import termios

    os.setsid()
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def test_a_console_whose_terminal_window_closes_ends_cleanly_and_frees_the_port(board, tmp_path):
    # before: killed by the SIGHUP; with it caught, putting the closed terminal back (EIO) must
    # not turn into a traceback or exit status 1
    from boardcli import mast

    master, slave = pty.openpty()
    proc = subprocess.Popen(MAST + ["console", "--port", board], stdin=slave, stdout=slave,
                            stderr=slave, env=env_for_mast(), preexec_fn=_own_terminal)
    os.close(slave)
    try:
        seen = b""
        end = time.monotonic() + 60
        while b"board unix-sim" not in seen:
            assert time.monotonic() < end and proc.poll() is None, seen
            if select.select([master], [], [], 0.5)[0]:
                seen += os.read(master, 65536)
        os.close(master)  # the window closes
        master = None
        assert proc.wait(30) == 0
    finally:
        if master is not None:
            os.close(master)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    r = mast("config", "--port", board, "get", "name")  # the port is free, the board runs on
    assert r.returncode == 0 and r.stdout == "board1\n", r.stderr


def test_at_its_end_mast_leaves_a_commands_own_handling_and_ignores_a_signal_after_the_first(monkeypatch):
    # (mast endpoint ignores SIGTERM once it stops, so a second signal cannot kill it while it
    # writes its last lines; main putting back the default action undid that: exit -15 at times)
    from mast_tools import cli

    def own(args):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # as mast endpoint does when it stops
        return 0

    def stopped(args):
        os.kill(os.getpid(), signal.SIGTERM)
        for _ in range(1000):  # (bounded: the signal is handled at once)
            time.sleep(0.01)
        return 0

    def quiet(args):
        return 0

    def marker(signum, frame):
        pass

    old = [(s, signal.signal(s, marker)) for s in (signal.SIGTERM, signal.SIGHUP)]
    try:
        for name, handler in (("own", own), ("stopped", stopped), ("quiet", quiet)):
            monkeypatch.setitem(cli._COMMANDS, name, (handler, lambda p: None, name))
        assert cli.main(["own"]) == 0
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_IGN  # the command's, kept
        assert signal.getsignal(signal.SIGHUP) is marker  # (as it was)
        signal.signal(signal.SIGTERM, marker)
        assert cli.main(["stopped"]) == 130  # as Ctrl-C
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_IGN  # a second one changes nothing
        signal.signal(signal.SIGTERM, marker)
        signal.signal(signal.SIGHUP, marker)
        assert cli.main(["quiet"]) == 0
        assert signal.getsignal(signal.SIGTERM) is marker and signal.getsignal(signal.SIGHUP) is marker
    finally:
        for s, h in old:
            signal.signal(s, h)
