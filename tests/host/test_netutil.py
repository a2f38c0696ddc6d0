"""host-tools/mast_tools/netutil.py: the UDP port a simulated board and its tests bind on every
uplink address."""

import socket

import pytest

import boardcli  # noqa: F401  (host-tools on sys.path)

from mast_tools.netutil import free_udp_port, udp_in_use

NOT_HERE = "192.0.2.1"  # TEST-NET-1: never an address of this machine, so never bindable


def _bindable(host):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.bind((host, 0))
        return True
    except OSError:
        return False
    finally:
        s.close()


def test_the_port_is_free_on_every_host_or_none_is_given():
    if _bindable(NOT_HERE):
        pytest.skip("this machine binds %s (net.ipv4.ip_nonlocal_bind?)" % NOT_HERE)
    hosts = ("127.0.0.61", "127.0.0.62", "127.0.0.63")
    port = free_udp_port(hosts)
    assert not any(udp_in_use(h, port) for h in hosts)
    for bad in ((hosts[0], NOT_HERE), (hosts[0], hosts[1], NOT_HERE)):
        with pytest.raises(RuntimeError) as e:
            free_udp_port(bad, tries=3)
        assert str(e.value) == "no UDP port free on " + ", ".join(bad)


def test_a_port_someone_holds_is_in_use():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.bind(("127.0.0.64", 0))
        port = s.getsockname()[1]
        assert udp_in_use("127.0.0.64", port) is True
    finally:
        s.close()
    assert udp_in_use("127.0.0.64", port) is False
