"""A fleet on one mastd: adding a board (by reload or by `mastctl peer add`) and removing one
touch only that board's association. The server is a real mastd process on loopback; the
boards are the runtime (firmware/runtime) in this process, each with its own socket.

Also: the peer file edits themselves (UCI and JSON, atomic, comments kept) and which changes
of a reload restart every association."""

import json
import os
import stat
import subprocess
import sys
import time

import pytest

from mastd import peeredit, settings, uci
from mastd.agent import restart_reason

from test_mastd_control import BIND_TO_LO, Proc, can_bind_to_lo

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIRMWARE = os.path.join(ROOT, "firmware")
PSK = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
PSK2 = "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8="

needs_root = pytest.mark.skipif(not can_bind_to_lo(), reason="mastd binds its uplink to lo: " + BIND_TO_LO)


# ---- the file edits (no root) -----------------------------------------------------------------

UCI = """\
# the router's MAST configuration
config mast 'global'
\toption name 'server.example'

# the first board, by hand
config peer 'b1'
\toption name 'b1.example'
\toption psk '%s'
\tlist allowed '192.168.1.0/24'

config uplink 'wan'
\toption priority '10'
""" % PSK


def test_a_peer_added_to_uci_is_a_new_section_that_reads_back_and_keeps_the_rest(tmp_path):
    path = tmp_path / "mast"
    path.write_text(UCI)
    path.chmod(0o600)
    doc = {"psk": PSK2, "addresses": ["192.0.2.7", "192.0.2.8:7000"], "initiate": False,
           "allowed": ["10.7.0.0/16"], "internal": "10.99.0.7"}
    assert peeredit.add_peer(str(path), "b7.example", doc) == "mast.b7_example"
    text = path.read_text()
    assert text.startswith(UCI)  # comments, order and the other sections as they were
    assert "config peer 'b7_example'\n\toption name 'b7.example'\n" in text
    assert oct(path.stat().st_mode & 0o777) == "0o600"  # it holds keys
    conf = settings.from_uci_text(text, str(path))
    p = conf.core["peers"]["b7.example"]
    assert (p["psk"], p["addresses"], p["initiate"], p["allowed"], p["internal"]) == (
        PSK2, ["192.0.2.7", "192.0.2.8:7000"], False, ["10.7.0.0/16"], "10.99.0.7")
    assert sorted(conf.core["peers"]) == ["b1.example", "b7.example"]
    assert sorted(os.listdir(str(tmp_path))) == ["mast"]  # no temporary file left behind


def test_a_second_peer_whose_section_name_is_taken_gets_a_numbered_one(tmp_path):
    path = tmp_path / "mast"
    path.write_text(UCI)
    assert peeredit.add_peer(str(path), "b1", {"psk": PSK2}) == "mast.b1_2"
    conf = settings.load(str(path))
    assert conf.core["peers"]["b1"]["psk"] == PSK2 and conf.core["peers"]["b1.example"]["psk"] == PSK


def test_removing_a_peer_from_uci_deletes_its_block_only(tmp_path):
    path = tmp_path / "mast"
    path.write_text(UCI)
    peeredit.add_peer(str(path), "b7.example", {"psk": PSK2})
    peeredit.remove_peer(str(path), "b1.example")
    text = path.read_text()
    assert "b1.example" not in text and "192.168.1.0/24" not in text
    assert "# the router's MAST configuration" in text and "config uplink 'wan'" in text
    assert sorted(settings.load(str(path)).core["peers"]) == ["b7.example"]
    with pytest.raises(ValueError, match="peer b1.example is not in"):
        peeredit.remove_peer(str(path), "b1.example")


def test_a_third_peer_whose_section_names_are_taken_gets_the_next_number(tmp_path):
    path = tmp_path / "mast"
    path.write_text(UCI)
    got = [peeredit.add_peer(str(path), n, {"psk": PSK2}) for n in ("b7.x.y", "b7-x.y", "b7.x-y")]
    assert got == ["mast.b7_x_y", "mast.b7_x_y_2", "mast.b7_x_y_3"]
    assert sorted(settings.load(str(path)).core["peers"]) == ["b1.example", "b7-x.y", "b7.x-y", "b7.x.y"]


def test_removing_a_peer_named_as_an_uplink_leaves_the_uplink_section(tmp_path):
    # a peer called "wan" gets the section wan_2 (wan is the uplink's): removing the peer must
    # not take the uplink's section, found first by the same name
    path = tmp_path / "mast"
    path.write_text(UCI)
    assert peeredit.add_peer(str(path), "wan", {"psk": PSK2}) == "mast.wan_2"
    peeredit.remove_peer(str(path), "wan")
    assert path.read_text() == UCI


