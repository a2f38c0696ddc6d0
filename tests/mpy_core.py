"""The core tests on MicroPython: what the 64-bit unix-port runs (tests/test_micropython_core.py)
and the 32-bit wasm runs (tests/test_micropython32_core.py) share.

The device code (firmware/ except mastd/: the core package mast/, runtime/, ...) and the core
tests (tests/core/) are compiled with mpy-cross into build/mpy/ (firmware/mast/x.py becomes
build/mpy/mast/x.mpy, tests/core/t.py becomes build/mpy/t.mpy, and the runner
tests/run_core_mpy.py becomes build/mpy/run_core_mpy.mpy). Both runs import only that output, as a
board would. The `mpy_build` fixture (tests/conftest.py) builds it under build/mpy.lock.
"""

import ast
import fcntl
import glob
import os
import shutil
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.join(ROOT, "build", "mpy")
RUNNER = os.path.join("tests", "run_core_mpy.py")
# firmware/mastd/ is the Linux agent (CPython); every other firmware/ package is device code.
EXCLUDED = (os.path.join(ROOT, "firmware", "mastd"),)

CORE_MODULES = sorted(
    os.path.splitext(os.path.basename(p))[0]
    for p in glob.glob(os.path.join(ROOT, "tests", "core", "test_*.py"))
)


def _rel(path):
    return os.path.relpath(path, ROOT)


def sources():
    """(source relative to ROOT, output path) for everything a MicroPython run imports."""
    pairs = []
    firmware = os.path.join(ROOT, "firmware")
    for dirpath, dirnames, filenames in os.walk(firmware):
        dirnames[:] = sorted(
            d for d in dirnames
            if d != "__pycache__" and os.path.join(dirpath, d) not in EXCLUDED
        )
        for name in sorted(filenames):
            if name.endswith(".py"):
                src = os.path.join(dirpath, name)
                out = os.path.join(BUILD, os.path.relpath(src, firmware))[:-3] + ".mpy"
                pairs.append((_rel(src), out))
    for src in sorted(glob.glob(os.path.join(ROOT, "tests", "core", "*.py"))):
        out = os.path.join(BUILD, os.path.basename(src)[:-3] + ".mpy")
        pairs.append((_rel(src), out))
    pairs.append((RUNNER, os.path.join(BUILD, "run_core_mpy.mpy")))
    return pairs


def build_locked(mpy_compile):
    """Generator for a module-scoped fixture: a fresh build/mpy/ from the current sources; yields
    {source: mpy-cross output} of the failures.

    Holds an exclusive lock on build/mpy.lock until the fixture is torn down (the test module's
    runs are done), so two test sessions in one work tree (or `make mpy`) don't rebuild build/mpy
    under each other's feet.
    """
    os.makedirs(os.path.dirname(BUILD), exist_ok=True)
    with open(BUILD + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        shutil.rmtree(BUILD, ignore_errors=True)
        failures = {}
        for src, out in sources():
            # The source name stored for tracebacks is the .mpy's own path relative to ROOT,
            # which is also the module's __file__ when MICROPYPATH is build/mpy from ROOT: one
            # name (qstr) per module instead of two, and the same length in every checkout (a
            # board-sized heap grows its table of names in large steps; the core tests run
            # near one of them). Tracebacks name build/mpy/<module>.mpy with the source's lines.
            proc = mpy_compile(src, out, os.path.relpath(out, ROOT))
            if proc.returncode != 0:
                failures[src] = (proc.stdout + proc.stderr).strip() or "exit %d" % proc.returncode
        yield failures


def run(cmd, timeout, env=None, merge=False):
    """Run `cmd` from ROOT with no stdin: (exit status, stdout, stderr), or (None, the output so
    far, stderr so far) when it ran out of `timeout` seconds. merge: stderr goes to stdout."""
    try:
        proc = subprocess.run(
            cmd,
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT if merge else subprocess.PIPE,
            universal_newlines=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired as exc:
        out, err = exc.stdout or "", exc.stderr or ""
        if isinstance(out, bytes):
            out = out.decode("utf-8", "replace")
        if isinstance(err, bytes):
            err = err.decode("utf-8", "replace")
        return None, out, err
    return proc.returncode, proc.stdout, proc.stderr or ""


def definition_order(module):
    """Names of the module's top-level test_* functions in source order (MicroPython can't tell)."""
    path = os.path.join(ROOT, "tests", "core", module + ".py")
    try:
        with open(path) as f:
            tree = ast.parse(f.read(), path)
    except (OSError, SyntaxError):
        return []
    return [
        node.name
        for node in tree.body
        if isinstance(node, ast.FunctionDef) and node.name.startswith("test_")
    ]


def format_failures(failures):
    return "\n".join("--- %s\n%s" % (src, msg) for src, msg in sorted(failures.items()))


def cases():
    """pytest params (module, test) for every test function of every core test module; test is
    None for a module whose functions could not be listed (it then runs whole, and fails)."""
    out = []
    for module in CORE_MODULES:
        for name in definition_order(module) or [None]:
            out.append(pytest.param(module, name, id="%s::%s" % (module, name)))
    return out


def fail_if_not_built(build_failures, module):
    """Fail the test when mpy-cross could not compile what `module` cannot run without: its own
    source, the runner, or the core (firmware/mast). Returns the other failures (helpers that a
    failure message should mention)."""
    src = os.path.join("tests", "core", module + ".py")
    fatal = {
        s: m
        for s, m in build_failures.items()
        if s == src or s == RUNNER or s.startswith(os.path.join("firmware", "mast") + os.sep)
    }
    if fatal:
        pytest.fail("mpy-cross failed:\n" + format_failures(fatal), pytrace=False)
    return {s: m for s, m in build_failures.items() if s not in fatal}


def helpers_note(others):
    """The tail of a failure message naming the helper modules mpy-cross could not compile."""
    if not others:
        return ""
    return ("\nnote: these helper modules did not compile, so they cannot be imported:\n"
            + format_failures(others))


# ---- the 32-bit MicroPython (wasm32, from npm; tests/mp32/) -------------------------------------

MP32_DIR = os.path.join(ROOT, "tests", "mp32")
MP32_PACKAGE = "@micropython/micropython-webassembly-pyscript"
MP32_ENTRY = os.path.join(MP32_DIR, "node_modules", MP32_PACKAGE, "micropython.mjs")


def mp32_node():
    """(path of node, None) when the 32-bit MicroPython can run here, else (None, why not)."""
    node = shutil.which("node") or shutil.which("nodejs")
    if node is None:
        return None, ("node is not installed, so the 32-bit (wasm32) MicroPython runs are skipped; "
                      "install nodejs and npm (as root: make deps), then make test")
    if not os.path.isfile(MP32_ENTRY):
        return None, ("the npm package %s is not installed in tests/mp32, so the 32-bit (wasm32) "
                      "MicroPython runs are skipped; run make test (it runs npm ci there), or cd tests/mp32 && npm ci"
                      % MP32_PACKAGE)
    return node, None
