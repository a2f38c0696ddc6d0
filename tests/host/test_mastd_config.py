"""mastd's configuration: UCI text (OpenWrt) and JSON, checked by the core's schema, errors that
name the option the user wrote."""

import io
import json
import os
import subprocess
import sys
import tarfile

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "host-tools"))

from mast import config  # noqa: E402  (firmware/ is on sys.path: tests/conftest.py)
from mastd import settings, uci  # noqa: E402
from mast_tools.config_help import schema_rows  # noqa: E402

PSK = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
EXAMPLE = os.path.join(ROOT, "openwrt-package", "mast", "files", "etc", "config", "mast")

ROUTER = """\
# a comment
config mast 'global'
	option name 'router1.example'
	option internal '10.99.0.2/24'
	option profile fast   # bare words work too

config peer 'srv'
	option name 'server.example'
	list addresses '198.51.100.1'
	list addresses '[2001:db8::1]:7000'
	option psk '%s'
	list allowed '192.168.50.0/24'
	option initiate '1'

config uplink 'lte'
	option priority '30'
	option cost '10'
	option device 'wwan0'
""" % PSK


def test_uci_words_quotes_escapes_and_comments():
    s = uci.parse("config peer 'a'\n\toption x \"it's\" # no\n\toption y 'a'\\''b'\n\tlist z one\n\tlist z 'two words'\n")
    assert len(s) == 1 and s[0].type == "peer" and s[0].name == "a"
    assert s[0].options == {"x": "it's", "y": "a'b", "z": ["one", "two words"]}


def test_uci_list_after_an_option_of_the_same_name_makes_a_list_of_both():
    s = uci.parse("config peer 'a'\n\toption allowed '10.1.0.0/16'\n\tlist allowed '10.2.0.0/16'\n")
    assert s[0].options == {"allowed": ["10.1.0.0/16", "10.2.0.0/16"]}


def test_uci_anonymous_sections_are_named_by_type_and_index():
    s = uci.parse("config peer\nconfig uplink\nconfig peer\n")
    assert [x.ref() for x in s] == ["@peer[0]", "@uplink[0]", "@peer[1]"]


@pytest.mark.parametrize("text, message", [
    ("option x 'y'\n", "f:1: option outside a config section"),
    ("config peer 'a'\n\toption x 'unterminated\n", "f:2: unterminated ' quote"),
    ("config peer 'a-b'\n", "f:1: section name 'a-b': use only A-Za-z0-9_"),
    ("config peer 'a'\n\tfrobnicate x y\n", "f:2: unknown keyword 'frobnicate' (config, option or list)"),
    ("config peer 'a'\nconfig uplink 'a'\n",
     "f:2: section 'a' is config peer on line 1 and config uplink here; give one of them another name"),
    # as libuci refuses them (a file `uci show` will not read is not read by mastd either):
    ("config peer 'a'\n\topt x 'y'\n", "f:2: unknown keyword 'opt' (config, option or list)"),
    ("config peer 'a'\n\toption psk 'abc' 'def'\n", "f:2: too many words: expected: option <name> '<value>'"),
    ("config peer 'a'\n\toption 'a-b' 'y'\n", "f:2: option name 'a-b': use only A-Za-z0-9_"),
    ("config 'pe er' 'a'\n", "f:1: section type 'pe er': use printable characters, no spaces"),
    ("package ''\nconfig peer 'a'\n", "f:1: expected: package <name>"),
    # a keyword that ends the file (no newline after it) is an error naming its line, not a crash
    ("config peer 'a'\n\toption", "f:2: expected: option <name> '<value>'"),
    ("config", "f:1: expected: config <type> ['<name>']"),
    ("package mast extra\n", "f:1: too many words: expected: package <name>"),
    ("config 'pe\x7fer'\n", "f:1: section type 'pe\\x7fer': use printable characters, no spaces"),
])
def test_uci_syntax_errors_name_the_file_and_line(text, message):
    with pytest.raises(uci.UciError) as e:
        uci.parse(text, "f")
    assert str(e.value) == message


KEY = "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0MTI="