def _add_peer_past_a_size_limit(path, limit, says):
    """peeredit.add_peer on path in a process whose files may not grow past limit bytes (as a
    full disk: the write fails); on an OSError e it exits with the text the expression says
    makes of e."""
    code = ("import resource, signal, sys\n"
            "from mastd import peeredit\n"
            "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
            "resource.setrlimit(resource.RLIMIT_FSIZE, (%d, %d))\n"
            "try:\n"
            "    peeredit.add_peer(sys.argv[1], 'b8.example', {'psk': sys.argv[2]})\n"
            "except OSError as e:\n"
            "    sys.exit(%s)\n" % (limit, limit, says))
    return subprocess.run([sys.executable, "-c", code, str(path), PSK2], capture_output=True, text=True,
                          timeout=30, env=dict(os.environ, PYTHONPATH=FIRMWARE, PYTHONDONTWRITEBYTECODE="1"))


def test_a_peer_file_keeps_its_mode_and_a_write_that_fails_leaves_it_whole(tmp_path):
    # (the new text goes to a temporary file renamed over the old one: a write that fails, here
    # a file size limit as a full disk would, leaves the old file as it was and no temporary)
    path = tmp_path / "mast"
    path.write_text(UCI)
    path.chmod(0o640)
    peeredit.add_peer(str(path), "b7.example", {"psk": PSK2})
    assert oct(path.stat().st_mode & 0o777) == "0o640"  # as the user left it
    before = path.read_bytes()
    r = _add_peer_past_a_size_limit(path, len(before), "'failed: errno %d' % e.errno")
    assert (r.returncode, r.stderr) == (1, "failed: errno 27\n")  # EFBIG
    assert path.read_bytes() == before
    assert sorted(os.listdir(str(tmp_path))) == ["mast"]


def test_a_peer_file_write_that_fails_names_the_file_and_says_it_is_as_it_was(tmp_path):
    # (a full disk fails the write, whose error names no file: `mastctl peer add` said only
    # "mastctl: [Errno 28] No space left on device"; here a file size limit stands in for it)
    path = tmp_path / "mast"
    path.write_text(UCI)
    r = _add_peer_past_a_size_limit(path, len(UCI), "'%s; errno %d' % (e, e.errno)")
    assert (r.returncode, r.stderr) == (1, "cannot write %s (File too large); it is as it was; "
                                           "errno 27\n" % path)
    assert path.read_text() == UCI and sorted(os.listdir(str(tmp_path))) == ["mast"]


def test_a_peer_added_after_blank_lines_leaves_one_blank_line_and_removing_it_restores_the_file(tmp_path):
    path = tmp_path / "mast"
    path.write_text(UCI + "\n\n\n")
    peeredit.add_peer(str(path), "b7", {"psk": PSK2})
    assert path.read_text() == UCI + "\nconfig peer 'b7'\n\toption psk '%s'\n" % PSK2
    peeredit.remove_peer(str(path), "b7")
    assert path.read_text() == UCI

def test_a_symlink_planted_at_the_temporary_path_is_not_followed(tmp_path):
    # (the temporary file's name is known ahead: a link there must not get the keys written
    # through it, nor become the configuration file)
    path = tmp_path / "mast"
    path.write_text(UCI)
    target = tmp_path / "elsewhere"
    target.write_text("theirs\n")
    os.symlink(str(target), str(tmp_path / (".mast.%d.tmp" % os.getpid())))
    with pytest.raises(OSError):
        peeredit.add_peer(str(path), "b7.example", {"psk": PSK2})
    assert target.read_text() == "theirs\n" and oct(target.stat().st_mode & 0o777) != "0o600"
    assert not path.is_symlink() and path.read_text() == UCI


def test_the_new_text_holding_keys_is_never_readable_by_others_while_it_is_written(tmp_path, monkeypatch):
    # (the temporary file beside the config holds every key: others must not read it, even
    # for the moment before it takes the old file's mode)
    path = tmp_path / "mast"
    path.write_text(UCI)
    path.chmod(0o600)
    seen = []
    real_fsync = os.fsync

    def fsync(fd):  # the moment the new text is on disk, before the rename
        st = os.fstat(fd)
        if stat.S_ISREG(st.st_mode):
            seen.append(st.st_mode & 0o777)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    old = os.umask(0o022)
    try:
        peeredit.add_peer(str(path), "b7.example", {"psk": PSK2})
    finally:
        os.umask(old)
    assert seen and all(m & 0o077 == 0 for m in seen), [oct(m) for m in seen]

