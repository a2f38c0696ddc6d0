"""mastd at its limits: no file descriptor left (ulimit -n), a control socket whose queue of
connections is full, a signal that comes while it starts, and mastctl while it stops."""

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

from mastd import control

from test_mastd_control import FIRMWARE, PSK, _serving, needs_root, wait_for

# A child process (its limit of open files is its own, never pytest's): a listening socket (the
# control socket, or a peer's app socket) and clients that connected and sent their request
# (two on the control socket, one app); then every file descriptor the process may have is
# taken, and the loop turns (at most 4 times: while the socket is readable). It
# prints what the client got, whether the listening socket is still readable (a connection
# still waiting: the loop would wake at once, for ever), and what a client gets once
# descriptors are free again.
_NO_FDS_CHILD = r"""
import json, os, resource, select, socket, sys
sys.path.insert(0, %(firmware)r)
from mastd import control
from mastd.app import AppSocket

kind, path = sys.argv[1], sys.argv[2]
logged, counts = [], {}

class Rt:  # the runtime's reader registry, as AppSocket uses it
    def add_reader(self, obj, cb):
        return obj.fileno()
    def remove_reader(self, obj, key):
        pass
    def run_timers(self):
        pass

def count(reason):
    counts[reason] = counts.get(reason, 0) + 1

if kind == "control":
    srv = control.ControlServer(path, lambda req: {"echo": req["op"]})
    srv.log = logged.append  # (mastd gives it its log's error)
    listening, turn = srv.sock, srv.on_readable
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
else:
    srv = AppSocket("p", {"app_socket": path, "app_mode": "0600", "_uid": os.getuid(),
                          "_gid": os.getgid()}, Rt(), lambda data: True, count)
    srv.spare = control.Spare() if hasattr(control, "Spare") else None  # (mastd gives it the control socket's)
    srv.open()
    listening, turn = srv.sock, lambda: srv._on_accept(srv.sock, 0)
    client = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
clients = [client] if kind == "app" else [client, socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)]
for c in clients:
    c.settimeout(5)
    c.connect(path)
    c.sendall(b'{"op": "status"}\n')
resource.setrlimit(resource.RLIMIT_NOFILE, (64, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
held = []
while True:  # every descriptor left
    try:
        held.append(os.open(os.devnull, os.O_RDONLY))
    except OSError:
        break
for _ in range(4):  # as the loop: a turn each time poll finds the socket readable
    if select.select([listening], [], [], 0)[0]:
        turn()
waiting = bool(select.select([listening], [], [], 0)[0])
got = []
for c in clients:
    try:
        got.append(c.recv(4096).decode())
    except ConnectionResetError:  # (closed unread: a SOCK_SEQPACKET client hears of it so)
        got.append("reset")
    except socket.timeout:
        got.append("nothing")
for fd in held:
    os.close(fd)
out = {"got": got, "waiting": waiting, "log": logged, "counts": counts}
if kind == "control":
    late = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    late.settimeout(5)
    late.connect(path)
    late.sendall(b'{"op": "status"}\n')
    turn()
    turn()
    out["late"] = late.recv(4096).decode()
    out["no_fds"] = getattr(srv, "no_fds", None)
print(json.dumps(out))
"""


