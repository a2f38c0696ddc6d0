"""The TUN interface: the stable internal address the site's transports see.

open_tun() makes the interface (IFF_TUN | IFF_NO_PI: each read is one IP packet, no header);
configure() gives it its address, MTU and the routes to each peer's allowed prefixes, with the
`ip` command (iproute2; OpenWrt's ip-full). A prefix of length 0 (full tunnel) is routed as its
two halves (0.0.0.0/1 and 128.0.0.0/1, ::/1 and 8000::/1), so the uplinks' own default routes
stay in place: mastd's sockets are bound to their devices (SO_BINDTODEVICE), and a lookup for a
bound socket skips routes through other devices, so mastd's own UDP never enters the tunnel.

Routes are added (`ip route add`), never replaced: a prefix the main table already routes
through another device (a LAN, a VPN, a static route, another mastd's TUN), with any metric, is
left to that route and reported, and only the routes mastd added are ever deleted.

MTU: the smallest uplink MTU minus the outer IP header (20, or 40 for IPv6), UDP (8) and MAST
(28): 1444 on Ethernet over IPv4. Larger packets routed into the TUN get ICMP "fragmentation
needed" / "packet too big" from the kernel; TCP SYNs are clamped in packet.clamp_mss.
"""

import errno
import fcntl
import json
import os
import struct
import subprocess

from .settings import parse_prefix

_TUNSETIFF = 0x400454CA
_IFF_TUN = 0x0001
_IFF_NO_PI = 0x1000
MAST_OVERHEAD = 28
UDP_HEADER = 8


def tun_mtu(uplink_mtus, ipv6=False, inner6=False):
    """The TUN's MTU for uplinks with these MTUs (ipv6: one of them carries MAST over IPv6):
    at least 1280 when the tunnel carries IPv6 (inner6), else 576. Below 1280 the kernel
    takes IPv6 off the interface, with its routes (and a route to ::/0 elsewhere then takes
    the traffic, in the clear); a datagram too large for a small uplink is fragmented there."""
    smallest = min(uplink_mtus) if uplink_mtus else 1500
    return max(smallest - (40 if ipv6 else 20) - UDP_HEADER - MAST_OVERHEAD, 1280 if inner6 else 576)


_NOT_ROOT = "%s (%s): a TUN needs root (CAP_NET_ADMIN); run mastd as root"


def open_tun(name):
    """A non-blocking fd for a TUN interface called name (created if need be). OSError saying
    what to do if /dev/net/tun is missing, the interface is another process's, or this is not root."""
    try:
        fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
    except FileNotFoundError:
        raise OSError(errno.ENOENT, "no /dev/net/tun: the kernel's tun driver is missing "
                                    "(OpenWrt: the kmod-tun package; elsewhere: modprobe tun)")
    except PermissionError as e:
        raise OSError(e.errno, _NOT_ROOT % ("cannot open /dev/net/tun", e.strerror))
    try:
        ifr = struct.pack("16sH22x", name.encode(), _IFF_TUN | _IFF_NO_PI)
        fcntl.ioctl(fd, _TUNSETIFF, ifr)
    except OSError as e:
        os.close(fd)
        if e.errno == errno.EBUSY:  # (else "[Errno 16] Device or resource busy")
            raise OSError(errno.EBUSY, "TUN %s is in use by another process (a mastd that runs "
                                       "already?); stop it, or give this one another tun" % name)
        if e.errno == errno.EPERM:  # (a /dev/net/tun anyone may open: "Operation not permitted")
            raise OSError(e.errno, _NOT_ROOT % ("cannot make TUN " + name, e.strerror))
        raise
    return fd


def ip(*args, check=True):
    """Run `ip ARGS`; OSError with its message if it fails (and check) or hangs (10 s)."""
    try:
        r = subprocess.run(("ip",) + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           universal_newlines=True, timeout=10)
    except subprocess.TimeoutExpired:  # (not an OSError: it went past every handler, mastd ended)
        raise OSError("ip %s: no answer within 10 s" % " ".join(args))
    if check and r.returncode != 0:
        raise OSError("ip %s: %s" % (" ".join(args), r.stderr.strip() or "exit %d" % r.returncode))
    return r