@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file to another owner needs root")
def test_a_peer_file_keeps_its_owner(tmp_path):
    path = tmp_path / "mast"
    path.write_text(UCI)
    os.chown(str(path), 1234, 5678)
    peeredit.add_peer(str(path), "b7.example", {"psk": PSK2})
    st = path.stat()
    assert (st.st_uid, st.st_gid) == (1234, 5678)
    peeredit.remove_peer(str(path), "b7.example")
    st = path.stat()
    assert (st.st_uid, st.st_gid) == (1234, 5678) and path.read_text() == UCI


def test_a_value_with_a_quote_reads_back_as_it_was_given(tmp_path):
    path = tmp_path / "mast"
    path.write_text(UCI)
    peeredit.add_peer(str(path), "b7.example", {"psk": PSK2, "app_user": "o'brien", "allowed": ["a'b", "c"]})
    sec = [x for x in uci.parse(path.read_text()) if x.name == "b7_example"][0]
    assert (sec.options["app_user"], sec.options["allowed"]) == ("o'brien", ["a'b", "c"])

def test_json_add_and_remove_keep_the_other_keys(tmp_path):
    path = tmp_path / "mast.json"
    path.write_text(json.dumps({"name": "s", "peers": {"a": {"psk": PSK}}, "uplinks": {"eth0": {}}}))
    assert peeredit.add_peer(str(path), "b", {"psk": PSK2, "initiate": False}) is None
    doc = json.loads(path.read_text())
    assert doc["peers"] == {"a": {"psk": PSK}, "b": {"psk": PSK2, "initiate": False}}
    assert doc["uplinks"] == {"eth0": {}} and doc["name"] == "s"
    peeredit.remove_peer(str(path), "a")
    assert sorted(settings.load(str(path)).core["peers"]) == ["b"]
    # a file changed since mastd read it, whose peers are no longer an object: said, not written
    path.write_text(json.dumps({"name": "s", "peers": [{"psk": PSK}]}))
    with pytest.raises(ValueError) as e:
        peeredit.add_peer(str(path), "c", {"psk": PSK2})
    assert str(e.value) == "%s: peers is not an object" % path
    assert json.loads(path.read_text())["peers"] == [{"psk": PSK}]


def test_json_files_that_cannot_take_the_edit_are_refused_with_a_reason_and_left_alone(tmp_path):
    path = tmp_path / "mast.json"
    for text in ('[{"name": "s"}]', '"s"'):
        path.write_text(text)
        with pytest.raises(ValueError) as e:
            peeredit.add_peer(str(path), "c", {"psk": PSK2})
        assert str(e.value) == "%s does not hold one JSON object" % path
        assert path.read_text() == text
    text = json.dumps({"name": "s", "peers": {"a": {"psk": PSK}}})
    path.write_text(text)
    with pytest.raises(ValueError) as e:
        peeredit.remove_peer(str(path), "b")
    assert str(e.value) == "peer b is not in %s" % path
    assert path.read_text() == text

def test_a_peer_file_that_is_not_utf8_or_nested_too_deep_is_refused_quoting_none_of_its_bytes(tmp_path):
    # (mastctl peer add/remove on a file changed since mastd read it: the decoder's own message
    # quoted a byte of a file that holds keys)
    bad = tmp_path / "mast.json"
    bad.write_bytes(b'{"peers": {}, "psk": "\xff\xfe"}')
    for edit in (lambda: peeredit.add_peer(str(bad), "b9.example", {"psk": PSK2}),
                 lambda: peeredit.remove_peer(str(bad), "b9.example")):
        with pytest.raises(ValueError) as e:
            edit()
        assert str(e.value) == "%s is not UTF-8 text; save it as UTF-8" % bad
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 5000 + "]" * 5000)
    with pytest.raises(ValueError, match="nest too deep"):
        peeredit.add_peer(str(deep), "b9.example", {"psk": PSK2})
    assert bad.read_bytes() == b'{"peers": {}, "psk": "\xff\xfe"}'


