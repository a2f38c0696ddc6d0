"""The whole board firmware as `mast flash` leaves it on a board - only the modules its definition
uses (mast_tools.flashplan.select_firmware_files), as .mpy - on the simulated board with a
board-sized heap, carrying the demo traffic while its console is used and an uplink fails and
comes back (issue 11).

The board (the MicroPython unix port, 64-bit) runs the example telemetry app at 50 datagrams a
second to a MAST peer (CPython, the same core and runtime) on 127.0.0.10. The console asks for
status, hello, a key, sets and commits a cost and applies it; then the eth uplink is held down
(the stream must move to another uplink) and released (the stream must come back to eth).

prepare() and demo() are what bench/footprint.py uses to find the smallest heap (its section of
docs/BENCHMARKS.md); the test here flashes a plain MicroPython board with `mast flash` itself and
runs the demo on it."""

import json
import os
import subprocess
import sys
import tempfile
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "host-tools"))

from boardcli import PSK, mast, romfs_of_lib  # noqa: E402
from test_sim_board_traffic import APP, Peer, wait, BOARD_ADDRS  # noqa: E402
from mast_tools import flashplan, mpycross, simboard  # noqa: E402
from mast_tools.firmware import BOARDS_DIR, FIRMWARE_DIR  # noqa: E402
from mast_tools.netutil import free_udp_port  # noqa: E402

HEAP = "192K"  # the test's heap: bench/footprint.py measures the smallest


def config(port):
    return {"name": "board1", "port": port,
            "peers": {"srv": {"psk": PSK, "addresses": ["127.0.0.10:%d" % port]}}}


