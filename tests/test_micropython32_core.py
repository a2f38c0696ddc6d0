"""Run every tests/core/test_*.py module on a 32-bit MicroPython, as a 32-bit board would.

The build is the npm package @micropython/micropython-webassembly-pyscript (pinned in
tests/mp32/package-lock.json; `make test` runs `npm ci` there): MicroPython 1.27 compiled to
wasm32, with 4-byte words and 31-bit small ints like an ESP32 or RP2040 (`sys.maxsize ==
2**31 - 1`), so every int of 2**30 or more is a heap object, as on a board; the 64-bit unix port
hides that. It runs the same mpy-cross output as tests/test_micropython_core.py (build/mpy/, built
by tests/mpy_core.py under build/mpy.lock). One node process (tests/mp32/run_core.mjs) runs every
selected test function in a MicroPython instance of its own, one after the other: each has its
own wasm memory, so a fresh heap, as a board after boot. The instance's filesystem holds the .mpy
files under /lib (its whole sys.path) and docs/PROTOCOL.md (the vector tests open it by that
relative path; the working directory is /). `loadMicroPython` can be called again and again in
one node process: a fresh instance (the wasm loaded, the .mpy files copied in) costs under 10 ms
here, and the whole run of 255 test functions took 8 s (node alone; 10-15 s under pytest on
this loaded 2-core machine).

What the heap size means on this build (measured here, and read in the port's main.c): HEAPSIZE
sizes only the first heap area. The heap is a split heap that grows by new areas on demand (its
gc.mem_free() counts 128 MiB of room to grow), and the collector cannot scan the wasm stack, so a
collection asked for inside a runPython call (gc.collect(), or the 16 KB allocation threshold)
runs only when the call returns to JavaScript. A test function runs in one call, so its heap
grows by every byte it allocates: test_failover's longest test grew the areas to 19.5 MB, and
all 28 core modules pass with a first area of 2K as well as 80K. So no heapsize makes this a
board-sized limit, and these runs check the core's behaviour on 32-bit words and small ints, not
its fit in a board's heap. The fit is checked by the unix-port runs in a hard 128K heap
(tests/test_micropython_core.py) and measured for 32-bit by bench/alloc.py. The first area is
80K, the smallest heap in which every core test passed on a 32-bit (i386) unix build.

This build has no socket, cryptolib or micropython.mem_total. It also freezes Python modules from
micropython-lib (.frozen: hmac, logging, unittest, abc, a Python binascii whose a2b_base64
refuses a str, ...); a board has none of them, so .frozen is left off sys.path and `binascii` is
the C module, as on ESP32 and rp2 (checked here: with .frozen on the path, `import binascii`
finds the Python one).
"""

import json
import os

import pytest

import mpy_core
from mpy_core import BUILD, ROOT

HEAPSIZE = 80 * 1024
# The whole run took 7 s here; a loaded 2-core CI machine gets a wide margin.
TIMEOUT_S = 300
RUN_CORE = os.path.join("tests", "mp32", "run_core.mjs")
# Host files the core tests read, put at the same relative path in each instance's filesystem.
FILES = ("docs/PROTOCOL.md",)


def _job(module, test):
    return module + "::" + test if test else module


def _command(node, jobs):
    cmd = [node, RUN_CORE, "--build", os.path.relpath(BUILD, ROOT), "--heapsize", str(HEAPSIZE)]
    for f in FILES:
        cmd += ["--file", "%s=%s" % (f, f)]
    return cmd + list(jobs)


@pytest.fixture(scope="session")
def node():
    """Path of node; skips the test when node or the npm package is missing."""
    path, why_not = mpy_core.mp32_node()
    if path is None:
        pytest.skip(why_not)
    return path


@pytest.fixture(scope="module")
def mp32_runs(request, node, mpy_build):
    """Run every selected test of this module on the 32-bit build, in one node process.

    Returns {"records": {job: record}, "cmd": the command, "trouble": why records may be
    missing (a timeout or a crash of node) or None}."""
    jobs = [
        _job(item.callspec.params["module"], item.callspec.params["test"])
        for item in request.session.items
        if getattr(item, "module", None) is request.module and hasattr(item, "callspec")
    ]
    cmd = _command(node, jobs)
    trouble = None
    status, out, err = mpy_core.run(cmd, TIMEOUT_S)
    if status is None:
        trouble = "the run timed out after %d s" % TIMEOUT_S
    elif status not in (0, 1):
        trouble = "node exited %d:\n%s" % (status, err)
    records = {}
    started = None
    for line in out.splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if not isinstance(rec, dict):
            continue
        if "start" in rec:
            started = rec["start"]
        elif "job" in rec:
            records[rec["job"]] = rec
            started = None
    if started is not None:
        trouble = "%s; it was running %s" % (trouble or "node stopped", started)
    return {"records": records, "cmd": cmd, "trouble": trouble}


@pytest.mark.parametrize("module,test", mpy_core.cases())
def test_core_module_on_micropython32(mp32_runs, mpy_build, module, test):
    """Each core test function passes on the 32-bit MicroPython, in an instance of its own."""
    others = mpy_core.fail_if_not_built(mpy_build, module)
    job = _job(module, test)
    rerun = "$ cd %s && %s" % (ROOT, " ".join(_command(os.path.basename(mp32_runs["cmd"][0]), [job])))
    rec = mp32_runs["records"].get(job)
    if rec is None:
        pytest.fail("no result from the 32-bit MicroPython for %s: %s\n%s" % (
            job, mp32_runs["trouble"] or "node gave none", rerun), pytrace=False)
    if rec["status"] != 0:
        msg = "32-bit MicroPython (wasm32) run of %s failed\n%s\n%s" % (job, rerun, rec["output"])
        pytest.fail(msg + mpy_core.helpers_note(others), pytrace=False)
    # The runner's summary line: the one test ran and passed (a whole module: none failed).
    summary = "1 passed, 0 failed" if test else " passed, 0 failed"
    assert summary in rec["output"], rec["output"]
    assert rec["maxsize"] == 2**31 - 1, "not a 32-bit build: sys.maxsize %r" % rec["maxsize"]


def test_wasm32_build_reclaims_nothing_inside_a_call_and_grows_past_its_heapsize(node, tmp_path):
    """What this module's docstring and bench/alloc.py's counting rest on: a collection asked
    for inside a runPython call frees nothing until the call returns (so gc.mem_alloc() deltas
    inside a call count every block allocated), and the heap grows past HEAPSIZE."""
    steps = [
        "import gc\ngc.collect()",
        "import gc\n_a = gc.mem_alloc()\n_g = [bytearray(1024) for i in range(300)]\n_g = None\n"
        "gc.collect()\n_inside = gc.mem_alloc() - _a",
        "import gc\nprint('inside %d after %d' % (_inside, gc.mem_alloc() - _a))",
    ]
    cmd = [node, os.path.join("tests", "mp32", "run_steps.mjs"), "--build", str(tmp_path),
           "--heapsize", str(HEAPSIZE)] + steps
    status, out, err = mpy_core.run(cmd, TIMEOUT_S)
    assert status == 0, out + err
    words = out.split()
    assert words[0] == "inside" and words[2] == "after", out
    inside, after = int(words[1]), int(words[3])
    assert inside >= 300 * 1024 > 3 * HEAPSIZE, out  # all 300 KB still counted, past the heapsize
    assert after < 16 * 1024, out  # freed once the call returned
