"""mastd's per-packet code between the TUN and the core, with a socket pair standing in for
the TUN (no root): which packets are written to the TUN, which are counted and dropped, and
how packets read from the TUN are sorted before the core sees them."""

import json
import os
import socket

import pytest

from mastd import agent as agent_mod, links, settings

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


def test_an_app_that_does_not_read_loses_datagrams_counted_and_keeps_its_connection(agent, tmp_path):
    # docs/MASTD.md: a datagram the app does not read in time is dropped and counted, never
    # waited for: a blocking send here would stop mastd's whole loop (every peer, the TUN)
    import threading

    from mastd.app import AppSocket

    a, host = agent
    conf = {"app_socket": str(tmp_path / "site.sock"), "app_mode": "0600",
            "_uid": os.getuid(), "_gid": os.getgid()}
    app = AppSocket("site", conf, a.rt, lambda data: False, a.count)
    app.open()
    a.apps["site"] = app
    client = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        client.connect(conf["app_socket"])
        app._on_accept(app.sock, 1)
        assert app.status()["connected"]
        n = 3000  # far more than the socket's queue holds

        def flood():
            for i in range(n):
                a._on_data("site", b"%06d" % i + b"." * 200, False, "wan", None)

        t = threading.Thread(target=flood)
        t.start()
        t.join(20)  # (a hang detector: the flood takes milliseconds when no send waits)
        stuck = t.is_alive()
        if stuck:
            client.close()  # (the blocked send fails, and the thread ends)
            t.join(20)
        assert not stuck, "mastd waited for an app that does not read"
        c = a.agent_counters()
        sent, dropped = c.get("app_tx", 0), c.get("app_tx_dropped", 0)
        assert sent > 0 and dropped > 0 and sent + dropped == n, c
        assert "app_tx_error" not in c
        client.setblocking(False)
        got = []
        for _ in range(n + 1):  # (bounded)
            try:
                got.append(client.recv(1000))
            except BlockingIOError:
                break
        assert got == [b"%06d" % i + b"." * 200 for i in range(sent)]  # whole, in order, none lost between
        # the app is still connected: once it reads again, the next datagram reaches it
        a._on_data("site", b"after", False, "wan", None)
        assert client.recv(1000) == b"after"
        assert app.status()["connected"] and a.agent_counters()["app_tx"] == sent + 1
    finally:
        client.close()
        app.close()


