"""`mast endpoint`: the endpoint process's file checks, JSON lines out, JSON commands in."""

import base64
import json
import os
import select
import subprocess
import sys
import time

import pytest

from mast.endpoint import Endpoint
from runtime.driver import Runtime

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_cli_frame import MAST, HOST_TOOLS, mast  # noqa: E402

pytestmark = pytest.mark.usefixtures("private_files")  # (conftest: key files are 0600)

PSK = base64.b64encode(bytes(range(32))).decode()


def write(tmp_path, doc, name="ep.json"):
    path = tmp_path / name
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    return str(path)


def server_doc(**top):
    d = {"mast": {"name": "server", "peers": {"client": {"psk": PSK}}},
         "uplinks": {"wan": {"bind": "127.0.0.33:0"}}}
    d.update(top)
    return d


@pytest.mark.parametrize("doc, key", [
    ("{not json", "file: "),
    (server_doc(uplinks={"wan": {"bind": "127.0.0.33"}}), "uplinks.wan.bind: expected HOST:PORT"),
    (server_doc(uplinks={"wan": {"bind": "127.0.0.1:1", "via": "127.0.0.1:2"}}),
     "uplinks.wan.public: required with via"),
    (server_doc(connect=["nobody"]), "connect[0]: unknown peer 'nobody'"),
    (server_doc(stream={"peer": "client", "rate": "fast"}), "stream.rate: must be an integer"),
    ({"mast": {"name": "server", "peers": {"client": {"psk": "x"}}},
      "uplinks": {"wan": {"bind": "127.0.0.1:1"}}}, "mast.peers.client.psk: "),
    (server_doc(uplink={}), "uplink: unknown key"),
    (server_doc(stream={"peer": []}), "file: "),  # (these two were tracebacks)
    ("[" * 100000 + "]" * 100000, "file: "),
])
def test_a_bad_endpoint_file_is_one_mast_error_naming_the_key(tmp_path, doc, key):
    path = write(tmp_path, doc)
    r = mast("endpoint", "--config", path)
    assert r.returncode == 1
    assert r.stdout == ""
    assert r.stderr.startswith("mast: endpoint file %s: %s" % (path, key)), r.stderr
    assert r.stderr.count("\n") == 1 and "; " in r.stderr and "Traceback" not in r.stderr


def test_a_missing_endpoint_file_says_so(tmp_path):
    r = mast("endpoint", "--config", str(tmp_path / "none.json"))
    assert r.returncode == 1
    assert r.stderr.startswith("mast: endpoint file %s: file: cannot read" % (tmp_path / "none.json"))


def test_an_endpoint_file_that_cannot_be_read_or_parsed_is_not_a_key_to_fix(tmp_path):
    # (the hint said "fix that key" for a missing file, a folder and a JSON syntax error)
    for path in (str(tmp_path / "none.json"), str(tmp_path)):
        r = mast("endpoint", "--config", path)
        assert r.returncode == 1 and r.stdout == ""
        assert r.stderr.rstrip().endswith("; check the path (the format is in docs/RUNTIME.md)"), r.stderr
    bad = tmp_path / "bad.json"
    bad.write_text("{bad")
    r = mast("endpoint", "--config", str(bad))
    assert r.returncode == 1 and "is not valid JSON" in r.stderr
    assert r.stderr.rstrip().endswith("; fix the file (the format is in docs/RUNTIME.md)"), r.stderr


def test_an_address_in_use_is_a_mast_error_with_a_hint(tmp_path):
    import socket

    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.34", 0))
    try:
        port = s.getsockname()[1]
        path = write(tmp_path, server_doc(uplinks={"wan": {"bind": "127.0.0.34:%d" % port}}))
        r = mast("endpoint", "--config", path, "--no-stdin", "--duration", "1")
    finally:
        s.close()
    assert r.returncode == 1
    assert r.stderr.startswith("mast: uplink wan: cannot bind to 127.0.0.34:%d" % port)
    assert "another program is using that address" in r.stderr


