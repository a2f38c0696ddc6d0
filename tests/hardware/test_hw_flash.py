"""Flashing a board: everything verified, nothing copied twice, maintenance cleared."""

import os

from mast_tools import flashplan
from mast_tools.firmware import FIRMWARE_DIR


def firmware_paths(definition):
    """The board paths of the firmware for this board (lib/<pkg>/*.mpy of the modules it loads,
    the root files)."""
    out = set()
    for pkg in flashplan.PACKAGES:
        for dirpath, dirnames, filenames in os.walk(os.path.join(FIRMWARE_DIR, pkg)):
            dirnames[:] = [d for d in dirnames if d not in ("__pycache__", "root")]
            for name in filenames:
                if name.endswith(".py"):
                    rel = os.path.relpath(os.path.join(dirpath, name), FIRMWARE_DIR).replace(os.sep, "/")
                    out.add("lib/" + rel[:-3] + ".mpy")
    needed = flashplan.board_modules(definition)
    out -= set("lib/%s.mpy" % m for m in flashplan.CONDITIONAL if m not in needed)
    return out | {"boot.py", "main.py", "app.py", "board.json"}


def test_flash_installs_the_firmware_and_verifies_every_file(hw, flashed):
    want = firmware_paths(hw.definition)
    assert want <= set(flashed["verified"]), sorted(want - set(flashed["verified"]))
    assert set(flashed["copied"]) <= set(flashed["verified"])
    assert set(flashed["copied"]) | set(flashed["skipped"]) | set(flashed["kept"]) >= want
    assert flashed["version"] == hw.version
    if not hw.real:  # a plain MicroPython board: it got everything
        assert flashed["bare"] is True
        assert set(flashed["copied"]) == want
    with hw.console() as con:
        hello = con.wait_hello(30)
    assert hello["mode"] == "normal" and hello["board"] == hw.definition["name"]


def test_reflash_with_nothing_changed_copies_nothing(hw, flashed):
    again = hw.flash()
    assert again["copied"] == []
    assert set(again["verified"]) == set(flashed["verified"])
    assert again["bare"] is False and again["version"] == hw.version


def test_the_maintenance_flag_survives_a_reboot_and_flash_clears_it(hw, flashed):
    with hw.console() as con:
        con.wait_hello(30)
        assert con.call("maintenance", state="on") == {"maintenance": True, "rebooting": True}
        assert con.wait_hello(30, mode="maintenance")["mode"] == "maintenance"
        st = hw.reboot(con)
        assert st["mode"] == "maintenance" and st["maintenance"] == "requested from the console"
        assert st["uplinks"] == {} and st["watchdog"] is None  # nothing runs but the console
    report = hw.flash()
    assert report["copied"] == []
    with hw.console() as con:
        assert con.wait_hello(30)["mode"] == "normal"
        st = con.call("status")
    assert st["mode"] == "normal" and "maintenance" not in st
