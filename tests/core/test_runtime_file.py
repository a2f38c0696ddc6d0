# The endpoint file (runtime/runconfig.py): defaults, and refusals that name the key; and the
# test stream's payload. Plain functions with asserts: they run on CPython and on MicroPython.

from runtime import runconfig, stream
from runtime.runconfig import FileError

PSK = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="


def doc(**top):
    d = {"mast": {"name": "board", "peers": {"host": {"psk": PSK, "addresses": ["127.0.0.10:6278"]}}},
         "uplinks": {"eth": {"bind": "127.0.0.1:6278"}}}
    d.update(top)
    return d


def refused(d):
    try:
        runconfig.check(d)
    except FileError as e:
        assert str(e).startswith(e.key + ": ")
        return str(e)
    assert False, "no FileError"


def test_a_minimal_file_gets_defaults():
    c = runconfig.check(doc())
    assert c["uplinks"]["eth"] == {"bind": ("127.0.0.1", 6278), "via": None, "public": None,
                                   "priority": None, "cost": None, "device": None}
    assert c["connect"] == [] and c["stream"] is None
    assert c["mast"]["port"] == 6278  # the core's schema filled in its defaults


def test_via_public_connect_and_stream_are_kept():
    c = runconfig.check(doc(
        uplinks={"cell": {"bind": "127.0.0.1:0", "via": "127.0.0.1:40001",
                          "public": "127.0.0.4:6278", "priority": 30, "cost": 10}},
        connect=["host"], stream={"peer": "host", "rate": 20}))
    u = c["uplinks"]["cell"]
    assert u["via"] == ("127.0.0.1", 40001) and u["public"] == ("127.0.0.4", 6278)
    assert (u["priority"], u["cost"]) == (30, 10)
    assert c["connect"] == ["host"]
    assert c["stream"] == {"peer": "host", "rate": 20, "size": 64, "count": 0}


def test_bind_defaults_to_the_cores_uplink_address_and_port():
    d = doc(uplinks={"wan": {}})
    d["mast"]["uplinks"] = {"wan": {"address": "127.0.0.9", "device": "lo"}}
    u = runconfig.check(d)["uplinks"]["wan"]
    assert u["bind"] == ("127.0.0.9", 6278) and u["device"] == "lo"
    # the core's schema takes an IPv6 address in brackets, and any spelling: the socket's bind
    # got "[2001:DB8::9]" as written (not an address to bind(): the uplink never came up)
    d["mast"]["uplinks"]["wan"]["address"] = "[2001:DB8::9]"
    assert runconfig.check(d)["uplinks"]["wan"]["bind"] == ("2001:db8::9", 6278)


def test_core_config_errors_name_the_key_under_mast():
    d = doc()
    d["mast"]["peers"]["host"]["psk"] = "short"
    assert refused(d).startswith("mast.peers.host.psk: must be standard base64")
    assert refused({"uplinks": {}}).startswith("mast: required")


def test_a_peer_address_that_is_a_group_or_the_broadcast_address_is_refused():
    # (a peer is one host: INITs sent there go to a group or fail, and no answer comes back)
    for a, what in (("224.0.0.251:6278", "a multicast address"), ("255.255.255.255", "the broadcast address"),
                    ("[ff02::1]:6278", "a multicast address")):
        d = doc()
        d["mast"]["peers"]["host"]["addresses"] = ["127.0.0.10:6278", a]
        assert refused(d) == ("mast.peers.host.addresses: bad item %r: %s is not a peer's; give the "
                              "peer's own (unicast) address" % (a, what)), refused(d)


