"""The console's `status` document, field by field: what docs/CONSOLE.md documents ("The status
document", a table printed from ROWS by markdown(); tests/host/test_hwtest_cli.py checks the doc
and this agree) and what the hardware tests check a board's status against (check()).

A row: (dotted path, type, when, meaning). `*` in a path is any uplink name or list item.
Types: text, int, bool, object, list, or choices a|b|c; "|null" adds null. When: always;
normal (present in normal mode, absent in maintenance); optional.
"""

ROWS = [
    ("board", "text", "always", "the board definition's name"),
    ("firmware", "text", "always", "the firmware's version"),
    ("mode", "normal|maintenance", "always", "what runs (docs/HARDWARE.md, maintenance)"),
    ("maintenance", "text", "optional", "why the board is in maintenance"),
    ("board_warning", "text", "optional", "why the board runs on a generic definition"),
    ("uptime_ms", "int", "always", "since this boot"),
    ("mem", "object", "always", "`free` and `alloc`: heap bytes (empty where the port cannot tell)"),
    ("config.source", "text", "always", "`mast.json`, `mast.json.tmp`, `mast.json.bak` or `defaults`"),
    ("config.warning", "text|null", "always", "why it is not `mast.json`"),
    ("config.uncommitted", "bool", "always", "the candidate differs from what is on flash"),
    ("config.unapplied", "bool", "always", "the candidate differs from what runs"),
    ("boot.unstable_boots", "int", "always", "boots in a row that did not run 30 s"),
    ("boot.stable", "bool", "always", "this boot has run 30 s"),
    ("boot.reset_cause", "text|null", "always", "`pwron`, `hard`, `wdt`, `deepsleep`, `soft`, the port's number as text for a cause it has no name for (ESP32: `0`), or null. The rp2 port knows only `pwron` and `wdt`, and its `machine.reset()` reboots through the watchdog: `wdt` there after a requested reboot too"),
    ("watchdog", "int|null", "always", "the watchdog's timeout in ms while it runs"),
    ("routing.mode", "text", "optional", "`exclusive` on boards that route one uplink at a time"),
    ("routing.active", "text|null", "optional", "the uplink in use there"),
    ("uplinks", "object", "always", "by uplink name; `{}` in maintenance"),
    ("uplinks.*.kind", "sim|wlan|lan|ppp", "always", "its manager"),
    ("uplinks.*.state", "up|down|connecting|off|unconfigured", "always", "the manager's state"),
    ("uplinks.*.addr", "text|null", "always", "its address while up"),
    ("uplinks.*.admin", "bool", "always", "false while held down (`uplink NAME down`)"),
    ("uplinks.*.error", "text|null", "always", "the last error"),
    ("uplinks.*.attempts", "int", "always", "connect attempts"),
    ("uplinks.*.failures", "int", "always", "failed attempts and losses"),
    ("uplinks.*.ups", "int", "always", "times it came up"),
    ("uplinks.*.up_ms", "int|null", "always", "how long it has been up"),
    ("uplinks.*.retry_in_ms", "int", "optional", "while down and enabled: ms to its next connect attempt"),
    ("uplinks.*.standby", "bool", "optional", "true while exclusive routing holds it in standby"),
    ("uplinks.*.mast", "object", "optional", "while up: the uplink as MAST uses it"),
    ("uplinks.*.mast.addr", "text", "optional", "`IP:PORT` of its socket, as told to peers"),
    ("uplinks.*.mast.priority", "int", "optional", "lower is preferred for the primary path"),
    ("uplinks.*.mast.cost", "int", "optional", "0 = unmetered"),
    ("uplinks.*.mast.socket", "object", "optional", "the socket's addresses and counters: bind, public, via, device, tx, rx, tx_errors, rx_errors, rx_dropped, last_error, dead, resting"),
    ("associations", "list", "normal", "one per peer"),
    ("associations.*.peer", "text", "normal", "the peer's name"),
    ("associations.*.state", "cookie-wait|cookie-echoed|established|shut-sent|shut-ack-sent|closed",
     "normal", "the association's state"),
    ("associations.*.primary", "text|null", "normal", "the primary path, `uplink>IP:PORT`"),
    ("associations.*.paths", "list", "normal", "every path"),
    ("associations.*.paths.*.path", "text", "normal", "`uplink>IP:PORT`"),
    ("associations.*.paths.*.state", "unverified|active|suspect|failed", "normal", "from its PROBEs"),
    ("associations.*.paths.*.rtt_ms", "int|null", "normal", "smoothed round-trip time"),
    ("associations.*.remotes", "list", "normal", "the peer's addresses"),
    ("counters", "object", "normal", "packets dropped, by reason"),
    ("runtime", "object", "normal", "the runtime: interpreter, counters, heap"),
    ("console.requests", "int", "always", "requests this boot"),
    ("console.errors", "int", "always", "of which answered with an error"),
    ("console.lines_dropped", "int", "always", "lines (replies, logs, events) not written because the port had no room: a PC that holds a USB console open and reads nothing"),
    ("app", "object", "optional", "the app hook: module, running, errors, and the app's own status"),
]


def _type_ok(value, typ):
    nullable = typ.endswith("|null")
    base = typ[:-5] if nullable else typ
    if value is None:
        return nullable
    if base == "text":
        return isinstance(value, str)
    if base == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if base == "bool":
        return isinstance(value, bool)
    if base == "object":
        return isinstance(value, dict)
    if base == "list":
        return isinstance(value, list)
    return value in base.split("|")


def _values(doc, path):
    """[(concrete path, value)] for a dotted path with `*`s; missing parts are left out."""
    found = [("", doc)]
    for part in path.split("."):
        nxt = []
        for where, v in found:
            if part == "*":
                items = v.items() if isinstance(v, dict) else enumerate(v) if isinstance(v, list) else []
                for k, x in items:
                    nxt.append(("%s.%s" % (where, k) if where else str(k), x))
            elif isinstance(v, dict) and part in v:
                nxt.append(("%s.%s" % (where, part) if where else part, v[part]))
        found = nxt
    return found


def check(status):
    """[problems] with a status document: a documented field missing or of the wrong type,
    or a top-level field the documentation does not name."""
    problems = []
    mode = status.get("mode")
    for path, typ, when, _ in ROWS:
        vals = _values(status, path)
        parent = path.rsplit(".", 1)[0] if "." in path else ""
        parents = _values(status, parent) if parent else [("", status)]
        must = when == "always" or (when == "normal" and mode == "normal")
        if must and "*" not in path and not vals and parents:
            problems.append("%s: missing" % path)
        if must and "*" in path:  # every list item or uplink must have it
            for where, pv in parents:
                if isinstance(pv, dict) and path.rsplit(".", 1)[1] not in pv:
                    problems.append("%s.%s: missing" % (where, path.rsplit(".", 1)[1]))
        for where, v in vals:
            if not _type_ok(v, typ):
                problems.append("%s: %r is not %s" % (where, v, typ))
    documented = set(p.split(".")[0] for p, _, _, _ in ROWS)
    for k in status:
        if k not in documented:
            problems.append("%s: not documented" % k)
    return problems


def markdown():
    """docs/CONSOLE.md's table of the status document."""
    lines = ["| field | type | present | meaning |", "|---|---|---|---|"]
    for path, typ, when, meaning in ROWS:
        lines.append("| `%s` | %s | %s | %s |" % (path, typ.replace("|", " or "), when, meaning))
    return "\n".join(lines) + "\n"
