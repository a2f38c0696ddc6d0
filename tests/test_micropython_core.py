"""Run every tests/core/test_*.py module on the real MicroPython unix port, as a board would.

The device code and the core tests are compiled with mpy-cross into build/mpy/ (see
tests/mpy_core.py, shared with the 32-bit runs of tests/test_micropython32_core.py). Then each
test function runs in its own `micropython -X heapsize=128K` process that imports only that .mpy
output (MICROPYPATH=build/mpy:.frozen; no .py source, not even the runner's). The working
directory is the repo root, so tests can read docs/PROTOCOL.md.
"""

import os

import pytest

import mpy_core
from mpy_core import BUILD, ROOT

HEAPSIZE = os.environ.get("MAST_MPY_HEAPSIZE", "128K")
TIMEOUT_S = 120


@pytest.mark.parametrize("module,test", mpy_core.cases())
def test_core_module_on_micropython(micropython, mpy_build, module, test):
    """One MicroPython process per test function: each starts from a fresh board-sized heap,
    as a board does after boot, rather than inheriting the previous tests' fragmentation."""
    others = mpy_core.fail_if_not_built(mpy_build, module)

    cmd = micropython + ["-X", "heapsize=" + HEAPSIZE, "-m", "run_core_mpy", module]
    if test:
        cmd += ["--only", test]
    env = dict(os.environ)
    # relative to ROOT (the working directory): module paths, which the heap holds, are then
    # the same length in every checkout, so the heap a test needs does not depend on where
    # the checkout is
    env["MICROPYPATH"] = os.path.relpath(BUILD, ROOT) + os.pathsep + ".frozen"
    status, out, _ = mpy_core.run(cmd, TIMEOUT_S, env, merge=True)
    if status is None:
        pytest.fail("MicroPython run of %s timed out after %d s\n%s" % (module, TIMEOUT_S, out),
                    pytrace=False)
    if status != 0:
        msg = "MicroPython run of %s failed (exit %d)\n$ cd %s && MICROPYPATH=%s %s\n%s" % (
            module,
            status,
            ROOT,
            env["MICROPYPATH"],
            " ".join(cmd),
            out,
        )
        pytest.fail(msg + mpy_core.helpers_note(others), pytrace=False)