@pytest.mark.parametrize("line, message", [
    ("\toption psk\n\t'%s'\n" % KEY, "f:3: unknown keyword (not repeated: it may be a key) "
     "(config, option or list)"),  # a key pasted on a line of its own
    ("\t%s\n" % KEY, "f:2: unknown keyword (not repeated: it may be a key) (config, option or list)"),
    ("\t%s\n" % KEY[:22], "f:2: unknown keyword (not repeated: it may be a key) (config, option or list)"),
    ("\toption psk=%s\n" % KEY, "f:2: option name (not repeated: it may be a key): use only A-Za-z0-9_"),
    ("\toption '%s'\n" % KEY, "f:2: option name (not repeated: it may be a key): use only A-Za-z0-9_"),
    ("\toption %s/%s 'x'\n" % (KEY[:20], KEY[20:30]),  # (most of a key, without its "=")
     "f:2: option name (not repeated: it may be a key): use only A-Za-z0-9_"),
    ("config peer '%s'\n" % KEY, "f:2: section name (not repeated: it may be a key): use only A-Za-z0-9_"),
])
def test_uci_a_syntax_error_never_repeats_a_key_typed_where_a_name_goes(line, message):
    # mastd's errors go to the log (logread, perhaps a remote syslog): `option psk=KEY` wrote
    # the key there, in "option name 'psk=KEY': use only A-Za-z0-9_"
    with pytest.raises(uci.UciError) as e:
        uci.parse("config peer 'a'\n" + line, "f")
    assert str(e.value) == message and KEY[:8] not in str(e.value)


def test_uci_anonymous_sections_count_the_named_ones_of_their_type_as_libuci_does():
    # `uci show` numbers @peer[N] among all peer sections, named or not
    s = uci.parse("config peer 'a'\nconfig peer\nconfig uplink\nconfig peer 'b'\nconfig peer\n")
    assert [x.ref() for x in s] == ["a", "@peer[1]", "@uplink[0]", "b", "@peer[3]"]


def test_uci_a_hash_glued_to_the_first_word_comments_the_line_out():
    # the usual way to switch an option off: `#option ...` with no space after the `#`
    s = uci.parse("#config peer 'x'\nconfig peer 'a'\n#option psk 'x'\n\t#\toption port '1'\n"
                  "\t#list allowed '10.0.0.0/8'\n\toption dns 'a.example'\n", "f")
    assert [(x.ref(), x.options) for x in s] == [("a", {"dns": "a.example"})]


def test_uci_a_tab_after_a_semicolon_starts_the_next_statement():
    s = uci.parse("config mast 'g'\n\toption a '1';\toption b '2'\n", "f")
    assert s[0].options == {"a": "1", "b": "2"}


def test_uci_an_option_after_a_list_of_the_same_name_replaces_it():
    # (the last statement wins, as `uci set` replaces a list with a value)
    s = uci.parse("config peer 'p'\n\tlist allowed '10.1.0.0/16'\n\toption allowed '10.2.0.0/16'\n", "f")
    assert s[0].options == {"allowed": "10.2.0.0/16"}


def test_uci_a_backslash_before_a_crlf_line_end_joins_the_next_line():
    # a file saved with Windows line ends: the backslash still continues the line
    s = uci.parse("config mast 'global'\r\n\toption name r1.\\\r\nexample\r\n\toption port '7000'\r\n", "f")
    assert s[0].options == {"name": "r1.example", "port": "7000"}


@pytest.mark.parametrize("text, message", [
    ("config mast 'main'\n\toption port '7000'\n", "mast.main.name: required"),
    ("config mast\n\toption port '7000'\n", "mast.@mast[0].name: required"),
    ("config mast 'g'\n\toption name 'x'\nconfig uplink\n\toption device 'eth0'\n",
     "mast.@uplink[0]: an uplink section needs a name: the logical interface (config uplink 'wan')"),
    ("config mast 'g'\n\toption name 'x'\nconfig peer\n\toption psk '%s'\n" % PSK,
     "mast.@peer[0]: an anonymous peer section needs option name"),
])
def test_a_missing_name_is_reported_on_the_section_the_file_has(text, message):
    with pytest.raises(config.ConfigError) as e:
        settings.from_uci_text(text)
    assert str(e.value) == message


@pytest.mark.parametrize("text, message", [
    ("config %s\n\toption name 'x'\n" % KEY,  # a key pasted as a section's type
     "mast.(not repeated: it may be a secret): unknown section type (not repeated: it may be a key) "
     "(mast, peer or uplink)"),
    ("config %s 'a'\n" % KEY[:20], "mast.a: unknown section type (not repeated: it may be a key) "
     "(mast, peer or uplink)"),
    ("config pear 'a'\n", "mast.a: unknown section type 'pear' (mast, peer or uplink)"),
])
def test_an_unknown_section_type_is_not_repeated_if_it_may_be_a_key(text, message):
    # mastd's errors go to the log: `config <KEY>` wrote the key there twice, as the type and in
    # the anonymous section's name (mast.@<KEY>[0])
    with pytest.raises(config.ConfigError) as e:
        settings.from_uci_text("config mast 'g'\n\toption name 'x'\n" + text)
    assert str(e.value) == message and KEY[:8] not in str(e.value)


