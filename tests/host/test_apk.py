"""`mast apk` writes the OpenWrt 25.12 package in apk-tools' v3 format, read back here by a reader
of our own, written from the rules of apk-v3(5) and apk-package(5) and the field numbers of
apk-tools' schema (apk_adb.h), not from the writer: every block, every field, every file hash.

The rules the reader enforces:
- "ADBd" + raw deflate, inside "ADB." and the schema "pckg";
- blocks: a little-endian word of 2 type bits and 30 size bits (the word included), the next
  block at the next multiple of 8, zero padding; one ADB block, then SIG blocks, then DATA blocks;
- the ADB payload: compat version 0, then the root value at offset 4; values are 4-bit type +
  28 bits; int32/int64 4-aligned, blobs aligned to their length prefix, arrays and objects
  4-aligned with a count word that counts itself; every offset inside the payload;
- one DATA block per regular file with bytes, in path order, headed by its path and file index.
"""

import hashlib
import json
import os
import re
import struct
import subprocess
import sys
import zlib

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HOST_TOOLS = os.path.join(ROOT, "host-tools")
from mast_tools import cmd_apk

PKG = os.path.join(ROOT, "openwrt-package", "mast")
EPOCH = 1750000000


class Adb:
    """A checking reader of one ADB block payload."""

    def __init__(self, payload):
        self.p = payload
        assert len(payload) >= 8
        assert payload[0] == 0, "compat version must be 0"
        self.root = struct.unpack_from("<I", payload, 4)[0]

    def _at(self, off, size, align):
        assert off % align == 0, "misaligned value at %d" % off
        assert 8 <= off and off + size <= len(self.p), "value out of the block"
        return self.p[off:off + size]

    def kind(self, v):
        return v >> 28

    def int(self, v):
        t, x = v >> 28, v & 0x0FFFFFFF
        if t == 0x1:
            return x
        if t == 0x2:
            return struct.unpack("<I", self._at(x, 4, 4))[0]
        if t == 0x3:
            return struct.unpack("<Q", self._at(x, 8, 4))[0]
        raise AssertionError("not an int: %08x" % v)

    def blob(self, v):
        if v == 0:
            return None
        t, x = v >> 28, v & 0x0FFFFFFF
        width = {0x8: 1, 0x9: 2, 0xA: 4}[t]
        n = int.from_bytes(self._at(x, width, width), "little")
        assert n > 0, "an empty blob is written as NULL"
        assert x + width + n <= len(self.p)
        return self.p[x + width:x + width + n]

    def slots(self, v, kind):
        """{slot: value} of an object (kind 0xE) or array (0xD); NULL -> {}."""
        if v == 0:
            return {}
        assert v >> 28 == kind, "expected kind %x, got %08x" % (kind, v)
        x = v & 0x0FFFFFFF
        n = struct.unpack("<I", self._at(x, 4, 4))[0]
        assert n >= 2, "an object with no slot is written as NULL"
        vals = struct.unpack("<%dI" % n, self._at(x, 4 * n, 4))
        assert vals[-1] != 0, "trailing NULL slots must be left out"
        return {i: vals[i] for i in range(1, n) if vals[i] != 0}

    def obj(self, v):
        return self.slots(v, 0xE)

    def arr(self, v):
        s = self.slots(v, 0xD)
        assert all(x != 0 for x in s.values()), "arrays hold no NULL"
        return [s[i] for i in sorted(s)]

    def text(self, v):
        b = self.blob(v)
        return None if b is None else b.decode()


def read_apk(data):
    assert data[:4] == b"ADBd", "apk mkpkg's default: deflate"
    d = zlib.decompressobj(-15)
    raw = d.decompress(data[4:]) + d.flush()
    assert d.eof and not d.unused_data
    assert raw[:4] == b"ADB." and raw[4:8] == b"pckg"
    blocks, off = [], 8
    while off < len(raw):
        tag = struct.unpack_from("<I", raw, off)[0]
        kind, size = tag >> 30, tag & 0x3FFFFFFF
        assert kind != 3, "no extended blocks at this size"
        assert size >= 4 and off + size <= len(raw)
        blocks.append((kind, raw[off + 4:off + size]))
        end = off + (size + 7) // 8 * 8
        assert raw[off + size:end] == bytes(end - off - size), "padding must be zero"
        off = end
    assert off == len(raw)
    kinds = [k for k, _ in blocks]
    assert kinds[0] == 0 and kinds.count(0) == 1
    assert kinds == sorted(kinds), "ADB, then SIG, then DATA"
    return blocks


