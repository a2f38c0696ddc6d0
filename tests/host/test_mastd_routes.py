"""mastd's routes into a real TUN, with real mastd processes in a network namespace of their
own: a route the host has already for a peer's prefix (a LAN, a VPN, a static route, another
mastd's TUN) is left to it, before, during and after mastd (start, reload, mastctl peer add and
remove, kill -9 and restart, stop), and said; mastd's own routes still come and go.

The namespace has no name (unshare -n): it lives while a `sleep` started in it runs, every
command and mastd here enters it with nsenter, and it goes with them, also after a test that
died. Root only (TUN, routes, SO_BINDTODEVICE); skipped otherwise, saying why."""

import json
import os
import shutil
import signal
import subprocess
import sys

import pytest

from mastd import control
from test_mastd_control import wait_for

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIRMWARE = os.path.join(ROOT, "firmware")
PSK = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="


def _unavailable():
    if os.geteuid() != 0:
        return "needs root: a network namespace, a TUN, routes and SO_BINDTODEVICE"
    for tool in ("unshare", "nsenter", "ip"):
        if not shutil.which(tool):
            return "needs %s (util-linux, iproute2: make deps)" % tool
    if not os.path.exists("/dev/net/tun"):
        return "needs /dev/net/tun (the tun driver: modprobe tun)"
    return None


pytestmark = pytest.mark.skipif(_unavailable() is not None, reason=str(_unavailable()))


class Netns:
    """A network namespace without a name, held by a `sleep` (unshare -n); close() ends it."""

    def __init__(self):
        self.holder = subprocess.Popen(["unshare", "-n", "sleep", "300"])
        ours = os.readlink("/proc/self/ns/net")

        def entered():
            try:
                return os.readlink("/proc/%d/ns/net" % self.holder.pid) != ours
            except OSError:
                return False

        wait_for("unshare -n", lambda: entered() or self.holder.poll() is not None, 10)
        if self.holder.poll() is not None:
            pytest.skip("unshare -n failed here (no network namespaces?)")
        self.run("ip", "link", "set", "lo", "up")

    def cmd(self, *args):
        return ["nsenter", "-t", str(self.holder.pid), "-n"] + list(args)

    def run(self, *args, check=True, input=None):
        r = subprocess.run(self.cmd(*args), input=input, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           universal_newlines=True, timeout=30)
        if check and r.returncode:
            raise AssertionError("%s: %s" % (" ".join(args), r.stderr.strip()))
        return r

    def routes(self, *prefixes):
        """{prefix: [(device, metric), ...]}: the main table's routes for exactly these."""
        out = dict((p, []) for p in prefixes)
        for rt in json.loads(self.run("ip", "-4", "-j", "route", "show").stdout):
            dst = rt["dst"] if "/" in rt["dst"] or rt["dst"] == "default" else rt["dst"] + "/32"
            if dst in out:
                out[dst].append((rt.get("dev"), rt.get("metric", 0)))
        return out

    def send(self, dst):
        """One UDP datagram to dst, port 9 (it goes where the routes say)."""
        self.run(sys.executable, "-c", "import socket, sys; socket.socket(socket.AF_INET, socket.SOCK_DGRAM)"
                 ".sendto(b'x', (sys.argv[1], 9))", dst)

    def close(self):
        self.holder.kill()
        self.holder.wait()


