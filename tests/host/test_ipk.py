"""`mast ipk` builds the OpenWrt package in opkg's exact format, without the SDK.

opkg (opkg-lede) reads a gzip-compressed tar of ./debian-binary, ./control.tar.gz and
./data.tar.gz; GNU or ustar tar, never PAX (see shared TESTING.md). These tests read the bytes.
The scripts' behaviour is in test_openwrt_scripts.py, the SDK comparison in test_openwrt_sdk.py.
"""

import gzip
import importlib.util
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HOST_TOOLS = os.path.join(ROOT, "host-tools")
from mast_tools import cmd_ipk

PKG = os.path.join(ROOT, "openwrt-package", "mast")
EPOCH = 1750000000


@pytest.fixture(scope="module")
def ipk(tmp_path_factory):
    out = tmp_path_factory.mktemp("dist")
    info = cmd_ipk.build(str(out), epoch=EPOCH, python=sys.executable)
    with open(info["path"], "rb") as f:
        return info, f.read()


def tar_headers(tar_bytes):
    """(name, typeflag, magic) of every 512-byte header block of an uncompressed tar."""
    out, off = [], 0
    while off + 512 <= len(tar_bytes):
        block = tar_bytes[off:off + 512]
        if block == bytes(512):
            break
        name = block[:100].rstrip(b"\0").decode()
        size = int(block[124:136].rstrip(b"\0 ") or b"0", 8)
        out.append((name, block[156:157], block[257:265]))
        off += 512 + (size + 511) // 512 * 512
    return out


def members(gz_bytes):
    with tarfile.open(fileobj=io.BytesIO(gz_bytes), mode="r:gz") as t:
        return {m.name: (m, t.extractfile(m).read() if m.isfile() else None) for m in t.getmembers()}


def outer(ipk_bytes):
    return members(ipk_bytes)


def test_the_file_is_named_name_version_release_all_and_lands_in_the_out_dir(ipk):
    info, _ = ipk
    assert os.path.basename(info["path"]) == "mast_0.1.0-1_all.ipk"


def test_the_ipk_is_a_gzip_tar_of_debian_binary_control_and_data_in_that_order(ipk):
    _, data = ipk
    assert data[:2] == b"\x1f\x8b"  # gzip, not an `ar` archive
    raw = gzip.decompress(data)
    names = [h[0] for h in tar_headers(raw)]
    assert names == ["./debian-binary", "./control.tar.gz", "./data.tar.gz"]
    assert outer(data)["./debian-binary"][1] == b"2.0\n"


def test_every_tar_is_gnu_format_without_pax_headers(ipk):
    _, data = ipk
    o = outer(data)
    for raw in (gzip.decompress(data), gzip.decompress(o["./control.tar.gz"][1]),
                gzip.decompress(o["./data.tar.gz"][1])):
        headers = tar_headers(raw)
        assert headers
        for name, typeflag, magic in headers:
            assert typeflag not in (b"x", b"g"), name  # PAX extended headers: opkg ignores the files
            assert magic == b"ustar  \0", name  # GNU magic ("ustar" + two spaces + NUL)


def test_members_are_owned_by_root_with_one_whole_number_mtime(ipk):
    _, data = ipk
    o = outer(data)
    for part in (data, o["./control.tar.gz"][1], o["./data.tar.gz"][1]):
        for name, (m, _) in members(part).items():
            assert (m.uid, m.gid) == (0, 0), name
            assert m.mtime == EPOCH and isinstance(m.mtime, int), name


def test_the_build_is_reproducible(tmp_path, ipk):
    _, first = ipk
    again = cmd_ipk.build(str(tmp_path), epoch=EPOCH, python=sys.executable)
    with open(again["path"], "rb") as f:
        assert f.read() == first


def control_fields(ipk_bytes):
    c = members(outer(ipk_bytes)["./control.tar.gz"][1])
    text = c["./control"][1].decode()
    fields = {}
    for line in text.splitlines():
        if not line.startswith(" "):
            k, v = line.split(": ", 1)
            fields[k] = v
    return fields, text, c


