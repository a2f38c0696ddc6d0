"""Build step for the wheel: the metadata is in pyproject.toml; this only adds the files an
installed `mast` needs from the rest of the repository, copied into mast_tools/bundle/:

    ../firmware/        -> bundle/firmware/   (flash, sim-board, endpoint, demo run these files)
    ../boards/*.json    -> bundle/boards/     (board definitions)
    ../tests/hardware/  -> bundle/hardware/   (the suite `mast hwtest` runs)

mast_tools/firmware.py finds them there, and falls back to the checkout when they are not
(an editable install, or running from the repository). Build the wheel from the checkout
(`pip wheel ./host-tools`, `python -m build host-tools`); an sdist alone lacks these files.
"""

import os
import shutil

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
BUNDLE = (
    (os.path.join(ROOT, "firmware"), "firmware"),
    (os.path.join(ROOT, "boards"), "boards"),
    (os.path.join(ROOT, "tests", "hardware"), "hardware"),
)
_SKIP = ("__pycache__", ".pytest_cache")


def _ignore(folder, names):
    return [n for n in names if n in _SKIP or n.endswith((".pyc", ".pyo", ".mpy"))]


class BuildWithBundle(build_py):
    def run(self):
        build_py.run(self)
        if getattr(self, "editable_mode", False):
            return  # an editable install uses the checkout itself
        dest = os.path.join(self.build_lib, "mast_tools", "bundle")
        for src, name in BUNDLE:
            if not os.path.isdir(src):
                raise SystemExit("mast-tools: %s is missing: build the wheel from the repository "
                                 "checkout (it bundles firmware/, boards/, tests/hardware/)" % src)
            out = os.path.join(dest, name)
            if os.path.isdir(out):
                shutil.rmtree(out)
            shutil.copytree(src, out, ignore=_ignore)


setup(cmdclass={"build_py": BuildWithBundle})
