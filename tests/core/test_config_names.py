# Names and text the schema takes or refuses: an SSID is 1 to 32 bytes of UTF-8 (IEEE
# 802.11), a peer's dns a DNS name that no resolver reads as an address, a fleet_domain one
# that a member's name (<board>.<fleet_domain>, at most 63 characters) can end with. One rule
# for a whole configuration (validate), one key (set_key: the board's console) and one peer
# (validate_peer: mastd's set_peer). (A module of its own: test_config is near a board's heap.)
from mast import config
from mast.config import ConfigError
from mast.peercfg import validate_peer

PSK = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
SSID_WANT = "must be 1 to 32 bytes of UTF-8 text (no control characters)"
DNS_WANT = ("must be 1 to 253 characters of A-Za-z0-9.-, labels of 1 to 63 between dots, "
            "the last starting with a letter")
FLEET_WANT = ("must be 1 to 61 characters of A-Za-z0-9.-, labels of 1 to 63 between dots, "
              "the last starting with a letter, no dot at the end")


def base(**top):
    cfg = {"name": "board1.example", "peers": {"srv": {"psk": PSK}}}
    cfg.update(top)
    return cfg


def refusal(fn, *args):
    try:
        fn(*args)
    except ConfigError as e:
        return str(e)
    assert False, "no ConfigError from %r" % (args,)


def test_an_ssid_is_1_to_32_bytes_of_utf8_text():
    for ssid in ("Caf\u00e9", "\u5bb6", "caf\u00e9 \U0001F600", "\u00e9" * 16, "My Home WiFi", "s" * 32):
        cfg = config.validate(base(uplinks={"w": {"kind": "wlan", "ssid": ssid}}))
        assert cfg["uplinks"]["w"]["ssid"] == ssid
        assert config.set_key({}, "uplinks.w.ssid", ssid) == {"uplinks": {"w": {"ssid": ssid}}}
    # 33 bytes: 17 characters of 2 bytes less one, 11 of 3, 32 ASCII and one of 2
    for ssid in ("\u00e9" * 16 + "a", "\u5bb6" * 11, "s" * 31 + "\u00e9", ""):
        assert refusal(config.validate, base(uplinks={"w": {"ssid": ssid}})) == (
            "uplinks.w.ssid: " + SSID_WANT)
        assert refusal(config.set_key, {}, "uplinks.w.ssid", ssid) == "uplinks.w.ssid: " + SSID_WANT


def test_an_ssid_with_a_control_character_is_refused():
    # a newline breaks the console's lines; ESC and C1's CSI (U+009B) drive a terminal
    for ssid in ("a\nb", "tab\there", "\x1b[2J", "del\x7f", "csi\u009b2J", "\u0085"):
        assert refusal(config.set_key, {}, "uplinks.w.ssid", ssid) == "uplinks.w.ssid: " + SSID_WANT
    assert config.set_key({}, "uplinks.w.ssid", "nbsp\u00a0")  # the first after C1: printable


def test_a_peers_dns_is_a_dns_name_that_reads_as_no_address():
    good = ("hub.example", "hub.example.", "localhost", "a" * 63 + ".example",
            "xn--caf-dma.example", "a-b.c-d.example", ".".join(["a" * 63] * 3) + "." + "b" * 61)
    for name in good:
        cfg = config.validate(base(peers={"srv": {"psk": PSK, "dns": name}}))
        assert cfg["peers"]["srv"]["dns"] == name
    # 1.2.3 is 1.2.0.3 to getaddrinfo, 0x7f 0.0.0.127: the last label starts with a letter
    for name in ("1.2.3", "0x7f", "1.0x7f", "example.123", "a..b", ".a.example", "a.example..",
                 "a" * 64 + ".example", "a.example.-", "a" * 254, "hub_1.example", "h\u00fcb.example"):
        assert refusal(config.validate, base(peers={"srv": {"psk": PSK, "dns": name}})) == (
            "peers.srv.dns: " + DNS_WANT), name
        assert refusal(config.set_key, {}, "peers.srv.dns", name) == "peers.srv.dns: " + DNS_WANT
        assert refusal(validate_peer, config.validate(base()), "hub", {"psk": PSK, "dns": name}) == (
            "peers.hub.dns: " + DNS_WANT)


def test_a_dns_name_is_at_most_253_characters():
    name = ("a" * 63 + ".") * 3 + "b" * 61  # 253
    assert config.set_key({}, "peers.p.dns", name) == {"peers": {"p": {"dns": name}}}
    for bad in (name + "b", name + "."):  # (254, with the dot too: as before)
        assert refusal(config.set_key, {}, "peers.p.dns", bad) == "peers.p.dns: " + DNS_WANT


def test_a_fleet_domain_a_members_name_cannot_end_with_is_refused():
    d61 = "b" * 20 + "." + "c" * 40
    assert config.validate(base(fleet_domain=d61))["fleet_domain"] == d61
    assert config.validate(base(fleet_domain="boards.example"))["fleet_domain"] == "boards.example"
    # x.<62 characters> is 64, over a name's 63; a trailing dot: no member's name ends so
    for d in ("b" + d61, "boards.example.", "1.2.3", "a..b"):
        assert refusal(config.validate, base(fleet_domain=d)) == "fleet_domain: " + FLEET_WANT
        assert refusal(config.set_key, {}, "fleet_domain", d) == "fleet_domain: " + FLEET_WANT


def test_a_key_with_a_space_is_unknown_not_the_setting_its_first_word_names():
    # "port int" was found as the first words of the schema's line "port int 6278 1 65535":
    # taken, and the port stayed 6278; "peers.x.psk psk" was a psk
    e = refusal(config.validate, base(keying="open", peers={}, **{"port int": 7000}))
    assert e == "port int: unknown key"
    assert refusal(config.set_key, {}, "peers.p.port int", 7) == "peers.p.port int: unknown key"
    assert config.key_type("peers.x.psk psk") is None and not config.is_secret("uplinks.w.sim_pin secret")
    assert config.key_type("peers.x.psk") == "psk"


def test_a_wifi_password_stays_printable_ascii_and_a_pin_digits():
    # (the SSID's rule and the password's share their code: a WPA2 passphrase is 8 to 63
    # characters of ASCII 32 to 126)
    want = "uplinks.w.password: must be 8 to 63 printable ASCII characters"
    for pw in ("p\u00e4sswort", "password\n", "password\x7f", "\u5bb6" * 8):
        assert refusal(config.set_key, {}, "uplinks.w.password", pw) == want
    assert config.set_key({}, "uplinks.w.password", " ~" * 4)["uplinks"]["w"]["password"] == " ~" * 4
    assert refusal(config.set_key, {}, "uplinks.w.sim_pin", "12\u00e934") == "uplinks.w.sim_pin: must be 4 to 8 digits"
