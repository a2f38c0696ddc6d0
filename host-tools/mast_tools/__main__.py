"""`python -m mast_tools` is the `mast` command."""

import sys

from mast_tools.cli import main

sys.exit(main())
