# The runtime's code for an uplink's coming and going (runtime/driver.py's Runtime.add_uplink
# and remove_uplink): open and bind its socket, tell the core, close it. A board runs it at
# boot and when an uplink comes up or goes down, so the Runtime loads this module for the call
# and, on MicroPython, forgets it after: its code takes no heap the rest of the time
# (docs/RUNTIME.md, "Memory").
#
# Restricted Python: the same file runs on CPython and the MicroPython unix port.

import sys
import socket

from mast.compat import const
from mast.addr import fmt
from . import driver

_SO_BINDTODEVICE = const(25)  # Linux; CPython's socket module may lack the name
_IPV6_V6ONLY = const(26)  # Linux (IPPROTO_IPV6 41); MicroPython's socket module lacks both


def add_uplink(rt, name, bind, priority, cost, device, via, public):
    """Open the uplink's socket and tell the core. bind: (ip, port) (port 0: any;
    CPython only, unless public is given). via: the relay's inside (ip, port);
    public: the address the core advertises (required with via). Renumbering:
    call again with the new addresses (the socket is reopened if bind changes)."""
    if via is not None and driver.udpwrap is None:
        from . import udpwrap

        driver.udpwrap = udpwrap
    old = rt.uplinks.get(name)
    if old is not None and old.dead is None and old.bind == bind and old.device == device:
        old.via = via
        if public is not None:
            old.public = public
        rt.ep.uplink_up(name, old.public, rt.now(), priority, cost)
        rt._flush()
        return old
    if old is not None:  # a new address or device: a new socket (the old one goes first)
        rt.uplinks.pop(name)
        if old.dead is None:
            rt._close(old)
    try:
        sock = open_socket(rt, name, bind, device)
        if bind[1] == 0:
            if hasattr(sock, "getsockname"):
                bind = (bind[0], sock.getsockname()[1])
            elif public is None:
                sock.close()
                raise ValueError("uplink %s: give bind a port (this runtime cannot read "
                                 "back the port 0 picked)" % name)
    except (OSError, ValueError):
        if old is not None and name in rt.ep.uplinks:
            rt.ep.uplink_down(name, rt.now())  # the old socket is gone either way
            rt._flush()
        raise
    if public is None:
        public = bind
    u = driver.Uplink(name, sock, bind, public, via, device)
    u.key = rt._register(sock, u)
    rt.uplinks[name] = u
    rt.ep.uplink_up(name, public, rt.now(), priority, cost)
    rt._flush()
    return u


def open_socket(rt, name, bind, device):
    fam = socket.AF_INET6 if ":" in bind[0] else socket.AF_INET
    sock = socket.socket(fam, socket.SOCK_DGRAM)
    try:
        if device:
            if sys.platform != "linux":
                raise OSError(95, "uplink %s: device binding needs Linux" % name)
            opt = getattr(socket, "SO_BINDTODEVICE", _SO_BINDTODEVICE)
            sock.setsockopt(socket.SOL_SOCKET, opt, device.encode())
        if bind[0] == "::" and (hasattr(socket, "IPV6_V6ONLY") or sys.platform == "linux"):
            # IPv6 only: a wildcard IPv6 socket also took IPv4 (Linux's default), as
            # ::ffff:a.b.c.d sources (an IPv4 address on an IPv6 uplink, which both ends
            # took for a NAT), and held the port an uplink bound to 0.0.0.0 wants
            # (EADDRINUSE)
            sock.setsockopt(getattr(socket, "IPPROTO_IPV6", 41),
                            getattr(socket, "IPV6_V6ONLY", _IPV6_V6ONLY), 1)
        sock.bind(rt._sockaddr(bind))
    except OSError as e:
        sock.close()
        raise OSError(driver._errno(e), "uplink %s: cannot bind to %s%s (%s)" % (
            name, fmt(bind), " on " + device if device else "", driver._errname(e)))
    if rt.rcvbuf:
        set_rcvbuf(sock, rt.rcvbuf)
    if fam == socket.AF_INET and sys.platform == "linux":
        # no DF: a link of smaller MTU on the way fragments a datagram instead of dropping it
        # (Linux sets DF on UDP; its ICMP is often filtered, and the path, whose small probes
        # pass, stayed primary while every large datagram was lost)
        try:
            sock.setsockopt(0, 10, 0)  # IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_DONT
        except (OSError, ValueError, TypeError):
            pass
    sock.setblocking(False)
    return sock


def remove_uplink(rt, name):
    """The uplink went away: close its socket and tell the core."""
    u = rt.uplinks.pop(name, None)
    if u is None:
        raise ValueError("no uplink %r" % name)
    rt._close(u)
    if name in rt.ep.uplinks:
        rt.ep.uplink_down(name, rt.now())
    rt._flush()


def set_rcvbuf(sock, size):
    """SO_RCVBUF (Linux numbers where the module lacks the names); as root the force variant
    may exceed net.core.rmem_max. Best effort: a port without it keeps its own buffer."""
    for opt in (33, getattr(socket, "SO_RCVBUF", 8)):  # SO_RCVBUFFORCE, SO_RCVBUF
        try:
            sock.setsockopt(getattr(socket, "SOL_SOCKET", 1), opt, size)
            return True
        except (OSError, ValueError, TypeError):
            pass
    return False
