"""The package's life on an OpenWrt root: install, disable, upgrade, remove, an image build, and
`uci commit mast; reload_config` reloads (procd's reload trigger runs `reload`), with the maintainer scripts `make ipk` and `make apk` ship and the
init script run as OpenWrt runs them.

The root is a directory with Debian's static busybox as /bin/sh (OpenWrt's shell is busybox
ash) and minimal stand-ins, written here from OpenWrt's documented behaviour (not its code), for:
- /lib/functions.sh: UCI config_load/config_get(_bool), and default_postinst/default_prerm: for
  each /etc/init.d/ file in the package's file list (opkg: /usr/lib/opkg/info/<pkg>.list, apk:
  /lib/apk/packages/<pkg>.list), at image build (IPKG_INSTROOT set) `rc.common <script> enable`;
  on a live system `enable` unless PKG_UPGRADE=1, then `start` (postinst), or `disable` unless
  PKG_UPGRADE=1, then `stop` (prerm);
- /etc/rc.common: enable/disable (S<START>/K<STOP> links in /etc/rc.d), and for USE_PROCD
  scripts start (start_service inside a procd service "set"), stop, reload (reload_service);
- /lib/functions/procd.sh: records what the init script asks procd for in /tmp/procd.log:
  `set mast instances=N` (the service is set again with N instances: procd starts them and stops
  the ones left out), `signal mast HUP`, `kill mast` (the service removed), and whether an
  instance runs (procd_running).
The package managers' steps are the ones opkg-lede and apk-tools take: opkg runs the old prerm
with `upgrade` and then the new postinst, both with PKG_UPGRADE=1; apk runs only the new
post-upgrade; an image build runs each postinst with bash and IPKG_INSTROOT=<root>, outside it.
Live steps run chrooted into the root (as root, or in a user namespace); they skip otherwise.
"""

import io
import os
import shutil
import subprocess
import tarfile

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from mast_tools import cmd_apk, cmd_ipk

from test_apk import parse as parse_apk  # noqa: E402  (the independent apk reader)

PKG = os.path.join(ROOT, "openwrt-package", "mast")
EPOCH = 1750000000


def _static_busybox():
    """A busybox that runs alone in a root (no dynamic loader: Debian's busybox-static)."""
    for p in ("/bin/busybox", "/usr/bin/busybox"):
        try:
            with open(p, "rb") as f:
                head = f.read(4096)
        except OSError:
            continue
        if head[:4] == b"\x7fELF" and b"ld-linux" not in head and b"ld-musl" not in head:
            return p
    return None


BUSYBOX = _static_busybox()