def test_a_peer_is_checked_alone_and_a_bad_one_names_its_key():
    conf = settings.from_json_text(json.dumps({"name": "s", "peers": {"a": {"psk": PSK}}}))
    new = settings.with_peer(conf, "b", {"psk": PSK2, "addresses": ["192.0.2.1"]})
    assert sorted(new.core["peers"]) == ["a", "b"] and sorted(conf.core["peers"]) == ["a"]
    assert new.core["peers"]["b"]["port"] == 6278  # the schema's defaults filled in
    with pytest.raises(ValueError, match=r"^peers\.b\.psk: required when keying is psk$"):
        settings.with_peer(conf, "b", {})
    with pytest.raises(ValueError, match=r"^peers\.b\.addresses: bad item"):
        settings.with_peer(conf, "b", {"psk": PSK2, "addresses": ["nonsense"]})
    assert sorted(settings.without_peer(new, "a").core["peers"]) == ["b"]


def test_only_our_own_name_keying_or_port_restart_every_association():
    def conf(**top):
        doc = {"name": "s", "peers": {"a": {"psk": PSK}}}
        doc.update(top)
        return settings.from_json_text(json.dumps(doc))

    base = conf()
    assert restart_reason(base, conf(peers={"a": {"psk": PSK}, "b": {"psk": PSK2}})) is None
    assert restart_reason(base, conf(peers={})) is None
    assert restart_reason(base, conf(peers={"a": {"psk": PSK2}})) is None  # that peer re-keys alone
    assert restart_reason(base, conf(profile="fast")) is None
    assert restart_reason(base, conf(name="t")) == "name"
    assert restart_reason(base, conf(port=7000)) == "port"
    assert restart_reason(base, conf(keying="open", peers={"a": {}})) == "keying"


# ---- a fleet on a real mastd ------------------------------------------------------------------


class Board:
    """One board: the runtime and the core in this process, initiating to the server."""

    def __init__(self, name, server_addr, addr):
        from mast.endpoint import Endpoint
        from runtime.driver import Runtime

        ep = Endpoint({"name": name, "profile": "fast",
                       "peers": {"server.example": {"psk": PSK, "addresses": [server_addr]}}}, os.urandom)
        self.name = name
        self.rt = Runtime(ep)
        self.rt.add_uplink("eth", (addr, 0))
        self.rt.connect("server.example")
        self.events = []

    def pump(self):
        self.rt.poll(0)
        self.rt.recv()
        self.events += [e.as_dict() for e in self.rt.events()]

    def kinds(self, kind):
        return [e for e in self.events if e["event"] == kind]


class Server(Proc):
    """mastd (test_mastd_control.Proc) and mastctl for it."""

    def __init__(self, tmp, doc):
        Proc.__init__(self, tmp, "server", doc)

    def established(self):
        s = self.status() or {"associations": []}
        return dict((a["peer"], a["nonce_id"]) for a in s["associations"] if a["state"] == "established")

    def mastctl(self, *args, stdin=None):
        return subprocess.run([sys.executable, "-c", "import sys; from mastd.ctl import main; sys.exit(main())",
                               "--control", self.sock] + list(args), input=stdin,
                              capture_output=True, text=True, timeout=20, env=dict(os.environ, PYTHONPATH=FIRMWARE))


def wait_for(what, fn, boards, timeout=15):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        for b in boards:
            b.pump()
        v = fn()
        if v:
            return v
        time.sleep(0.02)
    raise AssertionError("timed out waiting for " + what)


