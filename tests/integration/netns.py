"""Network namespaces for the integration tests: build a multi-WAN topology, break it in the
ways real uplinks break, and always tear it down.

    client "cli"                 ISPs                         server "srv"
    u1 100.64.1.2/24      -- isp1 (dual-stack) ------------ s1 \\
       2001:db8:1::2/64                                            198.51.100.1 (lo)
    u2 100.64.2.2/24      -- isp2 ------------------------- s2 --   2001:db8:100::1 (lo)
    u3 192.168.3.2/24     -- isp3 (NAT: nft masquerade) --- s3 /

The client routes by source address, as a multi-WAN host does (mwan3, netifd): one table per
uplink with its default route and an `unreachable` fallback, and `ip rule from <addr> table N`,
so a socket bound to an uplink's address leaves by that uplink or not at all. The main table has
a default route per uplink (metric 10, 20, 30) for everything else. The server has no route to
192.168.3.0/24: it sees u3 only as isp3's public address.

Namespaces are named PREFIX<pid>-<n>-<role>, so leftovers of a run that died can be found
(cleanup_leftovers) without touching a concurrent run's. Root only; unavailable() says why not.
Every command is bounded in time.
"""

import os
import shutil
import signal
import subprocess
import time

PREFIX = "mrt"
_counter = [0]

SERVER4 = "198.51.100.1"
SERVER6 = "2001:db8:100::1"

# k -> the uplink's client side and ISP side
UPLINKS = {
    1: {"dev": "u1", "addr": "100.64.1.2", "gw": "100.64.1.1", "plen": 24, "net": "100.64.1.0/24",
        "addr6": "2001:db8:1::2", "gw6": "2001:db8:1::1", "net6": "2001:db8:1::/64", "nat": False},
    2: {"dev": "u2", "addr": "100.64.2.2", "gw": "100.64.2.1", "plen": 24, "net": "100.64.2.0/24",
        "addr6": None, "nat": False},
    3: {"dev": "u3", "addr": "192.168.3.2", "gw": "192.168.3.1", "plen": 24, "net": "192.168.3.0/24",
        "addr6": None, "nat": True},
}
METRIC = {1: 10, 2: 20, 3: 30}


def core4(k):
    """(server side, ISP side) of ISP k's link to the server."""
    return "172.30.%d.1" % k, "172.30.%d.2" % k


def core6(k):
    return "2001:db8:ff0%d::1" % k, "2001:db8:ff0%d::2" % k


def table(k):
    return 100 + k


class CommandFailed(AssertionError):
    pass


def run(args, ns=None, check=True, timeout=15, input=None):
    """Run a command (inside ns with `ip netns exec`); CommandFailed names it on failure."""
    cmd = (["ip", "netns", "exec", ns] if ns else []) + list(args)
    r = subprocess.run(cmd, input=input, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       universal_newlines=True, timeout=timeout)
    if check and r.returncode != 0:
        raise CommandFailed("%s failed (%d): %s" % (" ".join(cmd), r.returncode, r.stderr.strip()))
    return r


def ip(ns, *args, check=True):
    return run(["ip", "-n", ns] + list(args), check=check)