FUNCTIONS_SH = r"""# stand-in for OpenWrt's /lib/functions.sh (see the test module's docstring)
config() { _n=$((${_n:-0} + 1)); _section="${2:-cfg$_n}"; CONFIG_SECTIONS="$CONFIG_SECTIONS $_section"; eval "CONFIG_${_section}_TYPE=\"\$1\""; }
option() { _o="$1"; shift; eval "CONFIG_${_section}_${_o}=\"\$*\""; }
list() { _o="$1"; shift; eval "CONFIG_${_section}_${_o}=\"\${CONFIG_${_section}_${_o}:+\$CONFIG_${_section}_${_o} }\$*\""; }
package() { :; }
config_load() { [ -n "$IPKG_INSTROOT" ] && return 0; CONFIG_SECTIONS=; _n=0; [ -f "/etc/config/$1" ] && . "/etc/config/$1"; return 0; }
config_get() { eval "$1=\"\${CONFIG_${2}_${3}:-\$4}\""; }
config_get_bool() {
	config_get _b "$2" "$3" "$4"
	case "$_b" in 1|on|true|yes|enabled) _b=1 ;; 0|off|false|no|disabled) _b=0 ;; *) _b="$4" ;; esac
	eval "$1=\$_b"
}
config_foreach() { _f="$1"; _t="$2"; for _s in $CONFIG_SECTIONS; do eval "_ty=\$CONFIG_${_s}_TYPE"; [ -z "$_t" ] || [ "$_ty" = "$_t" ] || continue; $_f "$_s"; done; }
add_group_and_user() { :; }
_filelist() {
	if [ -f "$IPKG_INSTROOT/lib/apk/packages/$1.list" ]; then echo "$IPKG_INSTROOT/lib/apk/packages/$1.list"
	else echo "$IPKG_INSTROOT/usr/lib/opkg/info/$1.list"; fi
}
default_postinst() {
	_pkg="${pkgname:-$(basename "${1%.*}")}"
	[ -f "$IPKG_INSTROOT/usr/lib/opkg/info/$_pkg.postinst-pkg" ] && ( . "$IPKG_INSTROOT/usr/lib/opkg/info/$_pkg.postinst-pkg" )
	for _i in $(grep -s '^/etc/init.d/' "$(_filelist "$_pkg")"); do
		if [ -n "$IPKG_INSTROOT" ]; then
			${shell:-/bin/sh} "$IPKG_INSTROOT/etc/rc.common" "$IPKG_INSTROOT$_i" enable
		else
			[ "$PKG_UPGRADE" = 1 ] || "$_i" enable
			"$_i" start
		fi
	done
	return 0
}
default_prerm() {
	_pkg="${pkgname:-$(basename "${1%.*}")}"
	[ -f "$IPKG_INSTROOT/usr/lib/opkg/info/$_pkg.prerm-pkg" ] && ( . "$IPKG_INSTROOT/usr/lib/opkg/info/$_pkg.prerm-pkg" )
	for _i in $(grep -s '^/etc/init.d/' "$(_filelist "$_pkg")"); do
		if [ -n "$IPKG_INSTROOT" ]; then
			${shell:-/bin/sh} "$IPKG_INSTROOT/etc/rc.common" "$IPKG_INSTROOT$_i" disable
		else
			[ "$PKG_UPGRADE" = 1 ] || "$_i" disable
			"$_i" stop
		fi
	done
	return 0
}
"""

RC_COMMON = r"""#!/bin/sh
# stand-in for OpenWrt's /etc/rc.common (see the test module's docstring)
. $IPKG_INSTROOT/lib/functions.sh
initscript=$1
action=${2:-help}
shift 2
start() { return 0; }
stop() { return 0; }
restart() { stop; start; }
reload() { restart; }
enable() {
	name="$(basename "$initscript")"
	[ -n "$START" ] && ln -sf "../init.d/$name" "$IPKG_INSTROOT/etc/rc.d/S${START}${name}"
	[ -n "$STOP" ] && ln -sf "../init.d/$name" "$IPKG_INSTROOT/etc/rc.d/K${STOP}${name}"
	return 0
}
disable() { name="$(basename "$initscript")"; rm -f "$IPKG_INSTROOT"/etc/rc.d/S??"$name" "$IPKG_INSTROOT"/etc/rc.d/K??"$name"; }
enabled() { [ -x "$IPKG_INSTROOT/etc/rc.d/S${START}$(basename "$initscript")" ]; }
start_service() { return 0; }
stop_service() { return 0; }
service_triggers() { return 0; }
. "$initscript"
if [ -n "$USE_PROCD" ]; then
	. $IPKG_INSTROOT/lib/functions/procd.sh
	rc_procd() { procd_open_service "$(basename "$initscript")" "$initscript"; "$@"; procd_close_service set; }
	start() { rc_procd start_service "$@"; }
	stop() { stop_service "$@"; procd_kill "$(basename "$initscript")" "$1"; }
	reload() { if type reload_service >/dev/null 2>&1; then reload_service "$@"; else start; fi; }
fi
case " start stop restart reload enable disable enabled " in
	*" $action "*) $action "$@" ;;
	*) echo "rc.common: unknown action $action" >&2; exit 1 ;;
esac
"""

