"""mastd in network namespaces, run from the files unpacked from the built .ipk.

Topology (every namespace and address is made here and removed afterwards):

    lan (192.168.1.2) -- rtr: mastd "router1", TUN 10.99.0.2 -- wan  -- isp1 --\\
                                                          -- wwan -- isp2 ---- inet -- srv: mastd "server",
                                                          -- lte  -- isp3 --/          TUN 10.99.0.1 -- dc (192.168.50.2)

A LAN host streams plain TCP to the host behind the server while the active uplink is
blackholed (nft drop in its ISP) and restored, another uplink is renumbered and the router is
reloaded with new priorities. Root only; skipped otherwise.
"""

import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import textwrap
import threading
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "host-tools"))

PSK = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root: network namespaces, veth, TUN"),
    pytest.mark.skipif(not shutil.which("ip") or not shutil.which("nft"),
                       reason="needs iproute2 and nftables (make deps)"),
    pytest.mark.skipif(not os.path.exists("/dev/net/tun"), reason="needs /dev/net/tun"),
]


def sh(*args, check=True, ns=None, timeout=15):
    cmd = (["ip", "netns", "exec", ns] if ns else []) + list(args)
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
                       timeout=timeout)
    if check and r.returncode != 0:
        raise AssertionError("%s failed: %s" % (" ".join(cmd), r.stderr.strip()))
    return r


def wait_for(what, fn, timeout, step=0.1):
    """fn() until it returns something true, at most timeout seconds."""
    end = time.monotonic() + timeout
    last = None
    while time.monotonic() < end:
        last = fn()
        if last:
            return last
        time.sleep(step)
    raise AssertionError("timed out after %.1f s waiting for %s (last: %r)" % (timeout, what, last))


class Net:
    """Namespaces and veth pairs, all torn down by close()."""

    def __init__(self, tag):
        self.tag = tag
        self.names = []

    def ns(self, short):
        name = "%s-%s" % (self.tag, short)
        sh("ip", "netns", "add", name)
        self.names.append(name)
        sh("ip", "link", "set", "lo", "up", ns=name)
        sh("sysctl", "-qw", "net.ipv4.ip_forward=1", ns=name)
        return name

    def link(self, a, ifa, addr_a, b, ifb, addr_b):
        sh("ip", "link", "add", ifa, "netns", a, "type", "veth", "peer", "name", ifb, "netns", b)
        for ns, ifn, addr in ((a, ifa, addr_a), (b, ifb, addr_b)):
            if addr:
                sh("ip", "addr", "add", addr, "dev", ifn, ns=ns)
            sh("ip", "link", "set", "dev", ifn, "up", ns=ns)

    def close(self):
        for name in reversed(self.names):
            pids = subprocess.run(["ip", "netns", "pids", name], stdout=subprocess.PIPE,
                                  universal_newlines=True).stdout.split()
            for pid in pids:
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (OSError, ValueError):
                    pass
            subprocess.run(["ip", "netns", "del", name], stderr=subprocess.DEVNULL)
        self.names = []


def build_topology(net):
    n = {k: net.ns(k) for k in ("lan", "rtr", "isp1", "isp2", "isp3", "inet", "srv", "dc")}
    net.link(n["lan"], "eth0", "192.168.1.2/24", n["rtr"], "lan0", "192.168.1.1/24")
    # a wide margin for the TCPTimeouts check on a loaded 2-core machine
    sh("ip", "route", "add", "default", "via", "192.168.1.1", "rto_min", "800ms", ns=n["lan"])
    for k, dev, metric in ((1, "wan", 10), (2, "wwan", 20), (3, "lte", 30)):
        isp = n["isp%d" % k]
        net.link(n["rtr"], dev, "100.64.%d.2/24" % k, isp, "cust", "100.64.%d.1/24" % k)
        net.link(isp, "core", "172.30.%d.2/30" % k, n["inet"], "i%d" % k, "172.30.%d.1/30" % k)
        sh("ip", "route", "add", "default", "via", "172.30.%d.1" % k, ns=isp)
        sh("ip", "route", "add", "100.64.%d.0/24" % k, "via", "172.30.%d.2" % k, ns=n["inet"])
        sh("ip", "route", "add", "default", "via", "100.64.%d.1" % k, "dev", dev, "metric", str(metric),
           ns=n["rtr"])
    net.link(n["inet"], "s0", "198.51.100.254/24", n["srv"], "eth0", "198.51.100.1/24")
    sh("ip", "route", "add", "default", "via", "198.51.100.254", ns=n["srv"])
    sh("ip", "addr", "add", "203.0.113.10/32", "dev", "lo", ns=n["inet"])  # an internet host
    net.link(n["srv"], "lan0", "192.168.50.1/24", n["dc"], "eth0", "192.168.50.2/24")
    sh("ip", "route", "add", "default", "via", "192.168.50.1", ns=n["dc"])
    return n


