"""The SDK Makefile (openwrt-package/mast/Makefile) and `make ipk` / `make apk` install the same
files: one list.

GNU make runs the real Makefile with a stand-in for the parts of the SDK it uses, written here
from what OpenWrt documents and does (not OpenWrt's code):
- rules.mk's install commands (INSTALL_DIR `install -d -m0755`, INSTALL_BIN `install -m0755`,
  INSTALL_DATA `install -m0644`, INSTALL_CONF `install -m0600`, FIND);
- package.mk's BuildPackage, which expands Package/<name>/install once when the package is
  defined and runs it as a recipe with the package's install root as $(1) (include/package-pack.mk
  does this), so `$$` escaping is exercised as in the SDK;
- the packages feed's python3-package.mk: Python3/CompileAll (`python -m compileall -r 20 -b -d /`
  on the install root, PYTHONHASHSEED from SOURCE_DATE_EPOCH) and Python3/DeleteSourceFiles.
PKG_BUILD_DIR is the release tarball `make dist` writes, unpacked: the source the SDK builds from.
"""

import io
import marshal
import os
import re
import subprocess
import sys
import tarfile

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from mast_tools import cmd_apk, cmd_ipk, srcdist

from test_apk import parse as parse_apk  # noqa: E402  (the independent apk reader)

PKG = os.path.join(ROOT, "openwrt-package", "mast")
EPOCH = 1750000000

RULES_MK = """\
INCLUDE_DIR:=$(TOPDIR)/include
INSTALL_DIR:=install -d -m0755
INSTALL_BIN:=install -m0755
INSTALL_DATA:=install -m0644
INSTALL_CONF:=install -m0600
CP:=cp -fpR
FIND:=find
"""

PACKAGE_MK = """\
PKG_BUILD_DIR ?= $(BUILD_DIR)/$(PKG_NAME)-$(PKG_VERSION)
define BuildPackage
install-$(1):
\trm -rf $$(IDIR) && mkdir -p $$(IDIR)
\t$(call Package/$(1)/install,$$(IDIR))
endef
"""

PYTHON3_PACKAGE_MK = """\
HOST_PYTHON3_BIN ?= python3
define Python3/CompileAll
\tcd "." && $(if $(SOURCE_DATE_EPOCH),PYTHONHASHSEED="$(SOURCE_DATE_EPOCH)") $(HOST_PYTHON3_BIN) -m compileall -q -r 20 -b -d '/' $(1)
endef
define Python3/DeleteSourceFiles
\t$(FIND) $(1) -type f -name '*.py' -delete
endef
"""


def have_make():
    try:
        return subprocess.run(["make", "--version"], capture_output=True, timeout=30).returncode == 0
    except OSError:
        return False


def read_tree(top):
    out = {}
    for dirpath, _, filenames in os.walk(top):
        for fn in filenames:
            p = os.path.join(dirpath, fn)
            with open(p, "rb") as f:
                out[os.path.relpath(p, top)] = (f.read(), os.stat(p).st_mode & 0o7777)
    return out