@pytest.mark.parametrize("text", ["", "# nothing yet\n", "config uplink 'wan'\n\toption priority '10'\n"])
def test_a_file_without_a_config_mast_section_says_to_add_one(text):
    # (was "mast.global.name: required": of a section the file lacks, which `uci set
    # mast.global.name=...` cannot set either)
    with pytest.raises(config.ConfigError) as e:
        settings.from_uci_text(text, "/etc/config/mast")
    assert str(e.value) == ("/etc/config/mast: no `config mast` section; add one, e.g. config mast 'global' "
                            "with option name (this host's name)")


def test_uci_addresses_and_prefixes_may_be_separated_by_commas_in_a_list_item_or_an_option():
    # docs/MASTD.md: one `option` with items separated by spaces or commas
    s = settings.from_uci_text("config mast 'g'\n\toption name 'x'\nconfig peer 's'\n\toption psk '%s'\n"
                               "\tlist addresses '192.0.2.1,192.0.2.2 192.0.2.3'\n"
                               "\toption allowed '10.1.0.0/16,10.2.0.0/16'\n" % PSK)
    p = s.core["peers"]["s"]
    assert p["addresses"] == ["192.0.2.1", "192.0.2.2", "192.0.2.3"]
    assert p["allowed"] == ["10.1.0.0/16", "10.2.0.0/16"]


def test_uci_becomes_the_core_schemas_dotted_keys_with_typed_values():
    s = settings.from_uci_text(ROUTER)
    c = s.core
    assert c["name"] == "router1.example" and c["profile"] == "fast"
    p = c["peers"]["server.example"]
    assert p["addresses"] == ["198.51.100.1", "[2001:db8::1]:7000"]
    assert p["allowed"] == ["192.168.50.0/24"] and p["initiate"] is True and p["psk"] == PSK
    assert c["uplinks"]["lte"] == {"priority": 30, "cost": 10, "device": "wwan0", "kind": "linux"}
    assert s.agent == {"enabled": True, "internal": "10.99.0.2/24", "tun": "mast0", "masquerade": False}


def test_mastd_defaults_replay_window_8192_and_resend_on_unless_set():
    assert settings.from_uci_text(ROUTER).core["replay_window"] == 8192
    assert settings.from_uci_text(ROUTER).core["resend_ms"] == 1000
    s = settings.from_uci_text(ROUTER.replace("option profile fast", "option resend_ms '0'\n\toption replay_window '2048'"))
    assert (s.core["resend_ms"], s.core["replay_window"]) == (0, 2048)


@pytest.mark.parametrize("change, message", [
    (("option cost '10'", "option cost '300'"), "mast.lte.cost: must be an integer from 0 to 255"),
    (("option cost '10'", "option cost 'cheap'"), "mast.lte.cost: must be an integer from 0 to 255"),
    (("option psk '%s'" % PSK, "option psk 'short'"), "mast.srv.psk: must be standard base64 of exactly 32 bytes"),
    (("option profile fast", "option profile turbo"), "mast.global.profile: must be one of default, fast"),
    (("option profile fast", "option colour 'red'"), "mast.global.colour: unknown key"),
    (("option device 'wwan0'", "option speed '9'"), "mast.lte.speed: unknown key"),
    (("list allowed '192.168.50.0/24'", "list allowed '192.168.50.0/33'"),
     "mast.srv.allowed: bad item '192.168.50.0/33': must be an IPv4 or IPv6 prefix such as 10.0.0.0/8"),
    (("option internal '10.99.0.2/24'", "option internal '10.99.0.2'"),
     "mast.global.internal: must be an IPv4 or IPv6 prefix such as 10.0.0.0/8"),
    (("option name 'router1.example'\n", ""), "mast.global.name: required"),
    (("config uplink 'lte'", "config uplnk 'lte'"), "mast.lte: unknown section type 'uplnk' (mast, peer or uplink)"),
    # the core's one rule for names (h54): 1.2.3 reads as the address 1.2.0.3; a fleet_domain no
    # member's name can end with
    (("list addresses '198.51.100.1'", "option dns '1.2.3'"),
     "mast.srv.dns: must be 1 to 253 characters of A-Za-z0-9.-, labels of 1 to 63 between dots, "
     "the last starting with a letter"),
    (("option profile fast", "option fleet_domain 'boards.example.'"),
     "mast.global.fleet_domain: must be 1 to 61 characters of A-Za-z0-9.-, labels of 1 to 63 "
     "between dots, the last starting with a letter, no dot at the end"),
])
def test_a_bad_value_names_the_uci_option(change, message):
    text = ROUTER.replace(*change)
    assert text != ROUTER
    with pytest.raises(config.ConfigError) as e:
        settings.from_uci_text(text)
    assert str(e.value) == message