class Mastd:
    """A mastd in ns, from the checkout, with its own control socket and log in tmp."""

    def __init__(self, ns, tmp, name, doc):
        self.ns, self.name = ns, name
        self.cfg = tmp / ("%s.json" % name)
        self.cfg.write_text(json.dumps(doc))
        self.sock = str(tmp / ("%s.sock" % name))
        self.logpath = tmp / ("%s.log" % name)
        self.start()

    def start(self):
        self.log = open(str(self.logpath), "a")
        self.p = subprocess.Popen(ns_cmd(self.ns, sys.executable, "-m", "mastd", "--config", str(self.cfg),
                                         "--control", self.sock, "--discovery", "linux"),
                                  stdout=self.log, stderr=subprocess.STDOUT, env=dict(os.environ, PYTHONPATH=FIRMWARE))
        return wait_for("mastd %s's tun" % self.name, lambda: (self.status() or {}).get("tun") or self.p.poll())

    def status(self):
        try:
            return control.request(self.sock, {"op": "status"}, timeout=10).get("status")
        except OSError:
            return None

    def ctl(self, *args, input=None):
        return subprocess.run([sys.executable, "-c", "import sys; from mastd.ctl import main; sys.exit(main())",
                               "--control", self.sock] + list(args), input=input, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, universal_newlines=True, timeout=30,
                              env=dict(os.environ, PYTHONPATH=FIRMWARE))

    def logtext(self):
        return self.logpath.read_text()

    def stop(self, sig=signal.SIGTERM):
        if self.p.poll() is None:
            self.p.send_signal(sig)
            try:
                self.p.wait(10)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        self.log.close()
        return self.p.returncode


def ns_cmd(ns, *args):
    return ns.cmd(*args)


def config(tun, internal, peer_internal, allowed, port):
    return {"name": "r-" + tun, "internal": internal, "tun": tun, "port": port, "profile": "fast",
            "peers": {"site": {"psk": PSK, "internal": peer_internal, "allowed": allowed, "initiate": False}},
            "uplinks": {"lo": {"device": "lo", "address": "127.0.0.1"}}}


def no_association(m):
    return (m.status() or {}).get("agent_counters", {}).get("tun_no_association", 0)


@pytest.fixture
def ns():
    n = Netns()
    try:
        # a LAN on lan9 (a veth: no dummy driver needed), with routes of its own that a peer's
        # allowed prefixes will name too: one as `ip route replace` would take it (metric 0),
        # one that an added route of metric 0 would shadow (metric 50)
        n.run("ip", "link", "add", "lan9", "type", "veth", "peer", "name", "lan9p")
        for dev in ("lan9", "lan9p"):
            n.run("ip", "link", "set", dev, "up")
        n.run("ip", "addr", "add", "10.1.0.1/24", "dev", "lan9")
        n.run("ip", "route", "add", "10.50.0.0/24", "dev", "lan9")
        n.run("ip", "route", "add", "10.60.0.0/24", "via", "10.1.0.2", "dev", "lan9", "metric", "50")
        n.run("ip", "route", "add", "10.80.0.0/24", "dev", "lan9")
        yield n
    finally:
        n.close()


LAN = {"10.50.0.0/24": [("lan9", 0)], "10.60.0.0/24": [("lan9", 50)], "10.80.0.0/24": [("lan9", 0)]}


def not_taken(route, peer, dev, tun):
    return ("route %s of peer %s not taken: this host routes it already, through %s, and mastd leaves that "
            "route alone: traffic to %s does not enter %s. To tunnel it, delete that route (ip route del %s "
            "dev %s), then mastctl reload; or take %s out of peer %s's allowed"
            % (route, peer, dev, route, tun, route, dev, route, peer))