def test_a_wake_reads_at_most_64_packets_from_the_tun_and_the_next_wake_the_rest(agent):
    # so that a busy TUN cannot starve the uplink sockets, the control socket and the timers
    a, _ = agent
    tun, host = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)  # (queues 100 packets)
    try:
        for s in (tun, host):
            s.setblocking(False)
        a.tun_fd = tun.fileno()
        for i in range(100):
            host.send(ipv4("10.99.0.1", "8.8.%d.%d" % (i // 250, i % 250), 17, b"x"))
        a._on_tun(a.tun_fd, 1)
        assert a.agent_counters()["tun_no_route"] == 64
        a._on_tun(a.tun_fd, 1)
        assert a.agent_counters()["tun_no_route"] == 100
    finally:
        tun.close()
        host.close()


@pytest.mark.parametrize("restart", [False, True])  # True: our port changes too: every association restarts
def test_a_reload_routes_a_new_peers_prefix_to_it_and_a_removed_peers_nowhere(tmp_path, monkeypatch, restart):
    from mastd import tun as tun_mod

    from test_mastd_packet import recorded_ip

    ran = []
    monkeypatch.setattr(tun_mod, "ip", recorded_ip(ran))
    doc = {"name": "r1", "internal": "10.99.0.1/24",
           "peers": {"site": {"psk": PSK, "internal": "10.99.0.2", "allowed": ["192.168.50.0/24"]}},
           "uplinks": {"wan": {}}}
    cfg = tmp_path / "mast.json"
    cfg.write_text(json.dumps(doc))
    a = agent_mod.Agent(settings.load(str(cfg)), Log(), str(tmp_path / "c.sock"), config_path=str(cfg))
    tun, host = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        for s in (tun, host):
            s.setblocking(False)
        a.tun_fd, a.tun_mtu, a.tun_name, a._tun_prefixes = tun.fileno(), 1444, "mast0", a._all_prefixes()
        a._tun_routes = set(a._tun_prefixes)  # (as _open_tun leaves them)
        a.source = links.LinuxSource(a.conf.core["uplinks"])  # (no device wan here: no uplink)
        doc["peers"] = {"lab": {"psk": PSK, "internal": "10.99.0.3", "allowed": ["192.168.60.0/24", "fd00:60::/64"]}}
        if restart:
            doc["port"] = 6279
        cfg.write_text(json.dumps(doc))
        assert a.handle({"op": "reload"}) == {}
        assert sorted(" ".join(r) for r in ran if "route" in r) == [
            "-4 -j route show", "-4 route add 10.99.0.3/32 dev mast0", "-4 route add 192.168.60.0/24 dev mast0",
            "-6 -j route show", "-6 route add fd00:60::/64 dev mast0",
            "route del 10.99.0.2/32 dev mast0", "route del 192.168.50.0/24 dev mast0"]
        assert a._tun_routes == {"10.99.0.3/32", "192.168.60.0/24", "fd00:60::/64"}
        host.send(ipv4("10.99.0.1", "192.168.60.5", 17, b"to lab"))  # lab's now: no association yet
        host.send(ipv4("10.99.0.1", "192.168.50.5", 17, b"to site"))  # nobody's any more
        a._on_tun(a.tun_fd, 1)
        c = a.agent_counters()
        assert (c.get("tun_no_association"), c.get("tun_no_route")) == (1, 1)
        a._on_data("lab", ipv4("192.168.60.5", "10.99.0.1", 17, b"from lab"), True, "wan", None)
        a._on_data("site", ipv4("192.168.50.5", "10.99.0.1", 17, b"from site"), True, "wan", None)
        assert written(host) == [ipv4("192.168.60.5", "10.99.0.1", 17, b"from lab")]
    finally:
        a.rt.shutdown()
        tun.close()
        host.close()


def test_a_reload_where_nft_is_not_on_path_is_applied_and_masquerade_says_to_install_nftables(tmp_path, monkeypatch):
    # every reload with a TUN runs `nft delete table` (masquerade off too): where no nft is on
    # PATH (an OpenWrt without nftables; a user's PATH without /usr/sbin) FileNotFoundError came
    # out of the reload, and out of mastd's start with masquerade on
    from mastd import tun as tun_mod

    from test_mastd_packet import recorded_ip

    monkeypatch.setattr(tun_mod, "ip", recorded_ip([]))
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    errors = []

    class Said(Log):
        def error(self, msg):
            errors.append(msg)

    doc = {"name": "r1", "internal": "10.99.0.1/24", "uplinks": {"wan": {}},
           "peers": {"site": {"psk": PSK, "internal": "10.99.0.2", "allowed": ["192.168.50.0/24"]}}}
    cfg = tmp_path / "mast.json"
    cfg.write_text(json.dumps(doc))
    a = agent_mod.Agent(settings.load(str(cfg)), Said(), str(tmp_path / "c.sock"), config_path=str(cfg))
    tun, host = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        a.tun_fd, a.tun_mtu, a.tun_name, a._tun_prefixes = tun.fileno(), 1444, "mast0", a._all_prefixes()
        a._tun_routes = set(a._tun_prefixes)
        a.source = links.LinuxSource(a.conf.core["uplinks"])
        assert a.handle({"op": "reload"}) == {} and errors == []  # masquerade off: nothing to say
        doc["masquerade"] = True
        cfg.write_text(json.dumps(doc))
        assert a.handle({"op": "reload"}) == {}
        assert errors == ["masquerade: cannot run nft (No such file or directory): install nftables"]
    finally:
        a.rt.shutdown()
        tun.close()
        host.close()


def test_a_syn_read_from_the_tun_is_clamped_to_this_sides_mss_before_the_core_sends_it(agent):
    # the peer's hosts learn from it how large a segment this side's tunnel takes (an uplink
    # with a small MTU here: the peer's mastd clamps only to its own tunnel's MTU)
    a, host = agent
    a.tun_mtu = 1232
    handed = []
    a.ep.send_data = lambda pkt, now, peer, ip=False: handed.append((peer, ip, bytes(pkt))) or True
    host.send(tcp_syn(1460))  # 192.168.1.2 -> 192.168.50.2: the peer's prefix
    a._on_tun(a.tun_fd, 1)
    assert [(peer, ip) for peer, ip, _ in handed] == [("site", True)]
    assert mss_of(handed[0][2]) == 1232 - 40 and a.agent_counters()["tun_rx"] == 1


def test_a_packet_the_tun_refuses_is_counted_as_a_write_error_not_as_written(agent):
    a, host = agent
    host.close()  # (the TUN's other side gone: each write fails)
    a._on_data("site", ipv4("192.168.50.7", "10.99.0.1", 17, b"payload"), True, "wan", None)
    c = a.agent_counters()
    assert (c.get("tun_write_error"), c.get("tun_tx")) == (1, None)


def _routed_agent(tmp_path, monkeypatch, table, log):
    """An agent of r1 with peer site (192.168.50.0/24), its `ip` recorded against table (the
    main routing table `ip -j route show` answers): (agent, the ip commands run, its file)."""
    from mastd import tun as tun_mod
    from test_mastd_packet import recorded_ip

    ran = []
    monkeypatch.setattr(tun_mod, "ip", recorded_ip(ran, table))
    doc = {"name": "r1", "internal": "10.99.0.1/24",
           "peers": {"site": {"psk": PSK, "internal": "10.99.0.2", "allowed": ["192.168.50.0/24"]}},
           "uplinks": {"wan": {}}}
    cfg = tmp_path / "mast.json"
    cfg.write_text(json.dumps(doc))
    return agent_mod.Agent(settings.load(str(cfg)), log, str(tmp_path / "c.sock"), config_path=str(cfg)), ran, cfg


NOT_TAKEN_80 = ("route 10.80.0.0/24 of peer lab not taken: this host routes it already, through lan9, and "
                "mastd leaves that route alone: traffic to 10.80.0.0/24 does not enter mast0. To tunnel it, "
                "delete that route (ip route del 10.80.0.0/24 dev lan9), then mastctl reload; or take "
                "10.80.0.0/24 out of peer lab's allowed")


def test_a_route_another_device_holds_is_not_taken_and_peer_add_and_reload_say_so(tmp_path, monkeypatch):
    # `ip route replace` took the LAN's route to 10.80.0.0/24 for the tunnel, and deleted it
    # when the peer went: now mastd leaves it, says so (log, mastctl) and deletes only its own
    from test_mastd_agent import Log as Said

    table = [{"dst": "10.80.0.0/24", "dev": "lan9", "scope": "link"}]
    log = Said()
    a, ran, cfg = _routed_agent(tmp_path, monkeypatch, table, log)
    tun, host = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        a.tun_fd, a.tun_mtu, a.tun_name, a._tun_prefixes = tun.fileno(), 1444, "mast0", a._all_prefixes()
        a._tun_routes = set(a._tun_prefixes)  # (as _open_tun leaves them)
        a.source = links.LinuxSource(a.conf.core["uplinks"])
        lab = {"psk": PSK, "internal": "10.99.0.3", "allowed": ["10.80.0.0/24", "10.81.0.0/24"], "initiate": False}
        reply = a.handle({"op": "peer_add", "name": "lab", "peer": lab})
        assert reply == {"ok": False, "peer": "lab", "section": None, "error": "peer lab added, but " + NOT_TAKEN_80}
        assert "lab" in a.conf.core["peers"] and "lab" in json.loads(cfg.read_text())["peers"]  # added all the same
        assert ("error", NOT_TAKEN_80) in log.lines
        assert not [r for r in ran if "10.80.0.0/24" in r]  # neither replaced nor added
        assert ("-4", "route", "add", "10.81.0.0/24", "dev", "mast0") in ran
        assert a.status()["routes_not_taken"] == [{"route": "10.80.0.0/24", "peer": "lab", "held_by": ["lan9"]}]
        # a reload tries it again, and says it (mastctl exits 1); SIGHUP only logs it
        del ran[:]
        assert a.handle({"op": "reload"}) == {"ok": False, "error": "reloaded, but " + NOT_TAKEN_80}
        assert ("-4", "-j", "route", "show") in ran
        assert log.lines.count(("error", NOT_TAKEN_80)) == 1  # logged once, not at each retry
        # the peer removed: its routes go, the LAN's stays
        del ran[:]
        assert a.handle({"op": "peer_remove", "name": "lab"}) == {"peer": "lab"}
        assert sorted(" ".join(r) for r in ran if "del" in r) == [
            "route del 10.81.0.0/24 dev mast0", "route del 10.99.0.3/32 dev mast0"]
        assert a.not_taken == [] and a.handle({"op": "reload"}) == {}
        # once that route is gone, the prefix is the tunnel's
        del table[:]
        del ran[:]
        assert a.handle({"op": "peer_add", "name": "lab", "peer": lab}) == {"peer": "lab", "section": None}
        assert ("-4", "route", "add", "10.80.0.0/24", "dev", "mast0") in ran
        assert a.status()["routes_not_taken"] == []
    finally:
        a.rt.shutdown()
        tun.close()
        host.close()


def test_a_route_freed_is_taken_at_the_next_reload_even_with_no_route_change(tmp_path, monkeypatch):
    from mastd import tun as tun_mod

    table = [{"dst": "192.168.50.0/24", "dev": "lan9"}]
    a, ran, cfg = _routed_agent(tmp_path, monkeypatch, table, Log())
    try:
        a.tun_fd, a.tun_mtu, a.tun_name = 99, 1444, "mast0"
        a._routes_not_taken(tun_mod.configure("mast0", "10.99.0.1/24", 1444, a._all_prefixes(), a._tun_routes))
        assert [m["route"] for m in a.not_taken] == ["192.168.50.0/24"] and a._tun_routes == {"10.99.0.2/32"}
        a.source = links.LinuxSource(a.conf.core["uplinks"])
        del table[:]  # the user deleted the LAN's route, and reloads
        assert a.handle({"op": "reload"}) == {}
        assert ("-4", "route", "add", "192.168.50.0/24", "dev", "mast0") in ran
        assert a._tun_routes == {"10.99.0.2/32", "192.168.50.0/24"} and a.not_taken == []
    finally:
        a.tun_fd = None
        a.rt.shutdown()


def test_log_lines_stdout_would_not_take_are_in_the_agent_counters(agent):
    # (a full disk under `mastd > file`: the lines are lost, mastd runs on, and status says so)
    from mastd.log import Log as RealLog

    class Full:
        def write(self, text):
            raise OSError(28, "No space left on device")

        def flush(self):
            pass

    a, host = agent
    assert "log_lines_lost" not in a.agent_counters()
    a.log = RealLog(stream=Full())
    a._note("failover", old="wan", new="lte")
    a._note("failover", old="lte", new="wan")
    assert a.agent_counters()["log_lines_lost"] == 2
