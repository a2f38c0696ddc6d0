"""The OpenWrt package of mastd as the SDK builds it, without the SDK: shared by `mast ipk`
(opkg, OpenWrt 24.10 and older), `mast apk` (apk v3, OpenWrt 25.12) and `make dist`.

One list: everything comes from openwrt-package/mast/Makefile, the SDK's own file:
- the fields (PKG_*, the Package/mast block, its description and conffiles);
- MAST_PY_DIRS: the folders of firmware/ whose *.py go to /usr/lib/mast/<folder>/;
- the files under openwrt-package/mast/files/, installed where they sit, with the modes its
  install section gives them (INSTALL_CONF 0600 for conffiles, INSTALL_BIN 0755, else 0644);
- maintainer scripts: none of our own, so the SDK's standard ones (default_postinst /
  default_prerm from /lib/functions.sh), which this module writes the way include/package-pack.mk
  does; a Package/mast/postinst or prerm, if one is ever added, is kept as postinst-pkg /
  prerm-pkg (ipk) or appended to the apk scripts, as the SDK does.

Byte code: the SDK compiles the modules with its host Python, which is the target's version
(python3-package.mk's Python3/CompileAll: `compileall -b -d /`), and ships only the .pyc, as the
packages feed does. Without the SDK, a .pyc is only right for the Python version it was made by:
build_tree() compiles with the given interpreter when its version is the target's (OpenWrt 24.10:
3.11, 25.12: 3.13) and otherwise ships the .py sources (and says so).
"""

import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile

from mast_tools.atomic import write_atomic  # noqa: F401  (cmd_apk, cmd_ipk and srcdist use it from here)
from mast_tools.errors import CommandError

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PACKAGE_DIR = os.path.join(ROOT, "openwrt-package", "mast")
FIRMWARE = os.path.join(ROOT, "firmware")
LIB_DIR = "usr/lib/mast"
DEFAULT_EPOCH = 1700000000  # when neither SOURCE_DATE_EPOCH nor git gives a time
# The python3 of each OpenWrt release (packages feed, lang/python/python3-version.mk).
OPENWRT_PYTHON = {"24.10": "3.11", "25.12": "3.13"}
# The path the SDK gives the package in its tree with the documented feed (src-link mast ...):
# SOURCE in the control file, origin in the apk.
FEED_SOURCE = "feeds/mast/mast"


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
            m = re.match(r"^([A-Z0-9_]+)\s*\??:?=\s*(.*)$", line)
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
    missing = [k for k in ("PKG_NAME", "PKG_VERSION", "PKG_RELEASE", "PKG_LICENSE", "PKG_MAINTAINER",
                           "MAST_PY_DIRS") if not v.get(k)]
    missing += [k for k in ("SECTION", "DEPENDS", "PKGARCH", "TITLE", "URL") if not pkg.get(k)]
    if missing:
        raise CommandError("%s lacks %s" % (path, ", ".join(missing)), "add them to the Makefile")
    scripts = {}
    for script in ("preinst", "postinst", "prerm", "postrm"):
        text = d.get("Package/%s/%s" % (name, script), "").strip()
        if text:
            scripts[script] = text + "\n"
    return {
        "name": name, "version": v["PKG_VERSION"], "release": v["PKG_RELEASE"],
        "license": v["PKG_LICENSE"], "license_files": v.get("PKG_LICENSE_FILES", ""),
        "maintainer": v["PKG_MAINTAINER"], "section": pkg["SECTION"], "submenu": pkg.get("SUBMENU", ""),
        "arch": pkg["PKGARCH"], "title": pkg["TITLE"], "url": pkg["URL"],
        "depends": ["libc"] + [w.lstrip("+") for w in pkg["DEPENDS"].split() if w.startswith("+")],
        "description": d.get("Package/%s/description" % name, "").strip(),
        "conffiles": [c.strip() for c in d.get("Package/%s/conffiles" % name, "").splitlines() if c.strip()],
        "py_dirs": v["MAST_PY_DIRS"].split(),
        "scripts": scripts,
        "source": FEED_SOURCE,
    }


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


def python_sources(info, firmware=FIRMWARE):
    """[(path in the package, source file)] of every module the package installs."""
    out = []
    for pkg in info["py_dirs"]:
        d = os.path.join(firmware, pkg)
        if not os.path.isdir(d):
            raise CommandError("%s is missing" % d, "run it from a complete MAST checkout")
        for fn in sorted(os.listdir(d)):
            if fn.endswith(".py"):
                out.append(("%s/%s/%s" % (LIB_DIR, pkg, fn), os.path.join(d, fn)))
    return out