def test_json_uses_the_same_keys_and_names_them_in_errors():
    doc = {"name": "server", "internal": "10.99.0.1/24",
           "peers": {"router1": {"psk": PSK, "allowed": ["192.168.1.0/24"]}},
           "uplinks": {"eth0": {"device": "eth0", "cost": 1}}}
    s = settings.from_json_text(json.dumps(doc))
    assert s.core["uplinks"]["eth0"]["cost"] == 1 and s.agent["internal"] == "10.99.0.1/24"
    doc["uplinks"]["eth0"]["cost"] = 256
    with pytest.raises(config.ConfigError) as e:
        settings.from_json_text(json.dumps(doc))
    assert str(e.value) == "uplinks.eth0.cost: must be an integer from 0 to 255"


def test_a_prefix_or_internal_address_another_peer_holds_is_refused_naming_both():
    # accepted before: the TUN's packets to it went to the peer whose name sorts last (a new
    # peer without an association took a running peer's traffic, all of it dropped)
    doc = {"name": "r", "internal": "10.99.0.2/24",
           "peers": {"server": {"psk": PSK, "internal": "10.99.0.1",
                                "allowed": ["192.168.50.0/24", "fd50::/64"]},
                     "zzz": {"psk": PSK, "allowed": ["192.168.50.9/24"]}}}
    with pytest.raises(config.ConfigError) as e:
        settings.from_json_text(json.dumps(doc))
    assert str(e.value) == ("peers.zzz.allowed: 192.168.50.9/24 is peer server's already "
                            "(each prefix is routed to one peer)")
    doc["peers"]["zzz"] = {"psk": PSK, "internal": "10.99.0.1"}
    with pytest.raises(config.ConfigError, match=r"^peers\.zzz\.internal: 10\.99\.0\.1 is peer server's"):
        settings.from_json_text(json.dumps(doc))
    doc["peers"]["zzz"] = {"psk": PSK, "allowed": ["fd50:0::/64"]}
    with pytest.raises(config.ConfigError, match=r"^peers\.zzz\.allowed: fd50:0::/64 is peer server's"):
        settings.from_json_text(json.dumps(doc))
    # in UCI, the option of the section the user wrote
    text = ROUTER + "\nconfig peer 'two'\n\toption name 'two.example'\n\toption psk '%s'\n" \
        "\tlist allowed '192.168.50.0/24'\n" % PSK
    with pytest.raises(config.ConfigError) as e:
        settings.from_uci_text(text)
    assert str(e.value) == ("mast.two.allowed: 192.168.50.0/24 is peer server.example's already "
                            "(each prefix is routed to one peer)")
    # a longer prefix inside another peer's is a route of its own: accepted, by file and by
    # mastctl peer add (checked alone, against the others)
    doc["peers"]["zzz"] = {"psk": PSK, "allowed": ["192.168.50.128/25"]}
    conf = settings.from_json_text(json.dumps(doc))
    with pytest.raises(config.ConfigError, match=r"^peers\.b7\.allowed: fd50::/64 is peer server's"):
        settings.with_peer(conf, "b7", {"psk": PSK, "allowed": ["10.7.0.0/16", "fd50::/64"]})
    assert "b7" in settings.with_peer(conf, "b7", {"psk": PSK, "allowed": ["10.7.0.0/16"]}).core["peers"]


def test_the_shipped_example_is_valid_once_it_has_a_real_key():
    text = open(EXAMPLE).read()
    with pytest.raises(config.ConfigError) as e:
        settings.from_uci_text(text)
    assert str(e.value).startswith("mast.server.psk: ")
    s = settings.from_uci_text(text.replace("REPLACE-WITH-base64-OF-32-BYTES-FROM-mast-genkey=", PSK))
    assert sorted(s.core["uplinks"]) == ["lte", "wan", "wwan"]
    assert s.agent["enabled"] is False


