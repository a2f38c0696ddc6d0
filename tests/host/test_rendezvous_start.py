"""An endpoint file's "presence" object, through runtime/rendezvous.py's client() and start(),
to what the presence client sends and connects: the wiring between the checked settings and the
client (tests/core/test_presence_client.py tests the client alone). In-process, on a stand-in
core (presence_fake.FakeEndpoint) and a runtime clock the test moves; the DNS is a function."""

import base64
import json
import os
import time

from presence import msg
from presence_fake import FakeEndpoint
from runtime import endpoint_main, rendezvous

PSK = base64.b64encode(bytes(range(32))).decode()
KEY = base64.b64encode(bytes(range(1, 33))).decode()
PRES = ("127.0.0.9", 6279)  # a's presence server, from the SRV record of a's own name


class Clock:
    """What start() uses of the runtime: now() and run_timers()."""

    def __init__(self, p):
        self.p = p
        self.t = 1000

    def now(self):
        return self.t

    def run_timers(self):
        t = self.p.next_timer()
        if t is not None and t <= self.t:
            self.p.handle_timer(self.t)

    def run(self, until):
        for _ in range(1000):  # bounded
            t = self.p.next_timer()
            if t is None or t > until:
                break
            self.t = max(self.t, t)
            self.p.handle_timer(self.t)
        self.t = until


def _setup(tmp_path, resolver, **presence):
    doc = {"mast": {"name": "a", "profile": "fast",
                    "peers": {"b": {"psk": PSK, "dns": "b.example", "port": 7000},
                              "c": {"psk": PSK, "dns": "c.example", "addresses": ["127.0.0.3:6278"]}}},
           "uplinks": {"eth": {"bind": "127.0.0.1:0"}}, "connect": ["b", "c"],
           "presence": {"key": KEY, "counter_file": str(tmp_path / "presence.ctr")}}
    doc["presence"].update(presence)
    path = tmp_path / "e.json"
    path.write_text(json.dumps(doc))
    cfg = endpoint_main.load(str(path))
    ep = FakeEndpoint("a")
    ep.uplink_up("eth", ("127.0.0.1", 6278), 0)
    p = rendezvous.client(ep, cfg["presence"])
    p.resolver = resolver  # (the DNS: rendezvous.resolver_for's own is tested in test_rendezvous_dns)
    rt = Clock(p)
    return cfg, ep, p, rt


def test_the_presence_settings_reach_the_client_it_registers_at_its_srv_server_and_connects_by_dns(tmp_path):
    asked = []

    def resolver(name, port):
        asked.append((name, port))
        if name == "a":  # our own name: its SRV record names our presence server
            return {"addresses": [], "servers": [PRES]}
        return {"addresses": [("127.0.0.2", port)], "servers": [PRES]}

    wall = int(time.time() * 1000)
    cfg, ep, p, rt = _setup(tmp_path, resolver)
    assert cfg["connect"] == ["c"]  # c has addresses: connected by the runtime at once, not after DNS
    rendezvous.start(p, rt, cfg)
    rt.run(rt.t + 100)
    out = p.datagrams_to_send()
    regs = [(dst, msg.parse(d)[1]) for u, dst, d in out if d[1] == msg.REGISTER]
    assert [dst for dst, c in regs] == [PRES], out  # at the server our own name's SRV gave
    assert regs[0][1] >= wall  # counters follow the wall clock: above all those before a restart
    stored = int((tmp_path / "presence.ctr").read_text())
    assert stored > regs[0][1]  # the counter floor is reserved ahead in the counter file
    assert ("b.example", 7000) in asked  # at the peer's own port...
    assert ep.connects == [("b", [("127.0.0.2", 7000)])]  # ...and connected, as "connect" says


def test_a_blocking_lookup_is_timed_by_the_runtimes_clock(tmp_path):
    # a board's getaddrinfo blocks: the retry after a failed lookup counts from its end
    calls = []

    def resolver(name, port):
        calls.append((name, rt.t))
        rt.t += 5000  # the lookup took 5 s of the runtime's clock
        raise OSError("no answer from the DNS server")

    cfg, ep, p, rt = _setup(tmp_path, resolver, server="127.0.0.9", watch=["b"])
    t0 = rt.t
    rendezvous.start(p, rt, cfg)
    rt.run(t0 + 20000)
    assert calls == [("b.example", t0), ("b.example", t0 + 7000), ("b.example", t0 + 16000)], calls


def test_a_counter_file_write_that_fails_part_way_leaves_the_old_floor(tmp_path, monkeypatch):
    # a full flash (or a reset) in the middle of a write: the file must still hold the old
    # floor, not a truncated number that would start the counters below those already sent
    path = str(tmp_path / "presence.ctr")
    store = rendezvous.FileCounter(path)
    store.save(1700003600000)
    assert store.load() == 1700003600000
    real_open = open

    class HalfWritten:
        def __init__(self, f):
            self.f = f

        def write(self, text):
            self.f.write(text[:len(text) // 2])
            raise OSError(28, "No space left on device")

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

    def failing_open(name, mode="r", *a, **kw):
        f = real_open(name, mode, *a, **kw)
        return HalfWritten(f) if "w" in mode else f

    monkeypatch.setattr(rendezvous, "open", failing_open, raising=False)
    try:
        store.save(1700007200000)
    except OSError:
        pass
    monkeypatch.undo()
    assert rendezvous.FileCounter(path).load() == 1700003600000
    assert sorted(os.listdir(str(tmp_path))) == ["presence.ctr"]  # (no torn .tmp left beside it)


def test_a_counter_file_is_on_the_disk_before_it_is_renamed_over_the_old_floor(tmp_path, monkeypatch):
    # a power cut, the case this file is for (a host without a real-time clock): a rename that
    # reaches the disk before the data leaves an empty file, read as no floor at all, and the
    # counters after the reboot start at the clock's zero, below those already sent
    import os

    path = str(tmp_path / "presence.ctr")
    store = rendezvous.FileCounter(path)
    store.save(1700003600000)
    events = []
    real_fsync, real_rename = os.fsync, os.rename

    def fsync(fd):
        with open(path + ".tmp") as f:  # what the synced file holds by then
            events.append(("fsync", os.fstat(fd).st_ino == os.fstat(f.fileno()).st_ino, f.read()))
        real_fsync(fd)

    def rename(a, b):
        events.append(("rename", a, b))
        real_rename(a, b)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "rename", rename)
    store.save(1700007200000)
    monkeypatch.undo()
    assert events == [("fsync", True, "1700007200000\n"), ("rename", path + ".tmp", path)]
    assert store.load() == 1700007200000
