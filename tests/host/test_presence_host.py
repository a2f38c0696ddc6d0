"""The presence server on real sockets (127.0.0.x only): `mast presence`, mastd's PresenceHost,
the endpoint file's "presence" object, and two endpoint processes that find each other again
through presence after both moved at once. Every loop is bounded in turns and in time."""

import base64
import io
import json
import os
import select
import signal
import socket
import subprocess
import sys
import time

import pytest

from presence import msg
from mastd.presence_host import PresenceHost, parse_listen
from presence.conf import check as check_presence_conf
from runtime import endpoint_main, rendezvous
from runtime.runconfig import FileError

from test_mastd_control import BIND_TO_LO, can_bind_to_lo

pytestmark = pytest.mark.usefixtures("private_files")  # (conftest: key files are 0600)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HOST_TOOLS = os.path.join(ROOT, "host-tools")
FIRMWARE = os.path.join(ROOT, "firmware")
if HOST_TOOLS not in sys.path:
    sys.path.insert(0, HOST_TOOLS)

PSK = base64.b64encode(bytes(range(32))).decode()
KEYS = {n: bytes([(i * 7 + len(n) * 13) & 255 for i in range(32)]) for n in ("a", "b", "c", "watcher")}
B64 = {n: base64.b64encode(k).decode() for n, k in KEYS.items()}


def presence_conf(**kw):
    doc = {"names": {n: {"key": B64[n]} for n in ("a", "b", "watcher")}}
    doc.update(kw)
    return doc


class Requester:
    """A presence requester on its own UDP socket: sends sealed requests, reads answers."""

    def __init__(self, name, key, bind="127.0.0.1", counter=None):
        self.name = name
        self.up, self.down = msg.keys(key, name)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((bind, 0))
        self.counter = counter or int(time.time() * 1000)

    def send(self, server, ptype, body):
        self.counter += 1
        pkt = msg.seal(self.up, ptype, self.counter, self.name, body)
        self.sock.sendto(pkt, server)
        return pkt

    def answer(self, timeout=5.0, pump=None):
        """-> (type, counter, body) of the next answer, or None after timeout. Looks at least
        once, however late this thread runs: an answer already there is never missed."""
        end = time.monotonic() + timeout
        while True:
            if pump is not None:
                pump()
            r, _, _ = select.select([self.sock], [], [], 0.02)
            if r:
                data, _ = self.sock.recvfrom(4096)
                ptype, counter, name, body = msg.parse(data)
                assert name == self.name and msg.verify(self.down, data)
                return ptype, counter, bytes(body)
            if time.monotonic() >= end:
                return None

    def close(self):
        self.sock.close()


def host_on_loopback(tmp_path=None, **kw):
    conf = check_presence_conf(presence_conf(**kw))
    h = PresenceHost(conf, ("127.0.0.1", 0))
    h.open()
    return h


def pump_host(h):
    def pump():
        r, _, _ = select.select([h.sock], [], [], 0)
        if r:
            h.on_readable()
        h.tick()

    return pump


# ---- PresenceHost (mastd's and `mast presence`'s socket around the sans-IO server) ----------


def test_the_host_answers_register_and_lookup_and_nothing_else():
    h = host_on_loopback()
    pump = pump_host(h)
    a, b = Requester("a", KEYS["a"]), Requester("b", KEYS["b"])
    stranger = Requester("a", bytes(32))
    try:
        a.send(h.listen, msg.REGISTER, msg.enc_register(60, [(("192.0.2.10", 6278), 0, 0)]))
        ptype, counter, body = a.answer(pump=pump)
        assert (ptype, counter) == (msg.REGISTER_ACK, a.counter)
        assert msg.dec_register_ack(body) == (60, a.sock.getsockname())
        b.send(h.listen, msg.LOOKUP, msg.enc_lookup("a"))
        rec = msg.dec_record_only(b.answer(pump=pump)[2])
        assert rec == (msg.REGISTERED, "a", 60, a.sock.getsockname(), [(("192.0.2.10", 6278), 0, 0)])
        stranger.send(h.listen, msg.REGISTER, msg.enc_register(60, [(("192.0.2.66", 6278), 0, 0)]))
        replay = a.send(h.listen, msg.LOOKUP, msg.enc_lookup("b"))
        assert a.answer(pump=pump)[0] == msg.LOOKUP_ACK
        a.sock.sendto(replay, h.listen)
        stranger.sock.sendto(b"\x50" + bytes(100), h.listen)
        assert stranger.answer(0.3, pump) is None and a.answer(0.3, pump) is None
        st = h.status()
        assert st["counters"]["mac"] == 1 and st["counters"]["replay"] == 1
        assert st["names"]["a"]["addresses"] == ["192.0.2.10:6278"]
    finally:
        for r in (a, b, stranger):
            r.close()
        h.close()


def test_the_rate_limit_holds_per_name_on_the_socket():
    # (the host's clock stands still: with 1 request a second refilled, a loaded machine that
    # took a second over the ten would let a fourth through)
    h = PresenceHost(check_presence_conf(presence_conf(rate=1, burst=3)), ("127.0.0.1", 0),
                     clock=lambda: 1000000)
    h.open()
    pump = pump_host(h)
    a = Requester("a", KEYS["a"])
    b = Requester("b", KEYS["b"])
    try:
        for _ in range(10):
            a.send(h.listen, msg.LOOKUP, msg.enc_lookup("b"))
        end = time.monotonic() + 10
        while h.status()["counters"].get("rx", 0) < 10 and time.monotonic() < end:
            pump()  # until all ten are processed: their answers, if any, are sent by then
        got = 0
        for _ in range(10):
            if a.answer(0.2) is None:
                break
            got += 1
        assert got == 3 and h.status()["counters"]["rate_limited"] == 7
        b.send(h.listen, msg.LOOKUP, msg.enc_lookup("a"))  # another name has its own budget
        assert b.answer(2, pump)[0] == msg.LOOKUP_ACK
    finally:
        a.close()
        b.close()
        h.close()


def test_the_state_file_keeps_old_requests_refused_across_a_restart(tmp_path):
    state = str(tmp_path / "state.json")
    h = host_on_loopback(state=state)
    a = Requester("a", KEYS["a"])
    try:
        pkt = a.send(h.listen, msg.REGISTER, msg.enc_register(60, []))
        assert a.answer(pump=pump_host(h))[0] == msg.REGISTER_ACK
        h.close()
        assert json.load(open(state))["floors"] == {"a": a.counter}
        h = host_on_loopback(state=state)
        a.sock.sendto(pkt, h.listen)  # the same REGISTER, captured before the restart
        assert a.answer(0.3, pump_host(h)) is None
        assert h.status()["counters"]["replay"] == 1
    finally:
        a.close()
        h.close()


