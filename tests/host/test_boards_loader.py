"""host-tools/mast_tools/boards.py: `--board NAME` or a path to a definition, the listing of
boards/, and which definitions suit the board that answers (flash, sim-board, hwtest)."""

import json
import os
import shutil

import pytest

import boardcli  # noqa: F401  (host-tools on sys.path)

from mast_tools import boards
from mast_tools.errors import CommandError


def _copy(name, dest):
    shutil.copy(os.path.join(boards.BOARDS_DIR, name + ".json"), str(dest))
    return dest


def test_a_relative_json_file_in_the_current_folder_is_a_path_not_a_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _copy("unix-sim", tmp_path / "mine.json")
    assert boards.path_of("mine.json") == "mine.json"
    assert boards.load("mine.json")[0]["name"] == "unix-sim"


def test_a_path_with_a_folder_is_a_path_whatever_its_file_is_called(tmp_path):
    p = str(_copy("rpi-pico-w", tmp_path / "pico"))  # no .json
    assert boards.path_of(p) == p
    assert boards.load(p)[0]["port"] == "rp2"
    assert boards.path_of("esp32-devkitc") == os.path.join(boards.BOARDS_DIR, "esp32-devkitc.json")


def test_a_missing_path_or_name_is_a_command_error_naming_the_choices(tmp_path):
    for name in (str(tmp_path / "gone.json"), str(tmp_path / "gone"), "no-such-board", "x.json"):
        assert boards.path_of(name) is None, name
        with pytest.raises(CommandError) as e:
            boards.load(name)
        assert e.value.what == "no board definition %r" % name
        assert "esp32-devkitc, esp32-sim7600," in e.value.hint and "unix-sim" in e.value.hint


def test_a_definition_the_schema_refuses_is_a_command_error_naming_the_file(tmp_path):
    doc = json.loads(open(os.path.join(boards.BOARDS_DIR, "unix-sim.json")).read())
    doc["port"] = "z80"
    p = tmp_path / "bad.json"
    p.write_text(json.dumps(doc))
    with pytest.raises(CommandError) as e:
        boards.load(str(p))
    assert e.value.what.startswith("board definition %s: " % p) and "port" in e.value.what
    p.write_bytes(b"\xff{")
    with pytest.raises(CommandError) as e:
        boards.load(str(p))
    assert e.value.what.startswith("board definition %s: " % p)


def test_a_broken_definition_in_boards_is_left_out_of_the_listing(tmp_path, monkeypatch):
    for n in ("unix-sim", "rpi-pico-w"):
        _copy(n, tmp_path / (n + ".json"))
    (tmp_path / "half-written.json").write_text('{"name": "half-written", "port": "es')
    (tmp_path / "README.md").write_text("not a definition")
    monkeypatch.setattr(boards, "BOARDS_DIR", str(tmp_path))
    assert boards.names() == ["half-written", "rpi-pico-w", "unix-sim"]
    assert [n for n, _, _ in boards.listing()] == ["rpi-pico-w", "unix-sim"]
    assert boards.matching("rp2") == ["rpi-pico-w"]
    assert boards.matching("linux") == boards.matching("darwin") == ["unix-sim"]


def test_a_definition_suits_the_platforms_of_its_port_and_names_the_ones_that_fit():
    sim = boards.load("unix-sim")[0]
    assert boards.mismatch(sim, "linux") is None and boards.mismatch(sim, "darwin") is None
    assert boards.mismatch(sim, "linux", (1, 22, 1)) is None
    err = boards.mismatch(sim, "esp32")
    esp32 = boards.matching("esp32")
    assert len(esp32) > 1 and "esp32-devkitc" in esp32 and "rpi-pico-w" not in esp32
    assert err.what == ("unix-sim is for unix boards, but this board runs MicroPython on esp32 (a "
                        "esp32 board); nothing was changed on it")
    assert err.hint == "use --board with one of: " + ", ".join(esp32)
    err = boards.mismatch(sim, "win32")
    assert err.what.endswith("runs MicroPython on 'win32'; nothing was changed on it")
    assert err.hint.startswith("no definition in boards/ suits it")
    err = boards.mismatch(sim, "linux", (1, 21, 9))
    assert err.what == "the board runs MicroPython 1.21.9; the MAST firmware needs 1.22.0 or newer"
