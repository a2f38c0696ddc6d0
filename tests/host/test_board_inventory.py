# The console's `inventory` op (firmware/board/consoleops.py report()): what `mast flash
# --dry-run` compares with the files it would send, read while the firmware runs. Each file
# under lib/ and each of the root files the board has is named with its SHA-256; folders are
# listed; a missing root file is left out (flash then sends it).

import hashlib
import os

from board import consoleops


def _write(path, data):
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def test_inventory_hashes_every_lib_file_and_the_root_files_the_board_has(tmp_path, monkeypatch):
    files = {"lib/board/main.mpy": b"m" * 1300,  # longer than the 512-byte buffer it reads with
             "lib/board/up_ppp.mpy": b"",
             "lib/mast/config.mpy": b"schema",
             "boot.py": b"import main\n",
             "board.json": b"{}",
             "mast.json": b'{"name": "b1"}'}
    for p, data in files.items():
        _write(str(tmp_path / p), data)
    os.makedirs(str(tmp_path / "main.py"))  # a folder where a root file would be: not a file
    monkeypatch.chdir(tmp_path)
    rep = consoleops.report()
    assert rep["hashes"] == {p: hashlib.sha256(d).hexdigest() for p, d in files.items()}
    assert rep["dirs"] == ["lib", "lib/board", "lib/mast"]
    assert rep["info"]["sha256"] is True and rep["info"]["name"] == "cpython"


def test_inventory_of_a_board_without_lib_names_only_its_root_files(tmp_path, monkeypatch):
    _write(str(tmp_path / "boot.py"), b"x")
    monkeypatch.chdir(tmp_path)
    rep = consoleops.report()
    assert rep["hashes"] == {"boot.py": hashlib.sha256(b"x").hexdigest()} and rep["dirs"] == []
