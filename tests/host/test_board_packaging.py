"""Packaging of the board firmware: firmware/manifest.py (freezing, micropython-lib style) and
firmware/package.json (`mpremote mip install`) name every file that runs on a board, every
name is a real file, and firmware/mastd (Linux only) is never among them. And a real
`mpremote mip install` of firmware/package.json onto the simulated board boots."""

import json
import os
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
FIRMWARE = os.path.join(ROOT, "firmware")
sys.path.insert(0, os.path.join(ROOT, "host-tools"))


def device_files():
    """Every .py under firmware/ except firmware/mastd and the packaging itself."""
    out = set()
    for dirpath, dirnames, filenames in os.walk(FIRMWARE):
        dirnames[:] = [d for d in dirnames if d not in ("__pycache__", "mastd")]
        for name in filenames:
            if name.endswith(".py"):
                rel = os.path.relpath(os.path.join(dirpath, name), FIRMWARE).replace(os.sep, "/")
                if rel != "manifest.py":
                    out.add(rel)
    return out


def manifest_files():
    """Run manifest.py as MicroPython's tools/manifestfile.py does, with its functions
    recording what they are given."""
    named, meta = [], {}

    def package(path, files=None, base_path=".", opt=None):
        assert files is not None, "list the files of package %s" % path
        named.extend(path + "/" + f for f in files)

    def module(path, base_path=".", opt=None):
        named.append(path)

    env = {"package": package, "module": module, "metadata": lambda **kw: meta.update(kw),
           "require": lambda *a, **kw: None, "include": lambda *a, **kw: None}
    with open(os.path.join(FIRMWARE, "manifest.py")) as f:
        exec(compile(f.read(), "manifest.py", "exec"), env)
    return named, list(env.get("DEVICE_ROOT", ())), meta


def test_manifest_has_metadata_and_names_every_device_file():
    frozen, root, meta = manifest_files()
    assert meta["version"] and "MAST" in meta["description"]
    assert len(frozen) == len(set(frozen))
    missing = device_files() - set(frozen) - set(root)
    assert not missing, "not in firmware/manifest.py: %s" % sorted(missing)
    assert set(root) == {"board/root/main.py", "board/root/boot.py", "board/root/app.py"}


def test_every_file_the_manifest_names_exists_and_none_is_mastd():
    frozen, root, meta = manifest_files()
    for rel in frozen + root:
        assert os.path.isfile(os.path.join(FIRMWARE, rel)), rel
        assert not rel.startswith("mastd/"), rel
    assert not [f for f in frozen if f.startswith("board/root/")]  # a board runs those from its fs


def test_package_json_names_every_device_file_and_each_exists():
    with open(os.path.join(FIRMWARE, "package.json")) as f:
        doc = json.load(f)
    assert doc["version"] and doc.get("deps", []) == []
    dests = [d for d, src in doc["urls"]]
    assert len(dests) == len(set(dests))
    for dest, src in doc["urls"]:
        assert dest == src, "installed where it is in firmware/: %s" % dest
        assert not src.startswith(("mastd/", "/", "http", "github:")), src  # relative: github: and local
        assert os.path.isfile(os.path.join(FIRMWARE, src)), src
    missing = device_files() - set(dests)
    assert not missing, "not in firmware/package.json: %s" % sorted(missing)


def test_manifest_and_package_json_agree_on_the_version():
    with open(os.path.join(FIRMWARE, "package.json")) as f:
        assert json.load(f)["version"] == manifest_files()[2]["version"]


def test_json_on_the_device_falls_back_to_ujson():
    with open(os.path.join(FIRMWARE, "board", "compat.py")) as f:
        src = f.read()
    assert "import json\nexcept ImportError" in src and "import ujson as json" in src