@pytest.fixture(scope="module")
def sdk_tree(tmp_path_factory):
    if not have_make():
        pytest.skip("GNU make is not installed: the SDK Makefile cannot be run")
    tmp = tmp_path_factory.mktemp("sdk")
    top = tmp / "topdir"
    (top / "include").mkdir(parents=True)
    (top / "rules.mk").write_text(RULES_MK)
    (top / "include" / "package.mk").write_text(PACKAGE_MK)
    py = top / "feeds" / "packages" / "lang" / "python"
    py.mkdir(parents=True)
    (py / "python3-package.mk").write_text(PYTHON3_PACKAGE_MK)
    dist = srcdist.build(str(tmp / "dl"), epoch=EPOCH)
    build = tmp / "build"
    build.mkdir()
    with tarfile.open(dist["path"]) as t:
        t.extractall(str(build))
    idir = tmp / "ipkg-all" / "mast"
    env = dict(os.environ, SOURCE_DATE_EPOCH=str(EPOCH), PYTHONDONTWRITEBYTECODE="1")
    env.pop("MAKEFLAGS", None)
    r = subprocess.run(["make", "--no-print-directory", "-C", PKG, "TOPDIR=%s" % top, "BUILD_DIR=%s" % build,
                        "IDIR=%s" % idir, "HOST_PYTHON3_BIN=%s" % sys.executable, "install-mast"],
                       capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    return dist, read_tree(str(idir))


def same_code(a, b):
    """Two .pyc of the same module: same header flags and the same code object."""
    return a[:8] == b[:8] and marshal.loads(a[16:]) == marshal.loads(b[16:])


def assert_same(sdk, ours):
    assert sorted(sdk) == sorted(ours)
    for path in sdk:
        (a, amode), (b, bmode) = sdk[path], ours[path]
        assert amode == bmode, path
        if path.endswith(".pyc"):
            assert same_code(a, b), path
        else:
            assert a == b, path


def test_the_sdk_makefile_installs_exactly_what_make_ipk_packages(sdk_tree, tmp_path, monkeypatch):
    _, sdk = sdk_tree
    # the stand-in SDK compiles with this Python; so does make ipk when it is 24.10's (3.11, here)
    monkeypatch.setitem(cmd_ipk.OPENWRT_PYTHON, cmd_ipk.TARGET, "%d.%d" % sys.version_info[:2])
    r = cmd_ipk.build(str(tmp_path), epoch=EPOCH, python=sys.executable)
    with tarfile.open(r["path"]) as outer:
        data = outer.extractfile("./data.tar.gz").read()
    ours = {}
    with tarfile.open(fileobj=io.BytesIO(data)) as t:
        for m in t.getmembers():
            if m.isfile():
                ours[m.name[2:]] = (t.extractfile(m).read(), m.mode)
    assert r["bytecode"] == "%d.%d" % sys.version_info[:2]
    assert_same(sdk, ours)
    assert "usr/lib/mast/presence/server.pyc" in sdk  # presence is installed (mastd --presence-config)


def test_the_sdk_makefile_installs_what_make_apk_packages_beside_the_sdks_apk_files(sdk_tree, tmp_path, monkeypatch):
    _, sdk = sdk_tree
    # make apk compiles only for 25.12's Python (3.13); compare like with like: compile for ours
    monkeypatch.setitem(cmd_apk.OPENWRT_PYTHON, cmd_apk.TARGET, "%d.%d" % sys.version_info[:2])
    r = cmd_apk.build(str(tmp_path), epoch=EPOCH, python=sys.executable)
    with open(r["path"], "rb") as f:
        p = parse_apk(f.read())
    ours = {}
    for d, _, files in p["paths"]:
        for name, acl, _, _, _ in files:
            path = (d + "/" if d else "") + name
            ours[path] = (p["contents"].get(path, b""), acl[0])
    extra = {k for k in ours if k.startswith("lib/apk/packages/")}
    assert extra == {"lib/apk/packages/mast.list", "lib/apk/packages/mast.conffiles",
                     "lib/apk/packages/mast.conffiles_static"}  # what package-pack.mk adds for apk
    assert_same(sdk, {k: v for k, v in ours.items() if k not in extra})


def test_the_package_builds_from_its_folder_and_its_release_tarball(sdk_tree):
    dist, _ = sdk_tree
    mk = open(os.path.join(PKG, "Makefile")).read()
    assert "../" not in mk, "a feed package cannot reach outside its folder"
    assert re.search(r"^PKG_SOURCE:=\$\(PKG_NAME\)-\$\(PKG_VERSION\)\.tar\.gz$", mk, re.M)
    with tarfile.open(dist["path"]) as t:
        names = [n.lstrip("./") for n in t.getnames()]
    lic = re.search(r"^PKG_LICENSE_FILES:=(.*)$", mk, re.M).group(1).split()
    assert lic and all("mast-0.1.0/" + f in names for f in lic)
    for d in re.search(r"^MAST_PY_DIRS:=(.*)$", mk, re.M).group(1).split():
        for fn in os.listdir(os.path.join(ROOT, "firmware", d)):
            if fn.endswith(".py"):
                assert "mast-0.1.0/firmware/%s/%s" % (d, fn) in names


def test_the_makefile_has_the_fields_a_feed_package_needs():
    mk = open(os.path.join(PKG, "Makefile")).read()
    for field in ("PKG_LICENSE", "PKG_LICENSE_FILES", "PKG_MAINTAINER", "PKG_SOURCE", "PKG_HASH"):
        assert re.search(r"^%s:=\S" % field, mk, re.M), field
    pkg = mk[mk.index("define Package/mast\n"):]
    pkg = pkg[:pkg.index("endef")]
    for field in ("SECTION:=net", "CATEGORY:=Network", "SUBMENU:=VPN", "URL:=https://", "PKGARCH:=all"):
        assert field in pkg, field
    assert re.search(r"^PKG_MAINTAINER:=[^<]+ <[^@ ]+@[^> ]+>$", mk, re.M)


def test_no_maintainer_scripts_of_our_own_as_packages_in_the_feed():
    mk = open(os.path.join(PKG, "Makefile")).read()
    for script in ("preinst", "postinst", "prerm", "postrm"):
        assert "define Package/mast/%s" % script not in mk, script


def test_mastd_from_the_sdk_build_serves_presence(sdk_tree, tmp_path):
    """What the SDK installs is enough for `mastd --presence-config` (it needs presence/)."""
    import base64
    import json

    _, sdk = sdk_tree
    root = tmp_path / "root"
    for path, (data, mode) in sdk.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_bytes(data)
        (root / path).chmod(mode)
    key = base64.b64encode(bytes(range(32))).decode()
    conf = root / "etc" / "config" / "mast"
    conf.write_text(re.sub(r"option psk '[^']*'", "option psk '%s'" % key, conf.read_text()))
    pconf = tmp_path / "presence.json"
    pconf.write_text(json.dumps({"names": {"board1.example": {"key": key}}}))
    r = subprocess.run([sys.executable, str(root / "usr/sbin/mastd"), "--check", "--config", str(conf),
                        "--presence-config", str(pconf)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "is valid" in r.stdout


def test_make_dist_prints_the_pkg_hash_of_the_very_tarball_it_wrote(tmp_path):
    # (a release pins PKG_HASH: a wrong one and the SDK refuses the tarball)
    import hashlib
    import json

    env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "host-tools"), SOURCE_DATE_EPOCH=str(EPOCH))
    r = subprocess.run([sys.executable, "-m", "mast_tools.srcdist", "--out", str(tmp_path), "--json"],
                       capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["path"] == str(tmp_path / "mast-0.1.0.tar.gz")
    with open(doc["path"], "rb") as f:
        data = f.read()
    sha = hashlib.sha256(data).hexdigest()
    assert (doc["sha256"], doc["size"], doc["pkg_hash_line"]) == (sha, len(data), "PKG_HASH:=" + sha)
    with tarfile.open(doc["path"]) as t:
        members = t.getmembers()
    assert doc["files"] == sum(1 for m in members if m.isfile())
    for m in members:
        assert (m.uid, m.gid, m.mtime) == (0, 0, EPOCH), m.name
        assert m.mode == (0o755 if m.isdir() else 0o644), m.name
    r = subprocess.run([sys.executable, "-m", "mast_tools.srcdist", "--out", str(tmp_path)],
                       capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 0 and r.stdout.endswith("\nfor a release: PKG_HASH:=%s\n" % sha)


def test_a_license_file_the_checkout_lacks_stops_make_dist(tmp_path):
    from mast_tools.errors import CommandError

    root = tmp_path / "checkout"
    root.mkdir()
    os.symlink(os.path.join(ROOT, "firmware"), str(root / "firmware"))  # no LICENSE beside it
    with pytest.raises(CommandError) as e:
        srcdist.build(str(tmp_path / "out"), root=str(root), epoch=EPOCH)
    assert e.value.what == "%s (PKG_LICENSE_FILES) is missing" % (root / "LICENSE")
    assert not (tmp_path / "out").exists()


def test_mastd_and_mastctl_run_from_a_package_of_sources_and_write_no_byte_code_beside_them(tmp_path):
    """A package that ships the .py (no target Python here): the commands leave /usr/lib/mast as
    installed (no __pycache__ the package manager does not know of) and mastctl is mastctl."""
    import base64

    r = cmd_apk.build(str(tmp_path / "out"), epoch=EPOCH, bytecode=False)
    with open(r["path"], "rb") as f:
        p = parse_apk(f.read())
    root = tmp_path / "root"
    for d, _, files in p["paths"]:
        for name, acl, _, _, _ in files:
            path = (d + "/" if d else "") + name
            (root / path).parent.mkdir(parents=True, exist_ok=True)
            (root / path).write_bytes(p["contents"].get(path, b""))
            (root / path).chmod(acl[0])
    assert (root / "usr/lib/mast/mastd/ctl.py").exists()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "PYTHONPATH")}
    sock = tmp_path / "no-mastd.sock"
    ctl = subprocess.run([sys.executable, str(root / "usr/sbin/mastctl"), "--control", str(sock), "status"],
                         capture_output=True, text=True, env=env, timeout=60)
    assert ctl.returncode == 1 and ctl.stdout == ""
    assert ctl.stderr.startswith("mastctl: cannot reach mastd at %s (" % sock), ctl.stderr
    conf = root / "etc" / "config" / "mast"
    conf.write_text(re.sub(r"option psk '[^']*'", "option psk '%s'" % base64.b64encode(bytes(32)).decode(),
                           conf.read_text()))
    d = subprocess.run([sys.executable, str(root / "usr/sbin/mastd"), "--check", "--config", str(conf)],
                       capture_output=True, text=True, env=env, timeout=60)
    assert d.returncode == 0 and "is valid" in d.stdout, d.stderr
    conf.write_text(conf.read_text().replace("option profile 'fast'", "option profile 'slowest'"))
    d = subprocess.run([sys.executable, str(root / "usr/sbin/mastd"), "--check", "--config", str(conf)],
                       capture_output=True, text=True, env=env, timeout=60)
    assert d.returncode == 1 and d.stdout == "" and "profile" in d.stderr, (d.returncode, d.stdout, d.stderr)
    assert [dp for dp, _, _ in os.walk(str(root)) if "__pycache__" in dp] == []
