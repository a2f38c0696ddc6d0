# Power loss during a commit, on the filesystems boards really use: MicroPython's
# littlefs (vfs.VfsLfs2) and FAT (vfs.VfsFat), mounted on a block device written in
# Python that stops keeping writes after k writes - as flash does when the power
# goes. For EVERY k from 0 to the number of block writes a commit makes: restore
# the image holding the old configuration, commit the new one with the cut at k,
# mount the image again, and boot the loader: it must give the old or the new
# configuration, never a corrupt one, and the filesystem must take a commit after.
# Then corrupt and truncated config files on the same filesystem, and the boot counter
# cut at every block write of its update.
#
# MicroPython only (CPython has no vfs): run by tests/host/test_board_micropython.py
#   MICROPYPATH=build/mpy-board micropython -m mp_powerloss lfs2|fat
# Prints one line per finding and, last, "OK <fs> <n> cuts" (exit 0) or raises.

import sys
import vfs
import json

from board.store import Store, Files, CONFIG, BAK, TMP
from board import settings

MOUNT = "/plfs"
OLD = {"name": "old-board", "port": 6000, "uplinks": {"wifi": {"ssid": "home"}}}
NEW = {"name": "new-board", "port": 7000, "keying": "open",
       "peers": {"srv": {"addresses": ["127.0.0.10:6278", "127.0.0.11:6278"]}},
       "uplinks": {"wifi": {"ssid": "office", "password": "open sesame!"}, "cell": {"apn": "internet"}}}


class CutDevice:
    """A RAM block device. After `limit` writes (block writes and erases) it keeps
    no more: they return as if done, as a board's flash does once the power is gone."""

    def __init__(self, blocks, size):
        self.size = size
        self.blocks = blocks
        self.data = bytearray(blocks * size)
        self.writes = 0
        self.limit = None

    def _keep(self):
        if self.limit is not None and self.writes >= self.limit:
            return False
        self.writes += 1
        return True

    def readblocks(self, n, buf, off=0):
        a = n * self.size + off
        buf[:] = self.data[a:a + len(buf)]

    def writeblocks(self, n, buf, off=None):
        if not self._keep():
            return
        a = n * self.size + (off or 0)
        self.data[a:a + len(buf)] = buf

    def ioctl(self, op, arg):
        if op == 4:  # block count
            return self.blocks
        if op == 5:  # block size
            return self.size
        if op == 6:  # erase a block (littlefs)
            if self._keep():
                a = arg * self.size
                self.data[a:a + self.size] = b"\xff" * self.size
            return 0
        return 0


def check(cfg):
    settings.validate(cfg)


def mount(dev, kind):
    fs = vfs.VfsLfs2(dev) if kind == "lfs2" else vfs.VfsFat(dev)
    vfs.mount(fs, MOUNT)


def umount():
    try:
        vfs.umount(MOUNT)
    except OSError:
        pass


def new_device(kind):
    dev = CutDevice(64, 512) if kind == "lfs2" else CutDevice(128, 512)
    if kind == "lfs2":
        vfs.VfsLfs2.mkfs(dev)
    else:
        vfs.VfsFat.mkfs(dev)
    return dev


def store():
    return Store(Files(MOUNT), check)


def boot_load(dev, kind):
    """Mount the image as a board does at boot and load its configuration."""
    mount(dev, kind)
    try:
        return store().load()
    finally:
        umount()


def main(kind):
    dev = new_device(kind)
    mount(dev, kind)
    s = store()
    s.load()
    s.commit(OLD)
    umount()
    image = bytes(dev.data)

    # how many block writes does a commit of NEW make?
    mount(dev, kind)
    s = store()
    assert s.load() == (OLD, CONFIG, None)
    w0 = dev.writes
    s.commit(NEW)
    umount()
    n = dev.writes - w0
    assert n > 0
    print("%s: a commit makes %d block writes" % (kind, n))

    seen = {"old": 0, "new": 0}
    for k in range(n + 1):
        dev.data[:] = image
        dev.limit = None
        mount(dev, kind)
        s = store()
        assert s.load()[0] == OLD
        dev.limit = dev.writes + k  # the power goes after k more writes
        try:
            s.commit(NEW)  # the device just stops keeping writes...
        except (OSError, ValueError):  # (ValueError: store.commit's words for its .tmp's write)
            pass  # ...and a filesystem that reads back what it wrote may notice; the
            # CPU would be dead by then anyway: what counts is what the image holds
        umount()
        dev.limit = None
        cfg, src, warn = boot_load(dev, kind)
        if cfg == OLD:
            seen["old"] += 1
        elif cfg == NEW:
            seen["new"] += 1
        else:
            raise AssertionError("%s cut after %d of %d writes: booted %r from %s (%s)"
                                 % (kind, k, n, cfg, src, warn))
        # the filesystem still works: the next commit sticks
        mount(dev, kind)
        s = store()
        s.load()
        s.commit({"name": "after-the-cut"})
        umount()
        got = boot_load(dev, kind)[0]
        assert got == {"name": "after-the-cut"}, (kind, k, got)
    print("%s: %d cuts gave the old config, %d the new one" % (kind, seen["old"], seen["new"]))
    assert seen["old"] >= 1 and seen["new"] >= 1

    # corrupt and truncated files, written through the filesystem
    dev.data[:] = image
    mount(dev, kind)
    s = store()
    s.load()
    s.commit(NEW)  # mast.json = NEW, .bak = OLD
    text = json.dumps(NEW)
    for junk in (text[: len(text) // 2], text[:-1], "", "\x00" * 64, "[1,2]"):
        f = open(MOUNT + "/" + CONFIG, "w")
        f.write(junk)
        f.close()
        cfg, src, warn = store().load()
        assert cfg == OLD and src == BAK, (kind, junk[:20], cfg, src)
    f = open(MOUNT + "/" + TMP, "w")
    f.write(text[:10])  # a torn temp file next to a good mast.json
    f.close()
    s = store()
    s.load()
    s.commit(NEW)
    assert store().load() == (NEW, CONFIG, None)
    umount()
    print("%s: corrupt and truncated mast.json fell back to mast.json.bak" % kind)
    image = None  # (the heap: one image at a time)
    m = boot_counter_cuts(dev, kind)
    print("OK %s %d cuts" % (kind, n + 1 + m))


def boot_counter_cuts(dev, kind):
    """The boot-loop counter (mast.boots) from 2 to 3, cut at every block write: it reads 2
    or 3 after, never 0 (FAT's rename removes the old file first: a cut can fall between)."""
    dev.limit = None
    if kind == "lfs2":
        vfs.VfsLfs2.mkfs(dev)
    else:
        vfs.VfsFat.mkfs(dev)
    mount(dev, kind)
    store().set_boot_count(2)
    umount()
    image = bytes(dev.data)
    mount(dev, kind)
    w0 = dev.writes
    store().set_boot_count(3)
    umount()
    n = dev.writes - w0
    for k in range(n + 1):
        dev.data[:] = image
        dev.limit = None
        mount(dev, kind)
        s = store()
        dev.limit = dev.writes + k
        try:
            s.set_boot_count(3)
        except OSError:
            pass
        umount()
        dev.limit = None
        mount(dev, kind)
        got = store().boot_count()
        umount()
        assert got in (2, 3), "%s: boot counter cut after %d of %d writes reads %r" % (kind, k, n, got)
    print("%s: the boot counter, cut at each of its %d block writes, read 2 or 3" % (kind, n))
    return n + 1


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "lfs2")
