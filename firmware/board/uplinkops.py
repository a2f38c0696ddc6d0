# The uplink managers' ops (uplinks.py): making a manager, and what the console's `apply` and
# `uplink` ops do to one (new settings, held down or released, a sim uplink renumbered).
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
