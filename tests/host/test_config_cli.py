"""`mast config` against a simulated board over pyserial: every action, values typed as the
schema says, secrets that never come back, export/import that leave them alone, and the errors
a user meets: a wrong port, a busy one, one they may not open, a board without the firmware,
a value or a configuration the board refuses."""

import json
import os
import subprocess
import sys

import pytest

from boardcli import PSK, as_nobody, env_for_mast, holding, mast, sim_board

from mast_tools.cmd_config import apply_text, import_ops, leaves, show_value, status_text, unredact


@pytest.fixture(scope="module")
def board(tmp_path_factory):
    from boardcli import simboard

    if simboard.find_micropython() is None:
        pytest.skip("the MicroPython unix port is not installed")
    folder = str(tmp_path_factory.mktemp("cfg") / "board")
    with sim_board(folder) as sb:
        yield sb.device, folder


def cfg(board, *args, **kw):
    return mast("config", "--port", board[0], *args, **kw)


def on_flash(board):
    with open(os.path.join(board[1], "mast.json")) as f:
        return json.load(f)


def test_get_shows_the_whole_configuration_or_one_key(board):
    r = cfg(board, "get", "--json")
    assert r.returncode == 0, r.stderr
    assert r.doc["name"] == "board1" and r.doc["uplinks"]["eth"] == {"kind": "sim", "priority": 10, "cost": 0}
    r = cfg(board, "get")
    assert "uplinks.cell.cost = 10\n" in r.stdout and 'name = "board1"' in r.stdout
    assert cfg(board, "get", "uplinks.eth.priority").stdout == "10\n"
    assert cfg(board, "get", "uplinks.wifi", "--json").doc == {"kind": "sim", "priority": 20, "cost": 0}


def test_set_takes_json_text_typed_by_the_schema_and_secrets_from_stdin(board):
    assert cfg(board, "set", "uplinks.cell.cost", "20").doc is None  # text output
    r = cfg(board, "set", "peers.hub.addresses", "127.0.0.10, 127.0.0.11:7000", "--json")
    assert r.returncode == 0 and r.doc == {"key": "peers.hub.addresses", "pending": True}
    cfg(board, "set", "peers.hub.initiate", "no")
    r = cfg(board, "set", "peers.hub.psk", "-", input=PSK + "\n")
    assert r.returncode == 0 and PSK not in r.stdout + r.stderr
    assert r.stdout.startswith("peers.hub.psk = <redacted> (in the candidate")
    hub = cfg(board, "get", "peers.hub", "--json").doc
    assert hub["addresses"] == ["127.0.0.10", "127.0.0.11:7000"] and hub["initiate"] is False
    assert hub["psk"] == "<redacted>"
    assert cfg(board, "get", "uplinks.cell.cost", "--json").doc == 20
    cfg(board, "set", "peers.hub.dns", '"hub.example"')  # JSON text stays text
    assert cfg(board, "get", "peers.hub.dns").stdout == "hub.example\n"
    r = cfg(board, "unset", "peers.hub.dns", "--json")
    assert r.doc == {"key": "peers.hub.dns", "pending": True}


def test_validate_commit_apply_and_status(board):
    cfg(board, "set", "peers.half.initiate", "false")  # a peer without its key: not valid
    r = cfg(board, "validate")
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr == ("mast: the configuration is not valid: peers.half.psk: required when keying "
                        "is psk; set or unset that key (mast config get shows it), then validate again\n")
    r = cfg(board, "commit")
    assert r.returncode == 1 and "peers.half.psk" in r.stderr
    assert cfg(board, "unset", "peers.half").returncode == 0
    assert cfg(board, "validate").stdout == "the candidate configuration is valid\n"
    st = cfg(board, "status", "--json").doc
    assert st["config"]["uncommitted"] is True
    r = cfg(board, "commit", "--json")
    assert r.doc["committed"] is True and r.doc["bytes"] > 0
    saved = on_flash(board)
    assert saved["peers"]["hub"]["psk"] == PSK and saved["uplinks"]["cell"]["cost"] == 20
    r = cfg(board, "apply")
    assert r.returncode == 0 and r.stdout == "applied; associations kept\n"
    text = cfg(board, "status").stdout
    assert text.startswith("board unix-sim, firmware 0.1.0, normal mode, up ")
    assert "  cell   up    127.0.0.4       priority 30 cost 20" in text
    st = cfg(board, "status", "--json").doc
    assert not st["config"]["uncommitted"] and not st["config"]["unapplied"]


def test_a_key_whose_value_is_text_takes_digits_and_words_as_typed(board):
    # "1234" was read as JSON first (the number 1234): the board refused a PIN of digits,
    # a password of digits, an SSID "2024" or "true", an APN "1234"
    for key, value in (("uplinks.cell.sim_pin", "1234"), ("uplinks.wifi.ssid", "2024"),
                       ("uplinks.cell.apn", "1234")):
        r = cfg(board, "set", key, value)
        assert r.returncode == 0 and r.stderr == "", (key, r.stderr)
    r = cfg(board, "set", "uplinks.wifi.password", "-", input="12345678\n")
    assert r.returncode == 0 and "12345678" not in r.stdout + r.stderr
    assert cfg(board, "get", "uplinks.wifi.ssid", "--json").doc == "2024"
    assert cfg(board, "set", "uplinks.eth.device", "true", "--json").returncode == 0
    assert cfg(board, "get", "uplinks.eth.device", "--json").doc == "true"
    r = cfg(board, "commit")
    assert r.returncode == 0, r.stderr
    saved = on_flash(board)["uplinks"]
    assert saved["cell"]["sim_pin"] == "1234" and saved["cell"]["apn"] == "1234"
    assert saved["wifi"] == {"ssid": "2024", "password": "12345678"} and saved["eth"]["device"] == "true"
    for key in ("uplinks.cell.sim_pin", "uplinks.cell.apn", "uplinks.wifi.ssid", "uplinks.wifi.password",
                "uplinks.eth.device"):
        assert cfg(board, "unset", key).returncode == 0
    assert cfg(board, "commit").returncode == 0


