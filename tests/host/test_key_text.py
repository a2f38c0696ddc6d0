"""Text in a key's place in a JSON configuration: a part of a key with a character no key has
(outside A-Za-z0-9_.-) is not repeated in the error. A PSK pasted where a peer's name or key
goes ({"peers": {"<psk>": ...}}, {"peers": {"srv": {"<psk>": ...}}}) came back in mastd's error
(and so in syslog), in `mast config validate` and `mast flash --config`, and in the presence
server's; a newline in a peer's name made a line of its own in the log that looked like mastd's.
UCI names the section instead (the option names cannot hold such text), and the board's console
refuses such a key whole (tests/core/test_board_key_text.py)."""

import json
import os
import subprocess
import sys

import pytest

from mast.config import ConfigError
from mastd import presence_host, settings
from presence.conf import PresenceConfigError

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIRMWARE = os.path.join(ROOT, "firmware")
HOST_TOOLS = os.path.join(ROOT, "host-tools")
PSK = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
HIDDEN = "(not repeated: it may be a secret)"


def run(module, *args):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([FIRMWARE, HOST_TOOLS]))
    return subprocess.run([sys.executable, "-m", module] + list(args), capture_output=True,
                          text=True, timeout=60, env=env)


def doc(peers):
    return {"name": "srv.example", "keying": "open", "uplinks": {}, "peers": peers}


CASES = [
    (doc({"srv": {PSK: 1}}), "peers.srv.%s: unknown key" % HIDDEN),
    (doc({PSK: {}}), "peers.%s: name must be 1 to 63 characters of A-Za-z0-9.-" % HIDDEN),
    (doc({"a\nmastd: fake line": {}}), "peers.%s: name must be 1 to 63 characters of A-Za-z0-9.-" % HIDDEN),
    (doc({"a.example": {"port": 0}}), "peers.a.example.port: must be an integer from 1 to 65535"),
    (doc({"srv": {"pört": 1}}), "peers.srv.%s: unknown key" % HIDDEN),
]


@pytest.mark.parametrize("cfg,said", CASES)
def test_mastd_repeats_no_part_of_a_key_that_a_key_cannot_be(tmp_path, cfg, said):
    path = tmp_path / "mast.json"
    path.write_text(json.dumps(cfg))
    os.chmod(str(path), 0o600)
    r = run("mastd", "--check", "--config", str(path))
    assert (r.returncode, r.stdout, r.stderr) == (1, "", "mastd: %s\n" % said)


def test_mastctl_peer_add_of_a_psk_as_the_name_or_a_key_does_not_repeat_it():
    conf = settings.from_json_text(json.dumps(doc({})))
    for name, peer, said in ((PSK, {}, "peers.%s: name must be 1 to 63 characters of A-Za-z0-9.-" % HIDDEN),
                             ("b7.example", {PSK: 1}, "peers.b7.example.%s: unknown key" % HIDDEN),
                             (PSK, 7, "peers.%s: must be a table" % HIDDEN)):
        with pytest.raises(ConfigError) as e:
            settings.with_peer(conf, name, peer)
        assert str(e.value) == said and PSK[:8] not in str(e.value)


def test_mast_config_validate_and_flash_do_not_repeat_a_psk_in_a_keys_place(tmp_path):
    path = tmp_path / "board.json"
    path.write_text(json.dumps(doc({"srv": {PSK: 1}})))
    want = "mast: %s is not valid: peers.srv.%s: unknown key; fix that key (docs/CONFIG.md lists them)\n" % (path, HIDDEN)
    for extra in ((), ("--board", "unix-sim")):
        r = run("mast_tools", "config", "validate", str(path), *extra)
        assert (r.returncode, r.stdout, r.stderr) == (1, "", want), extra
    from mast_tools.cmd_flash import check_config

    assert check_config(doc({"srv": {PSK: 1}}), {"name": "x", "port": "unix", "uplinks": {}}) == \
        "peers.srv.%s: unknown key" % HIDDEN


def test_the_presence_server_does_not_repeat_a_key_given_as_a_name(tmp_path):
    path = tmp_path / "presence.json"
    path.write_text(json.dumps({"names": {PSK: {"key": PSK}}}))
    with pytest.raises(PresenceConfigError) as e:
        presence_host.load_config(str(path))
    assert str(e.value) == "names.%s: a name must be 1 to 63 characters of A-Za-z0-9.-" % HIDDEN
    path.write_text(json.dumps({"names": {"a.example": {"key": PSK, "kye": 1}}}))
    with pytest.raises(PresenceConfigError) as e:
        presence_host.load_config(str(path))
    assert str(e.value) == "names.a.example.kye: unknown key (known: key)"


def test_shown_key_keeps_every_part_a_key_may_have():
    assert settings.shown_key("peers.a-1.example.app_user") == "peers.a-1.example.app_user"
    assert settings.shown_key("uplinks.wan_2.cost") == "uplinks.wan_2.cost"
    assert settings.shown_key("peers.*.psk") == "peers.*.psk"
    assert settings.shown_key("peers.a b.psk") == "peers.%s.psk" % HIDDEN
