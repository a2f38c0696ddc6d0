"""tests/board: plain test modules (test_* functions with asserts) for the board firmware,
run here by pytest on CPython and by tests/host/test_board_micropython.py on the MicroPython
unix port. They import the fakes in tests/fakes as top-level modules."""

import os
import sys

_FAKES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "fakes")
if _FAKES not in sys.path:
    sys.path.insert(0, _FAKES)
