"""Where the `mast` command writes.

The contract, for every subcommand:
- with --json, stdout carries exactly one JSON document (written by emit()) and nothing else;
- progress, tables and logs always go to stderr (progress(), log()), so they never mix into it;
- without --json, emit() prints the human text on stdout.
"""

import json
import sys
import time

_PLAIN_EVERY_S = 5.0  # not a terminal: at most one progress line this often (plus the last)

_state = {"open": False, "last_plain": 0.0, "milestone": None}


def emit(args, obj, text=None):
    """The command's result: `obj` as one JSON document with --json, else `text` (or, if no text
    is given, obj's keys and values one per line)."""
    _close_progress_line()
    if getattr(args, "json", False):
        sys.stdout.write(json.dumps(obj, indent=2, sort_keys=True) + "\n")
    elif text is not None:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    elif isinstance(obj, dict):
        for key in obj:
            sys.stdout.write("%s: %s\n" % (key, obj[key]))
    else:
        sys.stdout.write("%s\n" % (obj,))
    sys.stdout.flush()


def log(msg):
    """One line for the user, on stderr."""
    _close_progress_line()
    sys.stderr.write(msg + "\n")
    sys.stderr.flush()


def progress(msg, done=False, milestone=None):
    """A status line on stderr for work that takes over a second. On a terminal it is rewritten
    in place; otherwise it becomes plain lines: one each time `milestone` changes (e.g. every
    10 %: percent // 10), or, without one, at most one every few seconds; and always the final
    one (done=True)."""
    err = sys.stderr
    if _isatty(err):
        err.write("\r" + msg + "\x1b[K")  # rewrite the line, clear what is left of the old one
        _state["open"] = True
        if done:
            err.write("\n")
            _state["open"] = False
    else:
        now = time.monotonic()
        if milestone is not None:
            if not done and milestone == _state["milestone"]:
                return
            _state["milestone"] = milestone
        elif not done and now - _state["last_plain"] < _PLAIN_EVERY_S:
            return
        _state["last_plain"] = now
        err.write(msg + "\n")
    err.flush()


def reset_progress():
    """Forget the last milestone (a new piece of work starts its own)."""
    _state["milestone"] = None


def _close_progress_line():
    if _state["open"]:
        sys.stderr.write("\n")
        sys.stderr.flush()
        _state["open"] = False


def _isatty(stream):
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
