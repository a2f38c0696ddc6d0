"""`mast genkey`: a new PSK in the documented format, which the core's schema takes."""

import base64

import boardcli  # noqa: F401  (host-tools on sys.path)
from boardcli import mast

from mast_tools.cmd_genkey import new_psk
from mast_tools.firmware import use_firmware


def test_genkey_prints_standard_base64_of_32_random_bytes():
    r = mast("genkey")
    assert r.returncode == 0 and r.stderr == ""
    key = r.stdout.strip()
    assert r.stdout == key + "\n" and len(key) == 44 and key.endswith("=")
    assert len(base64.b64decode(key, validate=True)) == 32
    use_firmware()
    from mast import config

    assert config.set_key({}, "peers.hub.psk", key)["peers"]["hub"]["psk"] == key  # the schema takes it


def test_each_key_is_new_and_json_says_what_it_is():
    a, b = mast("genkey", "--json").doc, mast("genkey", "--json").doc
    assert a["bytes"] == 32 and a["psk"] != b["psk"]
    assert new_psk(lambda n: bytes(range(n))) == base64.b64encode(bytes(range(32))).decode()
