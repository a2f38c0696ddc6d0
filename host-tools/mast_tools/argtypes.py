"""Argument types that several `mast` subcommands share (argparse names a type's __name__ in
its error message: `argument --duration: invalid seconds value: '0'`)."""


MAX_SECONDS = 1e9  # about 31 years: anything longer (inf, nan) is a mistake, not a duration


def seconds(text):
    """A duration in seconds, more than zero and at most MAX_SECONDS (ValueError otherwise)."""
    value = float(text)
    if not 0 < value <= MAX_SECONDS:
        raise ValueError(text)
    return value


def add_duration(p):
    """--duration S: how long the command runs (None: until Ctrl-C or its own end)."""
    p.add_argument("--duration", type=seconds, metavar="S", help="stop after S seconds")