ROUTER_UCI = """\
config mast 'global'
	option name 'router1'
	option internal '10.99.0.2/24'
	option tun 'mast0'
	option profile 'fast'

config peer 'server'
	list addresses '198.51.100.1'
	option psk '{psk}'
	option internal '10.99.0.1'
	list allowed '192.168.50.0/24'
	list allowed '0.0.0.0/0'

config uplink 'wan'
	option device 'wan'
	option priority '{wan}'

config uplink 'wwan'
	option device 'wwan'
	option priority '{wwan}'

config uplink 'lte'
	option device 'lte'
	option priority '{lte}'
	option cost '{lte_cost}'
"""


def router_uci(wan=10, wwan=20, lte=30, lte_cost=0):
    return ROUTER_UCI.format(psk=PSK, wan=wan, wwan=wwan, lte=lte, lte_cost=lte_cost)


SERVER_JSON = {
    "name": "server", "internal": "10.99.0.1/24", "tun": "mast0", "profile": "fast", "masquerade": True,
    "peers": {"router1": {"psk": PSK, "internal": "10.99.0.2", "allowed": ["192.168.1.0/24"]}},
    "uplinks": {"eth0": {"device": "eth0"}},
}


@pytest.fixture(scope="module")
def ipk_root(tmp_path_factory):
    """The .ipk built by `mast ipk`, unpacked as opkg would put it on the router's disk."""
    from mast_tools import cmd_ipk

    out = tmp_path_factory.mktemp("ipk")
    info = cmd_ipk.build(str(out))
    root = out / "root"
    with tarfile.open(info["path"], "r:gz") as outer:
        data = outer.extractfile("./data.tar.gz").read()
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        tar.extractall(str(root))
    return root


class Mastd:
    def __init__(self, root, ns, config, workdir, name):
        self.ns = ns
        self.config = config
        self.control = str(workdir / ("%s.sock" % name))
        self.logpath = str(workdir / ("%s.log" % name))
        self.root = root
        self.log = open(self.logpath, "w")
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", ns, str(root / "usr/sbin/mastd"), "--config", config,
             "--control", self.control, "--discovery", "linux"],
            stdout=self.log, stderr=subprocess.STDOUT)

    def ctl(self, *args, check=True):
        r = subprocess.run([str(self.root / "usr/sbin/mastctl"), "--control", self.control] + list(args),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
                           timeout=10)
        if check and r.returncode != 0:
            raise AssertionError("mastctl %s: %s" % (" ".join(args), r.stderr))
        return r

    def status(self):
        r = self.ctl("status", "--json", check=False)
        return json.loads(r.stdout) if r.returncode == 0 else None

    def assoc(self):
        s = self.status()
        if s and s["associations"] and s["associations"][0]["state"] == "established":
            return s["associations"][0]
        return None

    def stop(self, sig=signal.SIGTERM, timeout=8):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.log.close()
        return self.proc.returncode

    def logtext(self):
        with open(self.logpath) as f:
            return f.read()


RECEIVER = textwrap.dedent("""\
    import hashlib, json, socket, sys
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", 5001)); s.listen(1); s.settimeout(30)
    print("listening", flush=True)
    c, _ = s.accept(); c.settimeout(30)
    h, n, err = hashlib.sha256(), 0, None
    try:
        while True:
            b = c.recv(65536)
            if not b:
                break
            h.update(b); n += len(b)
        c.sendall(json.dumps({"n": n, "sha256": h.hexdigest()}).encode())
        c.close()
    except OSError as e:
        err = repr(e)
    print(json.dumps({"n": n, "sha256": h.hexdigest(), "error": err}), flush=True)
""")