def test_a_name_taken_out_of_the_configuration_and_put_back_still_refuses_its_old_requests(tmp_path):
    # a REGISTER captured, then withdrawn; the server restarted without the name (another
    # name's request makes it write its state), then with it again, same key: the captured
    # REGISTER replayed must not bring the withdrawn registration back (before: the state
    # file kept only the names served, so the name's floor was gone and the replay taken)
    state = str(tmp_path / "state.json")
    h = host_on_loopback(state=state)
    a = Requester("a", KEYS["a"])
    b = Requester("b", KEYS["b"])
    try:
        captured = a.send(h.listen, msg.REGISTER, msg.enc_register(60, [(("192.0.2.10", 6278), 0, 0)]))
        assert a.answer(pump=pump_host(h))[0] == msg.REGISTER_ACK
        a.send(h.listen, msg.REGISTER, msg.enc_register(0, []))
        assert a.answer(pump=pump_host(h))[0] == msg.REGISTER_ACK
        h.close()
        conf = check_presence_conf({"names": {"b": {"key": B64["b"]}}, "state": state})
        h = PresenceHost(conf, ("127.0.0.1", 0))  # "a" is not served now
        h.open()
        b.send(h.listen, msg.LOOKUP, msg.enc_lookup("a"))
        assert b.answer(pump=pump_host(h))[0] == msg.LOOKUP_ACK  # (a state write)
        h.close()
        h = host_on_loopback(state=state)  # "a" served again, with the same key
        a.sock.sendto(captured, h.listen)
        assert a.answer(0.3, pump_host(h)) is None
        st = h.status()
        assert st["counters"] == {"rx": 1, "replay": 1}, st["counters"]
        assert st["names"]["a"]["registered"] is False and st["names"]["a"]["addresses"] == []
        assert json.load(open(state))["floors"] == {"a": a.counter, "b": b.counter}
        # and the name's own next request is taken as ever
        a.send(h.listen, msg.LOOKUP, msg.enc_lookup("b"))
        assert a.answer(pump=pump_host(h))[0] == msg.LOOKUP_ACK
    finally:
        a.close()
        b.close()
        h.close()


def test_the_state_is_on_disk_before_the_answer_leaves_and_junk_never_writes_it(tmp_path):
    state = str(tmp_path / "state.json")
    h = host_on_loopback(state=state)
    a, stranger = Requester("a", KEYS["a"]), Requester("a", bytes(32))
    sent = []
    real_send = h._send

    def send_and_look(dst, data):  # what the file holds at the moment each answer leaves
        sent.append(json.load(open(state))["floors"].get("a"))
        real_send(dst, data)

    h._send = send_and_look
    try:
        pump = pump_host(h)
        for i in range(3):
            a.send(h.listen, msg.LOOKUP, msg.enc_lookup("b"))
            assert a.answer(2, pump)[0] == msg.LOOKUP_ACK
            assert sent[-1] == a.counter
        writes = h.status()["host_counters"]["state_writes"]
        assert writes == 3
        for i in range(20):  # unauthenticated: no write
            stranger.send(h.listen, msg.LOOKUP, msg.enc_lookup("b"))
        end = time.monotonic() + 5
        while h.status()["counters"].get("mac", 0) < 20 and time.monotonic() < end:
            pump()
        assert h.status()["counters"]["mac"] == 20
        assert h.status()["host_counters"]["state_writes"] == writes and len(sent) == 3
    finally:
        a.close()
        stranger.close()
        h.close()


def test_the_state_file_is_private_whatever_the_umask(tmp_path):
    # (under umask 000 it was 0666: anyone on the host could lower a name's counter floor, and
    # an old request of that name was accepted once more)
    state = tmp_path / "state.json"
    old = os.umask(0)
    try:
        h = host_on_loopback(state=str(state))
        try:
            h.save_state()
        finally:
            h.close()
    finally:
        os.umask(old)
    assert oct(state.stat().st_mode & 0o777) == "0o600" and json.loads(state.read_text())["floors"] == {}


def test_requests_read_at_one_wake_are_answered_after_one_state_write(tmp_path):
    # one fsync'd write for the batch, not one a datagram (flash wear, and the loop's time)
    h = host_on_loopback(state=str(tmp_path / "state.json"))
    a = Requester("a", KEYS["a"])
    try:
        for _ in range(5):
            a.send(h.listen, msg.LOOKUP, msg.enc_lookup("b"))
        assert select.select([h.sock], [], [], 2)[0]
        h.on_readable()  # one wake
        assert [a.answer(0.5)[0] for _ in range(5)] == [msg.LOOKUP_ACK] * 5
        assert h.status()["host_counters"]["state_writes"] == 1
        assert json.load(open(str(tmp_path / "state.json")))["floors"] == {"a": a.counter}
    finally:
        a.close()
        h.close()

def test_notify_counters_stay_above_those_sent_before_a_crash_even_if_the_clock_steps_back(tmp_path, monkeypatch):
    from mastd import presence_host

    state = str(tmp_path / "state.json")
    h = host_on_loopback(state=state)
    a, b = Requester("a", KEYS["a"]), Requester("b", KEYS["b"])
    try:
        pump = pump_host(h)
        b.send(h.listen, msg.SUBSCRIBE, msg.enc_subscribe(300, "a"))
        assert b.answer(2, pump)[0] == msg.SUBSCRIBE_ACK
        a.send(h.listen, msg.REGISTER, msg.enc_register(60, [(("192.0.2.10", 6278), 0, 0)]))
        notified = []
        end = time.monotonic() + 5
        while len(notified) < 2 and time.monotonic() < end:  # the NOTIFY, sent once more unacked
            got = b.answer(0.1, pump)
            if got is not None and got[0] == msg.NOTIFY:
                notified.append(got[1])
        assert len(notified) == 2
        # one write for the SUBSCRIBE, one for the REGISTER (and a block of NOTIFY counters):
        # the NOTIFY sent again takes a counter of that block, with no write of its own
        assert h.status()["host_counters"]["state_writes"] == 2
        h.sock.close()  # a crash: no close(), no final write
        h.sock = None
        h._unlock_state()  # (its lock goes with its descriptors)
        monkeypatch.setattr(presence_host, "wall_ms", lambda: 1000)  # the clock stepped back
        h = host_on_loopback(state=state)
        b.send(h.listen, msg.SUBSCRIBE, msg.enc_subscribe(300, "a"))
        ptype, counter, body = b.answer(2, pump_host(h))
        floor = msg.dec_subscribe_ack(body)[1]
        assert ptype == msg.SUBSCRIBE_ACK and floor >= max(notified)
    finally:
        a.close()
        b.close()
        h.close()