def test_every_option_of_the_example_is_a_schema_or_mastd_key():
    keys = set(r[0].split(".")[-1] for r in schema_rows())
    for sec in uci.parse(open(EXAMPLE).read()):
        for k in sec.options:
            assert k in keys, k


@pytest.fixture(scope="module")
def unpacked(tmp_path_factory):
    from mast_tools import cmd_ipk

    out = tmp_path_factory.mktemp("ipk")
    info = cmd_ipk.build(str(out))
    with tarfile.open(info["path"], "r:gz") as outer:
        data = outer.extractfile("./data.tar.gz").read()
    root = out / "root"
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as t:
        t.extractall(str(root))
    return root


def run_mastd(root, *args):
    return subprocess.run([sys.executable, str(root / "usr/sbin/mastd")] + list(args), capture_output=True,
                          text=True, timeout=30, env=dict(os.environ, PYTHONPATH=""))


def test_mastd_from_the_ipk_refuses_a_bad_uci_file_naming_the_option(unpacked, tmp_path):
    cfg = tmp_path / "mast"
    cfg.write_text(ROUTER.replace("option cost '10'", "option cost '300'"))
    r = run_mastd(unpacked, "--config", str(cfg), "--control", str(tmp_path / "s"))
    assert r.returncode == 1
    assert r.stderr == "mastd: mast.lte.cost: must be an integer from 0 to 255\n"
    assert not (tmp_path / "s").exists()  # it never started


def test_mastd_from_the_ipk_reports_uci_syntax_errors_with_the_line(unpacked, tmp_path):
    cfg = tmp_path / "mast"
    cfg.write_text("config mast 'global'\n\toption name 'unterminated\n")
    r = run_mastd(unpacked, "--config", str(cfg), "--check")
    assert r.returncode == 1
    assert r.stderr == "mastd: %s:2: unterminated ' quote\n" % cfg


def test_mastd_check_accepts_a_good_file(unpacked, tmp_path):
    cfg = tmp_path / "mast"
    cfg.write_text(ROUTER)
    r = run_mastd(unpacked, "--config", str(cfg), "--check")
    assert (r.returncode, r.stdout) == (0, "mastd: %s is valid\n" % cfg)


def test_mastd_without_a_readable_config_says_which_file(unpacked, tmp_path):
    r = run_mastd(unpacked, "--config", str(tmp_path / "nope"))
    assert r.returncode == 1
    assert r.stderr.startswith("mastd: cannot read %s" % (tmp_path / "nope"))
    assert "Traceback" not in r.stderr


def test_two_peer_sections_with_the_same_name_are_refused_naming_the_second():
    text = ROUTER + "\nconfig peer 'again'\n\toption name 'server.example'\n\toption psk '%s'\n" \
        "\tlist allowed '192.168.60.0/24'\n" % PSK
    with pytest.raises(config.ConfigError) as e:
        settings.from_uci_text(text)
    assert str(e.value) == "mast.again: peer 'server.example' is configured twice"


def test_a_sim_pin_alone_is_a_key_the_file_mode_warning_is_about():
    doc = {"name": "r1.example", "keying": "open", "peers": {"srv.example": {}},
           "uplinks": {"lte": {"device": "wwan0", "sim_pin": "1234"}}}
    core = settings.from_json_text(json.dumps(doc)).core
    assert settings.mode_warning("/etc/mast.json", 0o644, core) == (
        "/etc/mast.json holds keys and its mode 0644 lets its group and others read them; "
        "chmod 600 /etc/mast.json")
    assert settings.mode_warning("/etc/mast.json", 0o600, core) is None
    del doc["uplinks"]["lte"]["sim_pin"]
    assert settings.mode_warning("/etc/mast.json", 0o644, settings.from_json_text(json.dumps(doc)).core) is None


def test_without_config_mastd_takes_the_uci_file_before_the_json_one(tmp_path, monkeypatch):
    from mastd import main as mastd_main

    uci_path, json_path = tmp_path / "config" / "mast", tmp_path / "mast.json"
    monkeypatch.setattr(settings, "DEFAULT_UCI", str(uci_path))
    monkeypatch.setattr(settings, "DEFAULT_JSON", str(json_path))
    assert mastd_main.default_config() == str(uci_path)  # neither: the UCI path, named in the error
    json_path.write_text("{}")
    assert mastd_main.default_config() == str(json_path)
    uci_path.parent.mkdir()
    uci_path.write_text("")
    assert mastd_main.default_config() == str(uci_path)  # both (OpenWrt with a JSON file left over)


