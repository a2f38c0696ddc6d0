"""`mast sim-board`: the board firmware on the MicroPython unix port behind a pty, used as a
board on /dev/ttyUSB0 is: the JSON console over pyserial (every op, every kind of bad input,
Ctrl-C into the REPL and back), real mpremote (with and without --soft-reset), reboots and
power cycles, and a corrupt configuration on the board's filesystem. And the simulator itself:
it relays every byte (a console line of 64 KB arrives whole), its micropython never outlives
it (terminal closed, killed), a definition given as a path, a clear error for a second board
on the same definition and port, file sizes in `mpremote ls`, `mast ports` lists it."""

import json
import os
import re
import shutil
import subprocess
import sys
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from boardcli import env_for_mast, free_udp_port, mast, romfs_of_lib, wait_for  # noqa: E402  (host-tools on sys.path)
from mast_tools import simboard  # noqa: E402

PSK = "q83vEjRWeJq83vEjRWeJq83vEjRWeJq83vEjRWeJq8M="


@pytest.fixture
def board_dir(micropython, tmp_path):
    """A board filesystem with the firmware and a configuration on its own port."""
    folder = str(tmp_path / "board")
    simboard.fill(folder, "unix-sim")
    with open(os.path.join(folder, "mast.json"), "w") as f:
        json.dump({"name": "board1", "port": free_udp_port()}, f)
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
            with open(os.path.join(board_dir, "mast.json")) as f:
                assert cfg["name"] == "board1" and cfg["port"] == json.load(f)["port"]
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


def wait_booted(device):
    """Until the firmware has booted (its console answers), then the port is free again."""
    con = simboard.BoardConsole(device)
    try:
        booted(con)
        con.call("hello")
    finally:
        con.close()


def test_mpremote_works_against_the_sim_board_with_soft_reset(board_dir):
    with simboard.SimBoardProcess(board_dir, "--soft-reset") as sb:
        wait_booted(sb.device)
        r = mpremote(sb.device, "exec", "print(6 * 7)")
        assert r.returncode == 0 and r.stdout.strip() == "42", r.stdout
        # the firmware's modules are where a board has them, under its own root's lib: not at
        # the folder's absolute path, which MicroPython interns as each module's __file__ (a
        # longer path takes more of the heap that bench/footprint.py measures than a board's)
        r = mpremote(sb.device, "exec", "import sys, board.main; print(board.main.__file__, sys.path[-1])")
        assert r.returncode == 0 and r.stdout.split() == ["./lib/board/main.mpy", "./lib"], r.stdout
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
        wait_booted(sb.device)
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
        json.dump({"name": "board-good", "port": free_udp_port()}, f)
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


# ---- the simulator itself ------------------------------------------------------------------------


def test_a_console_line_of_64_kb_arrives_whole_and_is_answered(board_dir):
    """The relay loses nothing: the board reads the long line to its end (a line over 2048
    bytes is dropped whole and answered once, when its newline comes), then answers on."""
    with simboard.SimBoardProcess(board_dir) as sb:
        con = simboard.BoardConsole(sb.device)
        try:
            booted(con)
            con.write(b'{"id": 1, "op": "set", "key": "name", "value": "' + b"x" * 65536 + b'"}\n')
            con.write(b'{"id": 2, "op": "hello"}\n')
            con.wait(lambda c: 1 in c.replies or None in c.replies, 60)
            con.wait(lambda c: 2 in c.replies, 30)
            long_reply = (con.replies.get(None) or con.replies.get(1))[0]
            assert long_reply["ok"] is False and long_reply["error"] == "line longer than 2048 bytes"
            assert con.replies[2][0]["result"]["firmware"] == "mast-board"
            assert con.call("get", key="name") == "board1"  # the refused line changed nothing
        finally:
            con.close()
    assert b"dropped" not in sb.err  # nothing was lost on the way


def _micropython_pid(err):
    """The pid of the micropython a sim board started (its log: "boot 1 (power): pid N")."""
    for line in err.decode("utf-8", "replace").splitlines():
        if "boot 1 (power): pid " in line:
            return int(line.rsplit(" ", 1)[1])
    return None


