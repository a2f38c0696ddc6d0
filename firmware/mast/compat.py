# Compatibility shim: the few things MicroPython and CPython spell differently.
# The core imports these names from here and nowhere else.
try:
    from micropython import const  # noqa: F401  (MicroPython: folded at compile time)

    SLOTS = False  # instances keep a map anyway; the names would only cost a board RAM
except ImportError:  # CPython

    def const(x):
        return x

    SLOTS = True  # __slots__: a server with thousands of associations saves memory


try:
    import hashlib

    sha256 = hashlib.sha256
except ImportError:  # pragma: no cover - every supported port has hashlib
    import uhashlib

    sha256 = uhashlib.sha256

try:
    import struct
except ImportError:  # pragma: no cover
    import ustruct as struct  # noqa: F401

try:
    import binascii
except ImportError:  # pragma: no cover
    import ubinascii as binascii  # noqa: F401
