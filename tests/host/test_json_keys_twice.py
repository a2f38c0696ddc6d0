"""A JSON configuration that gives one key twice: Python's json keeps the last silently, so a
peer written twice in mast.json lost its first section (its allowed prefixes, its key) with no
word, where UCI refuses a peer configured twice. Every JSON configuration mastd and the host
tools read now refuses it, naming the key when it may be a name and never when it may be a
secret: mastd's mast.json (--check, start), mastctl's edit of it, the presence server's
configuration, and a board's file for `mast config validate/import` and `mast flash --config`."""

import json
import os
import subprocess
import sys

import pytest

from mastd import peeredit, presence_host, settings
from presence.conf import PresenceConfigError

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIRMWARE = os.path.join(ROOT, "firmware")
HOST_TOOLS = os.path.join(ROOT, "host-tools")
PSK = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
PSK2 = "ISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0+Pz8="
# b1 twice: the first with its routed prefix, the second without
TWICE = ('{"name": "srv.example", "keying": "open", "uplinks": {},\n'
         ' "peers": {"b1.example": {"addresses": ["192.0.2.1"], "allowed": ["10.1.0.0/24"]},\n'
         '           "b2.example": {"addresses": ["192.0.2.2"]},\n'
         '           "b1.example": {"addresses": ["192.0.2.3"]}}}\n')
SAID = "'b1.example' is given twice in one object (JSON would keep only the last)"


def run(module, *args):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([FIRMWARE, HOST_TOOLS]))
    return subprocess.run([sys.executable, "-m", module] + list(args), capture_output=True,
                          text=True, timeout=60, env=env)


def test_json_keeps_the_last_of_a_key_given_twice_which_is_why_it_is_refused():
    # (what the files were read as: b1's allowed prefix gone, no error)
    assert json.loads(TWICE)["peers"]["b1.example"] == {"addresses": ["192.0.2.3"]}
    with pytest.raises(settings.DuplicateKey) as e:
        settings.loads_json(TWICE)
    assert str(e.value) == SAID and e.value.key == "b1.example"
    assert settings.loads_json('{"a": {"x": 1}, "b": {"x": 2}}') == {"a": {"x": 1}, "b": {"x": 2}}


def test_mastd_check_and_start_refuse_a_peer_given_twice_in_mast_json(tmp_path):
    cfg = tmp_path / "mast.json"
    cfg.write_text(TWICE)
    os.chmod(str(cfg), 0o600)
    want = "mastd: %s: %s; give each key once\n" % (cfg, SAID)
    r = run("mastd", "--check", "--config", str(cfg))
    assert (r.returncode, r.stdout, r.stderr) == (1, "", want)
    r = run("mastd", "--config", str(cfg), "--control", str(tmp_path / "s"))
    assert (r.returncode, r.stderr) == (1, want)
    assert not (tmp_path / "s").exists()  # it never started


def test_a_key_given_twice_that_may_be_a_secret_is_not_repeated():
    # a PSK pasted where a peer's name goes, twice: the message must not carry it to the log
    text = '{"name": "srv", "peers": {"%s": {}, "%s": {}}}' % (PSK, PSK)
    with pytest.raises(settings.ConfigError) as e:
        settings.from_json_text(text, "m.json")
    assert str(e.value) == ("m.json: a key (not repeated: it may be a secret) is given twice in one "
                            "object (JSON would keep only the last); give each key once")
    assert PSK[:8] not in str(e.value)


def test_mastctl_peer_add_leaves_a_json_file_with_a_peer_given_twice_as_it_was(tmp_path):
    # peeredit read the file, added the peer and wrote it back: the first b1 was gone for good
    path = tmp_path / "mast.json"
    path.write_text(TWICE)
    with pytest.raises(ValueError) as e:
        peeredit.add_peer(str(path), "b3.example", {"psk": PSK2})
    assert str(e.value) == "%s: %s; give each key once" % (path, SAID)
    assert path.read_text() == TWICE


def test_the_presence_server_refuses_a_name_given_twice_with_two_keys(tmp_path):
    path = tmp_path / "presence.json"
    path.write_text('{"names": {"a.example": {"key": "%s"}, "a.example": {"key": "%s"}}}' % (PSK, PSK2))
    with pytest.raises(PresenceConfigError) as e:
        presence_host.load_config(str(path))
    assert str(e.value) == "file: %s: 'a.example' is given twice in one object (JSON would keep only the last)" % path
    assert PSK[:8] not in str(e.value) and PSK2[:8] not in str(e.value)


def test_mast_config_validate_and_flash_refuse_a_board_file_with_a_peer_given_twice(tmp_path):
    path = tmp_path / "board.json"
    path.write_text(TWICE)
    r = run("mast_tools", "config", "validate", str(path))
    assert (r.returncode, r.stdout, r.stderr) == (1, "", "mast: %s: %s; give each key once\n" % (path, SAID))
    from mast_tools.cmd_flash import load_config
    from mast_tools.errors import CommandError

    with pytest.raises(CommandError) as e:
        load_config(str(path), None)
    assert str(e.value) == "%s: %s; give each key once" % (path, SAID)


def test_mast_endpoint_refuses_an_endpoint_file_with_a_peer_given_twice(tmp_path):
    path = tmp_path / "endpoint.json"
    path.write_text('{"mast": {"name": "a.example", "keying": "open",\n'
                    '          "peers": {"b1.example": {"addresses": ["127.0.0.1:7001"]},\n'
                    '                    "b1.example": {"addresses": ["127.0.0.1:7002"]}}},\n'
                    ' "uplinks": {"eth": {"bind": "127.0.0.1:0"}}}\n')
    r = run("mast_tools", "endpoint", "--config", str(path), "--no-stdin", "--duration", "1")
    assert (r.returncode, r.stdout) == (1, "")
    assert r.stderr == ("mast: endpoint file %s: file: %s: %s; fix the file (the format is in "
                        "docs/RUNTIME.md)\n" % (path, path, SAID)), r.stderr