def test_control_has_the_fields_opkg_and_the_feeds_show(ipk):
    _, data = ipk
    f, text, _ = control_fields(data)
    # the fields include/package-pack.mk writes, in its order
    assert list(f) == ["Package", "Version", "Depends", "Source", "SourceName", "License", "LicenseFiles",
                       "Section", "SourceDateEpoch", "URL", "Maintainer", "Architecture", "Installed-Size",
                       "Description"]
    assert f["Package"] == "mast"
    assert f["Version"] == "0.1.0-1"
    deps = f["Depends"].split(", ")
    assert {"python3-light", "kmod-tun"} <= set(deps)
    assert f["Architecture"] == "all"
    assert f["Section"] == "net"
    assert f["License"] and "<" in f["Maintainer"] and f["URL"].startswith("https://")
    assert f["SourceDateEpoch"] == str(EPOCH) and f["Source"] == "feeds/mast/mast"
    files = members(outer(data)["./data.tar.gz"][1])
    assert int(f["Installed-Size"]) == sum(len(b) for _, b in files.values() if b is not None)
    assert text.endswith("\n") and "\n mastd, the Multiple Address Service" in text


def test_control_values_come_from_the_sdk_makefile(ipk):
    _, data = ipk
    f, _, _ = control_fields(data)
    mk = open(os.path.join(PKG, "Makefile")).read()
    assert re.search(r"^PKG_VERSION:=%s$" % re.escape(f["Version"].split("-")[0]), mk, re.M)
    assert re.search(r"^PKG_RELEASE:=%s$" % f["Version"].split("-")[1], mk, re.M)
    assert "PKGARCH:=all" in mk
    sdk_deps = re.search(r"^\s*DEPENDS:=(.*)", mk, re.M).group(1).split()
    assert [d.lstrip("+") for d in sdk_deps] == f["Depends"].split(", ")[1:]


def test_conffiles_lists_the_uci_config_which_is_in_the_data(ipk):
    _, data = ipk
    _, _, c = control_fields(data)
    assert c["./conffiles"][1] == b"/etc/config/mast\n"
    files = members(outer(data)["./data.tar.gz"][1])
    m, text = files["./etc/config/mast"]
    assert m.mode == 0o600  # it holds pre-shared keys
    assert b"config mast 'global'" in text


def test_maintainer_scripts_are_the_sdks_standard_default_postinst_and_default_prerm(ipk):
    _, data = ipk
    _, _, c = control_fields(data)
    assert sorted(n for n in c if n not in ("./", ".")) == ["./conffiles", "./control", "./postinst", "./prerm"]
    # word for word what include/package-pack.mk generates for a package without scripts of its own
    assert c["./postinst"][1].decode() == (
        '#!/bin/sh\n[ "${IPKG_NO_SCRIPT}" = "1" ] && exit 0\n[ -s ${IPKG_INSTROOT}/lib/functions.sh ] || exit 0\n'
        '. ${IPKG_INSTROOT}/lib/functions.sh\ndefault_postinst $0 $@\n')
    assert c["./prerm"][1].decode() == (
        '#!/bin/sh\n[ -s ${IPKG_INSTROOT}/lib/functions.sh ] || exit 0\n. ${IPKG_INSTROOT}/lib/functions.sh\n'
        'default_prerm $0 $@\n')
    for script in ("./postinst", "./prerm"):
        assert c[script][0].mode == 0o755


