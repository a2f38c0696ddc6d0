"""A peer's app socket reaches only the intended local user (issue 15 point 7): two real mastd
processes on loopback; local users are children of this test that drop root (os.setuid), as
uid 4242 (app_user) and 65534 (nobody, any other user)."""

import json
import os
import select
import shutil
import socket
import tempfile

import pytest

from mast import wire
from mastd import settings

from test_mastd_control import PSK, Proc, conf, wait_for

APP_UID = 4242
APP_GID = 4343
OTHER_UID = 65534

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root: the test runs its clients "
                                "as other users (setuid) and gives the app sockets to them")


class AsUser:
    """fn() run in a child process as uid (and gid) `uid`, with supplementary groups `groups`;
    result() is what it returned (or the error it raised, with its errno)."""

    def __init__(self, uid, fn, groups=()):
        r, w = os.pipe()
        self.pid = os.fork()
        if self.pid == 0:  # the child: never returns into pytest
            try:
                os.close(r)
                os.setgroups(list(groups))
                os.setgid(uid)
                os.setuid(uid)
                out = fn()
            except BaseException as e:  # noqa: BLE001 - reported to the parent
                out = {"error": type(e).__name__, "errno": getattr(e, "errno", None)}
            os.write(w, json.dumps(out).encode())
            os._exit(0)
        os.close(w)
        self.r = r

    def result(self, timeout=15):
        buf = b""
        end = timeout
        while True:
            ready, _, _ = select.select([self.r], [], [], end)
            if not ready:
                os.kill(self.pid, 9)
                raise AssertionError("the client did not finish")
            chunk = os.read(self.r, 65536)
            if not chunk:
                break
            buf += chunk
        os.close(self.r)
        os.waitpid(self.pid, 0)
        return json.loads(buf.decode())