@pytest.mark.parametrize("address, what", [
    ("224.0.0.251", "a multicast address"), ("239.1.2.3:6278", "a multicast address"),
    ("255.255.255.255", "the broadcast address"), ("[ff02::1]:6278", "a multicast address"),
    ("::ffff:239.0.0.1", "a multicast address"),
    ("0.0.0.0", "the unspecified address"), ("[::]:6278", "the unspecified address"),
])
def test_a_peer_address_that_is_a_group_or_the_broadcast_address_is_refused_naming_the_option(address, what):
    # accepted before: every INIT went to a group (or failed, tx_error) and no peer could ever
    # answer from that address; one host's address is what a peer has
    text = ROUTER.replace("list addresses '198.51.100.1'", "list addresses '%s'" % address)
    with pytest.raises(config.ConfigError) as e:
        settings.from_uci_text(text)
    assert str(e.value) == ("mast.srv.addresses: bad item %r: %s is not a peer's; give the peer's "
                            "own (unicast) address" % (address, what))
    doc = {"name": "r", "peers": {"b": {"psk": PSK, "addresses": ["192.0.2.1", address]}}}
    with pytest.raises(config.ConfigError) as e:
        settings.from_json_text(json.dumps(doc))
    assert str(e.value).startswith("peers.b.addresses: bad item %r: %s" % (address, what))
    conf = settings.from_json_text(json.dumps({"name": "r", "peers": {}}))
    with pytest.raises(config.ConfigError) as e:  # one peer added to a fleet: checked too
        settings.with_peer(conf, "b7", {"psk": PSK, "addresses": [address]})
    assert str(e.value).startswith("peers.b7.addresses: bad item %r: %s" % (address, what))


def test_unicast_peer_addresses_next_to_the_groups_are_still_taken():
    doc = {"name": "r", "peers": {"b": {"psk": PSK, "addresses": [
        "223.255.255.254", "240.0.0.1", "192.168.1.255", "[fe80::1]:6278", "2001:db8::ff"]}}}
    assert len(settings.from_json_text(json.dumps(doc)).core["peers"]["b"]["addresses"]) == 5


@pytest.mark.parametrize("where, secret", [
    ("uplink", {"uplinks": {"wifi": {"kind": "wlan", "ssid": "cafe", "password": "hunter2hunter2"}}}),
    ("fleet", {"fleet_domain": "fleet.example", "fleet_psk": PSK}),
])
def test_a_wifi_password_or_a_fleet_key_alone_is_a_key_the_file_mode_warning_is_about(where, secret):
    doc = dict({"name": "r1.example", "keying": "open", "peers": {"srv.example": {}}}, **secret)
    core = settings.from_json_text(json.dumps(doc)).core
    assert settings.mode_warning("/etc/mast.json", 0o604, core) == (
        "/etc/mast.json holds keys and its mode 0604 lets others read them; chmod 600 /etc/mast.json")


def test_an_uplink_of_a_boards_kind_is_valid_but_warned_of_as_unused_by_mastd(tmp_path):
    # (kind ppp with an apn, or wlan with an ssid, was taken in silence: a router user expected
    # mastd to dial or join the network; it uses the interface as netifd or Linux has it)
    uci = tmp_path / "mast"
    uci.write_text(ROUTER.replace("option device 'wwan0'", "option device 'wwan0'\n\toption kind 'ppp'\n"
                                  "\toption apn 'internet'"))
    uci.chmod(0o600)
    assert settings.load(str(uci)).warnings == [
        "mast.lte.kind: ppp is a board's uplink kind; mastd neither joins Wi-Fi nor dials (ssid, password, "
        "apn, sim_pin unused): it uses the interface lte as it is (leave kind out)"]
    js = tmp_path / "mast.json"
    js.write_text(json.dumps({"name": "r1", "uplinks": {"eth0": {}, "wifi": {"kind": "wlan", "ssid": "cafe"}}}))
    js.chmod(0o600)
    assert [w.split(":")[0] for w in settings.load(str(js)).warnings] == ["uplinks.wifi.kind"]
    uci.write_text(ROUTER)
    assert settings.load(str(uci)).warnings == []


