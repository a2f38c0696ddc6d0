# The configuration schema: defaults, refusals that name the key, one-key
# edits, and secrets that never show.
from mast import config
from mast.config import ConfigError

PSK = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="  # bytes 0..31
PSK_31 = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHg=="  # bytes 0..30


def base(**top):
    cfg = {"name": "board1.example", "peers": {"srv": {"psk": PSK}}}
    cfg.update(top)
    return cfg


def error(fn, *args):
    try:
        fn(*args)
    except ConfigError as e:
        assert str(e).startswith(e.key + ": ")
        return e
    assert False, "no ConfigError from %r" % (args,)


def bad(cfg):
    """str() of the ConfigError validate raises for cfg."""
    return str(error(config.validate, cfg))


def with_peer(**keys):
    peer = {"psk": PSK}
    peer.update(keys)
    return base(peers={"srv": peer})


def with_uplink(**keys):
    return base(uplinks={"cell": keys})


def test_validate_fills_in_every_default():
    cfg = config.validate(base(uplinks={"cell": {"kind": "ppp"}}))
    assert cfg == {
        "name": "board1.example",
        "port": 6278,
        "keying": "psk",
        "profile": "default",
        "mode": "failover",
        "replay_window": 1024,
        "resend_ms": 0,
        "outage_s": 300,
        "nat_refresh_s": 25,
        "peers": {"srv": {"psk": PSK, "addresses": [], "port": 6278,
                          "initiate": True, "allowed": []}},
        "uplinks": {"cell": {"kind": "ppp", "priority": 100, "cost": 0}},
    }


def test_validate_keeps_given_values_and_returns_a_new_dict():
    given = base(port=7000, mode="redundant", replay_window=64,
                 uplinks={"wan": {"device": "eth0.2", "address": "192.0.2.1",
                                  "priority": 0, "cost": 255}})
    given["peers"]["srv"]["addresses"] = ["198.51.100.7", "[2001:db8::1]:7000"]
    cfg = config.validate(given)
    assert cfg["port"] == 7000 and cfg["mode"] == "redundant"
    assert cfg["uplinks"]["wan"]["device"] == "eth0.2"
    assert cfg["uplinks"]["wan"]["cost"] == 255
    cfg["peers"]["srv"]["addresses"].append("203.0.113.9")
    assert given["peers"]["srv"]["addresses"] == ["198.51.100.7", "[2001:db8::1]:7000"]
    assert "uplinks" not in base()  # defaults go only into the copy


def test_open_keying_needs_no_peers_and_no_psk():
    cfg = config.validate({"name": "h", "keying": "open", "peers": {"srv": {}}})
    assert cfg["peers"]["srv"]["initiate"] is True
    assert "psk" not in cfg["peers"]["srv"]
    assert config.validate({"name": "h"})["uplinks"] == {}


def test_missing_name_is_refused():
    assert bad({"peers": {}}) == "name: required"
    assert bad({}) == "name: required"


def test_unknown_keys_are_refused_by_name():
    assert bad(base(colour="red")) == "colour: unknown key"
    assert bad(with_peer(pks=PSK)) == "peers.srv.pks: unknown key"
    assert bad(with_uplink(speed=1)) == "uplinks.cell.speed: unknown key"
    assert bad(base(peers={"srv": {"psk": PSK, "port": {"x": 1}}})).startswith(
        "peers.srv.port: ")
    e = error(config.validate, base(port={}))
    assert e.key == "port"


def test_sections_must_be_tables():
    assert bad(base(peers=["srv"])) == "peers: must be a table"
    assert bad(base(uplinks={"cell": 5})) == "uplinks.cell: must be a table"
    assert bad([]) == "config: must be a table"