PI = {1: "name", 2: "version", 3: "hashes", 4: "description", 5: "arch", 6: "license", 7: "origin",
      8: "maintainer", 9: "url", 10: "repo-commit", 11: "build-time", 12: "installed-size",
      13: "file-size", 14: "provider-priority", 15: "depends", 16: "provides", 17: "replaces",
      18: "install-if", 19: "recommends", 20: "layer", 21: "tags"}
SCRIPTS = {1: "trigger", 2: "pre-install", 3: "post-install", 4: "pre-deinstall", 5: "post-deinstall",
           6: "pre-upgrade", 7: "post-upgrade"}


def parse(data):
    """The package as plain data: info, paths [(dir, acl, [(name, acl, size, mtime, hash)])],
    scripts, the files' bytes from the DATA blocks, and the ADB payload."""
    blocks = read_apk(data)
    adb = Adb(blocks[0][1])
    pkg = adb.obj(adb.root)
    assert set(pkg) <= {1, 2, 3, 4, 5}
    info = {}
    for slot, v in adb.obj(pkg[1]).items():
        name = PI[slot]
        if name in ("installed-size", "build-time", "file-size", "layer", "provider-priority"):
            info[name] = adb.int(v)
        elif name == "depends":
            deps = []
            for dv in adb.arr(v):
                dep = adb.obj(dv)
                assert set(dep) == {1}, "unversioned dependencies: a name only"
                deps.append(adb.text(dep[1]))
            info[name] = deps
        elif name == "hashes":
            info[name] = adb.blob(v)
        else:
            info[name] = adb.text(v)

    def acl(v):
        a = adb.obj(v)
        assert set(a) <= {1, 2, 3}
        return adb.int(a[1]), adb.text(a[2]), adb.text(a[3])

    paths = []
    for dv in adb.arr(pkg[2]):
        d = adb.obj(dv)
        files = []
        for fv in adb.arr(d[3]) if 3 in d else []:
            f = adb.obj(fv)
            assert 6 not in f, "no symlinks or devices"
            files.append((adb.text(f[1]), acl(f[2]), adb.int(f[3]) if 3 in f else 0, adb.int(f[4]), adb.blob(f[5])))
        paths.append((adb.text(d.get(1, 0)) or "", acl(d[2]), files))
    scripts = {SCRIPTS[s]: adb.text(v) for s, v in adb.obj(pkg.get(3, 0)).items()}
    contents, expect = {}, []
    for di, (dname, _, files) in enumerate(paths, 1):
        for fi, (fname, _, size, _, _) in enumerate(files, 1):
            if size:
                expect.append((di, fi, (dname + "/" if dname else "") + fname, size))
    data_blocks = [b for k, b in blocks if k == 2]
    assert len(data_blocks) == len(expect), "one DATA block per file with bytes"
    for (di, fi, path, size), b in zip(expect, data_blocks):
        assert struct.unpack_from("<II", b, 0) == (di, fi), path
        assert len(b) - 8 == size, path
        contents[path] = b[8:]
    return {"info": info, "paths": paths, "scripts": scripts, "contents": contents, "adb": blocks[0][1],
            "sig_blocks": sum(1 for k, _ in blocks if k == 1)}


def makefile_field(name):
    mk = open(os.path.join(PKG, "Makefile")).read()
    return re.search(r"^\s*%s\s*:=\s*(.*)$" % re.escape(name), mk, re.M).group(1).strip()


@pytest.fixture(scope="module")
def apk(tmp_path_factory):
    out = tmp_path_factory.mktemp("dist")
    summary = cmd_apk.build(str(out), epoch=EPOCH)
    with open(summary["path"], "rb") as f:
        data = f.read()
    return summary, data, parse(data)


def test_the_file_is_named_name_version_r_release_apk(apk):
    summary, _, _ = apk
    assert os.path.basename(summary["path"]) == "mast-%s-r%s.apk" % (
        makefile_field("PKG_VERSION"), makefile_field("PKG_RELEASE"))


