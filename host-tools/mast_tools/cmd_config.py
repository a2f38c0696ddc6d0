"""`mast config`: read and change a board's configuration over its serial console.

Every action is a few requests of the console protocol (docs/CONSOLE.md) over pyserial
(consoleclient.py). The board keeps a candidate configuration: `set`/`unset`/`import` edit it,
`commit` writes it to flash, `apply` makes it run; each action is its own session, and the
candidate stays on the board between them until it reboots.

The pure parts, tested without a board: leaves()/import_ops() (what `import` sends to make the
candidate equal a file, leaving redacted secrets as they are), and the text shown for `get`
and `status`.
"""

import argparse
import json
import os
import sys

from mast_tools.atomic import write_atomic
from mast_tools.errors import CommandError
from mast_tools.output import emit, log

REDACTED = "<redacted>"

EXAMPLE = """\
example:
  mast config --port /dev/ttyUSB0 get uplinks
  mast config --port /dev/ttyUSB0 set uplinks.wifi.ssid Workshop
  mast genkey | mast config --port /dev/ttyUSB0 set peers.hub.psk -
  mast config --port /dev/ttyUSB0 set peers.hub.addresses '["198.51.100.7"]' --commit --apply
  mast config --port /dev/ttyUSB0 export -o board.json      # secrets show as "<redacted>"
  mast config --port /dev/ttyUSB0 import board.json --commit
  mast config validate board.json --board olimex-esp32-poe  # no board needed

set and unset change the candidate configuration; commit writes it to the board's flash,
apply makes the running firmware take it. VALUE is JSON (10, true, ["a", "b"], "text"), else
text typed by the key: "6278", "yes", "192.0.2.1, 192.0.2.2"; a key whose value is text (an
SSID, a password, a PIN, an APN, a name) takes it as typed: 1234 stays "1234"; "-" reads it
from stdin (at a terminal it asks for it, and does not show a secret as you type).
The keys: docs/CONFIG.md; the board's console: docs/CONSOLE.md."""

ACTIONS = ("get", "set", "unset", "validate", "commit", "apply", "export", "import", "status")


