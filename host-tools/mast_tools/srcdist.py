"""`make dist`: the release tarball the OpenWrt package builds from (its PKG_SOURCE).

    python -m mast_tools.srcdist [--out DIR] [--json]

dist/mast-<version>.tar.gz holds mast-<version>/ with what openwrt-package/mast/Makefile installs
from its source: firmware/<folder>/*.py for each folder of MAST_PY_DIRS, and LICENSE (its
PKG_LICENSE_FILES). The layout is the checkout's, so the SDK also builds from a checkout
(USE_SOURCE_DIR). Reproducible: GNU tar, owner 0:0, one mtime (SOURCE_DATE_EPOCH, else the last
commit's time), sorted members, a gzip header without name or time. It prints the sha256 a
release pins as PKG_HASH.
"""

import argparse
import hashlib
import os
import sys

from mast_tools import openwrt_pkg
from mast_tools.cmd_ipk import _tar_gz
from mast_tools.errors import CommandError
from mast_tools.output import emit


def build(out_dir, pkg_dir=openwrt_pkg.PACKAGE_DIR, root=openwrt_pkg.ROOT, epoch=None):
    info = openwrt_pkg.package_info(pkg_dir)
    mtime = openwrt_pkg.source_epoch() if epoch is None else epoch
    files = {}
    for path, src in openwrt_pkg.python_sources(info, os.path.join(root, "firmware")):
        files["firmware/" + path[len(openwrt_pkg.LIB_DIR) + 1:]] = src
    for lic in info["license_files"].split():
        src = os.path.join(root, lic)
        if not os.path.isfile(src):
            raise CommandError("%s (PKG_LICENSE_FILES) is missing" % src, "add it to the checkout")
        files[lic] = src
    top = "%s-%s" % (info["name"], info["version"])
    members = [(top + "/", None, 0o755)]
    for d in openwrt_pkg.directories(files)[1:]:
        members.append(("%s/%s/" % (top, d), None, 0o755))
    for path in sorted(files):
        with open(files[path], "rb") as f:
            members.append(("%s/%s" % (top, path), f.read(), 0o644))
    members.sort(key=lambda m: m[0].rstrip("/"))
    data = _tar_gz(members, mtime)
    path = os.path.join(out_dir, "%s.tar.gz" % top)
    openwrt_pkg.write_atomic(path, data)
    sha = hashlib.sha256(data).hexdigest()
    return {"path": path, "size": len(data), "sha256": sha, "files": len(files),
            "pkg_hash_line": "PKG_HASH:=%s" % sha}


def main(argv=None):
    p = argparse.ArgumentParser(prog="mast-dist", description="Write the OpenWrt package's release tarball.")
    p.add_argument("--out", metavar="DIR", default=os.path.join(openwrt_pkg.ROOT, "dist"))
    p.add_argument("--json", action="store_true", help="print one JSON document")
    args = p.parse_args(argv)
    try:
        r = build(args.out)
    except CommandError as e:
        sys.stderr.write("mast: %s\n" % e)
        return 1
    emit(args, r, "%s (%d bytes, %d files)\nfor a release: %s" % (r["path"], r["size"], r["files"],
                                                                  r["pkg_hash_line"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