def _out_of_fds(tmp_path, kind):
    script = tmp_path / "child.py"
    script.write_text(_NO_FDS_CHILD % {"firmware": FIRMWARE})
    r = subprocess.run([sys.executable, str(script), kind, str(tmp_path / ("%s.sock" % kind))],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_a_control_client_when_mastd_has_no_file_descriptor_left_is_told_so_and_the_loop_rests(tmp_path):
    # before: accept() failed (EMFILE) and left the client in the queue: the control socket
    # stayed readable and mastd's loop woke at once, for ever (50 to 97 % of a CPU, measured with
    # ulimit -n 8 and one `mastctl status`), while mastctl waited 5 s for nothing
    out = _out_of_fds(tmp_path, "control")
    assert out["waiting"] is False
    error = ("mastd has no file descriptor left (its limit: 64): it accepts no connection until "
             "some are freed; raise its limit of open files (ulimit -n; procd: procd_set_param "
             "limits nofile=N; systemd: LimitNOFILE=N)")
    assert [json.loads(g) for g in out["got"]] == [{"ok": False, "error": error}] * 2
    assert out["log"] == ["control socket: " + error]  # said once, not for each client
    assert out["no_fds"] == 2
    # with descriptors free again the next client is answered as ever
    assert json.loads(out["late"]) == {"echo": "status", "ok": True}


def test_an_app_connecting_when_mastd_has_no_file_descriptor_left_is_closed_and_the_loop_rests(tmp_path):
    out = _out_of_fds(tmp_path, "app")
    assert out["waiting"] is False
    assert out["got"] == ["reset"]  # its connection closed: the app may try again
    assert out["counts"] == {"app_accept_error": 1, "app_no_fd": 1}


def _fill_queue(path):
    """Connections that fill the queue of the control socket at path (listen(8)), none accepted:
    the next connect is refused (EAGAIN). The caller closes them."""
    queued = []
    while len(queued) < 64:
        c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        c.setblocking(False)
        queued.append(c)
        try:
            c.connect(path)
        except BlockingIOError:
            break
    assert len(queued) < 64
    return queued


def test_mastctl_waits_for_room_in_a_full_queue_of_connections_and_is_answered(tmp_path, monkeypatch):
    # a Unix socket whose queue is full refuses a connect at once (EAGAIN): mastctl said
    # "cannot reach mastd ... (Resource temporarily unavailable); is it running?" while mastd
    # ran (busy a moment: a reload's SHUTs), and the hotplug script's event was lost
    path = str(tmp_path / "c.sock")
    srv = control.ControlServer(path, lambda req: {"echo": req["op"]})
    queued = _fill_queue(path)
    serving = []

    def pause(s):  # mastctl waits: mastd's loop comes back to its control socket
        if not serving:
            serving.append(_serving(srv))

    monkeypatch.setattr(control, "_pause", pause, raising=False)
    try:
        assert control.request(path, {"op": "status"}, timeout=30) == {"echo": "status", "ok": True}
        assert serving  # (it was refused at first, and tried again)
    finally:
        for stop in serving:
            stop()
        for c in queued:
            c.close()
        srv.close()


def test_mastctl_says_mastd_is_busy_when_its_queue_of_connections_stays_full(tmp_path, capsys, monkeypatch):
    from mastd import ctl

    path = str(tmp_path / "c.sock")
    srv = control.ControlServer(path, lambda req: {})  # never served: a mastd that hangs
    monkeypatch.setattr(ctl, "request", lambda p, req: control.request(p, req, timeout=0.2))
    queued = _fill_queue(path)
    try:
        assert ctl.main(["--control", path, "hotplug", "ifup", "wan", "eth1"]) == 1
        assert capsys.readouterr().err == (
            "mastctl: mastd at %s took no connection for 0.2 s: its queue of connections is full "
            "(it is busy, or hung); try again, or see its log\n" % path)
    finally:
        for c in queued:
            c.close()
        srv.close()


@needs_root
def test_a_sighup_while_mastd_starts_is_a_reload_once_it_has_started_not_its_end(tmp_path):
    # SIGHUP's default action ended mastd while it started, before the agent took the signal
    # over (procd's reload_config soon after a start, as at boot; procd counted a crash). The
    # configuration is a FIFO here, so that mastd is held reading it when the SIGHUP comes.
    port = 20000 + (os.getpid() + 11) % 20000
    first = {"name": "hub", "port": port, "profile": "fast", "peers": {"b7": {"psk": PSK}},
             "uplinks": {"a": {"device": "lo", "address": "127.0.0.21"}}}
    second = dict(first, uplinks=dict(first["uplinks"], b={"device": "lo", "address": "127.0.0.22"}))
    cfg = str(tmp_path / "mast.json")
    os.mkfifo(cfg, 0o600)
    sock = str(tmp_path / "c.sock")
    log = open(str(tmp_path / "mastd.log"), "w")
    p = subprocess.Popen([sys.executable, "-m", "mastd", "--config", cfg, "--control", sock,
                          "--discovery", "linux"], stdout=log, stderr=subprocess.STDOUT,
                         env=dict(os.environ, PYTHONPATH=FIRMWARE))
    try:
        w = os.open(cfg, os.O_WRONLY)  # returns once mastd opened it: it reads it now
        (tmp_path / "next.json").write_text(json.dumps(second))
        os.chmod(str(tmp_path / "next.json"), 0o600)
        os.replace(str(tmp_path / "next.json"), cfg)  # the file a reload reads
        p.send_signal(signal.SIGHUP)
        os.write(w, json.dumps(first).encode())
        os.close(w)

        def reloaded():
            assert p.poll() is None, open(str(tmp_path / "mastd.log")).read()
            try:
                s = control.request(sock, {"op": "status"})["status"]
            except OSError:
                return None
            return s if any(e["event"] == "reloaded" for e in s["events"]) else None

        s = wait_for("the reload", reloaded)
        assert sorted(s["uplinks"]) == ["a", "b"]
    finally:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(8)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        log.close()


def _line(conn):
    """One reply line from conn (b"" if the other end closed first)."""
    buf = b""
    while not buf.endswith(b"\n"):
        chunk = conn.recv(65536)
        if not chunk:
            break
        buf += chunk
    return buf.decode()


def _log_says(proc, text):
    with open(str(proc.cfg).replace(".json", ".log")) as f:
        return text in f.read()


@pytest.fixture
def held_pair(tmp_path):
    """Two mastd with an association; then the server is stopped (SIGSTOP), so that no SHUT of
    the router's is acknowledged: the router waits its whole 3 s for them."""
    from test_mastd_control import Proc, conf

    base = 20000 + (os.getpid() + 23) % 20000
    srv = Proc(tmp_path, "srv", conf("server", "router1", base, [("lo", "127.0.0.10", 100)]))
    rtr = Proc(tmp_path, "rtr", conf("router1", "server", base, [("a", "127.0.0.11", 10)],
                                     "127.0.0.10:%d" % base))
    try:
        wait_for("association", rtr.assoc)
        os.kill(srv.p.pid, signal.SIGSTOP)
        yield rtr, base
    finally:
        os.kill(srv.p.pid, signal.SIGCONT)
        rtr.stop()
        srv.stop()


def _changes_refused_while(rtr, base, state):
    cfg = rtr.cfg.read_text()
    late = {"op": "peer_add", "name": "late.example",
            "peer": {"psk": PSK, "addresses": ["127.0.0.77:%d" % base]}}
    error = "mastd is %s: nothing was changed; try again %s" % (
        state, "once it runs again" if state == "stopping" else "in a moment")
    assert control.request(rtr.sock, late) == {"ok": False, "error": error}
    assert control.request(rtr.sock, {"op": "uplink", "name": "a", "state": "down"}) == {
        "ok": False, "error": error}
    assert control.request(rtr.sock, {"op": "status"})["ok"] is True  # (looking is fine)
    assert rtr.cfg.read_text() == cfg


@needs_root
def test_mastctl_changes_nothing_while_mastd_stops_and_waits_for_its_shut_acks(held_pair):
    # before: the SHUTs' wait served the control socket: a peer added then was written to the
    # file and sent INIT while mastd stopped, and an uplink taken down took the SHUTs' path
    rtr, base = held_pair
    rtr.p.send_signal(signal.SIGTERM)
    wait_for("the stop", lambda: _log_says(rtr, "stopping: SHUT to 1 association(s)"))
    _changes_refused_while(rtr, base, "stopping")
    assert rtr.p.wait(15) == 0


@needs_root
def test_mastctl_changes_nothing_while_a_reload_restarts_every_association(held_pair):
    rtr, base = held_pair
    doc = json.loads(rtr.cfg.read_text())
    doc["port"] = base + 1  # (a change of our own port restarts every association)
    rtr.cfg.write_text(json.dumps(doc))
    rtr.p.send_signal(signal.SIGHUP)
    wait_for("the restart", lambda: _log_says(rtr, "reload: port changed: every association restarts"))
    _changes_refused_while(rtr, base, "restarting every association (a reload)")


def test_an_app_socket_that_cannot_be_made_for_want_of_descriptors_says_to_raise_the_limit(tmp_path):
    # (before: "peer p: app socket ...: Too many open files", once for each peer, and no more)
    script = tmp_path / "child.py"
    script.write_text(
        "import os, resource, sys\n"
        "sys.path.insert(0, %r)\n"
        "from mastd.app import AppSocket\n"
        "resource.setrlimit(resource.RLIMIT_NOFILE, (64, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))\n"
        "held = []\n"
        "while True:\n"
        "    try:\n"
        "        held.append(os.open(os.devnull, os.O_RDONLY))\n"
        "    except OSError:\n"
        "        break\n"
        "app = AppSocket('p', {'app_socket': sys.argv[1], 'app_mode': '0600', '_uid': os.getuid(),\n"
        "                      '_gid': os.getgid()}, None, None, None)\n"
        "try:\n"
        "    app.open()\n"
        "except OSError as e:\n"
        "    print(e.strerror)\n" % FIRMWARE)
    path = str(tmp_path / "p.sock")
    r = subprocess.run([sys.executable, str(script), path], capture_output=True, text=True, timeout=60)
    assert r.stdout == ("peer p: app socket %s: Too many open files; mastd has no file descriptor left "
                        "(its limit: 64): this app socket is not made; raise its limit of open files "
                        "(ulimit -n; procd: procd_set_param limits nofile=N; systemd: LimitNOFILE=N)\n"
                        % path), r.stderr


def test_a_request_served_while_a_handler_polls_is_not_read_again_when_the_handler_returns(tmp_path):
    # a reload that restarts every association waits for the SHUTs' acknowledgements in a loop
    # that serves the control socket too: a second client's request was answered inside it,
    # and the first call went on to that client: KeyError, and mastd ended (a traceback)
    path = str(tmp_path / "c.sock")
    a = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    b = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)

    def handler(req):
        if req["op"] == "reload":  # (as the SHUT wait's loop: b's request comes, and is served)
            b.sendall(b'{"op": "status"}\n')
            srv.on_readable()
        return {"echo": req["op"]}

    srv = control.ControlServer(path, handler)
    try:
        for c in (a, b):
            c.settimeout(5)
            c.connect(path)
        srv.on_readable()  # both accepted, neither has sent anything yet
        a.sendall(b'{"op": "reload"}\n')
        srv.on_readable()
        srv.on_readable()
        assert json.loads(b.recv(4096)) == {"echo": "status", "ok": True}
        assert json.loads(a.recv(4096)) == {"echo": "reload", "ok": True}
    finally:
        a.close()
        b.close()
        srv.close()