def connect(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.settimeout(10)
    s.connect(path)
    return s


def send_then_recv(path, text):
    def run():
        s = connect(path)
        s.send(text.encode())
        return {"got": s.recv(100).decode("latin-1")}
    return run


def connect_send_recv_eof(path):
    def run():
        s = connect(path)  # the file lets anyone in (0666): only mastd's own check is left
        try:
            s.send(b"intruder")
        except OSError as e:
            return {"send_error": e.errno}
        try:
            return {"got": s.recv(100).decode("latin-1")}  # b"": mastd closed it unread
        except OSError as e:
            return {"recv_error": e.errno}
    return run


@pytest.fixture
def apps(tmp_path):
    d = tempfile.mkdtemp(prefix="mastd-app-")
    os.chmod(d, 0o755)  # the users can reach the directory; the socket file decides
    base = 22000 + os.getpid() % 20000
    rtr_sock, srv_sock = os.path.join(d, "rtr", "server.sock"), os.path.join(d, "srv.sock")
    srv_doc = conf("server", "router1", base, [("lo", "127.0.0.70", 100)], app_socket=srv_sock)
    rtr_doc = conf("router1", "server", base, [("a", "127.0.0.71", 10)], "127.0.0.70:%d" % base,
                   app_socket=rtr_sock)
    rtr_doc["peers"]["server"]["app_user"] = str(APP_UID)
    srv, rtr = Proc(tmp_path, "srv", srv_doc), Proc(tmp_path, "rtr", rtr_doc)
    try:
        wait_for("association", rtr.assoc)
        wait_for("app sockets", lambda: os.path.exists(rtr_sock) and os.path.exists(srv_sock))
        yield {"srv": srv, "rtr": rtr, "rtr_sock": rtr_sock, "srv_sock": srv_sock}
    finally:
        rtr.stop()
        srv.stop()
        shutil.rmtree(d, ignore_errors=True)


def counters(p):
    return p.status()["agent_counters"]


def test_only_app_user_can_use_the_app_socket_and_another_user_is_refused_and_counted(apps):
    rtr, srv = apps["rtr"], apps["srv"]
    st = os.stat(apps["rtr_sock"])
    assert (st.st_uid, oct(st.st_mode & 0o777)) == (APP_UID, "0o600")
    server_app = connect(apps["srv_sock"])  # the server's app runs as root (app_user's default)
    try:
        wait_for("the server's app", lambda: srv.status()["apps"]["router1"]["connected"])

        # another user: the kernel refuses the connection (the file's owner and mode)
        other = AsUser(OTHER_UID, send_then_recv(apps["rtr_sock"], "from nobody")).result()
        assert other == {"error": "PermissionError", "errno": 13}

        # the intended user gets through, both ways
        client = AsUser(APP_UID, send_then_recv(apps["rtr_sock"], "from 4242"))
        assert server_app.recv(100) == b"from 4242"
        assert rtr.status()["apps"]["server"]["app_uid"] == APP_UID  # it waits for the answer
        server_app.send(b"answer")
        assert client.result() == {"got": "answer"}
        c = counters(rtr)
        assert (c.get("app_connected"), c.get("app_rx"), c.get("app_refused")) == (1, 1, None)

        # the file's mode widened by hand: mastd's own check (SO_PEERCRED) still refuses
        os.chmod(apps["rtr_sock"], 0o666)
        intruder = AsUser(OTHER_UID, connect_send_recv_eof(apps["rtr_sock"])).result()
        # closed unread by mastd: EOF or a reset on recv, or EPIPE / reset already on send
        assert intruder in ({"got": ""}, {"recv_error": 104}, {"send_error": 32}, {"send_error": 104})
        wait_for("refused and counted", lambda: counters(rtr).get("app_refused") == 1)
        client = AsUser(APP_UID, send_then_recv(apps["rtr_sock"], "after"))
        assert server_app.recv(100) == b"after"  # the next datagram is the user's: none leaked
        server_app.send(b"ok")
        assert client.result() == {"got": "ok"}
        c = counters(rtr)
        assert (c.get("app_rx"), c.get("app_refused"), c.get("app_connected")) == (2, 1, 2)
    finally:
        server_app.close()


def test_the_peers_datagrams_are_dropped_and_counted_while_no_app_is_connected(apps):
    rtr, srv = apps["rtr"], apps["srv"]
    server_app = connect(apps["srv_sock"])
    try:
        wait_for("the server's app", lambda: srv.status()["apps"]["router1"]["connected"])
        server_app.send(b"nobody listens")
        wait_for("dropped at the router", lambda: counters(rtr).get("rx_data_no_app") == 1)
        assert counters(srv).get("app_rx") == 1
        # and a user who is not app_user cannot take the socket over to read them
        assert AsUser(OTHER_UID, send_then_recv(apps["rtr_sock"], "x")).result()["errno"] == 13
    finally:
        server_app.close()


def test_a_second_app_takes_the_socket_over_and_the_first_is_closed(apps):
    # docs/MASTD.md: one app at a time, a new connection replaces the old one (which must be
    # closed, not left open with nobody reading it)
    srv = apps["srv"]
    first = connect(apps["srv_sock"])
    try:
        wait_for("the first app", lambda: counters(srv).get("app_connected") == 1)
        second = connect(apps["srv_sock"])
        try:
            wait_for("the second app", lambda: counters(srv).get("app_connected") == 2)
            first.settimeout(5)
            assert first.recv(100) == b""  # closed by mastd
            second.send(b"still carried")
            wait_for("the second app's datagram", lambda: counters(srv).get("app_rx") == 1)
            assert srv.status()["apps"]["router1"]["connected"]
        finally:
            second.close()
    finally:
        first.close()


def test_app_keys_are_checked_and_the_udp_app_port_is_refused_with_the_way_out():
    def load(peer):
        return settings.from_json_text(json.dumps({"name": "s", "peers": {"p": dict(peer, psk=PSK)}}))

    a = load({"app_socket": "/run/mast/p.sock", "app_group": "0"})
    assert a.apps["p"]["app_mode"] == "0660" and a.apps["p"]["_gid"] == 0
    assert "app_socket" not in a.core["peers"]["p"]  # the core's dict never sees mastd's keys
    assert load({"app_socket": "/run/mast/p.sock"}).apps["p"]["app_mode"] == "0600"
    for peer, message in (
            ({"app_socket": "run/p.sock"}, "peers.p.app_socket: must be an absolute path"),
            ({"app_socket": "/run/p.sock", "app_mode": "0666"}, "peers.p.app_mode: must be 0600"),
            ({"app_socket": "/run/p.sock", "app_user": "no-such-user-here"},
             "peers.p.app_user: no user 'no-such-user-here' in /etc/passwd"),
            ({"app_user": "root"}, "peers.p.app_user: needs peers.p.app_socket"),
            ({"app_port": 5000}, "peers.p.app_port: the UDP app port is gone")):
        with pytest.raises(ValueError) as e:
            load(peer)
        assert str(e.value).startswith(message), str(e.value)


def test_an_app_socket_path_that_climbs_with_dotdot_is_refused():
    def load(path):
        return settings.from_json_text(json.dumps({"name": "s", "peers": {"p": {"psk": PSK, "app_socket": path}}}))

    for path in ("/run/mast/../../etc/p.sock", "/run/mast/..", "/../p.sock"):
        with pytest.raises(ValueError) as e:
            load(path)
        assert str(e.value).startswith("peers.p.app_socket: must be an absolute path"), str(e.value)
    assert load("/run/mast/..p.sock").apps["p"]["app_socket"] == "/run/mast/..p.sock"  # a name, not a climb


def connect_send(path, *datagrams, hold=None):
    """Connect, send the datagrams; with hold (a pipe's ends), stay connected until the parent
    writes to the pipe or closes it (mastd reads a client's groups from /proc/<pid>: it must
    not be gone)."""
    def run():
        if hold is not None:
            os.close(hold[1])
        s = connect(path)
        for d in datagrams:
            s.send(d)
        if hold is not None:
            os.read(hold[0], 1)
        return {"sent": len(datagrams)}
    return run


def test_a_member_of_app_group_by_a_supplementary_group_gets_in_and_others_do_not(tmp_path):
    # app_group 4343: the file is 0660 and group 4343; a process whose primary group is its own
    # but that is in 4343 besides (as users are, by /etc/group) may use it, past mastd's check
    d = tempfile.mkdtemp(prefix="mastd-grp-")
    os.chmod(d, 0o755)
    sock = os.path.join(d, "p.sock")
    doc = conf("server", "router1", 23000 + os.getpid() % 20000, [("lo", "127.0.0.72", 100)], app_socket=sock)
    doc["peers"]["router1"]["app_group"] = str(APP_GID)
    srv = Proc(tmp_path, "srv", doc)
    try:
        wait_for("the app socket", lambda: os.path.exists(sock) and srv.status())
        st = os.stat(sock)
        assert (st.st_uid, st.st_gid, oct(st.st_mode & 0o777)) == (0, APP_GID, "0o660")
        # not in the group: the kernel refuses
        assert AsUser(OTHER_UID, connect_send(sock, b"x")).result()["errno"] == 13
        # in it by a supplementary group: in, and its datagrams taken: one for the peer (with no
        # association yet), one larger than MAST carries
        big = b"x" * (wire.MAX_PAYLOAD + 1)
        hold_r, hold_w = os.pipe()
        try:
            member = AsUser(OTHER_UID, connect_send(sock, b"hello", big, hold=(hold_r, hold_w)), groups=[APP_GID])
            c = wait_for("the member's datagrams", lambda: (lambda c: c if c.get("app_too_big")
                                                            or c.get("app_refused") else None)(counters(srv)))
            os.write(hold_w, b".")
            assert member.result() == {"sent": 2}
        finally:
            os.close(hold_r)
            os.close(hold_w)
        assert (c.get("app_connected"), c.get("app_no_association"), c.get("app_too_big"),
                c.get("app_refused")) == (1, 1, 1, None)
    finally:
        srv.stop()
        shutil.rmtree(d, ignore_errors=True)


def test_an_app_socket_path_that_holds_another_kind_of_file_is_refused_and_left_alone(tmp_path):
    # (a typo such as app_socket /etc/config/mast must not remove the file as a stale socket)
    from mastd.app import AppSocket

    path = tmp_path / "mast"
    path.write_text("config mast 'global'\n")
    app = AppSocket("p", {"app_socket": str(path), "app_mode": "0600"}, None, None, None)
    with pytest.raises(OSError) as e:
        app.open()
    assert str(e.value) == "%s exists and is not a socket; remove it or choose another app_socket" % path
    assert path.read_text() == "config mast 'global'\n"
