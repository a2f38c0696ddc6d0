"""A simulated board whose uplinks go through the link emulator (`mast linkemu`): a sim uplink
with "via" (the relay's inside address) and "public" (its outside one) in board.json, as the
demo's board uses them. The peer sees the relay's outside addresses; renumbering one from the
console moves the association to the new address (SET)."""

import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "host-tools"))
sys.path.insert(0, HERE)

from mast_tools import simboard  # noqa: E402
from mast_tools.linkemu import Emulator, LinkConfig  # noqa: E402
from test_sim_board_traffic import Peer, PSK, APP, wait  # noqa: E402
from mast_tools.netutil import free_udp_port  # noqa: E402


def test_sim_uplinks_through_the_link_emulator_and_a_renumbering(micropython, tmp_path):
    # the board's port on its addresses and the relays' outside ones; the peer's is the next
    hosts = ("127.0.0.2", "127.0.0.3", "127.0.0.5", "127.0.0.6", "127.0.0.7", "127.0.0.10")
    for _ in range(50):  # a port free on all of them, with the next one free too
        PORT = free_udp_port(hosts)
        if PORT < 65535 and _free(hosts, PORT + 1):
            break
    else:
        raise AssertionError("no pair of free UDP ports")
    folder = str(tmp_path / "board")
    simboard.fill(folder, "unix-sim")
    emu = Emulator({"eth": LinkConfig("127.0.0.5:%d" % PORT, delay_ms=2),
                    "wifi": LinkConfig("127.0.0.6:%d" % PORT, delay_ms=5)}, seed=1)
    emu.start()
    peer = Peer(PORT + 1)
    try:
        bd = json.load(open(os.path.join(ROOT, "boards", "unix-sim.json")))
        for name, local in (("eth", "127.0.0.2"), ("wifi", "127.0.0.3")):
            inside = emu.inside_addr(name)
            bd["uplinks"][name].update({"address": local, "via": "%s:%d" % inside,
                                        "public": "%s:%d" % emu.outside_addr(name)})
        del bd["uplinks"]["cell"]
        with open(os.path.join(folder, "board.json"), "w") as f:
            json.dump(bd, f)
        with open(os.path.join(folder, "app.py"), "w") as f:
            f.write(APP)
        with open(os.path.join(folder, "mast.json"), "w") as f:
            json.dump({"name": "board1", "port": PORT, "peers": {"srv": {
                "psk": PSK, "addresses": ["127.0.0.10:%d" % (PORT + 1)]}}}, f)
        with simboard.SimBoardProcess(folder) as sb:
            con = simboard.BoardConsole(sb.device)
            try:
                wait(lambda: len(peer.seqs) >= 50, 20, "telemetry through the relay")
                assert set(peer.sources) <= {"127.0.0.5", "127.0.0.6"}, set(peer.sources)
                st = con.call("status")
                assert st["uplinks"]["eth"]["mast"]["socket"]["via"] == "%s:%d" % emu.inside_addr("eth")
                # the relay's outside address changes: the board is told, the peer follows
                emu.set("eth", address="127.0.0.7:%d" % PORT)
                con.call("uplink", name="eth", addr="127.0.0.7:%d" % PORT)
                n = len(peer.sources)
                wait(lambda: "127.0.0.7" in peer.sources[n:], 10, "data from the new address")
                adds = [e for e in peer.events if e["event"] == "addresses_changed"]
                assert "127.0.0.7:%d" % PORT in adds[-1]["addresses"], adds[-1]
            finally:
                con.close()
    finally:
        peer.close()
        emu.stop()


def _free(hosts, port):
    from mast_tools.netutil import udp_in_use

    return not any(udp_in_use(h, port) for h in hosts)