def test_a_subscribe_acks_floor_stays_above_after_a_crash_and_a_clock_step_back_with_no_notify_sent(tmp_path, monkeypatch):
    # the floor a SUBSCRIBE-ACK hands out is the server's NOTIFY counter, which starts at its
    # wall clock: a subscriber keeps it and refuses NOTIFYs (and records) at or below it. A server
    # whose clock had run ahead (a router without RTC) and is stepped back must come back above
    # it, even if it never sent a NOTIFY (the counter was never above its start)
    from mastd import presence_host

    state = str(tmp_path / "state.json")
    monkeypatch.setattr(presence_host, "wall_ms", lambda: 1700000000000 + 365 * 86400000)
    h = host_on_loopback(state=state)
    b = Requester("b", KEYS["b"])
    try:
        b.send(h.listen, msg.SUBSCRIBE, msg.enc_subscribe(300, "a"))
        ptype, counter, body = b.answer(2, pump_host(h))
        before = msg.dec_subscribe_ack(body)[1]
        assert ptype == msg.SUBSCRIBE_ACK
        h.sock.close()  # a crash: no close(), no final write
        h.sock = None
        h._unlock_state()  # (its lock goes with its descriptors)
        monkeypatch.setattr(presence_host, "wall_ms", lambda: 1700000000000)  # NTP: a year back
        h = host_on_loopback(state=state)
        b.send(h.listen, msg.SUBSCRIBE, msg.enc_subscribe(300, "a"))
        ptype, counter, body = b.answer(2, pump_host(h))
        assert ptype == msg.SUBSCRIBE_ACK and msg.dec_subscribe_ack(body)[1] >= before
    finally:
        b.close()
        h.close()


def test_listen_addresses_parse_with_a_default_port():
    assert parse_listen("0.0.0.0:6279") == ("0.0.0.0", 6279)
    assert parse_listen("[::]:7000") == ("::", 7000)
    assert parse_listen("192.0.2.1") == ("192.0.2.1", 6279)
    assert parse_listen("::") == ("::", 6279) and parse_listen("[::1]") == ("::1", 6279)  # (no port: IPv6 too)
    with pytest.raises(ValueError, match="expected ADDR:PORT"):
        parse_listen("presence.example:6279")


# ---- `mast presence` ------------------------------------------------------------------------


def run_cli(*args):
    from mast_tools import cli

    out, err = io.StringIO(), io.StringIO()
    old = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = out, err
    try:
        try:
            rc = cli.main(list(args))
        except SystemExit as e:
            rc = e.code
    finally:
        sys.stdout, sys.stderr = old
    return rc, out.getvalue(), err.getvalue()


def test_mast_presence_help_shows_an_example():
    rc, out, err = run_cli("presence", "--help")
    assert rc == 0 and "mast presence --listen 0.0.0.0:6279 --config presence.json" in out
    assert "_mast._udp" in out


def test_mast_presence_refuses_a_bad_config_naming_the_key(tmp_path):
    bad = tmp_path / "p.json"
    bad.write_text(json.dumps({"names": {"a": {"key": "not base64"}}}))
    rc, out, err = run_cli("presence", "--config", str(bad))
    assert rc == 1
    assert err == ("mast: presence config %s: names.a.key: must be standard base64 of exactly 32 "
                   "bytes; fix that key; the format is in `mast presence --help`\n" % bad)
    bad.write_text(json.dumps({"names": {"a": {"key": B64["a"]}}, "ratee": 3}))
    rc, out, err = run_cli("presence", "--config", str(bad))
    assert rc == 1 and "ratee: unknown key" in err and "Traceback" not in err


@pytest.mark.parametrize("mode, warning", [
    (0o644, "mast: warning: %s holds keys and its mode 0644 lets its group and others read them; chmod 600 %s\n"),
    (0o600, "")])
def test_mast_presence_warns_when_others_may_read_its_keys(tmp_path, mode, warning):
    cfg = tmp_path / "p.json"
    cfg.write_text(json.dumps(presence_conf()))
    cfg.chmod(mode)
    rc, out, err = run_cli("presence", "--listen", "127.0.0.1:0", "--config", str(cfg), "--duration",
                           "0.2", "--no-stdin", "--json")
    assert rc == 0 and json.loads(out)["reason"] == "duration"
    assert [x for x in err.splitlines(True) if not x.startswith("{")] == (
        [warning % (cfg, cfg)] if warning else [])
    assert B64["a"] not in err


def test_mast_presence_refuses_a_config_that_is_not_text_without_showing_its_bytes(tmp_path):
    # load_config read it as text outside its checks: a traceback quoting a byte of the file
    bad = tmp_path / "p.bin"
    bad.write_bytes(b"\xc3\x28" + bytes(range(128, 200)))
    rc, out, err = run_cli("presence", "--config", str(bad), "--duration", "0.5", "--no-stdin")
    assert rc == 1 and out == ""
    assert err == ("mast: presence config %s: file: %s is not valid JSON (not UTF-8 text); fix the "
                   "file; the format is in `mast presence --help`\n" % (bad, bad))


