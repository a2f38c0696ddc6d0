"""`mast presence`: run a presence server (PRES/1, docs/PROTOCOL.md "Presence"), where mobile
hosts register their current addresses and their peers look them up and are told of changes.
mastd can host the same server (`mastd --presence-config FILE`)."""

import sys

from mast_tools.argtypes import add_duration
from mast_tools.errors import CommandError
from mast_tools.output import emit

EXAMPLE = """\
example:
  mast presence --listen 0.0.0.0:6279 --config presence.json
  mast presence --listen 127.0.0.1:6279 --config presence.json --duration 60 --json

presence.json (only the names listed are served, each with its own key):
  {"names": {"board1.example": {"key": "<standard base64 of 32 bytes>"},
             "server.example": {"key": "<another>"}},
   "max_ttl": 3600, "rate": 10, "burst": 20, "state": "/var/lib/mast/presence-state.json"}

DNS: _mast._udp.board1.example. SRV 0 0 6279 presence.example.  tells peers where it is.
stdout: one JSON object a line: {"event": "started"|"registered"|"withdrawn"|"expired"|...}.
stdin: {"op": "status"}, {"op": "quit"}; end of input ends it (--no-stdin: run on); so do
SIGTERM, SIGINT and SIGHUP, with the stopped line. A state file is one server's: a second
server given the same one is refused.
With --json the lines go to stderr and stdout gets the final status as one document."""


def argparse_presence(p):
    p.epilog = EXAMPLE
    p.add_argument("--listen", metavar="ADDR:PORT",
                   help="address and port to serve on (default: the file's listen, else 0.0.0.0:6279)")
    p.add_argument("--config", required=True, metavar="FILE.json", help="the names served and their keys")
    add_duration(p)
    p.add_argument("--no-stdin", action="store_true",
                   help="do not read commands from stdin (and run on at its end)")


def do_presence(args):
    from mast_tools.firmware import use_firmware

    use_firmware()
    from mastd.presence_host import PresenceHost, StateInUse, load_config, parse_listen, DEFAULT_LISTEN
    from presence.conf import PresenceConfigError

    from mast_tools.presence_server import Process

    try:
        conf = load_config(args.config)
    except PresenceConfigError as e:
        raise CommandError("presence config %s: %s" % (args.config, e), "fix %s; the format is in "
                           "`mast presence --help`" % ("the file" if e.key == "file" else "that key"))
    for w in conf["warnings"]:  # valid, but others may read its keys
        sys.stderr.write("mast: warning: %s\n" % w)
    text = args.listen or conf["listen"]
    try:
        listen = parse_listen(text) if text else DEFAULT_LISTEN
    except ValueError as e:
        raise CommandError("--listen: %s" % e, "give ADDR:PORT, e.g. 0.0.0.0:6279")
    try:
        host = PresenceHost(conf, listen)
    except PresenceConfigError as e:
        raise CommandError("presence config %s: %s" % (args.config, e), "fix or remove the state file")
    try:
        host.open()  # OSError (address in use, not ours): cli.py turns it into a message with a hint
    except StateInUse as e:
        raise CommandError(e.strerror, "stop that server, or give this one another \"state\" in %s"
                           % args.config)

    def out(line):
        stream = sys.stderr if args.json else sys.stdout
        stream.write(line + "\n")
        stream.flush()

    p = Process(host, out, use_stdin=not args.no_stdin)
    status = p.run(int(args.duration * 1000) if args.duration else None)
    if args.json:
        emit(args, {"reason": p.quit, "status": status})
    return 0


# cli.py's _COMMANDS entry: (handler, argparse builder, one-line help)
COMMAND = (do_presence, argparse_presence, "run a presence server: mobile hosts register, peers find them")
