"""Uplink discovery: which configured uplinks are usable now, on which device, with which address.

Two sources, both giving scan() -> {uplink name: Link}:

- netifd (OpenWrt): `ubus call network.interface dump` lists the logical interfaces (wan, wwan,
  lte) with their layer-3 device and addresses. An uplink section's name is the interface's.
  It is read at start, on every hotplug `iface` event (the hotplug script tells mastd through
  its control socket), on SIGHUP, and when rtnetlink tells of a link or address change (an
  IPv6 address still tentative at the hotplug event, its bind() refused, comes up so). ubus gets UBUS_TIMEOUT_S to answer; a scan that fails
  changes nothing (the uplinks stay as they were).
- linux (any other Linux): the uplink's `device` (default: its name); its address is
  uplinks.<name>.address if configured, else the device's first IPv4 address (else its first
  global IPv6 one), read with ioctl and /proc. An rtnetlink socket (link and address groups)
  wakes mastd whenever a link or an address changes anywhere; it then scans again.

Either way a change turns into Runtime.add_uplink / remove_uplink, and so into SET.
"""

import errno
import fcntl
import json
import os
import socket
import struct
import subprocess

from mast.addr import canonical, parse_addr

_SIOCGIFFLAGS = 0x8913
_SIOCGIFADDR = 0x8915
_SIOCGIFMTU = 0x8921
_IFF_UP = 0x1
_IFF_RUNNING = 0x40
_RTMGRP_LINK = 0x1
_RTMGRP_IPV4_IFADDR = 0x10
_RTMGRP_IPV6_IFADDR = 0x100
_IFA_F_BAD = 0x08 | 0x20 | 0x40  # dadfailed, deprecated, tentative
# ubus answers in milliseconds; a hung one holds mastd's loop (and its data path) this long at
# most, and the scan fails (the uplinks stay as they were).
UBUS_TIMEOUT_S = 2


class Link:
    """What a source knows about one uplink now."""

    def __init__(self, device, addr, mtu, up, why=None):
        self.device = device
        # canonical IP text, or None (netifd's and the configuration's as written, which may
        # be "[2001:db8::1]"; ValueError if not an address, and the scan fails)
        self.addr = canonical(parse_addr(addr, None)[0]) if addr is not None else None
        self.mtu = mtu
        self.up = up and addr is not None
        self.why = why  # why it is not up

    def key(self):
        return (self.device, self.addr, self.up)

    def as_dict(self):
        return {"device": self.device, "addr": self.addr, "mtu": self.mtu, "up": self.up,
                "why": self.why}


def _ifreq(sock, req, dev):
    return fcntl.ioctl(sock.fileno(), req, struct.pack("16s16x", dev.encode()))


def _ipv6_of(dev):
    try:
        with open("/proc/net/if_inet6") as f:
            for line in f:
                w = line.split()
                if len(w) == 6 and w[5] == dev and int(w[3], 16) == 0 and not int(w[4], 16) & _IFA_F_BAD:
                    return socket.inet_ntop(socket.AF_INET6, bytes.fromhex(w[0]))
    except OSError:
        pass
    return None


