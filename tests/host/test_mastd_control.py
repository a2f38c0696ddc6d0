"""mastd's control socket and mastctl, with two real mastd processes on loopback (no TUN):
application datagrams between peers, taking an uplink down by hand, and reloads that are
refused or applied while the association stays the same."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

from mastd import control
from mastd.ctl import format_status

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIRMWARE = os.path.join(ROOT, "firmware")
PSK = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="


def _serving(srv):
    """A thread calling srv.on_readable() every 10 ms, as mastd's loop would; stop() ends it."""
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            srv.on_readable(None, 0)
            time.sleep(0.01)

    t = threading.Thread(target=serve)
    t.start()

    def done():
        stop.set()
        t.join()

    return done


def test_a_reply_that_takes_time_to_build_still_reaches_its_reader_whole(tmp_path):
    # a status of 5,000 associations took ~0.1 s to build and is 2.3 MB: the time to send it
    # was counted from the request, so it was cut short every time and mastctl said mastd
    # was not running
    path = str(tmp_path / "c.sock")

    def slow_big(req):
        time.sleep(0.25)  # (longer than the time a reply may wait for its reader)
        return {"blob": "x" * 3000000}

    srv = control.ControlServer(path, slow_big)
    done = _serving(srv)
    try:
        assert len(control.request(path, {"op": "status"})["blob"]) == 3000000
    finally:
        done()
        srv.close()


def test_a_reader_that_comes_late_gets_the_whole_large_reply_while_the_loop_turns(tmp_path, monkeypatch):
    # before, the loop waited for the reader (at most 0.1 s) inside one turn and the rest was
    # lost; now the reply waits for its reader (up to 2 s) while the loop goes on. (Here up to
    # 30 s: a loaded machine may keep this reader from the socket longer than 2 s; a reply
    # waited for inside one turn is still lost after its 0.1 s.)
    monkeypatch.setattr(control, "_STALL_S", 30.0)
    path = str(tmp_path / "c.sock")
    srv = control.ControlServer(path, lambda req: {"blob": "y" * 3000000})
    done = _serving(srv)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(path)
        s.sendall(b'{"op": "status"}\n')
        time.sleep(0.3)  # a reader that comes late: past the 0.1 s a reply could wait before
        buf = b""
        while not buf.endswith(b"\n"):
            chunk = s.recv(1 << 20)
            if not chunk:
                break
            buf += chunk
        assert len(json.loads(buf)["blob"]) == 3000000
    finally:
        s.close()
        done()
        srv.close()


def test_a_reply_of_many_items_is_written_across_turns_and_is_valid_json(tmp_path):
    # a status of 2,500 associations took 60-90 ms in one turn of mastd's loop: its data path
    # stood still and, with the fast profile, peers failed over; each turn now writes for a
    # few milliseconds and goes back to the packets
    path = str(tmp_path / "c.sock")
    turn = [0]
    written_in = []

    def item(x):
        written_in.append(turn[0])
        time.sleep(0.0002)  # (what an association's status costs, a little more)
        return {"n": x, "paths": [{"rtt_ms": x % 7}]}

    srv = control.ControlServer(path, lambda req: {"status": {"name": "hub", "associations":
                                                              control.Items(range(1500), item)}})
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(path)
        s.sendall(b'{"op": "status"}\n')
        buf = b""
        s.setblocking(False)
        for _ in range(5000):  # the loop's turns (bounded)
            turn[0] += 1
            srv.on_readable(None, 0)
            try:
                buf += s.recv(1 << 20)
            except BlockingIOError:
                pass
            if buf.endswith(b"\n"):
                break
        reply = json.loads(buf)
        assert reply["ok"] is True and reply["status"]["name"] == "hub"
        assert [a["n"] for a in reply["status"]["associations"]] == list(range(1500))
        assert reply["status"]["associations"][8]["paths"] == [{"rtt_ms": 1}]
        # spread over turns, none of which wrote more than a small share
        per_turn = [written_in.count(t) for t in set(written_in)]
        assert len(per_turn) >= 10 and max(per_turn) <= 500, per_turn
        assert srv.busy() is None and not srv.replies
    finally:
        s.close()
        srv.close()


def test_control_socket_answers_one_json_line_per_connection(tmp_path):
    path = str(tmp_path / "c.sock")
    srv = control.ControlServer(path, lambda req: {"echo": req["op"]})
    assert oct(os.stat(path).st_mode & 0o777) == "0o600"
    done = _serving(srv)
    try:
        assert control.request(path, {"op": "status"}) == {"echo": "status", "ok": True}
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(path)
        s.sendall(b"not json\n")
        assert json.loads(s.recv(4096)) == {"ok": False, "error": "bad request: one JSON object per line"}
        s.close()
    finally:
        done()
        srv.close()
    assert not os.path.exists(path)


def test_past_16_open_connections_the_oldest_is_dropped_and_the_newest_answered(tmp_path, monkeypatch):
    # connections that send nothing hold a slot each until their 0.5 s are up: one more than
    # the cap closes the oldest at once, so the table stays bounded and a new client is served
    monkeypatch.setattr(control, "_CLIENT_TIMEOUT_S", 30.0)  # (none leaves by its time here)
    path = str(tmp_path / "c.sock")
    srv = control.ControlServer(path, lambda req: {"echo": req["op"]})
    conns = []
    try:
        for i in range(control._CLIENTS_MAX + 1):
            c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            c.settimeout(1)
            c.connect(path)
            conns.append(c)
            srv.on_readable(None, 0)  # accepted one at a time: each is newer than the last
        assert len(srv.clients) == control._CLIENTS_MAX
        assert conns[0].recv(100) == b""  # the oldest: closed by the server
        conns[-1].sendall(b'{"op": "status"}\n')
        srv.on_readable(None, 0)
        deadline = time.monotonic() + 2
        while srv.replies and time.monotonic() < deadline:
            srv.on_readable(None, 0)
        assert json.loads(conns[-1].recv(4096)) == {"echo": "status", "ok": True}
    finally:
        for c in conns:
            c.close()
        srv.close()


