"""Writing an apk v3 package (apk-tools 3, OpenWrt 25.12) with the standard library.

The format, from apk-tools' apk-v3(5) and apk-package(5) and the schema in its adb.h/apk_adb.h:

- The file may be compressed: "ADBd" and a raw deflate stream of the uncompressed file (what
  `apk mkpkg` writes by default). Uncompressed, it starts with "ADB." and the schema's magic,
  "pckg" for a package (both 32-bit little-endian words).
- Then blocks. A block starts with a 32-bit little-endian word: 2 bits of type (0 ADB, 1 SIG,
  2 DATA) and 30 bits of size, the size counting this word and the payload; the next block starts
  at the next multiple of 8 (zero padding). One ADB block first, then SIG blocks (none here: an
  unsigned package), then DATA blocks.
- The ADB block's payload starts with a 4-byte header (compat version 0, version 0, 2 reserved
  bytes) and the root value; every offset below is from the start of this payload.
- A value is a 32-bit word: 4 bits of type and 28 bits of immediate or offset. 0x0 special
  (0 NULL), 0x1 int (the value itself, below 2**28), 0x2 int32 and 0x3 int64 (at an offset,
  4-aligned), 0x8/0x9/0xa blob with an 8/16/32-bit length before the bytes (aligned to the
  length's size), 0xd array and 0xe object: at a 4-aligned offset, a count word (1 + the number
  of slots that follow) and the slots. An object's slots are numbered by its schema; trailing
  NULL slots are left out. An empty blob is NULL.
- The package object: 1 info (pkginfo), 2 paths (array of directories), 3 scripts.
  pkginfo: 1 name, 2 version, 3 hashes (the package's unique id: the first 20 bytes of the
  sha256 of the ADB payload, computed with these 20 bytes zero), 4 description, 5 arch,
  6 license, 7 origin, 8 maintainer, 9 url, 12 installed-size, 15 depends (array of dependency
  objects: 1 name, 2 version, 3 match).
  directory: 1 name ("" is the root: NULL), 2 acl, 3 files. file: 1 name, 2 acl, 3 size,
  4 mtime, 5 hash (sha256 of the contents, 32 bytes). acl: 1 mode, 2 user, 3 group.
  scripts: 1 trigger, 2 pre-install, 3 post-install, 4 pre-deinstall, 5 post-deinstall,
  6 pre-upgrade, 7 post-upgrade.
- A DATA block per regular file with contents, in the order of the paths and their files: two
  32-bit words, the directory's and the file's index (from 1), then the file's bytes.
"""

import hashlib
import struct
import zlib

MAGIC = b"ADB."
COMPRESSED_DEFLATE = b"ADBd"
SCHEMA_PACKAGE = b"pckg"
BLOCK_ADB, BLOCK_SIG, BLOCK_DATA = 0, 1, 2
ALIGN = 8

T_SPECIAL, T_INT, T_INT32, T_INT64 = 0x0, 0x1, 0x2, 0x3
T_BLOB8, T_BLOB16, T_BLOB32, T_ARRAY, T_OBJECT = 0x8, 0x9, 0xA, 0xD, 0xE
NULL = 0

PKG_INFO, PKG_PATHS, PKG_SCRIPTS = 1, 2, 3
PI_NAME, PI_VERSION, PI_HASHES, PI_DESCRIPTION, PI_ARCH, PI_LICENSE, PI_ORIGIN = 1, 2, 3, 4, 5, 6, 7
PI_MAINTAINER, PI_URL, PI_INSTALLED_SIZE, PI_DEPENDS = 8, 9, 12, 15
DEP_NAME = 1
DI_NAME, DI_ACL, DI_FILES = 1, 2, 3
FI_NAME, FI_ACL, FI_SIZE, FI_MTIME, FI_HASH = 1, 2, 3, 4, 5
ACL_MODE, ACL_USER, ACL_GROUP = 1, 2, 3
SCRIPTS = ("trigger", "pre-install", "post-install", "pre-deinstall", "post-deinstall",
           "pre-upgrade", "post-upgrade")  # slot = index + 1
UNIQUE_ID_LEN = 20


def _val(kind, value):
    if not 0 <= value < (1 << 28):
        raise ValueError("adb value %d does not fit in 28 bits" % value)
    return (kind << 28) | value


