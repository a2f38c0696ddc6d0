"""`mast ipk`: build the OpenWrt package of mastd for opkg (OpenWrt 24.10 and older) without the
SDK. What goes in it, and its maintainer scripts, come from openwrt-package/mast/Makefile
through openwrt_pkg (the same list the SDK installs); this module writes opkg's format:

- the .ipk is a gzip-compressed tar (not an `ar` archive) holding ./debian-binary ("2.0\\n"),
  ./control.tar.gz and ./data.tar.gz;
- every tar is GNU format: opkg does not understand PAX headers (it prints "Unknown typeflag",
  exits 0 and installs nothing), and Python writes PAX for float mtimes, so every member here
  gets a whole-number mtime;
- owner 0:0, one fixed mtime (SOURCE_DATE_EPOCH, else the last commit's time), members sorted
  and gzip headers without name or time: the same sources give the same bytes;
- control.tar.gz: control (the fields the SDK writes, in its order), conffiles, and the SDK's
  standard postinst/prerm (default_postinst/default_prerm).
"""

import gzip
import hashlib
import io
import os
import tarfile

from mast_tools import openwrt_pkg
from mast_tools.openwrt_pkg import OPENWRT_PYTHON, ROOT
from mast_tools.output import emit, log

EXAMPLE = """\
example:
  mast ipk                      # -> dist/mast_<version>-<release>_all.ipk
  mast ipk --out /tmp/pkgs --json
  mast ipk --python python3.11  # byte-compile with that interpreter (the target's version)
then on the router (OpenWrt 24.10 and older):
  scp dist/mast_*_all.ipk root@192.168.1.1:/tmp/ && ssh root@192.168.1.1 opkg install /tmp/mast_*_all.ipk
"""
TARGET = "24.10"


def _tar_gz(members, mtime):
    """A gzip-compressed GNU tar of members [(name, bytes or None for a directory, mode)],
    in the order given, with ./-prefixed names, owner 0:0 and one whole-number mtime."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for name, data, mode in members:
            ti = tarfile.TarInfo("./" + name if name else "./")
            ti.mtime = int(mtime)
            ti.uid = ti.gid = 0
            ti.uname = ti.gname = "root"
            ti.mode = mode
            if data is None:
                ti.type = tarfile.DIRTYPE
                tar.addfile(ti)
            else:
                ti.size = len(data)
                tar.addfile(ti, io.BytesIO(data))
    return _gzip(raw.getvalue())


def _gzip(data):
    out = io.BytesIO()
    with gzip.GzipFile(filename="", fileobj=out, mode="wb", compresslevel=9, mtime=0) as g:
        g.write(data)
    return out.getvalue()


def _with_dirs(tree):
    """Members for the data tar: "./", then every directory before the files in it."""
    members = [("", None, 0o755)]
    for d in openwrt_pkg.directories(tree)[1:]:
        members.append((d + "/", None, 0o755))
    members += [(p, tree[p][0], tree[p][1]) for p in sorted(tree)]
    members.sort(key=lambda m: m[0].rstrip("/"))
    return members


def control_text(info, installed_size, epoch):
    """The control file as include/package-pack.mk writes it (fields in its order)."""
    lines = [
        "Package: %s" % info["name"],
        "Version: %s-%s" % (info["version"], info["release"]),
        "Depends: %s" % ", ".join(info["depends"]),
        "Source: %s" % info["source"],
        "SourceName: %s" % info["name"],
        "License: %s" % info["license"],
    ]
    if info["license_files"]:
        lines.append("LicenseFiles: %s" % info["license_files"])
    lines += [
        "Section: %s" % info["section"],
        "SourceDateEpoch: %d" % epoch,
        "URL: %s" % info["url"],
        "Maintainer: %s" % info["maintainer"],
        "Architecture: %s" % info["arch"],
        "Installed-Size: %d" % installed_size,
        "Description: %s" % info["title"],
    ]
    desc = info["description"].splitlines()
    lines += [" " + (d.strip() or ".") for d in desc]
    return "\n".join(lines) + "\n"


def build(out_dir, pkg_dir=openwrt_pkg.PACKAGE_DIR, firmware=openwrt_pkg.FIRMWARE, epoch=None,
          python=None, bytecode=True):
    """Write the .ipk into out_dir; returns a summary dict (path, size, sha256, files, bytecode)."""
    mtime = openwrt_pkg.source_epoch() if epoch is None else epoch
    info, tree, note = openwrt_pkg.build_tree(OPENWRT_PYTHON[TARGET], pkg_dir, firmware, python, bytecode, mtime)
    data_tgz = _tar_gz(_with_dirs(tree), mtime)
    installed = sum(len(d) for d, _ in tree.values())
    control = [("control", control_text(info, installed, mtime).encode(), 0o644),
               ("conffiles", "".join(c + "\n" for c in info["conffiles"]).encode(), 0o644)]
    for name, text in sorted(openwrt_pkg.ipk_scripts(info).items()):
        control.append((name, text.encode(), 0o755))
    control_tgz = _tar_gz([("", None, 0o755)] + control, mtime)
    outer = _tar_gz([("debian-binary", b"2.0\n", 0o644), ("control.tar.gz", control_tgz, 0o644),
                     ("data.tar.gz", data_tgz, 0o644)], mtime)
    name = "%s_%s-%s_%s.ipk" % (info["name"], info["version"], info["release"], info["arch"])
    path = os.path.join(out_dir, name)
    openwrt_pkg.write_atomic(path, outer)
    return {"path": path, "size": len(outer), "sha256": hashlib.sha256(outer).hexdigest(),
            "package": info["name"], "version": "%s-%s" % (info["version"], info["release"]),
            "files": len(tree), "installed_size": installed, "target": "OpenWrt %s and older" % TARGET,
            "bytecode": note["bytecode"], "bytecode_note": note["why"]}


def add_build_args(p, what):
    p.add_argument("--out", metavar="DIR", default=os.path.join(ROOT, "dist"),
                   help="where to write the %s (default: dist/ in the checkout)" % what)
    p.add_argument("--python", metavar="PYTHON",
                   help="the interpreter that byte-compiles the modules (default: this one); "
                        "the .pyc are shipped only if it is the target's Python version")
    p.add_argument("--no-bytecode", action="store_true", help="ship the .py sources, no .pyc")


def argparse_ipk(p):
    p.epilog = EXAMPLE
    add_build_args(p, ".ipk")


def do_ipk(args):
    r = build(args.out, python=args.python, bytecode=not args.no_bytecode)
    if r["bytecode"] is None:
        log("mast ipk: note: %s" % r["bytecode_note"])
    emit(args, r, "%s (%d bytes, %d files, sha256 %s)" % (r["path"], r["size"], r["files"], r["sha256"]))