def test_export_redacts_and_import_leaves_redacted_secrets_alone(board, tmp_path):
    cfg(board, "set", "peers.hub.psk", PSK, "--commit")
    out = tmp_path / "exported.json"
    r = cfg(board, "export", "-o", str(out))
    assert r.returncode == 0 and r.stdout == ""
    doc = json.loads(out.read_text())
    assert doc["peers"]["hub"]["psk"] == "<redacted>" and PSK not in out.read_text()
    assert json.loads(cfg(board, "export").stdout) == doc  # to stdout as well
    r = cfg(board, "import", str(out), "--json")
    assert r.returncode == 0 and r.doc["changed"] == [] and r.doc["secrets_kept"] == ["peers.hub.psk"]
    # edit the file: another cost, one peer gone, one added
    doc["uplinks"]["eth"]["cost"] = 5
    del doc["peers"]["hub"]
    doc["peers"]["hub2"] = {"psk": PSK.replace("q", "Q"), "addresses": ["127.0.0.12"]}
    cfg(board, "set", "peers.keep.psk", PSK)
    doc["peers"]["keep"] = {"psk": "<redacted>"}
    out.write_text(json.dumps(doc))
    r = cfg(board, "import", str(out), "--commit", "--json")
    assert r.returncode == 0, r.stderr
    assert "unset peers.hub" in r.doc["changed"] and "set uplinks.eth.cost" in r.doc["changed"]
    assert r.doc["commit"]["committed"] is True
    saved = on_flash(board)
    assert "hub" not in saved["peers"] and saved["peers"]["hub2"]["addresses"] == ["127.0.0.12"]
    assert saved["peers"]["keep"]["psk"] == PSK  # as it was on the board
    assert saved["uplinks"]["eth"]["cost"] == 5
    # a file with a bad value: named, and refused
    doc["uplinks"]["eth"]["cost"] = 999
    out.write_text(json.dumps(doc))
    r = cfg(board, "import", str(out))
    assert r.returncode == 1
    assert r.stderr.startswith("mast: %s: uplinks.eth.cost: must be an integer from 0 to 255; " % out)


def test_an_import_whose_keys_are_each_valid_but_not_together_ends_with_the_validate_error(board, tmp_path):
    # every key of the file is set without error, but the whole is not valid (a peer without
    # its key): import must say so and fail, not report the changes as if all were well
    out = tmp_path / "half.json"
    assert cfg(board, "export", "-o", str(out)).returncode == 0
    doc = json.loads(out.read_text())
    doc.setdefault("peers", {})["half"] = {"initiate": False}
    out.write_text(json.dumps(doc))
    try:
        r = cfg(board, "import", str(out), "--json")
        assert r.returncode == 1 and r.stdout == "", r.stdout
        assert r.stderr == ("mast: the configuration is not valid: peers.half.psk: required when keying "
                            "is psk; set or unset that key (mast config get shows it), then validate again\n")
    finally:
        assert cfg(board, "unset", "peers.half").returncode == 0
    assert cfg(board, "validate").returncode == 0


def test_validate_file_checks_on_this_pc_with_the_board_definition(tmp_path):
    f = tmp_path / "c.json"
    f.write_text(json.dumps({"name": "b", "peers": {"hub": {"psk": "<redacted>"}},
                             "uplinks": {"eth": {"cost": 1}}}))
    r = mast("config", "validate", str(f))
    assert r.returncode == 0 and "is valid (schema only" in r.stdout
    r = mast("config", "validate", str(f), "--board", "olimex-esp32-poe", "--json")
    assert r.returncode == 0 and r.doc == {"valid": True, "file": str(f), "board": "olimex-esp32-poe"}
    r = mast("config", "validate", str(f), "--board", "esp32-devkitc")
    assert r.returncode == 1
    assert r.stderr.startswith("mast: %s is not valid: uplinks.eth: this board has no such uplink (it has wifi)" % f)


def test_validate_file_with_port_checks_against_the_board_that_answers(board, tmp_path):
    # no --board: the definition is the one the board on the port names in its hello (the
    # simulated board is a unix-sim: uplinks eth, wifi and cell, no ppp)
    f = tmp_path / "c.json"
    f.write_text(json.dumps({"name": "b", "uplinks": {"cell": {"cost": 5}}}))
    r = cfg(board, "validate", str(f), "--json")
    assert r.returncode == 0, r.stderr
    assert r.doc == {"valid": True, "file": str(f), "board": "unix-sim"}
    assert cfg(board, "validate", str(f)).stdout == "%s is valid for unix-sim\n" % f
    f.write_text(json.dumps({"name": "b", "uplinks": {"ppp": {"cost": 5}}}))
    r = mast("config", "validate", str(f))  # (the schema alone takes any uplink name)
    assert r.returncode == 0 and "is valid (schema only" in r.stdout
    r = cfg(board, "validate", str(f))
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr.startswith("mast: %s is not valid: uplinks.ppp: this board has no such uplink "
                               "(it has " % f), r.stderr


def test_validate_file_refuses_a_peer_address_that_is_a_group_with_or_without_the_board(tmp_path):
    f = tmp_path / "c.json"
    f.write_text(json.dumps({"name": "b", "peers": {"hub": {"psk": "<redacted>", "addresses": ["239.1.2.3"]}}}))
    want = ("mast: %s is not valid: peers.hub.addresses: bad item '239.1.2.3': a multicast address is "
            "not a peer's; give the peer's own (unicast) address" % f)
    for board in ([], ["--board", "esp32-devkitc"]):
        r = mast("config", "validate", str(f), *board)
        assert r.returncode == 1 and r.stderr.startswith(want), (board, r.stderr)


def test_a_set_the_board_refuses_names_the_key(board):
    r = cfg(board, "set", "port", "70000")
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr.startswith("mast: port: must be an integer from 1 to 65535; ")
    r = cfg(board, "set", "peers.x.psk", "A" * 43)
    assert r.stderr.startswith("mast: peers.x.psk: must be standard base64 of exactly 32 bytes;")
    assert "A" * 43 not in r.stderr  # never echoes a secret



def test_a_wifi_name_in_utf8_reaches_the_boards_flash_and_a_dns_name_read_as_an_address_is_refused(
        board, tmp_path):
    # "Caf\u00e9" and "\u5bb6" were refused (printable ASCII only): an SSID is 1 to 32 bytes
    ssid = "Caf\u00e9 \u5bb6"
    r = cfg(board, "set", "uplinks.wifi.ssid", ssid, "--commit")
    assert r.returncode == 0, r.stderr
    assert cfg(board, "get", "uplinks.wifi.ssid", "--json").doc == ssid
    assert on_flash(board)["uplinks"]["wifi"]["ssid"] == ssid
    r = cfg(board, "set", "uplinks.wifi.ssid", "\u5bb6" * 11)  # 33 bytes
    assert r.returncode == 1 and r.stderr.startswith(
        "mast: uplinks.wifi.ssid: must be 1 to 32 bytes of UTF-8 text (no control characters); ")
    assert cfg(board, "unset", "uplinks.wifi.ssid", "--commit").returncode == 0
    # 1.2.3 was taken, and getaddrinfo sent to 1.2.0.3; a..b failed only at the lookup
    for name in ("1.2.3", "a..b"):
        r = cfg(board, "set", "peers.hub.dns", name)
        assert r.returncode == 1 and r.stderr.startswith(
            "mast: peers.hub.dns: must be 1 to 253 characters of A-Za-z0-9.-, labels of 1 to 63 "
            "between dots, the last starting with a letter; "), r.stderr
    f = tmp_path / "c.json"
    f.write_text(json.dumps({"name": "b", "fleet_domain": "boards.example.", "keying": "open"}))
    r = mast("config", "validate", str(f))
    assert r.returncode == 1 and r.stderr.startswith(
        "mast: %s is not valid: fleet_domain: must be 1 to 61 characters of A-Za-z0-9.-, labels of 1 to "
        "63 between dots, the last starting with a letter, no dot at the end" % f), r.stderr
    # a lone surrogate (JSON's "\udc80") is no UTF-8: the SSID's rule says so, not a traceback
    f.write_text('{"name": "b", "uplinks": {"w": {"ssid": "caf\\udc80"}}}')
    r = mast("config", "validate", str(f))
    assert r.returncode == 1 and r.stderr.startswith(
        "mast: %s is not valid: uplinks.w.ssid: must be 1 to 32 bytes of UTF-8 text (no control "
        "characters)" % f), r.stderr