def kernel_routes(prefix):
    """The routes that carry prefix: itself, or its two halves if it is a default route."""
    if prefix in ("0.0.0.0/0",):
        return ["0.0.0.0/1", "128.0.0.0/1"]
    if prefix in ("::/0",):
        return ["::/1", "8000::/1"]
    return [prefix]


def configure(name, internal, mtu, prefixes, have):
    """Address (internal, with its prefix length), MTU, up, and one route per prefix (see
    set_routes: have gets the routes added; the routes not taken are returned)."""
    ip("link", "set", "dev", name, "mtu", str(mtu), "up")
    ip("addr", "replace", internal, "dev", name)
    return set_routes(name, have, prefixes)


def set_mtu(name, mtu):
    ip("link", "set", "dev", name, "mtu", str(mtu))


def _key(dst):
    """A route's destination as (version, network, length): "10.99.0.3" (how `ip` shows a
    host route) is a /32, "fd00::7" a /128."""
    if "/" not in dst:
        dst += "/128" if ":" in dst else "/32"
    return parse_prefix(dst)[:3]


def route_holders(family, routes):
    """{route: [(device, protocol), ...]} for each of routes (strings of one family, "-4" or
    "-6") that the main table routes already, by any route (any metric): each device it goes
    through (each nexthop's), or for one with none its type ("unreachable route", ...),
    with the route's protocol ("kernel": an address's own route). One `ip -j route show`."""
    want = dict((_key(r), r) for r in routes)
    text = ip(family, "-j", "route", "show").stdout
    try:
        table = json.loads(text or "[]")
    except ValueError:
        raise OSError("ip %s -j route show: not JSON (%r...): mastd needs iproute2's ip "
                      "(OpenWrt: ip-full)" % (family, text[:40]))
    out = {}
    for rt in table:
        try:
            r = want.get(_key(rt.get("dst") or ""))
        except ValueError:  # "default": never one of mastd's (it routes the two halves)
            continue
        if r is None:
            continue
        devs = [h["dev"] for h in rt.get("nexthops", ()) if h.get("dev")]
        if rt.get("dev") and rt.get("type", "unicast") == "unicast":  # (IPv6's reject routes: "dev lo")
            devs.append(rt["dev"])
        proto = rt.get("protocol")
        out.setdefault(r, []).extend((d, proto) for d in devs or ["%s route" % rt.get("type", "unicast")])
    return out


def set_routes(name, have, new):
    """Make the routes through the TUN name carry the prefixes new. have: the routes mastd
    added (a set, kept up to date as routes come and go). Routes in have no longer wanted are
    deleted; a wanted route not in have is added (`ip route add`) unless the main table routes
    its prefix already: through name itself it is kept (a route left there before; the
    address's own route is used, never deleted), through anything else (another device,
    another mastd's TUN, an unreachable route; any metric) it is not taken but left as it is.
    Routes in have are not touched (one `ip` each: a concentrator with 3,000 peers ran 6,000
    of them for one peer added, and its loop stood for 10 s). Returns [(route, [devices])],
    the routes not taken and what holds each."""
    want = []
    for p in new:
        want += kernel_routes(p)
    wanted = set(want)
    for r in sorted(have - wanted):
        ip("route", "del", r, "dev", name, check=False)
        have.discard(r)
    add = [r for r in dict.fromkeys(want) if r not in have]  # (0.0.0.0/0 and 0.0.0.0/1: one route)
    holders = {}
    for family in ("-4", "-6"):
        routes = [r for r in add if (":" in r) == (family == "-6")]
        if routes:
            holders.update(route_holders(family, routes))
    not_taken = []
    for r in add:
        held = holders.get(r)
        if not held:
            ip("-6" if ":" in r else "-4", "route", "add", r, "dev", name)
            have.add(r)
            continue
        others = [d for d, _ in held if d != name]
        if others:
            not_taken.append((r, others))
        elif all(proto != "kernel" for _, proto in held):
            have.add(r)  # through this TUN already (left there before): kept, and ours
    return not_taken