def test_a_stale_socket_file_is_replaced_and_a_live_one_refused(tmp_path):
    path = str(tmp_path / "c.sock")
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(path)
    stale.close()  # the file stays, nobody listens: a mastd that died
    srv = control.ControlServer(path, lambda req: {})
    try:
        with pytest.raises(OSError, match="another mastd answers on"):
            control.ControlServer(path, lambda req: {})
    finally:
        srv.close()


def test_the_control_socket_path_appears_only_once_it_takes_connections(tmp_path, monkeypatch):
    # a mastctl started with mastd (the hotplug script's, at boot) that found the path between
    # bind() and listen() was refused ("Connection refused; is it running?") by a running mastd
    path = str(tmp_path / "c.sock")
    seen = []
    real = socket.socket.listen

    def listen(self, *args):
        seen.append(os.path.lexists(path))
        return real(self, *args)

    monkeypatch.setattr(socket.socket, "listen", listen)
    srv = control.ControlServer(path, lambda req: {})
    try:
        assert seen == [False] and oct(os.stat(path).st_mode & 0o777) == "0o600"
        assert os.listdir(str(tmp_path)) == ["c.sock"]
        c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        c.connect(path)  # (listening: taken into its queue)
        c.close()
    finally:
        srv.close()
    assert os.listdir(str(tmp_path)) == []


class _Clock:
    """control's time module for a test: the real clock, plus seconds the test moves it on by."""

    def __init__(self):
        self.ahead = 0.0

    def monotonic(self):
        return time.monotonic() + self.ahead


def _until(pred, timeout=10.0):
    """Wait (bounded) for pred() to hold; whether it does."""
    end = time.monotonic() + timeout
    while not pred() and time.monotonic() < end:
        time.sleep(0.01)
    return pred()


def test_silent_trickling_and_nested_requests_hold_up_nobody(tmp_path, monkeypatch):
    # each connection was served to its end inside the loop, 0.5 s allowed per recv: four
    # silent clients held mastd's loop (its data path) 2 s, one sending a byte every 0.3 s for
    # as long as it liked; a line of 5,000 "[" killed mastd (RecursionError).
    # (no time is measured, a loaded machine would move it: the silent ones are given 60 s, so a
    # loop they held would answer nobody within a request's own 5 s; then the clock moves on)
    clock = _Clock()
    monkeypatch.setattr(control, "time", clock)
    monkeypatch.setattr(control, "_CLIENT_TIMEOUT_S", 60.0)
    path = str(tmp_path / "c.sock")
    srv = control.ControlServer(path, lambda req: {"echo": req["op"]})
    done = _serving(srv)
    held = []
    try:
        for _ in range(4):
            c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            c.connect(path)
            held.append(c)
        trickle = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        trickle.connect(path)
        held.append(trickle)
        for i in range(5):
            trickle.sendall(b" ")
            assert control.request(path, {"op": "status"}) == {"echo": "status", "ok": True}
        assert len(srv.clients) == 5  # all five still held while the others were answered
        deep = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        deep.settimeout(10)
        deep.connect(path)
        deep.sendall(b"[" * 4000 + b"\n")
        assert json.loads(deep.recv(4096)) == {"ok": False, "error": "bad request: one JSON object per line"}
        deep.close()
        clock.ahead = 61.0  # past their time: the silent ones are let go (by the loop's thread)
        assert _until(lambda: not srv.clients), len(srv.clients)
        assert control.request(path, {"op": "again"}) == {"echo": "again", "ok": True}
    finally:
        for c in held:
            c.close()
        done()
        srv.close()


def test_a_request_longer_than_a_line_without_a_newline_is_answered_at_once(tmp_path):
    # it waited for a newline that never came, for the client's whole time, and went unanswered
    # (the answer itself shows it: no time is measured here, a loaded machine would move it)
    path = str(tmp_path / "c.sock")
    srv = control.ControlServer(path, lambda req: {"echo": req["op"]})
    done = _serving(srv)
    c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        c.settimeout(2)
        c.connect(path)
        c.sendall(b"x" * (control._LINE_MAX + 100))
        assert json.loads(c.recv(4096)) == {"ok": False, "error": "bad request: one JSON object per line"}
    finally:
        c.close()
        done()
        srv.close()


def test_a_control_path_that_is_not_a_socket_is_refused_and_left_alone(tmp_path):
    # a typo such as --control /etc/mast/mast.json removed the file as a stale socket
    path = tmp_path / "mast.json"
    path.write_text('{"name": "keep me"}')
    with pytest.raises(OSError, match="exists and is not a socket"):
        control.ControlServer(str(path), lambda req: {})
    assert path.read_text() == '{"name": "keep me"}'


def test_a_control_socket_this_user_may_not_make_says_to_run_as_root_or_give_control(tmp_path, monkeypatch):
    # (mastd as a user: "cannot start: [Errno 13] Permission denied: '/var/run/mast'", or only
    # "cannot start: Permission denied" where /var/run/mast exists: bind names no path)
    import errno

    def denied(*a, **k):
        raise PermissionError(errno.EACCES, "Permission denied", "/var/run/mast")

    hint = "run mastd as root, or give --control a path you may write"
    path = str(tmp_path / "run" / "mastd.sock")
    monkeypatch.setattr(control.os, "makedirs", denied)
    with pytest.raises(OSError) as e:
        control.ControlServer(path, lambda req: {})
    assert (e.value.strerror, e.value.filename) == (
        "cannot make the control socket %s (Permission denied): %s" % (path, hint), None)
    monkeypatch.undo()
    (tmp_path / "run").mkdir()
    monkeypatch.setattr(control.socket.socket, "bind", denied)
    with pytest.raises(OSError) as e:
        control.ControlServer(path, lambda req: {})
    assert (e.value.strerror, e.value.filename) == (
        "cannot make the control socket %s (Permission denied): %s" % (path, hint), None)


