"""`mast ports`: serial ports with their USB IDs and the board each likely is. The guess is a
table of USB IDs (tested here with ports as pyserial describes them); the command itself runs
on whatever this machine has (in CI: no USB serial port at all)."""

import json

import boardcli  # noqa: F401  (host-tools on sys.path)
from boardcli import mast

from mast_tools import cmd_ports
from mast_tools.firmware import BOARDS_DIR


class Port:
    """What pyserial's list_ports gives (serial.tools.list_ports_common.ListPortInfo)."""

    def __init__(self, device, vid=None, pid=None, manufacturer=None, product=None, serial_number=None,
                 description="n/a"):
        self.device, self.vid, self.pid = device, vid, pid
        self.manufacturer, self.product, self.serial_number = manufacturer, product, serial_number
        self.description = description


def test_known_usb_ids_name_the_likely_boards():
    assert cmd_ports.likely_boards(0x10C4, 0xEA60) == ("Silicon Labs CP210x USB-UART",
                                                       ["esp32-devkitc", "esp32-sim7600", "wt32-eth01"])
    assert cmd_ports.likely_boards(0x1A86, 0x7523)[1] == ["olimex-esp32-poe", "wt32-eth01"]
    assert cmd_ports.likely_boards(0x2E8A, 0x0005)[1] == ["rpi-pico-w"]
    assert cmd_ports.likely_boards(0x1234, 0x5678, "MicroPython", "Board in FS mode") == (
        "MicroPython's own USB (Board in FS mode)", [])
    assert cmd_ports.likely_boards(None, None) == (None, [])


def test_every_board_named_exists_in_boards():
    import os

    have = set(n[:-5] for n in os.listdir(BOARDS_DIR) if n.endswith(".json"))
    for what, boards in cmd_ports.USB_IDS.values():
        assert set(boards) <= have, (what, boards)


