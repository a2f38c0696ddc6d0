"""`mast sim-board`: the board firmware on the MicroPython unix port behind a pty, used as a
board on /dev/ttyUSB0 is: the JSON console over pyserial (every op, every kind of bad input,
Ctrl-C into the REPL and back), real mpremote (with and without --soft-reset), reboots and
power cycles, and a corrupt configuration on the board's filesystem."""

import json
import os
import subprocess
import sys
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "host-tools"))

from mast_tools import simboard  # noqa: E402

PSK = "q83vEjRWeJq83vEjRWeJq83vEjRWeJq83vEjRWeJq8M="
_PORTS = iter(range(47800, 47900))


@pytest.fixture
def board_dir(micropython, tmp_path):
    """A board filesystem with the firmware and a configuration on its own port."""
    folder = str(tmp_path / "board")
    simboard.fill(folder, "unix-sim")
    port = next(_PORTS)
    with open(os.path.join(folder, "mast.json"), "w") as f:
        json.dump({"name": "board1", "port": port}, f)
    return folder


def booted(con, n=1, timeout=15):
    """Wait until the firmware has logged its n-th boot."""
    con.wait(lambda c: len([x for x in c.logs if x.get("log") == "boot"]) >= n, timeout)
    return [x for x in con.logs if x.get("log") == "boot"][n - 1]


def mpremote(dev, *args, timeout=60):
    return subprocess.run([sys.executable, "-m", "mpremote", "connect", dev] + list(args),
                          stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True, timeout=timeout)


def test_firmware_boots_on_the_sim_board_and_answers_hello(board_dir):
    with simboard.SimBoardProcess(board_dir) as sb:
        assert os.path.exists(sb.device) and sb.info["board"] == "unix-sim"
        con = simboard.BoardConsole(sb.device)
        try:
            r = con.call("hello")
            assert r["firmware"] == "mast-board" and r["board"] == "unix-sim"
            assert r["micropython"].startswith("micropython 1.") and r["mode"] == "normal"
            con.pump(0.5)
            assert con.other == []  # every line the firmware printed was JSON
        finally:
            con.close()


def test_a_new_folder_gets_the_firmware_and_a_bare_one_stays_empty(micropython, tmp_path):
    full, bare = str(tmp_path / "full"), str(tmp_path / "bare")
    with simboard.SimBoardProcess(full, "--link", str(tmp_path / "tty")) as sb:
        assert os.readlink(str(tmp_path / "tty")) == sb.device
        for f in ("main.py", "boot.py", "app.py", "board.json", "lib/board/main.mpy",
                  "lib/mast/endpoint.mpy", "lib/runtime/driver.mpy"):
            assert os.path.isfile(os.path.join(full, f)), f
    assert not os.path.exists(str(tmp_path / "tty"))  # the link goes with the board
    with simboard.SimBoardProcess(bare, "--bare") as sb:
        assert os.listdir(bare) == []
        con = simboard.BoardConsole(sb.device)
        try:
            con.write(b"\r\n")
            con.wait(lambda c: any(">>>" in x for x in c.other), 10)  # a plain REPL
        finally:
            con.close()


