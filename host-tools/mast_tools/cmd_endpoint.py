"""`mast endpoint`: run one MAST endpoint on this PC, the very code a board runs."""

import json
import os
import sys

from mast_tools.argtypes import add_duration
from mast_tools.errors import CommandError
from mast_tools.output import emit

EXAMPLE = """\
example:
  mast endpoint --config server.json
  mast endpoint --config board.json --duration 30 --json > final-status.json

server.json:
  {"mast": {"name": "server", "peers": {"board": {"psk": "<base64 of 32 bytes>"}}},
   "uplinks": {"wan": {"bind": "127.0.0.10:6278"}}}

stdout: one JSON object a line: {"event": ...} (the core's events: association_up, path_up,
path_down, failover, addresses_changed, data, ...) and {"reply": op, ...} for commands.
stdin: one JSON command a line: {"op": "status"}, {"op": "send", "text": "hi"},
{"op": "uplink", "name": "eth", "addr": "127.0.0.5:6278"} (renumber), {"op": "down", "name":
"eth"}, {"op": "stream", "rate": 50}, {"op": "close"}, {"op": "quit"}. End of input ends it.
With --json the lines go to stderr and stdout gets the final status as one document.
The file format and the commands: docs/RUNTIME.md. Under MicroPython the same program is
`micropython -m runtime.endpoint_main FILE`.
"""


def argparse_endpoint(p):
    p.epilog = EXAMPLE
    p.add_argument("--config", required=True, metavar="FILE.json", help="the endpoint file")
    add_duration(p)
    p.add_argument("--no-stdin", action="store_true",
                   help="do not read commands from stdin (and run on at its end)")


def _keys_warning(path):
    """The warning for an endpoint file holding keys that its group or others may read."""
    from mastd.settings import holds_secret, readable_keys_warning

    try:
        with open(path, "rb") as f:
            mode = os.fstat(f.fileno()).st_mode
            doc = json.loads(f.read().decode("utf-8"))
    except (OSError, ValueError, RecursionError):  # (endpoint_main says what is wrong with it)
        return None
    return readable_keys_warning(path, mode) if holds_secret(doc) else None


def do_endpoint(args):
    from mast_tools.firmware import use_firmware

    use_firmware()
    from runtime import endpoint_main
    from runtime.runconfig import FileError

    final = {}

    def out(line):
        if args.json:
            if line.startswith('{"event": "stopped"'):
                final.update(json.loads(line))
            sys.stderr.write(line + "\n")
            sys.stderr.flush()
        else:
            sys.stdout.write(line + "\n")
            sys.stdout.flush()

    w = _keys_warning(args.config)
    if w:  # valid or not (main says), others may read its keys
        sys.stderr.write("mast: warning: %s\n" % w)
    argv = [args.config]
    if args.duration:
        argv += ["--duration", str(args.duration)]
    if args.no_stdin:
        argv.append("--no-stdin")
    try:
        endpoint_main.main(argv, out)
    except FileError as e:
        if e.key == "file":  # (not a key: the file itself could not be read or parsed)
            raise CommandError("endpoint file %s: %s" % (args.config, e), "%s (the format is in "
                               "docs/RUNTIME.md)" % ("check the path" if "cannot read" in str(e)
                                                     else "fix the file"))
        raise CommandError("endpoint file %s: %s" % (args.config, e),
                           "fix that key; the format is in docs/RUNTIME.md")
    if args.json:
        emit(args, {"reason": final.get("reason"), "status": final.get("status")})
    return 0