def test_mast_presence_serves_until_its_input_ends_and_prints_events(tmp_path):
    cfg = tmp_path / "p.json"
    cfg.write_text(json.dumps(presence_conf()))
    p = subprocess.Popen([sys.executable, "-m", "mast_tools", "presence", "--listen", "127.0.0.1:0",
                          "--config", str(cfg), "--duration", "20"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         universal_newlines=True, env=dict(os.environ, PYTHONPATH=HOST_TOOLS))
    a = Requester("a", KEYS["a"])
    try:
        started = json.loads(p.stdout.readline())
        assert started["event"] == "started" and started["names"] == ["a", "b", "watcher"]
        server = parse_listen(started["listen"])
        a.send(server, msg.REGISTER, msg.enc_register(30, [(("192.0.2.10", 6278), 0, 0)]))
        assert a.answer(2)[0] == msg.REGISTER_ACK
        ev = json.loads(p.stdout.readline())
        assert (ev["event"], ev["name"], ev["ttl"], ev["addresses"]) == ("registered", "a", 30, ["192.0.2.10:6278"])
        p.stdin.write('{"op": "status"}\n')
        p.stdin.flush()
        st = json.loads(p.stdout.readline())
        assert st["reply"] == "status" and st["status"]["names"]["a"]["registered"]
        p.stdin.close()  # end of input ends it
        last = json.loads(p.stdout.readline())
        assert last["event"] == "stopped" and last["reason"] == "eof"
        assert p.wait(10) == 0
    finally:
        a.close()
        if p.poll() is None:
            p.kill()
            p.wait()


class PresenceProcess:
    """`mast presence` as a real process on 127.0.0.1 (any free port), JSON lines both ways."""

    def __init__(self, config):
        self.p = subprocess.Popen([sys.executable, "-m", "mast_tools", "presence", "--listen", "127.0.0.1:0",
                                   "--config", str(config), "--duration", "60"],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  universal_newlines=True, env=dict(os.environ, PYTHONPATH=HOST_TOOLS))
        started = json.loads(self.p.stdout.readline())
        assert started["event"] == "started", started
        self.server = parse_listen(started["listen"])

    def status(self):
        self.p.stdin.write('{"op": "status"}\n')
        self.p.stdin.flush()
        for _ in range(100):  # events may come first
            line = json.loads(self.p.stdout.readline())
            if line.get("reply") == "status":
                return line["status"]
        raise AssertionError("no status reply")

    def kill(self):
        if self.p.poll() is None:
            self.p.kill()
        self.p.wait(10)
        for f in (self.p.stdin, self.p.stdout, self.p.stderr):
            f.close()


def test_a_register_replayed_after_a_crash_cannot_bring_back_a_withdrawn_registration(tmp_path):
    # issue 15, point 6: REGISTER, withdraw, SIGKILL right after the answer, restart, and
    # the captured REGISTER replayed: refused, counted, and the name stays withdrawn
    cfg = tmp_path / "p.json"
    cfg.write_text(json.dumps(presence_conf(state=str(tmp_path / "state.json"))))
    a = Requester("a", KEYS["a"])
    srv = PresenceProcess(cfg)
    try:
        captured = a.send(srv.server, msg.REGISTER, msg.enc_register(60, [(("192.0.2.10", 6278), 0, 0)]))
        assert a.answer(5)[0] == msg.REGISTER_ACK
        a.send(srv.server, msg.REGISTER, msg.enc_register(0, []))
        ptype, counter, body = a.answer(5)
        assert (ptype, counter, msg.dec_register_ack(body)[0]) == (msg.REGISTER_ACK, a.counter, 0)
        srv.kill()  # SIGKILL at once: no clean exit, no final write
        srv = PresenceProcess(cfg)
        a.sock.sendto(captured, srv.server)
        end = time.monotonic() + 10
        st = srv.status()
        while st["counters"].get("rx", 0) < 1 and time.monotonic() < end:
            time.sleep(0.02)
            st = srv.status()
        assert st["counters"] == {"rx": 1, "replay": 1}
        assert st["names"]["a"]["registered"] is False and st["names"]["a"]["addresses"] == []
        assert a.answer(0.2) is None  # and nothing was answered
    finally:
        a.close()
        srv.kill()


# ---- the endpoint file's "presence" object --------------------------------------------------


def endpoint_doc(name, peers, uplinks, **extra):
    doc = {"mast": {"name": name, "profile": "fast", "peers": peers},
           "uplinks": dict((u, {"bind": b}) for u, b in uplinks.items())}
    doc.update(extra)
    return doc


def load_doc(doc, tmp_path):
    path = tmp_path / "e.json"
    path.write_text(json.dumps(doc))
    return endpoint_main.load(str(path))


@pytest.mark.parametrize("presence,key,message", [
    ({}, "presence.key", "required"),
    ({"key": "xx"}, "presence.key", "must be standard base64 of exactly 32 bytes"),
    ({"key": PSK, "sever": "1.2.3.4:6279"}, "presence.sever", "unknown key"),
    ({"key": PSK, "server": "pres.example:6279"}, "presence.server", "not a numeric"),
    ({"key": PSK, "server": "[192.0.2.9]"}, "presence.server", "expected [IPV6]:PORT"),
    ({"key": PSK, "watch": ["nobody"]}, "presence.watch", "unknown peer 'nobody'"),
    ({"key": PSK, "ttl": 5}, "presence.ttl", "from 10 to 65535"),
    ({"key": PSK, "ttl": 65536}, "presence.ttl", "from 10 to 65535"),
])
def test_a_bad_presence_object_is_refused_naming_the_key(tmp_path, presence, key, message):
    doc = endpoint_doc("a", {"b": {"psk": PSK, "addresses": ["127.0.0.2:6278"]}},
                       {"eth": "127.0.0.1:0"}, presence=presence)
    with pytest.raises(FileError) as e:
        load_doc(doc, tmp_path)
    assert e.value.key == key and message in str(e.value)


def test_a_dns_named_peer_may_be_in_connect_and_presence_defaults_are_filled(tmp_path):
    doc = endpoint_doc("a", {"b": {"psk": PSK, "dns": "b.mast.test"}, "c": {"psk": PSK, "addresses": ["127.0.0.3:6278"]}},
                       {"eth": "127.0.0.1:0"}, connect=["b", "c"],
                       presence={"key": PSK, "server": ["127.0.0.9", "[2001:DB8::9]", "[2001:db8::8]:7000"],
              "resolver": "127.0.0.53"})
    cfg = load_doc(doc, tmp_path)
    assert cfg["connect"] == ["c"]  # runconfig's part: peers with addresses
    p = cfg["presence"]
    # ("[2001:DB8::9]" without a port was refused: expected [IPV6]:PORT)
    assert p["servers"] == [("127.0.0.9", 6279), ("2001:db8::9", 6279), ("2001:db8::8", 7000)]
    assert (p["resolver"], p["ttl"], p["connect"]) == (("127.0.0.53", 53), 120, ["b"])
    assert p["watch"] == ["b", "c"]
    only_dns = load_doc(endpoint_doc("a", {"b": {"psk": PSK, "dns": "b.mast.test"}}, {"eth": "127.0.0.1:0"},
                                     connect=["b"]), tmp_path)
    assert only_dns["presence"]["key"] is None and only_dns["presence"]["watch"] == ["b"]
    plain = load_doc(endpoint_doc("a", {"b": {"psk": PSK, "addresses": ["127.0.0.2:6278"]}}, {"eth": "127.0.0.1:0"}),
                     tmp_path)
    assert plain["presence"] is None


# ---- two endpoint processes and a presence server on loopback: the double jump ---------------


def _lines(out):
    return [json.loads(x) for x in out]


def test_two_endpoints_that_both_move_find_each_other_again_through_presence(tmp_path):
    port = 21000 + os.getpid() % 20000
    h = PresenceHost(check_presence_conf(presence_conf()), ("127.0.0.40", 0))
    h.open()
    server = "127.0.0.40:%d" % h.listen[1]
    a_doc = endpoint_doc("a", {"b": {"psk": PSK, "addresses": ["127.0.0.42:%d" % port]}},
                         {"eth": "127.0.0.41:%d" % port}, connect=["b"],
                         stream={"peer": "b", "rate": 50},
                         presence={"key": B64["a"], "server": server})
    b_doc = endpoint_doc("b", {"a": {"psk": PSK, "initiate": False}}, {"wan": "127.0.0.42:%d" % port},
                         presence={"key": B64["b"], "server": server})
    out_a, out_b = [], []
    pa = endpoint_main.Process(load_doc(a_doc, tmp_path), out_a.append)
    pb = endpoint_main.Process(load_doc(b_doc, tmp_path), out_b.append)

    def turn():
        for p in (pa, pb):
            p.rt.poll(1)
            if p.stream is not None:
                p.stream.tick(p.rt.now())
            p.pump()
        r, _, _ = select.select([h.sock], [], [], 0)
        if r:
            h.on_readable()
        h.tick()

    def run(pred, limit_s):
        end = time.monotonic() + limit_s
        for _ in range(100000):
            if pred() or time.monotonic() > end:
                break
            turn()
        return pred()

    def _last_reply(p):
        p.command('{"op": "presence"}')
        return json.loads((out_a if p is pa else out_b)[-1])["presence"]

    def up(p, peer):
        a = p.rt.ep.association(peer)
        return a is not None and a.state == 2 and a.primary is not None

    try:
        pb.start()
        pa.start()
        assert run(lambda: up(pa, "b") and up(pb, "a"), 10)
        assert run(lambda: h.status()["names"]["a"]["registered"] and h.status()["names"]["b"]["registered"], 5)
        ids = (_last_reply(pa)["peers"]["b"]["association"]["nonce_id"],
               _last_reply(pb)["peers"]["a"]["association"]["nonce_id"])
        assert ids[0] and ids[0] == ids[1]
        for p, u in ((pa, "eth"), (pb, "wan")):  # both lose their only address...
            p.command(json.dumps({"op": "down", "name": u}))
        run(lambda: False, 1.0)
        assert not up(pa, "b") and not up(pb, "a")
        t0 = time.monotonic()
        n0 = len(out_b)
        pb.command(json.dumps({"op": "uplink", "name": "wan", "addr": "127.0.0.52:%d" % port}))
        pa.command(json.dumps({"op": "uplink", "name": "eth", "addr": "127.0.0.51:%d" % port}))

        def data_again():
            return any(x.get("event") == "data" for x in _lines(out_b[n0:]))

        assert run(data_again, 10), "no data after both moved"
        resumed_ms = (time.monotonic() - t0) * 1000
        assert up(pa, "b") and up(pb, "a")
        now_ids = (_last_reply(pa)["peers"]["b"]["association"]["nonce_id"],
                   _last_reply(pb)["peers"]["a"]["association"]["nonce_id"])
        assert now_ids == ids  # the SAME association: same nonces, no new INIT
        ups = [x for x in _lines(out_a) + _lines(out_b) if x.get("event") == "association_up"]
        assert len(ups) == 2  # one on each end, at the start
        learnt = [x for x in _lines(out_a) if x.get("event") == "presence_peer" and
                  "127.0.0.52:%d" % port in x.get("addresses", [])]
        assert learnt, "a learnt b's new address from presence"
        st = h.status()["names"]
        assert st["a"]["addresses"] == ["127.0.0.51:%d" % port] and st["b"]["addresses"] == ["127.0.0.52:%d" % port]
        sys.stderr.write("double jump on loopback: data again %.0f ms after both came back\n" % resumed_ms)
        assert resumed_ms < 5000
    finally:
        pa.rt.shutdown()
        pb.rt.shutdown()
        h.close()


# ---- mastd hosts one --------------------------------------------------------------------------


def _mastd(*args):
    return subprocess.run([sys.executable, "-m", "mastd"] + list(args), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True, timeout=20,
                          env=dict(os.environ, PYTHONPATH=FIRMWARE))


def test_mastd_refuses_a_bad_presence_config_naming_the_key(tmp_path):
    cfg = tmp_path / "mast.json"
    cfg.write_text(json.dumps({"name": "srv", "peers": {}, "uplinks": {"lo": {"device": "lo"}}}))
    bad = tmp_path / "presence.json"
    bad.write_text(json.dumps({"names": {"a": {}}}))
    r = _mastd("--check", "--config", str(cfg), "--presence-config", str(bad))
    assert r.returncode == 1
    assert r.stderr == "mastd: presence %s: names.a.key: required: standard base64 of 32 bytes\n" % bad
    bad.write_text(json.dumps(presence_conf()))
    r = _mastd("--check", "--config", str(cfg), "--presence-config", str(bad), "--presence-listen", "nowhere")
    assert r.returncode == 1 and "expected ADDR:PORT" in r.stderr
    r = _mastd("--check", "--config", str(cfg), "--presence-config", str(bad))
    assert r.returncode == 0


def test_mastd_refuses_a_presence_config_that_nests_too_deep_naming_it(tmp_path):
    # (a RecursionError traceback, before: mastd's own file said so already)
    cfg = tmp_path / "mast.json"
    cfg.write_text(json.dumps({"name": "srv", "peers": {}, "uplinks": {"lo": {"device": "lo"}}}))
    deep = tmp_path / "presence.json"
    deep.write_text("[" * 100000 + "]" * 100000)
    r = _mastd("--check", "--config", str(cfg), "--presence-config", str(deep))
    assert (r.returncode, r.stdout, r.stderr) == (1, "", "mastd: presence %s: file: %s nests objects and "
                                                  "lists too deep for a presence configuration\n"
                                                  % (deep, deep))


@pytest.mark.skipif(not can_bind_to_lo(), reason="mastd's uplink on lo: " + BIND_TO_LO)
def _stop(p):
    """SIGTERM to mastd (it writes its state at exit), SIGKILL if it has not ended in 10 s."""
    p.send_signal(signal.SIGTERM)
    try:
        p.wait(10)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


def test_mastd_hosts_a_presence_server_and_shows_it_in_its_status(tmp_path):
    from mastd import control

    port = 22000 + os.getpid() % 20000
    cfg = tmp_path / "mast.json"
    cfg.write_text(json.dumps({"name": "srv", "port": port, "peers": {},
                               "uplinks": {"lo": {"device": "lo", "address": "127.0.0.60"}}}))
    pconf = tmp_path / "presence.json"
    pconf.write_text(json.dumps(presence_conf(state=str(tmp_path / "state.json"))))
    sock = str(tmp_path / "c.sock")
    log = open(str(tmp_path / "mastd.log"), "w")
    p = subprocess.Popen([sys.executable, "-m", "mastd", "--config", str(cfg), "--control", sock,
                          "--discovery", "linux", "--presence-config", str(pconf),
                          "--presence-listen", "127.0.0.60:%d" % (port + 1)],
                         stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ, PYTHONPATH=FIRMWARE))
    a = Requester("a", KEYS["a"])
    try:
        status = None
        end = time.monotonic() + 10
        while time.monotonic() < end and status is None:
            try:
                status = control.request(sock, {"op": "status"}, timeout=10)["status"]
            except OSError:
                time.sleep(0.1)
        assert status is not None and status["presence"]["listen"] == "127.0.0.60:%d" % (port + 1)
        a.send(("127.0.0.60", port + 1), msg.REGISTER, msg.enc_register(60, [(("192.0.2.10", 6278), 0, 0)]))
        assert a.answer(3)[0] == msg.REGISTER_ACK
        status = control.request(sock, {"op": "status"}, timeout=10)["status"]
        assert status["presence"]["names"]["a"]["addresses"] == ["192.0.2.10:6278"]
        assert [e["event"] for e in status["events"] if e["event"].startswith("presence_")] == ["presence_registered"]
    finally:
        a.close()
        _stop(p)
        log.close()
    assert json.load(open(str(tmp_path / "state.json")))["floors"]["a"] == a.counter  # written at exit