def test_app_users_and_groups_are_found_by_their_whole_name_and_give_their_own_number(tmp_path):
    # (OpenWrt's python3-light may lack pwd and grp: mastd reads /etc/passwd and /etc/group)
    passwd, group = tmp_path / "passwd", tmp_path / "group"
    passwd.write_text("root:x:0:0:root:/root:/bin/ash\nmqtt:x:4242:65534:mqtt:/var/run/mqtt:/bin/false\n")
    group.write_text("root:x:0:\nnogroup:x:65534:\niot:x:4343:mqtt\n")
    files = {"user": str(passwd), "group": str(group)}
    assert settings.lookup_id("user", "mqtt", files) == 4242  # its uid, not its primary group
    assert settings.lookup_id("group", "iot", files) == 4343
    assert settings.lookup_id("user", "4711", files) == 4711  # a number is taken as it is
    for kind, name, path in (("user", "mqt", passwd), ("group", "io", group), ("user", "x", passwd)):
        with pytest.raises(ValueError) as e:
            settings.lookup_id(kind, name, files)
        assert str(e.value) == "no %s %r in %s" % (kind, name, path)
    with pytest.raises(ValueError) as e:
        settings.lookup_id("user", "mqtt", {"user": str(tmp_path / "none")})
    assert str(e.value) == "cannot read %s (No such file or directory)" % (tmp_path / "none")


def test_a_second_config_mast_section_is_refused_naming_both():
    text = ROUTER + "\nconfig mast 'other'\n\toption port '7000'\n"
    with pytest.raises(config.ConfigError) as e:
        settings.from_uci_text(text)
    assert str(e.value) == "mast.other: a second `config mast` section (there is one: mast.global)"


def test_an_error_in_a_peer_whose_name_extends_another_peers_names_its_own_section():
    # peer names are domain names: peers.site.b.psk is peer "site.b"'s psk, not peer "site"'s
    text = ROUTER + ("\nconfig peer 'one'\n\toption name 'site'\n\toption psk '%s'\n"
                     "\nconfig peer 'two'\n\toption name 'site.b'\n\toption psk 'short'\n" % PSK)
    with pytest.raises(config.ConfigError) as e:
        settings.from_uci_text(text)
    assert str(e.value) == "mast.two.psk: must be standard base64 of exactly 32 bytes"


@pytest.mark.parametrize("word, value", [("enabled", True), ("on", True), ("yes", True), ("disabled", False),
                                         ("off", False), ("no", False), ("0", False), ("TRUE", True)])
def test_uci_booleans_take_the_words_openwrt_uses(word, value):
    s = settings.from_uci_text(ROUTER.replace("option initiate '1'", "option initiate '%s'" % word))
    assert s.core["peers"]["server.example"]["initiate"] is value


def test_mastds_log_lines_on_stdout_and_their_syslog_priorities(monkeypatch):
    import types

    from mastd.log import Log

    out = io.StringIO()
    log = Log(stream=out)
    log.info("started")
    log.warn("reload: port changed")
    log.error("uplink lte: no device")
    lines = out.getvalue().splitlines()
    assert [l.split(" ", 1)[1] for l in lines] == [
        "mastd info: started", "mastd warning: reload: port changed", "mastd error: uplink lte: no device"]
    sent = []
    fake = types.SimpleNamespace(LOG_PID=1, LOG_DAEMON=24, LOG_INFO=6, LOG_WARNING=4, LOG_ERR=3,
                                 openlog=lambda *a: sent.append(("openlog",) + a),
                                 syslog=lambda prio, msg: sent.append((prio, msg)))
    monkeypatch.setitem(sys.modules, "syslog", fake)
    log = Log(use_syslog=True, stream=out)
    log.info("a")
    log.warn("b")
    log.error("c")
    assert sent == [("openlog", "mastd", 1, 24), (6, "a"), (4, "b"), (3, "c")]


def test_each_log_line_leaves_at_once_when_stdout_is_a_pipe():
    # (procd and systemd read mastd's stdout through a pipe: a buffered line showed up only
    # once some kilobytes had followed it, or at exit)
    from mastd.log import Log

    r, w = os.pipe()
    os.set_blocking(r, False)
    with os.fdopen(w, "w") as stream:  # (block-buffered, as sys.stdout on a pipe)
        try:
            Log(stream=stream).warn("uplink lte: no device")
            assert os.read(r, 4096).decode().endswith(" mastd warning: uplink lte: no device\n")
        finally:
            os.close(r)