def test_a_control_socket_of_roots_that_this_user_may_not_reach_says_to_run_as_root(tmp_path, monkeypatch):
    # root's mastd runs (or ran) on the default path: /var/run/mast exists, its socket is 0600.
    # The probe's connect is refused (EACCES) before bind is tried: it said only "mastd: cannot
    # start: Permission denied" (connect names no path), and left the file alone
    import errno

    def denied(*a, **k):
        raise PermissionError(errno.EACCES, "Permission denied")

    path = str(tmp_path / "mastd.sock")
    old = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old.bind(path)
    old.close()  # (a socket file: root's, live or stale)
    monkeypatch.setattr(control.socket.socket, "connect", denied)
    with pytest.raises(OSError) as e:
        control.ControlServer(path, lambda req: {})
    assert (e.value.strerror, e.value.filename) == (
        "cannot make the control socket %s (Permission denied): run mastd as root, or give "
        "--control a path you may write" % path, None)
    assert os.path.lexists(path)


def mastctl(sock, *args):
    return subprocess.run([sys.executable, "-c", "import sys; from mastd.ctl import main; sys.exit(main())",
                           "--control", sock] + list(args),
                          capture_output=True, text=True, timeout=10, env=dict(os.environ, PYTHONPATH=FIRMWARE))


def test_mastctl_without_a_mastd_says_so(tmp_path):
    r = mastctl(str(tmp_path / "none.sock"), "status")
    assert r.returncode == 1
    assert r.stderr.startswith("mastctl: cannot reach mastd at %s" % (tmp_path / "none.sock"))
    assert "Traceback" not in r.stderr


def test_mastctl_run_by_a_user_other_than_root_says_so_not_is_it_running(tmp_path, monkeypatch, capsys):
    # (mastd ran; its socket is 0600: "cannot reach mastd ... (Permission denied); is it running?")
    from mastd import ctl

    def denied(path, req, *a, **kw):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(ctl, "request", denied)
    path = str(tmp_path / "c.sock")
    assert ctl.main(["--control", path, "status", "--json"]) == 1
    assert capsys.readouterr().err == ("mastctl: %s: permission denied; only root may use mastd's control "
                                       "socket (mode 0600): run mastctl as root\n" % path)


@pytest.mark.parametrize("args", [[], ["peer"]])
def test_mastctl_without_a_command_shows_its_usage_and_exits_2(tmp_path, args):
    r = mastctl(str(tmp_path / "none.sock"), *args)
    assert (r.returncode, r.stdout) == (2, "")
    assert r.stderr.startswith("usage: mastctl") and "required" in r.stderr and "Traceback" not in r.stderr

def test_status_text_of_a_path_never_measured_shows_no_rtt_not_none_ms():
    s = {"name": "r", "uplinks": {}, "failovers": [],
         "associations": [{"peer": "srv", "state": "established", "label": 1, "nonce_id": "f00d",
                           "primary": "wan>198.51.100.1:6278",
                           "paths": [{"path": "wan>198.51.100.1:6278", "state": "active", "rtt_ms": 0},
                                     {"path": "wwan>198.51.100.1:6278", "state": "failed", "rtt_ms": None}]}]}
    lines = format_status(s).splitlines()
    assert lines[-3].split()[-3:] == ["rtt", "0", "ms"], lines
    assert lines[-2].split()[-2:] == ["rtt", "-"] and "None" not in lines[-2], lines


def test_status_text_shows_uplinks_association_and_failovers():
    s = {"name": "r", "pid": 1, "uptime_s": 3, "config": "/etc/config/mast", "discovery": "netifd",
         "tun": {"name": "mast0", "internal": "10.99.0.2/24", "mtu": 1444},
         "uplinks": {"wan": {"addr": "100.64.1.2:6278", "priority": 10, "cost": 0, "admin": "up"},
                     "lte": {"link": {"why": "interface lte is down"}, "admin": "up"}},
         "associations": [{"peer": "srv", "state": "established", "label": 0xAB, "nonce_id": "f00d",
                           "primary": "wan>198.51.100.1:6278",
                           "paths": [{"path": "wan>198.51.100.1:6278", "state": "active", "rtt_ms": 3}]}],
         "failovers": [{"old": "lte>x", "new": "wan>y", "gap_ms": 90, "failback": True}]}
    text = format_status(s)
    assert "tun mast0 10.99.0.2/24 mtu 1444" in text
    assert "down (interface lte is down)" in text
    assert "srv established label 000000ab nonce-id f00d primary wan>198.51.100.1:6278" in text
    assert "lte>x -> wan>y (gap 90 ms, failback)" in text



def test_status_text_lists_each_route_not_taken_under_the_tun():
    s = {"name": "r", "tun": {"name": "mast0", "internal": "10.99.0.2/24", "mtu": 1444}, "uplinks": {},
         "routes_not_taken": [{"route": "192.168.50.0/24", "peer": "srv", "held_by": ["lan9"]},
                              {"route": "0.0.0.0/1", "peer": "srv", "held_by": ["unreachable route"]}]}
    lines = format_status(s).splitlines()
    assert lines[1:4] == ["tun mast0 10.99.0.2/24 mtu 1444",
                          "  route 192.168.50.0/24 of peer srv not taken: held by lan9 (the log says what to do)",
                          "  route 0.0.0.0/1 of peer srv not taken: held by unreachable route (the log says what to do)"]


# ---- two mastd processes on loopback -------------------------------------------------------

