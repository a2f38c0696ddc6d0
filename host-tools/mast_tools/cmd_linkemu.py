"""`mast linkemu`: run link emulator relays from the command line."""

import json
import threading
import time

from mast_tools.argtypes import add_duration
from mast_tools.errors import CommandError
from mast_tools.output import emit, log, progress

EXAMPLE = """\
example:
  mast linkemu --link eth=127.0.0.2:6278,delay=2 \\
               --link wifi=127.0.0.3:6278,delay=8,jitter=2 \\
               --link cell=127.0.0.4:6278,delay=40,rate=2000 --scenario cut-eth.json

  cut-eth.json: [{"at": 5, "link": "eth", "set": {"cut": true}},
                 {"at": 15, "link": "eth", "set": {"cut": false}}]

link spec: NAME=HOST:PORT[,KEY=VALUE...]   HOST:PORT is the public address the far side sees
  delay=MS  jitter=MS (uniform +-)  loss=0..1  rate=KBIT/S (0 = unlimited)  queue=PACKETS
  cut (a blackhole)  inside=HOST:PORT (where the uplink sends; default 127.0.0.1, a free port)
  up_KEY=... or down_KEY=... sets one direction (up: from the uplink to the network)
A scenario step's "set" takes the same keys, and "address" to renumber the link.
The uplink wraps each datagram in a SOCKS5 UDP header (RFC 1928 section 7).
Runs until Ctrl-C (or SIGTERM, SIGHUP) or --duration (without --duration, until the end of the
scenario), then prints the counters.
"""


def argparse_linkemu(p):
    p.epilog = EXAMPLE
    p.add_argument("--link", action="append", required=True, metavar="NAME=HOST:PORT[,KEY=VALUE]",
                   help="an emulated uplink (repeat for each)")
    p.add_argument("--scenario", metavar="FILE.json", help="a timeline of changes to apply")
    add_duration(p)
    p.add_argument("--seed", type=int, help="seed for loss and jitter, to repeat a run exactly")


def parse_link_spec(spec):
    """"eth=127.0.0.2:6278,delay=2,cut" -> ("eth", LinkConfig)."""
    from mast_tools.linkemu import LinkConfig

    name, sep, rest = spec.partition("=")
    if not sep or not name or not rest:
        raise CommandError("bad link spec %r: expected NAME=HOST:PORT[,KEY=VALUE...]" % spec,
                           "for example --link eth=127.0.0.2:6278,delay=2")
    parts = rest.split(",")
    settings = {}
    for part in parts[1:]:
        key, sep, value = part.partition("=")
        key = key.strip()
        if key in settings or key == "address":
            raise CommandError("bad link spec for %s: %s given twice" % (name, key or "''"),
                               "give each key once; the address comes first: NAME=HOST:PORT")
        settings[key] = value if sep else "true"
    try:
        return name, LinkConfig(parts[0], **settings)
    except (ValueError, TypeError) as e:
        raise CommandError("bad link spec for %s: %s" % (name, e),
                           "see `mast linkemu --help` for the keys")


def load_scenario(path, link_names):
    from mast_tools.linkemu import check_scenario

    try:
        with open(path) as f:
            steps = json.load(f)
    except OSError as e:
        raise CommandError("cannot read scenario %s: %s" % (path, e.strerror), "check the path")
    except (ValueError, RecursionError) as e:  # (RecursionError: nested too deep, a traceback before)
        raise CommandError("scenario %s is not valid JSON: %s" % (
            path, "it nests lists and objects too deep" if isinstance(e, RecursionError) else e),
                           "write a JSON list of steps, see `mast linkemu --help`")
    try:
        return check_scenario(steps, link_names)
    except ValueError as e:
        raise CommandError("bad scenario %s: %s" % (path, e), "see `mast linkemu --help`")


def _status(counters):
    return " | ".join("%s up %d in %d out, down %d in %d out" % (
        name, c["up"]["packets_in"], c["up"]["packets_out"],
        c["down"]["packets_in"], c["down"]["packets_out"]) for name, c in counters.items())


def _table(result):
    head = "%-8s %-4s %9s %11s %9s %11s  %s" % ("link", "dir", "pkts in", "bytes in", "pkts out",
                                                "bytes out", "dropped")
    rows = [head]
    for name, link in result["links"].items():
        for d in ("up", "down"):
            c = link["counters"][d]
            dropped = ", ".join("%s %d" % (r, n) for r, n in c["dropped"].items() if n) or "-"
            rows.append("%-8s %-4s %9d %11d %9d %11d  %s" % (
                name, d, c["packets_in"], c["bytes_in"], c["packets_out"], c["bytes_out"], dropped))
    return "\n".join(rows)


def do_linkemu(args):
    from mast_tools.linkemu import Emulator, format_addr

    links = {}
    for spec in args.link:
        name, cfg = parse_link_spec(spec)
        if name in links:
            raise CommandError("link %s is given twice" % name, "give each link a different name")
        links[name] = cfg
    steps = load_scenario(args.scenario, links) if args.scenario else None

    emu = Emulator(links, seed=args.seed)
    emu.start()  # an OSError here names the link and address; main() adds the hint
    def announce():
        for name in links:
            log("%s: uplink sends to %s; the network sees %s" % (
                name, format_addr(emu.inside_addr(name)), format_addr(emu.outside_addr(name))))

    try:
        ended_by, applied, elapsed = _serve(emu, steps, args.duration, announce)
        report = {}
        for name in links:
            report[name] = emu.settings(name)
            report[name]["inside"] = format_addr(emu.inside_addr(name))
            report[name]["address"] = format_addr(emu.outside_addr(name))
    finally:
        emu.stop()
    counters = emu.counters()
    for name in links:
        report[name]["counters"] = counters[name]
    result = {"ended_by": ended_by, "elapsed_s": round(elapsed, 3), "steps_applied": applied,
              "links": report}
    emit(args, result, _table(result))
    return 0


def _serve(emu, steps, duration, announce):
    """Relay until Ctrl-C or the duration (none: the end of the scenario), showing the counters.
    Returns (what ended it, how many steps were applied, seconds). Ctrl-C counts from the
    moment the links are announced (they are up then)."""
    applied, failure, runner = [], [], None
    if steps:
        def run():
            try:
                emu.run_scenario(steps, on_step=applied.append)
            except Exception as e:  # re-raised below, in the main thread
                failure.append(e)

        runner = threading.Thread(target=run, name="mast-linkemu-scenario", daemon=True)
        runner.start()
    t0 = time.monotonic()
    deadline = None if duration is None else t0 + duration
    ended_by, logged, next_status = "interrupt", 0, t0
    try:
        announce()
        while True:
            scenario_over = runner is not None and not runner.is_alive()  # then log its last steps
            new = applied[logged:]
            logged += len(new)
            for step in new:
                log("%6.1fs  %s: %s" % (float(step["at"]), step["link"], json.dumps(step["set"])))
            if failure:
                raise failure[0]
            now = time.monotonic()
            if scenario_over and deadline is None:  # (a --duration given runs whole: a last step
                ended_by = "scenario"                 # that restores a link is not its end)
                break
            if deadline is not None and now >= deadline:
                ended_by = "duration"
                break
            if now >= next_status:
                progress(_status(emu.counters()))
                next_status = now + 1.0
            time.sleep(0.1 if deadline is None else max(0.0, min(0.1, deadline - now)))
    except KeyboardInterrupt:
        pass
    progress(_status(emu.counters()), done=True)
    return ended_by, len(applied), time.monotonic() - t0
