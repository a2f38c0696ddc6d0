# Exclusive routing: one uplink at a time, for ports whose IP stack routes by its
# default interface only (MicroPython's own lwIP on rp2, stm32, mimxrt: a socket
# bound to one interface's address still leaves through the default interface,
# and every interface that comes up makes itself the default). Two uplinks up at
# once would send each other's packets with the wrong source address.
#
# So the other uplinks are held in standby (down, their interface off, a modem
# switched off), and the active one is the best by priority that works. When it
# fails - a connect attempt fails, its link drops, it is held down, or it carries
# no working MAST path for OUTAGE_ROTATE_MS - the next one in priority order is
# brought up; MAST keeps the association across the change (SET with the new
# address). There is no automatic failback: testing a better uplink would mean
# taking the working one down. `uplink NAME up` on the console makes NAME active.

OUTAGE_ROTATE_MS = 15000
_ESTABLISHED = 2  # mast.assoc.ESTABLISHED


class Exclusive:
    def __init__(self, board):
        self.board = board
        self.active = None
        self.active_fail = 0
        self.outage_since = None

    def candidates(self):
        b = self.board
        raw = b.running or {}
        names = [n for n in b.managers if b.managers[n].admin]
        names.sort(key=lambda n: (b.prio_cost(n, raw)[0], n))
        return names

    def start(self, now):
        c = self.candidates()
        if c:
            self.activate(c[0], now)

    def activate(self, name, now):
        ms = self.board.managers
        for n in ms:
            ms[n].standby = n != name
        m = ms[name]
        if name != self.active and m.state == "down":  # (now, not at its back-off's end)
            m.next_try = now
        self.active = name
        self.active_fail = m.failures
        self.outage_since = None

    def step(self, now):
        b = self.board
        m = b.managers.get(self.active)
        why = None
        if m is None or not m.admin:
            why = "held down"
        elif m.failures > self.active_fail or m.state == "unconfigured":
            why = m.error or "failed"
        elif m.state == "up" and b.ep is not None:
            a = b.ep.association()
            if a is not None and a.state == _ESTABLISHED and a.primary is None:
                if self.outage_since is None:
                    self.outage_since = now
                elif now - self.outage_since >= OUTAGE_ROTATE_MS:
                    why = "no working path for %d s" % (OUTAGE_ROTATE_MS // 1000)
            else:
                self.outage_since = None
        if why is None:
            return
        c = self.candidates()
        if not c:
            return
        nxt = c[(c.index(self.active) + 1) % len(c)] if self.active in c else c[0]
        b.emit({"event": "uplink_rotated", "from": self.active, "to": nxt, "reason": why})
        self.activate(nxt, now)
