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