def test_console_session_covers_every_op(board_dir):
    with simboard.SimBoardProcess(board_dir) as sb:
        con = simboard.BoardConsole(sb.device)
        try:
            booted(con)
            cfg = con.call("get")
            assert cfg["name"] == "board1" and cfg["port"] > 47000
            assert cfg["uplinks"]["cell"] == {"kind": "sim", "priority": 30, "cost": 10}
            assert con.call("get", key="uplinks.eth.priority") == 10
            # set, including a secret that is never read back
            assert con.call("set", key="uplinks.cell.cost", value=20) == {"key": "uplinks.cell.cost",
                                                                          "pending": True}
            con.call("set", key="peers.srv.psk", value=PSK)
            con.call("set", key="peers.srv.addresses", value=["127.0.0.10:6278"])
            assert con.call("get", key="peers.srv.psk") == "<redacted>"
            assert con.call("get", key="peers")["srv"]["psk"] == "<redacted>"
            st = con.call("status")
            assert st["config"]["uncommitted"] and st["config"]["unapplied"]
            # validate names the bad key; unset fixes it
            con.call("set", key="peers.other.initiate", value=False)
            r = con.request("validate")
            assert r == {"id": r["id"], "ok": False, "error": "peers.other.psk: required when keying is psk"}
            assert con.call("unset", key="peers.other") == {"key": "peers.other", "pending": True}
            assert con.call("validate") == {"valid": True}
            # commit: atomically on the board's filesystem
            r = con.call("commit")
            assert r["committed"] and r["bytes"] > 0
            with open(os.path.join(board_dir, "mast.json")) as f:
                saved = json.load(f)
            assert saved["uplinks"]["cell"]["cost"] == 20 and saved["peers"]["srv"]["psk"] == PSK
            assert json.load(open(os.path.join(board_dir, "mast.json.bak")))["name"] == "board1"
            assert not os.path.exists(os.path.join(board_dir, "mast.json.tmp"))
            # apply: the runtime takes it without a reboot
            assert con.call("apply")["associations"] == "kept"
            st = con.call("status")
            assert st["uplinks"]["cell"]["mast"]["cost"] == 20
            assert not st["config"]["uncommitted"] and not st["config"]["unapplied"]
            # uplinks: down, up, renumbered
            assert con.call("uplink", name="wifi", state="down")["state"] == "off"
            assert con.call("status")["uplinks"]["wifi"].get("mast") is None
            assert con.call("uplink", name="wifi", state="up")["admin"] is True
            con.call("uplink", name="cell", addr="127.0.0.9")
            con.wait(lambda c: any(e.get("event") == "uplink_up" and e.get("addr") == "127.0.0.9"
                                   for e in c.events), 5)
            sock = con.call("status")["uplinks"]["cell"]["mast"]["socket"]
            assert sock["bind"].startswith("127.0.0.9:")
            # maintenance on: persisted, then a reboot into maintenance
            assert con.call("maintenance", state="on") == {"maintenance": True, "rebooting": True}
            assert open(os.path.join(board_dir, "mast.maint")).read() == "requested from the console"
            boot = booted(con, 2)
            assert boot["mode"] == "maintenance"
            st = con.call("status")
            assert st["mode"] == "maintenance" and st["uplinks"] == {} and st["watchdog"] is None
            assert con.call("hello")["mode"] == "maintenance"
            # maintenance off: cleared, a reboot into normal mode, the config still there
            assert con.call("maintenance", state="off") == {"maintenance": False, "rebooting": True}
            assert booted(con, 3)["mode"] == "normal"
            assert not os.path.exists(os.path.join(board_dir, "mast.maint"))
            assert con.call("get", key="uplinks.cell.cost") == 20
            # reboot
            assert con.call("reboot") == {"rebooting": True}
            assert booted(con, 4)["config"] == "mast.json"
            assert con.call("hello")["mode"] == "normal"
            assert con.other == []  # all of it JSON
        finally:
            con.close()


def test_bad_input_over_the_wire_gets_error_replies_and_changes_nothing(board_dir):
    with simboard.SimBoardProcess(board_dir) as sb:
        con = simboard.BoardConsole(sb.device)
        try:
            booted(con)
            before = con.call("get")
            bad = [
                b"this is not json",
                b"[1, 2, 3]",
                b'{"id": 1, "op": "format"}',
                b'{"id": 2, "op": "set", "key": "port", "value": "6278"}',
                b'{"id": 3, "op": "set", "key": "port", "value": 70000}',
                b'{"id": 4, "op": "set", "key": 42, "value": 1}',
                b'{"id": 5, "op": "set", "key": "uplinks.wifi.password", "value": "short"}',
                b'{"id": 6, "op": "uplink", "name": "eth", "state": "sideways"}',
                b'{"id": 7, "op": "set", "key": "name", "value": "' + b"x" * 3000 + b'"}',
                bytes(range(128, 256)) + b"\x00\x01\x02\x04\x1b[A",
                b'{"id": 8, "op": "set", "key": "peers.x.psk", "value": "' + b"A" * 43 + b'"}',
            ]
            for line in bad:
                con.write(line + b"\n")
            con.wait(lambda c: sum(len(v) for v in c.replies.values()) >= len(bad), 10)
            replies = [r for v in con.replies.values() for r in v]
            assert len(replies) == len(bad) and not any(r["ok"] for r in replies), replies
            by_id = dict((r["id"], r["error"]) for r in replies if r["id"] is not None)
            assert by_id[1].startswith("unknown op")
            assert by_id[2] == "port: must be an integer from 1 to 65535"
            assert by_id[3] == "port: must be an integer from 1 to 65535"
            assert by_id[4] == "key must be text of 1 to 255 characters"
            assert by_id[5] == "uplinks.wifi.password: must be 8 to 63 printable ASCII characters"
            assert by_id[6] == "state must be up or down"
            assert by_id[8] == "peers.x.psk: must be standard base64 of exactly 32 bytes"
            nulls = sorted(r["error"] for r in replies if r["id"] is None)
            assert nulls == sorted(["not JSON", "a request is a JSON object, e.g. {\"id\": 1, \"op\": \"hello\"}",
                                    "line longer than 2048 bytes", "not UTF-8 text"]), nulls
            for r in replies:  # no secret or input echoed back
                assert "AAAA" not in r["error"] and "short" not in r["error"]
            con.replies.clear()
            assert con.call("get") == before
            assert con.call("hello")["mode"] == "normal"  # still alive
            assert con.other == []
        finally:
            con.close()