def test_an_answer_the_socket_cannot_send_is_counted_and_the_host_reads_on():
    # a send that fails (here the socket is shut for writing: EPIPE; on a router, no route or a
    # full buffer) loses that answer only: counted, the request still taken, the next one read
    h = host_on_loopback()
    pump = pump_host(h)
    a, b = Requester("a", KEYS["a"]), Requester("b", KEYS["b"])
    try:
        try:
            h.sock.shutdown(socket.SHUT_WR)
        except OSError:  # (ENOTCONN, on a socket not connected; its sends fail from now on)
            pass
        a.send(h.listen, msg.REGISTER, msg.enc_register(60, [(("192.0.2.10", 6278), 0, 0)]))
        assert a.answer(0.3, pump) is None
        b.send(h.listen, msg.LOOKUP, msg.enc_lookup("a"))
        assert b.answer(0.3, pump) is None
        st = h.status()
        assert st["host_counters"]["tx_error"] == 2, st["host_counters"]
        assert st["names"]["a"]["addresses"] == ["192.0.2.10:6278"]
    finally:
        for r in (a, b):
            r.close()
        h.close()


def _own_network(argv):
    """argv run in a network of its own (unshare -n, its loopback up): a fixed port there is
    nobody else's, and nothing it serves is reachable from outside it."""
    return ["unshare", "-n", "sh", "-c", 'ip link set lo up && exec "$@"', "sh"] + list(argv)