class AdbWriter:
    """The payload of one ADB block, built bottom-up: write the values, then the root."""

    def __init__(self):
        self.buf = bytearray(8)  # header: compat 0, version 0, reserved, root (set by finish)

    def _put(self, data, align):
        pad = (-len(self.buf)) % align
        self.buf += bytes(pad)
        off = len(self.buf)
        self.buf += data
        return off

    def blob(self, data):
        if isinstance(data, str):
            data = data.encode()
        if not data:
            return NULL
        n = len(data)
        if n <= 0xFF:
            return _val(T_BLOB8, self._put(struct.pack("<B", n) + data, 1))
        if n <= 0xFFFF:
            return _val(T_BLOB16, self._put(struct.pack("<H", n) + data, 2))
        return _val(T_BLOB32, self._put(struct.pack("<I", n) + data, 4))

    def int(self, n):
        if n < (1 << 28):
            return _val(T_INT, n)
        if n < (1 << 32):
            return _val(T_INT32, self._put(struct.pack("<I", n), 4))
        return _val(T_INT64, self._put(struct.pack("<Q", n), 4))

    def _slots(self, kind, slots):
        while slots and slots[-1] == NULL:
            slots = slots[:-1]
        if not slots:
            return NULL
        return _val(kind, self._put(struct.pack("<%dI" % (len(slots) + 1), len(slots) + 1, *slots), 4))

    def object(self, fields):
        """fields: {slot number (from 1): value}."""
        slots = [NULL] * max(fields or [0])
        for i, v in fields.items():
            slots[i - 1] = v
        return self._slots(T_OBJECT, slots)

    def array(self, items):
        return self._slots(T_ARRAY, [v for v in items if v != NULL])

    def finish(self, root):
        struct.pack_into("<BBHI", self.buf, 0, 0, 0, 0, root)
        return bytes(self.buf)


def block(kind, payload):
    size = 4 + len(payload)
    if size > 0x3FFFFFFF:
        raise ValueError("block of %d bytes is too large for a plain block" % size)
    return struct.pack("<I", (kind << 30) | size) + payload + bytes((-size) % ALIGN)


def build_package(info, dirs, scripts, mtime):
    """The bytes of an .apk.

    info: {"name", "version", "description", "arch", "license", "origin", "maintainer", "url",
           "depends": [names]}
    dirs: [(dir name, mode, [(file name, bytes, mode)])] in package order (the root "" first)
    scripts: {"post-install": text, ...}
    """
    w = AdbWriter()
    installed = 0
    paths = []
    for dname, dmode, files in dirs:
        fvals = []
        for fname, data, fmode in files:
            installed += len(data)
            acl = w.object({ACL_MODE: w.int(fmode), ACL_USER: w.blob("root"), ACL_GROUP: w.blob("root")})
            fvals.append(w.object({FI_NAME: w.blob(fname), FI_ACL: acl, FI_SIZE: w.int(len(data)),
                                   FI_MTIME: w.int(mtime), FI_HASH: w.blob(hashlib.sha256(data).digest())}))
        acl = w.object({ACL_MODE: w.int(dmode), ACL_USER: w.blob("root"), ACL_GROUP: w.blob("root")})
        paths.append(w.object({DI_NAME: w.blob(dname), DI_ACL: acl, DI_FILES: w.array(fvals)}))
    deps = [w.object({DEP_NAME: w.blob(d)}) for d in sorted(set(info["depends"]), key=lambda s: s.encode())]
    uid_at = w._put(struct.pack("<B", UNIQUE_ID_LEN) + bytes(UNIQUE_ID_LEN), 1)
    pkginfo = w.object({
        PI_NAME: w.blob(info["name"]), PI_VERSION: w.blob(info["version"]),
        PI_HASHES: _val(T_BLOB8, uid_at), PI_DESCRIPTION: w.blob(info["description"]),
        PI_ARCH: w.blob(info["arch"]), PI_LICENSE: w.blob(info["license"]),
        PI_ORIGIN: w.blob(info["origin"]), PI_MAINTAINER: w.blob(info["maintainer"]),
        PI_URL: w.blob(info["url"]), PI_INSTALLED_SIZE: w.int(max(installed, 1)),
        PI_DEPENDS: w.array(deps)})
    svals = {}
    for i, name in enumerate(SCRIPTS):
        if scripts.get(name):
            svals[i + 1] = w.blob(scripts[name])
    unknown = set(scripts) - set(SCRIPTS)
    if unknown:
        raise ValueError("unknown apk script types: %s" % ", ".join(sorted(unknown)))
    root = w.object({PKG_INFO: pkginfo, PKG_PATHS: w.array(paths), PKG_SCRIPTS: w.object(svals)})
    adb = bytearray(w.finish(root))
    uid = hashlib.sha256(bytes(adb)).digest()[:UNIQUE_ID_LEN]
    adb[uid_at + 1:uid_at + 1 + UNIQUE_ID_LEN] = uid
    out = [MAGIC + SCHEMA_PACKAGE, block(BLOCK_ADB, bytes(adb))]
    for di, (_, _, files) in enumerate(dirs, 1):
        for fi, (_, data, _) in enumerate(files, 1):
            if data:
                out.append(block(BLOCK_DATA, struct.pack("<II", di, fi) + data))
    raw = b"".join(out)
    z = zlib.compressobj(9, zlib.DEFLATED, -15)
    return COMPRESSED_DEFLATE + z.compress(raw) + z.flush(), {"installed_size": max(installed, 1),
                                                              "unique_id": uid.hex()}
