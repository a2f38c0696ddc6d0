"""mastd's per-packet code between the TUN and the core, with a socket pair standing in for
the TUN (no root): which packets are written to the TUN, which are counted and dropped, and
how packets read from the TUN are sorted before the core sees them."""

import json
import os
import socket

import pytest

from mastd import agent as agent_mod, settings

from test_mastd_packet import ipv4, tcp_syn, mss_of

PSK = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="


class Log:
    def info(self, msg):
        pass

    warn = error = info


class Event:
    def __init__(self, peer, payload, ip=True):
        self.peer, self.payload, self.ip, self.uplink, self.src = peer, payload, ip, "wan", ("192.0.2.1", 6278)


@pytest.fixture
def agent(tmp_path):
    doc = {"name": "r1", "internal": "10.99.0.1/24",
           "peers": {"site": {"psk": PSK, "internal": "10.99.0.2", "allowed": ["192.168.50.0/24"]}},
           "uplinks": {"wan": {}}}
    a = agent_mod.Agent(settings.from_json_text(json.dumps(doc)), Log(), str(tmp_path / "c.sock"))
    tun, host = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    for s in (tun, host):
        s.setblocking(False)
    a.tun_fd, a.tun_mtu = tun.fileno(), 1444
    yield a, host
    tun.close()
    host.close()


def written(host):
    out = []
    while True:
        try:
            out.append(host.recv(65535))
        except BlockingIOError:
            return out


def test_a_peers_packets_reach_the_tun_only_from_its_own_prefixes(agent):
    a, host = agent
    good = ipv4("192.168.50.7", "10.99.0.1", 17, b"payload")
    a._on_data("site", memoryview(good), True, "wan", ("192.0.2.1", 6278))  # the core's memoryview
    a._deliver([Event("site", good)])  # a runtime without on_data: events from recv()
    a._on_data("site", ipv4("192.168.51.7", "10.99.0.1", 17, b"x"), True, "wan", None)  # not its prefix
    a._on_data("site", b"\x45garbage", True, "wan", None)  # not an IP packet
    assert written(host) == [good, good]
    c = a.agent_counters()
    assert (c["tun_tx"], c["rx_ip_bad_source"]) == (2, 2)


def test_a_syn_from_a_peer_is_clamped_to_the_tunnels_mss_on_its_way_to_the_tun(agent):
    a, host = agent
    syn = bytearray(tcp_syn(1460))
    syn[12:16] = bytes([192, 168, 50, 2])  # from the peer's prefix (the checksum is not checked here)
    a._on_data("site", memoryview(bytes(syn)), True, "wan", None)
    assert mss_of(written(host)[0]) == 1444 - 40


def test_a_datagram_for_a_peer_without_an_app_is_counted(agent):
    a, host = agent
    a._on_data("site", b"telemetry", False, "wan", None)
    assert written(host) == [] and a.agent_counters()["rx_data_no_app"] == 1


def test_packets_read_from_the_tun_are_sorted_by_destination_before_the_core(agent):
    a, host = agent
    for pkt in (ipv4("10.99.0.1", "192.168.50.9", 17, b"a"),  # the peer's prefix: no association yet
                ipv4("10.99.0.1", "10.99.0.2", 17, b"b"),  # the peer's internal address: the same
                ipv4("10.99.0.1", "8.8.8.8", 17, b"c"),  # no peer's prefix
                b"\x60short"):  # not an IP packet
        host.send(pkt)
    a._on_tun(a.tun_fd, 1)
    c = a.agent_counters()
    assert (c["tun_no_association"], c["tun_no_route"], c["tun_not_ip"]) == (2, 1, 1)
    assert "tun_rx" not in c
    with pytest.raises(BlockingIOError):  # all four were read in one wake
        os.read(a.tun_fd, 65535)


@pytest.mark.parametrize("change", [{"internal": "10.98.0.1/24"}, {"tun": "mast9"}])
def test_a_reload_that_changes_internal_or_tun_is_refused_and_the_running_config_stays(tmp_path, change):
    doc = {"name": "r1", "internal": "10.99.0.1/24",
           "peers": {"site": {"psk": PSK, "internal": "10.99.0.2", "allowed": ["192.168.50.0/24"]}},
           "uplinks": {"wan": {}}}
    cfg = tmp_path / "mast.json"
    cfg.write_text(json.dumps(doc))
    running = settings.from_json_text(json.dumps(doc))
    a = agent_mod.Agent(running, Log(), str(tmp_path / "c.sock"), config_path=str(cfg))
    cfg.write_text(json.dumps(dict(doc, **change)))
    assert a.handle({"op": "reload"}) == {
        "ok": False, "error": "reload refused: internal and tun change only with a restart of mastd"}
    assert a.conf is running
    assert (a.conf.agent["internal"], a.conf.agent["tun"]) == ("10.99.0.1/24", "mast0")