@needs_root
def test_mastd_lives_on_when_a_second_client_asks_while_a_reload_restarts_every_association(held_pair):
    rtr, base = held_pair
    doc = json.loads(rtr.cfg.read_text())
    doc["port"] = base + 1
    rtr.cfg.write_text(json.dumps(doc))
    a = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    b = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        for c in (a, b):
            c.settimeout(15)
            c.connect(rtr.sock)
        wait_for("both accepted", lambda: rtr.status() is not None)  # (a turn of its loop, at least)
        a.sendall(b'{"op": "reload"}\n')
        wait_for("the restart", lambda: _log_says(rtr, "reload: port changed: every association restarts"))
        b.sendall(b'{"op": "status"}\n')
        assert json.loads(_line(b))["ok"] is True
        assert json.loads(_line(a)) == {"ok": True}
        s = wait_for("mastd's answer after the reload", rtr.status)
        assert s["pid"] == rtr.p.pid and rtr.p.poll() is None
    finally:
        a.close()
        b.close()


def test_mastctl_reads_the_answer_of_a_mastd_that_answered_and_closed_before_it_sent(tmp_path, monkeypatch):
    # out of descriptors, mastd answers a client as it accepts it, and closes: mastctl's request
    # then met a closed socket (EPIPE) and it said "cannot reach mastd (Broken pipe); is it
    # running?", not mastd's answer
    path = str(tmp_path / "c.sock")
    lsock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    lsock.bind(path)
    lsock.listen(1)
    closed = threading.Event()
    answer = {"ok": False, "error": "mastd has no file descriptor left"}

    def serve():
        conn, _ = lsock.accept()
        conn.send(json.dumps(answer).encode() + b"\n")  # (not sendall: patched below)
        conn.close()
        closed.set()

    t = threading.Thread(target=serve)
    t.start()
    send = socket.socket.sendall

    def sendall_once_closed(self, data, *a):
        closed.wait(10)  # (the answer came and the connection closed before the request left)
        return send(self, data, *a)

    monkeypatch.setattr(socket.socket, "sendall", sendall_once_closed)
    try:
        assert control.request(path, {"op": "status"}) == answer
    finally:
        t.join(10)
        lsock.close()
