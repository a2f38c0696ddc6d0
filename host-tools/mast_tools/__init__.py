"""Host tools for MAST (Multiple Address Service for Transport): the `mast` command."""

__version__ = "0.1.0"