def test_mip_install_of_package_json_onto_the_sim_board_boots_the_firmware(micropython, tmp_path):
    """The way a PSRAM or RP2040 board gets the firmware: .py sources through mip, compiled on
    the board. The sim board starts bare, mip installs into its lib dir, board.install puts
    main.py/boot.py/app.py at the root, and a reset boots the firmware from .py."""
    from mast_tools import simboard

    folder = str(tmp_path / "board")
    with simboard.SimBoardProcess(folder, "--bare", "--soft-reset", "--heapsize", "512K") as sb:
        def mpremote(*args):
            return subprocess.run([sys.executable, "-m", "mpremote", "connect", sb.device] + list(args),
                                  stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, universal_newlines=True, timeout=120)

        r = mpremote("mip", "install", os.path.join(FIRMWARE, "package.json"))
        assert r.returncode == 0, r.stdout
        assert os.path.isfile(os.path.join(folder, "lib", "board", "main.py"))
        assert not os.path.exists(os.path.join(folder, "lib", "mastd"))
        r = mpremote("exec", "import board.install")
        assert r.returncode == 0 and "installed main.py" in r.stdout, r.stdout
        with open(os.path.join(folder, "board.json"), "w") as f:
            with open(os.path.join(ROOT, "boards", "unix-sim.json")) as src:
                f.write(src.read())
        with open(os.path.join(folder, "mast.json"), "w") as f:
            json.dump({"name": "mip-board", "port": 47951}, f)
        con = simboard.BoardConsole(sb.device)
        try:
            mpremote("reset")
            con.wait(lambda c: any(x.get("log") == "boot" for x in c.logs), 30)
            assert con.call("hello", timeout=20)["board"] == "unix-sim"
            assert con.call("get", key="name") == "mip-board"
        finally:
            con.close()


_INSTALL_CUT_IN_BOOT_PY = """
import builtins, os, runpy, sys
real_open = builtins.open
class Cut:
    def __init__(self, f):
        self.f = f
    def write(self, data):  # half of it reaches the flash, then the power goes
        self.f.write(data[:len(data) // 2])
        self.f.flush()
        os._exit(9)
def cut_open(name, mode="r", *a, **kw):
    f = real_open(name, mode, *a, **kw)
    return Cut(f) if "w" in mode and os.path.basename(name).startswith("boot.py") else f
builtins.open = cut_open
runpy.run_path(sys.argv[1], run_name="__main__")
"""


def test_board_install_cut_off_while_it_writes_a_file_writes_it_whole_when_run_again(tmp_path):
    # (the board unplugged during `exec "import board.install"`): run again, it must not keep
    # the half-written boot.py as a file of the user's
    install = os.path.join(FIRMWARE, "board", "install.py")
    r = subprocess.run([sys.executable, "-c", _INSTALL_CUT_IN_BOOT_PY, install], cwd=str(tmp_path),
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, timeout=60)
    assert r.returncode == 9, r.stdout
    r = subprocess.run([sys.executable, install], cwd=str(tmp_path), stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, universal_newlines=True, timeout=60)
    assert r.returncode == 0, r.stdout
    for name in ("main.py", "boot.py", "app.py"):
        with open(os.path.join(FIRMWARE, "board", "root", name), "rb") as f:
            assert (tmp_path / name).read_bytes() == f.read(), name


def test_board_install_copies_the_root_files_but_keeps_those_already_there(tmp_path):
    """board.install after `mip install`: main.py, boot.py and app.py go to the root folder,
    and a file the user already has there (their own app.py) is kept as it is."""
    (tmp_path / "app.py").write_bytes(b"# my app\n")
    r = subprocess.run([sys.executable, os.path.join(FIRMWARE, "board", "install.py")], cwd=str(tmp_path),
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, timeout=60)
    assert r.returncode == 0, r.stdout
    assert r.stdout.split("\n") == ["installed main.py", "installed boot.py", "kept app.py", ""], r.stdout
    assert (tmp_path / "app.py").read_bytes() == b"# my app\n"
    for name in ("main.py", "boot.py"):
        with open(os.path.join(FIRMWARE, "board", "root", name), "rb") as f:
            assert (tmp_path / name).read_bytes() == f.read()
