"""The names the docs give are the code's: every counter the code counts is named in the doc
that describes its counters, and every drop reason those docs name is one the code counts (a
renamed or new counter fails here, as a renamed flag fails tests/host/test_docs_flags.py):

- the runtime's counters (`rt.counters`: firmware/runtime, the endpoint process, the board's
  loop) in docs/RUNTIME.md;
- mastd's `agent_counters` (firmware/mastd/agent.py, app.py) in docs/MASTD.md's paragraph on
  them, both ways;
- the core's drop reasons (firmware/mast: what `Endpoint.receive` counts, the responder's too) in docs/PROTOCOL.md
  section 7, both ways; the presence server's (firmware/presence/server.py) in P.8;
- the events docs/RUNTIME.md and docs/CONSOLE.md list, and docs/CONSOLE.md's console ops and
  their fields (firmware/board/request.py).

The names are read from the source as string literals (`count("x")`, `return "x"`), not by
running the code: cheap, and it covers counters no test happens to provoke."""

import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _read(*parts):
    with open(os.path.join(ROOT, *parts)) as f:
        return f.read()


def _counted(*paths):
    """The names passed as a literal to a count() call in these files."""
    names = set()
    for p in paths:
        names |= set(re.findall(r'\bcount\("([a-z_0-9]+)"\)', _read(*p.split("/"))))
    return names


def _named(text):
    """The snake_case names in backquotes (`tx_error`) in text."""
    return set(re.findall(r"`([a-z][a-z0-9]*(?:_[a-z0-9]+)+|[a-z]+)`", text))


def _between(text, start, end):
    i = text.index(start)
    return text[i:text.index(end, i)]


def test_every_runtime_counter_is_named_in_runtime_md():
    counted = _counted("firmware/runtime/driver.py", "firmware/runtime/endpoint_main.py",
                       "firmware/board/main.py")
    assert {"tx_error", "rx_no_memory", "redial", "lines_dropped"} <= counted, counted
    text = _read("docs", "RUNTIME.md")
    missing = {n for n in counted if "`%s`" % n not in text and '["%s"]' % n not in text}
    assert not missing, "counted by the runtime, not in docs/RUNTIME.md: %s" % sorted(missing)


def _agent_counters():
    agent = _read("firmware", "mastd", "agent.py")
    names = _counted("firmware/mastd/agent.py", "firmware/mastd/app.py")
    # the per-packet ones, kept in locals and added by name: ("tun_rx", sent), ...; and the
    # log's lost lines, kept by the Log: ("log_lines_lost", ...); the control socket's
    # clients closed for want of a descriptor, kept by it: ("control_no_fd", ...)
    names |= set(re.findall(r'\("((?:tun|rx_ip|log|control)_[a-z_]+)", ', agent))
    return names


def test_mastds_agent_counters_are_the_ones_mastd_md_lists():
    counted = _agent_counters()
    assert {"tun_rx", "tun_tx", "rx_ip_bad_source", "app_rx", "uplink_error"} <= counted, counted
    para = _between(_read("docs", "MASTD.md"), "`agent_counters`:", "`apps` gives")
    listed = _named(para) - {"agent_counters", "allowed", "app_user", "app_group"}
    assert counted == listed, ("counted, not in MASTD.md: %s; in MASTD.md, not counted: %s"
                               % (sorted(counted - listed), sorted(listed - counted)))


def _core_reasons():
    src = (_read("firmware", "mast", "endpoint.py") + _read("firmware", "mast", "assoc.py")
           + _read("firmware", "mast", "responder.py"))
    names = set(re.findall(r'return "([a-z_]+)"', src))
    names |= set(re.findall(r'reason = "([a-z_]+)"', src))  # (receive: malformed, no_memory, ...)
    names |= set(re.findall(r'"([a-z_]+)" if seq', src)) | {"duplicate"}  # (too_old else duplicate)
    # "bad_" + the codec's ValueError for the header: short, long, version, type
    wire = _read("firmware", "mast", "wire.py")
    parse = wire[wire.index("def parse("):]
    parse = parse[:parse.index("\ndef ")]
    names |= {"bad_" + w for w in re.findall(r'raise ValueError\("([a-z]+)"\)', parse)}
    names.discard("bad_")
    return names


