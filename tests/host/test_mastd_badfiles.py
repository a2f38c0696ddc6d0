"""Configuration files mastd cannot use, or should not trust: refused with a clear message at
`mastd --check`, at start and at reload (where mastd stays up with the running configuration);
a file holding keys that others may read is used, with a warning. And a hung ubus neither stops
nor kills mastd."""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from mastd import control

from test_mastd_control import BIND_TO_LO, can_bind_to_lo, wait_for

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIRMWARE = os.path.join(ROOT, "firmware")
PSK = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
GOOD = {"name": "r1.example", "peers": {"srv.example": {"psk": PSK, "initiate": False}}, "uplinks": {}}
DEEP = '{"name": "r1.example", "a": ' + "[" * 3000 + "]" * 3000 + "}"
# not UTF-8, in the middle of a key: no message may quote these bytes
NOT_UTF8 = b'{"name": "r1.example", "peers": {"s": {"psk": "AAEC\xff\xfeQUJDREVG"}}}'
UCI_NOT_UTF8 = b"config mast 'global'\n\toption name 'r1.example'\nconfig peer 's'\n\toption psk 'AAEC\xff\xfeQUJD'\n"


def mastd(*args, env=None):
    return subprocess.run([sys.executable, "-m", "mastd"] + list(args), capture_output=True, text=True,
                          timeout=30, env=dict(os.environ, PYTHONPATH=FIRMWARE, **(env or {})))


def write(path, data, mode=0o600):
    if isinstance(data, str):
        data = data.encode()
    path.write_bytes(data)
    os.chmod(str(path), mode)
    return path


# ---- files mastd cannot use: --check and start -------------------------------------------

def test_check_and_start_refuse_a_deeply_nested_json_file_without_a_traceback(tmp_path):
    cfg = write(tmp_path / "mast.json", DEEP)
    want = ("mastd: %s: objects and lists nest more than 16 deep (mastd's configuration needs 4: "
            "the file's object, peers, a peer, its allowed list); fix the file\n" % cfg)
    r = mastd("--check", "--config", str(cfg))
    assert (r.returncode, r.stdout, r.stderr) == (1, "", want)
    r = mastd("--config", str(cfg), "--control", str(tmp_path / "s"))
    assert (r.returncode, r.stderr) == (1, want)
    assert not (tmp_path / "s").exists()  # it never started


def test_a_json_file_nested_deeper_than_any_configuration_is_refused_before_it_is_checked(tmp_path):
    doc = dict(GOOD, peers={"srv.example": {"psk": PSK, "allowed": [[[[[[[[[[[[[[[[["x"]]]]]]]]]]]]]]]]]}})
    r = mastd("--check", "--config", str(write(tmp_path / "mast.json", json.dumps(doc))))
    assert r.returncode == 1 and "nest more than 16 deep" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize("name, data, line", [("mast.json", NOT_UTF8, 1), ("mast", UCI_NOT_UTF8, 4)])
def test_check_and_start_refuse_a_file_that_is_not_utf8_naming_it_and_quoting_no_byte(tmp_path, name, data, line):
    cfg = write(tmp_path / name, data)
    want = ("mastd: %s:%d: not UTF-8 text; save the file as UTF-8 (mast's keys are base64, its "
            "names ASCII)\n" % (cfg, line))
    r = mastd("--check", "--config", str(cfg))
    assert (r.returncode, r.stdout, r.stderr) == (1, "", want)
    r = mastd("--config", str(cfg), "--control", str(tmp_path / "s"))
    assert (r.returncode, r.stderr) == (1, want)


# ---- a file holding keys that others may read ------------------------------------------------

@pytest.mark.parametrize("mode, who", [(0o644, "its group and others"), (0o640, "its group"),
                                       (0o604, "others")])
def test_check_warns_when_a_file_holding_keys_is_readable_by_others(tmp_path, mode, who):
    cfg = write(tmp_path / "mast.json", json.dumps(GOOD), mode)
    r = mastd("--check", "--config", str(cfg))
    assert (r.returncode, r.stdout) == (0, "mastd: %s is valid\n" % cfg)
    assert r.stderr == ("mastd: warning: %s holds keys and its mode %04o lets %s read them; "
                        "chmod 600 %s\n" % (cfg, mode, who, cfg))
    assert PSK not in r.stderr