def argparse_config(p):
    from mast_tools.serialport import add_port_args, baud

    add_port_args(p)
    p.epilog = EXAMPLE
    sub = p.add_subparsers(dest="action", metavar="ACTION")
    sub.required = True

    def action(name, summary):
        a = sub.add_parser(name, help=summary, description=summary)
        # also accepted after the action: `mast config get KEY --port P --json`
        a.add_argument("--port", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        a.add_argument("--baud", type=baud, default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        a.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        return a

    a = action("get", "show the configuration, or one key (secrets read <redacted>)")
    a.add_argument("key", nargs="?")
    for name, summary in (("set", "set KEY to VALUE in the candidate configuration"),
                          ("unset", "put KEY back to its default in the candidate")):
        a = action(name, summary)
        a.add_argument("key")
        if name == "set":
            a.add_argument("value", help='JSON or text; "-" reads it from stdin')
        _commit_apply(a)
    a = action("validate", "check the candidate (or FILE, on this PC) against the schema")
    a.add_argument("file", nargs="?")
    a.add_argument("--board", help="with FILE: check its uplinks against this board definition")
    action("commit", "write the candidate to the board's flash (atomically)")
    action("apply", "make the running firmware take the candidate, without a reboot")
    a = action("export", "the configuration as JSON, secrets redacted")
    a.add_argument("-o", "--output", metavar="FILE", help="write it to FILE (default: stdout)")
    a = action("import", "make the candidate equal FILE (redacted secrets stay as they are)")
    a.add_argument("file")
    _commit_apply(a)
    action("status", "what the board knows: mode, uplinks, associations, heap")


def _commit_apply(a):
    a.add_argument("--commit", action="store_true", help="then validate and commit")
    a.add_argument("--apply", action="store_true", help="then validate and apply")


# ---- pure helpers ---------------------------------------------------------------------------------


def leaves(cfg):
    """{dotted key: value} of a configuration: top-level settings, and each peer's and
    uplink's settings (peers.NAME.FIELD; names may hold dots)."""
    out = {}
    for k in cfg:
        v = cfg[k]
        if k in ("peers", "uplinks") and isinstance(v, dict):
            for name in v:
                sec = v[name]
                if isinstance(sec, dict):
                    for f in sec:
                        out["%s.%s.%s" % (k, name, f)] = sec[f]
                else:
                    out["%s.%s" % (k, name)] = sec
        else:
            out[k] = v
    return out


def sections(cfg):
    return set("%s.%s" % (k, n) for k in ("peers", "uplinks")
               for n in (cfg.get(k) or {}) if isinstance(cfg.get(k), dict))


def import_ops(board_view, wanted):
    """[(op, key, value)]: the requests that make the board's candidate (board_view, what
    `get` shows: defaults filled in, secrets redacted) equal `wanted`. A section the file
    lacks is unset whole; a key it lacks is unset (ignored by the caller if it was only a
    default); a secret that reads "<redacted>" in the file is left as it is on the board."""
    ops = []
    have, want = leaves(board_view), leaves(wanted)
    gone = sorted(sections(board_view) - sections(wanted))
    for sec in gone:
        ops.append(("unset", sec, None))
    for key in sorted(have):
        if key not in want and not any(key.startswith(s + ".") for s in gone):
            ops.append(("unset", key, None))
    for key in sorted(want):
        v = want[key]
        if v == REDACTED:
            continue
        if key in have and have[key] == v:
            continue
        ops.append(("set", key, v))
    return ops


# a valid stand-in for each kind of secret, so that a file exported with "<redacted>" secrets
# can be checked (the board keeps its own value for each on import)
_STAND_IN = {"psk": "A" * 43 + "=", "password": "x" * 8, "sim_pin": "0000"}


def unredact(cfg):
    """A copy of cfg with each "<redacted>" secret replaced by a valid stand-in."""
    if not isinstance(cfg, dict):
        return cfg
    out = {}
    for k, v in cfg.items():
        if isinstance(v, dict):
            out[k] = unredact(v)
        elif v == REDACTED and k in _STAND_IN:
            out[k] = _STAND_IN[k]
        else:
            out[k] = v
    return out


def show_value(value, prefix=""):
    """get's text: a scalar as it is, a section as `dotted.key = JSON` lines."""
    if not isinstance(value, dict):
        return value if isinstance(value, str) else json.dumps(value)
    lines = []
    for k in sorted(value):
        key = prefix + "." + k if prefix else k
        v = value[k]
        if isinstance(v, dict) and v:
            lines.append(show_value(v, key))
        else:
            lines.append("%s = %s" % (key, json.dumps(v)))
    return "\n".join(lines)


def status_text(s, port=None):
    """A short reading of the console's status document (the whole of it: --json)."""
    lines = ["board %s, firmware %s, %s mode, up %.1f s" % (
        s.get("board"), s.get("firmware"), s.get("mode"), (s.get("uptime_ms") or 0) / 1000.0)]
    if s.get("maintenance"):
        lines.append("maintenance: %s; to leave it: mast maintenance off%s" % (
            s["maintenance"], " --port %s" % port if port else ""))
    crash = s.get("last_crash")
    if crash:  # (after a boot loop: what the last boot died of; `logs` has the whole of it)
        err = str(crash.get("error"))
        lines.append("last crash: %s%s" % (err, "; the firmware may need more heap than this board "
                                                "has (docs/HARDWARE.md, \"Installing\")"
                                           if err.startswith("MemoryError") else ""))
    c = s.get("config") or {}
    pend = [w for w in ("uncommitted", "unapplied") if c.get(w)]
    lines.append("config: from %s%s%s" % (c.get("source"), "; changes " + " and ".join(pend) if pend else "",
                                          " (%s)" % c["warning"] if c.get("warning") else ""))
    ups = s.get("uplinks") or {}
    if ups:
        lines.append("uplinks:")
        for name in sorted(ups, key=lambda n: ((ups[n].get("mast") or {}).get("priority", 999), n)):
            u = ups[name]
            m = u.get("mast") or {}
            lines.append("  %-6s %-5s %-15s %s%s" % (
                name, u.get("state"), u.get("addr") or "-",
                "priority %s cost %s" % (m.get("priority"), m.get("cost")) if m else "",
                "  error: %s" % u["error"] if u.get("error") else ""))
    for a in s.get("associations") or []:
        lines.append("association %s: %s, primary %s" % (a.get("peer"), a.get("state"), a.get("primary")))
        for p in a.get("paths") or []:
            lines.append("  %-40s %-8s rtt %s ms" % (p.get("path"), p.get("state"), p.get("rtt_ms")))
    mem = s.get("mem") or {}
    if mem:
        lines.append("heap: %d KB free, %d KB used" % (mem.get("free", 0) // 1024, mem.get("alloc", 0) // 1024))
    return "\n".join(lines)


# ---- the actions ------------------------------------------------------------------------------------


def _board_error(e, action):
    text = str(e)
    if text == "out of memory":
        if action == "apply":
            return CommandError("the board ran out of memory doing apply (it restarts on its committed "
                                "configuration)", "commit the change and restart the board instead: "
                                "mast config commit, then mast reset")
        return CommandError("the board ran out of memory doing %s" % action,
                            "try again in a moment; if it keeps failing, the firmware needs more heap "
                            "than this board has: docs/HARDWARE.md, \"Installing\" (ROMFS or a frozen build)")
    key = not_set_key(text)
    if action in ("get", "unset") and key is not None:
        known = _known(key)
        if known == "setting" and action == "unset":
            return CommandError("%s is not set" % key, "nothing to unset (`mast config get` shows "
                                "what is set)")
        if known == "setting":
            return CommandError("%s is not set" % key, "set it: mast config set %s VALUE "
                                "(`mast config get` shows what is set)" % key)
        if known:
            return CommandError("%s is not set" % key, "`mast config get` shows what is set (the "
                                "keys: docs/CONFIG.md)")
        return CommandError("%s: unknown key" % key, "the keys are in docs/CONFIG.md "
                            "(`mast config get` shows what is set)")
    if action == "apply" and text.startswith("maintenance mode:"):  # (the mode, not the configuration)
        return CommandError("the board is in maintenance mode: nothing runs to apply to",
                            "commit the change (mast config commit), then mast maintenance off")
    if action == "commit" and text.startswith("cannot save the configuration:"):  # (valid: the flash)
        return CommandError("the board " + text, "make room on its flash, then commit again (`mpremote "
                            "connect PORT fs ls` shows its files; mpremote stops the firmware and the "
                            "candidate with it: `mast reset`, then set it again)")
    if action in ("validate", "commit", "apply"):
        return CommandError("the configuration is not valid: %s" % text,
                            "set or unset that key (mast config get shows it), then %s again" % action)
    if text.startswith("key: unknown, not repeated"):  # (the board's words for a key that may be a secret)
        return CommandError("unknown key (not repeated: text in a key's place may be a secret)",
                            "a key is made of A-Za-z0-9_.- and starts with one of %s (docs/CONFIG.md)"
                            % ", ".join(_tops()))
    if text.endswith(": unknown key") or text.endswith(": not a setting"):
        return CommandError(text, "check the key's spelling (the keys: docs/CONFIG.md; `mast config "
                            "get` shows what is set)")
    return CommandError(text, "fix the value (the keys and their values: docs/CONFIG.md)")


def _schema():
    """The core's configuration schema (firmware/mast/config.py), from the firmware beside us."""
    from mast_tools.firmware import use_firmware

    use_firmware()
    from mast import config

    return config


def not_set_key(text):
    """The key of the board's `KEY: is not set` (what it answers a get or unset of any key it
    does not hold, known to the schema or not), else None."""
    if isinstance(text, str) and text.endswith(": is not set"):
        return text[: -len(": is not set")]
    return None


def _known(key):
    """"setting" if key is a setting of the schema, "section" if it may be a peer's or an
    uplink's section (a peer's name may hold dots: "peers.a.b" may be one), else None."""
    if _schema().key_type(key) is not None:
        return "setting"
    return "section" if key.split(".")[0] in ("peers", "uplinks") else None


def _tops():
    """The first parts of the schema's keys, in its order: name, port, ..., peers, uplinks."""
    out = []
    from mast_tools.config_help import schema_rows

    for row in schema_rows():
        top = row[0].split(".")[0]
        if top not in out:
            out.append(top)
    return out


def _call(con, action, op, **fields):
    from mast_tools.consoleclient import BoardError

    try:
        return con.call(op, **fields)
    except BoardError as e:
        raise _board_error(e, action)
    except TimeoutError as e:
        raise CommandError("the board did not answer on %s (%s)" % (con.port, e),
                           "is it rebooting? try again; `mast console` shows what it prints")


def _finish(con, args, action):
    """--commit / --apply after an edit."""
    done = {}
    if getattr(args, "commit", False) or getattr(args, "apply", False):
        _call(con, "validate", "validate")
    if getattr(args, "commit", False):
        done["commit"] = _call(con, "commit", "commit")
    if getattr(args, "apply", False):
        done["apply"] = _call(con, "apply", "apply")
    return done


def read_json_unique(text):
    """JSON text as mastd reads its mast.json (runtime.jsonrule.loads_json): DuplicateKey, a
    ValueError, for an object that gives a key twice."""
    from mast_tools.firmware import use_firmware

    use_firmware()
    from runtime.jsonrule import loads_json

    return loads_json(text)


def _read_json(path):
    """A configuration file (mast config validate and import, mast flash --config); CommandError
    if it cannot be read, is not JSON, or gives a key twice (a peer written twice: JSON keeps
    only the last, mastd's rule for its mast.json too)."""
    from mast_tools.firmware import use_firmware

    use_firmware()
    from runtime.jsonrule import DuplicateKey

    try:
        with open(path, "rb") as f:
            return read_json_unique(f.read().decode())
    except DuplicateKey as e:
        raise CommandError("%s: %s" % (path, e), "give each key once")
    except OSError as e:
        raise CommandError("cannot read %s: %s" % (path, e.strerror or e), "check the path")
    except (ValueError, UnicodeError) as e:
        raise CommandError("%s is not JSON (%s)" % (path, e), "fix the file")
    except RecursionError:  # (a traceback, before)
        raise CommandError("%s nests objects and lists too deep for a configuration" % path, "fix the file")


def _validate_file(args):
    from mast_tools.cmd_flash import check_config, load_board

    cfg = unredact(_read_json(args.file))
    bd = None
    if args.board:
        bd = load_board(args.board)[0]
    elif args.port:
        from mast_tools.consoleclient import ConsoleClient

        with ConsoleClient.connect(args.port, baudrate=args.baud) as con:
            bd = load_board(con.hello_info.get("board"))[0]
    if bd is not None:
        err = check_config(cfg, bd)
    else:
        config = _schema()
        from runtime.peeraddr import peer_addresses_error

        err = None
        try:
            bad = peer_addresses_error(config.validate(cfg if isinstance(cfg, dict) else None))
            err = bad and "%s: %s" % bad
        except config.ConfigError as e:
            from runtime.jsonrule import error_text

            err = error_text(e)  # (a key that may be a secret not repeated, as mastd says it)
        except ValueError as e:
            err = str(e)
    if err:
        raise CommandError("%s is not valid: %s" % (args.file, err), "fix that key (docs/CONFIG.md lists them)")
    emit(args, {"valid": True, "file": args.file, "board": bd["name"] if bd else None},
         "%s is valid%s" % (args.file, " for %s" % bd["name"] if bd else " (schema only; --board "
                                                                       "also checks the uplinks)"))
    return 0


def do_config(args):
    action = args.action
    if action == "validate" and args.file:
        return _validate_file(args)
    from mast_tools import portpick
    from mast_tools.consoleclient import ConsoleClient

    args.port = portpick.resolve(args.port, "mast config")
    with ConsoleClient.connect(args.port, baudrate=args.baud) as con:
        return _ACTIONS[action](con, args)


def _get(con, args):
    value = _call(con, "get", "get", **({"key": args.key} if args.key else {}))
    emit(args, value, show_value(value, args.key or ""))
    return 0


def _set(con, args):
    from mast_tools.consoleclient import parse_value

    text = args.value
    try:
        if text == "-" and sys.stdin.isatty():  # (typed: asked for, and a secret is not echoed)
            import getpass

            if _secret(args.key):
                text = getpass.getpass("%s (not shown; Enter ends it): " % args.key).strip()
            else:
                sys.stderr.write("%s (Enter ends it): " % args.key)
                sys.stderr.flush()
                text = sys.stdin.readline().strip()
        elif text == "-":
            text = sys.stdin.readline().strip()
    except UnicodeDecodeError:  # (a strict locale; else a lone surrogate, refused when sent)
        raise CommandError("the set request holds text that is not UTF-8 (a byte your terminal "
                           "or file could not decode)", "type it again as UTF-8 text")
    if args.value == "-" and not text:  # (not the value's range error: nothing was read)
        raise CommandError("nothing was read from stdin for %s (it was empty)" % args.key,
                           "give the value on stdin (echo VALUE | mast config set %s -), or in "
                           "place of -" % args.key)
    value = parse_value(args.key, text)
    r = _call(con, "set", "set", key=args.key, value=value)
    done = _finish(con, args, "set")
    shown = REDACTED if _secret(args.key) else json.dumps(value)
    emit(args, dict(r, **done), "%s = %s (%s)" % (args.key, shown, _pending(done)))
    return 0


def _unset(con, args):
    r = _call(con, "unset", "unset", key=args.key)
    done = _finish(con, args, "unset")
    emit(args, dict(r, **done), "%s unset (%s)" % (args.key, _pending(done)))
    return 0


def _secret(key):
    try:
        return _schema().is_secret(key)
    except (ImportError, ValueError):
        return True


def _pending(done):
    if "commit" in done and "apply" in done:
        return "committed and applied"
    if "commit" in done:
        return "committed; `mast config apply` or a reboot runs it"
    if "apply" in done:
        return "applied; `mast config commit` keeps it across a reboot"
    return "in the candidate: commit to keep it, apply to run it"


def _validate(con, args):
    r = _call(con, "validate", "validate")
    emit(args, r, "the candidate configuration is valid")
    return 0


def _commit(con, args):
    r = _call(con, "commit", "commit")
    emit(args, r, "committed (%s bytes on the board's flash)" % r.get("bytes"))
    return 0


def _apply(con, args):
    r = _call(con, "apply", "apply")
    text = apply_text(r)
    emit(args, r, text)
    return 0


def apply_text(r):
    """What `apply` did, from its reply: every association restarted (name or keying
    changed), some (named), or all kept."""
    why = r.get("why")
    named = r.get("restarted") or []
    if r.get("associations") == "restarted":
        return "applied; every association restarts (%s)" % why if why else "applied; every association restarts"
    if named:
        return "applied; association%s with %s restart%s (%s); the others kept" % (
            "s" if len(named) > 1 else "", ", ".join(named), "" if len(named) > 1 else "s",
            why or "peer keys changed")
    return "applied; associations kept"


def _export(con, args):
    value = _call(con, "get", "get")
    doc = json.dumps(value, indent=2, sort_keys=True) + "\n"
    if args.output:
        if os.path.isdir(args.output):  # (else "Is a directory: FOLDER.tmp -> FOLDER")
            raise CommandError("%s is a folder" % args.output, "give the file to write: mast config "
                               "export -o %s" % os.path.join(args.output, "board.json"))
        write_atomic(args.output, doc)  # (a failed write leaves the file there as it was)
        log("mast config: wrote %s (secrets redacted: an import leaves them as they are)" % args.output)
        if args.json:
            emit(args, {"file": args.output})
        return 0
    sys.stdout.write(doc)
    return 0


def _import(con, args):
    from mast_tools.consoleclient import BoardError

    wanted = _read_json(args.file)
    if not isinstance(wanted, dict):
        raise CommandError("%s is not a configuration (a JSON object)" % args.file, "fix the file")
    board = _call(con, "get", "get")
    ops = import_ops(board, wanted)
    config = _schema()
    for op, key, value in ops:  # each set as the board checks it, before the first is sent
        try:
            if op == "set":
                config.set_key({}, key, value)
        except (config.ConfigError, ValueError) as e:
            raise CommandError("%s: %s" % (args.file, e), "fix that key in the file (nothing on the "
                               "board was changed)")
    changed = []
    for op, key, value in ops:
        try:
            if op == "set":
                con.call("set", key=key, value=value)
            else:
                con.call("unset", key=key)
        except BoardError as e:
            if op == "unset" and str(e).endswith("is not set"):
                continue  # a default the file leaves out
            raise CommandError("%s: %s" % (args.file, e), "fix that key in the file (the board's "
                               "candidate is partly changed; import again, or reboot to drop it)")
        changed.append("%s %s" % (op, key))
    secrets = sorted(k for k, v in leaves(wanted).items() if v == REDACTED)
    _call(con, "validate", "validate")
    done = _finish(con, args, "import")
    doc = {"changed": changed, "secrets_kept": secrets}
    doc.update(done)
    text = ["%s: %d change(s) (%s)" % (args.file, len(changed), _pending(done))]
    text += ["  " + c for c in changed]
    if secrets:
        text.append("  kept as on the board: " + ", ".join(secrets))
    emit(args, doc, "\n".join(text))
    return 0


def _status(con, args):
    s = _call(con, "status", "status")
    if str(s.get("maintenance") or "").startswith("boot loop"):
        try:  # what the boots died of: leaving maintenance without a fix only loops again
            s["last_crash"] = _call(con, "logs", "logs").get("last_crash")
        except CommandError:
            pass  # (the status is worth showing without it)
    emit(args, s, status_text(s, con.port))
    return 0


_ACTIONS = {"get": _get, "set": _set, "unset": _unset, "validate": _validate, "commit": _commit,
            "apply": _apply, "export": _export, "import": _import, "status": _status}

# cli.py's _COMMANDS entry: (handler, argparse builder, one-line help)
COMMAND = (do_config, argparse_config, "read and change a board's configuration over its serial console")