def test_the_cores_drop_reasons_are_the_ones_protocol_md_section_7_names():
    reasons = _core_reasons()
    assert {"mac", "unknown_label", "bad_short", "bad_type", "too_old", "duplicate",
            "no_uplink", "internal_error"} <= reasons, reasons
    sec = _between(_read("docs", "PROTOCOL.md"), "## 7. Receiving", "## 8. Establishing")
    named = _named(sec)
    missing = reasons - named
    assert not missing, "counted by the core, not in PROTOCOL.md section 7: %s" % sorted(missing)
    steps = sec[:sec.index("Every answer")]  # the numbered steps: each name a reason counted
    extra = {n for n in _named(steps) if not n.startswith("k_")} - {"replay", "status", "ack"}
    assert extra <= reasons, "named in section 7, never counted: %s" % sorted(extra - reasons)


def test_the_presence_servers_drop_reasons_are_the_ones_protocol_md_p8_names():
    src = _read("firmware", "presence", "server.py")
    recv = src[src.index("def _receive("):]
    reasons = set(re.findall(r'return "([a-z_]+)"', recv)) | {"malformed"}
    msg = _read("firmware", "presence", "msg.py")
    parse = msg[msg.index("def parse("):]
    parse = parse[:parse.index("\ndef ")]
    reasons |= {"bad_" + w for w in re.findall(r'raise ValueError\("([a-z]+)"\)', parse)}
    reasons.discard("bad_")  # (return "bad_" + str(e))
    assert {"unknown_name", "rate_limited", "bad_short", "bad_malformed"} <= reasons, reasons
    sec = _between(_read("docs", "PROTOCOL.md"), "### P.8 The server", "### P.9")
    steps = sec[:sec.index("The server answers only")]
    named = {n for n in _named(steps) if not n.startswith("k_")}  # (k_up: a key, not a count)
    assert reasons == named, (sorted(reasons - named), sorted(named - reasons))


def test_the_events_the_docs_list_are_the_ones_the_code_emits():
    """docs/RUNTIME.md's list of the core's events on the endpoint process's stdout is
    mast/events.py's (but data, a line of its own); each `{"event": "x"` of docs/CONSOLE.md's
    logs and events is one the board emits, or the core's."""
    from mast.events import FIELDS

    text = _read("docs", "RUNTIME.md")
    part = _between(text, "the core's events, `ev.as_dict()` plus `t_ms`", "see\n")
    assert _named(part) - {"t_ms"} == set(FIELDS) - {"data"}, sorted(_named(part))
    board = "".join(_read("firmware", "board", n) for n in sorted(os.listdir(
        os.path.join(ROOT, "firmware", "board"))) if n.endswith(".py"))
    emitted = set(re.findall(r'"event": "([a-z_]+)"', board)) | set(FIELDS)
    console = _between(_read("docs", "CONSOLE.md"), "## Logs and events", "## Example session")
    named = set(re.findall(r'`\{"event": "([a-z_]+)"', console))
    assert {"uplink_up", "uplink_down", "uplink_failed", "uplink_rotated"} <= named, named
    assert named <= emitted, sorted(named - emitted)


def test_console_md_lists_the_ops_the_board_takes_with_their_fields():
    """docs/CONSOLE.md's table of operations is firmware/board/request.py's OPS: the same ops,
    and for each the fields it may carry (`key`, `value`, ...)."""
    from board import request

    text = _between(_read("docs", "CONSOLE.md"), "## Operations", "### The configuration")
    rows = re.findall(r"^\| `(\w+)` \|([^|]*)\|", text, re.M)
    ops = dict((s + "::").split(":")[:2] for s in request.OPS.split())  # op -> "field,field"
    assert sorted(op for op, _ in rows) == list(ops), [op for op, _ in rows]  # (OPS: in order)
    for op, cell in rows:
        fields = set(re.findall(r"`([a-z_]+)`", cell)) - {"true", "false"} - set(ops)
        assert fields == set(ops[op].split(",")) - {""}, (op, sorted(fields), ops[op])