UNKNOWN_NOT_REPEATED = ("mast: unknown key (not repeated: text in a key's place may be a secret); a key "
                        "is made of A-Za-z0-9_.- and starts with one of name, port, keying, profile, mode, replay_window, resend_ms, "
                        "outage_s, nat_refresh_s, fleet_domain, fleet_psk, enabled, internal, tun, "
                        "masquerade, peers, uplinks (docs/CONFIG.md)\n")


def test_get_of_an_unknown_key_says_so_and_of_an_unset_one_how_to_set_it(board):
    # both were "KEY: is not set; fix the value", the board's words for any key it lacks
    r = cfg(board, "get", "port.x")
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr == ("mast: port.x: unknown key; the keys are in docs/CONFIG.md (`mast config get` "
                        "shows what is set)\n")
    # a key whose first part is none of the schema's is not repeated: it may be a psk pasted in
    # the key's place (the board does not repeat it either)
    for key in ("nosuchkey", "A" * 43 + "=", "peers.srv." + "A" * 43 + "="):
        r = cfg(board, "get", key)
        assert r.returncode == 1 and r.stdout == "" and r.stderr == UNKNOWN_NOT_REPEATED
    r = cfg(board, "get", "fleet_psk")
    assert r.returncode == 1 and r.stderr == ("mast: fleet_psk is not set; set it: mast config set "
                                              "fleet_psk VALUE (`mast config get` shows what is set)\n")
    r = cfg(board, "get", "peers.nobody")
    assert r.returncode == 1 and r.stderr.startswith("mast: peers.nobody is not set; ")
    assert "fix the value" not in r.stderr


def test_unset_of_a_key_not_set_and_set_of_an_unknown_key_do_not_say_fix_the_value(board):
    # (all three said "KEY: is not set; fix the value" or "KEY: unknown key; fix the value")
    r = cfg(board, "unset", "nmae")
    assert r.returncode == 1 and r.stdout == "" and r.stderr == UNKNOWN_NOT_REPEATED
    r = cfg(board, "unset", "fleet_psk")
    assert r.returncode == 1 and r.stderr == ("mast: fleet_psk is not set; nothing to unset (`mast config "
                                              "get` shows what is set)\n")
    r = cfg(board, "unset", "peers.nobody")
    assert r.returncode == 1 and r.stderr.startswith("mast: peers.nobody is not set; ")
    r = cfg(board, "set", "peers.hub", "x")
    assert r.returncode == 1 and "fix the value" not in r.stderr, r.stderr
    assert r.stderr.startswith("mast: peers.hub: ") and "check the key's spelling" in r.stderr
    r = cfg(board, "set", "nmae", "x")
    assert r.returncode == 1 and r.stderr == UNKNOWN_NOT_REPEATED


