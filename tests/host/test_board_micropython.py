"""Run the board firmware's plain tests (tests/board/test_*.py, with the fakes of tests/fakes)
on the real MicroPython unix port, as a board runs them: everything compiled by mpy-cross
into build/mpy-board/ and imported from there only. Also the power-loss test, which needs
MicroPython's own littlefs and FAT (tests/board/mp_powerloss.py)."""

import ast
import fcntl
import glob
import os
import shutil
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.path.join(ROOT, "build", "mpy-board")
HEAPSIZE = "256K"  # the tests and fakes on top of the firmware; the firmware alone: test_sim_board_traffic.py
TIMEOUT_S = 180
MODULES = sorted(os.path.basename(p)[:-3] for p in glob.glob(os.path.join(ROOT, "tests", "board", "test_*.py")))


def _sources():
    pairs = []
    for pkg in ("mast", "runtime", "board"):
        top = os.path.join(ROOT, "firmware", pkg)
        for dirpath, dirnames, filenames in os.walk(top):
            dirnames[:] = sorted(d for d in dirnames if d not in ("__pycache__", "root"))
            for name in sorted(filenames):
                if name.endswith(".py"):
                    src = os.path.join(dirpath, name)
                    rel = os.path.relpath(src, os.path.join(ROOT, "firmware"))
                    pairs.append((src, os.path.join(BUILD, rel[:-3] + ".mpy")))
    for folder in ("fakes", "board"):
        for src in sorted(glob.glob(os.path.join(ROOT, "tests", folder, "*.py"))):
            if os.path.basename(src) != "conftest.py":
                pairs.append((src, os.path.join(BUILD, os.path.basename(src)[:-3] + ".mpy")))
    pairs.append((os.path.join(ROOT, "tests", "run_core_mpy.py"), os.path.join(BUILD, "run_core_mpy.mpy")))
    return pairs


@pytest.fixture(scope="module")
def board_build(mpy_compile):
    os.makedirs(os.path.dirname(BUILD), exist_ok=True)
    with open(BUILD + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        shutil.rmtree(BUILD, ignore_errors=True)
        for src, out in _sources():
            proc = mpy_compile(os.path.relpath(src, ROOT), out)
            if proc.returncode != 0:
                pytest.fail("mpy-cross %s: %s" % (src, proc.stdout + proc.stderr), pytrace=False)
        yield BUILD


def _order(module):
    path = os.path.join(ROOT, "tests", "board", module + ".py")
    with open(path) as f:
        tree = ast.parse(f.read(), path)
    return [n.name for n in tree.body if isinstance(n, ast.FunctionDef) and n.name.startswith("test_")]


def _run(micropython, build, args, heapsize=HEAPSIZE):
    env = dict(os.environ)
    env["MICROPYPATH"] = build + os.pathsep + ".frozen"
    cmd = micropython + ["-X", "heapsize=" + heapsize] + args
    try:
        return subprocess.run(cmd, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, universal_newlines=True, timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired as e:
        pytest.fail("MicroPython run of %s timed out after %d s\n%s" % (args, TIMEOUT_S, e.output or ""),
                    pytrace=False)


@pytest.mark.parametrize("module", MODULES)
def test_board_module_on_micropython(micropython, board_build, module):
    proc = _run(micropython, board_build, ["-m", "run_core_mpy", module] + _order(module))
    if proc.returncode != 0:
        pytest.fail("MicroPython run of tests/board/%s.py failed (exit %d)\n%s" % (
            module, proc.returncode, proc.stdout), pytrace=False)
    assert proc.stdout.rstrip().splitlines()[-1].endswith(" 0 failed")


@pytest.mark.parametrize("fs", ["lfs2", "fat"])
def test_power_cut_at_every_block_write_of_a_commit(micropython, board_build, fs):
    """tests/board/mp_powerloss.py: a block device that stops keeping writes after k writes,
    for every k of a commit; after each cut the filesystem is mounted again and the board's
    loader must give the old or the new configuration."""
    proc = _run(micropython, board_build, ["-m", "mp_powerloss", fs], heapsize="512K")
    assert proc.returncode == 0, proc.stdout
    last = proc.stdout.rstrip().splitlines()[-1]
    assert last.startswith("OK %s" % fs), proc.stdout