def unavailable():
    """Why these tests cannot run here, or None."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "needs root (network namespaces, veth pairs, nftables); CI runs as root"
    if not shutil.which("ip"):
        return "needs iproute2 (`ip`); as root `make deps` installs it"
    try:
        r = subprocess.run(["ip", "netns", "list"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=10)
    except (OSError, subprocess.TimeoutExpired) as e:
        return "`ip netns` is unavailable (%s)" % e
    if r.returncode != 0:
        return "`ip netns` is unavailable: %s" % r.stderr.decode(errors="replace").strip()
    if not shutil.which("nft"):
        return "needs nftables (`nft`) for the ISP blackhole and NAT; as root `make deps` installs it"
    return None


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _kill_and_delete(name):
    r = subprocess.run(["ip", "netns", "pids", name], stdout=subprocess.PIPE,
                       stderr=subprocess.DEVNULL, universal_newlines=True, timeout=10)
    for pid in r.stdout.split():
        try:
            os.kill(int(pid), signal.SIGKILL)
        except (OSError, ValueError):
            pass
    subprocess.run(["ip", "netns", "del", name], stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, timeout=10)


def list_netns():
    r = subprocess.run(["ip", "netns", "list"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                       universal_newlines=True, timeout=10)
    return [line.split()[0] for line in r.stdout.splitlines() if line.strip()]


def cleanup_leftovers(prefix=PREFIX):
    """Delete namespaces PREFIX<pid>-... whose test process is gone (a run that was killed),
    and any of this process's own. A concurrent run's namespaces are left alone."""
    gone = []
    for name in list_netns():
        if not name.startswith(prefix):
            continue
        digits = name[len(prefix):].split("-", 1)[0]
        if not digits.isdigit():
            continue
        pid = int(digits)
        if pid == os.getpid() or not _pid_alive(pid):
            _kill_and_delete(name)
            gone.append(name)
    return gone


class Namespaces:
    """A set of namespaces made for one test; close() kills what runs in them and deletes them."""

    def __init__(self, prefix=PREFIX):
        _counter[0] += 1
        self.tag = "%s%d-%d" % (prefix, os.getpid(), _counter[0])
        self.names = []

    def add(self, role):
        name = "%s-%s" % (self.tag, role)
        _kill_and_delete(name)  # a leftover of the same name (pid reuse)
        run(["ip", "netns", "add", name])
        self.names.append(name)
        ip(name, "link", "set", "lo", "up")
        return name

    def veth(self, a, ifa, b, ifb):
        ip(a, "link", "add", ifa, "type", "veth", "peer", "name", ifb, "netns", b)
        ip(a, "link", "set", ifa, "up")
        ip(b, "link", "set", ifb, "up")

    def close(self):
        for name in reversed(self.names):
            _kill_and_delete(name)
        self.names = []


def sysctl(ns, *settings):
    run(["sysctl", "-qw"] + list(settings), ns=ns)


def read_sysctl(ns, key):
    return run(["sysctl", "-n", key], ns=ns).stdout.strip()


class MultiWan:
    """The topology above. Attributes: cli, srv, isp[k] (namespace names)."""

    def __init__(self, prefix=PREFIX):
        self.spaces = Namespaces(prefix)
        self.isp = {}
        self.addr = dict((k, u["addr"]) for k, u in UPLINKS.items())  # current client addresses
        try:
            self._build()
        except BaseException:
            self.close()
            raise

    # ---- building ------------------------------------------------------------------------

    def _build(self):
        s = self.spaces
        self.cli = s.add("cli")
        self.srv = s.add("srv")
        sysctl(self.cli, "net.ipv6.conf.all.keep_addr_on_down=1",
               "net.ipv6.conf.default.keep_addr_on_down=1", "net.ipv6.conf.all.accept_dad=0",
               "net.ipv6.conf.default.accept_dad=0",
               # renumbering: the new address survives the old (primary) one's removal
               "net.ipv4.conf.all.promote_secondaries=1",
               "net.ipv4.conf.default.promote_secondaries=1")
        sysctl(self.srv, "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0")
        ip(self.srv, "addr", "add", SERVER4 + "/32", "dev", "lo")
        ip(self.srv, "addr", "add", SERVER6 + "/128", "dev", "lo")
        for k, u in sorted(UPLINKS.items()):
            isp = self.isp[k] = s.add("isp%d" % k)
            sysctl(isp, "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1",
                   "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0")
            # client <-> ISP
            s.veth(self.cli, u["dev"], isp, "cust")
            ip(isp, "addr", "add", "%s/%d" % (u["gw"], u["plen"]), "dev", "cust")
            ip(self.cli, "addr", "add", "%s/%d" % (u["addr"], u["plen"]), "dev", u["dev"])
            if u["addr6"]:
                ip(isp, "addr", "add", u["gw6"] + "/64", "dev", "cust", "nodad")
                ip(self.cli, "addr", "add", u["addr6"] + "/64", "dev", u["dev"], "nodad")
            # ISP <-> server
            srv_if = "s%d" % k
            s.veth(isp, "core", self.srv, srv_if)
            sa, ia = core4(k)
            ip(isp, "addr", "add", ia + "/30", "dev", "core")
            ip(self.srv, "addr", "add", sa + "/30", "dev", srv_if)
            ip(isp, "route", "add", "default", "via", sa)
            if not u["nat"]:
                ip(self.srv, "route", "add", u["net"], "via", ia)
            if u["addr6"]:
                sa6, ia6 = core6(k)
                ip(isp, "addr", "add", ia6 + "/64", "dev", "core", "nodad")
                ip(self.srv, "addr", "add", sa6 + "/64", "dev", srv_if, "nodad")
                ip(isp, "-6", "route", "add", "default", "via", sa6)
                ip(self.srv, "-6", "route", "add", u["net6"], "via", ia6)
            if u["nat"]:
                run(["nft", "-f", "-"], ns=isp, input=(
                    "table ip nat {\n"
                    "  chain post { type nat hook postrouting priority srcnat; policy accept;\n"
                    "    oifname \"core\" masquerade random\n  }\n}\n"))
            # the client's policy routing for this uplink
            ip(self.cli, "rule", "add", "from", u["addr"], "table", str(table(k)), "pref", str(1000 + k))
            if u["addr6"]:
                ip(self.cli, "-6", "rule", "add", "from", u["addr6"], "table", str(table(k)),
                   "pref", str(1000 + k))
            self.routes_up(k)
        self._check_policy_routing()

    def routes_up(self, k):
        """The routes netifd/mwan3 install when uplink k is up (again)."""
        u = UPLINKS[k]
        t = str(table(k))
        ip(self.cli, "route", "replace", "default", "via", u["gw"], "dev", u["dev"], "table", t)
        ip(self.cli, "route", "replace", "unreachable", "default", "metric", "4000000000", "table", t)
        ip(self.cli, "route", "replace", "default", "via", u["gw"], "dev", u["dev"],
           "metric", str(METRIC[k]))
        if u["addr6"]:
            ip(self.cli, "-6", "route", "replace", "default", "via", u["gw6"], "dev", u["dev"], "table", t)
            ip(self.cli, "-6", "route", "replace", "unreachable", "default", "metric", "4000000000",
               "table", t)
            ip(self.cli, "-6", "route", "replace", "default", "via", u["gw6"], "dev", u["dev"],
               "metric", str(METRIC[k]))

    def route_dev(self, dst, src):
        """The device the client would send dst from src on."""
        words = ip(self.cli, "route", "get", dst, "from", src).stdout.split()
        return words[words.index("dev") + 1] if "dev" in words else None

    def _check_policy_routing(self):
        for k, u in UPLINKS.items():
            dev = self.route_dev(SERVER4, u["addr"])
            if dev != u["dev"]:
                raise CommandFailed("policy routing: from %s to %s leaves by %s, not %s" % (
                    u["addr"], SERVER4, dev, u["dev"]))
            if u["addr6"] and self.route_dev(SERVER6, u["addr6"]) != u["dev"]:
                raise CommandFailed("policy routing: from %s does not leave by %s" % (u["addr6"], u["dev"]))

    # ---- failures -------------------------------------------------------------------------

    def link_down(self, k):
        ip(self.cli, "link", "set", UPLINKS[k]["dev"], "down")

    def link_up(self, k):
        ip(self.cli, "link", "set", UPLINKS[k]["dev"], "up")
        self.routes_up(k)

    def blackhole(self, k, family="inet"):
        """ISP k silently drops everything it would forward (family "ip6": IPv6 only); the
        client's link stays up."""
        run(["nft", "-f", "-"], ns=self.isp[k], input=(
            "table %s mast_blackhole {\n"
            "  chain drop_all { type filter hook forward priority filter - 10; policy drop; }\n}\n" % family))

    def unblackhole(self, k, family="inet"):
        run(["nft", "delete", "table", family, "mast_blackhole"], ns=self.isp[k])

    def renumber_add(self, k, new):
        """Give uplink k a new address beside the old one (the old one goes with
        renumber_finish), with its policy rule: what a DHCP lease change does."""
        u = UPLINKS[k]
        ip(self.cli, "addr", "add", "%s/%d" % (new, u["plen"]), "dev", u["dev"])
        ip(self.cli, "rule", "add", "from", new, "table", str(table(k)), "pref", str(1000 + k))
        self.addr[k] = new

    def renumber_finish(self, k, old):
        u = UPLINKS[k]
        ip(self.cli, "rule", "del", "from", old, "table", str(table(k)), "pref", str(1000 + k))
        ip(self.cli, "addr", "del", "%s/%d" % (old, u["plen"]), "dev", u["dev"])
        self.routes_up(k)  # deleting the primary address may take routes with it

    def link_state(self, k):
        return ip(self.cli, "-br", "link", "show", UPLINKS[k]["dev"]).stdout.split()[1]

    # ---- NAT ------------------------------------------------------------------------------

    def nat_isp(self):
        return self.isp[[k for k, u in UPLINKS.items() if u["nat"]][0]]

    def set_udp_timeouts(self, seconds):
        """Both UDP conntrack timeouts of the NAT namespace (they are per namespace)."""
        ns = self.nat_isp()
        for key in ("net.netfilter.nf_conntrack_udp_timeout",
                    "net.netfilter.nf_conntrack_udp_timeout_stream"):
            if not os.path.exists("/proc/sys/" + key.replace(".", "/")):
                raise CommandFailed("%s is missing: nf_conntrack is not loaded "
                                    "(modprobe nf_conntrack)" % key)
            sysctl(ns, "%s=%d" % (key, seconds))
            got = read_sysctl(ns, key)
            if got != str(seconds):
                raise CommandFailed("%s is %s after setting it to %d" % (key, got, seconds))

    def conntrack_udp(self, ns=None):
        """The NAT namespace's UDP conntrack entries: [{"src", "dst", "sport", "dport",
        "reply_dst", "reply_dport", "timeout"}] (from /proc/net/nf_conntrack)."""
        text = run(["cat", "/proc/net/nf_conntrack"], ns=ns or self.nat_isp()).stdout
        out = []
        for line in text.splitlines():
            w = line.split()
            if len(w) < 6 or w[2] != "udp":
                continue
            kv = [x.split("=", 1) for x in w if "=" in x]
            orig = dict(kv[:4])
            reply = dict(kv[4:8])
            out.append({"src": orig.get("src"), "dst": orig.get("dst"),
                        "sport": int(orig.get("sport", 0)), "dport": int(orig.get("dport", 0)),
                        "reply_dst": reply.get("dst"), "reply_dport": int(reply.get("dport", 0)),
                        "timeout": int(w[4])})
        return out

    def close(self):
        self.spaces.close()


def wait_until(what, fn, timeout, step=0.05):
    """fn() until it returns something true, at most timeout seconds; AssertionError naming
    what otherwise."""
    end = time.monotonic() + timeout
    last = None
    while True:
        last = fn()
        if last:
            return last
        if time.monotonic() >= end:
            raise AssertionError("timed out after %.1f s waiting for %s (last: %r)" % (timeout, what, last))
        time.sleep(step)