PROCD_SH = r"""# stand-in for OpenWrt's /lib/functions/procd.sh (see the test module's docstring)
_P=/var/run/fakeprocd
procd_open_service() { _svc="$1"; mkdir -p $_P; : > "$_P/$_svc.new"; }
procd_open_instance() { echo instance >> "$_P/$_svc.new"; }
procd_set_param() { echo "param $*" >> "$_P/$_svc.new"; }
procd_close_instance() { :; }
procd_add_reload_trigger() { echo "trigger config.change $*" >> "$_P/$_svc.new"; }
procd_add_interface_trigger() { echo "trigger interface $*" >> "$_P/$_svc.new"; }
procd_close_service() {
	service_triggers
	_n=$(grep -c '^instance' "$_P/$_svc.new")
	echo "set $_svc instances=$_n" >> /tmp/procd.log
	mv "$_P/$_svc.new" "$_P/$_svc.service"
	if [ "$_n" -gt 0 ]; then echo 1 > "$_P/$_svc.running"; else rm -f "$_P/$_svc.running"; fi
}
procd_running() { [ -f "$_P/$1.running" ]; }
procd_send_signal() { echo "signal $1 $3" >> /tmp/procd.log; }
procd_kill() { echo "kill $1" >> /tmp/procd.log; rm -f "$_P/$1.service" "$_P/$1.running"; }
"""


def _chroot_prefix():
    if BUSYBOX is None:
        return None, "no static busybox (Debian busybox-static; `make deps` installs it)"
    if os.geteuid() == 0:
        return [], None
    if shutil.which("unshare"):
        r = subprocess.run(["unshare", "-r", "true"], capture_output=True, timeout=30)
        if r.returncode == 0:
            return ["unshare", "-r"], None
    return None, "needs root or user namespaces to chroot into a test root"


CHROOT, WHY_NOT = _chroot_prefix()
needs_chroot = pytest.mark.skipif(CHROOT is None, reason=WHY_NOT or "")


def make_root(path):
    """An OpenWrt-like root: busybox applets, the stand-ins, /etc/rc.d."""
    for d in ("bin", "dev", "etc/rc.d", "lib/functions", "tmp", "var/run", "usr/lib/opkg/info"):
        (path / d).mkdir(parents=True, exist_ok=True)
    (path / "dev" / "null").write_bytes(b"")  # a plain file: mknod needs more than a user namespace
    if BUSYBOX:
        shutil.copy(BUSYBOX, str(path / "bin" / "busybox"))
        for applet in ("sh", "ash", "ln", "rm", "mv", "mkdir", "cat", "grep", "basename", "dirname",
                       "readlink", "echo", "true", "false", "test", "[", "ls", "sed", "touch", "chmod"):
            os.symlink("busybox", str(path / "bin" / applet))
    (path / "lib" / "functions.sh").write_text(FUNCTIONS_SH)
    (path / "lib" / "functions" / "procd.sh").write_text(PROCD_SH)
    (path / "etc" / "rc.common").write_text(RC_COMMON)
    (path / "etc" / "rc.common").chmod(0o755)
    return path