def test_the_hosts_own_route_for_a_peers_prefix_outlives_mastds_start_reload_peers_crash_and_stop(ns, tmp_path):
    m = Mastd(ns, tmp_path, "a", config("mra0", "10.99.0.1/24", "10.99.0.2",
                                        ["10.50.0.0/24", "10.60.0.0/24", "10.70.0.0/24"], 7101))
    try:
        assert ns.routes(*LAN) == LAN  # before: 10.50 through mra0 (replaced), 10.60 shadowed by mra0's
        assert ns.routes("10.70.0.0/24", "10.99.0.2/32") == {"10.70.0.0/24": [("mra0", 0)],
                                                             "10.99.0.2/32": [("mra0", 0)]}
        for route in ("10.50.0.0/24", "10.60.0.0/24"):
            assert not_taken(route, "site", "lan9", "mra0") in m.logtext()
        assert m.status()["routes_not_taken"] == [{"route": "10.50.0.0/24", "peer": "site", "held_by": ["lan9"]},
                                                  {"route": "10.60.0.0/24", "peer": "site", "held_by": ["lan9"]}]
        assert "\n  route 10.60.0.0/24 of peer site not taken: held by lan9 (the log says what to do)\n" in (
            m.ctl("status").stdout)
        # the normal case still routes: a datagram to the peer's own prefix enters the TUN
        ns.send("10.70.0.9")
        wait_for("the datagram in mra0", lambda: no_association(m) == 1)
        # mastctl reload and peer add say it, and exit 1; the rest is applied
        r = m.ctl("reload")
        assert (r.returncode, r.stdout) == (1, "")
        assert r.stderr == "mastctl: reloaded, but %s; %s\n" % (not_taken("10.50.0.0/24", "site", "lan9", "mra0"),
                                                                not_taken("10.60.0.0/24", "site", "lan9", "mra0"))
        r = m.ctl("peer", "add", "lab", "--psk-file", "-", "--internal", "10.99.0.3", "--allowed", "10.80.0.0/24",
                  "--allowed", "10.81.0.0/24", "--no-initiate", input=PSK + "\n")
        assert (r.returncode, r.stderr) == (1, "mastctl: peer lab added, but %s\n"
                                            % not_taken("10.80.0.0/24", "lab", "lan9", "mra0"))
        assert "lab" in json.loads(m.cfg.read_text())["peers"]
        # each said once in the log, not again at each retry while the same device holds it
        assert [m.logtext().count(not_taken(r, p, "lan9", "mra0")) for r, p in (
            ("10.50.0.0/24", "site"), ("10.60.0.0/24", "site"), ("10.80.0.0/24", "lab"))] == [1, 1, 1]
        assert ns.routes(*LAN) == LAN and ns.routes("10.81.0.0/24")["10.81.0.0/24"] == [("mra0", 0)]
        r = m.ctl("peer", "remove", "lab")
        assert r.returncode == 0, r.stderr
        assert ns.routes(*LAN) == LAN and ns.routes("10.81.0.0/24", "10.99.0.3/32") == {
            "10.81.0.0/24": [], "10.99.0.3/32": []}
        # a crash: the TUN goes, and the kernel takes its routes with it; the LAN's stay
        assert m.stop(signal.SIGKILL) == -signal.SIGKILL
        wait_for("mra0 gone", lambda: ns.run("ip", "link", "show", "mra0", check=False).returncode != 0)
        assert ns.routes(*LAN) == LAN and ns.routes("10.70.0.0/24")["10.70.0.0/24"] == []
        m.start()  # (the stale control socket is replaced)
        assert ns.routes(*LAN) == LAN and ns.routes("10.70.0.0/24")["10.70.0.0/24"] == [("mra0", 0)]
        assert m.stop() == 0
        assert ns.routes(*LAN) == LAN and ns.routes("10.70.0.0/24", "10.99.0.2/32") == {
            "10.70.0.0/24": [], "10.99.0.2/32": []}
    finally:
        m.stop(signal.SIGKILL)


def test_a_second_mastd_with_its_own_tun_leaves_the_first_ones_routes_which_work_after_it_stops(ns, tmp_path):
    first = Mastd(ns, tmp_path, "a", config("mra0", "10.99.0.1/24", "10.99.0.2", ["10.55.0.0/24"], 7101))
    second = None
    try:
        assert ns.routes("10.55.0.0/24")["10.55.0.0/24"] == [("mra0", 0)]
        second = Mastd(ns, tmp_path, "b", config("mrb0", "10.98.0.1/24", "10.98.0.2",
                                                 ["10.55.0.0/24", "10.56.0.0/24"], 7102))
        assert ns.routes("10.55.0.0/24", "10.56.0.0/24") == {"10.55.0.0/24": [("mra0", 0)],
                                                             "10.56.0.0/24": [("mrb0", 0)]}
        assert not_taken("10.55.0.0/24", "site", "mra0", "mrb0") in second.logtext()
        assert second.stop() == 0
        assert ns.routes("10.55.0.0/24")["10.55.0.0/24"] == [("mra0", 0)]
        ns.send("10.55.0.9")  # still into the first one's TUN
        wait_for("the datagram in mra0", lambda: no_association(first) == 1)
    finally:
        if second is not None:
            second.stop(signal.SIGKILL)
        first.stop(signal.SIGKILL)