def can_bind_to_lo():
    """Whether this process may bind a socket to lo (SO_BINDTODEVICE), as mastd binds its
    uplinks: root may (CAP_NET_RAW), and since Linux 5.7 anyone may (a socket's first binding)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.setsockopt(socket.SOL_SOCKET, getattr(socket, "SO_BINDTODEVICE", 25), b"lo")
        return True
    except OSError:
        return False
    finally:
        s.close()


BIND_TO_LO = "binding a socket to lo (SO_BINDTODEVICE) needs root (CAP_NET_RAW) on Linux before 5.7"
needs_root = pytest.mark.skipif(not can_bind_to_lo(), reason=BIND_TO_LO)


def conf(name, peer, port, uplinks, peer_addr=None, app_socket=None, profile="fast"):
    p = {"psk": PSK}
    if app_socket:
        p["app_socket"] = app_socket
        if os.geteuid() != 0:  # (only root may give it to app_user's default, root)
            p["app_user"], p["app_group"] = str(os.getuid()), str(os.getgid())
    if peer_addr:
        p["addresses"] = [peer_addr]
    return {"name": name, "port": port, "profile": profile, "peers": {peer: p},
            "uplinks": dict((u, {"device": "lo", "address": a, "priority": pr}) for u, a, pr in uplinks)}


class Proc:
    def __init__(self, tmp, name, doc):
        self.cfg = tmp / ("%s.json" % name)
        self.cfg.write_text(json.dumps(doc))
        self.sock = str(tmp / ("%s.sock" % name))
        self.log = open(str(tmp / ("%s.log" % name)), "w")
        self.p = subprocess.Popen([sys.executable, "-m", "mastd", "--config", str(self.cfg), "--control",
                                   self.sock, "--discovery", "linux"], stdout=self.log, stderr=subprocess.STDOUT,
                                  env=dict(os.environ, PYTHONPATH=FIRMWARE))

    def status(self):
        try:
            r = control.request(self.sock, {"op": "status"}, timeout=10)
            return r.get("status")
        except OSError:
            return None

    def assoc(self):
        s = self.status()
        a = s and s["associations"]
        return a[0] if a and a[0]["state"] == "established" else None

    def stop(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(8)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        self.log.close()


def wait_for(what, fn, timeout=20):  # (a bound, not a timing: only a failure waits that long)
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = fn()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError("timed out waiting for " + what)


def app_connect(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.settimeout(5)
    s.connect(path)
    return s


@pytest.fixture
def pair(tmp_path):
    base = 20000 + os.getpid() % 20000
    srv = Proc(tmp_path, "srv", conf("server", "router1", base, [("lo", "127.0.0.10", 100)],
                                     app_socket=str(tmp_path / "srv-app.sock")))
    rtr = Proc(tmp_path, "rtr", conf("router1", "server", base,
                                     [("a", "127.0.0.11", 10), ("b", "127.0.0.12", 20)],
                                     "127.0.0.10:%d" % base, app_socket=str(tmp_path / "rtr-app.sock")))
    try:
        wait_for("association", rtr.assoc)
        yield {"srv": srv, "rtr": rtr, "tmp": tmp_path, "base": base}
    finally:
        rtr.stop()
        srv.stop()


@needs_root
def test_application_datagrams_reach_the_peers_app_socket_and_the_answer_comes_back(pair):
    rtr, srv = pair["rtr"], pair["srv"]
    app_srv = app_connect(srv.status()["apps"]["router1"]["socket"])
    app_rtr = app_connect(rtr.status()["apps"]["server"]["socket"])
    try:
        wait_for("both apps connected", lambda: srv.status()["apps"]["router1"]["connected"]
                 and rtr.status()["apps"]["server"]["connected"])
        app_rtr.send(b"telemetry 1")
        assert app_srv.recv(100) == b"telemetry 1"
        app_srv.send(b"ack 1")
        assert app_rtr.recv(100) == b"ack 1"
        assert rtr.status()["agent_counters"]["app_rx"] == 1
        assert srv.status()["agent_counters"]["app_tx"] == 1
    finally:
        app_srv.close()
        app_rtr.close()


class _Holders:
    """Clients that hold a control socket for as long as they run, in a thread: four silent
    connections and one that trickles a byte every 50 ms, each opened again when the server lets
    it go (the silent ones after their 0.5 s, the trickler after its)."""

    def __init__(self, path):
        self.path = path
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._hold)
        self.thread.start()

    def _open(self):
        c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        c.setblocking(False)
        try:
            c.connect(self.path)
        except OSError:
            pass  # (a full backlog: tried again)
        return c

    def _hold(self):
        conns = [self._open() for _ in range(5)]
        try:
            while not self.stop.wait(0.05):
                for i, c in enumerate(conns):
                    try:
                        if i == 4:
                            c.send(b" ")
                        elif c.recv(1) == b"":  # closed by the server
                            raise OSError
                    except BlockingIOError:
                        pass
                    except OSError:
                        c.close()
                        conns[i] = self._open()
        finally:
            for c in conns:
                c.close()

    def close(self):
        self.stop.set()
        self.thread.join(30)


@needs_root
def test_clients_that_hold_the_control_socket_do_not_hold_up_the_data_path(pair):
    # measured before: 4 silent clients on the server's socket, 75 % of a ping through the
    # tunnel lost with 4 s RTTs and a false failover; one trickling a byte every 0.3 s: 100 %.
    # Here they hold it the whole time (a loop that served them to their end would never come
    # back to the packets): every ping and its pong must still come through. (No time is
    # measured: each has the app socket's 5 s, far more than a loaded machine takes.)
    rtr, srv = pair["rtr"], pair["srv"]
    app_srv = app_connect(srv.status()["apps"]["router1"]["socket"])
    app_rtr = app_connect(rtr.status()["apps"]["server"]["socket"])
    holders = None
    try:
        wait_for("both apps connected", lambda: srv.status()["apps"]["router1"]["connected"]
                 and rtr.status()["apps"]["server"]["connected"])
        holders = _Holders(srv.sock)
        for i in range(10):
            app_rtr.send(b"ping %d" % i)
            assert app_srv.recv(100) == b"ping %d" % i
            app_srv.send(b"pong %d" % i)
            assert app_rtr.recv(100) == b"pong %d" % i
            time.sleep(0.1)
        assert holders.thread.is_alive()  # (they held it all along)
    finally:
        if holders is not None:
            holders.close()
        app_srv.close()
        app_rtr.close()


@needs_root
def test_a_peer_known_by_its_dns_name_is_connected_once_the_name_resolves(tmp_path):
    # (looked up in a thread: tests/integration/test_mastd_dns.py has a DNS that never answers)
    port = 20000 + (os.getpid() + 7) % 20000
    srv = Proc(tmp_path, "srv", conf("server", "router1", port, [("lo", "127.0.0.1", 100)]))
    doc = conf("router1", "server", port, [("a", "127.0.0.13", 10)])
    doc["peers"]["server"].update(dns="localhost", port=port)
    rtr = Proc(tmp_path, "rtr", doc)
    try:
        a = wait_for("association", rtr.assoc)
        assert a["primary"] in ("a>127.0.0.1:%d" % port, "a>[::1]:%d" % port), a
    finally:
        rtr.stop()
        srv.stop()


@needs_root
def test_mastctl_uplink_down_moves_the_primary_and_up_brings_it_back(pair):
    rtr = pair["rtr"]
    wait_for("primary on a", lambda: (rtr.assoc() or {}).get("primary", "").startswith("a>"))
    first = rtr.assoc()
    r = mastctl(rtr.sock, "uplink", "a", "down")
    assert (r.returncode, r.stdout) == (0, "uplink a down\n")
    wait_for("primary on b", lambda: (rtr.assoc() or {}).get("primary", "").startswith("b>"))
    s = rtr.status()
    assert s["uplinks"]["a"]["admin"] == "down" and "addr" not in s["uplinks"]["a"]
    assert mastctl(rtr.sock, "uplink", "a", "up").returncode == 0
    wait_for("primary back on a", lambda: (rtr.assoc() or {}).get("primary", "").startswith("a>"))
    assert rtr.assoc()["nonce_id"] == first["nonce_id"]

    mark = max(e["t_ms"] for e in rtr.status()["events"])
    assert mastctl(rtr.sock, "hotplug", "ifup", "a", "lo").returncode == 0  # a rescan: nothing changed
    # (its events say so; the primary is not looked at: under the fast profile a loaded machine
    # can fail a path over on its own, and back)
    assert not [e for e in rtr.status()["events"] if e["t_ms"] > mark and e["event"] in ("uplink_up", "uplink_down")]
    assert rtr.assoc()["nonce_id"] == first["nonce_id"]
    r = mastctl(rtr.sock, "uplink", "nope", "down")
    assert r.returncode == 1 and r.stderr == "mastctl: no uplink 'nope' (configured: a, b)\n"


@needs_root
def test_an_uplink_taken_out_of_the_configuration_is_out_of_use_after_a_reload(pair):
    # it stayed: its socket, its paths, its address in the SET to the peer; with the other
    # uplink down all traffic moved onto the uplink the user had removed (a metered link)
    rtr, srv = pair["rtr"], pair["srv"]
    wait_for("primary on a", lambda: (rtr.assoc() or {}).get("primary", "").startswith("a>"))
    first = rtr.assoc()
    doc = json.loads(rtr.cfg.read_text())
    del doc["uplinks"]["b"]
    rtr.cfg.write_text(json.dumps(doc))
    r = mastctl(rtr.sock, "reload")
    assert (r.returncode, r.stderr) == (0, "")
    s = rtr.status()
    assert sorted(s["uplinks"]) == ["a"]
    assert [e for e in s["events"] if e["event"] == "uplink_down"][-1]["uplink"] == "b"
    assert not [p for p in rtr.assoc()["paths"] if p["path"].startswith("b>")]
    # the peer hears it: the router's address on b goes from its list
    wait_for("b's address gone at the server", lambda: [
        a for a in srv.status()["associations"] if a["remotes"] == ["127.0.0.11:%d" % pair["base"]]])
    assert rtr.assoc()["nonce_id"] == first["nonce_id"]
    r = mastctl(rtr.sock, "uplink", "b", "down")
    assert r.returncode == 1 and r.stderr == "mastctl: no uplink 'b' (configured: a)\n"


@needs_root
def test_a_bad_reload_is_refused_with_the_key_and_the_running_config_stays(pair):
    rtr = pair["rtr"]
    wait_for("primary on a", lambda: (rtr.assoc() or {}).get("primary", "").startswith("a>"))
    first = rtr.assoc()
    good = json.loads(rtr.cfg.read_text())
    bad = json.loads(rtr.cfg.read_text())
    bad["uplinks"]["b"]["cost"] = 999
    rtr.cfg.write_text(json.dumps(bad))
    r = mastctl(rtr.sock, "reload")
    assert r.returncode == 1
    assert r.stderr == ("mastctl: reload refused, the running configuration stays: "
                        "uplinks.b.cost: must be an integer from 0 to 255\n")
    rtr.p.send_signal(signal.SIGHUP)  # the same through the signal: logged, still running
    time.sleep(0.3)
    assert rtr.p.poll() is None and rtr.assoc()["nonce_id"] == first["nonce_id"]
    # a good reload that changes priorities keeps the association and moves the primary
    good["uplinks"]["b"]["priority"] = 1
    rtr.cfg.write_text(json.dumps(good))
    rtr.p.send_signal(signal.SIGHUP)
    wait_for("priority 1 on b", lambda: rtr.status()["uplinks"]["b"]["priority"] == 1)
    wait_for("primary on b", lambda: (rtr.assoc() or {}).get("primary", "").startswith("b>"))
    a = rtr.assoc()
    assert (a["label"], a["nonce_id"]) == (first["label"], first["nonce_id"])


@needs_root
def test_a_reload_that_changes_the_key_starts_a_new_association(pair):
    rtr, srv = pair["rtr"], pair["srv"]
    first = rtr.assoc()
    for p in (rtr, srv):
        doc = json.loads(p.cfg.read_text())
        for peer in doc["peers"].values():
            peer["psk"] = "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8="
        p.cfg.write_text(json.dumps(doc))
    assert mastctl(srv.sock, "reload").returncode == 0
    assert mastctl(rtr.sock, "reload").returncode == 0
    a = wait_for("a new association", lambda: (rtr.assoc() or {}).get("nonce_id") not in (None, first["nonce_id"]) and rtr.assoc())
    assert a["nonce_id"] != first["nonce_id"]


def _netifd_env(tmp_path, dump):
    """The environment of a mastd whose `ubus call network.interface dump` reads the file dump
    (a stand-in ubus first on PATH; any other ubus call fails)."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "ubus").write_text('#!/bin/sh\n[ "$*" = "call network.interface dump" ] && exec cat %s\nexit 1\n' % dump)
    (bindir / "ubus").chmod(0o755)
    return dict(os.environ, PYTHONPATH=FIRMWARE, PATH="%s:%s" % (bindir, os.environ["PATH"]))