def test_data_holds_the_router_files_and_every_core_runtime_and_mastd_file(ipk):
    _, data = ipk
    files = members(outer(data)["./data.tar.gz"][1])
    names = set(files)
    for path, mode in (("./etc/init.d/mast", 0o755), ("./usr/sbin/mastd", 0o755),
                       ("./usr/sbin/mastctl", 0o755), ("./etc/hotplug.d/iface/30-mast", 0o644)):
        assert files[path][0].mode == mode, path
    mk = open(os.path.join(PKG, "Makefile")).read()
    py_dirs = re.search(r"^MAST_PY_DIRS:=(.*)$", mk, re.M).group(1).split()
    assert py_dirs == ["mast", "runtime", "mastd", "presence"]
    magic = importlib.util.MAGIC_NUMBER
    compiled = ipk[0]["bytecode"] is not None  # only when this Python is 24.10's (3.11)
    assert compiled == (sys.version_info[:2] == (3, 11))
    for pkg in py_dirs:
        src = os.path.join(ROOT, "firmware", pkg)
        for fn in os.listdir(src):
            if fn.endswith(".py"):
                with open(os.path.join(src, fn), "rb") as f:
                    source = f.read()
                if not compiled:
                    assert files["./usr/lib/mast/%s/%s" % (pkg, fn)][1] == source  # copied, not forked
                    continue
                path = "./usr/lib/mast/%s/%sc" % (pkg, fn)
                assert path in names, path
                pyc = files[path][1]
                # this Python's byte code, hash-checked against the very source
                assert pyc[:4] == magic and pyc[4:8] == b"\x03\x00\x00\x00", path
                assert pyc[8:16] == importlib.util.source_hash(source), path  # compiled, not forked
    for name in names:  # every directory before what it holds, no sources beside the byte code
        assert "__pycache__" not in name
        assert not (compiled and name.startswith("./usr/lib/mast/") and name.endswith(".py")), name
    ordered = list(files)
    for i, name in enumerate(ordered):
        parent = name.rstrip("/").rsplit("/", 1)[0]
        if parent not in (".", ""):
            assert parent in ordered[:i], name


def test_init_script_is_procd_with_respawn_and_reload_triggers():
    text = open(os.path.join(PKG, "files/etc/init.d/mast")).read()
    assert text.startswith("#!/bin/sh /etc/rc.common\n")
    for needle in ("USE_PROCD=1", "procd_set_param command", "procd_set_param respawn",
                   "procd_set_param stdout 1", "procd_set_param stderr 1",
                   'procd_add_reload_trigger "mast"', "procd_send_signal mast '*' HUP", "procd_running mast"):
        assert needle in text, needle
    # one path for uplink events: the hotplug script (mastctl hotplug), no procd interface trigger
    assert "procd_add_interface_trigger" not in text


def test_hotplug_script_is_short_and_leaves_other_events_and_interfaces_alone(tmp_path):
    path = os.path.join(PKG, "files/etc/hotplug.d/iface/30-mast")
    text = open(path).read()
    assert len(text.splitlines()) <= 12
    # run it with a fake uci and mastctl: only ifup/ifdown/ifupdate of an uplink section reach mastctl
    bindir = tmp_path / "bin"
    bindir.mkdir()
    calls = tmp_path / "calls"
    (bindir / "uci").write_text('#!/bin/sh\n[ "$3" = mast.wan ] && echo uplink\nexit 0\n')
    (bindir / "uci").chmod(0o755)
    sock = tmp_path / "mastd.sock"
    script = text.replace("/var/run/mast/mastd.sock", str(sock)).replace(
        "/usr/sbin/mastctl", "echo >>%s" % calls).replace(" >/dev/null 2>&1 &", "")
    (tmp_path / "hp").write_text(script)

    def run(action, interface, make_socket=True):
        import socket as so

        s = None
        if make_socket and not sock.exists():
            s = so.socket(so.AF_UNIX, so.SOCK_STREAM)
            s.bind(str(sock))
        env = dict(os.environ, ACTION=action, INTERFACE=interface, DEVICE="eth1",
                   PATH="%s:%s" % (bindir, os.environ["PATH"]))
        r = subprocess.run(["sh", str(tmp_path / "hp")], env=env, timeout=10)
        assert r.returncode == 0

    run("ifup", "wan", make_socket=False)  # mastd does not run: nothing to tell
    assert not calls.exists()
    run("ifup", "lan")
    run("ifup-failed", "wan")
    run("ifup", "wan")
    run("ifupdate", "wan")  # (a new address on the same interface: a DHCP renew, LTE)
    run("ifdown", "wan")
    assert calls.read_text().splitlines() == ["hotplug ifup wan eth1", "hotplug ifupdate wan eth1",
                                              "hotplug ifdown wan eth1"]


