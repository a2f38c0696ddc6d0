"""The firmware sources, importable on the host, and where the other shipped files are.

Host tools run the very files the boards run (one core, every runtime): `mast.*` and `runtime.*`
come from the firmware/ folder. In a checkout (and an editable install) that is the repository's
firmware/, next to host-tools/; a wheel carries copies in mast_tools/bundle/ (host-tools/setup.py
puts firmware/, boards/ and tests/hardware/ there), so an installed `mast` can flash, simulate
and test a board outside the checkout.
"""

import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
_BUNDLE = os.path.join(_HERE, "bundle")
_CHECKOUT = os.path.dirname(os.path.dirname(_HERE))

if os.path.isdir(os.path.join(_BUNDLE, "firmware", "runtime")):  # an installed wheel
    FIRMWARE_DIR = os.path.join(_BUNDLE, "firmware")
    HARDWARE_TESTS_DIR = os.path.join(_BUNDLE, "hardware")
else:  # the repository
    FIRMWARE_DIR = os.path.join(_CHECKOUT, "firmware")
    HARDWARE_TESTS_DIR = os.path.join(_CHECKOUT, "tests", "hardware")
BOARDS_DIR = os.path.join(os.path.dirname(FIRMWARE_DIR), "boards")  # simboard.py says the same


def use_firmware():
    """Make `import mast...` and `import runtime...` find firmware/ (appended, so it never
    shadows the standard library)."""
    if not os.path.isdir(os.path.join(FIRMWARE_DIR, "runtime")):
        raise ImportError(
            "MAST firmware sources not found at %s; install host-tools from a checkout "
            "(pip install -e host-tools) or a wheel built from one" % FIRMWARE_DIR
        )
    if FIRMWARE_DIR not in sys.path:
        sys.path.append(FIRMWARE_DIR)