SENDER = textwrap.dedent("""\
    import hashlib, json, os, socket, sys, time
    dst, rate, stop, limit = sys.argv[1], int(sys.argv[2]), sys.argv[3], float(sys.argv[4])
    c = socket.create_connection((dst, 5001), timeout=30)
    h, n, err, reply = hashlib.sha256(), 0, None, None
    block, i, t0 = 4096, 0, time.monotonic()
    try:
        while not os.path.exists(stop) and time.monotonic() - t0 < limit:
            data = hashlib.sha256(b"%d" % i).digest() * (block // 32)
            i += 1
            c.sendall(data); h.update(data); n += len(data)
            ahead = n / rate - (time.monotonic() - t0)
            if ahead > 0:
                time.sleep(ahead)
        c.shutdown(socket.SHUT_WR)
        buf = b""
        while True:
            b = c.recv(4096)
            if not b:
                break
            buf += b
        reply = json.loads(buf.decode())
    except (OSError, ValueError) as e:
        err = repr(e)
    print(json.dumps({"n": n, "sha256": h.hexdigest(), "error": err, "reply": reply}), flush=True)
""")


def tcp_timeouts(ns):
    """TcpExt TCPTimeouts of a namespace."""
    text = sh("cat", "/proc/net/netstat", ns=ns).stdout.splitlines()
    for i in range(0, len(text) - 1, 2):
        if text[i].startswith("TcpExt:"):
            keys, vals = text[i].split()[1:], text[i + 1].split()[1:]
            return int(dict(zip(keys, vals))["TCPTimeouts"])
    return None


@pytest.fixture(scope="module")
def site(ipk_root, tmp_path_factory):
    work = tmp_path_factory.mktemp("site")
    net = Net("mt%d" % (os.getpid() % 100000))
    daemons = []
    try:
        n = build_topology(net)
        rcfg = work / "mast"  # a UCI file, as /etc/config/mast
        rcfg.write_text(router_uci())
        scfg = work / "mast.json"
        scfg.write_text(json.dumps(SERVER_JSON))
        srv = Mastd(ipk_root, n["srv"], str(scfg), work, "srv")
        daemons.append(srv)
        rtr = Mastd(ipk_root, n["rtr"], str(rcfg), work, "rtr")
        daemons.append(rtr)
        wait_for("the association", rtr.assoc, 15)
        yield {"net": net, "ns": n, "rtr": rtr, "srv": srv, "work": work, "rcfg": rcfg}
    finally:
        for d in daemons:
            d.stop(signal.SIGKILL)
        net.close()


def primary_uplink(m):
    a = m.assoc()
    return a["primary"].split(">")[0] if a and a["primary"] else None


