"""The firmware sources, importable on the host.

Host tools run the very files the boards run (one core, every runtime): `mast.*` and `runtime.*`
come from the repository's firmware/ folder, next to host-tools/.
"""

import os
import sys

FIRMWARE_DIR = os.path.join(
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "firmware"
)


def use_firmware():
    """Make `import mast...` and `import runtime...` find firmware/ (appended, so it never
    shadows the standard library)."""
    if not os.path.isdir(os.path.join(FIRMWARE_DIR, "runtime")):
        raise ImportError(
            "MAST firmware sources not found at %s; install host-tools from a checkout "
            "(pip install -e host-tools)" % FIRMWARE_DIR
        )
    if FIRMWARE_DIR not in sys.path:
        sys.path.append(FIRMWARE_DIR)