def router_files(pkg_dir=PACKAGE_DIR):
    """[(path in the package, source file)] of openwrt-package/mast/files/."""
    out = []
    files = os.path.join(pkg_dir, "files")
    for dirpath, dirnames, filenames in os.walk(files):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
        for fn in sorted(filenames):
            src = os.path.join(dirpath, fn)
            out.append((os.path.relpath(src, files).replace(os.sep, "/"), src))
    return out


_COMPILE = r"""
import json, py_compile, sys
jobs = json.loads(sys.stdin.read())
for src, out, dfile in jobs:
    py_compile.compile(src, cfile=out, dfile=dfile, doraise=True,
                       invalidation_mode=py_compile.PycInvalidationMode.CHECKED_HASH)
sys.stdout.write("%d.%d" % sys.version_info[:2])
"""


def python_version(python):
    """"3.11" for an interpreter, or a CommandError."""
    try:
        r = subprocess.run([python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, timeout=60)
    except OSError as e:
        raise CommandError("cannot run %s (%s)" % (python, e.strerror), "give --python a Python 3 interpreter")
    if r.returncode != 0:
        raise CommandError("%s failed: %s" % (python, r.stderr.strip()[-200:]), "give --python a Python 3 interpreter")
    return r.stdout.strip()


def compile_pyc(sources, python, epoch):
    """{path in the package: .pyc bytes} for [(path, source file)], compiled by `python` as the
    SDK does (`compileall -b -d /`: the .pyc beside where the .py was, the file names in
    tracebacks are the installed paths), reproducibly: hash-based .pyc (what py_compile writes
    when SOURCE_DATE_EPOCH is set) and PYTHONHASHSEED fixed to the epoch, as the feed does."""
    with tempfile.TemporaryDirectory(prefix="mast-pyc-") as tmp:
        jobs, outs = [], {}
        for i, (path, src) in enumerate(sources):
            out = os.path.join(tmp, "%d.pyc" % i)
            jobs.append([src, out, "/" + path])
            outs[path[:-3] + ".pyc"] = out
        env = dict(os.environ, PYTHONHASHSEED=str(epoch % 4294967296), SOURCE_DATE_EPOCH=str(epoch),
                   PYTHONDONTWRITEBYTECODE="1")
        try:
            r = subprocess.run([python, "-c", _COMPILE], input=json.dumps(jobs), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, universal_newlines=True, timeout=300, env=env)
        except OSError as e:
            raise CommandError("cannot run %s (%s)" % (python, e.strerror), "give --python a Python 3 interpreter")
        if r.returncode != 0:
            raise CommandError("byte-compiling failed: %s" % r.stderr.strip()[-400:],
                               "fix the syntax error it names, or build with --no-bytecode")
        got = {}
        for path, out in outs.items():
            with open(out, "rb") as f:
                got[path] = f.read()
        return got


def build_tree(target_python, pkg_dir=PACKAGE_DIR, firmware=FIRMWARE, python=None, bytecode=True, epoch=None):
    """What the SDK's Package/mast/install puts in the package: ({path: (bytes, mode)}, note).
    `note` says which byte code the tree carries: {"bytecode": "3.11" or None, "why": text}."""
    info = package_info(pkg_dir)
    epoch = source_epoch() if epoch is None else epoch
    tree = {}
    for path, src in router_files(pkg_dir):
        with open(src, "rb") as f:
            data = f.read()
        if "/" + path in info["conffiles"]:
            mode = 0o600  # INSTALL_CONF: it may hold pre-shared keys
        elif os.stat(src).st_mode & 0o111:
            mode = 0o755
        else:
            mode = 0o644
        tree[path] = (data, mode)
    for c in info["conffiles"]:
        if c.lstrip("/") not in tree:
            raise CommandError("conffile %s is not among the package's files" % c,
                               "add it under openwrt-package/mast/files")
    sources = python_sources(info, firmware)
    python = python or sys.executable
    have = python_version(python) if bytecode else None
    if bytecode and have == target_python:
        for path, data in compile_pyc(sources, python, epoch).items():
            tree[path] = (data, 0o644)
        note = {"bytecode": have, "why": "compiled by %s (Python %s, the target's)" % (python, have)}
    else:
        for path, src in sources:
            with open(src, "rb") as f:
                tree[path] = (f.read(), 0o644)
        if not bytecode:
            why = "sources only (--no-bytecode)"
        else:
            why = ("sources only: %s is Python %s, the target's is %s (a .pyc only loads in the "
                   "version that made it); give --python a Python %s to ship .pyc"
                   % (python, have, target_python, target_python))
        note = {"bytecode": None, "why": why}
    return info, tree, note


def description_line(info):
    """The description as one line (what the SDK hands apk: `$(strip ...)` of the define)."""
    return " ".join(info["description"].split()) or info["title"]


# The SDK's maintainer scripts (include/package-pack.mk), word for word. ipk: postinst/prerm
# that source /lib/functions.sh and call default_postinst/default_prerm with the script's own
# path (opkg runs /usr/lib/opkg/info/<name>.postinst, so `$0` names the package).
IPK_POSTINST = """#!/bin/sh
[ "${IPKG_NO_SCRIPT}" = "1" ] && exit 0
[ -s ${IPKG_INSTROOT}/lib/functions.sh ] || exit 0
. ${IPKG_INSTROOT}/lib/functions.sh
default_postinst $0 $@
"""
IPK_PRERM = """#!/bin/sh
[ -s ${IPKG_INSTROOT}/lib/functions.sh ] || exit 0
. ${IPKG_INSTROOT}/lib/functions.sh
default_prerm $0 $@
"""


def ipk_scripts(info):
    """{name in control.tar.gz: text}: postinst, prerm, and the package's own as *-pkg."""
    out = {"postinst": IPK_POSTINST, "prerm": IPK_PRERM}
    own = info["scripts"]
    for script in ("preinst", "postrm"):
        if script in own:
            out[script] = own[script]
    for script in ("postinst", "prerm"):
        if script in own:
            out[script + "-pkg"] = own[script]
    return out


def _no_shebang(text):
    """The SDK appends a script without its `#!` lines (sed '/^\\s*#!/d')."""
    return "".join(line + "\n" for line in text.splitlines() if not re.match(r"^\s*#!", line))


def apk_scripts(info):
    """{apk script name: text}, mapped as include/package-pack.mk maps them for apk (25.12):
    post-install (default_postinst, then the package's postinst), post-upgrade (the same with
    PKG_UPGRADE=1, so an upgrade neither enables nor disables), pre-deinstall (default_prerm,
    then the package's prerm); pre-install/pre-upgrade only from a preinst, post-deinstall only
    from a postrm."""
    own = info["scripts"]
    name = info["name"]
    post_install = ("#!/bin/sh\n"
                    '[ "${IPKG_NO_SCRIPT}" = "1" ] && exit 0\n'
                    "[ -s ${IPKG_INSTROOT}/lib/functions.sh ] || exit 0\n"
                    ". ${IPKG_INSTROOT}/lib/functions.sh\n"
                    'export root="${IPKG_INSTROOT}"\n'
                    'export pkgname="%s"\n'
                    "add_group_and_user\n"
                    "default_postinst\n" % name) + _no_shebang(own.get("postinst", ""))
    out = {"post-install": post_install,
           "post-upgrade": "#!/bin/sh\nexport PKG_UPGRADE=1\n" + _no_shebang(post_install),
           "pre-deinstall": ("#!/bin/sh\n"
                             "[ -s ${IPKG_INSTROOT}/lib/functions.sh ] || exit 0\n"
                             ". ${IPKG_INSTROOT}/lib/functions.sh\n"
                             'export root="${IPKG_INSTROOT}"\n'
                             'export pkgname="%s"\n'
                             "default_prerm\n" % name) + _no_shebang(own.get("prerm", ""))}
    if "preinst" in own:
        out["pre-install"] = own["preinst"]
        out["pre-upgrade"] = "#!/bin/sh\nexport PKG_UPGRADE=1\n" + _no_shebang(own["preinst"])
    if "postrm" in own:
        out["post-deinstall"] = own["postrm"]
    return out


def apk_metadata_files(info, tree):
    """The files the SDK adds under /lib/apk/packages/ for apk (package-pack.mk): <name>.list
    (every file of the package, sorted), <name>.conffiles and <name>.conffiles_static (each
    conffile with the sha256 of the packaged one: sysupgrade tells an edited one by it)."""
    name = info["name"]
    base = "lib/apk/packages/%s" % name
    listing = "".join("/%s\n" % p for p in sorted(tree))
    out = {base + ".list": (listing.encode(), 0o644)}
    if info["conffiles"]:
        out[base + ".conffiles"] = ("".join(c + "\n" for c in info["conffiles"]).encode(), 0o644)
        static = ""
        for c in info["conffiles"]:
            data = tree.get(c.lstrip("/"))
            if data is not None:
                static += "%s %s\n" % (c, hashlib.sha256(data[0]).hexdigest())
        out[base + ".conffiles_static"] = (static.encode(), 0o644)
    return out


def directories(paths):
    """Every parent directory of the given file paths ("" is the root), sorted."""
    dirs = {""}
    for p in paths:
        parts = p.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            dirs.add("/".join(parts[:i]))
    return sorted(dirs)