def test_public_of_another_family_than_bind_is_refused_unless_a_relay_carries_it():
    # taken before: the core judged sources by public's family and the socket's were the other
    # one, so every packet was dropped (wrong_family) and the uplink carried nothing, silently
    for bind, public in (("[::]:6278", "192.0.2.1:6278"), ("0.0.0.0:6278", "[2001:db8::1]:6278"),
                         ("127.0.0.1:1", "[::ffff:127.0.0.1]:1")):
        assert refused(doc(uplinks={"eth": {"bind": bind, "public": public}})) == (
            "uplinks.eth.public: must be of the same address family as bind")
    u = runconfig.check(doc(uplinks={"eth": {"bind": "[::]:6278", "public": "[2001:DB8::1]:6278"}}))
    assert u["uplinks"]["eth"]["public"] == ("2001:db8::1", 6278)
    # through a relay, public is the relay's outside address: either family
    u = runconfig.check(doc(uplinks={"eth": {"bind": "127.0.0.1:0", "via": "127.0.0.1:40001",
                                             "public": "[2001:db8::4]:6278"}}))
    assert u["uplinks"]["eth"]["public"] == ("2001:db8::4", 6278)


def test_a_link_local_bind_needs_its_interface_as_device_and_a_zone_says_so():
    # "[fe80::2%eth0]:6278" was refused as "not a numeric IPv4 or IPv6 address", and
    # "[fe80::2]:6278" without device failed at bind() with EINVAL: neither named device
    e = refused(doc(uplinks={"ll": {"bind": "[fe80::2%eth0]:6278"}}))
    assert e.startswith("uplinks.ll.bind: ") and e.endswith(
        "an IPv6 zone (%...) is not taken; write the address without it and give its interface "
        "as device"), e
    for b in ("[fe80::2]:6278", "[FEBF::2]:6278"):
        assert refused(doc(uplinks={"ll": {"bind": b}})) == (
            "uplinks.ll.device: required with a link-local bind address (%s): the interface it is "
            "on" % b[1:-6].lower())
    u = runconfig.check(doc(uplinks={"ll": {"bind": "[fe80::2]:6278", "device": "eth0"}}))["uplinks"]["ll"]
    assert (u["bind"], u["device"]) == (("fe80::2", 6278), "eth0")
    assert runconfig.check(doc(uplinks={"ll": {"bind": "[fec0::2]:6278"}}))  # (not fe80::/10)


def test_unknown_keys_are_refused_with_their_name():
    assert refused(doc(extra=1)).startswith("extra: unknown key")
    assert refused(doc(uplinks={"eth": {"bind": "127.0.0.1:1", "delay": 2}})).startswith(
        "uplinks.eth.delay: unknown key")
    assert refused(doc(stream={"peer": "host", "speed": 1})).startswith("stream.speed: unknown key")


def test_bad_uplinks_name_the_key():
    assert refused(doc(uplinks={})).startswith("uplinks: must be an object with at least one")
    assert refused(doc(uplinks={"eth": {}})).startswith("uplinks.eth.bind: required")
    assert refused(doc(uplinks={"eth": {"bind": "localhost:1"}})).startswith("uplinks.eth.bind: ")
    assert refused(doc(uplinks={"eth": {"bind": "0.0.0.0:6278"}})).startswith(
        "uplinks.eth.bind: 0.0.0.0 is a wildcard")
    assert refused(doc(uplinks={"eth": {"bind": "127.0.0.1:1", "via": "127.0.0.1:2"}})).startswith(
        "uplinks.eth.public: required with via")
    assert refused(doc(uplinks={"eth": {"bind": "127.0.0.1:1", "via": "[::1]:2",
                                        "public": "127.0.0.2:1"}})).startswith("uplinks.eth.via: ")
    assert refused(doc(uplinks={"eth": {"bind": "127.0.0.1:1", "priority": 256}})).startswith(
        "uplinks.eth.priority: must be an integer from 0 to 255")
    assert refused(doc(uplinks={"eth": {"bind": "127.0.0.1:1", "device": "a/b"}})).startswith(
        "uplinks.eth.device: ")
    # (a name with a character no key has is not repeated: it may be a secret, test_runtime_file_text.py)
    assert refused(doc(uplinks={"e th": {"bind": "127.0.0.1:1"}})).startswith(
        "uplinks.(not repeated: it may be a secret): name")
    assert refused(doc(uplinks={"e" * 32: {"bind": "127.0.0.1:1"}})).startswith("uplinks.%s: name" % ("e" * 32))
    assert refused(doc(uplinks={"u" * 32: {"bind": "127.0.0.1:1"}})).startswith("uplinks.uuu")
    assert runconfig.check(doc(uplinks={"u" * 31: {"bind": "127.0.0.1:1"}}))
    assert refused(doc(uplinks={"eth": {"bind": "[::]:6278"}})).startswith("uplinks.eth.bind: :: is a wildcard")
    assert refused(doc(uplinks={"eth": {"bind": "127.0.0.1:1", "public": "127.0.0.2:0"}})).startswith(
        "uplinks.eth.public: port")
    # an interface name is at most 15 characters (IFNAMSIZ 16, with its NUL)
    assert refused(doc(uplinks={"eth": {"bind": "127.0.0.1:1", "device": "d" * 16}})).startswith(
        "uplinks.eth.device: ")
    assert runconfig.check(doc(uplinks={"eth": {"bind": "127.0.0.1:1", "device": "d" * 15}}))
    assert refused(doc(uplinks={"eth": {"bind": "127.0.0.1:1", "via": "127.0.0.1:0",
                                        "public": "127.0.0.2:1"}})).startswith("uplinks.eth.via: port")