def sh(root, command, **env):
    """Run a command on the live system: chrooted into root, busybox sh, a router's PATH."""
    e = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root"}
    e.update({k: str(v) for k, v in env.items()})
    r = subprocess.run(CHROOT + ["chroot", str(root), "/bin/sh", "-c", command], env=e,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, "%s: %s%s" % (command, r.stdout, r.stderr)
    return r.stdout


def rc_links(root):
    return sorted(os.listdir(str(root / "etc" / "rc.d")))


def procd_log(root):
    p = root / "tmp" / "procd.log"
    return p.read_text().splitlines() if p.exists() else []


# --- packages: release 1 and 2 of the same sources, as `make ipk` / `make apk` build them

def package_dir_with_release(tmp, release):
    d = tmp / ("pkg-r%d" % release)
    shutil.copytree(PKG, str(d))
    mk = d / "Makefile"
    mk.write_text(mk.read_text().replace("PKG_RELEASE:=1\n", "PKG_RELEASE:=%d\n" % release))
    return d


@pytest.fixture(scope="module")
def packages(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("pkgs")
    out = {}
    for release in (1, 2):
        d = str(package_dir_with_release(tmp, release))
        out["ipk", release] = cmd_ipk.build(str(tmp / "dist"), pkg_dir=d, epoch=EPOCH, bytecode=False)["path"]
        out["apk", release] = cmd_apk.build(str(tmp / "dist"), pkg_dir=d, epoch=EPOCH, bytecode=False)["path"]
    return out


def read_ipk(path):
    def members(gz):
        with tarfile.open(fileobj=io.BytesIO(gz), mode="r:gz") as t:
            return {m.name[2:]: (m, t.extractfile(m).read() if m.isfile() else None) for m in t.getmembers()}
    with open(path, "rb") as f:
        outer = members(f.read())
    control = {k: v[1] for k, v in members(outer["control.tar.gz"][1]).items() if v[1] is not None}
    data = {k: (v[1], v[0].mode) for k, v in members(outer["data.tar.gz"][1]).items() if v[1] is not None}
    return control, data


def read_apk(path):
    with open(path, "rb") as f:
        p = parse_apk(f.read())
    data = {}
    for d, _, files in p["paths"]:
        for name, acl, _, _, _ in files:
            full = (d + "/" if d else "") + name
            data[full] = (p["contents"].get(full, b""), acl[0])
    return p["scripts"], data


def unpack(root, data, keep_conffile=False):
    for path, (content, mode) in data.items():
        dest = root / path
        if keep_conffile and path == "etc/config/mast" and dest.exists():
            continue  # an edited conffile is kept
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(content)
        dest.chmod(mode)


def opkg_install(root, ipk, upgrade=False, version="0.1.0-2"):
    """opkg-lede's steps: old prerm `upgrade` (PKG_UPGRADE=1), unpack, file list and scripts in
    /usr/lib/opkg/info, new postinst `configure` (PKG_UPGRADE=1 on an upgrade, else 0)."""
    flag = 1 if upgrade else 0
    if upgrade:
        sh(root, "/usr/lib/opkg/info/mast.prerm upgrade %s" % version, PKG_UPGRADE=1)
    control, data = read_ipk(ipk)
    unpack(root, data, keep_conffile=upgrade)
    info = root / "usr" / "lib" / "opkg" / "info"
    (info / "mast.list").write_text("".join("/%s\n" % p for p in sorted(data)))
    for name, text in control.items():
        if name not in ("control", "conffiles"):
            (info / ("mast." + name)).write_bytes(text)
            (info / ("mast." + name)).chmod(0o755)
    sh(root, "/usr/lib/opkg/info/mast.postinst configure", PKG_UPGRADE=flag)


def opkg_remove(root):
    sh(root, "/usr/lib/opkg/info/mast.prerm remove", PKG_UPGRADE=0)


def apk_script(root, scripts, name, *args):
    (root / "tmp" / ("mast." + name)).write_text(scripts[name])
    sh(root, "/bin/sh /tmp/mast.%s %s" % (name, " ".join(args)))


def apk_add(root, apk, upgrade_from=None):
    """apk-tools' steps: unpack, then post-install <new>, or post-upgrade <new> <old> alone."""
    scripts, data = read_apk(apk)
    unpack(root, data, keep_conffile=upgrade_from is not None)
    if upgrade_from:
        apk_script(root, scripts, "post-upgrade", "0.1.0-r2", upgrade_from)
    else:
        apk_script(root, scripts, "post-install", "0.1.0-r1")


@pytest.fixture
def root(tmp_path):
    return make_root(tmp_path / "root")


# --- install, upgrade, remove

@needs_chroot
@pytest.mark.parametrize("fmt", ["ipk", "apk"])
def test_install_enables_and_starts_the_service_with_only_the_uci_reload_trigger(root, packages, fmt):
    if fmt == "ipk":
        opkg_install(root, packages["ipk", 1])
    else:
        apk_add(root, packages["apk", 1])
    assert rc_links(root) == ["K10mast", "S90mast"]
    assert os.readlink(str(root / "etc" / "rc.d" / "S90mast")) == "../init.d/mast"
    # started: the example config has enabled '0', so the service is set with no instance
    assert procd_log(root) == ["set mast instances=0"]
    service = (root / "var" / "run" / "fakeprocd" / "mast.service").read_text().splitlines()
    triggers = [line for line in service if line.startswith("trigger")]
    assert triggers == ["trigger config.change mast"]  # uplink events go through hotplug only


@needs_chroot
@pytest.mark.parametrize("fmt", ["ipk", "apk"])
def test_upgrade_keeps_a_service_the_user_disabled_disabled(root, packages, fmt):
    if fmt == "ipk":
        opkg_install(root, packages["ipk", 1])
    else:
        apk_add(root, packages["apk", 1])
    sh(root, "/etc/init.d/mast disable")
    assert rc_links(root) == []
    if fmt == "ipk":
        opkg_install(root, packages["ipk", 2], upgrade=True)
    else:
        apk_add(root, packages["apk", 2], upgrade_from="0.1.0-r1")
    assert rc_links(root) == []  # no S90mast, no K10mast


@needs_chroot
@pytest.mark.parametrize("fmt", ["ipk", "apk"])
def test_upgrade_keeps_an_enabled_service_enabled_and_restarts_it(root, packages, fmt):
    if fmt == "ipk":
        opkg_install(root, packages["ipk", 1])
        opkg_install(root, packages["ipk", 2], upgrade=True)
        assert procd_log(root)[-2:] == ["kill mast", "set mast instances=0"]  # old prerm stop, new start
    else:
        apk_add(root, packages["apk", 1])
        apk_add(root, packages["apk", 2], upgrade_from="0.1.0-r1")
        assert procd_log(root)[-1] == "set mast instances=0"
    assert rc_links(root) == ["K10mast", "S90mast"]


@needs_chroot
@pytest.mark.parametrize("fmt", ["ipk", "apk"])
def test_remove_stops_and_disables_the_service(root, packages, fmt):
    if fmt == "ipk":
        opkg_install(root, packages["ipk", 1])
        opkg_remove(root)
    else:
        apk_add(root, packages["apk", 1])
        scripts, _ = read_apk(packages["apk", 1])
        apk_script(root, scripts, "pre-deinstall", "0.1.0-r1")
    assert rc_links(root) == []
    assert procd_log(root)[-1] == "kill mast"


@needs_chroot
def test_ipkg_no_script_leaves_the_service_alone(root, packages):
    control, data = read_ipk(packages["ipk", 1])
    unpack(root, data)
    info = root / "usr" / "lib" / "opkg" / "info"
    (info / "mast.list").write_text("".join("/%s\n" % p for p in sorted(data)))
    (info / "mast.postinst").write_bytes(control["postinst"])
    (info / "mast.postinst").chmod(0o755)
    sh(root, "/usr/lib/opkg/info/mast.postinst configure", IPKG_NO_SCRIPT=1)
    assert rc_links(root) == [] and procd_log(root) == []


# --- an image built with the package (no chroot: the build host runs the scripts)

@pytest.mark.skipif(shutil.which("bash") is None, reason="bash is what an image build runs postinst with")
@pytest.mark.parametrize("fmt", ["ipk", "apk"])
def test_image_build_enables_the_service_the_way_default_postinst_does(tmp_path, packages, fmt):
    root = make_root(tmp_path / "rootfs")
    if fmt == "ipk":
        control, data = read_ipk(packages["ipk", 1])
        unpack(root, data)
        info = root / "usr" / "lib" / "opkg" / "info"
        (info / "mast.list").write_text("".join("/%s\n" % p for p in sorted(data)))
        script = info / "mast.postinst"
        script.write_bytes(control["postinst"])
    else:
        scripts, data = read_apk(packages["apk", 1])
        unpack(root, data)
        script = root / "lib" / "apk" / "db" / "mast.postinst"  # include/rootfs.mk renames post-install
        script.parent.mkdir(parents=True)
        script.write_text(scripts["post-install"])
    rel = "./" + os.path.relpath(str(script), str(root))
    r = subprocess.run([shutil.which("bash"), rel], cwd=str(root), capture_output=True, text=True, timeout=60,
                       env={"PATH": os.environ["PATH"], "IPKG_INSTROOT": str(root)})
    assert r.returncode == 0, r.stdout + r.stderr
    assert rc_links(root) == ["K10mast", "S90mast"]
    assert os.readlink(str(root / "etc" / "rc.d" / "S90mast")) == "../init.d/mast"
    assert procd_log(root) == []  # nothing started on the build host


# --- `uci commit mast; reload_config` -> /etc/init.d/mast reload (procd's reload trigger)

def set_enabled(root, value):
    conf = root / "etc" / "config" / "mast"
    text = conf.read_text()
    old = "option enabled '%s'" % ("0" if "option enabled '0'" in text else "1")
    conf.write_text(text.replace(old, "option enabled '%s'" % value))


@pytest.fixture
def installed(root, packages):
    opkg_install(root, packages["ipk", 1])
    (root / "tmp" / "procd.log").write_text("")
    return root


@needs_chroot
def test_reload_with_enabled_1_starts_a_stopped_service(installed):
    set_enabled(installed, 1)
    sh(installed, "/etc/init.d/mast reload")
    assert procd_log(installed) == ["set mast instances=1"]
    service = (installed / "var" / "run" / "fakeprocd" / "mast.service").read_text()
    assert "param command /usr/sbin/mastd --config /etc/config/mast --syslog" in service


@needs_chroot
def test_plain_reload_of_a_running_service_sends_hup_and_keeps_it(installed):
    set_enabled(installed, 1)
    sh(installed, "/etc/init.d/mast reload")
    sh(installed, "/etc/init.d/mast reload")
    assert procd_log(installed) == ["set mast instances=1", "signal mast HUP"]
    assert (installed / "var" / "run" / "fakeprocd" / "mast.running").exists()


@needs_chroot
def test_reload_with_enabled_0_stops_it_and_keeps_the_reload_trigger(installed):
    set_enabled(installed, 1)
    sh(installed, "/etc/init.d/mast reload")
    set_enabled(installed, 0)
    sh(installed, "/etc/init.d/mast reload")
    assert procd_log(installed) == ["set mast instances=1", "set mast instances=0"]
    assert not (installed / "var" / "run" / "fakeprocd" / "mast.running").exists()
    service = (installed / "var" / "run" / "fakeprocd" / "mast.service").read_text()
    assert "trigger config.change mast" in service  # `uci commit` can turn it on again
    set_enabled(installed, 1)
    sh(installed, "/etc/init.d/mast reload")
    assert procd_log(installed)[-1] == "set mast instances=1"


@needs_chroot
@pytest.mark.parametrize("header", ["config mast 'main'", "config mast"])
def test_enabled_is_read_from_the_config_mast_section_whatever_its_name(installed, header):
    # mastd takes its keys from the one `config mast` section, named or not: so does the init script
    conf = installed / "etc" / "config" / "mast"
    conf.write_text(conf.read_text().replace("config mast 'global'", header))
    set_enabled(installed, 0)
    sh(installed, "/etc/init.d/mast reload")
    sh(installed, "/etc/init.d/mast start")
    assert procd_log(installed) == ["set mast instances=0", "set mast instances=0"]
    set_enabled(installed, 1)
    sh(installed, "/etc/init.d/mast reload")
    assert procd_log(installed)[-1] == "set mast instances=1"


@needs_chroot
@pytest.mark.parametrize("edit", ["no enabled option", "no config mast section"])
def test_without_enabled_or_without_a_config_mast_section_mastd_is_started(installed, edit):
    # as mastd reads it (enabled defaults to 1); with no `config mast` at all mastd starts and
    # its log says what is missing, rather than nothing happening
    conf = installed / "etc" / "config" / "mast"
    text = conf.read_text()
    if edit == "no enabled option":
        text = text.replace("\toption enabled '0'\n", "")
    else:
        text = text.replace("config mast 'global'", "config other 'global'")
    assert text != conf.read_text()
    conf.write_text(text)
    sh(installed, "/etc/init.d/mast start")
    assert procd_log(installed) == ["set mast instances=1"]