def test_the_listing_as_text_and_json(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("MAST_SIM_REGISTRY", str(tmp_path))  # (no simulated board running elsewhere)
    ports = [Port("/dev/ttyUSB0", 0x10C4, 0xEA60, "Silicon Labs", "CP2102", "0001"),
             Port("/dev/ttyACM0", 0x2E8A, 0x0005, "MicroPython", "Board in FS mode", "e66"),
             Port("/dev/ttyS0")]

    class Args:
        json = False
        all = False

    assert cmd_ports.do_ports(Args, comports=lambda: ports) == 0
    out = capsys.readouterr().out
    assert out.splitlines() == ["/dev/ttyACM0     2e8a:0005  rpi-pico-w",
                                "/dev/ttyUSB0     10c4:ea60  esp32-devkitc, esp32-sim7600, wt32-eth01"]
    Args.json, Args.all = True, True
    cmd_ports.do_ports(Args, comports=lambda: ports)
    doc = json.loads(capsys.readouterr().out)
    assert [p["device"] for p in doc] == ["/dev/ttyACM0", "/dev/ttyS0", "/dev/ttyUSB0"]
    assert doc[2] == {"device": "/dev/ttyUSB0", "vid": "10c4", "pid": "ea60", "serial_number": "0001",
                      "manufacturer": "Silicon Labs", "product": "CP2102", "description": "n/a",
                      "usb": "Silicon Labs CP210x USB-UART",
                      "likely": ["esp32-devkitc", "esp32-sim7600", "wt32-eth01"], "access": None}


_AS_NOBODY = r"""
import json, os, sys
sys.path.insert(0, sys.argv[1])
from mast_tools import cmd_ports, simregistry  # noqa: F401  (before: nobody may not read them)
if os.getuid() == 0:
    os.setgid(65534)
    os.setgroups([])
    os.setuid(65534)

class Port:
    vid, pid, manufacturer, product, serial_number, description = 0x10C4, 0xEA60, None, None, None, None

class Args:
    json = False
    all = False

ports = []
for dev in sys.argv[2:]:
    ports.append(Port())
    ports[-1].device = dev
cmd_ports.do_ports(Args, comports=lambda: ports)
print(json.dumps([cmd_ports.describe(p)["access"] for p in ports]))
"""


def test_a_port_this_user_may_not_open_is_marked_in_the_listing(tmp_path):
    # (a serial port's mode 660, root and dialout: here a file of root's with mode 600, and the
    # listing made as nobody; as an ordinary user, a file of one's own with mode 000)
    import os
    import subprocess
    import sys
    import tempfile

    with tempfile.TemporaryDirectory(prefix="mast-ports-") as d:  # (pytest's tmp_path: 700)
        os.chmod(d, 0o755)
        shut, mine = os.path.join(d, "ttyUSB9"), os.path.join(d, "ttyUSB8")
        for f, mode in ((shut, 0o600 if os.getuid() == 0 else 0), (mine, 0o666)):
            open(f, "wb").close()
            os.chmod(f, mode)
        env = dict(os.environ, MAST_SIM_REGISTRY=str(tmp_path / "none"))
        r = subprocess.run([sys.executable, "-c", _AS_NOBODY, os.path.join(boardcli.ROOT, "host-tools"),
                            shut, mine], capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert json.loads(lines[-1]) == [False, True]
    assert lines[0].startswith(mine) and "(you may not" not in lines[0], lines
    assert lines[1].startswith(shut) and lines[1].endswith(
        'esp32-devkitc, esp32-sim7600, wt32-eth01  (you may not open it: docs/HARDWARE.md, "USB permissions")'), lines


def test_mast_ports_runs_here_and_prints_json(tmp_path):
    r = mast("ports", "--json", env={"MAST_SIM_REGISTRY": str(tmp_path)})  # (real ports only)
    assert r.returncode == 0, r.stderr
    assert isinstance(r.doc, list)
    for p in r.doc:
        assert p["vid"] and p["device"].startswith("/dev/")
    r = mast("ports", env={"MAST_SIM_REGISTRY": str(tmp_path)})
    assert r.returncode == 0 and (r.stdout.startswith("no serial ports found") or "/dev/" in r.stdout)


def test_without_port_the_one_likely_board_is_used_and_several_are_listed(tmp_path, monkeypatch):
    from mast_tools import portpick
    from mast_tools.errors import CommandError

    monkeypatch.setenv("MAST_SIM_REGISTRY", str(tmp_path / "no-sim-boards"))
    one = [Port("/dev/ttyUSB0", 0x10C4, 0xEA60), Port("/dev/ttyS0"), Port("/dev/ttyUSB1", 0x1234, 0x5678)]
    assert portpick.resolve(None, "mast config", comports=one) == "/dev/ttyUSB0"
    assert portpick.resolve("/dev/ttyACM3", "mast config", comports=one) == "/dev/ttyACM3"
    two = one + [Port("/dev/ttyACM0", 0x2E8A, 0x0005, "MicroPython", "Board in FS mode")]
    try:
        portpick.resolve(None, "mast config", comports=two, ask=lambda c, f: None)
        raise AssertionError("several boards: no error")
    except CommandError as e:
        assert e.what == ("2 boards found: /dev/ttyACM0 (MicroPython on a Raspberry Pi RP2040 (USB "
                          "CDC); likely rpi-pico-w); /dev/ttyUSB0 (Silicon Labs CP210x USB-UART; "
                          "likely esp32-devkitc, esp32-sim7600, wt32-eth01)")
        assert e.hint == "pick one with --port"
    asked = []
    pick = portpick.resolve(None, "mast flash", comports=two,
                            ask=lambda c, f: asked.append([x["device"] for x in f]) or 1)
    assert pick == "/dev/ttyUSB0" and asked == [["/dev/ttyACM0", "/dev/ttyUSB0"]]
    try:
        portpick.resolve(None, "mast flash", comports=[Port("/dev/ttyS0")])
        raise AssertionError("no board: no error")
    except CommandError as e:
        assert e.what.startswith("no board found")


def test_at_a_terminal_the_user_is_asked_which_board(tmp_path):
    import os
    import pty
    import subprocess
    import sys
    import time

    from boardcli import env_for_mast

    code = ("import sys; sys.argv = ['mast']\n"
            "from mast_tools import portpick\n"
            "class P:\n"
            "    def __init__(s, d, v, p): s.device, s.vid, s.pid = d, v, p\n"
            "print(portpick.resolve(None, 'mast config', [P('/dev/ttyUSB0', 0x10C4, 0xEA60),\n"
            "                                             P('/dev/ttyACM0', 0x2E8A, 0x0005)]))\n")
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-c", code], stdin=slave, stdout=subprocess.PIPE,
                            stderr=slave, env=env_for_mast({"MAST_SIM_REGISTRY": str(tmp_path / "x")}))
    os.close(slave)
    try:
        shown = b""
        end = time.monotonic() + 20
        while b"which one? [1-2]" not in shown and time.monotonic() < end:
            shown += os.read(master, 4096)
        assert b"  1) /dev/ttyACM0 (MicroPython on a Raspberry Pi RP2040" in shown, shown
        os.write(master, b"2\n")
        out, _ = proc.communicate(timeout=20)
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert out.decode().strip() == "/dev/ttyUSB0"


def test_the_answer_to_which_board_must_be_one_of_the_numbers_shown(monkeypatch, capsys):
    import io
    import sys

    from mast_tools import portpick

    found = [{"device": "/dev/ttyACM0", "what": "a", "boards": [], "sim": False},
             {"device": "/dev/ttyUSB0", "what": "b", "boards": [], "sim": False}]
    got = {}
    for answer in ("0", "1", "2", "3", "-1", "x", ""):
        monkeypatch.setattr(sys, "stdin", io.StringIO(answer + "\n"))
        got[answer] = portpick._ask("mast config", found)
    assert got == {"0": None, "1": 0, "2": 1, "3": None, "-1": None, "x": None, "": None}
    assert "which one? [1-2]" in capsys.readouterr().err


def test_a_running_sim_board_is_listed_and_used_without_port(tmp_path, monkeypatch, capsys):
    import os

    from mast_tools import portpick, simregistry

    monkeypatch.setenv("MAST_SIM_REGISTRY", str(tmp_path / "reg"))
    pty = tmp_path / "pts-7"
    pty.write_text("")
    simregistry.register({"pid": os.getpid(), "device": str(pty), "link": str(tmp_path / "ttySIM"),
                          "board": "unix-sim", "dir": str(tmp_path / "board")})
    (tmp_path / "ttySIM").write_text("")
    assert portpick.resolve(None, "mast config", comports=[Port("/dev/ttyS0")]) == str(tmp_path / "ttySIM")

    class Args:
        json = True
        all = False

    assert cmd_ports.do_ports(Args, comports=lambda: [Port("/dev/ttyS0")]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [(p["device"], p["likely"], p["sim_board"]["pty"]) for p in doc] == [
        (str(tmp_path / "ttySIM"), ["unix-sim"], str(pty))]


def test_a_registered_sim_board_whose_pty_is_gone_is_not_listed_and_its_file_goes(tmp_path, monkeypatch):
    # its process lives on (a pid reused, say) but the board's pty is gone: nothing to open
    import os

    from mast_tools import simregistry

    monkeypatch.setenv("MAST_SIM_REGISTRY", str(tmp_path / "reg"))
    path = simregistry.register({"pid": os.getpid(), "device": str(tmp_path / "pts-gone")})
    assert os.path.exists(path)
    assert simregistry.running() == [] and simregistry.find(str(tmp_path / "pts-gone")) is None
    assert not os.path.exists(path)


def test_a_registered_sim_board_whose_process_is_gone_is_not_listed_and_its_file_goes(tmp_path, monkeypatch):
    # `mast sim-board` was killed (SIGKILL: no unregister) and its pty path is still there (a
    # --link, or a pty number another program has since): a board that no longer runs
    import os
    import subprocess
    import sys

    from mast_tools import simregistry

    monkeypatch.setenv("MAST_SIM_REGISTRY", str(tmp_path / "reg"))
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # (reaped: its pid names no process now)
    pty = tmp_path / "pts-3"
    pty.write_text("")
    path = simregistry.register({"pid": gone.pid, "device": str(pty)})
    assert os.path.exists(path)
    assert simregistry.running() == [] and simregistry.find(str(pty)) is None
    assert not os.path.exists(path)


def test_a_registration_that_fails_halfway_leaves_the_one_before_whole(tmp_path, monkeypatch):
    # the registry's folder full (ENOSPC) while a board writes its file: readers never see half
    # a file, and the board's earlier registration still finds it
    import errno
    import os

    from mast_tools import simregistry

    monkeypatch.setenv("MAST_SIM_REGISTRY", str(tmp_path / "reg"))
    pty = tmp_path / "pts-4"
    pty.write_text("")
    info = {"pid": os.getpid(), "device": str(pty), "board": "unix-sim"}
    assert simregistry.register(info)

    def dump_half(obj, f):
        text = json.dumps(obj)
        f.write(text[: len(text) // 2])
        f.flush()
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(simregistry.json, "dump", dump_half)
    assert simregistry.register(dict(info, board="esp32-c3")) is None  # (never raises)
    monkeypatch.undo()
    monkeypatch.setenv("MAST_SIM_REGISTRY", str(tmp_path / "reg"))
    assert simregistry.running() == [info]
    assert os.listdir(str(tmp_path / "reg")) == ["%d.json" % os.getpid()]  # no half file beside it


def test_a_registered_pid_that_is_now_another_users_process_is_not_listed(tmp_path, monkeypatch):
    # the board's pid reused by another user's process: signalling it is refused (EPERM); it
    # is not the sim board (this test runs as any user, so the refusal is made here)
    import os

    from mast_tools import simregistry

    monkeypatch.setenv("MAST_SIM_REGISTRY", str(tmp_path / "reg"))
    pty = tmp_path / "pts-5"
    pty.write_text("")
    path = simregistry.register({"pid": 4194000, "device": str(pty)})

    def kill(pid, sig):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(simregistry.os, "kill", kill)
    assert simregistry.running() == [] and not os.path.exists(path)


def test_usb_ids_are_four_hex_digits_and_a_known_chip_without_a_board_is_named_in_the_table(
        capsys, monkeypatch, tmp_path):
    # an FTDI adapter (vendor 0x0403) reads as lsusb writes it, 0403:6001; a chip no board of
    # boards/ carries (an ESP32-S3's own USB) shows what the chip is, not pyserial's description
    monkeypatch.setenv("MAST_SIM_REGISTRY", str(tmp_path))
    ports = [Port("/dev/ttyUSB1", 0x0403, 0x6001, "FTDI", "FT232R USB UART", "A50285BI"),
             Port("/dev/ttyACM1", 0x303A, 0x1001, "Espressif", "USB JTAG/serial debug unit", None,
                  description="USB JTAG/serial debug unit")]

    class Args:
        json = False
        all = False

    cmd_ports.do_ports(Args, comports=lambda: ports)
    assert capsys.readouterr().out.splitlines() == [
        "/dev/ttyACM1     303a:1001  Espressif USB JTAG/serial (ESP32-S3/C3 native USB)",
        "/dev/ttyUSB1     0403:6001  wt32-eth01"]
    Args.json = True
    cmd_ports.do_ports(Args, comports=lambda: ports)
    doc = json.loads(capsys.readouterr().out)
    assert [(p["vid"], p["pid"], p["usb"], p["likely"]) for p in doc] == [
        ("303a", "1001", "Espressif USB JTAG/serial (ESP32-S3/C3 native USB)", []),
        ("0403", "6001", "FTDI FT232R USB-UART", ["wt32-eth01"])]