def test_wrong_types_are_refused_by_name():
    assert bad(base(port="6278")) == "port: must be an integer from 1 to 65535"
    assert bad(base(port=6278.0)) == "port: must be an integer from 1 to 65535"
    assert bad(base(name=5)).startswith("name: must be 1 to 63 characters")
    assert bad(base(keying=None)) == "keying: must be one of psk, open"
    assert bad(with_peer(initiate="yes")) == "peers.srv.initiate: must be true or false"
    assert bad(with_peer(addresses="192.0.2.1")).startswith(
        "peers.srv.addresses: must be a list")
    assert bad(with_peer(allowed=[10])).startswith("peers.srv.allowed: bad item 10")


def test_bool_is_not_an_int_and_int_is_not_a_bool():
    assert bad(base(port=True)) == "port: must be an integer from 1 to 65535"
    assert bad(with_uplink(cost=False)) == (
        "uplinks.cell.cost: must be an integer from 0 to 255")
    assert bad(with_peer(initiate=1)) == "peers.srv.initiate: must be true or false"
    assert bad(with_peer(initiate=0)) == "peers.srv.initiate: must be true or false"


def test_out_of_range_numbers_are_refused_with_the_range():
    assert bad(with_uplink(cost=256)) == (
        "uplinks.cell.cost: must be an integer from 0 to 255")
    assert bad(with_uplink(priority=-1)) == (
        "uplinks.cell.priority: must be an integer from 0 to 255")
    assert bad(base(port=0)) == "port: must be an integer from 1 to 65535"
    assert bad(base(outage_s=9)) == "outage_s: must be an integer from 10 to 86400"
    assert bad(base(resend_ms=5001)) == "resend_ms: must be an integer from 0 to 5000"
    assert bad(base(nat_refresh_s=3601)).startswith("nat_refresh_s: ")
    assert bad(with_peer(app_port=65536)).startswith("peers.srv.app_port: ")


def test_replay_window_must_be_a_multiple_of_64():
    want = "replay_window: must be a multiple of 64 from 64 to 65536"
    assert bad(base(replay_window=1000)) == want
    assert bad(base(replay_window=0)) == want
    assert bad(base(replay_window=65536 + 64)) == want
    assert config.validate(base(replay_window=65536))["replay_window"] == 65536


def test_bad_enum_values_list_the_choices():
    assert bad(base(mode="fast")) == "mode: must be one of failover, redundant"
    assert bad(base(profile="slow")) == "profile: must be one of default, fast"
    assert bad(with_uplink(kind="wifi")) == (
        "uplinks.cell.kind: must be one of sim, wlan, lan, ppp, linux")


def test_bad_names_are_refused():
    assert bad(base(name="")).startswith("name: must be 1 to 63 characters")
    assert bad(base(name="a" * 64)).startswith("name: ")
    assert bad(base(name="under_score")) == (
        "name: must be 1 to 63 characters of A-Za-z0-9.-")
    assert bad(base(peers={"my srv": {"psk": PSK}})) == (
        "peers.my srv: name must be 1 to 63 characters of A-Za-z0-9.-")
    assert bad(base(uplinks={"u" * 32: {}})) == (
        "uplinks.%s: name must be 1 to 31 characters of A-Za-z0-9_.-" % ("u" * 32))
    assert config.validate(base(uplinks={"wan_2.lte-b": {}}))["uplinks"]
    assert bad(with_uplink(device="")) == (
        "uplinks.cell.device: must be 1 to 15 characters of A-Za-z0-9_.-")
    assert bad(with_peer(dns="bad name")).startswith("peers.srv.dns: ")


def test_bad_psks_are_refused_without_echoing_them():
    for text in (PSK_31, PSK + "AAAA", PSK[:-1], "not base64 at all!!",
                 PSK.replace("AAEC", "-_EC"), " " + PSK, ""):
        msg = bad(with_peer(psk=text))
        assert msg == "peers.srv.psk: must be standard base64 of exactly 32 bytes"
        assert text not in msg or text == ""


def test_with_psk_keying_every_peer_needs_a_psk():
    cfg = base(peers={"srv": {"psk": PSK}, "other": {"addresses": ["192.0.2.9"]}})
    assert bad(cfg) == "peers.other.psk: required when keying is psk"
    assert bad(base(peers={"srv": {}})) == "peers.srv.psk: required when keying is psk"


