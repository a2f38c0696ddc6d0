"""`mast genkey`: a new PSK in the documented format, which the core's schema takes."""

import base64
import os
import subprocess

import pytest

import boardcli  # noqa: F401  (host-tools on sys.path)
from boardcli import mast
from test_cli_frame import HOST_TOOLS, MAST

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


@pytest.mark.parametrize("mode, warned", [(0o644, True), (0o640, True), (0o600, False)])
def test_a_key_written_to_a_file_others_may_read_is_warned_about(tmp_path, mode, warned):
    # `mast genkey > hub.psk` under the usual umask 022 left the key readable by every user
    # (wg genkey warns alike)
    path = tmp_path / "hub.psk"
    fd = os.open(str(path), os.O_WRONLY | os.O_CREAT, mode)
    os.fchmod(fd, mode)
    try:
        r = subprocess.run(MAST + ["genkey"], stdout=fd, stderr=subprocess.PIPE, text=True, timeout=60,
                           env=dict(os.environ, PYTHONPATH=HOST_TOOLS))
    finally:
        os.close(fd)
    key = path.read_text().strip()
    assert r.returncode == 0 and len(base64.b64decode(key, validate=True)) == 32
    assert r.stderr == ("mast: warning: the key goes to a file that others may read (mode %04o); "
                        "chmod 600 it, and `umask 077` first next time\n" % mode if warned else "")
    assert key not in r.stderr
