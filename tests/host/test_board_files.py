"""firmware/board/files.py on CPython's filesystem: what the board reads and removes through it
(the app's file, the crash file, the boot counter; store.py's configuration). A file larger
than MAX_FILE comes back one byte longer than MAX_FILE, so that the caller can tell it is not
its own; a file that cannot be read, or removed because it is not there, is not an error."""

import os
import sys

import pytest

from board.files import MAX_FILE, Files


def test_a_file_is_read_back_whole_and_a_missing_one_is_none(tmp_path):
    f = Files(str(tmp_path))
    assert f.read("mast.json") is None and not f.exists("mast.json")
    f.write("mast.json", b'{"name": "b1"}')
    assert f.read("mast.json") == b'{"name": "b1"}' and f.exists("mast.json")
    data = os.urandom(MAX_FILE)
    f.write("app.py", data)
    assert f.read("app.py") == data  # exactly the limit: still the whole file


def test_a_file_larger_than_the_limit_comes_back_one_byte_over_it(tmp_path):
    f = Files(str(tmp_path))
    f.write("mast.json", b"x" * (MAX_FILE * 4))
    got = f.read("mast.json")
    assert len(got) == MAX_FILE + 1  # not cut to a size that looks valid, nor read whole


def test_removing_a_file_that_is_not_there_is_no_error(tmp_path):
    f = Files(str(tmp_path))
    f.remove("mast.crash")  # raises nothing
    f.write("mast.crash", b"x")
    f.remove("mast.crash")
    assert not f.exists("mast.crash") and f.read("mast.crash") is None
    f.write("a", b"1")
    f.rename("a", "b")
    assert f.read("b") == b"1" and not f.exists("a")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc/self/mem: Linux")
def test_a_file_whose_read_fails_is_unreadable_not_an_error():
    # /proc/self/mem opens, and reading its offset 0 fails with EIO: as a flash read error would
    assert Files("/proc/self").read("mem") is None
