# One request line of the serial console (docs/CONSOLE.md), parsed and checked.
# console.py imports this module for each line and forgets it before the op runs,
# so that its code takes no heap the rest of the time. It is loaded in a heap the traffic
# may have fragmented (bench/footprint.py: at 152K its largest free blocks held 112 to 176
# bytes), so it needs no larger block than it must: its table of ops is text, and it keeps
# to 12 names (a module's names are a table in one block: 12 take 192 bytes, 13 to 17 take 272).
#
# Every request is checked before the board sees it: a JSON object, a known op, only
# that op's fields, each of the right type. Bad input of any kind gets an error reply
# and changes nothing. Input is never echoed in a reply or a log: it may hold a secret.

from .compat import loads
from .console import ID_MAX, OpError

# each op: name:the fields it may have:the fields it must have ("value" may be any JSON
# value). One string, not a dict of tuples: this module is loaded for every request line, in a
# heap the traffic may have fragmented, where a dict of 13 ops needed a block of 272 bytes in
# one piece (bench/footprint.py: at 152K, the last block of that size was gone).
OPS = ("apply commit get:key hello inventory logs maintenance:state,reason:state reboot "
       "set:key,value:key,value status unset:key:key uplink:name,state,addr:name validate")
_TEXT_FIELDS = ("key", "name", "addr", "reason")
_STATES = {"uplink": ("up", "down"), "maintenance": ("on", "off")}


def check_request(req):
    """(id, op) of a well-formed request; OpError otherwise (then the id is null
    if it was not usable)."""
    if type(req) is not dict:
        raise OpError("a request is a JSON object, e.g. {\"id\": 1, \"op\": \"hello\"}")
    rid = req.get("id")
    if rid is not None and type(rid) is not int and type(rid) is not str:
        raise OpError("id must be an integer or text")
    if type(rid) is str and len(rid) > ID_MAX:
        raise OpError("id must be at most %d characters" % ID_MAX)
    op = req.get("op")
    for s in OPS.split():  # (each "name:may:must"; fields comma-separated)
        f = s.split(":")
        if f[0] == op:
            f += ("", "")
            allowed, required = [x.split(",") if x else () for x in f[1:3]]
            break
    else:
        raise OpError("%s (known: %s)" % ("no op" if op is None else "unknown op",
                                           ", ".join(s.split(":")[0] for s in OPS.split())))
    for k in req:
        if k != "id" and k != "op" and k not in allowed:
            raise OpError("op %s takes no field %s" % (op, repr(k)[:32]))
    for k in required:
        if k not in req:
            raise OpError("op %s needs the field %s" % (op, k))
    for k in _TEXT_FIELDS:
        if k in req and (type(req[k]) is not str or not 0 < len(req[k]) <= 255):
            raise OpError("%s must be text of 1 to 255 characters" % k)
    if "state" in req and req["state"] not in _STATES[op]:
        raise OpError("state must be %s" % " or ".join(_STATES[op]))
    return rid, op


def _surrogate(text):
    """True if the JSON text escapes a surrogate (\\uD800 to \\uDFFF, a pair of which is how
    ensure_ascii writes a character beyond U+FFFF): MicroPython's json makes each one three
    bytes that are not UTF-8, so a reply or a file that echoes it would not be UTF-8."""
    i = text.find("\\u")
    while i >= 0:
        j = i
        while j > 0 and text[j - 1] == "\\":
            j -= 1
        c = text[i + 2:i + 4]
        if (i - j) % 2 == 0 and len(c) == 2 and c[0] in "dD" and c[1] in "89abcdefABCDEF":
            return True
        i = text.find("\\u", i + 2)
    return False


def parse(line):
    """(id, op, request) of a request line (bytes; None: it was too long); OpError
    otherwise, with the request's id as e.rid when it has a usable one."""
    rid = None
    try:
        if not line:  # (console.Console.lines: None, too long; False, no heap for it)
            from .console import LINE_MAX  # (here: a name fewer in the module's table, below)

            raise OpError("line longer than %d bytes" % LINE_MAX if line is None
                          else "out of memory (the line was lost)")
        try:
            text = line.decode()
        except UnicodeError:
            raise OpError("not UTF-8 text")
        if _surrogate(text):
            raise OpError("text with a \\u escape of a surrogate: send characters beyond U+FFFF "
                          "as UTF-8 (JSON's ensure_ascii off)")
        try:
            req = loads(text)
        except ValueError:
            raise OpError("not JSON")
        if type(req) is dict:
            rid = req.get("id")
            if type(rid) is not int and (type(rid) is not str or len(rid) > ID_MAX):
                rid = None  # not usable (console._id_of's rule): null in the reply, never echoed
        rid, op = check_request(req)
        if op == "uplink" and ("state" in req) == ("addr" in req):
            raise OpError("op uplink needs exactly one of state (up/down) and addr")
    except OpError as e:
        e.rid = rid
        raise
    return rid, op, req


def call(op, req):
    """What carries out a checked request (parse()): (module, function, arguments...), for
    the board's once() to run board.<module>.<function>(board, arguments...) with that module
    imported for the request and forgotten after (main.Board.once); hello and status too
    (statusop.py). Here, not in console.py: this module's code goes before the op's
    comes, so that the choice takes no heap the rest of the time."""
    if op == "hello" or op == "status":
        return ("statusop", op)
    if op == "set":
        return ("settings", "op_set", req["key"], req["value"])
    if op == "unset":
        return ("settings", "op_unset", req["key"])
    if op == "get":
        return ("getop", "get", req.get("key"))
    if op == "validate" or op == "commit":
        return ("cfgops", op)
    if op == "apply":
        return ("applycfg", "apply")
    if op == "uplink":
        return ("uplinkops", "uplink", req["name"], req.get("state"), req.get("addr"))
    if op == "maintenance":
        return ("consoleops", "maintenance", req["state"] == "on", req.get("reason"))
    return ("consoleops", "report" if op == "inventory" else op)  # logs, reboot
