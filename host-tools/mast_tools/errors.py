"""The one error type a `mast` subcommand raises on purpose."""


class CommandError(Exception):
    """Something the user can fix. main() prints `mast: <what>; <hint>` and exits 1."""

    def __init__(self, what, hint):
        Exception.__init__(self, what, hint)
        self.what = what
        self.hint = hint

    def __str__(self):
        return "%s; %s" % (self.what, self.hint)
