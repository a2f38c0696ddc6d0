# What the board app needs that ports spell differently. Restricted Python:
# MicroPython >= 1.22 (boards, unix port) and CPython >= 3.9 (host tests).
#
# json: every port we support has `json`; a few old or trimmed builds only
# have `ujson`, so fall back to it. Everything the board prints goes through
# dumps() (one JSON object a line, docs/CONSOLE.md).

import sys
import time

try:
    import json
except ImportError:  # pragma: no cover - ports with only ujson
    import ujson as json  # noqa: F401

try:
    import os
except ImportError:  # pragma: no cover
    import uos as os  # noqa: F401

MICROPYTHON = sys.implementation.name == "micropython"
VERSION = "0.1.0"  # the board firmware's version (hello, status)


# (json's own function, not one that calls it: the board keeps this module loaded, and a
# function of its own would cost heap for nothing)
dumps = json.dumps


def loads(text):
    """json.loads; ValueError (never anything else but MemoryError) on bad input:
    parsers raise odd types on garbage (CPython's recursion limit, MicroPython's
    IndexError on some truncations)."""
    try:
        return json.loads(text)
    except MemoryError:
        raise
    except Exception:
        raise ValueError("not JSON")


if hasattr(time, "sleep_ms"):  # MicroPython: its own (no function here to keep in the heap)
    sleep_ms = time.sleep_ms
else:

    def sleep_ms(ms):
        time.sleep(ms / 1000)


def sync_file(f):
    """Flush f down to the storage where the port can: CPython fsync; MicroPython
    flushes on close, and os.sync() (where present) commits the filesystem."""
    f.flush()
    if not MICROPYTHON:
        os.fsync(f.fileno())


def unload(name):
    """Forget a module used only now and then (its full name), so the heap gets its code
    back: out of sys.modules, and off its package (main.ONCE)."""
    sys.modules.pop(name, None)
    pkg, attr = name.rsplit(".", 1)
    pkg = sys.modules.get(pkg)
    if pkg is not None and hasattr(pkg, attr):
        delattr(pkg, attr)
