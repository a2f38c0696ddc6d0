"""`mast genkey`: a new pre-shared key for a MAST peer.

The documented format (docs/CONSOLE.md, "Secrets"; the schema's `psk` type): standard base64
of exactly 32 random bytes, 44 characters ending in "=". The bytes come from the operating
system's CSPRNG (`secrets`). Both ends of an association get the same key: on a board
`mast config set peers.NAME.psk -` reads it from stdin, so it never lands in shell history.
"""

import base64
import os
import secrets
import stat
import sys

from mast_tools.errors import CommandError
from mast_tools.output import emit

KEY_BYTES = 32

EXAMPLE = """\
example:
  (umask 077; mast genkey > hub.psk)     # (a file others may read is warned about)
  mast config --port /dev/ttyUSB0 set peers.hub.psk - < hub.psk
  mast genkey --json          # {"psk": "...", "bytes": 32}

The same key goes into the peer's configuration (peers.<board name>.psk).

A fleet (docs/CONFIG.md "A fleet on one server"): the server holds one fleet_psk, each board
its own key derived from it and the board's name:
  mast genkey > fleet.psk                       # the server's fleet_psk
  mast genkey --fleet fleet.psk --name board7.boards.example   # board7's peers.<server>.psk
  (--fleet - reads the fleet key from stdin)"""


def argparse_genkey(p):
    p.epilog = EXAMPLE
    p.add_argument("--fleet", metavar="FILE", help="derive a fleet member's key from the fleet "
                   "key in FILE (- : stdin) instead of drawing a new one; needs --name")
    p.add_argument("--name", help="the fleet member's name (<board>.<fleet_domain>)")


def new_psk(random=secrets.token_bytes):
    """Standard base64 of KEY_BYTES random bytes."""
    return base64.b64encode(random(KEY_BYTES)).decode("ascii")


def fleet_psk(fleet_text, name):
    """A fleet member's PSK (base64) from the fleet key (base64) and its name: the core's own
    derivation (mast.keys.fleet_key), so board and server cannot disagree."""
    from mast_tools.firmware import use_firmware

    use_firmware()
    from mast import keys

    key = keys.fleet_key({"fleet_psk": fleet_text}, name)
    return base64.b64encode(key).decode("ascii")


def name_error(name):
    """None if name can be a board's name (the schema's own check of the `name` key: the
    name a fleet member has), else what a name must be ("must be 1 to 63 characters ...")."""
    from mast_tools.firmware import use_firmware

    use_firmware()
    from mast import config

    try:
        config.set_key({}, "name", name)
    except config.ConfigError as e:
        return str(e)[len("name: "):]
    return None


def _readable_output_warning():
    """A warning when standard output is a file its group or others may read (`mast genkey >
    hub.psk` under umask 022), as `wg genkey` gives one; None otherwise."""
    try:
        st = os.fstat(sys.stdout.fileno())
    except (AttributeError, OSError, ValueError):  # (no descriptor: a test's stream)
        return None
    if not stat.S_ISREG(st.st_mode) or not st.st_mode & 0o077:
        return None
    return ("mast: warning: the key goes to a file that others may read (mode %04o); chmod 600 "
            "it, and `umask 077` first next time\n" % (st.st_mode & 0o7777))


def do_genkey(args):
    w = _readable_output_warning()
    if w:
        sys.stderr.write(w)
    if args.fleet is None:
        if args.name is not None:
            raise CommandError("--name goes with --fleet", "give --fleet FILE too, or leave --name out")
        psk = new_psk()
        emit(args, {"psk": psk, "bytes": KEY_BYTES}, psk)
        return 0
    if not args.name:
        raise CommandError("--fleet needs --name", "give the member's name, e.g. --name board7.boards.example")
    err = name_error(args.name)
    if err:  # no board can have that name: its key would never be asked for
        raise CommandError("--name is not a board's name: it %s" % err,
                           "give the member's name as its `name` key has it, e.g. --name "
                           "board7.boards.example")
    try:
        if args.fleet == "-" and sys.stdin.isatty():  # (typed: asked for, and not echoed)
            import getpass

            data = getpass.getpass("the fleet key (not shown; Enter ends it): ").encode()
        elif args.fleet == "-":
            data = sys.stdin.buffer.read()
        else:
            with open(args.fleet, "rb") as f:
                data = f.read()
    except OSError as e:
        raise CommandError("cannot read the fleet key %s (%s)" % (args.fleet, e.strerror),
                           "give the file `mast genkey > fleet.psk` wrote")
    what = "standard input" if args.fleet == "-" else args.fleet
    if not data.strip():
        raise CommandError("%s is empty" % what, "give the fleet key (`mast genkey` made it)")
    try:
        psk = fleet_psk(data.decode("utf-8").strip(), args.name)
    except ValueError:  # never shows the key (nor a byte of it: UnicodeError is a ValueError)
        raise CommandError("%s is not a fleet key" % what,
                           "it must hold standard base64 of exactly 32 bytes (`mast genkey`)")
    emit(args, {"psk": psk, "bytes": KEY_BYTES, "name": args.name}, psk)
    return 0


# cli.py's _COMMANDS entry: (handler, argparse builder, one-line help)
COMMAND = (do_genkey, argparse_genkey, "print a new pre-shared key (base64 of 32 random bytes), "
           "or a fleet member's key (--fleet)")
