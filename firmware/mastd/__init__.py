"""mastd: the MAST agent for Linux routers and servers (CPython >= 3.9). See docs/MASTD.md."""

__version__ = "0.1.0"