def _can_have_own_network():
    try:
        return subprocess.run(_own_network(["true"]), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              timeout=20).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


@pytest.mark.skipif(not can_bind_to_lo(), reason="mastd's uplink on lo: " + BIND_TO_LO)
def test_mastd_serves_presence_on_the_file_s_listen_else_on_0_0_0_0_port_6279(tmp_path):
    # docs/MASTD.md: --presence-listen, else the presence file's listen, else 0.0.0.0:6279 (every
    # address: the requesters are elsewhere); run in a network of its own, where 6279 is free
    from mastd import control

    if not _can_have_own_network():
        pytest.skip("cannot make a network namespace here (unshare -n)")
    cfg = tmp_path / "mast.json"
    cfg.write_text(json.dumps({"name": "srv", "port": 6278, "peers": {},
                               "uplinks": {"lo": {"device": "lo", "address": "127.0.0.60"}}}))
    for listen, want in ((None, "0.0.0.0:6279"), ("127.0.0.61:7000", "127.0.0.61:7000")):
        pconf = tmp_path / "presence.json"
        pconf.write_text(json.dumps(presence_conf(**({"listen": listen} if listen else {}))))
        sock = str(tmp_path / "c.sock")
        with open(str(tmp_path / "mastd.log"), "w") as log:
            p = subprocess.Popen(_own_network([sys.executable, "-m", "mastd", "--config", str(cfg),
                                               "--control", sock, "--discovery", "linux",
                                               "--presence-config", str(pconf)]),
                                 stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ, PYTHONPATH=FIRMWARE))
        try:
            status = None
            end = time.monotonic() + 10
            while time.monotonic() < end and status is None and p.poll() is None:
                try:
                    status = control.request(sock, {"op": "status"}, timeout=2)["status"]
                except OSError:
                    time.sleep(0.1)
        finally:
            _stop(p)
        assert status is not None, open(str(tmp_path / "mastd.log")).read()[-2000:]
        assert status["presence"]["listen"] == want, (listen, status["presence"])


def test_mast_presence_serves_on_0_0_0_0_port_6279_unless_told_otherwise(tmp_path):
    if not _can_have_own_network():
        pytest.skip("cannot make a network namespace here (unshare -n)")
    cfg = tmp_path / "p.json"
    cfg.write_text(json.dumps(presence_conf()))
    r = subprocess.run(_own_network([sys.executable, "-m", "mast_tools", "presence", "--config", str(cfg),
                                     "--duration", "0.3", "--no-stdin", "--json"]),
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       universal_newlines=True, env=dict(os.environ, PYTHONPATH=HOST_TOOLS), timeout=30)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["status"]["listen"] == "0.0.0.0:6279"


def test_a_state_file_with_a_counter_out_of_range_or_nested_too_deep_is_refused_cleanly(tmp_path):
    # Infinity or 1e400 escaped as OverflowError, 100,000 levels as RecursionError (a traceback
    # at start), and a counter of 2^64 started, then stopped the loop at the first NOTIFY
    from mastd.presence_host import PresenceConfigError

    state = tmp_path / "state.json"
    for text in ('{"floors": {"a": Infinity}, "notify": 0}', '{"floors": {}, "notify": 1e400}',
                 '{"floors": {}, "notify": 18446744073709551616}', '{"floors": {"a": -1}}',
                 "[" * 100000 + "]" * 100000):
        state.write_text(text)
        with pytest.raises(PresenceConfigError) as e:
            host_on_loopback(state=str(state))
        assert str(e.value).startswith("state: cannot read %s (" % state) and str(e.value).endswith("fix or remove it"), e.value


def test_a_presence_config_out_of_bounds_is_refused_naming_the_key():
    from presence.conf import PresenceConfigError

    ok = check_presence_conf(presence_conf(max_ttl=65535, rate=1, burst=10000, listen="127.0.0.1:6279"))
    assert (ok["max_ttl"], ok["rate"], ok["burst"], ok["listen"]) == (65535, 1, 10000, "127.0.0.1:6279")
    assert check_presence_conf({"names": {"a" * 63: {"key": PSK}}})["names"] == {"a" * 63: bytes(range(32))}
    d = check_presence_conf(presence_conf())  # the defaults the file's documentation gives
    assert (d["max_ttl"], d["rate"], d["burst"], d["listen"], d["state"]) == (3600, 10, 20, None, None)
    for doc, text in (
            ([presence_conf()], "file: must hold one JSON object"),
            ({"names": {}}, "names: required: an object of the names served"),
            ({"names": ["a"]}, "names: required: an object of the names served"),
            ({"names": {"a": PSK}}, "names.a: must be an object with its key"),
            ({"names": {"a b": {"key": PSK}}}, "names.a b: a name must be 1 to 63 characters of A-Za-z0-9.-"),
            ({"names": {"a" * 64: {"key": PSK}}}, "names.%s: a name must be 1 to 63 characters" % ("a" * 64)),
            ({"names": {"a": {"key": PSK, "ttl": 5}}}, "names.a.ttl: unknown key (known: key)"),
            ({"names": {"a": {}}}, "names.a.key: required: standard base64 of 32 bytes"),
            (presence_conf(max_ttl=0), "max_ttl: must be an integer from 1 to 65535"),
            (presence_conf(max_ttl=65536), "max_ttl: must be an integer from 1 to 65535"),
            (presence_conf(rate=0), "rate: must be an integer from 1 to 1000"),
            (presence_conf(burst=10001), "burst: must be an integer from 1 to 10000"),
            (presence_conf(rate=True), "rate: must be an integer from 1 to 1000"),
            (presence_conf(listen=""), "listen: must be text"),
            (presence_conf(listen=6279), "listen: must be text"),
            (presence_conf(state=""), "state: must be text")):
        with pytest.raises(PresenceConfigError) as e:
            check_presence_conf(doc)
        assert str(e.value).startswith(text), (doc, str(e.value))