def test_tcp_survives_blackhole_restore_renumber_and_reload_with_one_association(site):
    rtr, srv, n, work = site["rtr"], site["srv"], site["ns"], site["work"]
    first = wait_for("router association", rtr.assoc, 10)
    wait_for("the best uplink (wan) as primary", lambda: primary_uplink(rtr) == "wan", 5)
    history = len(rtr.status()["failovers"])
    stop = str(work / "stop")
    # two plain TCP streams from the LAN host: to the host behind the server, and to an
    # internet host through the full tunnel (the server masquerades)
    streams = []
    for ns, dst in ((n["dc"], "192.168.50.2"), (n["inet"], "203.0.113.10")):
        recv = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-c", RECEIVER],
                                stdout=subprocess.PIPE, universal_newlines=True)
        streams.append([dst, recv, None])
    for dst, recv, _ in streams:  # (a sender that came before its receiver listened was refused)
        assert recv.stdout.readline() == "listening\n", dst
    for st in streams:
        st[2] = subprocess.Popen(["ip", "netns", "exec", n["lan"], sys.executable, "-c", SENDER, st[0],
                                  "300000", stop, "45"], stdout=subprocess.PIPE, universal_newlines=True)
    try:
        time.sleep(2)
        timeouts = tcp_timeouts(n["lan"])
        # 1. blackhole the active uplink inside its ISP
        sh("nft", "add table inet bh; add chain inet bh drop_all { type filter hook forward priority 0; policy drop; }",
           ns=n["isp1"])
        wait_for("failover off wan", lambda: primary_uplink(rtr) not in (None, "wan"), 5)
        time.sleep(1.5)
        timeouts = tcp_timeouts(n["lan"]) - timeouts
        # 2. restore it: the router fails back to its best uplink
        sh("nft", "delete table inet bh", ns=n["isp1"])
        wait_for("failback to wan", lambda: primary_uplink(rtr) == "wan", 10)
        # 3. renumber wwan (the new address first; promoted when the old one goes)
        sh("sysctl", "-qw", "net.ipv4.conf.wwan.promote_secondaries=1", ns=n["rtr"])
        sh("ip", "addr", "add", "100.64.2.3/24", "dev", "wwan", ns=n["rtr"])
        sh("ip", "addr", "del", "100.64.2.2/24", "dev", "wwan", ns=n["rtr"])
        sh("ip", "route", "replace", "default", "via", "100.64.2.1", "dev", "wwan", "metric", "20", ns=n["rtr"])
        wait_for("wwan renumbered", lambda: (rtr.status() or {}).get("uplinks", {}).get("wwan", {})
                 .get("addr", "").startswith("100.64.2.3"), 5)
        wait_for("server learns the new address", lambda: any(
            "100.64.2.3" in r for r in (srv.assoc() or {}).get("remotes", [])), 5)
        # 4. reload with lte preferred
        site["rcfg"].write_text(router_uci(wan=30, wwan=20, lte=5))
        rtr.proc.send_signal(signal.SIGHUP)
        wait_for("primary on lte after reload", lambda: primary_uplink(rtr) == "lte", 10)
        time.sleep(1)
    finally:
        with open(stop, "w"):
            pass
        results = []
        for dst, recv, send in streams:
            results.append((dst, json.loads(send.communicate(timeout=30)[0]),
                            json.loads(recv.communicate(timeout=30)[0])))
    assert timeouts == 0  # resend_ms re-sent what the blackhole ate: TCP's RTO never fired
    for dst, sent, got in results:
        assert sent["error"] is None, (dst, sent)  # no reset, no timeout
        assert got["error"] is None, (dst, got)
        assert sent["n"] > 1000000, dst
        assert got["n"] == sent["n"] and got["sha256"] == sent["sha256"], dst
        assert sent["reply"] == {"n": sent["n"], "sha256": sent["sha256"]}, dst
    s = rtr.status()
    a = s["associations"][0]
    assert len(s["associations"]) == 1
    assert (a["label"], a["nonce_id"]) == (first["label"], first["nonce_id"])
    fo = s["failovers"][history:]
    moves = [(e["old"].split(">")[0] if e["old"] else None, e["new"].split(">")[0]) for e in fo]
    assert moves[0][0] == "wan" and moves[0][1] != "wan", moves
    assert any(new == "wan" for _, new in moves[1:]), moves
    assert moves[-1][1] == "lte", moves
    assert all(e.get("nonce_id") == first["nonce_id"] and e.get("label") == first["label"] for e in fo), fo
    assert not [e for e in s["events"] if e["event"] == "association_closed"]
    assert srv.assoc()["nonce_id"] == first["nonce_id"]