def test_a_log_line_stdout_will_not_take_is_counted_and_mastd_runs_on():
    # (`mastd > /var/log/mastd.log` on a full disk, or `mastd | logger` whose reader died: the
    # next log line, a failover say, raised OSError out of the loop and ended mastd)
    import errno

    from mastd.log import Log

    class Refusing:
        def __init__(self, e):
            self.e, self.lines = e, []

        def write(self, text):
            if self.e is not None:
                raise self.e
            self.lines.append(text)

        def flush(self):
            pass

    for e in (OSError(errno.ENOSPC, "No space left on device"), BrokenPipeError(errno.EPIPE, "Broken pipe"),
              ValueError("I/O operation on closed file.")):
        stream = Refusing(e)
        log = Log(stream=stream)
        log.info("failover old=wan new=lte")
        log.warn("uplink wan: no carrier")
        assert log.lost == 2
        stream.e = None  # room again: the next line is written, after one that says 2 were lost
        log.error("uplink lte: no device")
        log.info("failover old=lte new=wan")  # (said once)
        assert log.lost == 2 and [x[9:] for x in stream.lines] == [
            "mastd warning: 2 log line(s) lost here: the log's reader did not take them "
            "(log_lines_lost in mastctl status)\n",
            "mastd error: uplink lte: no device\n", "mastd info: failover old=lte new=wan\n"]


def test_an_app_socket_path_of_107_bytes_is_taken_and_one_of_108_refused():
    # (a Unix socket's path holds 107 bytes and its NUL: bind() would fail at start)
    def load(path):
        return settings.from_json_text(json.dumps({"name": "s", "peers": {"p": {"psk": PSK, "app_socket": path}}}))

    ok = "/run/" + "a" * 97 + ".sock"
    assert len(ok) == 107 and load(ok).apps["p"]["app_socket"] == ok
    for bad in (ok.replace(".sock", "x.sock"), "/run/mast/"):
        with pytest.raises(config.ConfigError) as e:
            load(bad)
        assert str(e.value) == "peers.p.app_socket: must be " + settings.APP_KEYS["app_socket"]


def test_a_json_file_nested_16_deep_is_checked_and_one_nested_17_deep_refused_unread():
    def doc(lists):  # the file's object, then lists nested `lists` deep
        return json.dumps({"name": "s", "x": json.loads("[" * lists + "]" * lists)})

    with pytest.raises(config.ConfigError) as e:
        settings.from_json_text(doc(15), "m.json")  # 16 deep: read, and its key checked
    assert str(e.value) == "x: unknown key"
    with pytest.raises(config.ConfigError) as e:
        settings.from_json_text(doc(16), "m.json")
    assert "m.json: objects and lists nest more than 16 deep" in str(e.value)


def test_a_log_line_for_a_stalled_reader_is_dropped_and_counted_not_waited_for():
    # (procd's pipe or a terminal paused with Ctrl-S that nobody reads: a full pipe made the
    # next log line's write block, and with it mastd's loop; SIGTERM could not end it)
    import select
    import threading

    from mastd.log import Log

    r, w = os.pipe()
    os.set_blocking(w, False)
    try:
        while True:  # fill the pipe: nobody reads it
            os.write(w, b"x" * 4096)
    except BlockingIOError:
        pass
    os.set_blocking(w, True)  # (as a process's stdout is)
    stream = os.fdopen(w, "w")
    log = Log(stream=stream)
    done = []
    t = threading.Thread(target=lambda: done.append(log.info("failover old=wan new=lte")), daemon=True)
    t.start()
    t.join(20)  # (a bound: the call returns at once, or never)
    blocked = t.is_alive()
    try:
        assert not blocked and log.lost == 1
        while select.select([r], [], [], 0)[0]:  # the reader catches up
            os.read(r, 65536)
        log.warn("uplink wan: no carrier")  # then lines are written again, the loss said first
        assert [x[9:] for x in os.read(r, 65536).decode().splitlines()] == [
            "mastd warning: 1 log line(s) lost here: the log's reader did not take them "
            "(log_lines_lost in mastctl status)", "mastd warning: uplink wan: no carrier"]
        assert log.lost == 1
        log.error("e" * 10000)  # a line longer than a pipe takes at once: cut, written whole
        line = os.read(r, 65536)
        assert len(line) == 4096 and line.endswith(b"eee...\n")
    finally:
        os.close(r)  # (frees a write blocked on the old code: EPIPE)
        t.join(5)
        try:
            stream.close()
        except OSError:
            pass
