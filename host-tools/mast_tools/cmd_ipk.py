"""`mast ipk`: build the OpenWrt package of mastd without the OpenWrt SDK.

The package's fields, conffiles and maintainer scripts are read from the SDK Makefile
(openwrt-package/mast/Makefile), its router files from openwrt-package/mast/files/, and the
daemon with the core from firmware/{mast,runtime,mastd}: the same files the SDK would install.

The format is what opkg (opkg-lede, OpenWrt 24.10 and older) reads:
- the .ipk is a gzip-compressed tar (not an `ar` archive) holding ./debian-binary ("2.0\\n"),
  ./control.tar.gz and ./data.tar.gz;
- every tar is GNU format: opkg does not understand PAX headers (it prints "Unknown typeflag",
  exits 0 and installs nothing), and Python writes PAX for float mtimes, so every member here
  gets a whole-number mtime;
- owner 0:0, one fixed mtime (SOURCE_DATE_EPOCH, else the last commit's time), members sorted
  and gzip headers without name or time: the same sources give the same bytes.
"""

import gzip
import hashlib
import io
import os
import re
import subprocess
import tarfile

from mast_tools.errors import CommandError
from mast_tools.output import emit

EXAMPLE = """\
example:
  mast ipk                      # -> dist/mast_<version>-<release>_all.ipk
  mast ipk --out /tmp/pkgs --json
then on the router:
  scp dist/mast_*_all.ipk root@192.168.1.1:/tmp/ && ssh root@192.168.1.1 opkg install /tmp/mast_*_all.ipk
"""

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PACKAGE_DIR = os.path.join(ROOT, "openwrt-package", "mast")
FIRMWARE = os.path.join(ROOT, "firmware")
# firmware/<name>/*.py -> /usr/lib/mast/<name>/ (the daemon, the core it runs, the runtime driver)
LIB_PACKAGES = ("mast", "runtime", "mastd", "presence")
LIB_DIR = "usr/lib/mast"
DEFAULT_EPOCH = 1700000000  # when neither SOURCE_DATE_EPOCH nor git gives a time


def parse_sdk_makefile(text):
    """{"vars": {PKG_NAME: ...}, "defines": {"Package/mast": text, ...}} from an OpenWrt
    package Makefile: its `NAME:=value` lines and `define NAME ... endef` blocks, with make's
    `$$` written back as `$`."""
    out = {"vars": {}, "defines": {}}
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        m = re.match(r"^define\s+(\S+)\s*$", line)
        if m:
            body = []
            i += 1
            while i < len(lines) and lines[i].strip() != "endef":
                body.append(lines[i])
                i += 1
            out["defines"][m.group(1)] = "\n".join(body).replace("$$", "$")
        else:
            m = re.match(r"^([A-Z_]+)\s*:?=\s*(.*)$", line)
            if m:
                out["vars"][m.group(1)] = m.group(2).strip()
        i += 1
    return out


def package_info(pkg_dir=PACKAGE_DIR):
    """The package's metadata from its SDK Makefile."""
    path = os.path.join(pkg_dir, "Makefile")
    try:
        with open(path) as f:
            mk = parse_sdk_makefile(f.read())
    except OSError as e:
        raise CommandError("cannot read %s (%s)" % (path, e.strerror), "run it from a MAST checkout")
    v, d = mk["vars"], mk["defines"]
    name = v.get("PKG_NAME")
    pkg = {}
    for line in d.get("Package/%s" % name, "").splitlines():
        m = re.match(r"^\s*([A-Z_]+)\s*:=\s*(.*)$", line)
        if m:
            pkg[m.group(1)] = m.group(2).strip()
    missing = [k for k in ("PKG_NAME", "PKG_VERSION", "PKG_RELEASE", "PKG_LICENSE", "PKG_MAINTAINER")
               if not v.get(k)] + [k for k in ("SECTION", "DEPENDS", "PKGARCH", "TITLE") if not pkg.get(k)]
    if missing:
        raise CommandError("%s lacks %s" % (path, ", ".join(missing)), "add them to the Makefile")
    depends = ["libc"] + [w.lstrip("+") for w in pkg["DEPENDS"].split() if w.startswith("+")]
    return {
        "name": name, "version": v["PKG_VERSION"], "release": v["PKG_RELEASE"],
        "license": v["PKG_LICENSE"], "maintainer": v["PKG_MAINTAINER"], "section": pkg["SECTION"],
        "arch": pkg["PKGARCH"], "title": pkg["TITLE"], "depends": depends,
        "description": d.get("Package/%s/description" % name, "").strip(),
        "conffiles": [c.strip() for c in d.get("Package/%s/conffiles" % name, "").splitlines() if c.strip()],
        "postinst": d.get("Package/%s/postinst" % name, "").strip() + "\n",
        "prerm": d.get("Package/%s/prerm" % name, "").strip() + "\n",
    }