def test_good_addresses_are_accepted():
    addrs = ["192.0.2.1", "192.0.2.1:6278", "2001:db8::1", "[2001:db8::1]:1",
             "::1", "[::ffff:192.0.2.1]:65535", "FE80::A"]
    assert config.validate(with_peer(addresses=addrs))["peers"]["srv"]["addresses"] == addrs
    peer = config.validate(with_peer(internal="10.99.0.2"))["peers"]["srv"]
    assert peer["internal"] == "10.99.0.2"


def test_bad_addresses_are_refused_by_name():
    for a in ("192.0.2", "192.0.2.256", "1.2.3.4.5", "1..2.3", "192.0.2.1:0",
              "192.0.2.1:65536", "192.0.2.1:", "192.0.2.1:x", "[2001:db8::1",
              "[2001:db8::1]x", "[192.0.2.1]:1", "2001:db8:::1", "1::2::3",
              "2001:db8::g", "host.example", "", "[]:1", "010.0.0.1",
              "192.0.2.1:+80", "192.0.2.1: 80", " 192.0.2.1"):
        msg = bad(with_peer(addresses=["192.0.2.7", a]))
        assert msg.startswith("peers.srv.addresses: bad item %r: must be an IP address" % a), msg
    # internal and bind addresses take no port
    assert bad(with_peer(internal="10.0.0.1:5")) == (
        "peers.srv.internal: must be an IP address (no port)")
    assert bad(with_uplink(address="[2001:db8::1]:5")).startswith("uplinks.cell.address: ")
    assert bad(with_uplink(address=["192.0.2.1"])).startswith("uplinks.cell.address: ")


def test_allowed_prefixes_must_be_cidr_with_a_valid_length():
    good = ["10.0.0.0/8", "0.0.0.0/0", "192.0.2.1/32", "2001:db8::/32", "::/0",
            "::1/128"]
    assert config.validate(with_peer(allowed=good))["peers"]["srv"]["allowed"] == good
    for p in ("10.0.0.0", "10.0.0.0/33", "10.0.0.0/", "10.0.0.0/x", "10.0/8",
              "2001:db8::/129", "x/8", "10.0.0.0/8/8", "/8"):
        assert bad(with_peer(allowed=[p])).startswith(
            "peers.srv.allowed: bad item %r: must be an IPv4 or IPv6 prefix" % p)


def test_parse_addr_splits_host_and_port_and_refuses_garbage():
    assert config.parse_addr("192.0.2.1", 6278) == ("192.0.2.1", 6278)
    assert config.parse_addr("192.0.2.1:7000", 6278) == ("192.0.2.1", 7000)
    assert config.parse_addr("2001:db8::1", 6278) == ("2001:db8::1", 6278)
    assert config.parse_addr("[2001:db8::1]:7000", 1) == ("2001:db8::1", 7000)
    assert config.parse_addr("[2001:db8::1]", None) == ("2001:db8::1", None)
    # (a DNS name is no address: names are the schema's dns, test_config_names.py)
    for text in ("srv.example", "srv.example:7000", "192.0.2", "[2001:db8::1]:0", "a:b:c", "-"):
        try:
            config.parse_addr(text, 6278)
        except ValueError:
            continue
        assert False, "parse_addr accepted %r" % text


def test_decode_psk_returns_32_bytes_and_never_echoes_the_text():
    assert config.decode_psk(PSK) == bytes(range(32))
    for text in (PSK_31, "x" * 44, PSK + "\n"):
        try:
            config.decode_psk(text)
        except ValueError as e:
            assert text not in str(e)
            continue
        assert False, "decode_psk accepted a bad key"


