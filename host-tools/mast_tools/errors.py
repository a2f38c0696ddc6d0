"""The one error type a `mast` subcommand raises on purpose."""


class CommandError(Exception):
    """Something the user can fix. main() prints `mast: <what>; <hint>` and exits 1."""

    def __init__(self, what, hint):
        Exception.__init__(self, what, hint)
        self.what = what
        self.hint = hint

    def __str__(self):
        return "%s; %s" % (self.what, self.hint)


class StopSignal(KeyboardInterrupt):
    """SIGTERM or SIGHUP (its terminal closed) while a command runs: raised where Ctrl-C's
    KeyboardInterrupt would be, so a command ends the way Ctrl-C ends it (its last messages, the
    terminal put back, how a board is left), and `how` says which ("SIGTERM")."""

    def __init__(self, how):
        KeyboardInterrupt.__init__(self, how)
        self.how = how


def how_interrupted(e):
    """"Ctrl-C", or the signal's name, for a KeyboardInterrupt caught."""
    return getattr(e, "how", None) or "Ctrl-C"