# ---- `mast presence`'s process (mast_tools.presence_server) in this test's process ------------


def run_presence_process(monkeypatch, lines, duration_ms=10000, on_line=None, **kw):
    """Process.run on a host on loopback, its stdin a pipe that gets `lines` (bytes) and then
    ends -> (what it printed, as dicts; its status; the Process). Bounded by duration_ms."""
    from mast_tools.presence_server import Process

    r, w = os.pipe()
    f = os.fdopen(r, "r")
    monkeypatch.setattr(sys, "stdin", f)
    out = []

    def emit(line):
        out.append(json.loads(line))
        if on_line is not None:
            on_line(out[-1])

    h = host_on_loopback(**kw)
    p = Process(h, emit)
    try:
        os.write(w, lines)
        os.close(w)
        w = None
        status = p.run(duration_ms)
    finally:
        if w is not None:
            os.close(w)
        f.close()
    return out, status, p


def test_a_presence_command_line_nested_too_deep_is_not_json_and_the_server_runs_on(monkeypatch):
    # (a RecursionError traceback ended `mast presence`)
    deep = b'{"op": ' + b"[" * 1500 + b"]" * 1500 + b"}\n"
    out, status, p = run_presence_process(monkeypatch, deep + b'{"op": "status"}\n')
    replies = [x for x in out if "reply" in x]
    assert replies[0] == {"reply": None, "error": "not JSON"}
    assert replies[1]["reply"] == "status" and p.quit == "eof"


def test_the_presence_process_answers_every_bad_command_line_and_runs_on(monkeypatch):
    key = b"A" * 43 + b"="  # (a line that is not JSON, or an op that is an object, may hold a key)
    bad = (b'{"op": "stauts"}\n' + b"[1, 2]\n" + b"not json " + key + b"\n"
           + b'{"op": {"psk": "' + key + b'"}}\n')
    # a line too long, whose tail (after 4 x 4096 bytes: a read of its own) is a command, then
    # a line that runs
    lines = bad + b"x" * (4 * 4096 - len(bad)) + b'{"op": "quit"}\n{"op": "status"}\n'
    out, status, p = run_presence_process(monkeypatch, lines)
    replies = [x for x in out if "reply" in x]
    assert replies[0] == {"reply": "stauts", "error": "unknown op 'stauts' (known: quit, status)"}
    assert replies[1] == {"reply": None, "error": "unknown op None (known: quit, status)"}
    assert replies[2] == {"reply": None, "error": "not JSON"}
    assert replies[3] == {"reply": None, "error": "unknown op None (known: quit, status)"}
    assert key.decode() not in json.dumps(out)
    # refused once, all of it: its tail is no command of its own (here a quit)
    assert replies[4] == {"reply": None, "error": "command line too long"}
    assert replies[5]["reply"] == "status" and len(replies) == 6, replies
    assert p.quit == "eof"


def test_sigterm_ends_the_presence_process_with_its_final_status_and_leaves_the_handlers_as_they_were(monkeypatch):
    before = signal.getsignal(signal.SIGTERM)

    def on_line(obj):
        if obj.get("reply") == "status":  # (inside the loop: its handler is in place)
            os.kill(os.getpid(), signal.SIGTERM)

    out, status, p = run_presence_process(monkeypatch, b'{"op": "status"}\n', on_line=on_line)
    assert p.quit == "signal" and out[-1]["event"] == "stopped" and out[-1]["reason"] == "signal"
    assert signal.getsignal(signal.SIGTERM) is before


def test_mast_presence_with_no_stdin_runs_its_duration_on_the_address_given(tmp_path):
    # (its input at its end from the start, as under a service manager: --no-stdin runs on)
    cfg = tmp_path / "p.json"
    cfg.write_text(json.dumps(presence_conf()))
    r = subprocess.run([sys.executable, "-m", "mast_tools", "presence", "--listen", "127.0.0.1:0",
                        "--config", str(cfg), "--duration", "0.3", "--no-stdin", "--json"],
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       universal_newlines=True, env=dict(os.environ, PYTHONPATH=HOST_TOOLS), timeout=30)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["reason"] == "duration", doc
    assert doc["status"]["listen"].startswith("127.0.0.1:") and not doc["status"]["listen"].endswith(":0")
    lines = [json.loads(x) for x in r.stderr.splitlines()]
    assert [x["event"] for x in lines] == ["started", "stopped"], lines


def test_a_dual_stack_host_answers_an_ipv4_requester_at_its_ipv4_address():
    # listen [::] (v4 peers too): an IPv4 requester arrives as ::ffff:a.b.c.d; the protocol sees
    # a.b.c.d (its observed address, the address it registered from) and the answer goes back
    conf = check_presence_conf(presence_conf())
    try:
        h = PresenceHost(conf, ("::", 0))
        h.open()
    except OSError as e:
        pytest.skip("no dual-stack IPv6 socket here (%s)" % e)
    pump = pump_host(h)
    a, b = Requester("a", KEYS["a"]), Requester("b", KEYS["b"])
    try:
        server = ("127.0.0.1", h.listen[1])
        a.send(server, msg.REGISTER, msg.enc_register(60, [(("192.0.2.10", 6278), 0, 0)]))
        ptype, counter, body = a.answer(timeout=2, pump=pump)
        assert (ptype, counter) == (msg.REGISTER_ACK, a.counter)
        assert msg.dec_register_ack(body) == (60, a.sock.getsockname())  # ("127.0.0.1", its port)
        b.send(server, msg.LOOKUP, msg.enc_lookup("a"))
        rec = msg.dec_record_only(b.answer(timeout=2, pump=pump)[2])
        assert rec[3] == a.sock.getsockname()
        assert h.status()["host_counters"].get("tx_error") is None
        assert h.status()["listen"] == "[::]:%d" % h.listen[1]  # (as --presence-listen takes it)
    finally:
        for r in (a, b):
            r.close()
        h.close()


