"""Which modules `mast flash` sends to a board (mast_tools.flashplan.select_firmware_files):
only those its definition (boards/*.json) and configuration use. A board without a modem gets
no PPP or AT code, one without Ethernet no LAN driver, none the presence client, the mip
installer or the hosts' endpoint process; exclusive routing goes only where it is needed.

Each definition in boards/ is then booted on CPython from a folder that holds nothing but the
modules selected for it (as .py, the fakes of tests/fakes for `machine` and `network`): its
uplinks come up, and every console op answers; a module left out that the board needs shows as
an ImportError (checked with up_ppp taken away from a board with a modem). The simulated board
flashed this way carries the demo traffic: tests/host/test_board_footprint.py."""

import json
import os
import shutil
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "host-tools"))

from mast_tools import flashplan  # noqa: E402
from mast_tools.firmware import BOARDS_DIR, FIRMWARE_DIR  # noqa: E402

FAKES = os.path.join(ROOT, "tests", "fakes")
NEVER = ("board/install", "runtime/endpoint_main", "runtime/runconfig", "runtime/jsonrule",
         "runtime/rendezvous")

# definition -> the conditional modules it gets (everything else of mast/, runtime/, board/
# goes to every board). Written out, not computed.
EXPECTED = {
    "unix-sim": {"runtime/udpwrap"},  # its sim uplinks go through a relay (mast linkemu)
    "esp32-devkitc": {"board/up_wlan"},
    "rpi-pico-w": {"board/up_wlan"},  # exclusive routing, but only one uplink: nothing to rotate
    "olimex-esp32-poe": {"board/up_wlan", "board/up_lan"},
    "wt32-eth01": {"board/up_wlan", "board/up_lan"},
    "esp32-sim7600": {"board/up_wlan", "board/up_ppp", "board/atchat"},
    "lilygo-t-a7670": {"board/up_wlan", "board/up_ppp", "board/atchat"},
}


def definition(name):
    with open(os.path.join(BOARDS_DIR, name + ".json")) as f:
        return json.load(f)


def selected(bd, cfg=None):
    """{module path without .py} of what flash sends for bd."""
    out = set()
    for dest, src, compiled in flashplan.select_firmware_files(FIRMWARE_DIR, bd, cfg):
        if dest.startswith("lib/"):
            out.add(dest[4:-4])
    return out


def all_modules():
    return selected(None)


def test_every_board_definition_is_in_the_table():
    names = sorted(f[:-5] for f in os.listdir(BOARDS_DIR) if f.endswith(".json"))
    assert names == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_flash_sends_each_board_only_the_modules_its_definition_uses(name):
    got = selected(definition(name))
    conditional = set(flashplan.CONDITIONAL)
    assert got & conditional == EXPECTED[name]
    assert got | (conditional - EXPECTED[name]) == all_modules()  # the rest goes everywhere
    assert not got & set(NEVER)
    assert not [m for m in got if m.startswith("presence/")]  # no presence client on a board
    for core in ("mast/endpoint", "mast/config", "runtime/driver", "board/main", "board/console", "board/request",
                 "board/startup", "board/cfgops", "board/consoleops", "board/applycfg"):
        assert core in got


def test_without_a_definition_every_module_goes():
    got = all_modules()
    assert set(flashplan.CONDITIONAL) <= got and "board/main" in got


def test_the_configuration_counts_where_it_adds_uplinks():
    # a unix board with exclusive routing and one uplink of its own: the extra sim uplink of
    # its configuration makes two, so the rotation module goes too
    bd = dict(definition("unix-sim"), routing="exclusive")
    bd["uplinks"] = {"eth": bd["uplinks"]["eth"]}
    assert "board/exclusive" not in selected(bd)
    cfg = {"name": "b1", "uplinks": {"lab": {"kind": "sim", "address": "127.0.0.9"}}}
    assert "board/exclusive" in selected(bd, cfg)
    assert "board/exclusive" in selected(dict(definition("rpi-pico-w"),
                                              uplinks={"wifi": {"kind": "wlan", "priority": 20, "cost": 0},
                                                       "wifi2": {"kind": "wlan", "priority": 30, "cost": 0}}))


# ---- a board booted from its selection alone -------------------------------------------------------

