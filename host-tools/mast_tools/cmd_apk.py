"""`mast apk`: build the OpenWrt package of mastd for apk (OpenWrt 25.12) without the SDK.

The same package the SDK builds with CONFIG_USE_APK from openwrt-package/mast/Makefile
(include/package-pack.mk): the install tree of openwrt_pkg, plus what the SDK adds for apk under
/lib/apk/packages/ (<name>.list, .conffiles, .conffiles_static), the fields it hands
`apk mkpkg` (name, version <version>-r<release>, one-line description, arch noarch for
PKGARCH:=all, license, origin, url, maintainer, depends) and its scripts (post-install,
post-upgrade with PKG_UPGRADE=1, pre-deinstall). The container is written by apk_v3. The
package is unsigned: `apk add --allow-untrusted` installs it.
"""

import hashlib
import os

from mast_tools import apk_v3, openwrt_pkg
from mast_tools.cmd_ipk import add_build_args
from mast_tools.openwrt_pkg import OPENWRT_PYTHON
from mast_tools.output import emit, log

EXAMPLE = """\
example:
  mast apk                      # -> dist/mast-<version>-r<release>.apk
  mast apk --out /tmp/pkgs --json
  mast apk --python python3.13  # byte-compile with the target's Python version
then on the router (OpenWrt 25.12):
  scp dist/mast-*.apk root@192.168.1.1:/tmp/ && ssh root@192.168.1.1 apk add --allow-untrusted /tmp/mast-*.apk
"""
TARGET = "25.12"


def package_dirs(tree):
    """[(dir, mode, [(file name, bytes, mode)])]: every directory, the root first, then sorted
    (as `apk mkpkg` walks the tree), each with its files sorted by name."""
    by_dir = {d: [] for d in openwrt_pkg.directories(tree)}
    for path in tree:
        d, _, name = path.rpartition("/")
        by_dir[d].append((name, tree[path][0], tree[path][1]))
    return [(d, 0o755, sorted(by_dir[d], key=lambda f: f[0].encode()))
            for d in sorted(by_dir, key=lambda s: s.encode())]


def apk_info(info):
    return {"name": info["name"], "version": "%s-r%s" % (info["version"], info["release"]),
            "description": openwrt_pkg.description_line(info),
            "arch": "noarch" if info["arch"] == "all" else info["arch"],
            "license": info["license"], "origin": info["source"], "maintainer": info["maintainer"],
            "url": info["url"], "depends": info["depends"]}


def build(out_dir, pkg_dir=openwrt_pkg.PACKAGE_DIR, firmware=openwrt_pkg.FIRMWARE, epoch=None,
          python=None, bytecode=True):
    """Write the .apk into out_dir; returns a summary dict (path, size, sha256, files, bytecode)."""
    mtime = openwrt_pkg.source_epoch() if epoch is None else epoch
    info, tree, note = openwrt_pkg.build_tree(OPENWRT_PYTHON[TARGET], pkg_dir, firmware, python, bytecode, mtime)
    tree.update(openwrt_pkg.apk_metadata_files(info, tree))
    meta = apk_info(info)
    data, facts = apk_v3.build_package(meta, package_dirs(tree), openwrt_pkg.apk_scripts(info), mtime)
    path = os.path.join(out_dir, "%s-%s.apk" % (meta["name"], meta["version"]))
    openwrt_pkg.write_atomic(path, data)
    return {"path": path, "size": len(data), "sha256": hashlib.sha256(data).hexdigest(),
            "package": meta["name"], "version": meta["version"], "files": len(tree),
            "installed_size": facts["installed_size"], "unique_id": facts["unique_id"],
            "target": "OpenWrt %s" % TARGET, "signed": False,
            "bytecode": note["bytecode"], "bytecode_note": note["why"]}


def argparse_apk(p):
    p.epilog = EXAMPLE
    add_build_args(p, ".apk")


def do_apk(args):
    r = build(args.out, python=args.python, bytecode=not args.no_bytecode)
    if r["bytecode"] is None:
        log("mast apk: note: %s" % r["bytecode_note"])
    emit(args, r, "%s (%d bytes, %d files, unsigned: apk add --allow-untrusted; sha256 %s)"
         % (r["path"], r["size"], r["files"], r["sha256"]))

COMMAND = (do_apk, argparse_apk, "build the OpenWrt 25.12 package of mastd (dist/mast-*.apk, apk v3)")