def test_set_key_sets_typed_values_and_leaves_the_input_alone():
    cfg = config.validate(base())
    new = config.set_key(cfg, "uplinks.cell.cost", 5)
    assert config.get(new, "uplinks.cell.cost") == 5
    assert "uplinks" not in cfg or "cell" not in cfg["uplinks"]
    new = config.set_key(new, "peers.srv.initiate", False)
    assert new["peers"]["srv"]["initiate"] is False
    assert cfg["peers"]["srv"]["initiate"] is True
    addrs = ("192.0.2.1", "[2001:db8::1]:7000")  # a tuple is stored as a list
    new = config.set_key(new, "peers.srv.addresses", addrs)
    assert new["peers"]["srv"]["addresses"] == ["192.0.2.1", "[2001:db8::1]:7000"]
    new = config.set_key(new, "port", 7000)
    assert new["port"] == 7000 and cfg["port"] == 6278
    assert config.validate(new)["uplinks"]["cell"] == {
        "cost": 5, "priority": 100, "kind": "linux"}


def test_set_key_refuses_bad_values_naming_the_key():
    cfg = config.validate(base())
    e = error(config.set_key, cfg, "uplinks.cell.cost", 300)
    assert e.key == "uplinks.cell.cost"
    assert str(e) == "uplinks.cell.cost: must be an integer from 0 to 255"
    assert str(error(config.set_key, cfg, "port", True)).startswith("port: ")
    assert str(error(config.set_key, cfg, "peers.srv.initiate", "maybe")) == (
        "peers.srv.initiate: must be true or false")
    assert str(error(config.set_key, cfg, "peers.srv.addresses", "192.0.2.1")).startswith(
        "peers.srv.addresses: must be a list")
    assert str(error(config.set_key, cfg, "colour", "red")) == "colour: unknown key"
    assert str(error(config.set_key, cfg, "peers.srv.pks", PSK)) == (
        "peers.srv.pks: unknown key")
    assert str(error(config.set_key, cfg, "peers.srv", {})) == "peers.srv: not a setting"
    assert error(config.set_key, cfg, "uplinks.bad name.cost", 1).key == (
        "uplinks.bad name")
    assert cfg == config.validate(base())


def test_set_key_takes_typed_values_only_text_is_parsed_on_the_host():
    cfg = config.validate(base())
    assert str(error(config.set_key, cfg, "uplinks.cell.cost", "5")) == (
        "uplinks.cell.cost: must be an integer from 0 to 255")
    assert str(error(config.set_key, cfg, "peers.srv.initiate", "false")) == (
        "peers.srv.initiate: must be true or false")


def test_key_type_names_the_schema_type_of_a_setting():
    assert config.key_type("port") == "int"
    assert config.key_type("peers.srv.example.com.initiate") == "bool"
    assert config.key_type("peers.srv.addresses") == "addrs"
    assert config.key_type("uplinks.cell.kind") == "enum"
    for key in ("peers", "peers.srv", "colour", "port.x", ""):
        assert config.key_type(key) is None, key


def test_set_key_refuses_a_bad_psk_without_echoing_it():
    e = error(config.set_key, {}, "peers.srv.psk", PSK_31)
    assert str(e) == "peers.srv.psk: must be standard base64 of exactly 32 bytes"
    assert PSK_31 not in str(e) and PSK_31 not in repr(e)


def test_unset_key_and_get_round_trip():
    cfg = config.validate(base(port=7000))
    new = config.unset_key(cfg, "port")
    assert "port" not in new and cfg["port"] == 7000
    assert config.validate(new)["port"] == 6278
    assert config.get(config.set_key(new, "port", 7000), "port") == 7000
    gone = config.unset_key(cfg, "peers.srv")
    assert config.get(gone, "peers") == {} and "srv" in cfg["peers"]