def test_connect_and_stream_must_name_known_peers():
    assert refused(doc(connect=["nobody"])).startswith("connect[0]: unknown peer 'nobody'")
    assert refused(doc(connect="host")).startswith("connect: must be a list")
    d = doc(connect=["host"])
    d["mast"]["peers"]["host"]["addresses"] = []
    assert refused(d).startswith("connect[0]: peer host has no address")
    assert refused(doc(stream={"peer": "x"})).startswith("stream.peer: ")
    assert refused(doc(stream={"peer": "host", "rate": -1})).startswith("stream.rate: ")
    assert refused(doc(stream={"peer": "host", "size": 12})).startswith("stream.size: ")
    assert refused(doc(stream={"peer": "host", "count": -1})).startswith("stream.count: ")
    assert refused(doc(stream={"peer": "host", "count": "all"})).startswith("stream.count: ")
    assert refused(doc(stream_records="yes")).startswith("stream_records: must be true or false")
    assert refused(doc(stream={"peer": "host", "size": 1201})).startswith("stream.size: ")
    assert refused(doc(rcvbuf=(1 << 26) + 1)).startswith("rcvbuf: must be an integer from 0 to")


def test_stream_payload_carries_seq_and_send_time():
    p = stream.encode(7, 123456789, 64)
    assert len(p) == 64 and p[:1] == b"S"
    assert stream.decode(p) == (7, 123456789)
    assert stream.decode(b"hello, world!") is None
    assert stream.decode(b"S123") is None
    assert stream.decode(p[:12]) is None  # one byte short of its seq and time


class _Rt:
    """What a Stream needs of a Runtime: send(), which takes the datagram or refuses it."""

    def __init__(self, takes=True):
        self.takes = takes
        self.seqs = []

    def send(self, payload, peer):
        self.seqs.append(stream.decode(payload)[0])
        return self.takes


def test_a_stream_that_fell_behind_sends_a_few_then_skips_instead_of_bursting():
    rt = _Rt()
    s = stream.Stream(rt, "host", rate=50)  # one every 20 ms
    s.start(1000)
    s.tick(1000)
    assert rt.seqs == [0]
    s.tick(11000)  # a stall of 10 s: 500 were due
    assert rt.seqs == [0, 1, 2, 3, 4]  # at most 4 in one tick
    s.tick(11000)
    assert len(rt.seqs) == 5 and s.wait_ms(11000) == 20  # the rest skipped, not sent in a burst
    assert s.wait_ms(11500) == 0  # overdue: no wait (never a negative one: poll(-1) never wakes)
    s.tick(11020)
    assert rt.seqs == [0, 1, 2, 3, 4, 5]


def test_a_stream_counts_what_the_core_refused_and_stops_after_its_count():
    rt = _Rt(takes=False)
    s = stream.Stream(rt, "host", rate=1000, count=3)
    s.start(0)
    for t in range(10):
        s.tick(t)
    assert rt.seqs == [0, 1, 2]
    st = s.status()
    assert (st["seq"], st["sent"], st["refused"], st["running"]) == (3, 0, 3, False)