def test_package_info_has_every_field_the_sdk_hands_apk_mkpkg(apk):
    _, _, p = apk
    info = p["info"]
    assert set(info) == {"name", "version", "hashes", "description", "arch", "license", "origin",
                         "maintainer", "url", "installed-size", "depends"}
    assert info["name"] == "mast"
    assert info["version"] == "%s-r%s" % (makefile_field("PKG_VERSION"), makefile_field("PKG_RELEASE"))
    assert info["arch"] == "noarch"  # PKGARCH:=all
    assert info["license"] == makefile_field("PKG_LICENSE")
    assert info["maintainer"] == makefile_field("PKG_MAINTAINER")
    assert info["url"] == makefile_field("URL")
    assert info["origin"] == "feeds/mast/mast"
    assert "\n" not in info["description"] and info["description"].startswith("mastd, the Multiple Address")
    sdk = [d.lstrip("+") for d in makefile_field("DEPENDS").split()]
    assert info["depends"] == sorted(["libc"] + sdk)  # apk keeps them sorted by name
    files = [f for _, _, fs in p["paths"] for f in fs]
    assert info["installed-size"] == sum(f[2] for f in files)


def test_the_unique_id_is_the_sha256_of_the_adb_block_with_the_id_zeroed(apk):
    _, _, p = apk
    uid = p["info"]["hashes"]
    assert len(uid) == 20
    adb = p["adb"]
    at = adb.index(uid)
    zeroed = adb[:at] + bytes(20) + adb[at + 20:]
    assert hashlib.sha256(zeroed).digest()[:20] == uid


def test_every_file_hash_size_mode_and_owner_matches_its_data(apk):
    _, _, p = apk
    seen = 0
    for dname, dacl, files in p["paths"]:
        assert dacl == (0o755, "root", "root"), dname
        for fname, (mode, user, group), size, mtime, digest in files:
            path = (dname + "/" if dname else "") + fname
            data = p["contents"].get(path, b"")
            assert len(data) == size, path
            assert digest == hashlib.sha256(data).digest(), path
            assert (user, group) == ("root", "root") and mtime == EPOCH, path
            seen += 1
    assert seen == len([1 for _, _, fs in p["paths"] for _ in fs]) and seen > 20


def tree(p):
    return {((d + "/" if d else "") + f[0]): (p["contents"].get((d + "/" if d else "") + f[0], b""), f[1][0])
            for d, _, fs in p["paths"] for f in fs}


def test_paths_list_every_directory_root_first_and_sorted_with_files_sorted(apk):
    _, _, p = apk
    names = [d for d, _, _ in p["paths"]]
    assert names[0] == "" and names == sorted(names)
    files = tree(p)
    for path in files:
        parts = path.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            assert "/".join(parts[:i]) in names, path
    for _, _, fs in p["paths"]:
        assert [f[0] for f in fs] == sorted(f[0] for f in fs)


def test_the_package_holds_the_router_files_and_every_module_of_the_one_list(apk):
    _, _, p = apk
    files = tree(p)
    for path, mode in (("etc/init.d/mast", 0o755), ("usr/sbin/mastd", 0o755), ("usr/sbin/mastctl", 0o755),
                       ("etc/hotplug.d/iface/30-mast", 0o644), ("etc/config/mast", 0o600)):
        assert files[path][1] == mode, path
        with open(os.path.join(PKG, "files", path), "rb") as f:
            assert files[path][0] == f.read(), path
    for d in makefile_field("MAST_PY_DIRS").split():
        src = os.path.join(ROOT, "firmware", d)
        for fn in os.listdir(src):
            if fn.endswith(".py"):
                # built by Python 3.11 for 25.12's 3.13: the sources, not a .pyc that would not load
                path = "usr/lib/mast/%s/%s" % (d, fn)
                with open(os.path.join(src, fn), "rb") as f:
                    assert files[path] == (f.read(), 0o644), path
    assert "usr/lib/mast/presence/server.py" in files


def test_lib_apk_packages_holds_the_list_and_conffiles_as_the_sdk_writes_them(apk):
    _, _, p = apk
    files = tree(p)
    listing = files["lib/apk/packages/mast.list"][0].decode().splitlines()
    meta = {"lib/apk/packages/mast.list", "lib/apk/packages/mast.conffiles", "lib/apk/packages/mast.conffiles_static"}
    assert listing == sorted("/" + f for f in files if f not in meta)
    assert files["lib/apk/packages/mast.conffiles"][0] == b"/etc/config/mast\n"
    conf = files["etc/config/mast"][0]
    assert files["lib/apk/packages/mast.conffiles_static"][0] == (
        "/etc/config/mast %s\n" % hashlib.sha256(conf).hexdigest()).encode()


