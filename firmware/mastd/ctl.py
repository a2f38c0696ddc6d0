"""mastctl: talk to a running mastd over its control socket.

    mastctl status [--json]
    mastctl uplink NAME up|down
    mastctl reload
    mastctl peer list [--json]
    mastctl peer add NAME [--address A]... [--psk-file F] [--internal IP] [--allowed P]... ...
    mastctl peer remove NAME
    mastctl hotplug ACTION INTERFACE [DEVICE]      (the OpenWrt hotplug script's call)
"""

import argparse
import json
import os
import sys

from .control import DEFAULT_PATH, QueueFull, ReplyCut, request

EXAMPLE = """\
examples:
  mastctl status
  mastctl status --json | jq '.associations[0].primary'
  mastctl uplink lte down       # stop using lte until `mastctl uplink lte up`
  mastctl reload                # re-read the configuration; prints why if it is refused
  mast genkey | mastctl peer add board7.example --psk-file - --internal 10.99.0.7 \
                --allowed 192.168.7.0/24 --no-initiate
  mastctl peer remove board7.example   # SHUT to it; the other associations stay
"""


def build_parser():
    p = argparse.ArgumentParser(prog="mastctl", description="Ask the running mastd.", epilog=EXAMPLE,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--control", metavar="SOCKET", default=os.environ.get("MASTD_CONTROL", DEFAULT_PATH),
                   help="mastd's control socket (default %(default)s; env MASTD_CONTROL)")
    sub = p.add_subparsers(dest="cmd", metavar="COMMAND")
    sub.required = True
    s = sub.add_parser("status", help="associations, paths, uplinks, failovers, counters")
    s.add_argument("--json", action="store_true", help="the whole status as one JSON document")
    u = sub.add_parser("uplink", help="take an uplink out of use, or back")
    u.add_argument("name")
    u.add_argument("state", choices=("up", "down"))
    sub.add_parser("reload", help="re-read the configuration (as SIGHUP, with the answer)")
    pe = sub.add_parser("peer", help="list, add or remove one peer (running and in the file)")
    psub = pe.add_subparsers(dest="peer_cmd", metavar="list|add|remove")
    psub.required = True
    pl = psub.add_parser("list", help="the configured peers and their associations")
    pl.add_argument("--json", action="store_true")
    pa = psub.add_parser("add", help="add a peer: to the running mastd and to its config file")
    pa.add_argument("name", help="the peer's name (a domain name)")
    pa.add_argument("--address", action="append", default=[], metavar="A",
                    help="an address of the peer (IP or IP:PORT; again for more)")
    pa.add_argument("--dns", metavar="NAME", help="a DNS name giving the peer's addresses")
    pa.add_argument("--port", type=int, help="the peer's UDP port (default 6278)")
    pa.add_argument("--psk-file", metavar="FILE", help="read the pre-shared key from FILE "
                    "('-': standard input), never from the command line")
    pa.add_argument("--no-initiate", action="store_true", help="wait for the peer's INIT")
    pa.add_argument("--internal", metavar="IP", help="the peer's internal (tunnel) address")
    pa.add_argument("--allowed", action="append", default=[], metavar="PREFIX",
                    help="a prefix the peer may send from and that is routed to it (again for more)")
    pa.add_argument("--app-socket", metavar="PATH", help="a Unix socket for a local app's datagrams")
    pa.add_argument("--app-user", metavar="USER", help="who may use the app socket (default root)")
    pa.add_argument("--app-group", metavar="GROUP", help="a group that may use it too")
    pa.add_argument("--app-mode", choices=("0600", "0660"), help="the socket file's mode")
    pr = psub.add_parser("remove", help="remove a peer: SHUT to it, then out of the config file")
    pr.add_argument("name")
    h = sub.add_parser("hotplug", help="an interface event (from /etc/hotplug.d/iface)")
    h.add_argument("action")
    h.add_argument("interface")
    h.add_argument("device", nargs="?", default="")
    return p


def format_status(s):
    lines = ["mastd %s (pid %s, up %ss, config %s, uplinks from %s)" % (
        s.get("name"), s.get("pid"), s.get("uptime_s"), s.get("config"), s.get("discovery"))]
    t = s.get("tun")
    if t:
        lines.append("tun %s %s mtu %s" % (t["name"], t["internal"], t["mtu"]))
    for m in s.get("routes_not_taken") or ():
        lines.append("  route %s of peer %s not taken: held by %s (the log says what to do)" % (
            m["route"], m["peer"], ", ".join(m["held_by"])))
    lines.append("uplinks:")
    for name, u in sorted(s.get("uplinks", {}).items()):
        link = u.get("link") or {}
        state = "up" if "addr" in u else "down (%s)" % (link.get("why") or u.get("admin"))
        if u.get("admin") == "down":
            state = "down (mastctl)"
        lines.append("  %-8s %-24s prio %-3s cost %-3s %s" % (
            name, u.get("addr", "-"), u.get("priority", "-"), u.get("cost", "-"), state))
    lines.append("associations:")
    for a in s.get("associations", []):
        lines.append("  %s %s label %08x nonce-id %s primary %s" % (
            a["peer"], a["state"], a["label"], a.get("nonce_id"), a.get("primary")))
        for p in a.get("paths", []):
            rtt = "-" if p.get("rtt_ms") is None else "%s ms" % p["rtt_ms"]  # (never measured: not "None ms")
            lines.append("    %-40s %-10s rtt %s" % (p["path"], p["state"], rtt))
    fo = s.get("failovers", [])
    lines.append("failovers: %d" % len(fo))
    for e in fo[-5:]:
        lines.append("  %s -> %s (gap %s ms%s)" % (e.get("old"), e.get("new"), e.get("gap_ms"),
                                                 ", failback" if e.get("failback") else ""))
    return "\n".join(lines) + "\n"


