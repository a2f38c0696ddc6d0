"""`mast flash` verifies what it wrote by the SHA-256 the board computes
(mast_tools.flashplan.check). A board that cannot hash (its MicroPython has no hashlib) reports
no hash at all: such a file must never count as verified, whatever was expected of it."""

import os
import subprocess
import sys


import boardcli  # noqa: F401  (puts host-tools on sys.path)
from mast_tools import flashplan

sha = flashplan.sha256
CANNOT = "cannot be hashed on the board"


def test_a_file_the_board_cannot_hash_is_not_verified():
    expected = {"lib/mast/wire.mpy": sha(b"wire"), "boot.py": sha(b"boot")}
    ok, bad = flashplan.check(expected, {"lib/mast/wire.mpy": None, "boot.py": sha(b"boot")})
    assert ok == ["boot.py"]
    assert bad == [("lib/mast/wire.mpy", CANNOT)]


def test_a_staged_file_the_board_cannot_hash_is_not_verified():
    expected = {"lib/mast/wire.mpy": sha(b"wire"), "lib/board/main.mpy": sha(b"main")}
    got = {"lib.new/mast/wire.mpy": None, "lib.new/board/main.mpy": sha(b"main")}
    ok, bad = flashplan.check(expected, got, where=flashplan.staged_path)
    assert ok == ["lib/board/main.mpy"]
    assert bad == [("lib/mast/wire.mpy", CANNOT)]


def test_a_board_without_hashlib_verifies_nothing_end_to_end(tmp_path):
    # the board's own hash script, run where `import hashlib` fails as on a build without it
    files = {"lib/mast/wire.mpy": b"wire", "lib/board/main.mpy": b"main", "boot.py": b"boot"}
    for path, data in files.items():
        os.makedirs(os.path.dirname(str(tmp_path / path)) or str(tmp_path), exist_ok=True)
        (tmp_path / path).write_bytes(data)
    script = "import sys\nsys.modules['hashlib'] = None\n" + flashplan.hash_script(["lib"], ["boot.py"])
    r = subprocess.run([sys.executable, "-"], input=script, cwd=str(tmp_path), stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, universal_newlines=True, timeout=60)
    assert r.returncode == 0, r.stdout
    got, dirs = flashplan.parse_hashes(r.stdout.encode())
    assert got == dict((p, None) for p in files) and "lib/mast" in dirs
    ok, bad = flashplan.check(dict((p, sha(d)) for p, d in files.items()), got)
    assert ok == []
    assert sorted(bad) == sorted((p, CANNOT) for p in files)
    # and the plan sends every file again rather than trusting what is there
    p = flashplan.plan(files, got, dirs)
    assert sorted(p.copy) == sorted(files) and p.skip == []


def test_a_kept_file_neither_side_could_hash_is_not_verified():
    # plan() expects a kept file (app.py, another library in /lib) to keep the hash the board
    # reported, which is None on a board without hashlib; nothing was verified then
    ok, bad = flashplan.check({"app.py": None, "lib/umqtt/simple.py": None},
                              {"app.py": None, "lib/umqtt/simple.py": None})
    assert ok == []
    assert sorted(bad) == [("app.py", CANNOT), ("lib/umqtt/simple.py", CANNOT)]


def test_a_hash_that_differs_only_after_its_first_characters_is_not_verified():
    # the whole SHA-256 is compared: a file whose hash shares the first 12 hex digits (what the
    # error shows) but not the rest did not land as sent
    want = sha(b"wire")
    near = want[:12] + ("0" if want[12] != "0" else "1") + want[13:]
    ok, bad = flashplan.check({"lib/mast/wire.mpy": want, "boot.py": sha(b"boot")},
                              {"lib/mast/wire.mpy": near, "boot.py": sha(b"boot")})
    assert ok == ["boot.py"]
    assert bad == [("lib/mast/wire.mpy", "SHA-256 %s..., expected %s..." % (near[:12], want[:12]))]
