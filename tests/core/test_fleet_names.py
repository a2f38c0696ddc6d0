# Fleet names off the wire (docs/CONFIG.md "A fleet on one server"): a module of its own, as
# test_fleet.py is at the edge of the 128K heap of the MicroPython runs.

from simnet import Net
from mast import wire
from mast.crypto import Mac, hkdf

SRV = ("10.9.0.1", 6278)


def test_with_open_keying_a_fleet_name_that_no_configuration_could_hold_is_refused():
    # a fleet member's name comes off the wire: only the characters of a configured peer's name
    # (A-Za-z0-9.-), or anyone could put spaces, newlines and terminal escapes into the server's
    # status and mastctl's listing under a name of their choosing
    net = Net()
    net.node("srv", {"name": "srv", "keying": "open", "fleet_domain": "boards.example", "peers": {}})
    net.uplink("srv", "wan", SRV)
    srv = net.nodes["srv"].ep
    mac = Mac(hkdf(b"", b"", b"mast1 init", 32))  # open keying: the INIT key of every name
    names = ("b-1.boards.example", "b 1.boards.example", "b\n1.boards.example",
             "b\x1b[2J.boards.example", "b_1.boards.example", "b\xe9.boards.example")
    for i, name in enumerate(names):
        body = wire.enc_init(i + 1, bytes(16), 7, wire.KEYING_OPEN, name, [(("10.1.0.2", 6278), 10, 0)])
        srv.receive("wan", ("10.1.0.2", 6278), wire.seal(mac, wire.INIT, 0, 0, wire.pad_init(body)), net.now)
    assert srv.counters.get("accepted") == 1 and srv.counters.get("unknown_peer") == 5, srv.counters
