"""`mast genkey --fleet`: a fleet member's key, the core's own derivation (docs/CONFIG.md "A fleet
on one server"), read from a file or stdin, never from the command line, never echoed."""

import base64

import boardcli  # noqa: F401  (host-tools on sys.path)
from boardcli import mast

from mast_tools.firmware import use_firmware

FLEET = base64.b64encode(bytes(range(100, 132))).decode()


def test_the_member_key_is_the_cores_derivation_of_the_fleet_key_and_name(tmp_path):
    f = tmp_path / "fleet.psk"
    f.write_text(FLEET + "\n")
    r = mast("genkey", "--fleet", str(f), "--name", "b7.boards.example")
    assert r.returncode == 0 and r.stderr == ""
    use_firmware()
    from mast import keys

    want = base64.b64encode(keys.fleet_key({"fleet_psk": FLEET}, "b7.boards.example")).decode()
    assert r.stdout == want + "\n"
    other = mast("genkey", "--fleet", str(f), "--name", "b8.boards.example").stdout.strip()
    assert other != want and len(base64.b64decode(other)) == 32
    doc = mast("genkey", "--fleet", "-", "--name", "b7.boards.example", "--json", input=FLEET).doc
    assert doc == {"psk": want, "bytes": 32, "name": "b7.boards.example"}


def test_a_bad_fleet_key_or_a_missing_name_is_a_clear_error_that_shows_no_key(tmp_path):
    bad = tmp_path / "bad.psk"
    bad.write_text("not-a-key-but-secret-looking\n")
    r = mast("genkey", "--fleet", str(bad), "--name", "b1.boards.example")
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr.startswith("mast: %s is not a fleet key; " % bad) and "secret-looking" not in r.stderr
    r = mast("genkey", "--fleet", str(bad))
    assert r.returncode == 1 and r.stderr.startswith("mast: --fleet needs --name; ")
    r = mast("genkey", "--fleet", str(tmp_path / "missing.psk"), "--name", "x.y")
    assert r.returncode == 1 and r.stderr.startswith("mast: cannot read the fleet key ")
    r = mast("genkey", "--name", "x.y")
    assert r.returncode == 1 and r.stderr.startswith("mast: --name goes with --fleet; ")
