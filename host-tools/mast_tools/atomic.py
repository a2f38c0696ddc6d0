"""Files the host tools write are whole or not there: written to NAME.tmp, then renamed over
NAME. A write that fails (a full disk, Ctrl-C) removes its NAME.tmp and leaves what was at NAME
as it was; NAME.tmp is synced before the rename, so a power cut leaves the old file or the new."""

import os


def write_atomic(path, data):
    """Write data (bytes or str) to path, whole or not at all."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    tmp = path + ".tmp"
    try:
        with open(tmp, "wb" if isinstance(data, bytes) else "w") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())  # on the disk before the rename is (a power cut: never an empty file)
        os.replace(tmp, path)
    except BaseException as e:  # (no half-written file is left beside it)
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(e, OSError):  # the file the user named (a full disk's write names none)
            raise OSError(e.errno, e.strerror or str(e), path)
        raise