def test_ctrl_c_breaks_into_the_repl_and_a_soft_reset_brings_the_firmware_back(board_dir):
    with simboard.SimBoardProcess(board_dir, "--soft-reset") as sb:
        con = simboard.BoardConsole(sb.device)
        try:
            booted(con)
            con.write(b"\x03")
            con.wait(lambda c: any(x.get("log", "").startswith("interrupted (Ctrl-C)") for x in c.logs), 5)
            con.write(b"print(6 * 7)\r")
            con.wait(lambda c: "42" in c.other, 5)  # the friendly REPL has the port
            con.write(b"\x04")  # soft reset at the friendly REPL: boot.py, then main.py
            con.wait(lambda c: "MPY: soft reboot" in c.other, 5)
            booted(con, 2)
            assert con.call("hello")["mode"] == "normal"
        finally:
            con.close()


def test_ctrl_d_without_soft_reset_is_a_power_cycle_back_into_the_firmware(board_dir):
    with simboard.SimBoardProcess(board_dir) as sb:
        con = simboard.BoardConsole(sb.device)
        try:
            booted(con)
            con.write(b"\x03")
            con.wait(lambda c: any(x.get("log", "").startswith("interrupted") for x in c.logs), 5)
            con.write(b"\x04")
            booted(con, 2)
            assert con.call("hello")["mode"] == "normal"
        finally:
            con.close()


def test_mpremote_works_against_the_sim_board_with_soft_reset(board_dir):
    with simboard.SimBoardProcess(board_dir, "--soft-reset") as sb:
        time.sleep(1.0)
        r = mpremote(sb.device, "exec", "print(6 * 7)")
        assert r.returncode == 0 and r.stdout.strip() == "42", r.stdout
        r = mpremote(sb.device, "ls")
        assert r.returncode == 0 and "main.py" in r.stdout and "board.json" in r.stdout, r.stdout
        src = os.path.join(board_dir, "..", "hello.txt")
        with open(src, "w") as f:
            f.write("hi from the PC\n")
        r = mpremote(sb.device, "cp", src, ":hello.txt", "+", "cat", ":hello.txt")
        assert r.returncode == 0 and "hi from the PC" in r.stdout, r.stdout
        assert open(os.path.join(board_dir, "hello.txt")).read() == "hi from the PC\n"
        # what the firmware's boot did not get to run: a soft reset runs boot.py only
        r = mpremote(sb.device, "soft-reset", "exec", "import sys; print('board' in str(sys.modules))")
        assert r.returncode == 0 and r.stdout.strip().endswith("False"), r.stdout
        # mpremote can clear the maintenance flag (what `mast flash` does)
        open(os.path.join(board_dir, "mast.maint"), "w").write("x")
        r = mpremote(sb.device, "rm", ":mast.maint")
        assert r.returncode == 0 and not os.path.exists(os.path.join(board_dir, "mast.maint")), r.stdout
        # a hard reset (machine.reset) boots the firmware again
        con = simboard.BoardConsole(sb.device)
        try:
            con.replies.clear()
            mpremote(sb.device, "reset", timeout=30)
            booted(con, 1, timeout=15)
            assert con.call("hello")["mode"] == "normal"
        finally:
            con.close()


def test_mpremote_needs_resume_without_soft_reset(board_dir):
    with simboard.SimBoardProcess(board_dir) as sb:
        time.sleep(1.0)
        r = mpremote(sb.device, "resume", "exec", "print(6 * 7)")
        assert r.returncode == 0 and r.stdout.strip() == "42", r.stdout


def test_power_cycle_restarts_micropython_on_the_same_pty(board_dir):
    with simboard.SimBoardProcess(board_dir) as sb:
        con = simboard.BoardConsole(sb.device)
        try:
            booted(con)
            con.call("set", key="uplinks.eth.cost", value=7)
            con.call("commit")
            con.call("set", key="uplinks.eth.cost", value=9)  # not committed: lost at power-off
            sb.power_cycle()
            booted(con, 2)
            assert con.call("get", key="uplinks.eth.cost") == 7
            assert con.call("hello")["mode"] == "normal"
        finally:
            con.close()


def test_a_corrupt_config_boots_on_the_last_good_one_and_status_says_so(board_dir):
    with open(os.path.join(board_dir, "mast.json.bak"), "w") as f:
        json.dump({"name": "board-good", "port": next(_PORTS)}, f)
    with open(os.path.join(board_dir, "mast.json"), "w") as f:
        f.write('{"name": "board-new", "po')  # a torn write
    with simboard.SimBoardProcess(board_dir) as sb:
        con = simboard.BoardConsole(sb.device)
        try:
            boot = booted(con)
            assert boot["config"] == "mast.json.bak"
            st = con.call("status")
            assert st["config"]["source"] == "mast.json.bak"
            assert st["config"]["warning"] == ("mast.json is corrupt (not JSON); "
                                               "using the last good configuration")
            assert con.call("get", key="name") == "board-good"
        finally:
            con.close()
