"""The stateful fuzz of two cores (tests/attacks/statefuzz.py: every state of an association,
hostile datagrams from key holders, mutated captures and random bytes, interleaved with timers,
uplinks that flap or renumber, data and closes), a short fixed-seed campaign on each runtime:
no call raises, no internal_error, no invariant broken, and a datagram without the key changes
nothing. On MicroPython the core is mpy-cross output, as on a board (in a 512K heap: the
harness holds two endpoints and the packets it replays)."""

import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HERE = os.path.join(ROOT, "tests", "attacks")
CORE_TESTS = os.path.join(ROOT, "tests", "core")


def summary(out):
    lines = [x for x in out.splitlines() if x.startswith("{")]
    assert lines, out[-2000:]
    return json.loads(lines[-1])


def check(res, trials, steps):
    assert (res["trials"], res["steps"]) == (trials, steps)
    assert res["failures"] == 0, res["first"]
    h = res["hostile"]
    # each kind of hostile datagram was sent, in numbers (about 26 per 100 steps each)
    assert min(h["auth"], h["mutated"], h["random"]) >= trials * steps // 20, h


def test_cpython_cores_keep_every_invariant_through_40000_fuzzed_steps():
    p = subprocess.run([sys.executable, os.path.join(HERE, "statefuzz.py"), "7", "160", "250"],
                       capture_output=True, text=True, timeout=300,
                       env=dict(os.environ, PYTHONPATH=os.pathsep.join(
                           [os.path.join(ROOT, "firmware"), CORE_TESTS])))
    assert p.returncode == 0, p.stderr[-2000:]
    check(summary(p.stdout), 160, 250)


def test_micropython_cores_keep_every_invariant_through_10000_fuzzed_steps(atk_mpy):
    from mast_tools.board_process import find_micropython

    p = subprocess.run([find_micropython(), "-X", "heapsize=512K", "-m", "statefuzz", "21", "40", "250"],
                       capture_output=True, text=True, timeout=300,
                       env=dict(os.environ, MICROPYPATH=os.pathsep.join([atk_mpy, CORE_TESTS, HERE])))
    assert p.returncode == 0, (p.stdout[-2000:], p.stderr[-2000:])
    check(summary(p.stdout), 40, 250)
