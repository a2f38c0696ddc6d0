"""Which Linux devices mastd's linux discovery (links.device_state) takes as usable uplinks,
on real devices in a network namespace made here: a device that is up but has no carrier is
not, nor is one whose only IPv6 address is link-local or deprecated. Root only."""

import json
import os
import subprocess
import sys
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import netns  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIRMWARE = os.path.join(ROOT, "firmware")

pytestmark = pytest.mark.skipif(netns.unavailable() is not None, reason=str(netns.unavailable()))

_STATE = ("import json, sys; sys.path.insert(0, sys.argv[1]); from mastd import links; "
          "print(json.dumps(dict((d, links.device_state(d).as_dict()) for d in sys.argv[2:])))")


def states(ns, *devs):
    """{device: Link.as_dict()} as mastd sees them from inside ns."""
    r = netns.run([sys.executable, "-c", _STATE, FIRMWARE] + list(devs), ns=ns, timeout=30)
    return json.loads(r.stdout)


def settled(ns, devs, ready):
    """states(ns, *devs) once ready(states) holds (the kernel sets a new carrier's RUNNING
    flag a moment later, from its link watch, up to a second on an idle machine), polling at
    most 20 s (each poll starts a Python: slow on a loaded machine)."""
    end = time.monotonic() + 20
    while True:
        got = states(ns, *devs)
        if ready(got) or time.monotonic() > end:
            return got
        time.sleep(0.05)


@pytest.fixture
def ns():
    spaces = netns.Namespaces("mlk")
    try:
        yield spaces.add("links")
    finally:
        spaces.close()


def test_a_device_without_carrier_or_with_only_link_local_or_deprecated_ipv6_is_not_an_uplink(ns):
    ip = lambda *a: netns.ip(ns, *a)  # noqa: E731
    # v0 is up with an address, but its other end is down: no carrier (a cable pulled)
    ip("link", "add", "v0", "type", "veth", "peer", "name", "v1")
    ip("addr", "add", "10.9.0.1/24", "dev", "v0")
    ip("link", "set", "v0", "up")
    # IPv6 only: ll0 has a link-local address alone, dep0 a deprecated global one alone,
    # ok0 both a link-local and a usable global one (no DAD: no address stays tentative)
    for dev, addrs in (("ll0", [["fe80::1/64"]]),
                       ("dep0", [["2001:db8:1::5/64", "preferred_lft", "0"]]),
                       ("ok0", [["fe80::1/64"], ["2001:db8:2::7/64"]])):
        ip("link", "add", dev, "type", "veth", "peer", "name", dev + "p")
        ip("link", "set", dev, "addrgenmode", "none")
        for a in addrs:
            ip("addr", "add", a[0], "dev", dev, "nodad", *a[1:])
        ip("link", "set", dev + "p", "up")
        ip("link", "set", dev, "up")
    got = settled(ns, ("v0", "ll0", "dep0", "ok0"), lambda g: g["ok0"]["up"])
    assert (got["v0"]["up"], got["v0"]["why"]) == (False, "v0 is down or has no carrier")
    assert (got["ll0"]["up"], got["ll0"]["why"]) == (False, "ll0 has no address")
    assert (got["dep0"]["up"], got["dep0"]["why"]) == (False, "dep0 has no address")
    assert (got["ok0"]["up"], got["ok0"]["addr"]) == (True, "2001:db8:2::7")
    ip("link", "set", "v1", "up")  # the carrier comes: v0 is an uplink now
    got = settled(ns, ("v0",), lambda g: g["v0"]["up"])["v0"]
    assert (got["up"], got["addr"], got["why"]) == (True, "10.9.0.1", None)


def test_a_netifd_uplink_whose_ipv6_address_was_tentative_at_the_scan_comes_up_after_dad(ns, tmp_path):
    # netifd's dump (and its hotplug event) may name an IPv6 address still in DAD: its bind()
    # fails (EADDRNOTAVAIL), and with netifd discovery nothing scanned again once DAD was
    # over: the uplink stayed down until the next hotplug event or SIGHUP (IPv4 has no DAD)
    from mastd import control

    ip = lambda *a: netns.ip(ns, *a)  # noqa: E731
    ip("link", "add", "w6", "type", "veth", "peer", "name", "w6p")
    ip("link", "set", "w6", "addrgenmode", "none")
    ip("link", "set", "w6p", "up")
    ip("link", "set", "w6", "up")
    settled(ns, ("w6",), lambda g: g["w6"]["why"] == "w6 has no address")  # (carrier: RUNNING)
    ip("addr", "add", "2001:db8:6::1/64", "dev", "w6")  # with DAD: tentative for about 1 s
    ubus = tmp_path / "bin" / "ubus"
    ubus.parent.mkdir()
    ubus.write_text("#!/bin/sh\necho '%s'\n" % json.dumps({"interface": [{
        "interface": "wan6", "up": True, "l3_device": "w6", "ipv4-address": [],
        "ipv6-address": [{"address": "2001:db8:6::1", "mask": 64, "preferred": 3600, "valid": 7200}]}]}))
    ubus.chmod(0o755)
    cfg = tmp_path / "mast.json"
    cfg.write_text(json.dumps({"name": "r", "peers": {}, "uplinks": {"wan6": {}}}))
    cfg.chmod(0o600)
    sock = str(tmp_path / "c.sock")
    env = dict(os.environ, PYTHONPATH=FIRMWARE, PATH=str(ubus.parent) + os.pathsep + os.environ["PATH"])
    with open(str(tmp_path / "mastd.log"), "w") as log:
        p = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-m", "mastd", "--config",
                              str(cfg), "--control", sock, "--discovery", "netifd"],
                             stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        up = st = None
        end = time.monotonic() + 20
        while time.monotonic() < end and not up and p.poll() is None:
            try:
                st = control.request(sock, {"op": "status"}, timeout=2)["status"]
                up = st["uplinks"]["wan6"].get("socket")
            except OSError:
                pass
            if not up:
                time.sleep(0.1)
    finally:
        p.terminate()
        p.wait(15)
    text = (tmp_path / "mastd.log").read_text()
    assert "uplinks from netifd" in text, text[-2000:]
    assert up is not None and up["bind"] == "[2001:db8:6::1]:6278", text[-2000:]
    assert "EADDRNOTAVAIL" in text  # (the first bind, in DAD: the case this is about)
    # seen when DAD ended (the address's flags change: rtnetlink), about 1 s in, not at the
    # bind's retry 2 s after the first scan (the fallback when no event comes)
    ups = [e.get("why") for e in st["events"] if e["event"] == "uplink_up" and e.get("uplink") == "wan6"]
    assert ups == ["netlink"], ups
