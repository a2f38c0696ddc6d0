"""`mast genkey`: a new pre-shared key for a MAST peer.

The documented format (docs/CONSOLE.md, "Secrets"; the schema's `psk` type): standard base64
of exactly 32 random bytes, 44 characters ending in "=". The bytes come from the operating
system's CSPRNG (`secrets`). Both ends of an association get the same key: on a board
`mast config set peers.NAME.psk -` reads it from stdin, so it never lands in shell history.
"""

import base64
import secrets

from mast_tools.output import emit

KEY_BYTES = 32

EXAMPLE = """\
example:
  mast genkey > hub.psk
  mast config --port /dev/ttyUSB0 set peers.hub.psk - < hub.psk
  mast genkey --json          # {"psk": "...", "bytes": 32}

The same key goes into the peer's configuration (peers.<board name>.psk)."""


def argparse_genkey(p):
    p.epilog = EXAMPLE


def new_psk(random=secrets.token_bytes):
    """Standard base64 of KEY_BYTES random bytes."""
    return base64.b64encode(random(KEY_BYTES)).decode("ascii")


def do_genkey(args):
    psk = new_psk()
    emit(args, {"psk": psk, "bytes": KEY_BYTES}, psk)
    return 0


# cli.py's _COMMANDS entry: (handler, argparse builder, one-line help)
COMMAND = (do_genkey, argparse_genkey, "print a new pre-shared key (base64 of 32 random bytes)")