def device_state(dev, want_addr=None):
    """Link(dev, address, mtu, up) of a Linux device; up only if it is up, has carrier and
    has the address (want_addr, or any usable one)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        try:
            flags = struct.unpack_from("H", _ifreq(s, _SIOCGIFFLAGS, dev), 16)[0]
            mtu = struct.unpack_from("i", _ifreq(s, _SIOCGIFMTU, dev), 16)[0]
        except OSError as e:
            return Link(dev, None, None, False, "no device %s (%s)" % (dev, errno.errorcode.get(e.errno, e.errno)))
        if not (flags & _IFF_UP and flags & _IFF_RUNNING):
            return Link(dev, None, mtu, False, "%s is down or has no carrier" % dev)
        if want_addr is not None:
            return Link(dev, want_addr, mtu, True)  # bind() fails later if it is not there
        try:
            addr = socket.inet_ntoa(_ifreq(s, _SIOCGIFADDR, dev)[20:24])
        except OSError:
            addr = _ipv6_of(dev)
        if addr is None:
            return Link(dev, None, mtu, False, "%s has no address" % dev)
        return Link(dev, addr, mtu, True)
    finally:
        s.close()


class LinuxSource:
    """Configured devices, watched through rtnetlink."""

    name = "linux"

    def __init__(self, uplinks_cfg):
        self.cfg = uplinks_cfg
        self.sock = None

    def scan(self):
        out = {}
        for name, u in self.cfg.items():
            out[name] = device_state(u.get("device") or name, u.get("address"))
        return out

    def open_watch(self):
        """A non-blocking rtnetlink socket that becomes readable on link/address changes."""
        s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
        s.bind((0, _RTMGRP_LINK | _RTMGRP_IPV4_IFADDR | _RTMGRP_IPV6_IFADDR))
        s.setblocking(False)
        self.sock = s
        return s

    def drain(self):
        """Read what the watch socket holds; True if anything came."""
        got = False
        for _ in range(256):
            try:
                if not self.sock.recv(65536):
                    break
                got = True
            except BlockingIOError:
                break
            except OSError:  # ENOBUFS: messages were lost; a scan catches up anyway
                got = True
                break
        return got

    def close(self):
        if self.sock is not None:
            self.sock.close()
            self.sock = None


def parse_netifd_dump(doc, uplinks_cfg):
    """{uplink: Link} from `ubus call network.interface dump` output (a dict)."""
    by_name = {}
    for itf in doc.get("interface", []):
        by_name[itf.get("interface")] = itf
    out = {}
    for name, u in uplinks_cfg.items():
        itf = by_name.get(name)
        if itf is None:
            out[name] = Link(None, None, None, False, "netifd has no interface %s" % name)
            continue
        dev = u.get("device") or itf.get("l3_device") or itf.get("device")
        if not itf.get("up"):
            out[name] = Link(dev, None, None, False, "interface %s is down" % name)
            continue
        addr = u.get("address")
        if addr is None:
            for key in ("ipv4-address", "ipv6-address"):
                lst = itf.get(key) or []
                if lst:
                    # one still preferred, before one netifd keeps deprecated ("preferred": 0)
                    # after a prefix change, in whatever order it lists them
                    lst = [a for a in lst if a.get("preferred") != 0] or lst
                    addr = lst[0].get("address")
                    break
        mtu = None
        if dev:
            st = device_state(dev, addr) if addr else None
            mtu = st.mtu if st is not None else None
        out[name] = Link(dev, addr, mtu, addr is not None,
                         None if addr else "interface %s has no address" % name)
    return out


class NetifdSource:
    """OpenWrt's netifd, asked through ubus."""

    name = "netifd"
    sock = None

    def __init__(self, uplinks_cfg, ubus="ubus"):
        self.cfg = uplinks_cfg
        self.ubus = ubus

    def scan(self):
        """OSError if ubus fails or does not answer within UBUS_TIMEOUT_S (mastd waits that long
        at most: it runs in the loop); ValueError if its answer is not what netifd writes."""
        try:
            r = subprocess.run([self.ubus, "call", "network.interface", "dump"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, universal_newlines=True, timeout=UBUS_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            raise OSError("ubus call network.interface dump: no answer within %g s (is ubusd or "
                          "netifd hung? `ubus call network.interface dump` shows it)" % UBUS_TIMEOUT_S)
        if r.returncode != 0:
            raise OSError("ubus call network.interface dump: %s" % (r.stderr.strip() or r.returncode))
        doc = json.loads(r.stdout)
        if not isinstance(doc, dict):
            raise ValueError("ubus call network.interface dump: not a JSON object")
        return parse_netifd_dump(doc, self.cfg)

    # rtnetlink as well, as the linux source: an address that leaves DAD (IPv6: tentative, when
    # the hotplug event came and its bind() failed, EADDRNOTAVAIL) or changes without an event
    # is scanned again; else that uplink stayed down until the next hotplug event
    open_watch = LinuxSource.open_watch
    drain = LinuxSource.drain
    close = LinuxSource.close


def have_ubus():
    for d in os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin").split(os.pathsep):
        if os.access(os.path.join(d, "ubus"), os.X_OK):
            return True
    return False