def test_json_prints_one_document_with_the_final_status(tmp_path):
    path = write(tmp_path, server_doc())
    r = mast("endpoint", "--config", path, "--no-stdin", "--duration", "0.3", "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["reason"] == "duration"
    assert doc["status"]["name"] == "server"
    assert doc["status"]["runtime"]["interpreter"].startswith("cpython ")
    assert '"event": "started"' in r.stderr  # the lines went to stderr


@pytest.mark.parametrize("mode, warning", [
    (0o604, "mast: warning: %s holds keys and its mode 0604 lets others read them; chmod 600 %s\n"),
    (0o600, "")])
def test_an_endpoint_file_holding_keys_that_others_may_read_is_warned_about(tmp_path, mode, warning):
    path = write(tmp_path, server_doc())
    os.chmod(path, mode)
    r = mast("endpoint", "--config", path, "--no-stdin", "--duration", "0.2", "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["reason"] == "duration", r.stderr
    assert [x for x in r.stderr.splitlines(True) if not x.startswith("{")] == (
        [warning % (path, path)] if warning else [])
    assert PSK not in r.stderr


@pytest.mark.parametrize("sig", ["SIGTERM", "SIGHUP", "SIGINT"])
def test_a_stop_signal_still_ends_with_the_final_status(tmp_path, sig):
    # a supervisor's stop (systemd, a shell's hang-up) is not a crash: the JSON document a
    # script waits for still comes (before: no line, no document, exit -15)
    returncode, out, err = endpoint_stopped_by(tmp_path, sig)
    assert returncode == 0, err
    doc = json.loads(out)
    why = "interrupt" if sig == "SIGINT" else "signal"  # (Ctrl-C: the reason says so)
    assert doc["reason"] == why and doc["status"]["name"] == "server"
    assert '"event": "stopped", "reason": "%s"' % why in err.decode()


def endpoint_stopped_by(tmp_path, *signals):
    """`mast endpoint --json` (a server_doc() file) sent these signals, one after the other,
    once it has started -> (exit status, stdout, stderr) once it has ended (killed after 10 s)."""
    import signal

    path = write(tmp_path, server_doc())
    env = dict(os.environ, PYTHONPATH=HOST_TOOLS)
    # (SIGINT as a terminal sends it: a shell's background job inherits it ignored)
    proc = subprocess.Popen(MAST + ["endpoint", "--config", path, "--json"], env=env,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        Lines(proc.stderr).until(lambda ln: ln.get("event") == "started")
        for name in signals:
            proc.send_signal(getattr(signal, name))
        out, err = proc.communicate(timeout=10)
        return proc.returncode, out, err
    finally:
        proc.kill()
        proc.wait(5)


class Lines:
    """JSON lines from a pipe, read without blocking (select() cannot see what a buffered
    reader already holds, so this keeps its own buffer)."""

    def __init__(self, pipe):
        self.fd = pipe.fileno()
        self.buf = b""
        self.eof = False

    def ready(self, timeout=0.0):
        """The complete lines available now (waiting up to timeout for the first)."""
        if b"\n" not in self.buf and not self.eof:
            r, _, _ = select.select([self.fd], [], [], timeout)
            if r:
                data = os.read(self.fd, 65536)
                self.eof = not data
                self.buf += data
        out = []
        while b"\n" in self.buf:
            line, self.buf = self.buf.split(b"\n", 1)
            out.append(json.loads(line))
        return out

    def until(self, pred, limit_s=10.0, poll=None):
        got = []
        end = time.monotonic() + limit_s
        while time.monotonic() < end and not self.eof:
            if poll is not None:
                poll()
            for ln in self.ready(0.01):
                got.append(ln)
                if pred(ln):
                    return got
        raise AssertionError("no such line within %s s; got %r" % (limit_s, got))


def test_events_come_out_as_json_lines_and_commands_go_in(tmp_path):
    path = write(tmp_path, server_doc())
    env = dict(os.environ, PYTHONPATH=HOST_TOOLS)
    proc = subprocess.Popen(MAST + ["endpoint", "--config", path], env=env, text=True, bufsize=1,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    client = Runtime(Endpoint({"name": "client", "peers": {"server": {"psk": PSK}}}, os.urandom))
    lines = Lines(proc.stdout)
    try:
        started = lines.until(lambda ln: ln.get("event") == "started")[-1]
        assert started["runtime"].startswith("cpython ")
        host, port = started["uplinks"]["wan"]["public"].rsplit(":", 1)
        client.add_uplink("eth", ("127.0.0.35", 0))
        client.connect("server", addrs=[(host, int(port))])
        end = time.monotonic() + 5
        while time.monotonic() < end and not client.send(b"hello", "server"):
            client.poll(10)
        data = lines.until(lambda ln: ln.get("event") == "data", 5, lambda: client.poll(5))[-1]
        assert data["hex"] == b"hello".hex() and data["peer"] == "client"
        assert data["src"].startswith("127.0.0.35:") and data["uplink"] == "wan"

        proc.stdin.write('{"op": "send", "text": "hi there"}\n{"op": "frobnicate"}\nnot json\n'
                         '{"op": "status"}\n')
        got = []

        def poll():
            client.poll(5)
            got.extend(client.recv())

        replies = [ln for ln in lines.until(lambda ln: ln.get("reply") == "status", 5, poll)
                   if "reply" in ln]
        end = time.monotonic() + 5
        while not got and time.monotonic() < end:
            poll()
        assert got and got[0].payload == b"hi there"
        assert replies[0] == {"reply": "send", "ok": True}
        assert replies[1]["reply"] == "frobnicate" and "unknown op" in replies[1]["error"]
        assert replies[2]["reply"] is None and replies[2]["error"].startswith("not JSON")
        assert replies[3]["status"]["associations"][0]["state"] == "established"

        proc.stdin.close()  # end of input ends the process
        last = lines.until(lambda ln: ln.get("event") == "stopped")[-1]
        assert last["reason"] == "eof"
        assert proc.wait(5) == 0
    finally:
        proc.kill()
        proc.wait(5)
        client.shutdown()


@pytest.mark.parametrize("runtime", ["cpython", "micropython"])
def test_a_command_line_over_8_kb_is_refused_once_and_the_next_line_runs(tmp_path, runtime):
    # docs/RUNTIME.md: a command line is at most 8 KB; a longer one gets one error reply and the
    # rest of it is skipped (never read as commands); a line of exactly 8 KB still runs
    from mast_tools.board_process import board_command
    from mast_tools.netutil import free_udp_port

    port = free_udp_port(("127.0.0.33",))  # (MicroPython cannot read back a port 0 picked)
    doc = server_doc(uplinks={"wan": {"bind": "127.0.0.33:%d" % port}})
    try:
        cmd = board_command(write(tmp_path, doc), str(tmp_path / "mpy"), prefer=runtime)
    except RuntimeError as e:
        pytest.skip(str(e))
    exact = json.dumps({"op": "status", "pad": ""})
    exact = exact[:-2] + "x" * (8192 - len(exact)) + exact[-2:]  # (8,192 bytes: an unknown key's reply)
    assert len(exact) == 8192
    long_line = json.dumps({"op": "quit", "pad": "y" * 20000})  # (a quit, if its tail were read)
    text = "\n".join([long_line, json.dumps({"op": "status"}), exact, '{"op": "quit"}', ""])
    p = subprocess.run(cmd.argv, env=cmd.env, cwd=str(tmp_path), input=text.encode(),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    out = [json.loads(x) for x in p.stdout.decode().splitlines()]
    replies = [x for x in out if "reply" in x]
    assert replies[0] == {"reply": None, "error": "command line longer than 8192 bytes"}, replies
    assert replies[1]["reply"] == "status" and "status" in replies[1], replies  # the next line ran
    assert replies[2]["reply"] == "status", replies  # 8,192 bytes: taken (and answered)
    assert replies[3:] == [{"reply": "quit"}] or [r["reply"] for r in replies[3:]] == ["quit"], replies
    assert [x for x in out if x.get("event") == "stopped"], out  # ended by the quit, not by EOF
    assert p.returncode == 0, p.stderr.decode()[-2000:]


def _server_command(tmp_path, runtime):
    """The endpoint process of a server on 127.0.0.33 (a free port: MicroPython cannot read
    back a port 0 picked) on `runtime`, with stdin; skips the test where it cannot run."""
    from mast_tools.board_process import board_command
    from mast_tools.netutil import free_udp_port

    port = free_udp_port(("127.0.0.33",))
    try:
        return board_command(write(tmp_path, server_doc(uplinks={"wan": {"bind": "127.0.0.33:%d" % port}})),
                             str(tmp_path / "mpy"), prefer=runtime)
    except RuntimeError as e:
        pytest.skip(str(e))


def _rss_bytes(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS for %d" % pid)


@pytest.mark.parametrize("runtime", ["cpython", "micropython"])
def test_a_command_line_that_goes_on_without_a_newline_is_refused_once_and_not_kept(tmp_path, runtime):
    # 8 MB with no newline yet: one error reply, and none of it kept while it goes on (the
    # process's memory does not grow with it on CPython; on MicroPython's 256K heap, keeping it
    # would end in "no memory"); the commands after its newline run
    if not os.path.exists("/proc/self/status"):
        pytest.skip("no /proc here to read a process's memory from")
    cmd = _server_command(tmp_path, runtime)
    with open(str(tmp_path / "stderr"), "wb") as err:
        proc = subprocess.Popen(cmd.argv, env=cmd.env, cwd=str(tmp_path), stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=err)
    lines = Lines(proc.stdout)
    out = []
    try:
        proc.stdin.write(b'{"op": "status"}\n')
        proc.stdin.flush()
        out += lines.until(lambda ln: ln.get("reply") == "status", 30)
        before = _rss_bytes(proc.pid)
        piece = b"y" * 65536
        for _ in range(128):  # (a write returns once the process has read all but a pipe's worth)
            proc.stdin.write(piece)
        proc.stdin.flush()
        grown = _rss_bytes(proc.pid) - before
        proc.stdin.write(b'\n{"op": "status"}\n{"op": "quit"}\n')
        proc.stdin.flush()
        out += lines.until(lambda ln: ln.get("event") == "stopped", 60)
    finally:
        proc.kill()
        proc.wait(10)
        proc.stdin.close()
        proc.stdout.close()
    replies = [x for x in out if "reply" in x]
    assert [x["reply"] for x in replies] == ["status", None, "status", "quit"], (replies, grown)
    assert replies[1] == {"reply": None, "error": "command line longer than 8192 bytes"}, replies
    assert out[-1]["event"] == "stopped" and out[-1]["reason"] == "quit", out[-1]
    if runtime == "cpython":  # (MicroPython's heap is taken whole at its start)
        assert grown < 4 << 20, "the process grew by %d bytes while the line went on" % grown


@pytest.mark.parametrize("runtime", ["cpython", "micropython"])
def test_the_endpoint_process_takes_a_positive_duration_and_refuses_any_other(tmp_path, runtime):
    # its own --duration (docs/RUNTIME.md), read as `mast endpoint` reads it (argtypes.seconds):
    # seconds above 0; 0, a negative, a word, inf and nan are one `mast:` line and exit 1
    from mast_tools.board_process import board_command
    from mast_tools.netutil import free_udp_port

    port = free_udp_port(("127.0.0.33",))
    path = write(tmp_path, server_doc(uplinks={"wan": {"bind": "127.0.0.33:%d" % port}}))
    for value in ("0", "-1", "soon", "inf", "nan"):
        try:
            cmd = board_command(path, str(tmp_path / "mpy"), prefer=runtime,
                                extra=("--no-stdin", "--duration", value))
        except RuntimeError as e:
            pytest.skip(str(e))
        p = subprocess.run(cmd.argv, env=cmd.env, cwd=str(tmp_path), capture_output=True,
                           text=True, timeout=60)
        assert p.returncode == 1 and p.stdout == "", (value, p.stdout, p.stderr)
        assert p.stderr == ("mast: --duration %s: give the seconds to run, a number above 0; "
                            "see docs/RUNTIME.md\n" % value), p.stderr
    cmd = board_command(path, str(tmp_path / "mpy"), prefer=runtime, extra=("--no-stdin", "--duration", "0.3"))
    t0 = time.monotonic()
    p = subprocess.run(cmd.argv, env=cmd.env, cwd=str(tmp_path), capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    stopped = [json.loads(x) for x in p.stdout.splitlines() if '"stopped"' in x]
    assert stopped and stopped[-1].get("reason") == "duration", p.stdout[-2000:]
    assert 0.3 <= time.monotonic() - t0 < 30


@pytest.mark.parametrize("runtime", ["cpython", "micropython"])
def test_hostile_commands_each_get_an_error_reply_and_the_process_runs_on(tmp_path, runtime):
    # each of these ended the process with a traceback and no `stopped` line (an op that is a
    # list, JSON nested 5,000 deep, a device that is a number, a stream size of the wrong type),
    # a bad priority stuck to its uplink, and a line that is not JSON was repeated in its error
    # (80 characters of it: a psk with them)
    from mast_tools.board_process import board_command
    from mast_tools.netutil import free_udp_port

    port, port2 = free_udp_port(("127.0.0.33",)), free_udp_port(("127.0.0.36",))
    doc = server_doc(uplinks={"wan": {"bind": "127.0.0.33:%d" % port}})
    try:
        cmd = board_command(write(tmp_path, doc), str(tmp_path / "mpy"), prefer=runtime)
    except RuntimeError as e:
        pytest.skip(str(e))
    lines = [json.dumps({"op": []}), json.dumps({"op": {}}), "[" * 5000,
             json.dumps({"op": "uplink", "name": "w", "bind": "127.0.0.36:%d" % port2, "device": 5}),
             json.dumps({"op": "uplink", "name": "wan", "priority": "x"}),
             json.dumps({"op": "uplink", "name": "wan", "priority": 7}),
             json.dumps({"op": "stream", "peer": "client", "rate": 50, "size": "x"}),
             json.dumps({"op": "stream", "peer": "client", "rate": 50, "size": 5000}),
             '{"op": "peer", "name": "x", "set": {"psk": "%s"}' % PSK,
             json.dumps({"op": "connect", "peer": {"psk": PSK}}),  # (MicroPython: repeated)
             json.dumps({"op": "send", "hex": "zz"}), json.dumps({"op": "send", "hex": "abc"}),
             json.dumps({"op": "send", "hex": 5}), json.dumps({"op": "down"}),
             json.dumps({"op": "uplink", "bind": "127.0.0.36:0"}),
             json.dumps({"op": "uplink", "name": "w3", "bind": "nonsense"}),
             json.dumps({"op": "connect", "peer": "client", "addrs": ["nonsense"]}),
             json.dumps({"op": "peer", "name": "x"}), json.dumps({"op": "peer", "name": "x", "set": 5}),
             json.dumps({"op": "status"}), json.dumps({"op": "quit"}), ""]
    p = subprocess.run(cmd.argv, env=cmd.env, cwd=str(tmp_path), input="\n".join(lines).encode(),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    assert p.returncode == 0 and "Traceback" not in p.stderr.decode(), p.stderr.decode()[-2000:]
    assert PSK not in p.stdout.decode()
    out = [json.loads(x) for x in p.stdout.decode().splitlines()]
    replies = [x for x in out if "reply" in x]
    assert [r.get("error", "").split(":")[0] for r in replies[:3]] == [
        "unknown op None (known", "unknown op None (known", "not JSON"], replies
    # (a bad field's error names it, with no exception's name before it: both runtimes)
    assert [r.get("error") for r in replies[3:9]] == [
        "device must be an interface's name (text)", "priority must be an integer from 0 to 255", None,
        "size must be an integer from 13 to 1200", "size must be an integer from 13 to 1200",
        "not JSON"], replies
    assert replies[5] == {"reply": "uplink", "name": "wan", "bind": "127.0.0.33:%d" % port,
                          "public": "127.0.0.33:%d" % port}, replies[5]  # the bad priority did not stick
    assert replies[9] == {"reply": "connect", "error": "peer must be a name (text)"}
    # bad hex in send (it said "Error: Non-hexadecimal digit found"), a missing field (it said
    # "KeyError: 'name'"), an address (it did not say which field): plain, naming the field
    hexerr = "hex must be the payload in hex digits (0-9, a-f), two a byte"
    assert [(r["reply"], r.get("error")) for r in replies[10:17]] == [
        ("send", hexerr), ("send", hexerr), ("send", hexerr), ("down", "name must be a name (text)"),
        ("uplink", "name must be the uplink's name (text)"),
        ("uplink", "bind: expected HOST:PORT (IPv6: [HOST]:PORT), not 'nonsense'"),
        ("connect", "addrs: expected HOST:PORT (IPv6: [HOST]:PORT), not 'nonsense'")], replies[10:17]
    peer_err = 'give "set": the peer\'s section (psk, addresses, ...), or "remove": true'
    assert [(r["reply"], r.get("error")) for r in replies[17:19]] == [("peer", peer_err)] * 2, replies[17:19]
    assert replies[19]["reply"] == "status" and replies[20]["reply"] == "quit"
    assert out[-1].get("event") == "stopped" and out[-1].get("reason") == "quit", out[-1]


@pytest.mark.parametrize("runtime", ["cpython", "micropython"])
def test_a_close_or_connect_field_of_the_wrong_type_is_refused_naming_the_field(tmp_path, runtime):
    # docs/RUNTIME.md: any bad field gets an error naming it. close took a peer of any type and
    # answered ok, closing nothing (an object, a number; with a peer to redial, an object was a
    # TypeError's name and text); connect's addrs as a number was "TypeError: 'int' object is
    # not iterable", as an object it repeated the object's first key (a pasted key with it), as
    # one text it complained of its first character
    from mast_tools.board_process import board_command
    from mast_tools.netutil import free_udp_port

    port = free_udp_port(("127.0.0.33",))
    doc = server_doc(uplinks={"wan": {"bind": "127.0.0.33:%d" % port}})
    try:
        cmd = board_command(write(tmp_path, doc), str(tmp_path / "mpy"), prefer=runtime)
    except RuntimeError as e:
        pytest.skip(str(e))
    lines = [json.dumps({"op": "close", "peer": {"psk": PSK}}), json.dumps({"op": "close", "peer": 5}),
             json.dumps({"op": "close", "peer": ["client"]}), json.dumps({"op": "close", "peer": "client"}),
             json.dumps({"op": "close"}),
             json.dumps({"op": "connect", "peer": "client", "addrs": 5}),
             json.dumps({"op": "connect", "peer": "client", "addrs": {PSK: 1}}),
             json.dumps({"op": "connect", "peer": "client", "addrs": "127.0.0.1:9"}),
             json.dumps({"op": "quit"}), ""]
    p = subprocess.run(cmd.argv, env=cmd.env, cwd=str(tmp_path), input="\n".join(lines).encode(),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    assert p.returncode == 0 and "Traceback" not in p.stderr.decode(), p.stderr.decode()[-2000:]
    assert PSK not in p.stdout.decode()
    replies = [json.loads(x) for x in p.stdout.decode().splitlines() if '"reply"' in x]
    refused = {"reply": "close", "error": "peer must be a name (text)"}
    assert replies[:5] == [refused] * 3 + [{"reply": "close"}] * 2, replies
    addrs = {"reply": "connect", "error": 'addrs must be a list of "HOST:PORT" texts'}
    assert replies[5:8] == [addrs] * 3, replies[5:8]


def test_a_board_build_whose_mpy_cross_fails_says_so_and_micropython_asked_for_is_required(tmp_path, monkeypatch):
    from mast_tools import board_process

    with pytest.raises(RuntimeError) as e:  # (board_command then falls back to the .py sources)
        board_process.build_mpy(str(tmp_path / "out"),
                                mpy_cross=[sys.executable, "-c", "print('bad input'); raise SystemExit(1)", "--"])
    assert str(e.value).startswith("mpy-cross mast/") and str(e.value).endswith(": bad input")
    monkeypatch.setattr(board_process, "find_micropython", lambda: None)
    with pytest.raises(RuntimeError) as e:
        board_process.board_command("ep.json", str(tmp_path / "b"), prefer="micropython")
    assert "MicroPython unix port is not installed" in str(e.value)
    assert board_process.board_command("ep.json", str(tmp_path / "b")).runtime == "cpython"


def _process(doc, out):
    from runtime.endpoint_main import Process
    from runtime.runconfig import check

    return Process(check(doc), out)


def _reply(p, out, cmd):
    p.command(json.dumps(cmd))
    return json.loads(out[-1])


def _turn_until(turn, pred, limit_s=5.0):
    """turn() until pred() holds (bounded: 5,000 turns and limit_s); -> pred()."""
    end = time.monotonic() + limit_s
    for _ in range(5000):
        if pred() or time.monotonic() > end:
            break
        turn()
    return pred()


def test_the_stream_command_checks_its_rate_and_runs_only_while_its_own_peer_is_associated():
    from runtime import stream

    out = []
    p = _process({"mast": {"name": "server", "peers": {"client": {"psk": PSK}, "other": {"psk": PSK}}},
                  "uplinks": {"wan": {"bind": "127.0.0.65:0"}}, "stream_records": True}, out.append)
    clients = {}

    def turn():
        p.rt.poll(2)
        p.pump()
        for c in clients.values():
            c.poll(2)

    def until(pred, limit_s=5.0):
        return _turn_until(turn, pred, limit_s)

    def associate(name, ip):
        c = Runtime(Endpoint({"name": name, "peers": {"server": {"psk": PSK}}}, os.urandom))
        clients[name] = c
        c.add_uplink("eth", (ip, 0))
        c.connect("server", addrs=[p.rt.uplinks["wan"].bind])
        assert until(lambda: any(json.loads(x).get("event") == "association_up"
                                 and json.loads(x).get("peer") == name for x in out))

    try:
        p.start()
        for rate in (1001, -1, "fast"):  # (1001: a period of 0 ms, sent as fast as the loop turns)
            assert "rate must be" in _reply(p, out, {"op": "stream", "peer": "client", "rate": rate})["error"]
        assert _reply(p, out, {"op": "stream", "peer": "client", "rate": 50})["stream"]["running"] is False
        associate("other", "127.0.0.66")
        assert p.stream.status()["running"] is False  # another peer's association: not the stream's
        associate("client", "127.0.0.67")
        assert p.stream.status()["running"] is True  # its own peer's association_up started it
        assert _reply(p, out, {"op": "stream", "rate": 0})["stream"]["running"] is False
        # asked again while the association is up (its association_up is long past): at once
        assert _reply(p, out, {"op": "stream", "rate": 50})["stream"]["running"] is True
        # stream_records: a received stream record is shown as its seq and time, not as hex
        assert clients["client"].send(stream.encode(5, 77), "server")
        assert until(lambda: any(json.loads(x).get("event") == "data" for x in out))
        data = [json.loads(x) for x in out if json.loads(x).get("event") == "data"][0]
        assert (data["seq"], data["sent_ms"], data["len"]) == (5, 77, 64) and "hex" not in data
    finally:
        p.rt.shutdown()
        for c in clients.values():
            c.shutdown()


def test_an_op_or_an_uplink_name_that_is_not_text_is_never_repeated():
    # (found by fuzzing the line protocol) an op that was an object came back whole, twice, in
    # the reply, with the psk of the peer section it held; so did a `down` name that was an
    # object once no uplink was left (an empty dict's pop takes a key it cannot hash), an
    # address that was one (runtime/sockaddr.py), and a stream's peer, in every status after;
    # on MicroPython, whose `in` takes an object, a peer's name for connect, send and peer
    out = []
    p = _process({"mast": {"name": "server", "peers": {"client": {"psk": PSK}}},
                  "uplinks": {"wan": {"bind": "127.0.0.33:0"}}}, out.append)
    p.start()
    try:
        secret = {"psk": base64.b64encode(b"k" * 32).decode()}
        r = _reply(p, out, {"op": secret})
        assert r == {"reply": None, "error": "unknown op None (known: close, connect, down, peer, "
                     "presence, quit, send, status, stream, uplink)"}, r
        assert _reply(p, out, {"op": ["peer", secret]})["reply"] is None
        assert _reply(p, out, {"op": "down", "name": "wan"}) == {"reply": "down", "name": "wan"}
        r = _reply(p, out, {"op": "down", "name": secret})  # (no uplink left)
        assert r == {"reply": "down", "error": "name must be a name (text)"}, r
        for cmd in ({"op": "connect", "peer": secret}, {"op": "send", "text": "x", "peer": secret},
                    {"op": "peer", "name": secret, "remove": True}):  # (MicroPython's `in`)
            r = _reply(p, out, cmd)
            assert r == {"reply": cmd["op"], "error": "%s must be a name (text)" % (
                "name" if "name" in cmd else "peer")}, r
        r = _reply(p, out, {"op": "uplink", "name": "w2", "bind": secret})  # (sockaddr.py)
        assert r == {"reply": "uplink", "error": "bind: must be text HOST:PORT, not dict"}, r
        r = _reply(p, out, {"op": "stream", "peer": secret, "rate": 50})  # (then in every status)
        assert r == {"reply": "stream", "error": "no stream yet: give its peer"}, r
        assert p.stream is None
        assert _reply(p, out, {"op": "status"})["reply"] == "status"
        assert secret["psk"] not in "".join(out)
    finally:
        p.rt.shutdown()


def test_a_line_lost_for_want_of_memory_is_reported_once_and_the_lines_go_on():
    out = []
    lose = [1]

    def write(line):
        if lose:
            lose.pop()
            raise MemoryError
        out.append(line)

    p = _process(server_doc(uplinks={"wan": {"bind": "127.0.0.68:0"}}), write)
    try:
        p.start()  # its "started" line is the one lost
        for _ in range(3):
            p.command('{"op": "quit"}')
        assert [json.loads(x) for x in out] == [{"event": "lines_dropped", "n": 1, "why": "no memory"},
                                                {"reply": "quit"}, {"reply": "quit"}, {"reply": "quit"}]
        assert p.rt.status()["runtime"]["counters"]["lines_dropped"] == 1
    finally:
        p.rt.shutdown()


def test_a_peer_of_connect_with_no_room_at_start_is_connected_on_a_later_turn():
    # a board's endpoint started in a full heap: the connect of a peer of "connect" that
    # raised MemoryError is counted and tried again, never forgotten (the peer waits passive,
    # not knowing our address: only our connect can bring the association up)
    client = Runtime(Endpoint({"name": "client", "peers": {"server": {"psk": PSK, "initiate": False}}},
                              os.urandom))
    client.add_uplink("eth", ("127.0.0.71", 0))
    out = []
    p = _process({"mast": {"name": "server", "peers": {"client": {
        "psk": PSK, "addresses": ["%s:%d" % client.uplinks["eth"].bind]}}},
        "uplinks": {"wan": {"bind": "127.0.0.72:0"}}, "connect": ["client"]}, out.append)
    real, tries = p.rt.connect, []

    def connect(peer, *a, **kw):
        tries.append(peer)
        if len(tries) == 1:
            raise MemoryError("memory allocation failed, allocating 592 bytes")
        return real(peer, *a, **kw)

    p.rt.connect = connect

    def up():
        return any(json.loads(x).get("event") == "association_up" for x in out)

    try:
        p.start()  # the first connect finds no room
        assert tries == ["client"] and not up()
        end = time.monotonic() + 5.0
        for _ in range(2000):
            if up() or time.monotonic() > end:
                break
            p.quit = None
            p.run(duration_ms=2)
            client.poll(2)
        assert up(), out
        assert tries == ["client", "client"]  # once more, and only once
        assert p.rt.status()["runtime"]["counters"]["no_memory"] == 1
    finally:
        p.rt.shutdown()
        client.shutdown()


def test_the_uplink_command_keeps_what_it_is_not_told_to_change():
    # a renumbering keeps the uplink's device (else it escapes its interface), its relay's
    # outside address (else the core advertises the local one) and a priority set earlier
    root = hasattr(os, "geteuid") and os.geteuid() == 0  # (SO_BINDTODEVICE needs CAP_NET_RAW)
    eth = {"bind": "127.0.0.69:0"}
    if root:
        eth["device"] = "lo"
    out = []
    p = _process(server_doc(uplinks={"eth": eth, "cell": {"bind": "127.0.0.1:0", "via": "127.0.0.1:40001",
                                                          "public": "127.0.0.4:6278"}}), out.append)
    try:
        p.start()
        assert "error" not in _reply(p, out, {"op": "uplink", "name": "eth", "priority": 7})
        assert _reply(p, out, {"op": "uplink", "name": "eth", "addr": "127.0.0.70:0"})["bind"].startswith("127.0.0.70:")
        st = p.rt.status()["uplinks"]["eth"]
        assert st["priority"] == 7 and st["addr"].startswith("127.0.0.70:")
        assert st["socket"]["device"] == ("lo" if root else None)
        r = _reply(p, out, {"op": "uplink", "name": "cell", "bind": "127.0.0.1:0"})  # a new socket
        assert r["public"] == "127.0.0.4:6278" and r["bind"] != r["public"]
        assert p.rt.status()["uplinks"]["cell"]["addr"] == "127.0.0.4:6278"
    finally:
        p.rt.shutdown()


def test_the_last_line_has_the_streams_status_too(tmp_path):
    from runtime.endpoint_main import main

    out = []
    path = write(tmp_path, server_doc(uplinks={"wan": {"bind": "127.0.0.71:0"}},
                                      stream={"peer": "client", "rate": 10}))
    assert main([path, "--no-stdin", "--duration", "0.2"], out=out.append) == 0
    last = json.loads(out[-1])
    assert last["event"] == "stopped" and last["reason"] == "duration"
    assert last["status"]["stream"]["peer"] == "client" and last["status"]["stream"]["rate"] == 10


@pytest.mark.parametrize("runtime", ["cpython", "micropython"])
def test_the_endpoint_process_exits_1_for_a_bad_file_or_an_address_it_cannot_bind(tmp_path, runtime):
    # (a board's process, or a script's, tells failure by its exit status: `mast endpoint`'s
    # own checks are tested above, this is runtime.endpoint_main's)
    from mast_tools.board_process import board_command

    cases = [(server_doc(connect=["nobody"]), "mast: endpoint file: connect[0]: unknown peer 'nobody'"),
             (server_doc(uplinks={"wan": {"bind": "192.0.2.1:6278"}}), "uplink wan: cannot bind to 192.0.2.1:6278")]
    for i, (doc, err) in enumerate(cases):
        try:
            cmd = board_command(write(tmp_path, doc, "ep%d.json" % i), str(tmp_path / "mpy"), prefer=runtime,
                                extra=("--no-stdin", "--duration", "5"))
        except RuntimeError as e:
            pytest.skip(str(e))
        p = subprocess.run(cmd.argv, env=cmd.env, cwd=str(tmp_path), capture_output=True, text=True,
                           timeout=60)
        assert p.returncode == 1 and p.stdout == "", (doc, p.stdout, p.stderr)
        assert p.stderr.startswith("mast: ") and err in p.stderr and "Traceback" not in p.stderr, p.stderr


def test_the_uplink_command_takes_a_priority_and_cost_of_0_to_255_only():
    out = []
    p = _process(server_doc(uplinks={"wan": {"bind": "127.0.0.73:0"}}), out.append)
    try:
        p.start()
        for k in ("priority", "cost"):
            for v in (256, -1, "1", True):
                r = _reply(p, out, {"op": "uplink", "name": "wan", k: v})
                assert r == {"reply": "uplink", "error": "%s must be an integer from 0 to 255" % k}, r
            assert "error" not in _reply(p, out, {"op": "uplink", "name": "wan", k: 255})
        for name in ("", 5, None):
            assert _reply(p, out, {"op": "uplink", "name": name, "bind": "127.0.0.73:0"}) == {
                "reply": "uplink", "error": "name must be the uplink's name (text)"}, name
        assert sorted(p.rt.status()["uplinks"]) == ["wan"]
        st = p.rt.status()["uplinks"]["wan"]
        assert (st["priority"], st["cost"]) == (255, 255)
    finally:
        p.rt.shutdown()


def test_the_first_stream_command_needs_its_peer_and_a_refused_one_leaves_no_stream():
    out = []
    p = _process(server_doc(uplinks={"wan": {"bind": "127.0.0.74:0"}}), out.append)
    try:
        p.start()
        assert _reply(p, out, {"op": "stream", "rate": 5}) == {
            "reply": "stream", "error": "no stream yet: give its peer"}
        r = _reply(p, out, {"op": "stream", "peer": "client", "rate": 5})
        assert r["stream"]["peer"] == "client" and r["stream"]["rate"] == 5, r
    finally:
        p.rt.shutdown()


def test_the_endpoint_process_refuses_an_argument_it_does_not_know(tmp_path):
    # (a mistyped --no-stdin taken in silence would leave the process reading its stdin)
    from runtime.endpoint_main import main, USAGE

    path = write(tmp_path, server_doc(uplinks={"wan": {"bind": "127.0.0.75:0"}}))
    out = []
    for argv in ([path, "--no-stdn"], [path, path], [path, "--duration"], ["--no-stdin"]):
        with pytest.raises(ValueError) as e:
            main(argv, out=out.append)
        assert str(e.value) == USAGE, argv
    assert out == []


def test_stream_records_on_the_command_line_shows_a_received_record_as_its_seq(tmp_path):
    # --stream-records (as the file's "stream_records"): a stream record is one data line with
    # its seq and send time, not its hex
    import threading

    from mast_tools.netutil import free_udp_port
    from runtime import stream
    from runtime.endpoint_main import main

    port = free_udp_port(("127.0.0.76",))
    path = write(tmp_path, server_doc(uplinks={"wan": {"bind": "127.0.0.76:%d" % port}}))
    c = Runtime(Endpoint({"name": "client", "peers": {"server": {"psk": PSK}}}, os.urandom))
    c.add_uplink("eth", ("127.0.0.77", 0))
    sent = []
    stop = threading.Event()

    def client():  # (runs until the endpoint process is done, at most 30 s)
        end = time.monotonic() + 30.0
        c.connect("server", addrs=[("127.0.0.76", port)])
        while not stop.is_set() and time.monotonic() < end:
            c.poll(2)
            for ev in c.events():
                if ev.kind == "association_up" and not sent:
                    sent.append(c.send(stream.encode(5, 77), "server"))

    def out_until_data(line):  # the process runs until the record came (a Ctrl-C then), or 30 s
        out.append(line)
        if json.loads(line).get("event") == "data":
            raise KeyboardInterrupt

    t = threading.Thread(target=client)
    out = []
    t.start()
    try:
        assert main([path, "--no-stdin", "--duration", "30", "--stream-records"], out=out_until_data) == 0
    finally:
        stop.set()
        t.join(30)
        c.shutdown()
    assert sent == [True], out
    data = [json.loads(x) for x in out if json.loads(x).get("event") == "data"]
    assert len(data) == 1 and (data[0]["seq"], data[0]["sent_ms"]) == (5, 77) and "hex" not in data[0], data


def test_the_send_and_close_commands_act_on_the_peer_they_name_only():
    out = []
    p = _process({"mast": {"name": "server", "peers": {"client": {"psk": PSK}, "other": {"psk": PSK}}},
                  "uplinks": {"wan": {"bind": "127.0.0.78:0"}}}, out.append)
    clients = {}
    got = {"client": [], "other": []}

    def turn():
        p.rt.poll(2)
        p.pump()
        for name, c in clients.items():
            c.poll(2)
            got[name] += [bytes(ev.payload) for ev in c.recv()]

    def until(pred, limit_s=5.0):
        return _turn_until(turn, pred, limit_s)

    def state(name):
        a = p.rt.ep.association(name)
        return a.state if a is not None else None

    try:
        p.start()
        for name, ip in (("client", "127.0.0.79"), ("other", "127.0.0.80")):
            c = Runtime(Endpoint({"name": name, "peers": {"server": {"psk": PSK}}}, os.urandom))
            clients[name] = c
            c.add_uplink("eth", (ip, 0))
            c.connect("server", addrs=[p.rt.uplinks["wan"].bind])
            assert until(lambda: state(name) == 2), (name, out)  # ESTABLISHED
        assert _reply(p, out, {"op": "send", "peer": "other", "text": "for other"}) == {"reply": "send", "ok": True}
        assert until(lambda: got["other"]), out
        for _ in range(20):
            turn()
        assert got == {"client": [], "other": [b"for other"]}
        assert _reply(p, out, {"op": "send", "peer": "other", "hex": "00ff10"}) == {"reply": "send", "ok": True}
        assert until(lambda: len(got["other"]) == 2), out
        assert got == {"client": [], "other": [b"for other", b"\x00\xff\x10"]}
        assert _reply(p, out, {"op": "close", "peer": "other"}) == {"reply": "close"}
        assert until(lambda: state("other") != 2)
        assert state("client") == 2
    finally:
        p.rt.shutdown()
        for c in clients.values():
            c.shutdown()


def test_the_connect_command_reaches_a_peer_at_the_addresses_it_gives():
    # (the peer's section has no addresses: only those of the command can reach it)
    c = Runtime(Endpoint({"name": "client", "peers": {"server": {"psk": PSK, "initiate": False}}}, os.urandom))
    c.add_uplink("eth", ("127.0.0.81", 0))
    out = []
    p = _process(server_doc(uplinks={"wan": {"bind": "127.0.0.82:0"}}), out.append)

    def up():
        return any(json.loads(x).get("event") == "association_up" for x in out)

    try:
        p.start()
        assert _reply(p, out, {"op": "connect", "peer": "client",
                               "addrs": ["%s:%d" % c.uplinks["eth"].bind]}) == {"reply": "connect", "peer": "client"}
        end = time.monotonic() + 5.0
        for _ in range(5000):
            if up() or time.monotonic() > end:
                break
            p.rt.poll(2)
            p.pump()
            c.poll(2)
        assert up(), out
    finally:
        p.rt.shutdown()
        c.shutdown()


def test_a_hosts_uplink_socket_gets_a_receive_buffer_above_the_systems_default():
    # (issue 15.8: a burst overflowed the default buffer, and the packets were lost)
    import socket

    out = []
    p = _process(server_doc(uplinks={"wan": {"bind": "127.0.0.83:0"}}), out.append)
    fresh = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        p.start()
        default = fresh.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
        got = p.rt.uplinks["wan"].sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
        assert got > default, (got, default)
    finally:
        fresh.close()
        p.rt.shutdown()


def test_a_stream_command_changes_the_rate_of_the_stream_there_is():
    out = []
    p = _process(server_doc(uplinks={"wan": {"bind": "127.0.0.84:0"}}, stream={"peer": "client", "rate": 10}),
                 out.append)
    try:
        p.start()
        assert _reply(p, out, {"op": "stream", "rate": 20})["stream"]["rate"] == 20
        assert p.rt.status() is not None and p.stream.status()["rate"] == 20
    finally:
        p.rt.shutdown()


@pytest.mark.parametrize("runtime", ["cpython", "micropython"])
def test_a_command_line_that_is_not_utf8_gets_an_error_reply_and_the_next_runs(tmp_path, runtime):
    cmd = _server_command(tmp_path, runtime)
    p = subprocess.run(cmd.argv, env=cmd.env, cwd=str(tmp_path),
                       input=b'{"op": "st\xff\xfeatus"}\n{"op": "quit"}\n',
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    assert p.returncode == 0 and "Traceback" not in p.stderr.decode(), p.stderr.decode()[-2000:]
    replies = [x for x in map(json.loads, p.stdout.decode().splitlines()) if "reply" in x]
    assert len(replies) == 2 and replies[1] == {"reply": "quit"}, replies
    if runtime == "micropython":  # (its stdin decodes: the line is refused whole)
        assert replies[0] == {"reply": None, "error": "not UTF-8 text"}, replies
    else:  # (read as bytes, decoded with replacement characters: an unknown op)
        assert replies[0]["reply"] == "st\ufffd\ufffdatus" and replies[0]["error"].startswith("unknown op"), replies


def test_a_data_line_too_big_to_build_is_written_in_pieces_with_its_hex_once(monkeypatch, capsys):
    # (no room to build the line with its payload's hex: it is streamed, the hex once, after
    # the rest; a line with "hex" twice is a different line to a strict reader, and twice the size)
    import runtime.endpoint_main as em

    class Json:
        dump = staticmethod(json.dump)
        loads = staticmethod(json.loads)
        failed = []

        @staticmethod
        def dumps(obj):
            if "hex" in obj and not Json.failed:
                Json.failed.append(1)
                raise MemoryError("memory allocation failed")
            return json.dumps(obj)

    p = _process(server_doc(uplinks={"wan": {"bind": "127.0.0.85:0"}}), em._write_line)
    try:
        monkeypatch.setattr(em, "json", Json)
        p.emit({"event": "data", "len": 3}, b"abc")
    finally:
        monkeypatch.undo()
        p.rt.shutdown()
    lines = capsys.readouterr().out.splitlines()
    assert Json.failed and len(lines) == 1, lines
    assert lines[0].count('"hex"') == 1 and json.loads(lines[0]) == {"event": "data", "len": 3, "hex": "616263"}
    assert p.dropped == 0


def test_a_run_with_a_duration_never_waits_past_its_end():
    # (a wait of the idle second with 0.3 s to go would make the run last up to 1 s longer)
    out = []
    p = _process(server_doc(uplinks={"wan": {"bind": "127.0.0.86:0"}}), out.append)
    waited = []
    try:
        p.start()
        p.rt.poll = lambda ms=None: waited.append(ms)
        assert p.run(duration_ms=300, max_turns=3) in ("turns", "duration")
    finally:
        p.rt.shutdown()
    assert waited and all(ms is not None and 0 <= ms <= 300 for ms in waited), waited


def test_a_board_command_has_the_heap_asked_for_and_cpython_chosen_gets_no_note(tmp_path, monkeypatch):
    from mast_tools import board_process

    if board_process.find_micropython() is None:
        pytest.skip("the MicroPython unix port is not installed")
    monkeypatch.setattr(board_process, "build_mpy", lambda out: 0)  # (not what this checks)
    cmd = board_process.board_command("ep.json", str(tmp_path / "b"), prefer="micropython", heapsize="100K")
    assert (cmd.runtime, cmd.heapsize, cmd.note) == ("micropython", "100K", None)
    assert cmd.argv[1:3] == ["-X", "heapsize=100K"]
    cmd = board_process.board_command("ep.json", str(tmp_path / "b"), prefer="cpython")
    assert (cmd.runtime, cmd.note) == ("cpython", None)  # asked for: nothing to tell the user


def test_a_board_whose_mpy_build_fails_runs_on_the_py_sources_and_says_so(tmp_path, monkeypatch):
    from mast_tools import board_process
    from mast_tools.netutil import free_udp_port

    if board_process.find_micropython() is None:
        pytest.skip("the MicroPython unix port is not installed")
    build = tmp_path / "mpy"

    def half_built(out):  # one package compiled, then mpy-cross fails
        os.makedirs(os.path.join(out, "mast"))
        raise RuntimeError("mpy-cross runtime/driver.py: bad input")

    monkeypatch.setattr(board_process, "build_mpy", half_built)
    port = free_udp_port(("127.0.0.33",))
    path = write(tmp_path, server_doc(uplinks={"wan": {"bind": "127.0.0.33:%d" % port}}))
    cmd = board_process.board_command(path, str(build), extra=("--no-stdin", "--duration", "0.3"))
    assert cmd.runtime == "micropython"
    assert cmd.note == ("mpy-cross runtime/driver.py: bad input; the board imports .py sources (more heap "
                        "than a board's .mpy)")
    p = subprocess.run(cmd.argv, env=cmd.env, cwd=str(tmp_path), capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    stopped = [json.loads(x) for x in p.stdout.splitlines() if '"stopped"' in x]
    assert stopped and stopped[-1].get("reason") == "duration", p.stdout[-2000:]


def test_build_mpy_compiles_every_py_file_of_the_device_packages_and_nothing_else(tmp_path, monkeypatch):
    # a checkout where CPython has run leaves __pycache__/ (and an editor its own files) next to
    # the sources: they are not modules to compile
    import shutil

    from mast_tools import board_process

    if board_process.find_mpy_cross() is None:
        pytest.skip("mpy-cross is not installed")
    fw = tmp_path / "firmware"
    for pkg in board_process.DEVICE_PACKAGES:
        shutil.copytree(os.path.join(board_process.FIRMWARE_DIR, pkg), str(fw / pkg))
        (fw / pkg / "__pycache__").mkdir(exist_ok=True)
        (fw / pkg / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"\0")
        (fw / pkg / "NOTES.txt").write_text("not a module\n")
    monkeypatch.setattr(board_process, "FIRMWARE_DIR", str(fw))
    out = tmp_path / "out"
    n = board_process.build_mpy(str(out))
    want = sorted("%s/%s.mpy" % (pkg, f[:-3]) for pkg in board_process.DEVICE_PACKAGES
                  for f in os.listdir(str(fw / pkg)) if f.endswith(".py"))
    got = sorted("%s/%s" % (pkg, f) for pkg in board_process.DEVICE_PACKAGES for f in os.listdir(str(out / pkg)))
    assert got == want and n == len(want) > 20