def _err(msg):
    sys.stderr.write("mastctl: %s\n" % msg)
    return 1


def read_psk(path):
    """The key from a file or '-' (stdin): its first word. OSError or ValueError."""
    what = "standard input" if path == "-" else path
    try:
        if path == "-":
            text = sys.stdin.read()
        else:
            with open(path) as f:
                text = f.read()
    except UnicodeError:  # (the decoder's message quotes a byte: a raw binary key's)
        raise ValueError("%s is not text: a key is the base64 that `mast genkey` prints" % what)
    w = text.split()
    if not w:
        raise ValueError("%s holds no key" % what)
    return w[0]


def peer_doc(args):
    """The settings of `mastctl peer add` as the JSON configuration's keys."""
    doc = {}
    if args.address:
        doc["addresses"] = list(args.address)
    for key, v in (("dns", args.dns), ("port", args.port), ("internal", args.internal),
                   ("app_socket", args.app_socket), ("app_user", args.app_user),
                   ("app_group", args.app_group), ("app_mode", args.app_mode)):
        if v is not None:
            doc[key] = v
    if args.allowed:
        doc["allowed"] = list(args.allowed)
    if args.no_initiate:
        doc["initiate"] = False
    if args.psk_file:
        doc["psk"] = read_psk(args.psk_file)
    return doc


def format_peers(peers):
    lines = []
    for p in peers:
        where = ("(fleet member, not listed)" if p.get("fleet") else
                 ", ".join(p["addresses"]) or p.get("dns") or "(waits for its INIT)")
        lines.append("%-28s %-14s nonce-id %-16s %s%s" % (
            p["name"], p["association"] or "-", p["nonce_id"] or "-", where,
            " internal %s" % p["internal"] if p.get("internal") else ""))
    return "\n".join(lines) + ("\n" if lines else "")


def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.cmd == "peer" and args.peer_cmd == "add":
        try:
            req = {"op": "peer_add", "name": args.name, "peer": peer_doc(args)}
        except (OSError, ValueError) as e:
            why = getattr(e, "strerror", None) or e
            if getattr(e, "filename", None):  # (which file: not only "No such file or directory")
                why = "%s: %s" % (e.filename, why)
            return _err("cannot read the key: %s; give --psk-file FILE or - for standard input" % why)
    elif args.cmd == "peer":
        req = {"op": "peer_" + args.peer_cmd}
        if args.peer_cmd == "remove":
            req["name"] = args.name
    elif args.cmd == "status":
        req = {"op": "status"}
    elif args.cmd == "uplink":
        req = {"op": "uplink", "name": args.name, "state": args.state}
    elif args.cmd == "reload":
        req = {"op": "reload"}
    else:
        req = {"op": "hotplug", "action": args.action, "interface": args.interface,
               "device": args.device}
    try:
        reply = request(args.control, req)
    except (ReplyCut, QueueFull) as e:
        sys.stderr.write("mastctl: %s\n" % e)
        return 1
    except PermissionError:  # (not "is it running?": it may well be)
        sys.stderr.write("mastctl: %s: permission denied; only root may use mastd's control socket "
                         "(mode 0600): run mastctl as root\n" % args.control)
        return 1
    except OSError as e:
        sys.stderr.write("mastctl: cannot reach mastd at %s (%s); is it running? (--control)\n"
                         % (args.control, e.strerror or e))
        return 1
    if not reply.get("ok"):
        err = "%s" % reply.get("error")
        if req["op"] == "peer_add" and err.endswith(".psk: required when keying is psk"):
            err += "; give the peer's key with --psk-file FILE (`mast genkey > FILE` makes one)"
        sys.stderr.write("mastctl: %s\n" % err)
        return 1
    if args.cmd == "status":
        if args.json:
            sys.stdout.write(json.dumps(reply["status"], indent=2, sort_keys=True) + "\n")
        else:
            sys.stdout.write(format_status(reply["status"]))
    elif args.cmd == "uplink":
        sys.stdout.write("uplink %s %s\n" % (args.name, args.state))
    elif args.cmd == "reload":
        sys.stdout.write("reloaded\n")
    elif args.cmd == "peer" and args.peer_cmd == "list":
        if args.json:
            sys.stdout.write(json.dumps(reply["peers"], indent=2, sort_keys=True) + "\n")
        else:
            sys.stdout.write(format_peers(reply["peers"]))
    elif args.cmd == "peer" and args.peer_cmd == "add":
        sys.stdout.write("peer %s added%s\n" % (args.name, " (%s)" % reply["section"]
                                                 if reply.get("section") else ""))
    elif args.cmd == "peer":
        sys.stdout.write("peer %s removed\n" % args.name)
    return 0
