# An example app (the hook: board/hook.py): every interval_ms it sends the peer a
# telemetry record, while the association is up. The payload starts with the test
# stream's header (runtime/stream.py: "S", a sequence number, the send time), so
# the far side can count what arrived and what was lost across a failover, then
# carries a few readings as JSON:
#
#   "S" | seq u32 | t_ms u64 | {"up":<uplinks up>,"free":<heap bytes free>}
#
# Datagrams the peer sends back are counted (a real app would act on them).
#
# The header is written here, not by runtime/stream.py's encode (whose decode reads it, and
# tests/board/test_telemetry.py checks that it does): importing that module for one line
# would keep all its code (the Stream class) in a board's heap for the app's whole life.


class Telemetry:
    def __init__(self, mast, interval_ms=1000, peer=None):
        self.mast = mast
        self.interval = interval_ms
        self.peer = peer
        self.seq = 0
        self.sent = 0
        self.refused = 0
        self.received = 0
        self.next = None

    def tick(self, now):
        if self.next is None:
            self.next = now
        if now >= self.next:
            if self.mast.up(self.peer):
                free = -1  # the readings (here, not in a method: each method costs the app heap)
                try:
                    import gc

                    free = gc.mem_free()
                except (ImportError, AttributeError):
                    pass
                payload = (b"S" + (self.seq & 0xFFFFFFFF).to_bytes(4, "big") + now.to_bytes(8, "big")
                           + b'{"free":%d}' % free)
                if self.mast.send(payload, self.peer):
                    self.sent += 1
                else:
                    self.refused += 1
                self.seq += 1
            self.next += self.interval
            if self.next <= now:  # fell behind (a long flash write): skip, don't burst
                self.next = now + self.interval
        return self.next - now

    def on_data(self, peer, payload):
        self.received += 1

    def status(self):
        return {"interval_ms": self.interval, "seq": self.seq, "sent": self.sent,
                "refused": self.refused, "received": self.received}


# the hook's start(mast): the class itself makes the app (no function of its own to keep)
start = Telemetry