def test_inner_source_outside_the_peers_prefixes_is_dropped_and_counted(site):
    srv, n = site["srv"], site["ns"]
    wait_for("association", srv.assoc, 10)
    before = srv.status()["agent_counters"].get("rx_ip_bad_source", 0)
    # the listener prints the source of each datagram until an "end" from its own namespace
    # (sent once the five from the LAN host are in: no time is guessed, a loaded machine may
    # start each of these processes slowly)
    listener = subprocess.Popen(
        ["ip", "netns", "exec", n["dc"], sys.executable, "-c",
         "import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(('0.0.0.0', 9999))\n"
         "print('listening', flush=True); s.settimeout(60)\ntry:\n while True:\n"
         "  d, a = s.recvfrom(100)\n  if d == b'end': break\n  print(a[0], flush=True)\n"
         "except OSError:\n pass"],
        stdout=subprocess.PIPE, universal_newlines=True)
    assert listener.stdout.readline() == "listening\n"
    heard = []
    reader = threading.Thread(target=lambda: heard.extend(iter(listener.stdout.readline, "")))
    reader.start()
    send5 = ("import socket,time; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(('%s', 0))\n"
             "for i in range(5): s.sendto(b'x', ('192.168.50.2', 9999)); time.sleep(0.05)\n")
    # the router's own wan address is not among the prefixes the server allows router1;
    # the LAN host is
    sh(sys.executable, "-c", send5 % "100.64.1.2", ns=n["rtr"])
    sh(sys.executable, "-c", send5 % "192.168.1.2", ns=n["lan"])
    try:
        wait_for("the LAN host's five at the listener", lambda: heard.count("192.168.1.2\n") >= 5, 30)
        wait_for("the router's five dropped", lambda: srv.status()["agent_counters"].get(
            "rx_ip_bad_source", 0) - before >= 5, 30)
    finally:
        sh(sys.executable, "-c", "import socket; socket.socket(socket.AF_INET, socket.SOCK_DGRAM)"
           ".sendto(b'end', ('127.0.0.1', 9999))", ns=n["dc"])
        listener.wait(30)
        reader.join(30)
    sources = [x.strip() for x in heard]
    after = srv.status()["agent_counters"].get("rx_ip_bad_source", 0)
    assert after - before == 5
    assert sources == ["192.168.1.2"] * 5


def test_a_1280_uplink_leaves_the_tun_at_1280_with_its_ipv6_routes(site):
    # a 1280 uplink (many cellular links) made the TUN 1224: the kernel took IPv6 off it with
    # its routes (gone for good, even after that uplink went), and a route to ::/0 by the WAN
    # then carried the LAN's IPv6 in the clear
    rtr, n, work = site["rtr"], site["ns"], site["work"]
    wait_for("association", rtr.assoc, 10)
    key = work / "v6lan.key"
    key.write_text(PSK + "\n")
    rtr.ctl("peer", "add", "v6lan.example", "--psk-file", str(key), "--allowed", "fd77::/64",
            "--no-initiate")

    def v6_routes():
        return sh("ip", "-6", "route", "show", "dev", "mast0", ns=n["rtr"]).stdout

    try:
        wait_for("the IPv6 route on the TUN", lambda: "fd77::/64" in v6_routes(), 5)
        assert rtr.status()["tun"]["mtu"] == 1444
        sh("ip", "link", "set", "dev", "lte", "mtu", "1280", ns=n["rtr"])
        mtu = wait_for("the TUN's MTU to follow", lambda: rtr.status()["tun"]["mtu"] != 1444 and
                       rtr.status()["tun"]["mtu"], 10)
        assert mtu == 1280
        assert "fd77::/64" in v6_routes()
        assert "mtu 1280" in sh("ip", "link", "show", "dev", "mast0", ns=n["rtr"]).stdout
    finally:
        sh("ip", "link", "set", "dev", "lte", "mtu", "1500", ns=n["rtr"])
        rtr.ctl("peer", "remove", "v6lan.example")
    wait_for("the TUN back at 1444", lambda: rtr.status()["tun"]["mtu"] == 1444, 10)
    assert "fd77::/64" not in v6_routes()


def test_sigterm_sends_shut_that_reaches_the_peer(site):
    rtr, srv = site["rtr"], site["srv"]
    wait_for("association", rtr.assoc, 10)
    assert rtr.stop(signal.SIGTERM) == 0
    closed = wait_for("the server sees the SHUT", lambda: [
        e for e in (srv.status() or {}).get("events", [])
        if e["event"] == "association_closed" and e.get("peer") == "router1"], 5)
    assert closed[-1]["reason"] == "peer_shut"
    assert "stopped" in rtr.logtext()
