"""`mast genkey --fleet`: a fleet member's key, the core's own derivation (docs/CONFIG.md "A fleet
on one server"), read from a file or stdin, never from the command line, never echoed."""

import base64
import subprocess
import sys

import boardcli  # noqa: F401  (host-tools on sys.path)
from boardcli import env_for_mast, mast

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
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr == ("mast: cannot read the fleet key %s (No such file or directory); give the file "
                        "`mast genkey > fleet.psk` wrote\n" % (tmp_path / "missing.psk"))
    r = mast("genkey", "--fleet", str(tmp_path), "--name", "x.y")  # (the reason tells them apart)
    assert r.returncode == 1 and r.stderr.startswith("mast: cannot read the fleet key %s (Is a directory); "
                                                     % tmp_path)
    r = mast("genkey", "--name", "x.y")
    assert r.returncode == 1 and r.stderr.startswith("mast: --name goes with --fleet; ")


def test_a_fleet_key_file_that_is_not_text_is_not_a_fleet_key_and_none_of_its_bytes_show(tmp_path):
    # it was a traceback quoting a byte of the file (UnicodeDecodeError: ... byte 0xc3 ...)
    bad = tmp_path / "binary.psk"
    secret = b"\xc3\x28" + bytes(range(128, 228))
    bad.write_bytes(secret)
    r = mast("genkey", "--fleet", str(bad), "--name", "b1.boards.example")
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr == ("mast: %s is not a fleet key; it must hold standard base64 of exactly 32 bytes "
                        "(`mast genkey`)\n" % bad)
    p = subprocess.run([sys.executable, "-m", "mast_tools", "genkey", "--fleet", "-", "--name",
                        "b1.boards.example"], input=secret, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, env=env_for_mast(), timeout=60)
    assert p.returncode == 1 and p.stdout == b""
    assert p.stderr == (b"mast: standard input is not a fleet key; it must hold standard base64 of "
                        b"exactly 32 bytes (`mast genkey`)\n")
    # nothing at all (an empty pipe, Enter at the prompt): said so, not "is not a fleet key"
    for given in (b"", b"\n"):
        p = subprocess.run([sys.executable, "-m", "mast_tools", "genkey", "--fleet", "-", "--name",
                            "b1.boards.example"], input=given, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, env=env_for_mast(), timeout=60)
        assert (p.returncode, p.stdout) == (1, b"")
        assert p.stderr == b"mast: standard input is empty; give the fleet key (`mast genkey` made it)\n"
    empty = tmp_path / "empty.psk"
    empty.write_text("")
    r = mast("genkey", "--fleet", str(empty), "--name", "b1.boards.example")
    assert (r.returncode, r.stderr) == (1, "mast: %s is empty; give the fleet key (`mast genkey` made it)\n"
                                        % empty)


def test_a_name_no_board_can_have_is_refused_and_no_key_printed(tmp_path):
    f = tmp_path / "fleet.psk"
    f.write_text(FLEET + "\n")
    for name in ("bad name!", "a" * 300, "b7_x.boards.example"):
        r = mast("genkey", "--fleet", str(f), "--name", name)
        assert r.returncode == 1 and r.stdout == "", name
        assert r.stderr == ("mast: --name is not a board's name: it must be 1 to 63 characters of "
                            "A-Za-z0-9.-; give the member's name as its `name` key has it, e.g. "
                            "--name board7.boards.example\n"), name
    assert mast("genkey", "--fleet", str(f), "--name", "a" * 63).returncode == 0


def test_a_fleet_key_from_a_terminal_is_asked_for_and_not_echoed(monkeypatch, capsys):
    # (`--fleet -` at a terminal waited for Ctrl-D with no prompt, echoing the key)
    import argparse
    import getpass

    import pytest

    from mast_tools import cmd_genkey
    from mast_tools.errors import CommandError

    class Tty:
        def isatty(self):
            return True

    asked = []
    monkeypatch.setattr(sys, "stdin", Tty())
    monkeypatch.setattr(getpass, "getpass", lambda prompt: asked.append(prompt) or FLEET)
    args = argparse.Namespace(fleet="-", name="b7.boards.example", json=False)
    assert cmd_genkey.do_genkey(args) == 0
    assert asked == ["the fleet key (not shown; Enter ends it): "]
    assert len(base64.b64decode(capsys.readouterr().out.strip())) == 32
    monkeypatch.setattr(getpass, "getpass", lambda prompt: "secret-looking")
    with pytest.raises(CommandError) as e:
        cmd_genkey.do_genkey(args)
    assert e.value.what == "standard input is not a fleet key" and "secret-looking" not in str(e.value)
