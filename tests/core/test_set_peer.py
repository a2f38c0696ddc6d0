# One peer added or changed without a full reconfigure (Endpoint.set_peer: a fleet of
# thousands, `mast endpoint`'s peer op): its section is checked and filled as a listed peer's,
# and an association keyed from an old key does not outlive the key.

from simnet import Net, config, up1, PSK
from mast import config as schema

SRV = ("10.9.0.1", 6278)
NEW_PSK = "ZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXp7fH1+f4CBgoM="


def test_a_peer_added_by_set_peer_has_the_defaults_of_a_listed_one_and_can_be_called():
    # set_peer fills a peer's section as the configuration's check does (its port, initiate,
    # allowed): a server given a board by set_peer can open an association to it (the defaults
    # went under "*.port" and the like, and connect raised KeyError 'port')
    listed = schema.validate(config("srv", {"b": {"addresses": ["10.1.0.2"]}}))["peers"]["b"]
    net = Net()
    net.node("srv", config("srv", []))
    net.uplink("srv", "wan", SRV)
    net.node("b", config("b", ["srv"]))
    net.uplink("b", "eth", ("10.1.0.2", 6278))
    srv = net.nodes["srv"].ep
    srv.set_peer("b", {"psk": PSK, "addresses": ["10.1.0.2"]}, net.now)
    assert srv.cfg["peers"]["b"] == listed, srv.cfg["peers"]["b"]
    srv.connect("b", net.now)
    net.flush()
    net.run(net.now + 3000)
    assert srv.association("b").state == 2 and net.nodes["b"].ep.association("srv").state == 2


def test_set_peer_with_a_new_key_closes_the_association_keyed_from_the_old_one():
    # the server changes one board's key (set_peer, no full reconfigure): the association keyed
    # from the old key is closed ("reconfigured") so that an INIT under the new key can start;
    # the same key again keeps it
    net, a, b = up1()
    srv = net.nodes["b"].ep
    srv.set_peer("a", {"psk": PSK}, net.now)
    net.flush()
    assert srv.association("a") is b and b.state == 2
    assert net.events("b", "association_closed") == []
    srv.set_peer("a", {"psk": NEW_PSK}, net.now)
    net.flush()
    assert [e.reason for e in net.events("b", "association_closed")] == ["reconfigured"]
    assert srv.association("a") is None and srv.cfg["peers"]["a"]["psk"] == NEW_PSK


def test_set_peer_without_a_psk_under_psk_keying_is_refused_and_changes_nothing():
    # a peer with no key cannot be keyed: the board's or the server's endpoint must refuse it
    # (as validate does for a listed one), not take it and fail when it is called
    net, a, b = up1()
    srv = net.nodes["b"].ep
    before = schema.get(srv.cfg, "peers")
    try:
        srv.set_peer("c", {"addresses": ["10.1.0.9"]}, net.now)
        err = None
    except schema.ConfigError as e:
        err = str(e)
    assert err == "peers.c.psk: required when keying is psk", err
    assert schema.get(srv.cfg, "peers") == before and srv.association("a") is b
    for bad in (5, "psk", [PSK]):  # a section that is not a table: the same kind of error
        try:
            srv.set_peer("c", bad, net.now)
            err = None
        except schema.ConfigError as e:
            err = str(e)
        assert err == "peers.c: must be a table", (bad, err)
    assert schema.get(srv.cfg, "peers") == before
