"""What each configuration key means, for `mast config --help`, docs/CONFIG.md and
the router's UCI comments. The schema itself (types, defaults, limits) lives in
the core, firmware/mast/config.py; this is only its prose, kept off the boards."""

HELP = {
    "name": "this host's name (a domain name); the peer looks its key up by it",
    "port": "UDP port MAST listens on",
    "keying": "psk: a pre-shared key per peer (default); open: the draft's nonce-only "
              "self-authentication, which stops off-path attackers only",
    "profile": "timer profile: default (failover gap <= 800 ms) or fast (<= 150 ms)",
    "mode": "failover: data on the primary path; redundant: each datagram on the two best paths",
    "replay_window": "replay window in packets (a multiple of 64); must cover the DATA re-sent at failover",
    "resend_ms": "at failover, re-send on the new path the DATA sent within this many ms; 0 = off",
    "outage_s": "how long an association outlives its last usable path",
    "nat_refresh_s": "a path behind NAT is refreshed at least this often, idle or not",
    "fleet_domain": "a server for a fleet: accept any peer named <board>.<fleet_domain> without "
                    "listing it (with keying psk, fleet_psk must be set too); at most 61 "
                    "characters, as a member's name is at most 63",
    "fleet_psk": "the fleet's key: a member's PSK is HKDF(fleet_psk, \"mast1 fleet \" + its name) "
                 "(`mast genkey --fleet`); never shown",
    "enabled": "mastd only: false keeps the service from starting (OpenWrt init script); default true",
    "internal": "mastd only: this host's internal (tunnel) address with the tunnel's prefix length, "
                "e.g. 10.99.0.2/24; none: no TUN, application datagrams only",
    "tun": "mastd only: name of the TUN interface; default mast0",
    "masquerade": "mastd only: concentrator: NAT the tunnel's traffic out of this host's own "
                  "uplinks (full-tunnel egress); default false",
    "peers.*.addresses": "the peer's addresses: 192.0.2.1, 192.0.2.1:6278 or [2001:db8::1]:6278 "
                         "(its own: a multicast group, 255.255.255.255, 0.0.0.0 or :: is refused; "
                         "IPv4 as IPv4, not ::ffff:a.b.c.d)",
    "peers.*.dns": "a DNS name whose A/AAAA records give the peer's addresses (an IP address "
                   "goes in addresses)",
    "peers.*.psk": "pre-shared key: standard base64 of 32 random bytes (`mast genkey`); never shown",
    "peers.*.port": "the peer's UDP port, where an address gives none",
    "peers.*.initiate": "start the association to this peer (otherwise wait for its INIT); a board and mastd start it themselves, the endpoint process those its file lists under connect",
    "peers.*.internal": "mastd: the peer's internal (tunnel) address",
    "peers.*.allowed": "mastd: prefixes the peer may send from and that are routed to it",
    # (the same texts as firmware/mastd/settings.py APP_HELP; tests/host/test_mastd_docs.py checks)
    "peers.*.app_socket": "mastd only: a Unix socket (SOCK_SEQPACKET; an absolute path, no /../) through "
                          "which one local program sends the peer datagrams and receives the peer's; none: no app",
    "peers.*.app_user": "mastd only: the user who may use app_socket (its owner: a name in /etc/passwd, or a "
                        "number); default root",
    "peers.*.app_group": "mastd only: a group whose members may use app_socket too (a name in /etc/group, or a "
                         "number; then mode 0660)",
    "peers.*.app_mode": "mastd only: the socket file's mode; default 0660 with app_group, else 0600",
    "uplinks.*.priority": "0..255, lower is preferred for the primary path",
    "uplinks.*.cost": "0 = unmetered; above 0 the uplink is metered and probed less often",
    "uplinks.*.device": "Linux interface to bind to (SO_BINDTODEVICE)",
    "uplinks.*.address": "local address to bind to",
    "uplinks.*.kind": "what drives the uplink: sim, wlan, lan, ppp (boards) or linux",
    "uplinks.*.ssid": "boards, wlan: the Wi-Fi network to join, as its name reads (Caf\u00e9 is "
                      "5 of its 32 bytes)",
    "uplinks.*.password": "boards, wlan: the Wi-Fi password (WPA2: 8 to 63 characters); never shown",
    "uplinks.*.apn": "boards, ppp: the cellular access point name",
    "uplinks.*.sim_pin": "boards, ppp: the SIM's PIN, if it has one; never shown",
}


def schema_rows():
    """[(key pattern, type, default, what a valid value looks like)] for docs and help: the
    core's schema (mast/config.py) decoded row by row. Here, on the host, not in the core:
    a board never needs it, and the core's code is loaded into a board's heap."""
    from .firmware import use_firmware

    use_firmware()
    from mast import config

    out = []
    for r in config._rows():
        out.append((r[0], r[1], r[2], config._check(r[1], r[3:], None)[8:]))  # drop "must be "
    return out


def markdown():
    """docs/CONFIG.md's table, from the core's schema and the prose above."""
    lines = [
        "| key | type | default | valid values | meaning |",
        "|---|---|---|---|---|",
    ]
    for key, typ, default, want in schema_rows():
        d = "(none)" if default is None else "`%s`" % (str(default).lower() if isinstance(default, bool) else default)
        lines.append("| `%s` | %s | %s | %s | %s |" % (key, typ, d, want, HELP.get(key, "")))
    return "\n".join(lines) + "\n"