def test_a_listen_address_with_its_brackets_or_port_mistyped_is_refused_not_read_as_port_6279(tmp_path):
    # "[::1]7000" (no colon) listened on [::1]:6279, and "[::1", "[192.0.2.1]:7000" (brackets
    # around IPv4) and "[::1]:+7000" were taken too: a server not where its operator said
    for text in ("[::1]7000", "[::1", "[192.0.2.1]:7000", "[::1]:+7000", "0.0.0.0:7_000", "[::1]:", "0.0.0.0:"):
        with pytest.raises(ValueError) as e:
            parse_listen(text)
        assert str(e.value) == ("expected ADDR:PORT, such as 0.0.0.0:6279 or [::]:6279, not %r" % text)
    cfg = tmp_path / "p.json"
    cfg.write_text(json.dumps(presence_conf()))
    rc, out, err = run_cli("presence", "--config", str(cfg), "--listen", "[::1]7000", "--duration", "0.1")
    assert rc != 0 and "[::1]7000" in err and out == "", (rc, out, err)
    assert parse_listen("[2001:DB8::1]:7000") == ("2001:db8::1", 7000)


def test_a_listen_port_past_65535_is_refused_with_the_range():
    # (bind() would raise OverflowError, which mastd's start does not expect: a traceback)
    assert parse_listen("0.0.0.0:65535") == ("0.0.0.0", 65535)
    for text in ("0.0.0.0:65536", "[::]:70000"):
        with pytest.raises(ValueError) as e:
            parse_listen(text)
        assert str(e.value).startswith("port must be 1..65535 (or 0: any free one), not ")


def test_a_state_file_that_cannot_be_written_is_counted_and_the_answer_still_leaves(tmp_path):
    # a full disk or a folder gone must not stop the service (nor mastd around it)
    h = host_on_loopback(state=str(tmp_path / "gone" / "state.json"))
    a = Requester("a", KEYS["a"])
    try:
        a.send(h.listen, msg.REGISTER, msg.enc_register(60, []))
        assert a.answer(2, pump_host(h))[0] == msg.REGISTER_ACK
        assert h.status()["host_counters"]["state_write_error"] >= 1
    finally:
        a.close()
        h.close()


def test_a_state_file_that_cannot_be_written_is_said_once_naming_the_file_until_a_write_works(tmp_path):
    # (a full disk was only counted: no line in mastd's log named the file or said why)
    import shutil

    folder = tmp_path / "gone"
    state = folder / "state.json"
    h = host_on_loopback(state=str(state))
    seen = []
    h.emit = seen.append
    a = Requester("a", KEYS["a"])
    try:
        for _ in range(2):
            a.send(h.listen, msg.REGISTER, msg.enc_register(60, []))
            assert a.answer(2, pump_host(h))[0] == msg.REGISTER_ACK
        failed = [e for e in seen if e.get("event") == "state_write_failed"]
        assert failed == [{"event": "state_write_failed", "file": str(state),
                           "error": "No such file or directory",
                           "note": "counters kept in memory only until a write works"}]
        folder.mkdir()
        a.send(h.listen, msg.REGISTER, msg.enc_register(60, []))
        assert a.answer(2, pump_host(h))[0] == msg.REGISTER_ACK
        shutil.rmtree(str(folder))  # failing again after a write that worked: said again
        a.send(h.listen, msg.REGISTER, msg.enc_register(60, []))
        assert a.answer(2, pump_host(h))[0] == msg.REGISTER_ACK
        assert len([e for e in seen if e.get("event") == "state_write_failed"]) == 2
    finally:
        a.close()
        h.close()


def test_a_state_write_cut_short_leaves_the_state_before_it_whole_and_a_restart_reads_it(tmp_path, monkeypatch):
    # a disk that fills up (or a kill, a power cut) in the middle of the state file's write:
    # the file still holds the counters saved before, whole, and the host that starts next
    # (SIGKILL: no write at close) reads it instead of refusing to start on a torn file
    import errno

    from mastd import presence_host

    state = tmp_path / "state.json"
    h = host_on_loopback(state=str(state))
    a = Requester("a", KEYS["a"])
    h2 = None
    try:
        a.send(h.listen, msg.REGISTER, msg.enc_register(60, []))
        assert a.answer(2, pump_host(h))[0] == msg.REGISTER_ACK
        saved = state.read_bytes()
        assert json.loads(saved)["floors"] == {"a": a.counter}
        real_dump = json.dump

        def dump_half(obj, f, **kw):
            text = json.dumps(obj, **kw)
            f.write(text[:len(text) // 2])
            f.flush()
            raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr(presence_host.json, "dump", dump_half)
        a.send(h.listen, msg.REGISTER, msg.enc_register(60, []))
        assert a.answer(2, pump_host(h))[0] == msg.REGISTER_ACK
        assert h.status()["host_counters"]["state_write_error"] >= 1
        monkeypatch.setattr(presence_host.json, "dump", real_dump)
        assert state.read_bytes() == saved
        # (no torn .tmp left beside it; the lock is the running server's)
        assert sorted(os.listdir(str(tmp_path))) == ["state.json", "state.json.lock"]
        h.sock.close()  # a crash: its lock goes with its descriptors
        h.sock = None
        h._unlock_state()
        h2 = host_on_loopback(state=str(state))  # (the next start, on what the disk holds)
    finally:
        a.close()
        if h2 is not None:
            h2.close()
        h.close()


def test_a_state_write_that_failed_is_made_at_close_once_the_folder_is_back(tmp_path):
    # the counter of an answered request, unsaved when its write failed, reaches the file at
    # close: a restart then still refuses that request captured before it
    state = tmp_path / "gone" / "state.json"
    h = host_on_loopback(state=str(state))
    a = Requester("a", KEYS["a"])
    try:
        pkt = a.send(h.listen, msg.REGISTER, msg.enc_register(60, []))
        assert a.answer(2, pump_host(h))[0] == msg.REGISTER_ACK
        assert h.status()["host_counters"]["state_write_error"] >= 1
        (tmp_path / "gone").mkdir()
        h.close()
        assert json.load(open(str(state)))["floors"] == {"a": a.counter}
        h = host_on_loopback(state=str(state))
        a.sock.sendto(pkt, h.listen)
        assert a.answer(0.3, pump_host(h)) is None
        assert h.status()["counters"]["replay"] == 1
    finally:
        a.close()
        h.close()

def test_a_timer_that_is_due_asks_the_loop_not_to_sleep():
    # (a negative wait is "for ever" to poll(): mastd's loop slept until a datagram came)
    now = [1000000]
    h = PresenceHost(check_presence_conf(presence_conf()), ("127.0.0.1", 0), clock=lambda: now[0])
    h.open()
    a = Requester("a", KEYS["a"])
    try:
        a.send(h.listen, msg.REGISTER, msg.enc_register(60, []))
        assert a.answer(2, pump_host(h))[0] == msg.REGISTER_ACK
        assert 0 < h.wait_ms(1000) <= 1000
        now[0] += 3600 * 1000  # past the registration's expiry
        assert h.wait_ms(1000) == 0
    finally:
        a.close()
        h.close()