def test_scripts_are_the_sdk_mapping_of_default_postinst_and_default_prerm(apk):
    _, _, p = apk
    s = p["scripts"]
    assert set(s) == {"post-install", "post-upgrade", "pre-deinstall"}
    post = s["post-install"]
    assert post.startswith('#!/bin/sh\n[ "${IPKG_NO_SCRIPT}" = "1" ] && exit 0\n')
    assert 'export pkgname="mast"\n' in post and post.endswith("default_postinst\n")
    assert s["post-upgrade"] == "#!/bin/sh\nexport PKG_UPGRADE=1\n" + post.split("\n", 1)[1]
    pre = s["pre-deinstall"]
    assert ". ${IPKG_INSTROOT}/lib/functions.sh\n" in pre and pre.endswith("default_prerm\n")
    for text in s.values():
        assert "/etc/init.d/mast" not in text  # no custom enable/start: default_* do it


def test_the_package_is_unsigned_and_says_so(apk):
    summary, _, p = apk
    assert p["sig_blocks"] == 0 and summary["signed"] is False


def test_the_build_is_reproducible(tmp_path, apk):
    _, first, _ = apk
    again = cmd_apk.build(str(tmp_path), epoch=EPOCH)
    with open(again["path"], "rb") as f:
        assert f.read() == first


def test_with_the_targets_python_the_apk_carries_pyc_that_import(tmp_path, monkeypatch):
    """Here CPython is 3.11 and 25.12's is 3.13; pretend the target is ours to check the .pyc path."""
    ours = "%d.%d" % sys.version_info[:2]
    monkeypatch.setitem(cmd_apk.OPENWRT_PYTHON, cmd_apk.TARGET, ours)
    summary = cmd_apk.build(str(tmp_path), epoch=EPOCH, python=sys.executable)
    assert summary["bytecode"] == ours
    with open(summary["path"], "rb") as f:
        files = tree(parse(f.read()))
    assert not [f for f in files if f.startswith("usr/lib/mast/") and f.endswith(".py")]
    lib = tmp_path / "root"
    for path, (data, _) in files.items():
        (lib / path).parent.mkdir(parents=True, exist_ok=True)
        (lib / path).write_bytes(data)
    code = ("import sys; sys.dont_write_bytecode = True; sys.path.insert(0, %r); import mastd.agent, "
            "presence.server; print(mastd.agent.__file__)" % str(lib / "usr/lib/mast"))
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=str(tmp_path))
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().endswith("usr/lib/mast/mastd/agent.pyc")


