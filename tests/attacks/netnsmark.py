"""The mark of the attack tests that need network namespaces (root and `ip netns`): where there
are none they skip and say why. A module of its own, as `from conftest import ...` takes whichever
conftest.py pytest imported last (tests/board's, in a run of tests/board and tests/attacks)."""

import pytest

import atklib

NETNS_REASON = atklib.unavailable()
needs_netns = pytest.mark.skipif(NETNS_REASON is not None, reason=str(NETNS_REASON))