@needs_root
def test_on_openwrt_uplinks_come_from_netifd_and_hotplug_events_rescan(tmp_path):
    dump = tmp_path / "dump.json"
    env = _netifd_env(tmp_path, dump)

    def netifd(up):
        dump.write_text(json.dumps({"interface": [
            {"interface": "wan", "up": up, "l3_device": "lo", "ipv4-address": [{"address": "127.0.0.21", "mask": 8}]},
            {"interface": "lan", "up": True, "l3_device": "br-lan", "ipv4-address": [{"address": "192.168.1.1"}]}]}))

    netifd(True)
    uci = tmp_path / "mast"
    uci.write_text("config mast 'global'\n\toption name 'r1'\n\toption port '%d'\n"
                   "config peer 'srv'\n\toption psk '%s'\n\toption initiate '0'\n"
                   "config uplink 'wan'\n\toption priority '10'\n" % (30000 + os.getpid() % 20000, PSK))
    sock = str(tmp_path / "m.sock")
    log = open(str(tmp_path / "log"), "w")
    p = subprocess.Popen([sys.executable, "-m", "mastd", "--config", str(uci), "--control", sock],
                         stdout=log, stderr=subprocess.STDOUT,
                         env=env)
    try:
        st = lambda: control.request(sock, {"op": "status"})["status"]  # noqa: E731
        wait_for("mastd", lambda: os.path.exists(sock) and st())
        s = st()
        assert s["discovery"] == "netifd"  # UCI and ubus: auto picks netifd
        assert s["uplinks"]["wan"]["addr"].startswith("127.0.0.21:")
        assert s["uplinks"]["wan"]["link"]["device"] == "lo"
        netifd(False)
        assert mastctl(sock, "hotplug", "ifdown", "wan", "lo").returncode == 0
        s = st()
        assert "addr" not in s["uplinks"]["wan"]
        assert s["uplinks"]["wan"]["link"]["why"] == "interface wan is down"
        netifd(True)
        assert mastctl(sock, "hotplug", "ifup", "wan", "lo").returncode == 0
        assert st()["uplinks"]["wan"]["addr"].startswith("127.0.0.21:")
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait(10)
        log.close()
    assert p.returncode == 0