def test_sdk_makefile_installs_every_file_under_files():
    mk = open(os.path.join(PKG, "Makefile")).read()
    install = mk[mk.index("define Package/mast/install"):]
    install = install[:install.index("endef")]
    for dirpath, _, filenames in os.walk(os.path.join(PKG, "files")):
        for fn in filenames:
            rel = os.path.relpath(os.path.join(dirpath, fn), os.path.join(PKG, "files"))
            assert "./files/" + rel in install, rel


def test_mast_ipk_command_prints_the_path_and_hash_as_json(tmp_path):
    env = dict(os.environ, PYTHONPATH=HOST_TOOLS, SOURCE_DATE_EPOCH=str(EPOCH))
    r = subprocess.run([sys.executable, "-m", "mast_tools", "ipk", "--out", str(tmp_path), "--json"],
                       capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["path"] == str(tmp_path / "mast_0.1.0-1_all.ipk")
    assert os.path.getsize(doc["path"]) == doc["size"] and len(doc["sha256"]) == 64
    assert doc["bytecode"] == "%d.%d" % sys.version_info[:2] or "3.11" in doc["bytecode_note"]


def test_a_conffile_the_package_does_not_hold_stops_the_build_and_writes_nothing(tmp_path):
    # (opkg would keep a conffile entry for a file it never installs: the user's UCI file
    # would be missing on a fresh router)
    import shutil

    from mast_tools.errors import CommandError

    pkg = tmp_path / "mast"
    shutil.copytree(PKG, str(pkg))
    os.unlink(str(pkg / "files" / "etc" / "config" / "mast"))
    out = tmp_path / "out"
    with pytest.raises(CommandError) as e:
        cmd_ipk.build(str(out), pkg_dir=str(pkg), epoch=1700000000, bytecode=False)
    assert "conffile /etc/config/mast is not among the package's files" in str(e.value)
    assert not out.exists()


def control_of(ipk_bytes):
    """The control file's text of an .ipk."""
    ctl = tarfile.open(fileobj=io.BytesIO(ipk_bytes)).extractfile("./control.tar.gz").read()
    return tarfile.open(fileobj=io.BytesIO(ctl)).extractfile("./control").read().decode()


def test_source_date_epoch_sets_the_packages_time(tmp_path, monkeypatch):
    # (reproducible builds: the same sources and SOURCE_DATE_EPOCH give the same bytes anywhere)
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1234567890")
    r = cmd_ipk.build(str(tmp_path), bytecode=False)
    with open(r["path"], "rb") as f:
        data = f.read()
    times = set(m.mtime for m in tarfile.open(fileobj=io.BytesIO(data)).getmembers())
    assert times == {1234567890}
    assert "SourceDateEpoch: 1234567890\n" in control_of(data)


def test_maintainer_scripts_of_our_own_go_where_the_sdk_puts_them_for_opkg(tmp_path):
    # preinst and postrm as they are; postinst and prerm as postinst-pkg / prerm-pkg, which the
    # SDK's default_postinst / default_prerm run; make's `$$` is the shell's `$`
    from test_apk import package_copy, with_own_scripts

    pkg = package_copy(tmp_path, edit_makefile=with_own_scripts)
    r = cmd_ipk.build(str(tmp_path / "out"), pkg_dir=pkg, epoch=EPOCH, bytecode=False)
    with open(r["path"], "rb") as f:
        _, _, c = control_fields(f.read())
    scripts = {n[2:]: (m.mode, data.decode()) for n, (m, data) in c.items() if data is not None
               and n not in ("./control", "./conffiles")}
    assert scripts == {
        "preinst": (0o755, "#!/bin/sh\necho preinst ${IPKG_INSTROOT}\n"),
        "postinst": (0o755, cmd_ipk.openwrt_pkg.IPK_POSTINST),
        "postinst-pkg": (0o755, "#!/bin/sh\necho postinst ${IPKG_INSTROOT}\n"),
        "prerm": (0o755, cmd_ipk.openwrt_pkg.IPK_PRERM),
        "prerm-pkg": (0o755, "#!/bin/sh\necho prerm $1\n"),
        "postrm": (0o755, "#!/bin/sh\necho postrm\n"),
    }


def test_every_directory_of_the_data_is_0755_root(ipk):
    # (opkg creates the directories with the modes the tar gives them: /usr/lib/mast, /etc/init.d)
    _, data = ipk
    dirs = {n: m for n, (m, _) in members(outer(data)["./data.tar.gz"][1]).items() if m.isdir()}
    assert "./usr/lib/mast/mastd" in dirs and "./etc/hotplug.d/iface" in dirs
    for name, m in dirs.items():
        assert (m.mode, m.uid, m.gid) == (0o755, 0, 0), name


def test_the_pyc_name_their_installed_paths_for_tracebacks(tmp_path, monkeypatch):
    # (the SDK's `compileall -d /`: a traceback on the router names /usr/lib/mast/mastd/agent.py)
    import marshal

    monkeypatch.setitem(cmd_ipk.OPENWRT_PYTHON, cmd_ipk.TARGET, "%d.%d" % sys.version_info[:2])  # compile here
    r = cmd_ipk.build(str(tmp_path), epoch=EPOCH, python=sys.executable)
    with open(r["path"], "rb") as f:
        files = members(outer(f.read())["./data.tar.gz"][1])
    pycs = [n for n in files if n.endswith(".pyc")]
    assert "./usr/lib/mast/mastd/agent.pyc" in pycs
    for name in pycs:
        assert marshal.loads(files[name][1][16:]).co_filename == name[1:-1], name


def test_a_blank_line_in_the_description_is_a_dot_line_and_the_control_stanza_goes_on(tmp_path):
    # (an empty line would end the control stanza: opkg would drop the rest of the description)
    from test_apk import package_copy

    pkg = package_copy(tmp_path, edit_makefile=lambda t: t.replace(
        " sessions survive an uplink failing.\n", " sessions survive an uplink failing.\n\n Second paragraph.\n"))
    r = cmd_ipk.build(str(tmp_path / "out"), pkg_dir=pkg, epoch=EPOCH, bytecode=False)
    with open(r["path"], "rb") as f:
        text = control_of(f.read())
    assert text.endswith(" sessions survive an uplink failing.\n .\n Second paragraph.\n")
    assert "\n\n" not in text


def test_no_bytecode_ships_the_sources_says_so_and_the_json_states_the_packages_facts(tmp_path):
    env = dict(os.environ, PYTHONPATH=HOST_TOOLS, SOURCE_DATE_EPOCH=str(EPOCH))
    r = subprocess.run([sys.executable, "-m", "mast_tools", "ipk", "--out", str(tmp_path), "--json",
                        "--no-bytecode"], capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stderr == "mast ipk: note: sources only (--no-bytecode)\n"
    doc = json.loads(r.stdout)
    assert doc["bytecode"] is None and doc["bytecode_note"] == "sources only (--no-bytecode)"
    with open(doc["path"], "rb") as f:
        data = f.read()
    files = {n: b for n, (m, b) in members(outer(data)["./data.tar.gz"][1]).items() if m.isfile()}
    assert "./usr/lib/mast/mastd/agent.py" in files
    assert not [n for n in files if n.endswith(".pyc")]
    f, _, _ = control_fields(data)
    assert doc["version"] == f["Version"] and doc["package"] == f["Package"]
    assert doc["installed_size"] == int(f["Installed-Size"]) == sum(len(b) for b in files.values())
    assert doc["files"] == len(files)


def test_a_python_that_cannot_run_is_a_clear_error_and_writes_nothing(tmp_path):
    env = dict(os.environ, PYTHONPATH=HOST_TOOLS, SOURCE_DATE_EPOCH=str(EPOCH))
    r = subprocess.run([sys.executable, "-m", "mast_tools", "ipk", "--out", str(tmp_path),
                        "--python", str(tmp_path / "no-such-python")], capture_output=True, text=True,
                       env=env, timeout=60)
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr == "mast: cannot run %s (No such file or directory); give --python a Python 3 interpreter\n" % (
        tmp_path / "no-such-python")
    assert os.listdir(str(tmp_path)) == []


def test_a_write_that_fails_leaves_the_previous_package_whole_and_no_partial_file(tmp_path):
    # (a full disk while `make ipk` writes: the package already in dist/ must not be cut short,
    # and no half-written file may be left beside it). RLIMIT_FSIZE makes every write past
    # 4 KiB fail (EFBIG; Python ignores SIGXFSZ).
    import resource

    env = dict(os.environ, PYTHONPATH=HOST_TOOLS, SOURCE_DATE_EPOCH=str(EPOCH))
    argv = [sys.executable, "-m", "mast_tools", "ipk", "--out", str(tmp_path), "--no-bytecode"]
    r = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 0, r.stderr
    path = tmp_path / "mast_0.1.0-1_all.ipk"
    before = path.read_bytes()
    assert len(before) > 4096

    def small_files():
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))

    env["SOURCE_DATE_EPOCH"] = str(EPOCH + 1)  # other bytes than the package there
    r = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60, preexec_fn=small_files)
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr.startswith("mast: File too large: %s; " % path) and "Traceback" not in r.stderr
    assert path.read_bytes() == before  # (it named no file: the write's error has none)
    assert os.listdir(str(tmp_path)) == [path.name]