def prepare(folder, port, fw_dir=FIRMWARE_DIR, board="unix-sim", select=True, mpy_cross=None):
    """The board's filesystem in folder as `mast flash --board BOARD --config` leaves it: the
    modules select_firmware_files() picks for the definition (select False: every module, as
    flash sent before it chose), compiled with mpy-cross as flash compiles them (mpycross.FLAGS);
    the root files, board.json; then the demo app (app.py) and the configuration (mast.json,
    the peer on 127.0.0.10:port)."""
    with open(os.path.join(BOARDS_DIR, board + ".json"), "rb") as f:
        bd_bytes = f.read()
    bd = json.loads(bd_bytes.decode())
    cfg = config(port)
    cmd = mpy_cross or simboard.find_mpy_cross()
    for dest, src, compiled in flashplan.select_firmware_files(fw_dir, bd if select else None, cfg):
        out = os.path.join(folder, dest)
        os.makedirs(os.path.dirname(out) or folder, exist_ok=True)
        if compiled:
            rel = os.path.relpath(src, fw_dir).replace(os.sep, "/")
            subprocess.run(cmd + list(mpycross.FLAGS) + ["-s", rel, "-o", out, src], check=True, timeout=60,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        elif dest != "app.py":
            with open(src, "rb") as fi, open(out, "wb") as fo:
                fo.write(fi.read())
    with open(os.path.join(folder, "board.json"), "wb") as f:
        f.write(bd_bytes)
    with open(os.path.join(folder, "app.py"), "w") as f:
        f.write(APP)
    with open(os.path.join(folder, "mast.json"), "w") as f:
        json.dump(cfg, f)
    return cfg


def demo(con, peer, t0):
    """The demo on a running board (con: its console): returns what was measured;
    AssertionError, TimeoutError or simboard.ConsoleError when it fails."""
    wait(lambda: peer.seqs, 30, "the first telemetry datagram (the association up)")
    t_assoc = time.monotonic() - t0
    wait(lambda: len(peer.seqs) >= 100, 20, "100 telemetry datagrams")
    mem_idle = con.call("status")["mem"]
    # the console, under traffic
    assert con.call("hello")["board"] == "unix-sim"
    assert con.call("get", key="peers.srv.psk") == "<redacted>"
    con.call("set", key="uplinks.cell.cost", value=20)
    con.call("commit")
    assert con.call("apply")["associations"] == "kept"
    # an uplink dies: the stream moves to the next one
    n = len(peer.sources)
    con.call("uplink", name="eth", state="down")
    wait(lambda: [a for a in peer.sources[n:] if a != "127.0.0.2"], 10, "data from another uplink than eth")
    seq_cut = max(peer.seqs)
    wait(lambda: max(peer.seqs) > seq_cut + 100, 10, "100 more datagrams after the cut")
    con.call("uplink", name="eth", state="up")
    n = len(peer.sources)
    wait(lambda: "127.0.0.2" in peer.sources[n:], 15, "data back on eth (127.0.0.2)")
    st = con.call("status")
    assert st["boot"]["unstable_boots"] == 0, st["boot"]
    crashes = [x for x in con.logs if x.get("log") == "crash"]
    assert not crashes, crashes
    return {"association_s": round(t_assoc, 2),
            "received": len(peer.seqs), "sent": st["app"]["app"]["sent"],
            "lost": (max(peer.seqs) + 1) - len(peer.seqs), "mem_idle": mem_idle,
            "mem_end": st["mem"], "seconds": round(time.monotonic() - t0, 1)}


def run(folder, heap, port, *args):
    """The board in folder (prepare()) on a simulated board with -X heapsize=heap (and args,
    more of mast sim-board's), the demo against a peer on port. The demo's figures;
    AssertionError with the board's last words if it fails."""
    peer = Peer(port)
    t0 = time.monotonic()
    con = None
    try:
        with simboard.SimBoardProcess(folder, "--heapsize", heap, *args) as sb:
            con = simboard.BoardConsole(sb.device)
            try:
                r = demo(con, peer, t0)
                r["heap"] = heap
                return r
            except (AssertionError, TimeoutError, simboard.ConsoleError) as e:
                con.pump(0.3)
                raise AssertionError("%s%s (heap %s): logs %r events %r other %r" % (
                    "%s: " % e.op if getattr(e, "op", None) else "", e, heap, con.logs[-4:],
                    con.events[-8:], con.other[-6:]))
            finally:
                con.close()
    finally:
        peer.close()


def ok(r):
    """The demo's bar: at least 300 datagrams delivered, at most 30 lost (the failover gap at
    50/s, and the datagrams in flight)."""
    return r["received"] >= 300 and r["lost"] <= 30


def test_a_board_flashed_by_mast_flash_carries_the_demo_traffic(micropython, tmp_path):
    folder = str(tmp_path / "board")
    os.makedirs(folder)
    port = free_udp_port(BOARD_ADDRS + ("127.0.0.10",))
    with open(os.path.join(folder, "app.py"), "w") as f:
        f.write(APP)  # the user's app: flash keeps it
    cfg_file = str(tmp_path / "mast.json")
    with open(cfg_file, "w") as f:
        json.dump(config(port), f)
    peer = Peer(port)
    try:
        with simboard.SimBoardProcess(folder, "--bare", "--heapsize", HEAP) as sb:
            r = mast("flash", "--port", sb.device, "--board", "unix-sim", "--config", cfg_file, "--json")
            assert r.returncode == 0, r.stderr
            assert "not needed there: atchat, endpoint_main, exclusive, install" in r.stderr
            lib = set(x for x in r.doc["verified"] if x.startswith("lib/"))
            assert "lib/board/main.mpy" in lib and "lib/runtime/driver.mpy" in lib
            for m in ("board/up_ppp", "board/atchat", "board/up_wlan", "board/up_lan",
                      "board/exclusive", "runtime/endpoint_main", "runtime/rendezvous"):
                assert "lib/%s.mpy" % m not in lib
                assert not os.path.exists(os.path.join(folder, "lib", m + ".mpy"))
            con = simboard.BoardConsole(sb.device)
            try:
                res = demo(con, peer, time.monotonic())
            finally:
                con.close()
    finally:
        peer.close()
    assert ok(res), res


def test_the_firmware_from_a_romfs_image_carries_the_demo_traffic_in_128k(micropython, tmp_path):
    """docs/HARDWARE.md's remedy where the .mpy firmware does not fit: the same modules in a
    ROMFS image run from flash. The simulated board mounts the image at /rom (its size added
    to the heap, as a board keeps it in flash) and has no /lib: 128K is left for the rest."""
    folder = str(tmp_path / "board")
    os.makedirs(folder)
    port = free_udp_port(BOARD_ADDRS + ("127.0.0.10",))
    prepare(folder, port)
    image = str(tmp_path / "fw.romfs")
    romfs_of_lib(folder, image)
    r = run(folder, "128K", port, "--romfs", image)
    assert ok(r), r
    assert not os.path.exists(os.path.join(folder, "lib"))


if __name__ == "__main__":  # the demo at each heap given: python tests/host/test_board_footprint.py 160K 176K
    for h in sys.argv[1:] or ["176K"]:
        d = tempfile.mkdtemp(prefix="mast-footprint-")
        p = free_udp_port(BOARD_ADDRS + ("127.0.0.10",))
        prepare(d, p)
        try:
            print(h, run(d, h, p))
        except AssertionError as e:
            print(h, "FAILED", str(e)[:600])