def test_mast_apk_command_prints_path_hash_and_the_bytecode_note_as_json(tmp_path):
    env = dict(os.environ, PYTHONPATH=HOST_TOOLS, SOURCE_DATE_EPOCH=str(EPOCH))
    r = subprocess.run([sys.executable, "-m", "mast_tools", "apk", "--out", str(tmp_path), "--json"],
                       capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["path"] == str(tmp_path / "mast-0.1.0-r1.apk")
    assert os.path.getsize(doc["path"]) == doc["size"] and len(doc["sha256"]) == 64
    assert doc["signed"] is False and doc["target"] == "OpenWrt 25.12"
    if doc["bytecode"] is None:
        assert "3.13" in doc["bytecode_note"] and "3.13" in r.stderr


def test_a_python_that_cannot_run_is_a_clear_error_and_writes_nothing(tmp_path):
    env = dict(os.environ, PYTHONPATH=HOST_TOOLS, SOURCE_DATE_EPOCH=str(EPOCH))
    r = subprocess.run([sys.executable, "-m", "mast_tools", "apk", "--out", str(tmp_path),
                        "--python", str(tmp_path / "no-such-python")], capture_output=True, text=True,
                       env=env, timeout=120)
    assert r.returncode == 1
    assert r.stderr.startswith("mast: cannot run ") and "; give --python a Python 3 interpreter" in r.stderr
    assert "Traceback" not in r.stderr
    assert os.listdir(str(tmp_path)) == []


def package_copy(tmp_path, edit_makefile=None, files=None):
    """A copy of openwrt-package/mast with its Makefile edited (a function of the text) and extra
    files under files/ ({path: bytes})."""
    import shutil

    d = tmp_path / "mast-pkg"
    shutil.copytree(PKG, str(d))
    mk = d / "Makefile"
    if edit_makefile:
        text = mk.read_text()
        new = edit_makefile(text)
        assert new != text
        mk.write_text(new)
    for path, data in (files or {}).items():
        (d / "files" / path).parent.mkdir(parents=True, exist_ok=True)
        (d / "files" / path).write_bytes(data)
    return str(d)


def test_an_empty_file_gets_no_data_block_and_the_next_files_keep_their_index(tmp_path):
    # (an empty __init__.py or marker file: apk-v3(5) has DATA blocks only for files with bytes)
    pkg = package_copy(tmp_path, files={"etc/mast/a-empty": b"", "etc/mast/b-full": b"bytes after it\n"})
    r = cmd_apk.build(str(tmp_path / "out"), pkg_dir=pkg, epoch=EPOCH, bytecode=False)
    with open(r["path"], "rb") as f:
        p = parse(f.read())  # checks one DATA block per file with bytes, each with its indices
    files = tree(p)
    assert files["etc/mast/a-empty"] == (b"", 0o644)
    assert files["etc/mast/b-full"] == (b"bytes after it\n", 0o644)
    entry = [f for d, _, fs in p["paths"] if d == "etc/mast" for f in fs]
    assert [(f[0], f[2], f[4]) for f in entry] == [
        ("a-empty", 0, hashlib.sha256(b"").digest()),
        ("b-full", 15, hashlib.sha256(b"bytes after it\n").digest())]


def test_a_description_longer_than_255_bytes_is_a_16_bit_blob_read_back_whole(tmp_path):
    # (the description line is 253 bytes today: one more sentence and it no longer fits a blob8)
    more = " It also keeps a record of every uplink it has tried, and why it left it." * 6
    pkg = package_copy(tmp_path, edit_makefile=lambda t: t.replace(
        " sessions survive an uplink failing.\n", " sessions survive an uplink failing.%s\n" % more))
    r = cmd_apk.build(str(tmp_path / "out"), pkg_dir=pkg, epoch=EPOCH, bytecode=False)
    with open(r["path"], "rb") as f:
        info = parse(f.read())["info"]  # the reader checks the blob's 2-byte alignment
    assert len(info["description"].encode()) > 255
    assert info["description"].startswith("mastd, the Multiple Address")
    assert info["description"].endswith("sessions survive an uplink failing." + more)


def test_the_json_summary_states_the_packages_own_facts(tmp_path):
    env = dict(os.environ, PYTHONPATH=HOST_TOOLS, SOURCE_DATE_EPOCH=str(EPOCH))
    r = subprocess.run([sys.executable, "-m", "mast_tools", "apk", "--out", str(tmp_path), "--json",
                        "--no-bytecode"], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    with open(doc["path"], "rb") as f:
        data = f.read()
    p = parse(data)
    assert doc["sha256"] == hashlib.sha256(data).hexdigest() and doc["size"] == len(data)
    assert doc["version"] == p["info"]["version"] and doc["package"] == p["info"]["name"]
    assert doc["unique_id"] == p["info"]["hashes"].hex()
    assert doc["installed_size"] == p["info"]["installed-size"]
    assert doc["files"] == len(tree(p))
    # --no-bytecode: the sources, and the note says why
    assert doc["bytecode"] is None and doc["bytecode_note"] == "sources only (--no-bytecode)"
    assert r.stderr == "mast apk: note: sources only (--no-bytecode)\n"


OWN_SCRIPTS = """
define Package/mast/preinst
#!/bin/sh
echo preinst $${IPKG_INSTROOT}
endef

define Package/mast/postinst
#!/bin/sh
echo postinst $${IPKG_INSTROOT}
endef

define Package/mast/prerm
#!/bin/sh
echo prerm $$1
endef

define Package/mast/postrm
#!/bin/sh
echo postrm
endef

$(eval $(call BuildPackage,mast))
"""


def with_own_scripts(text):
    """The Makefile with maintainer scripts of its own (make's `$$` is the shell's `$`)."""
    return text.replace("\n$(eval $(call BuildPackage,mast))\n", OWN_SCRIPTS)


def test_maintainer_scripts_of_our_own_are_mapped_as_the_sdk_maps_them_for_apk(tmp_path):
    pkg = package_copy(tmp_path, edit_makefile=with_own_scripts)
    r = cmd_apk.build(str(tmp_path / "out"), pkg_dir=pkg, epoch=EPOCH, bytecode=False)
    with open(r["path"], "rb") as f:
        s = parse(f.read())["scripts"]
    assert set(s) == {"pre-install", "pre-upgrade", "post-install", "post-upgrade", "pre-deinstall",
                      "post-deinstall"}
    assert s["pre-install"] == "#!/bin/sh\necho preinst ${IPKG_INSTROOT}\n"
    assert s["pre-upgrade"] == "#!/bin/sh\nexport PKG_UPGRADE=1\necho preinst ${IPKG_INSTROOT}\n"
    # after the SDK's default_postinst / default_prerm, without their own #! line
    assert s["post-install"].endswith("default_postinst\necho postinst ${IPKG_INSTROOT}\n")
    assert s["post-upgrade"].endswith("default_postinst\necho postinst ${IPKG_INSTROOT}\n")
    assert s["post-upgrade"].startswith("#!/bin/sh\nexport PKG_UPGRADE=1\n")
    assert s["pre-deinstall"].endswith("default_prerm\necho prerm $1\n")
    assert s["post-deinstall"] == "#!/bin/sh\necho postrm\n"
    for text in s.values():
        assert text.count("#!") == 1


def test_a_dependency_the_makefile_names_twice_or_names_libc_is_listed_once(tmp_path):
    # the SDK adds libc itself; a Makefile that lists it (or another one twice) must not give
    # apk a package that depends on one name twice
    pkg = package_copy(tmp_path, edit_makefile=lambda t: t.replace(
        "DEPENDS:=+python3-light +kmod-tun +ip-full", "DEPENDS:=+python3-light +kmod-tun +ip-full +libc +ip-full"))
    r = cmd_apk.build(str(tmp_path / "out"), pkg_dir=pkg, epoch=EPOCH, bytecode=False)
    with open(r["path"], "rb") as f:
        deps = parse(f.read())["info"]["depends"]
    assert deps == ["ip-full", "kmod-tun", "libc", "python3-light"]


def test_the_writer_gives_each_int_and_blob_the_narrowest_type_apk_tools_uses(tmp_path):
    # apk-tools' adb_w_int / adb_w_blob: an immediate int below 2**28, else int32 below 2**32,
    # else int64; a blob8 up to 255 bytes, a blob16 up to 65535, else a blob32 (4-aligned)
    from mast_tools import apk_v3

    w = apk_v3.AdbWriter()
    ints = [0, (1 << 28) - 1, 1 << 28, (1 << 32) - 1, 1 << 32, (1 << 40) + 5]
    blobs = [b"x" * 255, b"y" * 256, b"z" * 65535, b"w" * 65536]
    ivals = [w.int(n) for n in ints]
    w.blob(b"a")  # (puts the next value off any alignment)
    bvals = [w.blob(b) for b in blobs]
    root = w.array(ivals + [apk_v3.NULL] + bvals)  # a NULL item is left out
    adb = Adb(w.finish(root))
    items = adb.arr(adb.root)
    assert len(items) == len(ints) + len(blobs)
    assert struct.unpack_from("<I", adb.p, adb.root & 0x0FFFFFFF)[0] == 1 + len(items)  # no NULL slot
    assert [adb.kind(v) for v in items[:len(ints)]] == [0x1, 0x1, 0x2, 0x2, 0x3, 0x3]
    assert [adb.int(v) for v in items[:len(ints)]] == ints
    assert [adb.kind(v) for v in items[len(ints):]] == [0x8, 0x9, 0x9, 0xA]
    assert [adb.blob(v) for v in items[len(ints):]] == blobs  # (the reader checks each alignment)


def test_a_script_type_apk_does_not_have_is_refused_not_dropped():
    from mast_tools import apk_v3

    info = {"name": "x", "version": "1-r1", "description": "d", "arch": "noarch", "license": "MIT",
            "origin": "o", "maintainer": "m", "url": "u", "depends": []}
    with pytest.raises(ValueError) as e:
        apk_v3.build_package(info, [("", 0o755, [])], {"post-instal": "#!/bin/sh\n"}, EPOCH)
    assert str(e.value) == "unknown apk script types: post-instal"