def _gone(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(") ", 1)[1].startswith("Z")  # a zombie is gone too
    except OSError:
        return True


def _read_err(proc, until, timeout=30):
    import select

    out = b""
    end = time.monotonic() + timeout
    while until(out) is None and time.monotonic() < end:
        if select.select([proc.stderr], [], [], 0.2)[0]:
            chunk = os.read(proc.stderr.fileno(), 4096)
            if not chunk:
                break
            out += chunk
    return out


def test_closing_the_terminal_of_a_sim_board_stops_its_micropython(board_dir):
    import pty
    import termios

    master, slave = pty.openpty()

    def own_terminal():  # a shell's job in a terminal window: the pty is its controlling tty
        import fcntl

        os.setsid()
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    proc = subprocess.Popen([sys.executable, "-m", "mast_tools", "sim-board", "--dir", board_dir],
                            stdin=slave, stdout=slave, stderr=subprocess.PIPE, env=env_for_mast(),
                            preexec_fn=own_terminal)
    os.close(slave)
    try:
        err = _read_err(proc, lambda e: _micropython_pid(e))
        mp = _micropython_pid(err)
        assert mp is not None, err
        os.close(master)  # the terminal window closes: SIGHUP
        master = None
        proc.wait(20)
        wait_for(lambda: _gone(mp), 20, "micropython %d to end with its terminal" % mp, 0.1)
    finally:
        if master is not None:
            os.close(master)
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_killing_mast_sim_board_ends_its_micropython(board_dir):
    proc = subprocess.Popen([sys.executable, "-m", "mast_tools", "sim-board", "--dir", board_dir],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=env_for_mast())
    try:
        mp = _micropython_pid(_read_err(proc, lambda e: _micropython_pid(e)))
        assert mp is not None
        proc.kill()  # SIGKILL: no handler runs
        proc.wait(10)
        wait_for(lambda: _gone(mp), 20, "micropython %d to end with its supervisor" % mp, 0.1)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_board_definition_given_as_a_path_is_accepted_as_flash_accepts_it(micropython, tmp_path):
    from mast_tools.firmware import BOARDS_DIR

    with open(os.path.join(BOARDS_DIR, "unix-sim.json")) as f:
        bd = json.load(f)
    bd["name"] = "my-sim"
    bd["uplinks"] = {"lan": {"kind": "sim", "priority": 10, "cost": 0, "address": "127.0.0.2"}}
    path = tmp_path / "my-sim.json"
    path.write_text(json.dumps(bd))
    folder = str(tmp_path / "board")
    os.makedirs(folder)
    with open(os.path.join(folder, "mast.json"), "w") as f:
        json.dump({"name": "b", "port": free_udp_port()}, f)
    with simboard.SimBoardProcess(folder, "--board", str(path)) as sb:
        assert sb.info["board"] == "my-sim"
        con = simboard.BoardConsole(sb.device)
        try:
            booted(con)
            assert con.call("hello")["board"] == "my-sim"
            assert sorted(con.call("status")["uplinks"]) == ["lan"]
        finally:
            con.close()
    r = mast("sim-board", "--dir", str(tmp_path / "x"), "--board", str(tmp_path / "nope.json"))
    assert r.returncode == 1 and r.stderr.startswith("mast: no board definition %r; pick one of: "
                                                     % str(tmp_path / "nope.json"))
    r = mast("sim-board", "--dir", str(tmp_path / "x"), "--board", "esp32-devkitc")
    assert r.returncode == 1 and "a simulated board is the unix port" in r.stderr


def test_a_second_sim_board_on_the_same_definition_and_port_is_refused_clearly(micropython, tmp_path):
    port = free_udp_port()
    folders = [str(tmp_path / n) for n in ("one", "two")]
    for folder in folders:
        os.makedirs(folder)
        with open(os.path.join(folder, "mast.json"), "w") as f:
            json.dump({"name": os.path.basename(folder), "port": port}, f)
    with simboard.SimBoardProcess(folders[0]) as first:
        r = mast("sim-board", "--dir", folders[1], timeout=60)
        assert r.returncode == 1 and r.stdout == ""
        assert r.stderr == (
            "mast: UDP 127.0.0.2:%d, where this board's eth uplink (unix-sim) would run MAST, is in "
            "use by another simulated board (pid %d, --dir %s); give this board its own MAST port: "
            "mast sim-board --dir %s --mast-port %d (or stop the other one)\n"
            % (port, first.proc.pid, folders[0], folders[1], port + 1))
        assert not os.path.exists(os.path.join(folders[1], "lib"))  # nothing installed
        other = free_udp_port()
        with simboard.SimBoardProcess(folders[1], "--mast-port", str(other)) as second:
            con = simboard.BoardConsole(second.device)
            try:
                booted(con)
                st = con.call("status")
                assert st["uplinks"]["eth"]["state"] == "up"
                assert st["uplinks"]["eth"]["mast"]["socket"]["bind"] == "127.0.0.2:%d" % other
            finally:
                con.close()
        with open(os.path.join(folders[1], "mast.json")) as f:
            assert json.load(f) == {"name": "two", "port": other}


def test_a_board_runs_its_firmware_from_a_romfs_image_whose_size_is_added_to_the_heap(board_dir, tmp_path):
    image = str(tmp_path / "fw.romfs")
    size = romfs_of_lib(board_dir, image)
    with simboard.SimBoardProcess(board_dir, "--heapsize", "96K", "--romfs", image) as sb:
        assert sb.info["romfs"] == image and sb.info["romfs_bytes"] == size
        assert sb.info["heapsize"] == "96K"
        con = simboard.BoardConsole(sb.device)
        try:
            assert con.call("hello")["firmware"] == "mast-board"  # no /lib: it came from /rom
            mem = con.call("status")["mem"]
        finally:
            con.close()
    assert not os.path.exists(os.path.join(board_dir, "lib"))
    assert mem["alloc"] > size  # the image is in the heap (on a board it is in flash) ...
    assert mem["alloc"] + mem["free"] > 96 * 1024 + size * 9 // 10  # ... which has room for it on top


def test_heap_sizes_are_read_as_micropython_reads_them(micropython):
    # --romfs adds the image's size to the heap, so mast sim-board reads -X heapsize itself:
    # what micropython then has (its block tables take a little) must match
    for h in ("96K", "96wK", "1M", "200000"):
        r = subprocess.run(micropython + ["-X", "heapsize=" + h, "-c",
                            "import gc; print(gc.mem_free() + gc.mem_alloc())"],
                           stdout=subprocess.PIPE, universal_newlines=True, timeout=30, check=True)
        have = int(r.stdout)
        assert simboard.heap_bytes(h) * 0.95 < have <= simboard.heap_bytes(h), (h, have)


def test_sim_board_refuses_a_romfs_image_that_is_not_one_and_a_bad_heapsize(micropython, tmp_path):
    bad = tmp_path / "x.romfs"
    bad.write_bytes(b"PK\x03\x04 not a ROMFS image")
    r = mast("sim-board", "--dir", str(tmp_path / "b1"), "--romfs", str(bad), timeout=60)
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr == ("mast: %s is not a ROMFS image (it does not start with MicroPython's ROMFS "
                        "header); build one with: mpremote romfs -o IMAGE build DIR (DIR/lib/...)\n" % bad)
    r = mast("sim-board", "--dir", str(tmp_path / "b2"), "--romfs", str(tmp_path / "none.romfs"), timeout=60)
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr.startswith("mast: cannot read the ROMFS image %s: " % (tmp_path / "none.romfs"))
    r = mast("sim-board", "--dir", str(tmp_path / "b3"), "--heapsize", "96Q", timeout=60)
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr == ("mast: not a heap size: '96Q' (e.g. 192K, 1M, 96wK, 200000); give --heapsize as "
                        "micropython's -X heapsize takes it\n")
    for d in ("b1", "b2", "b3"):  # nothing installed
        assert not os.path.exists(str(tmp_path / d / "lib"))


def test_mpremote_ls_shows_the_size_of_each_file(board_dir):
    with simboard.SimBoardProcess(board_dir) as sb:
        wait_booted(sb.device)
        r = mpremote(sb.device, "resume", "ls")
    assert r.returncode == 0, r.stdout
    sizes = dict((line.split()[1], int(line.split()[0])) for line in r.stdout.splitlines()
                 if len(line.split()) == 2 and line.split()[0].isdigit())
    for name in ("main.py", "boot.py", "board.json", "mast.json"):
        assert sizes[name] == os.path.getsize(os.path.join(board_dir, name)) > 0, (name, sizes)


def test_mast_ports_lists_a_running_sim_board_and_commands_find_it_without_port(board_dir, tmp_path,
                                                                               monkeypatch):
    # a registry of its own: simulated boards running elsewhere (a session fixture's) stay out
    monkeypatch.setenv("MAST_SIM_REGISTRY", str(tmp_path / "registry"))
    with simboard.SimBoardProcess(board_dir) as sb:
        wait_booted(sb.device)
        r = mast("ports", "--json")
        sims = [p for p in r.doc if p.get("sim_board")]
        assert [p["device"] for p in sims] == [sb.device], r.doc
        assert sims[0]["likely"] == ["unix-sim"] and sims[0]["sim_board"]["pid"] == sb.proc.pid
        assert sims[0]["sim_board"]["dir"] == board_dir
        r = mast("ports")
        assert "%s  sim        unix-sim  (mast sim-board (pid %d, --dir %s))" % (
            sb.device.ljust(15), sb.proc.pid, board_dir) in r.stdout
        r = mast("config", "get", "name")  # no --port: the one board there is
        assert r.returncode == 0 and r.stdout == "board1\n", r.stderr
        assert "mast config: no --port given; using %s (mast sim-board, pid %d" % (
            sb.device, sb.proc.pid) in r.stderr
        second = str(tmp_path / "second")
        os.makedirs(second)
        with open(os.path.join(second, "mast.json"), "w") as f:
            json.dump({"name": "second", "port": free_udp_port()}, f)
        with simboard.SimBoardProcess(second) as sb2:
            r = mast("config", "get", "name")
            assert r.returncode == 1 and r.stdout == ""
            assert r.stderr.startswith("mast: 2 boards found: %s (mast sim-board, pid %d" % (
                sb.device, sb.proc.pid))
            assert "%s (mast sim-board, pid %d" % (sb2.device, sb2.proc.pid) in r.stderr
            assert r.stderr.rstrip().endswith("; pick one with --port")
    assert os.listdir(str(tmp_path / "registry")) == []  # each took its file away as it stopped
    r = mast("ports", "--json")
    assert not [p for p in r.doc if p.get("sim_board")]  # gone with the boards


def test_a_link_that_cannot_be_made_names_the_link_and_leaves_nothing_behind(micropython, tmp_path):
    # the error named the pty (No such file or directory: /dev/pts/4) or the temporary link
    # (Is a directory: /tmp.tmp17494), which stayed behind
    where = tmp_path / "nowhere" / "tty"
    r = mast("sim-board", "--dir", str(tmp_path / "b1"), "--bare", "--link", str(where), timeout=60)
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr == ("mast: cannot make --link %s (No such file or directory); give --link a path in "
                        "an existing folder, not a directory (e.g. /tmp/board)\n" % where)
    folder = tmp_path / "adir"
    folder.mkdir()
    r = mast("sim-board", "--dir", str(tmp_path / "b1"), "--bare", "--link", str(folder), timeout=60)
    assert r.returncode == 1
    assert r.stderr.startswith("mast: cannot make --link %s (it is a directory); " % folder)
    assert sorted(os.listdir(str(tmp_path))) == ["adir", "b1"]  # no adir.tmpPID link left


def test_a_dir_that_is_a_file_is_refused_as_not_a_directory(micropython, tmp_path):
    f = tmp_path / "afile"
    f.write_text("x")
    for extra in ((), ("--mast-port", "16050")):
        r = mast("sim-board", "--dir", str(f), *extra, timeout=60)
        assert r.returncode == 1 and r.stdout == ""
        assert r.stderr == ("mast: --dir %s is not a directory; give the folder of the board's files (a "
                            "new one is created)\n" % f)


def test_a_micropython_that_dies_at_start_is_said_why_and_started_less_often(micropython, tmp_path):
    # a heap too small for anything: MemoryError went to the pty, which nobody read, and
    # sim-board's own output said only "exited with status 1"
    with simboard.SimBoardProcess(str(tmp_path / "b"), "--bare", "--heapsize", "1K") as sb:
        said = "exited %d times in a row within a second of starting" % simboard.FAST_EXITS
        err = (sb.err + _read_err(sb.proc, lambda e: said.encode() in (sb.err + e) or None)).decode()
    # (the time it lived: 0.0 s alone, 0.1 s or more on a loaded machine)
    assert re.search(r"micropython exited with status 1 after \d+\.\d s: MemoryError: memory "
                     r"allocation failed", err), err
    assert ("mast sim-board: micropython exited 3 times in a row within a second of starting: the heap "
            "may be too small (--heapsize 1K) or the firmware in %s is broken" % (tmp_path / "b")) in err
    assert err.count("boot ") == simboard.FAST_EXITS  # not ten a second: 0.4 s, 0.8 s, ... between


def test_a_link_left_by_a_board_that_was_killed_is_replaced(tmp_path):
    # (no micropython needed: only the client's pty and its --link)
    link = tmp_path / "tty"
    os.symlink("/dev/pts/gone-with-the-killed-board", str(link))
    board = simboard.SimBoard(str(tmp_path / "b"), link=str(link), bare=True)
    try:
        device = board.open()
        assert os.readlink(str(link)) == device
    finally:
        board.close()
    assert not os.path.lexists(str(link))


def test_output_nobody_reads_is_kept_up_to_a_bound_and_what_goes_is_counted(tmp_path):
    said = []
    board = simboard.SimBoard(str(tmp_path / "b"), bare=True, log=said.append)
    board._to_client(b"x" * (simboard._OUT_MAX - 10))
    board._to_client(b"y" * 30)  # 20 bytes too many: the oldest go
    assert board.dropped["to_client"] == 20
    assert len(board.out) == simboard._OUT_MAX and board.out.endswith(b"x" * 10 + b"y" * 30)
    assert said == ["dropped 20 byte(s) of output nobody read (20 so far)"]


def test_input_sent_while_the_board_reboots_is_lost_and_said(tmp_path):
    said = []
    board = simboard.SimBoard(str(tmp_path / "b"), bare=True, log=said.append)
    board._from_client(b"abc")  # no micropython running
    assert board.dropped["to_board"] == 3
    assert said == ["dropped 3 byte(s) of input sent while the board was not running (rebooting) (3 so far)"]


def test_output_that_sat_unread_in_the_pty_is_dropped_counted_and_said_when_it_stops(tmp_path, monkeypatch):
    """docs/HARDWARE.md: output no client reads within a second is dropped from the pty,
    counted, and logged when sim-board exits (here the second is 0: no wait)."""
    monkeypatch.setattr(simboard, "_STALE_S", -1.0)
    said = []
    board = simboard.SimBoard(str(tmp_path / "b"), bare=True, log=said.append)
    try:
        board.open()
        board._to_client(b"z" * 300000)  # far more than a pty holds: nobody reads it
        # (bounded) until the pty is full, then its bytes dropped. The kernel moves what was
        # written into the pty's buffer in its own time: on a busy machine 100 tries in a row
        # found nothing there yet to count, so each try leaves it a moment
        end = time.monotonic() + 20
        while time.monotonic() < end:
            board._flush_client()
            if board.dropped["to_client"]:
                break
            time.sleep(0.01)
        assert board.dropped["to_client"] > 0
    finally:
        board.close()
    assert said == ["dropped %d byte(s) of output in all: no client read them"
                    % board.dropped["to_client"]]


class _Exited:
    """A micropython process that has ended with this status (what _board_exited reads)."""

    def __init__(self, rc):
        self.returncode = rc
        self.pid = 4242

    def poll(self):
        return self.returncode


def _exits(board, monkeypatch, runs):
    """Let micropython end once per (status, seconds it lived[, its last output]) of runs, each restart recorded
    instead of made -> (how each restart booted, each back-off slept in seconds)."""
    spawned, slept = [], []
    monkeypatch.setattr(board, "_spawn", spawned.append)
    monkeypatch.setattr(simboard.time, "sleep", slept.append)
    for run in runs:
        rc, lived = run[:2]
        r, w = os.pipe()  # (its pty: what it said last, if anything, then nothing more)
        os.write(w, run[2] if len(run) > 2 else b"")
        os.close(w)
        board._bm = r
        try:
            board.proc = _Exited(rc)
            board._started = time.monotonic() - lived
            board._board_exited()
        finally:
            os.close(r)
            board._bm = None
    return spawned, slept


def test_quick_reboots_of_the_firmware_are_restarted_at_once_and_never_taken_for_a_crash_loop(tmp_path, monkeypatch):
    # the firmware's reboot is exit 75 (board/hw.py), often well within a second of its start
    # (a reboot op at once, a bad config): a reboot, restarted at once, never "broken"
    said = []
    board = simboard.SimBoard(str(tmp_path / "b"), bare=True, log=said.append)
    spawned, slept = _exits(board, monkeypatch, [(simboard.REBOOT_EXIT, 0.1)] * (simboard.FAST_EXITS + 1))
    assert spawned == ["power"] * (simboard.FAST_EXITS + 1) and slept == []
    assert not [x for x in said if "in a row" in x], said


def test_a_good_run_between_crashes_starts_the_back_off_and_its_warning_again(tmp_path, monkeypatch):
    said = []
    board = simboard.SimBoard(str(tmp_path / "b"), bare=True, log=said.append)
    crash, good = (1, 0.1), (1, 30.0)  # the same status: only the time it ran differs
    spawned, slept = _exits(board, monkeypatch, [crash, crash, good, crash, crash, crash])
    assert len(spawned) == 6
    assert slept == [0.4, 0.8, 0.4, 0.8, 1.6], slept  # back to the first back-off after the good run
    warned = [x for x in said if "in a row" in x]
    assert len(warned) == 1 and said[-1] == warned[0], said  # at the third crash in a row, not before


def test_input_the_board_had_not_read_when_it_stopped_is_lost_counted_and_said(tmp_path, monkeypatch):
    said = []
    board = simboard.SimBoard(str(tmp_path / "b"), bare=True, log=said.append)
    board.inq = bytearray(b'{"id": 7, "op": "status"}\n')  # queued, never read: it rebooted
    spawned, _ = _exits(board, monkeypatch, [(simboard.REBOOT_EXIT, 5.0)])
    assert spawned == ["power"] and board.inq == bytearray()
    assert board.dropped["to_board"] == 26
    assert said[0] == "dropped 26 byte(s) of input the board had not read when it stopped (26 so far)", said


def test_a_client_that_writes_to_a_board_that_does_not_read_is_held_back_not_queued_without_bound(tmp_path):
    # (no micropython needed: a stand-in that never reads its stdin) what the client writes is
    # queued up to _IN_MAX bytes; beyond that the client is not read and its pty fills up, as
    # flow control holds a sender back, instead of sim-board's memory growing without end
    import errno
    import threading

    fake = tmp_path / "micropython"
    fake.write_text("#!/bin/sh\nexec sleep 60\n")
    fake.chmod(0o755)
    board = simboard.SimBoard(str(tmp_path / "b"), bare=True, micropython=str(fake))
    board.prepare()
    device = board.open()
    t = threading.Thread(target=board.serve)
    fd = os.open(device, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    t.start()
    try:
        chunk = b"x" * 4096
        written, last, end = 0, time.monotonic(), time.monotonic() + 30
        # (bounded) until it holds the client back for a second, or far more than the bound went in
        while written < 4 * simboard._IN_MAX and time.monotonic() < end and time.monotonic() - last < 1.0:
            try:
                written += os.write(fd, chunk)
                last = time.monotonic()
            except OSError as e:
                assert e.errno in (errno.EAGAIN, errno.EWOULDBLOCK), e
                time.sleep(0.01)
        assert len(board.inq) <= simboard._IN_MAX + 4096, (len(board.inq), written)
        assert written < 4 * simboard._IN_MAX, written
    finally:
        board.stop()
        t.join(10)
        os.close(fd)
        stayed = board.proc.poll() is None
        if stayed:
            board.proc.kill()
            board.proc.wait()
    assert not t.is_alive() and not stayed  # (its micropython stopped with it)


def test_a_heap_of_no_bytes_is_not_a_heap_size():
    # micropython -X heapsize=0 cannot start at all: sim-board would boot it again and again
    for h in ("0", "0K", "0wK", "00M"):
        with pytest.raises(ValueError) as e:
            simboard.heap_bytes(h)
        assert str(e.value) == "not a heap size: %r (e.g. 192K, 1M, 96wK, 200000)" % h
    assert simboard.heap_bytes("1") == 1 and simboard.heap_bytes("2wK") == 4096


def test_filling_a_folder_never_overwrites_a_file_already_there(tmp_path):
    # (a board's folder whose main.py went, say: its own board.json and app.py stay as they are)
    folder = tmp_path / "b"
    folder.mkdir()
    (folder / "board.json").write_text('{"mine": true}\n')
    (folder / "app.py").write_text("# my app\n")
    written = simboard.fill(str(folder), "unix-sim", mpy_cross=_copy_compiler())
    assert (folder / "board.json").read_text() == '{"mine": true}\n'
    assert (folder / "app.py").read_text() == "# my app\n"
    assert "board.json" not in written and "app.py" not in written
    assert "main.py" in written and (folder / "main.py").exists()


def test_a_firmware_file_mpy_cross_fails_on_stops_the_fill_naming_it(tmp_path):
    fails = [sys.executable, "-c", "import sys; print('SyntaxError: invalid syntax'); sys.exit(1)"]
    with pytest.raises(simboard.SimBoardError) as e:
        simboard.fill(str(tmp_path / "b"), "unix-sim", mpy_cross=fails)
    assert re.match(r"mpy-cross failed on [\w/]+\.py: SyntaxError: invalid syntax$", e.value.what), e.value.what
    assert e.value.hint == "fix the source, or use --bare and install it yourself"


def test_the_console_client_keeps_a_line_with_ok_but_no_id_as_a_log_not_a_reply(tmp_path):
    # (no micropython needed: the client on a pty whose other end plays the board) a reply
    # always has its id (null for a line the board could not read); an app's own JSON line
    # may have "ok" without one
    import pty

    m, s = pty.openpty()
    con = simboard.BoardConsole(os.ttyname(s))
    try:
        os.write(m, b'{"ok": true, "app": "sensor"}\n{"id": null, "ok": false, "error": "not JSON"}\n'
                    b'{"id": 1, "ok": true, "result": 5}\n')
        con.wait(lambda c: 1 in c.replies, timeout=10)
        assert con.logs == [{"ok": True, "app": "sensor"}]
        assert con.replies == {None: [{"id": None, "ok": False, "error": "not JSON"}],
                               1: [{"id": 1, "ok": True, "result": 5}]}
    finally:
        con.close()
        os.close(m)
        os.close(s)


# ---- mast_tools.board_process: a sim board as the demo's child --------------------------------


def test_a_sim_board_child_whose_parent_is_already_gone_does_not_start():
    # the trampoline asks Linux to end it with its parent; a parent that died before that ask
    # would leave a sim board running for ever: the trampoline checks and ends at once
    from mast_tools import board_process

    r = subprocess.run([sys.executable, "-c", board_process._TRAMPOLINE, "1", "--version"],  # (pid 1: not its parent)
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       env=env_for_mast(), timeout=60)
    assert (r.returncode, r.stdout, r.stderr) == (0, b"", b"")


def test_a_prepared_sim_board_runs_the_app_it_was_given(tmp_path):
    from mast_tools import board_process

    folder = str(tmp_path / "b")
    bd = board_process.load_board_def()
    board_process.prepare_sim_board(folder, bd, {"name": "b1", "port": 6278}, "APP = 'the demo'")
    with open(os.path.join(folder, "app.py")) as f:
        assert f.read() == "APP = 'the demo'\n"
    with open(os.path.join(folder, "mast.json")) as f:
        assert json.load(f) == {"name": "b1", "port": 6278}
    with open(os.path.join(folder, "board.json")) as f:
        assert json.load(f) == bd  # the definition it was given, not the one fill() copied


def test_stop_kills_a_sim_board_child_that_does_not_end_when_asked(tmp_path):
    # (a child stuck with SIGTERM ignored: stop() waits 5 s for it, then kills it)
    from mast_tools import board_process

    child = board_process.SimBoardChild(str(tmp_path / "b"))
    child.proc = subprocess.Popen([sys.executable, "-c", "import signal, sys, time\n"
                                   "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
                                   "print('ready', flush=True)\ntime.sleep(120)\n"],
                                  stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert child.proc.stdout.readline() == b"ready\n"
        os.set_blocking(child.proc.stderr.fileno(), False)  # (as start() leaves it)
        assert child.read_err() is True  # running, nothing logged yet: no wait
        child.stop()
        assert child.proc.returncode == -9 and not child.alive()
        assert child.read_err() is False  # its stderr is closed: nothing more will come
    finally:
        if child.proc.poll() is None:
            child.proc.kill()
            child.proc.wait()


def test_read_err_keeps_what_the_child_logged_and_says_false_once_it_has_ended(tmp_path):
    from mast_tools import board_process

    child = board_process.SimBoardChild(str(tmp_path / "b"))
    child.proc = subprocess.Popen([sys.executable, "-c", "import sys; sys.stderr.write('last words')"],
                                  stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        child.proc.wait(30)
        os.set_blocking(child.proc.stderr.fileno(), False)  # (as start() leaves it)
        assert child.read_err() is True and child.err == b"last words"
        assert child.read_err() is False and child.err == b"last words"  # the end of its stderr
    finally:
        child.stop()


def test_a_stopped_sim_board_child_ends_on_its_own_and_takes_its_micropython_with_it(micropython, tmp_path):
    # stop() asks (SIGTERM): sim-board stops its micropython and exits 0; it is not killed
    import select

    from mast_tools import board_process
    from mast_tools.netutil import free_udp_port

    folder = str(tmp_path / "b")
    port = free_udp_port(("127.0.0.2",))  # (the board's eth uplink; 6278 may be another board's)
    board_process.prepare_sim_board(folder, board_process.load_board_def(), {"name": "b1", "port": port}, "")
    child = board_process.SimBoardChild(folder)
    try:
        assert child.start(timeout=30).startswith("/dev/")
        for _ in range(100):  # (bounded: until sim-board has logged its micropython's pid)
            if re.search(rb"boot 1 \(power\): pid (\d+)", child.err) or not child.read_err():
                break
            select.select([child.proc.stderr], [], [], 0.1)
        m = re.search(rb"boot 1 \(power\): pid (\d+)", child.err)
        assert m, child.err
        child.stop()
        assert child.proc.returncode == 0 and not child.alive()
        with pytest.raises(ProcessLookupError):
            os.kill(int(m.group(1)), 0)
        child.stop()  # (twice: nothing to do)
    finally:
        if child.proc is not None and child.proc.poll() is None:
            child.proc.kill()
            child.proc.wait()


def test_a_sim_board_child_that_does_not_come_up_is_stopped_not_left_running(tmp_path):
    from mast_tools import board_process

    child = board_process.SimBoardChild(str(tmp_path / "b"))
    try:
        with pytest.raises(RuntimeError) as e:
            child.start(timeout=0)  # (no time to come up at all)
        assert str(e.value).startswith("mast sim-board did not start: ")
        assert child.proc.poll() is not None  # ended, not running on without anyone to stop it
    finally:
        if child.proc is not None and child.proc.poll() is None:
            child.proc.kill()
            child.proc.wait()


# ---- `mast sim-board`'s own checks (mast_tools.cmd_simboard): before any board starts ----------


def test_a_mast_port_that_is_no_udp_port_is_refused_before_anything_is_written(tmp_path):
    r = mast("sim-board", "--dir", str(tmp_path / "b"), "--mast-port", "70000", timeout=60)
    assert (r.returncode, r.stdout) == (1, "")
    assert r.stderr == "mast: --mast-port 70000 is not a UDP port; give a number from 1 to 65535\n"
    assert not os.path.exists(str(tmp_path / "b" / "mast.json"))


def test_a_mast_port_is_written_into_mast_json_with_a_name_if_it_has_none(tmp_path):
    from mast_tools import cmd_simboard

    folder = tmp_path / "b"
    cmd_simboard._set_mast_port(str(folder), 47011)
    assert json.loads((folder / "mast.json").read_text()) == {"name": "sim-47011", "port": 47011}
    (folder / "mast.json").write_text(json.dumps({"name": "mine", "port": 6278, "keying": "open"}))
    cmd_simboard._set_mast_port(str(folder), 47012)
    assert json.loads((folder / "mast.json").read_text()) == {"name": "mine", "port": 47012, "keying": "open"}


def test_a_second_sim_board_on_the_folder_of_one_that_runs_is_refused_before_it_writes(tmp_path):
    # (it started, and --mast-port rewrote the running board's mast.json under it)
    from mast_tools import simregistry

    folder = tmp_path / "b"
    folder.mkdir()
    (folder / "mast.json").write_text('{"name": "b", "port": 6278}')
    device = tmp_path / "pty"
    device.write_text("")
    simregistry.register({"pid": os.getpid(), "device": str(device), "dir": str(folder)})
    try:
        r = mast("sim-board", "--dir", str(tmp_path / "." / "b"), "--mast-port", "47013", timeout=20)
    finally:
        simregistry.unregister(os.getpid())
    assert (r.returncode, r.stdout) == (1, "")
    assert r.stderr == ("mast: --dir %s is the folder of a simulated board that runs (pid %d, %s); give "
                        "this board a folder of its own, or stop that one first\n"
                        % (tmp_path / "." / "b", os.getpid(), device))
    assert (folder / "mast.json").read_text() == '{"name": "b", "port": 6278}'


def test_the_addresses_a_sim_board_binds_are_its_configurations_where_it_moves_an_uplink():
    from mast_tools import cmd_simboard

    bd = simboard.load_board("unix-sim")
    cfg = {"name": "b", "port": 47013, "uplinks": {"wifi": {"address": "127.0.0.77"}, "cell": {"cost": 3}}}
    assert cmd_simboard.udp_addresses(bd, cfg) == {"eth": ("127.0.0.2", 47013), "wifi": ("127.0.0.77", 47013),
                                                   "cell": ("127.0.0.4", 47013)}
    assert cmd_simboard.udp_addresses(bd, None)["eth"] == ("127.0.0.2", 6278)  # (the schema's default port)


def test_a_micropython_that_dies_at_start_is_said_why_in_the_last_line_it_printed(tmp_path, monkeypatch):
    said = []
    board = simboard.SimBoard(str(tmp_path / "b"), bare=True, log=said.append)
    tb = (b'Traceback (most recent call last):\r\n  File "main.py", line 2, in <module>\r\n'
          b"ImportError: no module named 'board'\r\n")
    _exits(board, monkeypatch, [(1, 0.1, tb)])
    assert re.match(r"micropython exited with status 1 after \d+\.\d s: ImportError: no module named 'board'$",
                    said[0]), said
    assert bytes(board.out) == tb  # (and the client gets all of it)


def test_what_a_soft_reboot_said_before_micropython_ended_reaches_the_client(tmp_path, monkeypatch):
    # (a soft reset's output is held until the REPL's banner, then shown; one that never got
    # there, boot.py failing, is shown all the same)
    board = simboard.SimBoard(str(tmp_path / "b"), bare=True, soft_reset=True)
    board.phase = "soft-boot"
    said = b'Traceback (most recent call last):\r\n  File "boot.py", line 1\r\nOSError: [Errno 28] ENOSPC\r\n'
    spawned, _ = _exits(board, monkeypatch, [(1, 5.0, said)])
    assert bytes(board.out) == said and len(spawned) == 1


def test_the_back_off_between_boots_of_a_broken_install_stays_at_5_s_at_most(tmp_path, monkeypatch):
    board = simboard.SimBoard(str(tmp_path / "b"), bare=True)
    spawned, slept = _exits(board, monkeypatch, [(1, 0.1)] * 8)
    assert slept == [0.4, 0.8, 1.6, 3.2, 5.0, 5.0, 5.0, 5.0] and len(spawned) == 8, slept


def test_ctrl_d_in_the_friendly_repl_after_the_raw_one_is_a_full_reboot_with_soft_reset(tmp_path, monkeypatch):
    # mpremote left the raw REPL (Ctrl-B: the banner again); a Ctrl-D there is a soft reset
    # that runs main.py, as a board's does, not the raw REPL's boot.py-only one
    board = simboard.SimBoard(str(tmp_path / "b"), bare=True, soft_reset=True)
    # (both in one read: a client's Ctrl-A and Ctrl-B sent together)
    board._from_board(simboard.RAW_PROMPT + b">" + b"\r\nMicroPython v1.24.0 on 2024-10-25; linux [GCC 12.2.0] "
                      b"version\r\n" + simboard.BANNER_END + b"\r\n>>> ")
    spawned, _ = _exits(board, monkeypatch, [(0, 5.0)])
    assert spawned == ["reboot"], spawned
    board._from_board(simboard.RAW_PROMPT + b">")  # and from the raw REPL: boot.py, raw REPL again
    spawned, _ = _exits(board, monkeypatch, [(0, 5.0)])
    assert spawned == ["soft"], spawned


def _copy_compiler():
    """An mpy-cross stand-in (`-s NAME -o OUT SRC`): copies SRC to OUT (opened as mpy-cross
    opens it: OUT may be /dev/stdout, a pipe, which shutil.copyfile refuses)."""
    return [sys.executable, "-c", "import sys; open(sys.argv[-2], 'wb').write(open(sys.argv[-1], 'rb').read())"]


def _killed_then_filled_whole(folder, code):
    """Run code (a fill of folder that kills itself part way: SIGKILL), then a fill again: every
    file of the layout is then whole."""
    r = subprocess.run([sys.executable, "-c", code, str(folder)], env=env_for_mast(), timeout=60,
                       capture_output=True)
    assert r.returncode == -9, r
    simboard.fill(str(folder), "unix-sim", mpy_cross=_copy_compiler())
    for dest, src, compiled in simboard.layout("unix-sim"):
        with open(src, "rb") as f:
            assert (folder / dest).read_bytes() == f.read(), dest


def test_a_fill_killed_in_the_middle_of_a_file_is_finished_whole_by_the_next_one(tmp_path):
    # `mast sim-board` killed (SIGKILL: nothing of it runs after) while mpy-cross writes a
    # file: the next fill must not take that half file for a whole one (a file there is never
    # written again)
    folder = tmp_path / "b"
    dies = [sys.executable, "-c", "import os, signal, sys; src = open(sys.argv[-1], 'rb').read(); "
            "f = open(sys.argv[-2], 'wb'); f.write(src[:len(src) // 2]); f.flush(); "
            "os.kill(os.getppid(), signal.SIGKILL); os.kill(os.getpid(), signal.SIGKILL)"]
    code = "import sys; from mast_tools import simboard; simboard.fill(sys.argv[1], 'unix-sim', %r)" % dies
    _killed_then_filled_whole(folder, code)
    leftovers = [os.path.join(d, n) for d, _, names in os.walk(str(folder)) for n in names
                 if n.endswith(".tmp")]
    assert leftovers == []


def test_a_fill_killed_while_it_writes_a_module_is_finished_whole_by_the_next_one(tmp_path):
    # (mpy-cross writes into a pipe: the fill writes each module itself, into NAME.tmp; killed
    # there, the half module must not be taken for a whole one by the next fill)
    folder = tmp_path / "b"
    code = ("import os, signal, sys\n"
            "from mast_tools import simboard\n"
            "class Half:\n"
            "    def __init__(self, f):\n"
            "        self.f = f\n"
            "    def write(self, data):\n"
            "        self.f.write(data[:len(data) // 2])\n"
            "        self.f.flush()\n"
            "        os.kill(os.getpid(), signal.SIGKILL)\n"
            "    def __enter__(self):\n"
            "        return self\n"
            "    def __exit__(self, *exc):\n"
            "        self.f.close()\n"
            "simboard.open = lambda p, m='r': Half(open(p, m)) if 'w' in m else open(p, m)\n"
            "simboard.fill(sys.argv[1], 'unix-sim', %r)\n" % _copy_compiler())
    _killed_then_filled_whole(folder, code)


def test_a_sim_board_whose_fill_was_killed_before_its_last_file_is_filled_at_its_next_start(
        tmp_path, monkeypatch):
    # killed (Ctrl-C) while the root files were copied: the next start fills what is missing,
    # though main.py may be there already (a folder with main.py is taken as filled)
    folder = tmp_path / "b"
    real = shutil.copyfile

    def copy_then_killed(src, dst):
        if os.path.basename(dst).startswith(("app.py", "board.json")):
            with open(src, "rb") as f:
                data = f.read()
            with open(dst, "wb") as f:
                f.write(data[:len(data) // 2])
            raise KeyboardInterrupt()
        return real(src, dst)

    monkeypatch.setattr(simboard.shutil, "copyfile", copy_then_killed)
    with pytest.raises(KeyboardInterrupt):
        simboard.fill(str(folder), "unix-sim", mpy_cross=_copy_compiler())
    monkeypatch.setattr(simboard.shutil, "copyfile", real)
    monkeypatch.setattr(simboard, "find_mpy_cross", _copy_compiler)
    sb = simboard.SimBoard(str(folder), micropython=sys.executable)  # (prepare() only)
    sb.prepare()
    for dest, src, compiled in simboard.layout("unix-sim"):
        with open(src, "rb") as f:
            assert (folder / dest).read_bytes() == f.read(), dest


_FILL_ON_A_SMALL_DISK = """
set -e
mount -t tmpfs -o size=128k tmpfs "$1"
set +e
"$2" -c 'import sys
from mast_tools import simboard
try:
    simboard.fill(sys.argv[1] + "/b", "unix-sim")
except OSError as e:
    print("failed: %s" % e)' "$1"
mount -o remount,size=16m "$1"
"$2" -c 'import sys
from mast_tools import simboard
simboard.fill(sys.argv[1] + "/b", "unix-sim")' "$1"
cp -r "$1/b" "$3"
"""


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("unshare") is None,
                    reason="fills a small tmpfs in a mount namespace of its own: needs root and unshare")
def test_a_fill_on_a_full_disk_fails_naming_the_file_and_the_next_one_leaves_every_file_whole(tmp_path):
    # mpy-cross ignores its write errors (exit status 0): on a full disk it left empty .mpy files,
    # renamed into place and never written again, and the board failed at every boot for good
    if simboard.find_mpy_cross() is None:
        pytest.skip("mpy-cross is not installed")
    disk, got = tmp_path / "disk", tmp_path / "got"
    disk.mkdir()
    r = subprocess.run(["unshare", "-m", "sh", "-c", _FILL_ON_A_SMALL_DISK, "sh", str(disk), sys.executable,
                        str(got)], capture_output=True, text=True, timeout=300, env=env_for_mast())
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("failed: [Errno 28] No space left on device: ") and str(disk) in r.stdout, r.stdout
    want = tmp_path / "want"
    simboard.fill(str(want), "unix-sim")
    for dest, src, compiled in simboard.layout("unix-sim"):
        assert (got / dest).read_bytes() == (want / dest).read_bytes(), dest