@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("unshare") or not shutil.which("nsenter"),
                    reason="needs root, unshare and nsenter (a veth with a tentative IPv6 address)")
def test_on_openwrt_an_uplink_address_not_yet_bindable_is_tried_again_without_a_hotplug_event(tmp_path):
    """A bind that fails is tried again after 2 s (doubling, up to a minute), with no event
    to say it may work now: on OpenWrt an IPv6 address still in duplicate address detection
    (EADDRNOTAVAIL for a second or two; the rtnetlink watch sees it end as well), or a port
    that another program holds until it exits (here: nothing tells mastd it has gone). Before,
    the uplink stayed without a socket until some later hotplug event. The error names only its
    own uplink (it had become the `why` of the uplink_up noted after it in the same scan)."""
    dump = tmp_path / "dump.json"
    env = _netifd_env(tmp_path, dump)
    dump.write_text(json.dumps({"interface": [
        {"interface": "wan6", "up": True, "l3_device": "ua",
         "ipv6-address": [{"address": "2001:db8:6::2", "mask": 64}]},
        {"interface": "wlan", "up": True, "l3_device": "lo",
         "ipv4-address": [{"address": "127.0.0.1", "mask": 8}]}]}))
    uci = tmp_path / "mast"
    uci.write_text("config mast 'global'\n\toption name 'r1'\n"
                   "config peer 'srv'\n\toption psk '%s'\n\toption initiate '0'\n"
                   "config uplink 'wan6'\n\toption priority '10'\n"
                   "config uplink 'wlan'\n\toption priority '20'\n" % PSK)
    ready, release = tmp_path / "held", tmp_path / "release"
    holder = tmp_path / "holder.py"  # another program on the uplink's port, until release
    holder.write_text("import os, socket, time\n"
                      "s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)\n"
                      "s.bind(('2001:db8:6::2', 6278))\n"
                      "open(%r, 'w').close()\n"
                      "for _ in range(1200):\n"
                      "    if os.path.exists(%r):\n"
                      "        break\n"
                      "    time.sleep(0.05)\n" % (str(ready), str(release)))
    sock = str(tmp_path / "m.sock")
    log = open(str(tmp_path / "log"), "w")
    p = subprocess.Popen(["unshare", "--net", "sh", "-c",
                          "ip link set lo up && ip link add ua type veth peer name ub && ip link set ua up && "
                          "ip -6 addr add 2001:db8:6::2/64 dev ua nodad && "
                          '(%s %s &) && for i in $(seq 200); do [ -e %s ] && break; sleep 0.05; done && '
                          'exec "$@"' % (sys.executable, holder, ready), "sh", sys.executable, "-m", "mastd",
                          "--config", str(uci), "--control", sock, "--discovery", "netifd"],
                         stdout=log, stderr=subprocess.STDOUT,
                         env=env)
    try:
        st = lambda: control.request(sock, {"op": "status"})["status"]  # noqa: E731
        wait_for("mastd", lambda: os.path.exists(sock) and st())
        s = st()
        assert "addr" not in s["uplinks"]["wan6"] and s["agent_counters"]["uplink_error"] == 1, s["uplinks"]
        release.write_text("")  # the other program exits; no event reaches mastd
        # it tries again by itself
        up = wait_for("the uplink bound", lambda: st()["uplinks"]["wan6"].get("addr"), timeout=10)
        assert up == "[2001:db8:6::2]:6278"
        ev = [e for e in st()["events"] if e["event"] == "uplink_up"]
        # (wlan's, at start: not said to be for wan6's bind error, scanned just before it)
        assert [(e["uplink"], e["why"]) for e in ev] == [("wlan", "start"), ("wan6", "retry")], ev
    finally:
        release.write_text("")
        p.send_signal(signal.SIGTERM)
        p.wait(10)
        log.close()
    assert p.returncode == 0
    text = (tmp_path / "log").read_text()
    assert "uplink wan6: cannot bind to [2001:db8:6::2]:6278 on ua (EADDRINUSE" in text, text


def _recording_server(path, reply):
    """A control server whose handler records each request and answers reply(req)."""
    got = []

    def handler(req):
        got.append(req)
        return reply(req)

    srv = control.ControlServer(path, handler)
    return srv, got, _serving(srv)