def data_files(pkg_dir=PACKAGE_DIR, firmware=FIRMWARE):
    """[(path in the package without "./", source file)] sorted: files/ as it is, and the
    Python sources under usr/lib/mast."""
    out = []
    files = os.path.join(pkg_dir, "files")
    for dirpath, dirnames, filenames in os.walk(files):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
        for fn in filenames:
            src = os.path.join(dirpath, fn)
            out.append((os.path.relpath(src, files).replace(os.sep, "/"), src))
    for pkg in LIB_PACKAGES:
        d = os.path.join(firmware, pkg)
        if not os.path.isdir(d):
            raise CommandError("%s is missing" % d, "run it from a complete MAST checkout")
        for fn in sorted(os.listdir(d)):
            if fn.endswith(".py"):
                out.append(("%s/%s/%s" % (LIB_DIR, pkg, fn), os.path.join(d, fn)))
    return sorted(out)


def source_epoch(root=ROOT):
    env = os.environ.get("SOURCE_DATE_EPOCH")
    if env and env.isdigit():
        return int(env)
    try:
        r = subprocess.run(["git", "-C", root, "log", "-1", "--format=%ct"], stdout=subprocess.PIPE,
                           stderr=subprocess.DEVNULL, universal_newlines=True, timeout=10)
        if r.returncode == 0 and r.stdout.strip().isdigit():
            return int(r.stdout.strip())
    except (OSError, subprocess.SubprocessError):
        pass
    return DEFAULT_EPOCH


def _tar_gz(members, mtime):
    """A gzip-compressed GNU tar of members [(name, bytes or None for a directory, mode)],
    in the order given, with ./-prefixed names, owner 0:0 and one whole-number mtime."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for name, data, mode in members:
            ti = tarfile.TarInfo("./" + name if name else ".")
            if name == "":
                ti.name = "./"
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


def _with_dirs(files):
    """Members for the data tar: "./" and every parent directory before its files."""
    members, seen = [("", None, 0o755)], set()
    for path, data, mode in files:
        parts = path.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            d = "/".join(parts[:i]) + "/"
            if d not in seen:
                seen.add(d)
                members.append((d, None, 0o755))
        members.append((path, data, mode))
    return members


def control_text(info, installed_size):
    desc = info["description"].splitlines() or [info["title"]]
    lines = [
        "Package: %s" % info["name"],
        "Version: %s-%s" % (info["version"], info["release"]),
        "Depends: %s" % ", ".join(info["depends"]),
        "Source: openwrt-package/%s" % info["name"],
        "SourceName: %s" % info["name"],
        "License: %s" % info["license"],
        "Section: %s" % info["section"],
        "Maintainer: %s" % info["maintainer"],
        "Architecture: %s" % info["arch"],
        "Installed-Size: %d" % installed_size,
        "Description: %s" % info["title"],
    ]
    lines += [" " + (d.strip() or ".") for d in desc]
    return "\n".join(lines) + "\n"


def build(out_dir, pkg_dir=PACKAGE_DIR, firmware=FIRMWARE, epoch=None):
    """Write the .ipk into out_dir; returns a summary dict (path, size, sha256, files)."""
    info = package_info(pkg_dir)
    mtime = source_epoch() if epoch is None else epoch
    files = []
    for path, src in data_files(pkg_dir, firmware):
        with open(src, "rb") as f:
            data = f.read()
        if "/" + path in info["conffiles"]:
            mode = 0o600  # INSTALL_CONF: it may hold pre-shared keys
        elif os.stat(src).st_mode & 0o111:
            mode = 0o755
        else:
            mode = 0o644
        files.append((path, data, mode))
    for c in info["conffiles"]:
        if c.lstrip("/") not in [p for p, _, _ in files]:
            raise CommandError("conffile %s is not among the package's files" % c,
                               "add it under openwrt-package/mast/files")
    data_tgz = _tar_gz(_with_dirs(files), mtime)
    installed = sum(len(d) for _, d, _ in files)
    control = [("control", control_text(info, installed).encode(), 0o644)]
    control.append(("conffiles", "".join(c + "\n" for c in info["conffiles"]).encode(), 0o644))
    for script in ("postinst", "prerm"):
        if info[script].strip():
            control.append((script, info[script].encode(), 0o755))
    control_tgz = _tar_gz([("", None, 0o755)] + control, mtime)
    outer = _tar_gz([("debian-binary", b"2.0\n", 0o644), ("control.tar.gz", control_tgz, 0o644),
                     ("data.tar.gz", data_tgz, 0o644)], mtime)
    name = "%s_%s-%s_%s.ipk" % (info["name"], info["version"], info["release"], info["arch"])
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, name)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(outer)
    os.replace(tmp, path)
    return {"path": path, "size": len(outer), "sha256": hashlib.sha256(outer).hexdigest(),
            "package": info["name"], "version": "%s-%s" % (info["version"], info["release"]),
            "files": len(files), "installed_size": installed}


def argparse_ipk(p):
    p.epilog = EXAMPLE
    p.add_argument("--out", metavar="DIR", default=os.path.join(ROOT, "dist"),
                   help="where to write the .ipk (default: dist/ in the checkout)")


def do_ipk(args):
    r = build(args.out)
    emit(args, r, "%s (%d bytes, %d files, sha256 %s)" % (r["path"], r["size"], r["files"], r["sha256"]))
