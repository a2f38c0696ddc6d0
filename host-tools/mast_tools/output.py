"""Where the `mast` command writes.

The contract, for every subcommand:
- with --json, stdout carries exactly one JSON document (written by emit()) and nothing else;
- progress, tables and logs always go to stderr (progress(), log()), so they never mix into it;
- without --json, emit() prints the human text on stdout;
- text that came from elsewhere (a board's log line, an event's field, a modem's answer, an
  app's print, an error a board sent) reaches the terminal only through shown(): its control
  characters written as escapes. emit(), log() and progress() apply it to every line they
  print; the console applies it to each board line (and to each field of one, so a field
  cannot forge a line of its own).
"""

import json
import re
import sys
import time

# C0 and C1 controls and DEL (ESC sequences, CR, BEL, backspace: they move the cursor, recolour,
# retitle or clear a terminal), the Unicode line and paragraph separators, and the bidi controls
# (they reorder what is shown). U+FFFD (a byte that was not UTF-8) and all other text pass.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}

_PLAIN_EVERY_S = 5.0  # not a terminal: at most one progress line this often (plus the last)

_state = {"open": False, "last_plain": 0.0, "milestone": None}


def _escape(m):
    c = m.group(0)
    return _NAMED.get(c) or ("\\x%02x" % ord(c) if ord(c) < 0x100 else "\\u%04x" % ord(c))


def shown(text):
    """Untrusted text as one line fit for a terminal: each control character (see _UNSAFE) as an
    escape: ESC as \\x1b, CR as \\r, a newline as \\n, U+202E as \\u202e. Printable text,
    any language, stays as it is. Applying it twice changes nothing more."""
    return _UNSAFE.sub(_escape, "%s" % (text,))


def shown_lines(text):
    """shown() for text of several lines (a traceback, a table): each line shown, the newlines
    kept (a CR before one, as a Windows line ends, dropped)."""
    return "\n".join(shown(x[:-1] if x.endswith("\r") else x) for x in ("%s" % (text,)).split("\n"))


def emit(args, obj, text=None):
    """The command's result: `obj` as one JSON document with --json, else `text` (or, if no text
    is given, obj's keys and values one per line)."""
    _close_progress_line()
    if getattr(args, "json", False):
        sys.stdout.write(json.dumps(obj, indent=2, sort_keys=True) + "\n")
    elif text is not None:
        sys.stdout.write(shown_lines(text[:-1] if text.endswith("\n") else text) + "\n")
    elif isinstance(obj, dict):
        for key in obj:
            sys.stdout.write("%s: %s\n" % (shown(key), shown(obj[key])))
    else:
        sys.stdout.write("%s\n" % (shown(obj),))
    sys.stdout.flush()


def log(msg):
    """One line for the user, on stderr."""
    _close_progress_line()
    sys.stderr.write(shown_lines(msg) + "\n")
    sys.stderr.flush()


def progress(msg, done=False, milestone=None):
    """A status line on stderr for work that takes over a second. On a terminal it is rewritten
    in place; otherwise it becomes plain lines: one each time `milestone` changes (e.g. every
    10 %: percent // 10), or, without one, at most one every few seconds; and always the final
    one (done=True)."""
    err = sys.stderr
    msg = shown(msg)
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
