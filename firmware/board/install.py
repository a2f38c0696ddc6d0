# After `mpremote mip install github:<org>/<repo>/firmware`: mip puts the packages in
# the board's /lib, and board/root/ there too, but a board runs main.py only from its
# root folder. This copies main.py, boot.py and app.py from board/root/ to the root
# (the current folder: "/" on a board), keeping a file that is already there:
#
#   mpremote mip install github:<org>/<repo>/firmware + exec "import board.install"
#
# It runs once, by hand; the firmware never imports it.

import os


def _copy(src, dest):
    f = open(src, "rb")
    try:
        data = f.read()
    finally:
        f.close()
    f = open(dest + ".tmp", "wb")  # whole or not there: a cut file would be kept as the user's
    try:
        f.write(data)
    finally:
        f.close()
    os.rename(dest + ".tmp", dest)


def install(root=""):
    here = __file__[: __file__.rfind("/")] if "/" in __file__ else "."
    done = []
    for name in ("main.py", "boot.py", "app.py"):
        try:
            os.stat(root + name)
            print("kept " + root + name)
            continue
        except OSError:
            pass
        _copy(here + "/root/" + name, root + name)
        done.append(name)
        print("installed " + root + name)
    return done


install()
