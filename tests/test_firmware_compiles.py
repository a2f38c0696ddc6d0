"""Everything that runs on a device compiles with mpy-cross, and the core fits its size budget.

firmware/mastd/ is the Linux agent (CPython allowed) and is not compiled.
"""

import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIRMWARE = os.path.join(ROOT, "firmware")
CORE = os.path.join(FIRMWARE, "mast")
EXCLUDED = (os.path.join(FIRMWARE, "mastd"),)
# bytes of .mpy for all of firmware/mast/: what the core may cost a board in RAM (a .mpy's
# bytecode is copied to the heap on import). 28 KB for MAST/1.0; MAST/1.1 added the timer
# queue, the state table's ERR answers, the per-peer bounds and fleet keys (issue 11 tracks
# the whole firmware's heap: bench/footprint.py); 35 KB with issue 11's direct send (about
# 600 bytes of code that take about 300 bytes of garbage off every DATA packet, bench/alloc.py).
CORE_BUDGET = 35 * 1024


def _py_files(top, excluded=()):
    found = []
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames[:] = sorted(
            d for d in dirnames
            if d != "__pycache__" and os.path.join(dirpath, d) not in excluded
        )
        for name in sorted(filenames):
            if name.endswith(".py"):
                found.append(os.path.relpath(os.path.join(dirpath, name), ROOT))
    return found


DEVICE_FILES = _py_files(FIRMWARE, EXCLUDED)


@pytest.mark.parametrize("src", DEVICE_FILES)
def test_compiles_with_mpy_cross(mpy_compile, tmp_path, src):
    proc = mpy_compile(src, str(tmp_path / "out.mpy"))
    if proc.returncode != 0:
        pytest.fail("mpy-cross %s failed (exit %d):\n%s%s" % (
            src, proc.returncode, proc.stdout, proc.stderr), pytrace=False)


def test_core_fits_size_budget(mpy_compile, tmp_path):
    sizes = []
    for src in _py_files(CORE):
        out = str(tmp_path / (src.replace(os.sep, "_")[:-3] + ".mpy"))
        proc = mpy_compile(src, out)
        if proc.returncode != 0:
            pytest.skip("%s does not compile (see test_compiles_with_mpy_cross)" % src)
        sizes.append((os.path.getsize(out), src))
    total = sum(size for size, _ in sizes)
    table = "\n".join("%7d  %s" % row for row in sorted(sizes, reverse=True))
    assert total <= CORE_BUDGET, "firmware/mast compiles to %d bytes of .mpy, budget %d:\n%s" % (
        total, CORE_BUDGET, table)
