# Text in a key's place in an endpoint file (runtime/runconfig.py): a part of a key with a
# character no key has (outside A-Za-z0-9_.-) is not repeated in the error, as mastd and the
# host tools do for their files (jsonrule.shown_key is the one rule). A PSK pasted where a
# peer's name or key goes came back in `mast endpoint`'s error; a newline in a name made a line
# of its own. A module of its own: test_runtime_file.py is near the 128K heap's edge on
# MicroPython. Plain functions with asserts: CPython and MicroPython.

from runtime import jsonrule, runconfig
from runtime.runconfig import FileError

PSK = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
HIDDEN = "(not repeated: it may be a secret)"


def refused(mast=None, uplinks=None, top=None):
    d = {"mast": mast or {"name": "board", "keying": "open", "peers": {}},
         "uplinks": uplinks or {"eth": {"bind": "127.0.0.1:6278"}}}
    d.update(top or {})
    try:
        runconfig.check(d)
    except FileError as e:
        assert str(e).startswith(e.key + ": ")
        return str(e)
    assert False, "no FileError"


def test_a_psk_or_a_newline_in_a_keys_place_is_not_repeated():
    for got, want in (
        (refused({"name": "b", "keying": "open", "peers": {"srv": {PSK: 1}}}), "mast.peers.srv.%s: unknown key" % HIDDEN),
        (refused({"name": "b", "keying": "open", "peers": {PSK: {}}}), "mast.peers.%s: name must be" % HIDDEN),
        (refused({"name": "b", "keying": "open", "peers": {"a\nmast: x": {}}}), "mast.peers.%s: name must be" % HIDDEN),
        (refused(uplinks={PSK: {"bind": "127.0.0.1:1"}}), "uplinks.%s: name must be" % HIDDEN),
        (refused(uplinks={"eth": {"bind": "127.0.0.1:1", PSK: 1}}), "uplinks.eth.%s: unknown key" % HIDDEN),
        (refused(top={PSK: 1}), "%s: unknown key" % HIDDEN),
    ):
        assert got.startswith(want) and PSK[:8] not in got and "\n" not in got, got


def test_parts_of_a_keys_characters_are_named_as_before():
    assert refused({"name": "b", "keying": "open", "peers": {"srv": {"port": 0}}}) == \
        "mast.peers.srv.port: must be an integer from 1 to 65535"
    assert refused(top={"connect": ["nobody"]}) == "connect[0]: unknown peer 'nobody': add it under mast.peers"
    assert jsonrule.shown_key("peers.a-1.example.app_user") == "peers.a-1.example.app_user"
    assert jsonrule.shown_key("peers.*.psk") == "peers.*.psk"
    assert jsonrule.shown_key("peers.caf\u00e9.psk") == "peers.%s.psk" % HIDDEN