def test_get_returns_sections_and_names_a_missing_key():
    cfg = config.validate(base(uplinks={"cell": {"cost": 3}}))
    assert config.get(cfg, "uplinks") == {"cell": {"cost": 3, "priority": 100,
                                                   "kind": "linux"}}
    assert config.get(cfg, "uplinks.cell")["cost"] == 3
    section = config.get(cfg, "uplinks.cell")
    section["cost"] = 9
    assert cfg["uplinks"]["cell"]["cost"] == 3
    for key in ("uplinks.wan", "uplinks.cell.device", "colour", "port.x"):
        try:
            config.get(cfg, key)
        except KeyError as e:
            assert key in str(e)
            continue
        assert False, "get found %r" % key
    try:
        config.unset_key(cfg, "peers.srv.dns")
    except KeyError:
        return
    assert False, "unset_key removed a missing key"


def test_peer_names_with_dots_work_as_dotted_keys():
    cfg = config.set_key({"name": "h"}, "peers.srv.example.com.psk", PSK)
    assert cfg == {"name": "h", "peers": {"srv.example.com": {"psk": PSK}}}
    cfg = config.set_key(cfg, "peers.srv.example.com.port", 7000)
    assert config.get(cfg, "peers.srv.example.com.port") == 7000
    assert config.get(cfg, "peers.srv.example.com")["port"] == 7000
    assert config.validate(cfg)["peers"]["srv.example.com"]["initiate"] is True
    assert config.is_secret("peers.srv.example.com.psk")
    assert "srv.example.com" not in config.unset_key(cfg, "peers.srv.example.com")["peers"]


def test_only_psk_keys_are_secret():
    assert config.is_secret("peers.srv.psk")
    assert not config.is_secret("peers.srv.port")
    assert not config.is_secret("name")
    assert not config.is_secret("peers")
    assert not config.is_secret("colour")


def test_ipv6_text_gets_a_light_check():
    for a in ("::", "::1", "1::", "2001:db8:0:0:0:0:0:1", "::ffff:192.0.2.1",
              "1:2:3:4:5:6:192.0.2.1", "1:2:3:4:5:6:7::"):
        assert config.parse_addr(a, 0) == (a, 0), a
    for a in ("a:b:c", "1:2:3:4:5:6:7", "1:2:3:4:5:6:7:8:9", "12345::1",
              "::1.2.3", "::1.2.3.4.5", ":1", "1:2:3:4:5:6:7:", "1:::2", "::g", "1::2::3"):
        try:
            config.parse_addr(a, 0)
        except ValueError:
            continue
        assert False, "accepted %r" % a


def test_board_uplink_credentials_are_checked_and_never_shown():
    cfg = config.validate(with_uplink(kind="wlan", ssid="My Home WiFi", password="correct horse"))
    assert cfg["uplinks"]["cell"]["ssid"] == "My Home WiFi"
    assert config.is_secret("uplinks.cell.sim_pin") and config.is_secret("uplinks.cell.password")
    assert bad(with_uplink(password="short")) == (
        "uplinks.cell.password: must be 8 to 63 printable ASCII characters")
    assert "short" not in bad(with_uplink(password="short"))
    assert bad(with_uplink(ssid="")) == "uplinks.cell.ssid: must be 1 to 32 bytes of UTF-8 text (no control characters)"
    assert bad(with_uplink(ssid="tab\there")).startswith("uplinks.cell.ssid: ")
    assert bad(with_uplink(sim_pin="12a4")) == "uplinks.cell.sim_pin: must be 4 to 8 digits"
    # the longest of each is taken, one character more is refused (by name, never shown)
    assert config.validate(with_uplink(ssid="s" * 32, password="p" * 63, sim_pin="12345678"))
    assert bad(with_uplink(ssid="s" * 33)) == "uplinks.cell.ssid: must be 1 to 32 bytes of UTF-8 text (no control characters)"
    assert bad(with_uplink(password="p" * 64)) == (
        "uplinks.cell.password: must be 8 to 63 printable ASCII characters")
    assert bad(with_uplink(sim_pin="123456789")) == "uplinks.cell.sim_pin: must be 4 to 8 digits"
    assert config.validate(with_uplink(kind="ppp", apn="internet.example", sim_pin="1234"))
