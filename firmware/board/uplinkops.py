# The uplink managers' ops (uplinks.py): making a manager, and what the console's `apply` and
# `uplink` ops do to one (new settings, held down or released, a sim uplink renumbered); and
# the console's `uplink` op itself (uplink() below), which runs under traffic (an uplink taken
# down to test a failover) and so loads this module alone, not consoleops.py's other ops.
#
# A board keeps uplinks.py loaded for its life: each manager's poll() runs every turn. This
# runs only at boot, in `apply` and in `uplink`, so it is here, imported for the moment and
# forgotten after with the op's module (main.ONCE): its code takes no heap the rest of the time.

from .uplinks import BACKOFF_MIN_MS, Sim


def make(name, spec, opts, hw):
    """The manager for a board definition's uplink entry (imports only what it needs)."""
    kind = spec["kind"]
    if kind == "sim":
        return Sim(name, spec, opts, hw)
    if kind == "wlan":
        from .up_wlan import Wlan

        return Wlan(name, spec, opts, hw)
    if kind == "lan":
        from .up_lan import Lan

        return Lan(name, spec, opts, hw)
    from .up_ppp import Ppp

    return Ppp(name, spec, opts, hw)


def configure(m, opts, now):
    """New settings for the uplink m; it reconnects if they matter to it. What its poll()
    would return: ("down", "reconfigured") when an up uplink went down for it, else None."""
    if m.kind == "sim":
        a = opts.get("address") or m.spec.get("address")
        m.opts = opts
        if a != m.address:
            m.address = a
        return None  # a new address shows up at the next poll, as a renumbering
    changed = opts != m.opts
    m.opts = opts
    if changed and m.state != "off":
        was_up = m.state == "up"
        m._stop(False)
        m.state = "down"
        m.addr = None
        m.next_try = now
        m.backoff = BACKOFF_MIN_MS
        if was_up:
            return ("down", "reconfigured")
    return None


def set_admin(m, up, now):
    """`uplink NAME up|down`: m held down (its next poll hangs up) or released (it connects
    at once)."""
    m.admin = up
    if up and m.state in ("down", "unconfigured"):
        m.next_try = now
        m.backoff = BACKOFF_MIN_MS


def renumber(m, addr):
    """A new local address for the sim uplink m; through a relay, a new outside address
    ("ip:port")."""
    if m.via:
        m.public = addr
    else:
        m.address = addr


def uplink(b, name, state, addr):
    """The console's `uplink NAME up|down` (held down or released) and `uplink NAME addr A` (a
    sim uplink renumbered; through a relay its outside address, which the reply names as
    "public": the address the peer sees)."""
    from .console import OpError

    m = b.managers.get(name)
    if m is None:
        raise OpError("no uplink %s (%s)" % (repr(name)[:40], ", ".join(sorted(b.managers))
                                             or "none run in maintenance mode"))
    now = b.now()
    if addr is not None:
        if m.kind != "sim":
            raise OpError("uplink %s is %s: only a sim uplink takes an address" % (name, m.kind))
        try:
            if getattr(m, "via", None):  # through a relay: the outside address changes
                from runtime.hostport import parse_hostport
                from mast.addr import fmt

                renumber(m, fmt(parse_hostport(addr)))
                if m.state == "up":
                    b._uplink_up(name, m.addr, now)
            else:
                from mast.addr import canonical

                renumber(m, canonical(addr))
        except ValueError:
            raise OpError("addr must be an IP address (through a relay: IP:PORT)")
    else:
        set_admin(m, state == "up", now)
        if b.excl is not None and state == "up":
            b.excl.activate(name, now)
    b.step(now)
    r = {"name": name, "state": m.state, "admin": m.admin, "addr": m.addr}
    if getattr(m, "via", None):
        r["public"] = m.public  # through a relay: the address the peer sees
    return r