_FULL_DISK = """
set -e
mount -t tmpfs -o size=64k tmpfs "$1"
cd "$1"
set +e
"$2" -m mast_tools ipk --out "$1" --no-bytecode --json
echo "rc=$?"
ls -A "$1"
"""


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0 or shutil.which("unshare") is None,
                    reason="mounts a small tmpfs in a mount namespace of its own: needs root and unshare")
def test_a_package_on_a_full_disk_names_the_file_and_says_the_disk_is_full(tmp_path):
    # (it said only "mast: No space left on device; check the path, device or address; try again")
    env = dict(os.environ, PYTHONPATH=HOST_TOOLS, SOURCE_DATE_EPOCH=str(EPOCH))
    r = subprocess.run(["unshare", "-m", "sh", "-c", _FULL_DISK, "sh", str(tmp_path), sys.executable],
                       capture_output=True, text=True, env=env, timeout=120)
    assert r.stdout == "rc=1\n", (r.stdout, r.stderr)  # nothing on stdout but the exit status; no .tmp
    assert r.stderr == ("mast: No space left on device: %s/mast_0.1.0-1_all.ipk; the disk is full: make "
                        "room (df -h shows it), or write elsewhere\n" % tmp_path)


def test_a_written_file_is_on_the_disk_before_it_is_renamed_over_the_old_one(tmp_path, monkeypatch):
    # (a power cut, not only a failed write: the rename can reach the disk before the data does,
    # and the file is then empty or cut short after the reboot; mast config export -o, the
    # packages, a sim board's mast.json all go through write_atomic)
    from mast_tools import atomic

    path = str(tmp_path / "out.json")
    with open(path, "w") as f:
        f.write("old")
    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        with open(path + ".tmp", "rb") as f:  # what the synced file holds by then
            events.append(("fsync", os.fstat(fd).st_ino == os.fstat(f.fileno()).st_ino, f.read()))
        real_fsync(fd)

    def replace(a, b):
        events.append(("replace", a, b))
        real_replace(a, b)

    monkeypatch.setattr(atomic.os, "fsync", fsync)
    monkeypatch.setattr(atomic.os, "replace", replace)
    for data in (b"new bytes", "new text"):
        events.clear()
        atomic.write_atomic(path, data)
        assert events == [("fsync", True, b"new bytes" if isinstance(data, bytes) else b"new text"),
                          ("replace", path + ".tmp", path)]


