"""Run every tests/core/test_*.py module on the real MicroPython unix port, as a board would.

The device code (firmware/ except mastd/: the core package mast/, runtime/, ...) and the core
tests (tests/core/) are compiled with mpy-cross into build/mpy/ (firmware/mast/x.py becomes
build/mpy/mast/x.mpy, tests/core/t.py becomes build/mpy/t.mpy). Then each test module runs in
its own `micropython -X heapsize=128K` process that imports only that .mpy output
(MICROPYPATH=build/mpy:.frozen; no .py source, not even the runner's). The working directory is
the repo root, so tests can read docs/PROTOCOL.md.
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
HEAPSIZE = os.environ.get("MAST_MPY_HEAPSIZE", "128K")
TIMEOUT_S = 120
# firmware/mastd/ is the Linux agent (CPython); every other firmware/ package is device code.
EXCLUDED = (os.path.join(ROOT, "firmware", "mastd"),)

CORE_MODULES = sorted(
    os.path.splitext(os.path.basename(p))[0]
    for p in glob.glob(os.path.join(ROOT, "tests", "core", "test_*.py"))
)


def _rel(path):
    return os.path.relpath(path, ROOT)


def _sources():
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


@pytest.fixture(scope="module")
def mpy_build(mpy_compile):
    """Fresh build/mpy/ from the current sources. Returns {source: mpy-cross output} of failures.

    Holds an exclusive lock on build/mpy.lock until the module's runs are done, so two test
    sessions in one work tree (or `make mpy`) don't rebuild build/mpy under each other's feet.
    """
    os.makedirs(os.path.dirname(BUILD), exist_ok=True)
    with open(BUILD + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        shutil.rmtree(BUILD, ignore_errors=True)
        failures = {}
        for src, out in _sources():
            proc = mpy_compile(src, out)
            if proc.returncode != 0:
                failures[src] = (proc.stdout + proc.stderr).strip() or "exit %d" % proc.returncode
        yield failures


def _definition_order(module):
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


def _format_failures(failures):
    return "\n".join("--- %s\n%s" % (src, msg) for src, msg in sorted(failures.items()))


def _cases():
    """(module, test) for every test function of every core test module."""
    out = []
    for module in CORE_MODULES:
        for name in _definition_order(module) or [None]:
            out.append(pytest.param(module, name, id="%s::%s" % (module, name)))
    return out


@pytest.mark.parametrize("module,test", _cases())
def test_core_module_on_micropython(micropython, mpy_build, module, test):
    """One MicroPython process per test function: each starts from a fresh board-sized heap,
    as a board does after boot, rather than inheriting the previous tests' fragmentation."""
    src = os.path.join("tests", "core", module + ".py")
    fatal = {
        s: m
        for s, m in mpy_build.items()
        if s == src or s == RUNNER or s.startswith(os.path.join("firmware", "mast") + os.sep)
    }
    if fatal:
        pytest.fail("mpy-cross failed:\n" + _format_failures(fatal), pytrace=False)

    cmd = micropython + ["-X", "heapsize=" + HEAPSIZE, "-m", "run_core_mpy", module]
    if test:
        cmd += ["--only", test]
    env = dict(os.environ)
    env["MICROPYPATH"] = BUILD + os.pathsep + ".frozen"
    try:
        proc = subprocess.run(
            cmd,
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            universal_newlines=True,
            timeout=TIMEOUT_S,
        )
    except subprocess.TimeoutExpired as exc:
        out = exc.output or ""
        if isinstance(out, bytes):
            out = out.decode("utf-8", "replace")
        pytest.fail("MicroPython run of %s timed out after %d s\n%s" % (module, TIMEOUT_S, out),
                    pytrace=False)
    if proc.returncode != 0:
        msg = "MicroPython run of %s failed (exit %d)\n$ cd %s && MICROPYPATH=%s %s\n%s" % (
            module,
            proc.returncode,
            ROOT,
            env["MICROPYPATH"],
            " ".join(cmd),
            proc.stdout,
        )
        others = {s: m for s, m in mpy_build.items() if s not in fatal}
        if others:
            msg += "\nnote: these helper modules did not compile, so they cannot be imported:\n"
            msg += _format_failures(others)
        pytest.fail(msg, pytrace=False)
