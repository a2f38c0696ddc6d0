# The board's filesystem, as the firmware uses it all the time (the app's file, the
# crash file, the boot counter): five small methods. Kept apart from store.py (the
# configuration's atomic commit and the maintenance flag), which is loaded only at
# boot and for the console's ops that need it, so that its code takes no heap the
# rest of the time. Tests hand in another object with the same five methods
# (tests/fakes/fake_files.py).

from .compat import os, MICROPYTHON, sync_file

MAX_FILE = 16384  # a file larger than this is not ours (read() reads at most one byte more)


class Files:
    """The filesystem under a folder ("" = the current one, a board's root). Tests
    hand in another object with the same five methods."""

    def __init__(self, root=""):
        self.root = root if (not root or root.endswith("/")) else root + "/"

    def read(self, name):
        """The file's bytes, or None if it is missing or unreadable."""
        try:
            f = open(self.root + name, "rb")
        except OSError:
            return None
        try:
            # a read(n) takes a buffer of n bytes at once: ask for the file's size, not more
            # (a 16 KB block in one piece is what a board's heap may not have)
            try:
                n = os.stat(self.root + name)[6]
            except (OSError, IndexError):
                n = MAX_FILE
            return f.read(min(n, MAX_FILE) + 1)
        except OSError:
            return None
        finally:
            f.close()

    def write(self, name, data):
        f = open(self.root + name, "wb")
        try:
            f.write(data)
            sync_file(f)
        finally:
            f.close()

    def rename(self, old, new):
        if MICROPYTHON:
            os.rename(self.root + old, self.root + new)
        else:
            os.replace(self.root + old, self.root + new)

    def remove(self, name):
        try:
            os.remove(self.root + name)
        except OSError:
            pass

    def exists(self, name):
        try:
            os.stat(self.root + name)
            return True
        except OSError:
            return False