def test_check_is_quiet_about_a_private_file_or_one_without_keys(tmp_path):
    r = mastd("--check", "--config", str(write(tmp_path / "a.json", json.dumps(GOOD), 0o600)))
    assert (r.returncode, r.stderr) == (0, "")
    open_doc = {"name": "r1.example", "keying": "open", "peers": {"srv.example": {}}}
    r = mastd("--check", "--config", str(write(tmp_path / "b.json", json.dumps(open_doc), 0o644)))
    assert (r.returncode, r.stderr) == (0, "")


# ---- a running mastd: reload ---------------------------------------------------------------

def mastctl(sock, *args):
    return subprocess.run([sys.executable, "-c", "import sys; from mastd.ctl import main; sys.exit(main())",
                           "--control", sock] + list(args),
                          capture_output=True, text=True, timeout=30, env=dict(os.environ, PYTHONPATH=FIRMWARE))


class Running:
    """mastd with cfg, no uplinks (no root needed), its log in a file."""

    def __init__(self, tmp, cfg, *extra, env=None):
        self.sock = str(tmp / "m.sock")
        self.logpath = tmp / "log"
        self.log = open(str(self.logpath), "w")
        self.p = subprocess.Popen([sys.executable, "-m", "mastd", "--config", str(cfg), "--control",
                                   self.sock] + list(extra), stdout=self.log, stderr=subprocess.STDOUT,
                                  env=dict(os.environ, PYTHONPATH=FIRMWARE, **(env or {})))
        wait_for("mastd", lambda: self.p.poll() is not None or self.status())
        assert self.p.poll() is None, self.text()

    def status(self):
        try:
            return control.request(self.sock, {"op": "status"}, timeout=5)["status"]
        except (OSError, KeyError):
            return None

    def text(self):
        return self.logpath.read_text()

    def stop(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            self.p.wait(10)
        self.log.close()


@pytest.fixture
def running(tmp_path):
    made = []

    def start(cfg, *extra, **kw):
        r = Running(tmp_path, cfg, *extra, **kw)
        made.append(r)
        return r

    yield start
    for r in made:
        r.stop()


def test_a_reload_of_a_deeply_nested_or_not_utf8_file_is_refused_and_mastd_stays_up(tmp_path, running):
    cfg = write(tmp_path / "mast.json", json.dumps(GOOD))
    m = running(cfg, "--discovery", "linux")
    write(cfg, DEEP)
    r = mastctl(m.sock, "reload")
    assert (r.returncode, r.stderr) == (1, "mastctl: reload refused, the running configuration stays: "
                                           "%s: objects and lists nest more than 16 deep (mastd's "
                                           "configuration needs 4: the file's object, peers, a peer, "
                                           "its allowed list); fix the file\n" % cfg)
    m.p.send_signal(signal.SIGHUP)  # the same through the signal: logged, still running
    wait_for("the refusal logged twice", lambda: m.text().count("nest more than 16 deep") == 2)
    write(cfg, NOT_UTF8)
    r = mastctl(m.sock, "reload")
    assert (r.returncode, r.stderr) == (1, "mastctl: reload refused, the running configuration stays: "
                                           "%s:1: not UTF-8 text; save the file as UTF-8 (mast's keys "
                                           "are base64, its names ASCII)\n" % cfg)
    m.p.send_signal(signal.SIGHUP)
    wait_for("the refusal logged twice", lambda: m.text().count("not UTF-8 text") == 2)
    assert m.p.poll() is None
    assert m.status()["name"] == "r1.example"
    assert "Traceback" not in m.text() and "\\xff" not in m.text() and "0xff" not in m.text()


def test_a_key_file_others_can_read_is_warned_of_once_at_start_and_at_each_reload(tmp_path, running):
    cfg = write(tmp_path / "mast.json", json.dumps(GOOD), 0o644)
    warning = "%s holds keys and its mode 0644 lets its group and others read them; chmod 600 %s" % (cfg, cfg)
    m = running(cfg, "--discovery", "linux")
    assert m.text().count(warning) == 1
    assert mastctl(m.sock, "reload").returncode == 0
    wait_for("a second warning", lambda: m.text().count(warning) == 2)
    os.chmod(str(cfg), 0o600)
    assert mastctl(m.sock, "reload").returncode == 0
    time.sleep(0.2)
    assert m.text().count(warning) == 2 and m.p.poll() is None
    assert PSK not in m.text()


# ---- a hung ubus (--discovery netifd) -----------------------------------------------------------

needs_root = pytest.mark.skipif(not can_bind_to_lo(), reason=BIND_TO_LO)


@needs_root
def test_a_hung_ubus_holds_mastd_up_at_most_2_s_and_the_uplinks_stay(tmp_path, running):
    dump, hang, bindir = tmp_path / "dump.json", tmp_path / "hang", tmp_path / "bin"
    bindir.mkdir()
    (bindir / "ubus").write_text('#!/bin/sh\n[ -e %s ] && exec sleep 30\n'
                                 '[ "$*" = "call network.interface dump" ] && exec cat %s\nexit 1\n'
                                 % (hang, dump))
    (bindir / "ubus").chmod(0o755)
    dump.write_text(json.dumps({"interface": [{"interface": "wan", "up": True, "l3_device": "lo",
                                               "ipv4-address": [{"address": "127.0.0.31"}]}]}))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:  # a free port
        s.bind(("127.0.0.31", 0))
        port = s.getsockname()[1]
    cfg = write(tmp_path / "mast", "config mast 'global'\n\toption name 'r1'\n\toption port '%d'\n"
                                   "config peer 'srv'\n\toption psk '%s'\n\toption initiate '0'\n"
                                   "config uplink 'wan'\n\toption priority '10'\n" % (port, PSK))
    m = running(cfg, "--discovery", "netifd", env={"PATH": "%s:%s" % (bindir, os.environ["PATH"])})
    assert m.status()["uplinks"]["wan"]["addr"] == "127.0.0.31:%d" % port
    hang.write_text("")
    t0 = time.monotonic()
    r = mastctl(m.sock, "hotplug", "ifup", "wan", "lo")
    took = time.monotonic() - t0
    # (answered: mastctl waits 5 s for its answer, and ubus hangs 30 s; the bound on `took` is
    # for the test, not a timing: mastctl's own start on a loaded machine is in it)
    assert r.returncode == 0 and took < 20, (r, took)
    assert m.p.poll() is None
    assert ("uplink scan failed (hotplug ifup wan): ubus call network.interface dump: no answer "
            "within 2 s (is ubusd or netifd hung? `ubus call network.interface dump` shows it); "
            "the uplinks stay as they were") in m.text()
    assert m.status()["uplinks"]["wan"]["addr"] == "127.0.0.31:%d" % port  # the last known uplinks
    hang.unlink()
    assert mastctl(m.sock, "hotplug", "ifup", "wan", "lo").returncode == 0
    assert m.p.poll() is None and "Traceback" not in m.text()


def test_discovery_netifd_without_ubus_is_refused_before_anything_starts(tmp_path, monkeypatch, capsys):
    # (it started with no uplinks at all and logged a failed scan now and then)
    from mastd import main as main_mod

    cfg = write(tmp_path / "mast.json", json.dumps(GOOD), 0o600)
    monkeypatch.setenv("PATH", str(tmp_path))  # (no ubus there)
    import mastd.agent

    def started(*args):
        raise AssertionError("mastd started")

    monkeypatch.setattr(mastd.agent, "Agent", started)
    assert main_mod.main(["--config", str(cfg), "--discovery", "netifd",
                          "--control", str(tmp_path / "ctl.sock")]) == 1
    assert capsys.readouterr() == ("", "mastd: --discovery netifd needs OpenWrt's `ubus`, and no ubus is "
                                       "on PATH; use --discovery linux (uplinks from the Linux devices), "
                                       "or auto\n")
    assert not (tmp_path / "ctl.sock").exists()


# ---- a start that fails half-way ------------------------------------------------------------------


def test_without_config_and_neither_default_file_both_are_named(tmp_path, monkeypatch, capsys):
    # (said "cannot read /etc/config/mast": a server's missing /etc/mast/mast.json went unnamed)
    from mastd import main as main_mod

    monkeypatch.setattr(main_mod.settings, "DEFAULT_UCI", str(tmp_path / "config" / "mast"))
    monkeypatch.setattr(main_mod.settings, "DEFAULT_JSON", str(tmp_path / "mast" / "mast.json"))
    assert main_mod.main(["--check"]) == 1
    assert capsys.readouterr().err == "mastd: no configuration: neither %s nor %s exists; give --config FILE\n" % (
        tmp_path / "config" / "mast", tmp_path / "mast" / "mast.json")
    assert main_mod.main(["--check", "--config", str(tmp_path / "x.json")]) == 1  # one named: that one
    assert capsys.readouterr().err == ("mastd: cannot read %s (No such file or directory); give --config FILE\n"
                                       % (tmp_path / "x.json"))


def test_a_file_mastd_may_not_read_says_to_run_it_as_root_not_to_give_another(tmp_path, monkeypatch, capsys):
    # (a user's `mastd --check` of the 0600 /etc/config/mast said "give --config FILE")
    from mastd import main as main_mod

    def denied(path):
        raise PermissionError(13, "Permission denied", path)

    monkeypatch.setattr(main_mod.settings, "load", denied)
    assert main_mod.main(["--check", "--config", "/etc/config/mast"]) == 1
    assert capsys.readouterr().err == "mastd: cannot read /etc/config/mast (Permission denied); run mastd as root\n"


def test_a_mastd_that_cannot_start_says_why_exits_1_and_leaves_no_control_socket(tmp_path):
    # the presence port is taken: found after the control socket was made; that goes again
    # (a stale socket would make `mastctl` think mastd runs, and the hotplug script call it)
    taken = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        pconf = write(tmp_path / "presence.json", json.dumps(
            {"names": {"board1.example": {"key": PSK}}}))
        sock = tmp_path / "m.sock"
        r = mastd("--config", str(write(tmp_path / "mast.json", json.dumps(GOOD))), "--control", str(sock),
                  "--discovery", "linux", "--presence-config", str(pconf),
                  "--presence-listen", "127.0.0.1:%d" % taken.getsockname()[1])
    finally:
        taken.close()
    assert r.returncode == 1
    assert r.stderr.splitlines()[-1] == (  # (was "[Errno 98] Address already in use": of what?)
        "mastd: cannot start: presence: cannot listen on 127.0.0.1:%d (Address already in use); give "
        "--presence-listen another ADDR:PORT" % port), r.stderr
    assert not os.path.lexists(str(sock))


def test_a_bad_presence_file_is_refused_naming_it_without_a_traceback(tmp_path):
    pconf = write(tmp_path / "presence.json", json.dumps({"names": {"board1.example": {"key": "short"}}}))
    r = mastd("--check", "--config", str(write(tmp_path / "mast.json", json.dumps(GOOD))),
              "--presence-config", str(pconf))
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    assert r.stderr.startswith("mastd: presence %s: " % pconf) and len(r.stderr.splitlines()) == 1, r.stderr
    r = mastd("--check", "--config", str(tmp_path / "mast.json"), "--presence-config", str(tmp_path / "none.json"))
    assert r.returncode == 1 and r.stderr.startswith("mastd: presence %s: " % (tmp_path / "none.json")), r.stderr


def test_check_warns_when_the_presence_file_is_readable_by_others(tmp_path):
    # (its names' keys: only mastd's own file was looked at)
    key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
    cfg = write(tmp_path / "mast.json", json.dumps(GOOD))
    for mode, want in ((0o640, "mastd: warning: %s holds keys and its mode 0640 lets its group read them; "
                                "chmod 600 %s\n"), (0o600, "")):
        pconf = write(tmp_path / "presence.json", json.dumps({"names": {"board1.example": {"key": key}}}), mode)
        r = mastd("--check", "--config", str(cfg), "--presence-config", str(pconf))
        assert (r.returncode, r.stdout) == (0, "mastd: %s is valid\n" % cfg)
        assert r.stderr == (want % (pconf, pconf) if want else "") and key not in r.stderr


# ---- --syslog and --discovery ------------------------------------------------------------------

FAKE_SYSLOG = '''import os
LOG_PID, LOG_DAEMON, LOG_INFO, LOG_WARNING, LOG_ERR = 1, 24, 6, 4, 3
def _w(*a):
    with open(os.environ["FAKE_SYSLOG"], "a") as f:
        f.write(repr(a) + "\\n")
def openlog(*a):
    _w("openlog", *a)
def syslog(*a):
    _w("syslog", *a)
'''
# Debian's python3 has syslog built in, and a built-in module is found before any file on the
# path: put the stand-in in sys.modules from sitecustomize (imported from the path at start).
FAKE_SITECUSTOMIZE = '''import os, sys, types
m = types.ModuleType("syslog")
with open(os.path.join(os.path.dirname(__file__), "syslog.py")) as f:
    exec(f.read(), m.__dict__)
sys.modules["syslog"] = m
'''


def test_syslog_sends_the_log_to_the_daemon_facility_and_nothing_to_stdout(tmp_path):
    # (a stand-in syslog module ahead on the path records what mastd hands to syslog(3))
    fake = tmp_path / "fake"
    fake.mkdir()
    (fake / "syslog.py").write_text(FAKE_SYSLOG)
    (fake / "sitecustomize.py").write_text(FAKE_SITECUSTOMIZE)
    cfg = write(tmp_path / "mast.json", json.dumps(GOOD), 0o644)  # warned of at start
    taken = write(tmp_path / "taken", "")  # not a socket: mastd cannot start
    warning = "%s holds keys and its mode 0644 lets its group and others read them; chmod 600 %s" % (cfg, cfg)
    error = "cannot start: %s exists and is not a socket: give --control another path" % taken
    record = tmp_path / "syslog.txt"

    def run(*extra):
        return subprocess.run([sys.executable, "-m", "mastd", "--config", str(cfg), "--control", str(taken)]
                              + list(extra), capture_output=True, text=True, timeout=30,
                              env=dict(os.environ, PYTHONPATH="%s:%s" % (fake, FIRMWARE), FAKE_SYSLOG=str(record)))

    r = run("--syslog")
    assert (r.returncode, r.stdout, r.stderr) == (1, "", "mastd: %s\n" % error)
    lines = record.read_text().splitlines()  # (then the shutdown's own lines)
    assert lines[:3] == [repr(("openlog", "mastd", 1, 24)), repr(("syslog", 4, warning)), repr(("syslog", 3, error))]
    record.unlink()
    r = run()  # without it: stdout, and syslog untouched
    assert r.returncode == 1 and not record.exists()
    assert " mastd warning: %s\n" % warning in r.stdout and " mastd error: %s\n" % error in r.stdout


def test_discovery_linux_is_kept_with_a_uci_file_where_ubus_exists(tmp_path, running):
    # auto would take netifd here (test_mastd_control.py); --discovery linux must not ask ubus
    bindir = tmp_path / "bin"
    bindir.mkdir()
    asked = tmp_path / "ubus-asked"
    (bindir / "ubus").write_text('#!/bin/sh\necho "$*" >> %s\nexit 1\n' % asked)
    (bindir / "ubus").chmod(0o755)
    uci = write(tmp_path / "mast", "config mast 'global'\n\toption name 'r1'\n"
                "config peer 'srv'\n\toption psk '%s'\n\toption initiate '0'\n" % PSK)
    m = running(uci, "--discovery", "linux", env={"PATH": "%s:%s" % (bindir, os.environ["PATH"])})
    assert m.status()["discovery"] == "linux"
    assert mastctl(m.sock, "hotplug", "ifup", "wan", "lo").returncode == 0
    assert m.status()["discovery"] == "linux" and not asked.exists()


def test_mastd_takes_its_control_socket_from_mastd_control_without_control(tmp_path):
    cfg = write(tmp_path / "mast.json", json.dumps(GOOD))
    sock = str(tmp_path / "env.sock")
    p = subprocess.Popen([sys.executable, "-m", "mastd", "--config", str(cfg), "--discovery", "linux"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         env=dict(os.environ, PYTHONPATH=FIRMWARE, MASTD_CONTROL=sock))
    try:
        wait_for("mastd on $MASTD_CONTROL", lambda: p.poll() is not None or os.path.exists(sock))
        assert control.request(sock, {"op": "status"}, timeout=5)["status"]["name"] == "r1.example"
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait(10)