BOOT = r'''
import json, sys
sys.path[:0] = [sys.argv[1], sys.argv[2]]
from fake_machine import FakeMachine, FakeModem
from fake_network import FakeNetwork
from fake_files import FakeFiles
from board.hw import Hardware
from board.main import Board

bd = json.loads(sys.argv[3])
port = int(sys.argv[4])
cfg = {"name": "b1", "port": port, "keying": "open", "uplinks": {}}
for name, u in bd["uplinks"].items():
    if u["kind"] == "wlan":
        cfg["uplinks"][name] = {"ssid": "home", "password": "correct horse"}
    elif u["kind"] == "ppp":
        cfg["uplinks"][name] = {"apn": "internet"}
m = FakeMachine()
net = FakeNetwork()
net.addrs = {"wlan": "127.0.0.21", "lan": "127.0.0.22", "ppp": "127.0.0.23"}
for u in bd["uplinks"].values():
    if u["kind"] == "ppp":
        modem = FakeModem()
        modem.attach(m, pwrkey=u["modem"]["pwrkey"], active=u["modem"]["pwrkey_active"])
if bd["port"] != "unix":
    bd["port"] = "esp32" if bd["routing"] == "source" else "rp2"
files = FakeFiles({"board.json": json.dumps(bd).encode(), "mast.json": json.dumps(cfg).encode()})
out = []
t = [0]
b = Board(hw=Hardware(machine=m, network=net), files=files, write=out.append,
          clock=lambda: t[0], platform=bd["port"], random=lambda n: bytes(range(n)), app=None)
b.boot()
while t[0] < 120000 and not all(x.state == "up" for x in b.managers.values()
                                 if bd["routing"] == "source" or not x.standby):
    b.step(t[0])
    t[0] += 50
ups = sorted(n for n, x in b.managers.items() if x.state == "up")
replies = []
for i, req in enumerate([{"op": "status"}, {"op": "get", "key": "name"},
                         {"op": "set", "key": "port", "value": port + 1}, {"op": "validate"},
                         {"op": "commit"}, {"op": "apply"}, {"op": "logs"}, {"op": "inventory"},
                         {"op": "uplink", "name": sorted(bd["uplinks"])[0], "state": "down"},
                         {"op": "uplink", "name": sorted(bd["uplinks"])[0], "state": "up"}]):
    req["id"] = i
    n = len(out)
    b.feed((json.dumps(req) + "\n").encode())
    replies += [json.loads(x) for x in out[n:] if '"ok"' in x]
b.rt.shutdown()
print(json.dumps({"ups": ups, "replies": replies, "logs": [x for x in out if '"log"' in x],
                  "loaded": sorted(k for k in sys.modules if k.split(".")[0] in ("board", "mast", "runtime"))}))
'''


def boot_from(tmp_path, bd, modules, port):
    """Boot bd on CPython from a folder holding only `modules` (.py); the script's report."""
    lib = str(tmp_path / "lib")
    for m in modules:
        os.makedirs(os.path.dirname(os.path.join(lib, m)), exist_ok=True)
        shutil.copyfile(os.path.join(FIRMWARE_DIR, m + ".py"), os.path.join(lib, m + ".py"))
    for pkg in ("board", "mast", "runtime"):  # packages' __init__ where the source has one
        init = os.path.join(FIRMWARE_DIR, pkg, "__init__.py")
        if os.path.exists(init):
            shutil.copyfile(init, os.path.join(lib, pkg, "__init__.py"))
    script = str(tmp_path / "boot.py")
    with open(script, "w") as f:
        f.write(BOOT)
    r = subprocess.run([sys.executable, "-I", script, lib, FAKES, json.dumps(bd), str(port)],
                       capture_output=True, text=True, timeout=120, cwd=str(tmp_path))
    assert r.returncode == 0 or "Error" in r.stderr, r.stderr
    return r


@pytest.mark.parametrize("name", sorted(n for n in EXPECTED if n != "unix-sim"))
def test_a_board_boots_and_answers_every_op_from_only_the_modules_flash_sends_it(tmp_path, name):
    from mast_tools.netutil import free_udp_port

    bd = definition(name)
    modules = selected(bd)
    port = free_udp_port(("127.0.0.21", "127.0.0.22", "127.0.0.23"))
    r = boot_from(tmp_path, bd, modules, port)
    assert r.returncode == 0, r.stderr[-2000:]
    rep = json.loads(r.stdout.strip().splitlines()[-1])
    assert rep["ups"], rep  # its uplinks came up through their drivers
    assert [x for x in rep["replies"] if not x["ok"]] == [], rep["replies"]
    assert len(rep["replies"]) == 10
    assert not [x for x in rep["logs"] if "Error" in x], rep["logs"]
    kinds = set(u["kind"] for u in bd["uplinks"].values())
    if "ppp" in kinds:
        assert "board.up_ppp" in rep["loaded"] and "board.atchat" in rep["loaded"]
    assert not [m for m in rep["loaded"] if m.replace(".", "/") not in modules | {"board", "mast", "runtime"}]


def test_a_module_left_out_that_the_board_needs_shows_at_boot(tmp_path):
    from mast_tools.netutil import free_udp_port

    bd = definition("esp32-sim7600")
    r = boot_from(tmp_path, bd, selected(bd) - {"board/up_ppp"},
                  free_udp_port(("127.0.0.21", "127.0.0.22", "127.0.0.23")))
    assert r.returncode != 0 and "up_ppp" in r.stderr and "ModuleNotFoundError" in r.stderr
