"""mastctl: talk to a running mastd over its control socket.

    mastctl status [--json]
    mastctl uplink NAME up|down
    mastctl reload
    mastctl hotplug ACTION INTERFACE [DEVICE]      (the OpenWrt hotplug script's call)
"""

import argparse
import json
import os
import sys

from .control import DEFAULT_PATH, request

EXAMPLE = """\
examples:
  mastctl status
  mastctl status --json | jq '.associations[0].primary'
  mastctl uplink lte down       # stop using lte until `mastctl uplink lte up`
  mastctl reload                # re-read the configuration; prints why if it is refused
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
            lines.append("    %-40s %-10s rtt %s ms" % (p["path"], p["state"], p["rtt_ms"]))
    fo = s.get("failovers", [])
    lines.append("failovers: %d" % len(fo))
    for e in fo[-5:]:
        lines.append("  %s -> %s (gap %s ms%s)" % (e.get("old"), e.get("new"), e.get("gap_ms"),
                                                 ", failback" if e.get("failback") else ""))
    return "\n".join(lines) + "\n"


def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.cmd == "status":
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
    except OSError as e:
        sys.stderr.write("mastctl: cannot reach mastd at %s (%s); is it running? (--control)\n"
                         % (args.control, e.strerror or e))
        return 1
    if not reply.get("ok"):
        sys.stderr.write("mastctl: %s\n" % reply.get("error"))
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
    return 0