@needs_root
def test_adding_boards_by_reload_and_by_mastctl_and_removing_one_touch_only_that_board(tmp_path):
    port = 21000 + os.getpid() % 20000
    addr = "127.0.0.60"
    peers = dict(("b%d.example" % i, {"psk": PSK, "initiate": False}) for i in (1, 2, 3))
    srv = Server(tmp_path, {"name": "server.example", "port": port, "profile": "fast", "peers": peers,
                            "uplinks": {"lo": {"device": "lo", "address": addr}}})
    boards = {}
    try:
        wait_for("mastd", lambda: srv.status(), [])
        for i in (1, 2, 3):
            boards[i] = Board("b%d.example" % i, "%s:%d" % (addr, port), "127.0.0.%d" % (60 + i))
        first = wait_for("three associations", lambda: len(srv.established()) == 3 and all(
            b.kinds("association_up") for b in boards.values()) and srv.established(), boards.values())

        # a fourth board by editing the file and reloading
        doc = json.loads(srv.cfg.read_text())
        doc["peers"]["b4.example"] = {"psk": PSK, "initiate": False}
        srv.cfg.write_text(json.dumps(doc))
        r = srv.mastctl("reload")
        assert (r.returncode, r.stdout) == (0, "reloaded\n"), r.stderr
        boards[4] = Board("b4.example", "%s:%d" % (addr, port), "127.0.0.64")
        wait_for("b4 up", lambda: "b4.example" in srv.established() and boards[4].kinds("association_up"),
                 boards.values())

        # a fifth by mastctl peer add, its key on standard input (never on the command line)
        r = srv.mastctl("peer", "add", "b5.example", "--psk-file", "-", "--no-initiate",
                        "--internal", "10.99.0.5", stdin=PSK + "\n")
        assert (r.returncode, r.stdout) == (0, "peer b5.example added\n"), r.stderr
        assert json.loads(srv.cfg.read_text())["peers"]["b5.example"] == {
            "psk": PSK, "initiate": False, "internal": "10.99.0.5"}
        boards[5] = Board("b5.example", "%s:%d" % (addr, port), "127.0.0.65")
        up = wait_for("b5 up", lambda: "b5.example" in srv.established() and boards[5].kinds("association_up")
                      and srv.established(), boards.values())
        for peer, nid in first.items():
            assert up[peer] == nid, peer  # the same association all along
        for b in boards.values():  # one association, one fingerprint on both ends (board and mastd)
            mine = [a["nonce_id"] for a in b.rt.status()["associations"] if a["state"] == "established"]
            assert mine == [up[b.name]], b.name
        s = srv.status()
        assert [e for e in s["events"] if e["event"] == "association_closed"] == []
        for b in boards.values():
            assert b.kinds("association_closed") == [] and len(b.kinds("association_up")) == 1, b.name

        # a peer that is there already, and a bad one, are refused with the reason
        r = srv.mastctl("peer", "add", "b5.example", "--psk-file", "-", stdin=PSK)
        assert r.returncode == 1 and r.stderr.startswith("mastctl: peer b5.example is configured already")
        r = srv.mastctl("peer", "add", "b6.example", "--address", "nonsense", "--psk-file", "-", stdin=PSK)
        assert r.returncode == 1 and r.stderr.startswith("mastctl: peers.b6.example.addresses: bad item")
        assert "b6.example" not in srv.cfg.read_text()

        # remove b2: only it closes
        r = srv.mastctl("peer", "remove", "b2.example")
        assert (r.returncode, r.stdout) == (0, "peer b2.example removed\n"), r.stderr
        wait_for("b2 gone", lambda: "b2.example" not in srv.established(), boards.values())
        after = wait_for("the others", lambda: len(srv.established()) == 4 and srv.established(), boards.values())
        for peer in ("b1.example", "b3.example", "b4.example", "b5.example"):
            assert after[peer] == up[peer], peer
        # (gracefully: the association is closed once b2 has answered the SHUT)
        closed = wait_for("b2 closed", lambda: [e for e in srv.status()["events"]
                                                if e["event"] == "association_closed"], boards.values())
        assert [e["peer"] for e in closed] == ["b2.example"]
        assert "b2.example" not in json.loads(srv.cfg.read_text())["peers"]
        listed = json.loads(srv.mastctl("peer", "list", "--json").stdout)
        assert [p["name"] for p in listed] == ["b1.example", "b3.example", "b4.example", "b5.example"]
        assert all(p["association"] == "established" and p["psk"] == "<redacted>" for p in listed)
        for i in (1, 3, 4, 5):
            assert boards[i].kinds("association_closed") == [], i
    finally:
        for b in boards.values():
            b.rt.shutdown()
        srv.stop()


def test_peer_list_text_shows_state_nonce_id_and_where_each_peer_is():
    from mastd.ctl import format_peers

    text = format_peers([
        {"name": "b1.example", "addresses": ["192.0.2.1"], "association": "established",
         "nonce_id": "ab12", "internal": "10.99.0.1"},
        {"name": "b2.example", "addresses": [], "association": None, "nonce_id": None, "internal": None},
        {"name": "b9.fleet.example", "fleet": True, "addresses": [], "association": "established",
         "nonce_id": "cd34", "internal": None},
        {"name": "b4.example", "addresses": [], "dns": "b4.dyn.example", "association": None, "nonce_id": None}])
    lines = text.splitlines()
    assert lines[3].split() == ["b4.example", "-", "nonce-id", "-", "b4.dyn.example"]  # found by its DNS name
    assert lines[0].split() == ["b1.example", "established", "nonce-id", "ab12", "192.0.2.1", "internal", "10.99.0.1"]
    assert lines[1].split() == ["b2.example", "-", "nonce-id", "-", "(waits", "for", "its", "INIT)"]
    assert lines[2].endswith("(fleet member, not listed)") and "cd34" in lines[2]
