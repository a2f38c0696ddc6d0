"""The link emulator, in process, on loopback (127.0.0.x) only. Every wait is bounded."""

import os
import socket
import sys
import threading
import time

import pytest

try:
    from mast_tools import linkemu
except ImportError:  # not pip-installed: use the checkout
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "host-tools"))
    from mast_tools import linkemu

from runtime import udpwrap  # on sys.path via mast_tools.linkemu

Emulator, LinkConfig = linkemu.Emulator, linkemu.LinkConfig
UPLINK_HOST, PEER_HOST = "127.0.0.1", "127.0.0.20"


def udp(host):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((host, 0))
    return sock


def recv(sock, timeout=2.0):
    sock.settimeout(timeout)
    return sock.recvfrom(65535)


def arrivals(sock, within):
    """Every datagram that arrives until `within` seconds pass with nothing new."""
    got = []
    sock.settimeout(within)
    for _ in range(1000):
        try:
            got.append(sock.recvfrom(65535)[0])
        except socket.timeout:
            break
    return got


def wait_for(predicate, timeout=2.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


@pytest.fixture
def ends():
    uplink, peer = udp(UPLINK_HOST), udp(PEER_HOST)
    yield uplink, peer
    uplink.close()
    peer.close()


def send_up(emu, uplink, peer, data, link="eth"):
    host, port = peer.getsockname()
    uplink.sendto(udpwrap.wrap(host, port, data), emu.inside_addr(link))


def exchange(emu, uplink, peer, link="eth"):
    """One datagram up and its reply down; returns the source address the peer saw."""
    send_up(emu, uplink, peer, b"ping", link)
    data, seen = recv(peer)
    assert data == b"ping"
    peer.sendto(b"pong", seen)
    host, port, payload = udpwrap.unwrap(recv(uplink)[0])
    assert ((host, port), bytes(payload)) == (peer.getsockname(), b"pong")
    return seen


def test_datagram_goes_through_with_the_real_source_seen_on_both_sides(ends):
    uplink, peer = ends
    with Emulator({"eth": LinkConfig("127.0.0.2:0")}) as emu:
        send_up(emu, uplink, peer, b"hello")
        data, seen = recv(peer)
        assert data == b"hello"
        assert seen == emu.outside_addr("eth") and seen[0] == "127.0.0.2"
        peer.sendto(b"world", seen)
        data, relay = recv(uplink)
        assert relay == emu.inside_addr("eth")
        host, port, payload = udpwrap.unwrap(data)
        assert (host, port, bytes(payload)) == (PEER_HOST, peer.getsockname()[1], b"world")
        c = emu.counters()["eth"]
    assert (c["up"]["packets_in"], c["up"]["packets_out"], c["up"]["bytes_out"]) == (1, 1, 5)
    assert (c["down"]["packets_in"], c["down"]["packets_out"], c["down"]["bytes_out"]) == (1, 1, 5)


def test_delay_holds_each_direction_at_least_its_configured_time(ends):
    uplink, peer = ends
    with Emulator({"eth": LinkConfig("127.0.0.2:0", up_delay_ms=150, down_delay_ms=50)}) as emu:
        t0 = time.monotonic()
        send_up(emu, uplink, peer, b"x")
        _, seen = recv(peer)
        t1 = time.monotonic()
        peer.sendto(b"y", seen)
        recv(uplink)
        t2 = time.monotonic()
    assert 0.150 <= t1 - t0 < 1.0
    assert 0.050 <= t2 - t1 < 0.140


def test_jitter_spreads_delays_around_the_delay(ends):
    uplink, peer = ends
    with Emulator({"eth": LinkConfig("127.0.0.2:0", delay_ms=50, jitter_ms=20)}, seed=3) as emu:
        sent = time.monotonic()
        for i in range(20):
            send_up(emu, uplink, peer, b"%d" % i)
        delays = []
        for _ in range(20):
            recv(peer)
            delays.append(time.monotonic() - sent)
    assert min(delays) >= 0.030 and max(delays) < 1.0
    assert max(delays) - min(delays) >= 0.010


def test_cut_drops_both_ways_and_counts_while_sockets_stay_up(ends):
    uplink, peer = ends
    with Emulator({"eth": LinkConfig("127.0.0.2:0")}) as emu:
        seen = exchange(emu, uplink, peer)
        emu.set("eth", cut=True)
        for _ in range(3):
            send_up(emu, uplink, peer, b"lost up")
            peer.sendto(b"lost down", seen)
        assert arrivals(peer, 0.3) == [] and arrivals(uplink, 0.05) == []
        dropped = emu.counters()["eth"]
        assert dropped["up"]["dropped"]["cut"] == 3 and dropped["down"]["dropped"]["cut"] == 3
        emu.set("eth", cut=False)
        assert exchange(emu, uplink, peer) == seen


def test_cut_also_drops_packets_already_in_flight(ends):
    uplink, peer = ends
    with Emulator({"eth": LinkConfig("127.0.0.2:0", delay_ms=200)}) as emu:
        send_up(emu, uplink, peer, b"in flight")
        assert wait_for(lambda: emu.counters()["eth"]["up"]["packets_in"] == 1)
        emu.set("eth", cut=True)
        assert arrivals(peer, 0.4) == []
        assert emu.counters()["eth"]["up"]["dropped"]["cut"] == 1


def test_loss_one_drops_everything_and_loss_zero_nothing(ends):
    uplink, peer = ends
    with Emulator({"eth": LinkConfig("127.0.0.2:0", loss=1.0)}) as emu:
        for i in range(20):
            send_up(emu, uplink, peer, b"%d" % i)
        assert arrivals(peer, 0.3) == []
        assert emu.counters()["eth"]["up"]["dropped"]["loss"] == 20
        emu.set("eth", loss=0)
        for i in range(20):
            send_up(emu, uplink, peer, b"%d" % i)
        assert sorted(arrivals(peer, 0.5)) == sorted(b"%d" % i for i in range(20))
        assert emu.counters()["eth"]["up"]["dropped"]["loss"] == 20


def test_a_seed_repeats_the_same_losses(ends):
    uplink, peer = ends
    runs = []
    for _ in range(2):
        with Emulator({"eth": LinkConfig("127.0.0.2:0", loss=0.5)}, seed=7) as emu:
            for i in range(40):
                send_up(emu, uplink, peer, b"%d" % i)
            runs.append(sorted(arrivals(peer, 0.3)))
    assert runs[0] == runs[1]
    assert 0 < len(runs[0]) < 40


def test_rate_limit_bounds_throughput(ends):
    uplink, peer = ends
    # 30 datagrams of 1000 bytes at 400 kbit/s: 0.6 s on the wire.
    with Emulator({"eth": LinkConfig("127.0.0.2:0", rate_kbit=400, queue=100)}) as emu:
        t0 = time.monotonic()
        for _ in range(30):
            send_up(emu, uplink, peer, bytes(1000))
        for _ in range(30):
            recv(peer, timeout=3.0)
        elapsed = time.monotonic() - t0
    assert 0.45 <= elapsed < 5.0


def test_rate_limit_drops_what_overflows_its_queue(ends):
    uplink, peer = ends
    # 80 kbit/s: 0.1 s per 1000-byte datagram, and room for 5 of them.
    with Emulator({"eth": LinkConfig("127.0.0.2:0", rate_kbit=80, queue=5)}) as emu:
        for _ in range(30):
            send_up(emu, uplink, peer, bytes(1000))
        assert wait_for(lambda: emu.counters()["eth"]["up"]["packets_in"] == 30)
        got = arrivals(peer, 0.5)
        c = emu.counters()["eth"]["up"]
    assert c["dropped"]["queue"] >= 20
    assert len(got) == c["packets_out"] == 30 - c["dropped"]["queue"]


def test_renumbering_changes_the_source_the_far_side_sees(ends):
    uplink, peer = ends
    with Emulator({"eth": LinkConfig("127.0.0.2:0")}) as emu:
        assert exchange(emu, uplink, peer)[0] == "127.0.0.2"
        emu.set("eth", address="127.0.0.5:0")
        seen = exchange(emu, uplink, peer)
        assert seen[0] == "127.0.0.5" and seen == emu.outside_addr("eth")


def test_links_are_independent(ends):
    uplink, peer = ends
    links = {"eth": LinkConfig("127.0.0.2:0"), "wifi": LinkConfig("127.0.0.3:0")}
    with Emulator(links) as emu:
        emu.set("eth", cut=True)
        assert exchange(emu, uplink, peer, "wifi")[0] == "127.0.0.3"
        send_up(emu, uplink, peer, b"eth is cut")
        assert arrivals(peer, 0.2) == []


def test_scenario_applies_steps_in_time_order():
    steps = [
        {"at": 0.2, "link": "eth", "set": {"cut": False}},
        {"at": 0.0, "link": "eth", "set": {"cut": True}},
        {"at": 0.1, "link": "eth", "set": {"delay_ms": 30}},
    ]
    seen = []
    with Emulator({"eth": LinkConfig("127.0.0.2:0")}) as emu:
        t0 = time.monotonic()
        finished = emu.run_scenario(
            steps, on_step=lambda step: seen.append((time.monotonic() - t0, step)))
        settings = emu.settings("eth")
    assert finished is True
    assert [s["at"] for _, s in seen] == [0.0, 0.1, 0.2]
    for when, step in seen:
        assert step["at"] <= when + 0.002 < step["at"] + 0.5
    assert settings["up"]["cut"] is False and settings["down"]["delay_ms"] == 30


def test_scenario_errors_name_the_step_and_field():
    with pytest.raises(ValueError, match="step 2: set: cutt"):
        linkemu.check_scenario([{"at": 0, "link": "eth", "set": {"cut": True}},
                                {"at": 1, "link": "eth", "set": {"cutt": True}}], ["eth"])
    with pytest.raises(ValueError, match="step 1: link"):
        linkemu.check_scenario([{"at": 0, "link": "lte", "set": {"cut": True}}], ["eth"])
    with pytest.raises(ValueError, match="step 1: at"):
        linkemu.check_scenario([{"at": -1, "link": "eth", "set": {"cut": True}}], ["eth"])


def test_bad_settings_are_refused_naming_the_key():
    with pytest.raises(ValueError, match="loss"):
        LinkConfig("127.0.0.2:0", loss=1.5)
    with pytest.raises(ValueError, match="address"):
        LinkConfig("127.0.0.2")
    with Emulator({"eth": LinkConfig("127.0.0.2:0")}) as emu:
        with pytest.raises(ValueError, match="up_delay_ms"):
            emu.set("eth", up_delay_ms=-1)
        with pytest.raises(ValueError, match="lte"):
            emu.set("lte", cut=True)


def test_stop_joins_within_a_second_and_closes_the_relay(ends):
    uplink, peer = ends
    emu = Emulator({"eth": LinkConfig("127.0.0.2:0", delay_ms=5000)}).start()
    inside = emu.inside_addr("eth")
    send_up(emu, uplink, peer, b"never")  # still scheduled when we stop
    t0 = time.monotonic()
    emu.stop()
    assert time.monotonic() - t0 < 1.0
    assert "mast-linkemu" not in [t.name for t in threading.enumerate()]
    again = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        again.bind(inside)  # the relay let go of its inside port
        assert again.getsockname() == inside
    finally:
        again.close()