def test_mastctl_peer_add_sends_every_option_with_the_key_from_stdin(tmp_path):
    path = str(tmp_path / "c.sock")
    srv, got, done = _recording_server(path, lambda req: {"peer": req["name"], "section": "mast.b7_example"})
    try:
        r = subprocess.run(
            [sys.executable, "-c", "import sys; from mastd.ctl import main; sys.exit(main())", "--control", path,
             "peer", "add", "b7.example", "--address", "192.0.2.7", "--address", "192.0.2.8:7000",
             "--dns", "b7.example.net", "--port", "7001", "--psk-file", "-", "--no-initiate",
             "--internal", "10.99.0.7", "--allowed", "10.7.0.0/16", "--allowed", "10.8.0.0/16",
             "--app-socket", "/run/mast/b7.sock", "--app-user", "nobody", "--app-group", "mast",
             "--app-mode", "0660"],
            input="%s\n" % PSK, capture_output=True, text=True, timeout=10, env=dict(os.environ, PYTHONPATH=FIRMWARE))
    finally:
        done()
        srv.close()
    assert (r.returncode, r.stdout, r.stderr) == (0, "peer b7.example added (mast.b7_example)\n", "")
    assert got == [{"op": "peer_add", "name": "b7.example", "peer": {
        "addresses": ["192.0.2.7", "192.0.2.8:7000"], "dns": "b7.example.net", "port": 7001,
        "internal": "10.99.0.7", "allowed": ["10.7.0.0/16", "10.8.0.0/16"], "initiate": False, "psk": PSK,
        "app_socket": "/run/mast/b7.sock", "app_user": "nobody", "app_group": "mast", "app_mode": "0660"}}]


def test_mastctl_fails_with_status_1_when_the_reply_is_cut_short(tmp_path):
    path = str(tmp_path / "c.sock")
    lsock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    lsock.bind(path)
    lsock.listen(1)
    lsock.settimeout(10)

    def serve():  # one client: its request read, then half a reply and the end
        try:
            c, _ = lsock.accept()
        except OSError:
            return
        with c:
            c.settimeout(5)
            buf = b""
            while not buf.endswith(b"\n"):
                chunk = c.recv(4096)
                if not chunk:
                    break
                buf += chunk
            c.sendall(b'{"ok": true, "status": {"na')

    t = threading.Thread(target=serve)
    t.start()
    try:
        r = mastctl(path, "status")
    finally:
        t.join(15)
        lsock.close()
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr.startswith("mastctl: mastd at %s cut its reply short after 27 bytes" % path), r.stderr


def test_status_text_says_an_uplink_taken_down_with_mastctl_is_down_by_mastctl():
    s = {"name": "r", "uplinks": {"wan": {"link": {"why": None}, "admin": "down", "priority": 10, "cost": 0},
                                  "lte": {"addr": "100.64.3.2:6278", "admin": "up"}}}
    lines = format_status(s).splitlines()
    assert [x.split()[-1] for x in lines if x.startswith("  wan ")] == ["(mastctl)"]
    assert [x.split()[-1] for x in lines if x.startswith("  lte ")] == ["up"]


def test_a_request_that_is_not_an_object_or_a_handler_error_is_answered_and_the_server_goes_on(tmp_path):
    # the agent's handler takes req.get("op"); a handler's OSError (a config file that cannot be
    # written, for `mastctl peer add`) is the client's error, not the end of mastd's loop
    path = str(tmp_path / "c.sock")

    def handler(req):
        if req.get("op") == "write":
            raise PermissionError(13, "Permission denied", "/etc/config/mast")
        return {"echo": req.get("op")}

    srv = control.ControlServer(path, handler)
    done = _serving(srv)
    try:
        for line in (b"[1, 2]\n", b'"status"\n', b"7\n"):
            c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            c.settimeout(2)
            c.connect(path)
            c.sendall(line)
            assert json.loads(c.recv(4096)) == {"ok": False, "error": "bad request: one JSON object per line"}
            c.close()
        assert control.request(path, {"op": "write"}, timeout=10) == {
            "ok": False, "error": "[Errno 13] Permission denied: '/etc/config/mast'"}
        assert control.request(path, {"op": "status"}, timeout=10) == {"echo": "status", "ok": True}
    finally:
        done()
        srv.close()


def test_a_reader_that_takes_nothing_of_its_reply_is_cut_off_and_its_slot_freed(tmp_path, monkeypatch):
    monkeypatch.setattr(control, "_STALL_S", 0.2)
    path = str(tmp_path / "c.sock")
    srv = control.ControlServer(path, lambda req: {"blob": "z" * 3000000})
    c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        c.connect(path)
        c.sendall(b'{"op": "status"}\n')
        deadline = time.monotonic() + 5
        srv.on_readable(None, 0)
        while srv.busy() and time.monotonic() < deadline:  # the loop's turns; the reader sleeps
            srv.on_readable(None, 0)
            time.sleep(0.01)
        assert srv.busy() is None and not srv.replies
        c.settimeout(2)
        got = b""
        while True:  # what was sent before it stalled, then the end
            chunk = c.recv(1 << 20)
            if not chunk:
                break
            got += chunk
        assert 0 < len(got) < 3000000 and not got.endswith(b"\n")
    finally:
        c.close()
        srv.close()


@pytest.mark.parametrize("stdin", ["", "  \n\n"])
def test_mastctl_peer_add_without_a_key_on_stdin_says_so_and_sends_nothing(tmp_path, stdin):
    path = str(tmp_path / "c.sock")
    srv, got, done = _recording_server(path, lambda req: {"peer": req["name"]})
    try:
        r = subprocess.run(
            [sys.executable, "-c", "import sys; from mastd.ctl import main; sys.exit(main())", "--control", path,
             "peer", "add", "b7.example", "--psk-file", "-"],
            input=stdin, capture_output=True, text=True, timeout=10, env=dict(os.environ, PYTHONPATH=FIRMWARE))
    finally:
        done()
        srv.close()
    assert (r.returncode, r.stdout, r.stderr) == (1, "", "mastctl: cannot read the key: standard input holds "
                                                  "no key; give --psk-file FILE or - for standard input\n")
    assert got == []