def test_without_source_date_epoch_the_time_is_the_last_commits(tmp_path, monkeypatch):
    # (a build from a checkout is reproducible from the commit alone; a SOURCE_DATE_EPOCH that is
    # not a number is ignored rather than a traceback)
    import shutil

    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    from mast_tools import openwrt_pkg

    repo = tmp_path / "repo"
    repo.mkdir()
    env = dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@t.invalid", GIT_COMMITTER_NAME="t",
               GIT_COMMITTER_EMAIL="t@t.invalid", GIT_COMMITTER_DATE="1600000123 +0000",
               GIT_AUTHOR_DATE="1600000123 +0000")
    for cmd in (["init", "-q"], ["commit", "-q", "--allow-empty", "-m", "x"]):
        subprocess.run(["git", "-C", str(repo)] + cmd, env=env, check=True, capture_output=True, timeout=30)
    for value in (None, "", "soon"):
        if value is None:
            monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
        else:
            monkeypatch.setenv("SOURCE_DATE_EPOCH", value)
        assert openwrt_pkg.source_epoch(str(repo)) == 1600000123, value
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1234567890")
    assert openwrt_pkg.source_epoch(str(repo)) == 1234567890
    monkeypatch.delenv("SOURCE_DATE_EPOCH")
    assert openwrt_pkg.source_epoch(str(tmp_path / "not-a-repo")) == openwrt_pkg.DEFAULT_EPOCH


