# The board's /boot.py: runs on every boot and every soft reset, before main.py.
# It must stay quiet and quick (mpremote soft-resets the board before each command);
# the firmware starts from main.py, and only on a full boot.
#
# Its one job: finish an interrupted `mast flash`. The flash stages the new firmware in
# lib.new, checks every file's SHA-256 there, then switches with two renames:
# lib -> lib.old, lib.new -> lib. Power lost between the two leaves no lib: the old
# firmware goes back (mast flash clears lib.new and lib.old on its next run).
try:
    import os as _os

    try:
        _os.stat("lib")
    except OSError:
        _os.rename("lib.old", "lib")
except Exception:
    pass
try:
    del _os
except NameError:
    pass