def test_mastctl_peer_add_of_a_key_file_that_is_not_there_names_it_and_sends_nothing(tmp_path):
    path = str(tmp_path / "c.sock")
    srv, got, done = _recording_server(path, lambda req: {"peer": req["name"]})
    try:
        r = mastctl(path, "peer", "add", "b7.example", "--psk-file", str(tmp_path / "b7.key"))
    finally:
        done()
        srv.close()
    assert (r.returncode, r.stdout, r.stderr) == (1, "", "mastctl: cannot read the key: %s: No such file or "
                                                  "directory; give --psk-file FILE or - for standard input\n"
                                                  % (tmp_path / "b7.key"))
    assert got == []


def test_mastctl_peer_add_of_a_raw_binary_key_file_repeats_none_of_its_bytes_and_sends_nothing(tmp_path):
    # (`head -c 32 /dev/urandom > b7.key`: it said "'utf-8' codec can't decode byte 0x80 in
    # position 0", a byte of the key)
    path = str(tmp_path / "c.sock")
    key = tmp_path / "b7.key"
    key.write_bytes(b"\x80\xfe" + bytes(range(30)))
    srv, got, done = _recording_server(path, lambda req: {"peer": req["name"]})
    try:
        r = mastctl(path, "peer", "add", "b7.example", "--psk-file", str(key))
    finally:
        done()
        srv.close()
    assert (r.returncode, r.stdout, r.stderr) == (1, "", "mastctl: cannot read the key: %s is not text: a "
                                                  "key is the base64 that `mast genkey` prints; give "
                                                  "--psk-file FILE or - for standard input\n" % key)
    assert got == []


def test_mastctl_peer_add_without_psk_file_says_how_to_give_the_key(tmp_path):
    # (the agent's "peers.b7.example.psk: required when keying is psk" alone named no option)
    path = str(tmp_path / "c.sock")
    err = "peers.b7.example.psk: required when keying is psk"
    srv, got, done = _recording_server(path, lambda req: {"ok": False, "error": err})
    try:
        r = mastctl(path, "peer", "add", "b7.example", "--internal", "10.99.0.7")
    finally:
        done()
        srv.close()
    assert (r.returncode, r.stdout) == (1, "")
    assert r.stderr == ("mastctl: %s; give the peer's key with --psk-file FILE (`mast genkey > FILE` makes "
                        "one)\n" % err), r.stderr


STATUS = {"name": "r1", "pid": 7, "uptime_s": 3, "config": "/etc/config/mast", "discovery": "linux",
          "uplinks": {}, "associations": [], "failovers": []}
PEERS = [{"name": "b7.example", "association": "established", "nonce_id": "f00d", "addresses": ["192.0.2.7"],
          "internal": "10.99.0.7"}]


@pytest.mark.parametrize("args, req, stdout", [
    (["status", "--json"], {"op": "status"}, json.dumps(STATUS, indent=2, sort_keys=True) + "\n"),
    (["status"], {"op": "status"}, format_status(STATUS)),
    (["peer", "list", "--json"], {"op": "peer_list"}, json.dumps(PEERS, indent=2, sort_keys=True) + "\n"),
    (["peer", "remove", "b7.example"], {"op": "peer_remove", "name": "b7.example"}, "peer b7.example removed\n"),
    (["uplink", "lte", "down"], {"op": "uplink", "name": "lte", "state": "down"}, "uplink lte down\n"),
    (["reload"], {"op": "reload"}, "reloaded\n"),
    (["hotplug", "ifdown", "wan", "eth1"], {"op": "hotplug", "action": "ifdown", "interface": "wan",
                                            "device": "eth1"}, ""),
])
def test_each_mastctl_command_sends_its_request_and_prints_its_answer(tmp_path, args, req, stdout):
    # (--json is the whole document, for scripts: `mastctl status --json | jq ...`)
    path = str(tmp_path / "c.sock")
    srv, got, done = _recording_server(path, lambda req: {"status": STATUS, "peers": PEERS})
    try:
        r = subprocess.run([sys.executable, "-c", "import sys; from mastd.ctl import main; sys.exit(main())"]
                           + args, capture_output=True, text=True, timeout=10,
                           env=dict(os.environ, PYTHONPATH=FIRMWARE, MASTD_CONTROL=path))
    finally:
        done()
        srv.close()
    assert (r.returncode, r.stdout, r.stderr) == (0, stdout, "")
    assert got == [req]


def test_mastctl_peer_add_takes_the_first_word_of_the_key_file(tmp_path):
    # (a key file may say more after the key: `mast genkey > k; echo " # board 7" >> k`)
    key = tmp_path / "k"
    key.write_text("\n  %s  # board 7\n" % PSK)
    path = str(tmp_path / "c.sock")
    srv, got, done = _recording_server(path, lambda req: {"peer": req["name"]})
    try:
        r = mastctl(path, "peer", "add", "b7.example", "--psk-file", str(key))
    finally:
        done()
        srv.close()
    assert (r.returncode, r.stdout, r.stderr) == (0, "peer b7.example added\n", "")
    assert got == [{"op": "peer_add", "name": "b7.example", "peer": {"psk": PSK}}]


def test_status_text_shows_each_path_with_its_rtt_and_the_last_five_failovers():
    s = {"name": "r", "uplinks": {},
         "associations": [{"peer": "srv", "state": "established", "label": 1, "nonce_id": "f00d", "primary": "wan>y",
                           "paths": [{"path": "wan>y", "state": "active", "rtt_ms": 3},
                                     {"path": "lte>y", "state": "standby", "rtt_ms": 41}]}],
         "failovers": [{"old": "o%d" % i, "new": "n%d" % i, "gap_ms": i} for i in range(7)]}
    lines = format_status(s).splitlines()
    assert [x.split() for x in lines if x.startswith("    ")] == [
        ["wan>y", "active", "rtt", "3", "ms"], ["lte>y", "standby", "rtt", "41", "ms"]]
    i = lines.index("failovers: 7")
    assert lines[i + 1:] == ["  o%d -> n%d (gap %d ms)" % (k, k, k) for k in range(2, 7)]
