# The board's console port (firmware/board/stdio.py) on a pipe in place of the REPL's stdin:
# what is waiting is read without blocking, at most 128 bytes a call, up to and including a
# Ctrl-C; a stdin whose other end has gone (the simulated board's pty closed by the host) is
# end of input, so that the loop stops polling it (a hung-up descriptor is always "ready").

import os
import sys

import pytest

from board import stdio as stdio_mod


@pytest.fixture
def pipe(monkeypatch):
    r, w = os.pipe()
    f = os.fdopen(r, "r")
    monkeypatch.setattr(sys, "stdin", f)
    ends = {"w": w}
    yield ends
    f.close()
    if ends["w"] is not None:
        os.close(ends["w"])


def test_a_hung_up_stdin_is_end_of_input(pipe):
    s = stdio_mod.Stdio()
    os.write(pipe["w"], b'{"op": "hello"}\n')
    assert bytes(s.read()) == b'{"op": "hello"}\n' and s.eof is False
    assert bytes(s.read()) == b"" and s.eof is False  # nothing waiting: no blocking, not the end
    os.close(pipe["w"])
    pipe["w"] = None
    assert bytes(s.read()) == b"" and s.eof is True


def test_a_read_takes_at_most_128_bytes_and_stops_after_a_ctrl_c(pipe):
    s = stdio_mod.Stdio()
    os.write(pipe["w"], b"x" * 300)
    got = [len(s.read()) for _ in range(4)]
    assert got == [128, 128, 44, 0], got
    os.write(pipe["w"], b"ab\x03\r\x01rest")
    assert bytes(s.read()) == b"ab\x03"  # the rest is the REPL's (mpremote's raw REPL)
    assert bytes(s.read()) == b"\r\x01rest"


def test_stdin_from_a_file_ends_at_its_end(tmp_path, monkeypatch):
    # (a board run with its stdin from a file or /dev/null: ready to read, and then nothing)
    path = tmp_path / "in"
    path.write_bytes(b"abc")
    f = open(str(path))
    monkeypatch.setattr(sys, "stdin", f)
    try:
        s = stdio_mod.Stdio()
        assert bytes(s.read()) == b"abc" and s.eof is True
    finally:
        f.close()


# A PC that holds a board's USB console open and reads nothing: on rp2 each write then waits
# up to 500 ms for room (mp_usbd_cdc_tx_strn), and a status reply of a few hundred pieces
# outlasts the watchdog. Here stdout is a pipe the test does not read until the end: once it
# is full, each line is dropped and counted, none blocks, and what was written is whole lines.
_FULL_PORT = r"""
import sys
sys.path.insert(0, %r)
from board.stdio import Stdio
s = Stdio()
n = 0
while s.dropped == 0 and n < 2000:  # a 64 KB pipe takes about 65 of these
    s.write('{"log": "%%s"}' %% ("x" * 990))
    n += 1
for i in range(40):
    s.send({"id": i, "result": {"paths": ["eth>192.0.2.%%d:6278" %% j for j in range(60)]}})
    s.write('{"event": "path_down", "n": %%d}' %% i)
sys.stderr.write("written %%d dropped %%d\n" %% (n - 1, s.dropped))
"""


@pytest.mark.parametrize("runtime", ["cpython", "micropython"])
def test_a_console_nobody_reads_drops_whole_lines_and_never_blocks(runtime, request, tmp_path):
    import subprocess

    cmd = [sys.executable] if runtime == "cpython" else request.getfixturevalue("micropython")
    firmware = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                            "firmware")
    script = tmp_path / "full_port.py"
    script.write_text(_FULL_PORT % firmware)
    r, w = os.pipe()
    proc = subprocess.Popen(cmd + [str(script)], stdout=w, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    os.close(w)
    try:
        try:
            err = proc.communicate(timeout=20)[1].decode()
        except subprocess.TimeoutExpired:
            proc.kill()
            pytest.fail("a write to the full console blocked: %s" % proc.communicate()[1].decode())
        assert proc.returncode == 0, err
    finally:
        out = b""
        while True:
            chunk = os.read(r, 65536)
            if not chunk:
                break
            out += chunk
        os.close(r)
    written, dropped = [int(x) for x in err.split()[1::2]]
    assert written > 10 and dropped == 1 + 80, err  # the first it could not take, then all 80
    lines = out.split(b"\n")
    assert lines[-1] == b"" and len(lines) - 1 == written  # whole lines only, every one written
    assert all(line == b'{"log": "' + b"x" * 990 + b'"}' for line in lines[:-1])