def test_a_value_too_long_for_the_boards_console_is_refused_before_it_is_sent(board):
    # the board answers such a line with a null id ("line longer than 2048 bytes"): the host
    # waited 10 s for its own id, then said the board did not answer
    from board.console import LINE_MAX
    from mast_tools import consoleclient

    assert consoleclient.LINE_MAX == LINE_MAX
    before = cfg(board, "get", "--json").doc
    addrs = json.dumps(["10.0.%d.%d" % (i // 250, i % 250) for i in range(200)])
    r = cfg(board, "set", "peers.x.addresses", addrs, timeout=8)
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr.startswith("mast: the set request is 2") and r.stderr.rstrip().endswith(
        "the board's console takes lines of at most 2048; give a shorter value"), r.stderr
    assert cfg(board, "get", "--json").doc == before  # nothing was set


def test_text_that_is_not_utf8_on_the_command_line_or_stdin_is_refused_without_a_traceback(board):
    # a byte the terminal could not decode (Latin-1 typed into a UTF-8 shell, a file piped in)
    # reaches Python as a lone surrogate: encoding the request raised UnicodeEncodeError, a
    # traceback, for set, get and unset alike. The error names neither the value (it may be a
    # key) nor the byte, and nothing is sent
    before = cfg(board, "get", "--json").doc
    for args in (("set", "name", "board\udcff1"), ("set", "peers.x\udce9.port", "7000"),
                 ("get", "peers.x\udce9"), ("unset", "peers.x\udce9.port")):
        r = cfg(board, *args)
        assert r.returncode == 1 and r.stdout == "", (args, r.stderr)
        assert r.stderr == ("mast: the %s request holds text that is not UTF-8 (a byte your terminal "
                            "or file could not decode); type it again as UTF-8 text\n" % args[0]), r.stderr
    secret = b"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh\xff="
    for io in ("utf-8:surrogateescape", "utf-8:strict"):  # (a C locale's stdin; a strict one's)
        r = subprocess.run([sys.executable, "-m", "mast_tools", "config", "--port", board[0], "set",
                            "peers.x.psk", "-"], input=secret, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=60, env=env_for_mast({"PYTHONIOENCODING": io}))
        assert r.returncode == 1 and b"AAECAw" not in r.stderr, (io, r.stderr)
        assert r.stderr == (b"mast: the set request holds text that is not UTF-8 (a byte your terminal "
                            b"or file could not decode); type it again as UTF-8 text\n"), (io, r.stderr)
    assert cfg(board, "get", "--json").doc == before  # nothing was set


def test_a_wrong_port_and_a_file_that_is_not_a_port(tmp_path):
    r = mast("config", "--port", "/dev/ttyUSB99", "get")
    assert r.returncode == 1
    assert r.stderr.startswith("mast: no serial port /dev/ttyUSB99; check the cable and the name")
    f = tmp_path / "notatty"
    f.write_text("x")
    r = mast("config", "--port", str(f), "get")
    assert r.stderr == "mast: %s is not a serial port; give the board's port (`mast ports` lists them)\n" % f
    r = mast("config", "--port", str(tmp_path), "get")  # a directory: was pyserial's own words
    assert r.returncode == 1
    assert r.stderr == ("mast: %s is not a serial port; give the board's port (`mast ports` lists "
                        "them)\n" % tmp_path)
    r = mast("config", "get", env={"MAST_SIM_REGISTRY": str(tmp_path / "none")})  # no board to find
    assert r.returncode == 1 and r.stderr.startswith("mast: no board found (no USB serial port of a "
                                                     "known board, no running mast sim-board); ")


def test_a_port_another_program_holds_is_named_with_that_program(board):
    with holding(board[0]) as pid:
        r = cfg(board, "get")
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr.startswith("mast: %s is busy: pid %d (%s -c import serial" % (board[0], pid, sys.executable))
    assert r.stderr.rstrip().endswith("close that program (another mast console, mpremote or a serial "
                                      "terminal?) and try again")
    assert cfg(board, "get", "name").stdout == "board1\n"  # free again


def test_a_user_without_access_to_the_port_is_told_about_the_dialout_group(board):
    prefix = as_nobody()
    if prefix is None:
        pytest.skip("needs root (and setpriv) to run mast as an unprivileged user")
    probe = subprocess.run(prefix + [sys.executable, "-c", "import serial"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip("the unprivileged user cannot run this Python: %s" % probe.stderr[-200:])
    for cmd in (["config", "--port", board[0], "get"], ["flash", "--port", board[0], "--board", "unix-sim"],
                ["console", "--port", board[0]]):
        r = mast(*cmd, prefix=prefix)
        assert r.returncode == 1 and r.stdout == "", cmd
        assert r.stderr.startswith("mast: permission denied on %s" % board[0]), (cmd, r.stderr)
        assert "dialout" in r.stderr and "usermod -aG" in r.stderr and "Traceback" not in r.stderr


def test_a_bare_board_says_no_mast_firmware_answers(micropython, tmp_path):
    with sim_board(str(tmp_path / "bare"), firmware=False) as sb:
        r = mast("config", "--port", sb.device, "status")
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr.startswith("mast: no MAST firmware on the board at %s: a bare MicroPython REPL "
                               "answers; put the firmware on it: mast flash --port %s --board BOARD"
                               % (sb.device, sb.device)), r.stderr


# ---- the pure parts ------------------------------------------------------------------------


def test_leaves_and_import_ops():
    view = {"name": "b", "port": 6278, "peers": {"a.example": {"psk": "<redacted>", "port": 6278},
                                                 "old": {"psk": "<redacted>"}},
            "uplinks": {"eth": {"kind": "sim", "cost": 0}}}
    assert leaves(view)["peers.a.example.psk"] == "<redacted>"
    want = {"name": "b", "peers": {"a.example": {"psk": "<redacted>", "port": 7000}},
            "uplinks": {"eth": {"kind": "sim", "cost": 3}}}
    assert import_ops(view, want) == [("unset", "peers.old", None), ("unset", "port", None),
                                      ("set", "peers.a.example.port", 7000), ("set", "uplinks.eth.cost", 3)]
    assert unredact(want)["peers"]["a.example"]["psk"] == "A" * 43 + "="
    # a secret the board lacks (a new peer, a password never set) that reads "<redacted>" in
    # the file: nothing is sent for it (the literal would have become the board's secret)
    want["peers"]["new"] = {"psk": "<redacted>", "port": 7001}
    want["uplinks"]["wifi"] = {"ssid": "Workshop", "password": "<redacted>"}
    ops = import_ops(view, want)
    assert ("set", "peers.new.port", 7001) in ops and ("set", "uplinks.wifi.ssid", "Workshop") in ops
    assert [op for op in ops if op[2] == "<redacted>"] == []
    assert [op[1] for op in ops if op[0] == "set" and op[1].endswith(("psk", "password"))] == []


def test_set_shows_a_secret_redacted_even_when_the_firmware_schema_cannot_be_imported(
        monkeypatch, capsys, tmp_path):
    # _secret() asks the firmware's schema which keys are secret; without it (sources not
    # found: use_firmware raises ImportError) every key counts as one, so a key is never shown
    import argparse
    import io

    from mast_tools import cmd_config, config_text, firmware  # noqa: F401  (parse_value's schema, loaded)

    sent = []

    class Console:
        port = "/dev/ttyFAKE"

        def call(self, op, **fields):
            sent.append((op, fields))
            return {"key": fields["key"], "pending": True}

    monkeypatch.setattr(firmware, "FIRMWARE_DIR", str(tmp_path / "no-firmware"))
    with pytest.raises(ImportError):
        firmware.use_firmware()
    monkeypatch.setattr(sys, "stdin", io.StringIO(PSK + "\n"))
    args = argparse.Namespace(key="peers.x.psk", value="-", json=False, commit=False, apply=False)
    assert cmd_config._set(Console(), args) == 0
    out, err = capsys.readouterr()
    assert sent == [("set", {"key": "peers.x.psk", "value": PSK})]  # the board got it
    assert out == "peers.x.psk = <redacted> (in the candidate: commit to keep it, apply to run it)\n"
    assert PSK not in out + err


def test_the_board_out_of_memory_says_what_to_do_for_each_action():
    # (every action said "commit the change and restart the board": apply's advice; for get or
    # status there is no change, and a restart loses a set that was not committed)
    from mast_tools.cmd_config import _board_error
    from mast_tools.consoleclient import BoardError

    for action in ("get", "status", "set", "unset", "validate", "commit"):
        e = _board_error(BoardError("out of memory"), action)
        assert e.what == "the board ran out of memory doing %s" % action
        assert e.hint.startswith("try again in a moment; if it keeps failing, the firmware needs "
                                 "more heap than this board has: docs/HARDWARE.md")
    e = _board_error(BoardError("out of memory"), "apply")
    assert e.hint == "commit the change and restart the board instead: mast config commit, then mast reset"


def test_a_commit_on_a_full_flash_is_not_said_to_be_an_invalid_configuration():
    # (it read "the configuration is not valid: internal error: OSError: 28; set or unset that
    # key": the configuration was valid, the board's flash was full)
    from mast_tools.cmd_config import _board_error
    from mast_tools.consoleclient import BoardError

    text = ("cannot save the configuration: the flash is full (writing mast.json.tmp); mast.json "
            "is as it was")
    e = _board_error(BoardError(text), "commit")
    assert e.what == "the board " + text
    assert e.hint.startswith("make room on its flash, then commit again")


def test_the_text_for_get_and_status():
    assert show_value({"a": {"b": 1, "c": [1]}, "d": "x"}) == 'a.b = 1\na.c = [1]\nd = "x"'
    assert show_value("text") == "text" and show_value(True) == "true"
    st = {"board": "b1", "firmware": "0.1.0", "mode": "maintenance", "uptime_ms": 1500,
          "maintenance": "requested", "config": {"source": "defaults", "uncommitted": True},
          "uplinks": {}, "mem": {"free": 2048, "alloc": 4096}}
    assert status_text(st) == ("board b1, firmware 0.1.0, maintenance mode, up 1.5 s\n"
                               "maintenance: requested; to leave it: mast maintenance off\n"
                               "config: from defaults; changes uncommitted\n"
                               "heap: 2 KB free, 4 KB used")
    assert status_text(st, "/dev/ttyUSB0").splitlines()[1] == (
        "maintenance: requested; to leave it: mast maintenance off --port /dev/ttyUSB0")
    # after a boot loop, what the last boot died of (a board at 144K: its boot's schema check)
    st["last_crash"] = {"log": "crash", "error": "MemoryError: memory allocation failed, allocating 464 bytes"}
    assert status_text(st).splitlines()[2] == (
        "last crash: MemoryError: memory allocation failed, allocating 464 bytes; the firmware may "
        "need more heap than this board has (docs/HARDWARE.md, \"Installing\")")
    st["last_crash"] = {"log": "crash", "error": "RuntimeError: driver exploded"}
    assert status_text(st).splitlines()[2] == "last crash: RuntimeError: driver exploded"


def test_status_after_a_boot_loop_says_what_the_last_boot_died_of(micropython, tmp_path):
    # the board as three boots in a row that ran out of memory leave it (a board too small for
    # the firmware): the counter at 3 and the last crash kept, as board/main.py run() keeps it
    folder = str(tmp_path / "board")
    os.makedirs(folder)
    crash = {"log": "crash", "error": "MemoryError: memory allocation failed, allocating 464 bytes"}
    with open(os.path.join(folder, "mast.boots"), "w") as f:
        f.write("3")
    with open(os.path.join(folder, "mast.crash"), "w") as f:
        json.dump(crash, f)
    with sim_board(folder) as sb:
        r = mast("config", "--port", sb.device, "status")
        assert r.returncode == 0, r.stderr
        lines = r.stdout.splitlines()
        assert lines[1].startswith("maintenance: boot loop: 3 boots in a row crashed or hung; to leave it")
        assert lines[2] == ("last crash: MemoryError: memory allocation failed, allocating 464 bytes; "
                            "the firmware may need more heap than this board has (docs/HARDWARE.md, "
                            "\"Installing\")")
        r = mast("config", "--port", sb.device, "status", "--json")
        assert r.doc["last_crash"] == crash and r.doc["mode"] == "maintenance"


def test_baud_sets_the_port_rate_and_a_rate_that_is_not_one_is_refused(board):
    import termios

    r = cfg(board, "--baud", "57600", "get", "name")
    assert r.returncode == 0 and r.stdout == "board1\n", r.stderr
    fd = os.open(board[0], os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    try:
        speed = termios.tcgetattr(fd)[4]  # what the command set on the port
    finally:
        os.close(fd)
    assert speed == termios.B57600
    r = cfg(board, "get", "name", "--baud", "11520")
    assert r.returncode == 2 and "'11520' is not a serial rate; use one of 1200, " in r.stderr
    for cmd in (("flash", "--baud", "9600", "--board", "list"), ("console", "--help"), ("reset", "--help")):
        assert mast(*cmd).returncode == 0, cmd


def test_apply_says_which_associations_restart_and_why(micropython, tmp_path):
    with sim_board(str(tmp_path / "board")) as sb:
        r = mast("config", "--port", sb.device, "set", "name", "board1-renamed", "--apply")
        assert r.returncode == 0, r.stderr
        assert r.stdout == ('name = "board1-renamed" (applied; `mast config commit` keeps it '
                            'across a reboot)\n')
        assert mast("config", "--port", sb.device, "set", "name", "board1").returncode == 0
        r = mast("config", "--port", sb.device, "apply")
    assert r.stdout == "applied; every association restarts (name changed)\n", r.stderr  # no ": "
    from mast_tools.cmd_config import apply_text

    assert apply_text({"associations": "kept", "restarted": ["hub"], "why": "peer keys changed"}) == \
        "applied; association with hub restarts (peer keys changed); the others kept"
    assert apply_text({"associations": "kept", "restarted": [], "why": None}) == "applied; associations kept"


def test_text_beyond_the_bmp_goes_to_the_board_as_utf8_not_as_escaped_surrogates():
    # ensure_ascii wrote U+1F600 as \ud83d\ude00, which MicroPython's json takes apart into
    # bytes that are not UTF-8 (the console now refuses such escapes)
    from mast_tools.consoleclient import request
    from mast_tools.flashplan import config_bytes

    line = request(1, "set", key="uplinks.wifi.ssid", value="caf\u00e9 \U0001F600")
    assert b"\\u" not in line and "caf\u00e9 \U0001F600".encode() in line
    assert json.loads(line) == {"id": 1, "op": "set", "key": "uplinks.wifi.ssid", "value": "caf\u00e9 \U0001F600"}
    f = config_bytes({"name": "b1", "uplinks": {"wifi": {"ssid": "\U0001F600"}}})
    assert b"\\u" not in f and json.loads(f)["uplinks"]["wifi"]["ssid"] == "\U0001F600"


def _fake_port(tmp_path):
    """A file standing for a serial port, and its device as /proc/locks names it."""
    port = tmp_path / "ttyFAKE"
    port.write_text("")
    st = os.stat(str(port))
    return port, "%02x:%02x:%d" % (os.major(st.st_dev), os.minor(st.st_dev), st.st_ino)


def test_the_busy_error_names_the_process_holding_the_ports_flock_only(tmp_path):
    # /proc/locks also lists POSIX locks (which do not stop pyserial's flock) and the processes
    # waiting for a lock ("->"): neither is the program to close
    from mast_tools.serialport import holders, port_error

    port, dev = _fake_port(tmp_path)
    locks = tmp_path / "locks"
    locks.write_text("1: POSIX  ADVISORY  WRITE 111 %s 0 EOF\n"
                     "2: FLOCK  ADVISORY  WRITE 222 %s 0 EOF\n"
                     "2: -> FLOCK  ADVISORY  WRITE 333 %s 0 EOF\n"
                     "3: FLOCK  ADVISORY  WRITE 444 00:00:1 0 EOF\n" % (dev, dev, dev))
    proc = tmp_path / "proc"
    for pid, cmd in ((111, b"lockf\0x"), (222, b"mpremote\0connect"), (333, b"picocom\0-b"), (444, b"other")):
        (proc / str(pid)).mkdir(parents=True)
        (proc / str(pid) / "cmdline").write_bytes(cmd)
    who = holders(str(port), locks=str(locks), proc=str(proc))
    assert who == [(222, "mpremote connect")]
    assert port_error(str(port), OSError(11, "busy"), who).what == (
        "%s is busy: pid 222 (mpremote connect) holds it" % port)


def test_the_busy_error_names_at_most_three_holders_each_cut_to_60_characters():
    from mast_tools.serialport import port_error

    who = [(100 + i, "python3 -m serial.tools.miniterm /dev/ttyUSB0 115200 --raw --eol LF --exit-char 3 %d" % i)
           for i in range(5)]
    e = port_error("/dev/ttyUSB0", OSError(16, "Device or resource busy"), who)
    assert e.what == "/dev/ttyUSB0 is busy: " + ", ".join(
        "pid %d (%s)" % (p, c[:60]) for p, c in who[:3]) + " holds it"
    assert port_error("/dev/ttyUSB0", OSError(16, "busy"), []).what == (
        "/dev/ttyUSB0 is busy: another program holds it")
    # pyserial's own words for a lock it could not take (no errno)
    assert port_error("/dev/ttyUSB0", ValueError("Could not exclusively lock port /dev/ttyUSB0"), []).what == (
        "/dev/ttyUSB0 is busy: another program holds it")


@pytest.mark.parametrize("code", ["ENOENT", "ENODEV", "ENXIO"])
def test_a_port_that_is_not_there_is_a_missing_port_whatever_the_errno(code):
    # ENODEV/ENXIO: the device node is there but its USB adapter is gone (unplugged mid-use)
    import errno

    from mast_tools.serialport import port_error

    e = port_error("/dev/ttyUSB9", OSError(getattr(errno, code), "x"))
    assert e.what == "no serial port /dev/ttyUSB9"
    assert e.hint.startswith("check the cable and the name (`mast ports` lists the ports")


@pytest.mark.parametrize("code", ["EACCES", "EPERM"])
def test_permission_denied_names_the_group_that_owns_the_port_and_how_to_join_it(tmp_path, monkeypatch, code):
    import errno
    import grp

    from mast_tools.serialport import port_error

    try:
        gid = grp.getgrnam("dialout").gr_gid
    except KeyError:
        pytest.skip("no dialout group here")
    port = tmp_path / "ttyACM0"
    port.write_text("")
    # the file's group as os.stat says it, not os.chown: only root may give a file to any group
    # (a user was skipped; a user in dialout failed at root's group, below)
    real_stat = os.stat

    def chown(path, uid, group):
        def stat(p, *a, **k):
            st = real_stat(p, *a, **k)
            return os.stat_result(tuple(st)[:5] + (group,) + tuple(st)[6:]) if str(p) == path else st

        monkeypatch.setattr(os, "stat", stat)

    chown(str(port), -1, gid)
    e = port_error(str(port), OSError(getattr(errno, code), "Permission denied"))
    assert e.what == "permission denied on %s (owned by group dialout)" % port
    assert e.hint == "add yourself to the dialout group: sudo usermod -aG dialout $USER, then log in again"
    chown(str(port), -1, 0)  # root's: joining root is no advice
    e = port_error(str(port), OSError(getattr(errno, code), "Permission denied"))
    assert e.what == "permission denied on %s (owned by group %s)" % (port, grp.getgrgid(0).gr_name)
    assert e.hint.startswith("ask for access to it: on most Linux systems serial ports belong to the dialout group")


def test_a_port_that_takes_no_serial_settings_and_an_unknown_error_say_what_happened():
    import errno

    from mast_tools.serialport import port_error

    assert port_error("/dev/ttyS9", OSError(errno.EINVAL, "Invalid argument")).what == "/dev/ttyS9 is not a serial port"
    assert port_error("/dev/ttyS9", OSError(errno.ENOTTY, "x")).what == "/dev/ttyS9 is not a serial port"
    e = port_error("/dev/ttyS9", OSError(errno.ENOMEM, "Cannot allocate memory"))
    assert (e.what, e.hint) == ("cannot open /dev/ttyS9: [Errno 12] Cannot allocate memory", "check the port and try again")


def test_a_holder_whose_process_is_gone_is_still_named_by_its_pid(tmp_path):
    # (it exited between the read of /proc/locks and of its command line)
    from mast_tools.serialport import holders

    port, dev = _fake_port(tmp_path)
    locks = tmp_path / "locks"
    locks.write_text("2: FLOCK  ADVISORY  WRITE 555 %s 0 EOF\n" % dev)
    (tmp_path / "proc").mkdir()
    assert holders(str(port), locks=str(locks), proc=str(tmp_path / "proc")) == [(555, "?")]


def test_the_probe_ignores_bytes_from_before_it_sends_its_breaks_and_frees_the_port():
    # a board that printed something earlier and then went silent is silent: the probe reads
    # only what comes after its Ctrl-C Ctrl-C Ctrl-B, and closes the port (its lock) after
    import pty
    import select

    from mast_tools.serialport import open_serial, probe_alive

    master, slave = pty.openpty()
    try:
        name = os.ttyname(slave)
        os.write(master, b"old boot text\r\n")
        assert probe_alive(name, wait_s=0.3) is False
        sent = b""
        for _ in range(20):  # (bounded)
            if not select.select([master], [], [], 0.2)[0]:
                break
            sent += os.read(master, 1024)
        assert sent.endswith(b"\r\x03\x03\x02")
        open_serial(name).close()  # not busy: the probe let go of it
    finally:
        os.close(master)
        os.close(slave)


def test_an_io_error_on_the_port_says_the_board_went_away():
    import errno

    from mast_tools.serialport import port_error

    e = port_error("/dev/ttyUSB0", OSError(errno.EIO, "Input/output error"))
    assert str(e) == ("/dev/ttyUSB0 stopped answering (I/O error); the board was unplugged or reset; "
                      "plug it in and try again")


def test_set_with_commit_and_apply_validates_first_and_says_both_were_done(capsys):
    import argparse

    from mast_tools import cmd_config

    sent = []
    results = {"set": {"key": "uplinks.cell.cost", "pending": True}, "validate": {"valid": True},
               "commit": {"committed": True, "bytes": 99}, "apply": {"associations": "kept"}}

    class Console:
        port = "/dev/ttyFAKE"

        def call(self, op, **fields):
            sent.append(op)
            return results[op]

    args = argparse.Namespace(key="uplinks.cell.cost", value="20", json=False, commit=True, apply=True)
    assert cmd_config._set(Console(), args) == 0
    assert sent == ["set", "validate", "commit", "apply"]
    assert capsys.readouterr().out == "uplinks.cell.cost = 20 (committed and applied)\n"


def test_the_status_lists_the_uplinks_by_priority():
    st = {"board": "b1", "firmware": "0.1.0", "mode": "normal", "uptime_ms": 0, "config": {"source": "mast.json"},
          "uplinks": {"cell": {"state": "up", "addr": "10.0.0.3", "mast": {"priority": 5, "cost": 20}},
                      "eth": {"state": "down", "mast": {"priority": 10, "cost": 0}},
                      "wifi": {"state": "up", "addr": "10.0.0.2", "mast": {"priority": 7, "cost": 0}}}}
    assert [x.split()[0] for x in status_text(st).splitlines()[3:]] == ["cell", "wifi", "eth"]


def test_only_secrets_reading_redacted_get_a_stand_in_when_a_file_is_validated(tmp_path):
    # a "<redacted>" that is not a secret's stays, for the schema to refuse
    doc = {"name": "<redacted>", "peers": {"hub": {"psk": "<redacted>", "dns": "<redacted>"}}}
    assert unredact(doc) == {"name": "<redacted>", "peers": {"hub": {"psk": "A" * 43 + "=", "dns": "<redacted>"}}}
    f = tmp_path / "c.json"
    f.write_text(json.dumps(doc))
    r = mast("config", "validate", str(f))
    assert r.returncode == 1 and r.stderr.startswith("mast: %s is not valid: " % f) and "Traceback" not in r.stderr


# ---- the actions against a console with no board behind it: what the user reads --------------------


class _Console:
    """What an action uses of ConsoleClient: call(op, **fields) answered by results[op] (a value,
    or an exception raised); .sent keeps (op, fields)."""

    port = "/dev/ttyFAKE"

    def __init__(self, results):
        self.results = results
        self.sent = []

    def call(self, op, **fields):
        self.sent.append((op, fields))
        r = self.results[op]
        if isinstance(r, Exception):
            raise r
        return r(fields) if callable(r) else r


def _args(**kw):
    import argparse

    d = dict(json=False, commit=False, apply=False)
    d.update(kw)
    return argparse.Namespace(**d)


_DONE = {"set": {"key": "uplinks.cell.cost", "pending": True}, "validate": {"valid": True},
         "commit": {"committed": True, "bytes": 99}, "apply": {"associations": "kept"}}


def test_set_with_commit_alone_or_apply_alone_validates_first_and_says_what_is_left(capsys):
    from mast_tools import cmd_config

    for flag, text in (("commit", "committed; `mast config apply` or a reboot runs it"),
                       ("apply", "applied; `mast config commit` keeps it across a reboot")):
        con = _Console(_DONE)
        assert cmd_config._set(con, _args(key="uplinks.cell.cost", value="20", **{flag: True})) == 0
        assert [op for op, _ in con.sent] == ["set", "validate", flag]
        assert capsys.readouterr().out == "uplinks.cell.cost = 20 (%s)\n" % text


def test_a_board_that_stops_answering_mid_session_is_a_clear_error_not_a_traceback():
    from mast_tools import cmd_config
    from mast_tools.errors import CommandError

    con = _Console({"get": TimeoutError("no reply to get in 10 s")})
    with pytest.raises(CommandError) as e:
        cmd_config._get(con, _args(key=None))
    assert e.value.what == "the board did not answer on /dev/ttyFAKE (no reply to get in 10 s)"
    assert e.value.hint == "is it rebooting? try again; `mast console` shows what it prints"


def test_a_commit_the_board_refuses_says_the_configuration_is_not_valid():
    from mast_tools.cmd_config import _board_error
    from mast_tools.consoleclient import BoardError

    for action in ("validate", "commit", "apply"):
        e = _board_error(BoardError("peers.half.psk: required when keying is psk"), action)
        assert e.what == "the configuration is not valid: peers.half.psk: required when keying is psk"
        assert e.hint == "set or unset that key (mast config get shows it), then %s again" % action


def test_import_counts_only_what_it_changed_and_names_the_secrets_it_kept(tmp_path, capsys):
    from mast_tools import cmd_config
    from mast_tools.consoleclient import BoardError

    view = {"name": "b", "port": 6278, "peers": {"hub": {"psk": "<redacted>", "port": 6278}}}
    f = tmp_path / "board.json"
    f.write_text(json.dumps({"name": "b2", "peers": {"hub": {"psk": "<redacted>", "port": 6278}}}))

    def unset(fields):  # a default the file leaves out: the board has nothing set to unset
        raise BoardError("%s: is not set" % fields["key"])

    con = _Console(dict(_DONE, get=view, set={"pending": True}, unset=unset))
    assert cmd_config._import(con, _args(file=str(f), json=True)) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc == {"changed": ["set name"], "secrets_kept": ["peers.hub.psk"]}
    assert ("set", {"key": "name", "value": "b2"}) in con.sent
    assert cmd_config._import(con, _args(file=str(f))) == 0
    assert capsys.readouterr().out == ("%s: 1 change(s) (in the candidate: commit to keep it, apply to run "
                                       "it)\n  set name\n  kept as on the board: peers.hub.psk\n" % f)


def test_import_of_a_file_that_is_not_an_object_is_refused_before_anything_is_sent(tmp_path):
    from mast_tools import cmd_config
    from mast_tools.errors import CommandError

    f = tmp_path / "list.json"
    f.write_text('["name", "b2"]')
    con = _Console({})
    with pytest.raises(CommandError) as e:
        cmd_config._import(con, _args(file=str(f)))
    assert e.value.what == "%s is not a configuration (a JSON object)" % f and con.sent == []


def test_import_of_a_file_with_a_bad_key_or_value_changes_nothing_on_the_board(tmp_path):
    # (it unset the sections the file lacks, a peer and its key with them, then stopped at the
    # bad key: the candidate half changed, and "import again" of the good file then failed on
    # the peer's key it had dropped)
    from mast_tools import cmd_config
    from mast_tools.errors import CommandError

    view = {"name": "b", "port": 6278, "peers": {"hub": {"psk": "<redacted>", "port": 6278}}}
    for doc, said in (({"nmae": "b2"}, "nmae: unknown key"),
                      ({"name": "b", "uplinks": {"eth": {"cost": 999}}},
                       "uplinks.eth.cost: must be an integer from 0 to 255")):
        f = tmp_path / "board.json"
        f.write_text(json.dumps(doc))
        con = _Console(dict(_DONE, get=view, unset={"pending": True}))
        with pytest.raises(CommandError) as e:
            cmd_config._import(con, _args(file=str(f)))
        assert e.value.what == "%s: %s" % (f, said)
        assert e.value.hint == "fix that key in the file (nothing on the board was changed)"
        assert con.sent == [("get", {})]


def test_status_after_a_boot_loop_is_shown_even_when_its_logs_cannot_be_read(capsys):
    from mast_tools import cmd_config
    from mast_tools.consoleclient import BoardError

    st = {"board": "b1", "firmware": "0.1.0", "mode": "maintenance", "uptime_ms": 1500,
          "maintenance": "boot loop (3 crashes)", "config": {"source": "mast.json"}}
    con = _Console({"status": st, "logs": BoardError("out of memory")})
    assert cmd_config._status(con, _args()) == 0
    out = capsys.readouterr().out
    assert out.startswith("board b1, firmware 0.1.0, maintenance mode, up 1.5 s\n"
                          "maintenance: boot loop (3 crashes); to leave it: mast maintenance off --port /dev/ttyFAKE\n")
    assert "last crash" not in out


def test_export_to_a_file_with_json_says_which_file(tmp_path, capsys):
    from mast_tools import cmd_config

    f = tmp_path / "out.json"
    con = _Console({"get": {"name": "b1", "peers": {"hub": {"psk": "<redacted>"}}}})
    assert cmd_config._export(con, _args(output=str(f), json=True)) == 0
    assert json.loads(capsys.readouterr().out) == {"file": str(f)}
    assert json.loads(f.read_text()) == {"name": "b1", "peers": {"hub": {"psk": "<redacted>"}}}


def test_get_shows_an_empty_section_and_apply_names_the_associations_it_restarts():
    assert show_value({"name": "b", "peers": {}}) == 'name = "b"\npeers = {}'
    assert apply_text({"restarted": ["hub"], "why": None}) == (
        "applied; association with hub restarts (peer keys changed); the others kept")
    assert apply_text({"restarted": ["a", "b"], "why": "psk changed"}) == (
        "applied; associations with a, b restart (psk changed); the others kept")


def test_status_shows_a_config_warning_an_uplinks_error_and_each_associations_paths():
    st = {"board": "b1", "firmware": "0.1.0", "mode": "normal", "uptime_ms": 0,
          "config": {"source": "defaults", "warning": "mast.json: not JSON"},
          "uplinks": {"cell": {"state": "down", "error": "no SIM", "mast": {"priority": 5, "cost": 20}}},
          "associations": [{"peer": "hub", "state": "up", "primary": "eth:hub",
                            "paths": [{"path": "eth:hub", "state": "active", "rtt_ms": 12}]}]}
    assert status_text(st).splitlines()[1:] == [
        "config: from defaults (mast.json: not JSON)",
        "uplinks:",
        "  cell   down  -               priority 5 cost 20  error: no SIM",
        "association hub: up, primary eth:hub",
        "  %-40s %-8s rtt 12 ms" % ("eth:hub", "active")]


_EXPORT_UNDER_A_FULL_DISK = """
import argparse, resource, sys
from mast_tools import cmd_config

class Console:
    port = "/dev/ttyFAKE"

    def call(self, op, **fields):
        return {"name": "b1", "peers": {"p%d" % i: {"addresses": ["192.0.2.%d" % (i % 250 + 1)]}
                                        for i in range(400)}}

resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))  # a disk that is full past 4 KiB
try:
    cmd_config._export(Console(), argparse.Namespace(output=sys.argv[1], json=False))
except OSError as e:
    print("failed:", e.strerror)
"""


def test_an_export_whose_write_fails_leaves_the_file_there_whole_and_no_partial_file(tmp_path):
    # `export -o FILE` over an earlier export, on a disk that fills up: the earlier one must not
    # be cut short, and no half-written FILE.tmp may be left beside it (nothing half-written)
    out = tmp_path / "board.json"
    out.write_text('{"name": "b1"}\n')
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    r = subprocess.run([sys.executable, "-c", _EXPORT_UNDER_A_FULL_DISK, str(out)], env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.stdout == "failed: File too large\n", (r.stdout, r.stderr)
    assert out.read_text() == '{"name": "b1"}\n'
    assert sorted(os.listdir(str(tmp_path))) == ["board.json"]


def test_export_to_a_folder_says_so_and_writes_nothing(tmp_path):
    # (it said "Is a directory: FOLDER.tmp -> FOLDER; check the path, device or address")
    from mast_tools import cmd_config
    from mast_tools.errors import CommandError

    con = _Console({"get": {"name": "b"}})
    with pytest.raises(CommandError) as e:
        cmd_config._export(con, _args(output=str(tmp_path)))
    assert e.value.what == "%s is a folder" % tmp_path
    assert e.value.hint == "give the file to write: mast config export -o %s" % (tmp_path / "board.json")
    assert os.listdir(str(tmp_path)) == [] and not os.path.exists(str(tmp_path) + ".tmp")


def test_apply_in_maintenance_mode_says_the_mode_not_an_invalid_configuration():
    # (it said "the configuration is not valid: maintenance mode: ...; set or unset that key")
    from mast_tools.cmd_config import _board_error
    from mast_tools.consoleclient import BoardError

    e = _board_error(BoardError("maintenance mode: nothing runs to apply to; commit, then maintenance off"),
                     "apply")
    assert e.what == "the board is in maintenance mode: nothing runs to apply to"
    assert e.hint == "commit the change (mast config commit), then mast maintenance off"


def test_set_from_a_terminal_asks_for_the_value_and_does_not_echo_a_secret(monkeypatch, capsys):
    # (`set peers.hub.psk -` typed at a terminal waited with no prompt, and the key pasted there
    # was echoed on the screen)
    import getpass

    from mast_tools import cmd_config

    class Tty:
        def isatty(self):
            return True

        def readline(self):
            return "Workshop\n"

    asked = []
    monkeypatch.setattr(sys, "stdin", Tty())
    monkeypatch.setattr(getpass, "getpass", lambda prompt: asked.append(prompt) or PSK + "\n")
    con = _Console(dict(_DONE))
    assert cmd_config._set(con, _args(key="peers.hub.psk", value="-")) == 0
    assert asked == ["peers.hub.psk (not shown; Enter ends it): "]
    assert con.sent == [("set", {"key": "peers.hub.psk", "value": PSK})]
    assert PSK not in capsys.readouterr().out
    con = _Console(dict(_DONE))
    assert cmd_config._set(con, _args(key="uplinks.wifi.ssid", value="-")) == 0
    assert con.sent == [("set", {"key": "uplinks.wifi.ssid", "value": "Workshop"})]
    assert capsys.readouterr().err == "uplinks.wifi.ssid (Enter ends it): "
    assert len(asked) == 1


def test_set_from_an_empty_stdin_says_nothing_was_read_not_the_values_range(monkeypatch):
    # (`mast config set peers.hub.port - < /dev/null` said `peers.hub.port: must be an integer
    # from 1 to 65535`, as if a wrong value had been given)
    import io

    from mast_tools import cmd_config
    from mast_tools.errors import CommandError

    for given in ("", "\n", "  \n"):
        monkeypatch.setattr(sys, "stdin", io.StringIO(given))
        con = _Console(dict(_DONE))
        with pytest.raises(CommandError) as e:
            cmd_config._set(con, _args(key="peers.hub.port", value="-"))
        assert e.value.what == "nothing was read from stdin for peers.hub.port (it was empty)"
        assert e.value.hint == ("give the value on stdin (echo VALUE | mast config set peers.hub.port -), "
                                "or in place of -")
        assert con.sent == []  # nothing sent
    monkeypatch.setattr(sys, "stdin", io.StringIO("6279\n"))
    con = _Console(dict(_DONE))
    assert cmd_config._set(con, _args(key="peers.hub.port", value="-")) == 0
    assert con.sent == [("set", {"key": "peers.hub.port", "value": 6279})]