def test_a_module_that_does_not_compile_is_an_error_naming_it_and_writes_nothing(tmp_path, monkeypatch):
    import shutil

    from mast_tools.errors import CommandError

    monkeypatch.setitem(cmd_ipk.OPENWRT_PYTHON, cmd_ipk.TARGET, "%d.%d" % sys.version_info[:2])  # compile here
    fw = tmp_path / "firmware"
    for d in ("mast", "runtime", "mastd", "presence"):
        shutil.copytree(os.path.join(ROOT, "firmware", d), str(fw / d),
                        ignore=shutil.ignore_patterns("__pycache__"))
    (fw / "mastd" / "broken.py").write_text("def f(:\n")
    out = tmp_path / "out"
    with pytest.raises(CommandError) as e:
        cmd_ipk.build(str(out), firmware=str(fw), epoch=EPOCH, python=sys.executable)
    assert e.value.what.startswith("byte-compiling failed: ")
    assert "broken.py" in e.value.what and "SyntaxError" in e.value.what
    assert e.value.hint == "fix the syntax error it names, or build with --no-bytecode"
    assert not out.exists()


def test_the_package_depends_on_what_mastd_needs_on_the_router(ipk):
    # python3-light runs it; the TUN device is kmod-tun's; mastd/tun.py sets addresses and
    # routes with `ip` (iproute2), which a stock OpenWrt image has only from ip-full
    _, data = ipk
    f, _, _ = control_fields(data)
    assert {"libc", "python3-light", "kmod-tun", "ip-full"} <= set(f["Depends"].split(", "))


def test_a_makefile_without_a_field_the_package_needs_is_a_clear_error(tmp_path):
    from mast_tools.errors import CommandError
    from test_apk import package_copy

    pkg = package_copy(tmp_path, edit_makefile=lambda t: t.replace("PKG_LICENSE:=MIT\n", "").replace(
        "  PKGARCH:=all\n", ""))
    with pytest.raises(CommandError) as e:
        cmd_ipk.build(str(tmp_path / "out"), pkg_dir=pkg, epoch=EPOCH, bytecode=False)
    assert e.value.what == "%s/Makefile lacks PKG_LICENSE, PKGARCH" % pkg
    assert e.value.hint == "add them to the Makefile"
    assert not (tmp_path / "out").exists()
