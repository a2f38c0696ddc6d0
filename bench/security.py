"""`make fuzz`: the attack suite's big runs, with their figures in docs/SECURITY.md.

    flock /tmp/mast-netns.lock .venv/bin/python bench/security.py            # everything (root)
    .venv/bin/python bench/security.py --only amplification clock presence   # no root needed
    .venv/bin/python bench/security.py --quick          # small counts, ~30 s: prints, writes nothing

Sections (each owns its part of docs/SECURITY.md, between `<!-- security:NAME:start -->` and
`<!-- security:NAME:end -->`, rewritten atomically with the command that produced it):

- fuzz: tests/attacks/fuzzrun.py against `mast endpoint` (1,000,000 cases) and against the
  MicroPython endpoint from mpy-cross output at the documented heaps (200,000 cases each at 176K
  and 192K): exits, internal errors, every datagram counted;
- floods: INIT and COOKIE-ECHO floods (4 x 100,000 against CPython, 4 x 25,000 against
  MicroPython), state kept, answers, a real peer's connect time;
- bursts: a stream's loss under bursts of 200 datagrams (issue 15.8), beside the same stream
  without the flood and with a 4 MB receive buffer (a scratch copy of firmware/ whose endpoint
  process passes rcvbuf to the Runtime, as the fix would);
- replay: about 10,000 replayed datagrams per runtime;
- amplification: bytes toward a third party per message type (exact, simulated network), the
  SET case beside the core before issue 15's fixes (git archive of PRE_FIX_CORE);
- clock: restarts across the cookie-stamp window, current core beside PRE_FIX_CORE;
- presence: lookups answered under a 5,000 pps flood from 2,000 addresses, the sans-IO server
  beside the one before its fix (PRE_FIX_PRESENCE).

Namespace sections need root and skip otherwise; MicroPython runs need the unix port.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
ATTACKS = os.path.join(ROOT, "tests", "attacks")
sys.path.insert(0, ATTACKS)
sys.path.insert(0, HERE)

import benchdoc  # noqa: E402

DOC = os.path.join(ROOT, "docs", "SECURITY.md")
PRE_FIX_CORE = "8e50e19"  # the last commit before the core's issue 15 fixes (1ccfa08)
PRE_FIX_PRESENCE = "18d2113~1"  # the presence server before its per-name rate limit
SECTIONS = ("fuzz", "floods", "bursts", "replay", "amplification", "clock", "presence")


FW = os.path.join(ROOT, "firmware")  # the firmware under test (--commit: an archive of one)
FW_LABEL = None
WRITE = True  # False (--quick): the sections are printed, docs/SECURITY.md keeps its figures


def firmware_label(commit=None):
    """What was measured: a commit's firmware/, or the checkout's (and whether it differs)."""
    def git(*args):
        return subprocess.run(["git", "-C", ROOT] + list(args), stdout=subprocess.PIPE,
                              universal_newlines=True, timeout=60).stdout.strip()

    if commit:
        return "firmware/ of commit %s (git archive)" % git("rev-parse", "--short", commit)
    dirty = git("status", "--porcelain", "--", "firmware")
    return "firmware/ of the checkout at %s%s" % (
        git("rev-parse", "--short", "HEAD"), " with uncommitted changes" if dirty else "")


def write_section(name, title, command, body):
    """The section `name` of docs/SECURITY.md, saying which code it measured."""
    if not WRITE:
        print("### %s\n\nCommand: `%s`\n\n%s\n" % (title, command, body.rstrip()))
        log("%s: not written to docs/SECURITY.md (--quick)" % name)
        return
    benchdoc.write_section(name, title, command, body, doc=DOC, tag="security", heading="###",
                           extra="  \nCode: %s" % FW_LABEL)


def log(msg):
    print("security: " + msg, file=sys.stderr, flush=True)


def archive(commit, workdir):
    """firmware/ as it was at commit (git archive), for a baseline measured in the same run."""
    out = os.path.join(workdir, "fw-" + commit.replace("~", "_"))
    if not os.path.isdir(out):
        os.makedirs(out)
        data = subprocess.run(["git", "-C", ROOT, "archive", commit, "firmware"],
                              stdout=subprocess.PIPE, check=True, timeout=60).stdout
        subprocess.run(["tar", "-x", "-C", out], input=data, check=True, timeout=60)
    return os.path.join(out, "firmware")


def in_firmware(fw, code):
    """Run python code (printing JSON) with tests/attacks importing the firmware at fw."""
    env = dict(os.environ, MAST_ATK_FIRMWARE=fw, PYTHONPATH=ATTACKS)
    p = subprocess.run([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE,
                       universal_newlines=True, timeout=1800)
    if p.returncode:
        raise RuntimeError("baseline run failed (exit %d)" % p.returncode)
    return json.loads(p.stdout)


def netns_ok():
    import atklib

    return atklib.unavailable()


def table(head, rows):
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        out.append("| " + " | ".join(str(x) for x in r) + " |")
    return "\n".join(out)


# ---- sections ---------------------------------------------------------------------------------


def sec_fuzz(a, cmd):
    import fuzzrun

    runs = [("cpython", None, a.cases_cpython)]
    import atklib

    if atklib.micropython_missing() is None:
        for heap in atklib.DOC_HEAPS:
            runs.append(("micropython", heap, a.cases_micropython))
    rows = []
    notes = []
    for runtime, heap, n in runs:
        log("fuzz: %s %s, %d cases" % (runtime, heap or "", n))
        argv = ["--runtime", runtime, "--cases", str(n), "--seed", "make-fuzz-%s" % runtime,
                "--progress", "--keep", os.path.join(ROOT, "build", "fuzz")]
        if heap:
            argv += ["--heapsize", heap]
        r = fuzzrun.run(argv)
        rows.append([runtime + (" " + heap if heap else ""), "%d" % r.get("cases", 0),
                     r.get("cases_per_s"), r["exits"], r.get("internal_errors", "–"),
                     "%s / %s" % (r.get("sent", "–"), r.get("target_rx", "–")),
                     r.get("rx_memory_misses", "–") if runtime == "micropython" else "–",
                     "yes" if r.get("counted_once") else "–", r.get("handshakes"),
                     (r.get("heap_free_min") if r.get("heap_free_min") is not None else "–"),
                     "%s → %s" % (r.get("start_rss_kb"), r.get("end_rss_kb"))])
        if r["death"]:
            notes.append("- **%s%s died** (%s) after %d cases: `%s`; the last cases are in `%s`."
                         % (runtime, " " + heap if heap else "", r["death"],
                            r.get("died_after_cases", 0),
                            (r.get("stderr_tail") or "").strip().splitlines()[-1:] or "",
                            os.path.relpath(r.get("cases_file", ""), ROOT) if r.get("cases_file") else "–"))
        kinds = r.get("kinds", {})
        if runtime == "cpython":
            notes.append("- Cases by kind (CPython run): " + ", ".join(
                "%s %d" % (k, kinds[k]) for k in sorted(kinds)) + ".")
            c = r.get("counters", {})
            notes.append("- The target's drop counters (CPython run): " + ", ".join(
                "%s %d" % (k, c[k]) for k in sorted(c)) + ".")
    body = table(["target", "cases", "cases/s", "exits", "internal errors", "sent / counted",
                  "receives without memory",
                  "each counted once", "associations opened", "heap free, least", "RSS KB"], rows)
    body += "\n\n" + "\n".join(notes) + "\n"
    body += ("\nA case is one datagram (fuzzgen.py: random, header-only, authenticated with the "
             "association's real keys, wrong key, INIT, COOKIE-ECHO on a real cookie, INIT-ACK to "
             "the target's own INIT, replay). `sent / counted`: datagrams the fuzzer sent to the "
             "target and the target's `rx` counter; equal means nothing was lost or uncounted. "
             "On MicroPython a receive that finds no free block may lose the datagram it was "
             "reading (the port copies it out of the kernel after the read): `receives without "
             "memory` (rx_no_memory + rx_rest) counts those receives and bounds the difference. "
             "A fuzzed SHUT closes the association under test; the fuzzer then opens a new one "
             "(`associations opened`).\n")
    write_section("fuzz", "Fuzzing the endpoint process", cmd, body)


def sec_floods(a, cmd):
    import atklib
    import floods

    runs = [("cpython", a.flood_cpython)]
    if atklib.micropython_missing() is None:
        runs.append(("micropython", a.flood_micropython))
    rows = []
    for runtime, n in runs:
        log("floods: %s, 4 x %d" % (runtime, n))
        with tempfile.TemporaryDirectory(prefix="atkfl") as wd:
            space = atklib.Space("fl")
            try:
                mpy = atklib.build_mpy(os.path.join(wd, "mpy")) if runtime == "micropython" else None
                r = floods.run_flood(space.name, wd, runtime, n, mpy_dir=mpy, time_limit=1800)
            finally:
                space.close()
        d = r.get("delta", {})
        rows.append([runtime + (" 176K" if runtime == "micropython" else ""), r["flood_total"],
                     r.get("flood_pps"), d.get("mac", 0), d.get("bad_cookie", 0),
                     d.get("stale_cookie", 0), "%d × %d B" % (r.get("init_acks", 0), 72),
                     ", ".join(r.get("associations", [])), r.get("real_peer_connect_s"),
                     "%s / %s" % (r.get("sent_to_target"), d.get("rx")),
                     r.get("death") or "none",
                     ("%s → %s" % (r.get("heap_free_before"), r.get("heap_free_after"))
                      if runtime == "micropython" else "%s → %s KB" % (r.get("rss_before_kb"), r.get("rss_after_kb")))])
    body = table(["target", "flood datagrams", "per s", "INIT, guessed key: mac",
                  "COOKIE-ECHO forged: bad_cookie", "COOKIE-ECHO old stamp: stale_cookie",
                  "answers (INIT-ACK to valid INITs)", "associations after", "real peer's connect (s)",
                  "sent / counted", "death", "heap free / RSS"], rows)
    body += ("\n\nFour floods mixed from 8 source addresses (floods.py): INITs with a guessed key, "
             "valid INITs from a PSK holder (each answered by a 72-byte INIT-ACK, smaller than the "
             "96-byte INIT, and nothing kept), COOKIE-ECHOs with a fresh stamp and a forged cookie, "
             "and with old stamps. The flooder syncs every 64 datagrams, so the rate is what the "
             "endpoint can take and the counts are exact. The real peer connects a third of the "
             "way in; `associations after` lists every association the endpoint holds (fz: the "
             "flooder's own sync association, fzreal: the real peer).\n")
    write_section("floods", "INIT and COOKIE-ECHO floods", cmd, body)


def sec_bursts(a, cmd):
    rows = []
    code = ("import json, sys, tempfile, atklib, bursts\n"
            "s = atklib.Space('bu')\n"
            "try:\n"
            "    print(json.dumps(bursts.run_bursts(s.name, tempfile.mkdtemp(), seconds=%s, burst=%s,"
            " rcvbuf=%r)))\n"
            "finally:\n    s.close()\n")
    cases = [("the endpoint as it is (its default receive buffer: 1 MiB on a host)", None, 200),
             ("`rcvbuf: 0`: the system's default (~208 KB), as before issue 15.8", 0, 200),
             ("the same, no flood (baseline)", None, 0)]
    for name, rcvbuf, burst in cases:
        log("bursts: " + name)
        r = in_firmware(FW, code % (a.burst_seconds, burst, rcvbuf))
        rows.append([name, r["flood_sent"], r["flood_pps"], "%d of %d" % (r["stream_lost"], r["stream_sent"]),
                     "%.1f%%" % r["loss_pct"], r["target_rx"]])
    body = table(["endpoint", "flood datagrams", "per s", "stream lost", "loss", "datagrams read"], rows)
    body += ("\n\nBursts of 200 datagrams of 1,200 bytes every 10 ms from another process "
             "(bursts.py), %s s, while a peer streams 100 datagrams a second of 1,200 bytes to "
             "the same `mast endpoint` (CPython). `datagrams read`: what the endpoint received in "
             "all; the rest the kernel dropped when the socket's buffer was full.\n" % a.burst_seconds)
    write_section("bursts", "Bursty floods against a stream (issue 15.8)", cmd, body)


def sec_replay(a, cmd):
    import atklib
    import replays
    from amplify import TYPE_NAMES

    runs = ["cpython"]
    if atklib.micropython_missing() is None:
        runs.append("micropython")
    rows = []
    for runtime in runs:
        log("replay: " + runtime)
        with tempfile.TemporaryDirectory(prefix="atkrp") as wd:
            space = atklib.Space("rp")
            try:
                mpy = atklib.build_mpy(os.path.join(wd, "mpy")) if runtime == "micropython" else None
                r = replays.run_replays(space.name, wd, runtime, mpy, n_data=a.replay_data, rounds=2)
            finally:
                space.close()
        for step in ("in_order", "shuffled", "other_addresses", "after_shut", "after_restart"):
            s = r[step]
            d = s["delta"]
            inits = sum(1 for p in s["packets"] if p[1] == 1)
            accepted = d.get("accepted", 0) - (s["synced"] or 0) - inits
            drops = ", ".join("%s %d" % (k, v) for k, v in sorted(d.items())
                              if v and k not in ("rx", "accepted"))
            rows.append([runtime, step.replace("_", " "), len(s["packets"]), accepted, s["data"],
                         inits, drops, ", ".join("%s %d" % (TYPE_NAMES.get(k, k), v) for k, v in sorted(
                             (k, v) for k, v in s["heard"].items() if k != "seconds")) or "none"])
    body = table(["target", "replay", "datagrams", "accepted (INITs, syncs aside)", "delivered again",
                  "INITs among them", "dropped as", "answers heard (by type)"], rows)
    body += ("\n\nThe peer's whole traffic (handshake, %d DATA, a SET, probes and answers) captured "
             "and replayed (replays.py): in order; shuffled, 4 times over; from 8 other source "
             "addresses; after the association was SHUT; to a restarted endpoint; 32 at a time, "
             "each batch followed by a sync PROBE (counted apart) or a wait until the endpoint "
             "has counted it, so that nothing is lost in socket buffers. An INIT is "
             "answered statelessly by design (an INIT-ACK to where it came from, creating "
             "nothing); DATA replayed on the association's own path still earns KEEPALIVE "
             "feedback at most once per `ack` interval.\n" % a.replay_data)
    write_section("replay", "Replay", cmd, body)


AMP_CODE = ("import json, amplify\n"
            "print(json.dumps({'one': amplify.set_victims(), 'each_s': amplify.set_victims(rounds=30)}))\n")


def sec_amplification(a, cmd):
    import amplify
    from amplify import TYPE_NAMES, ratio

    rows = []
    for t in sorted(TYPE_NAMES):
        i, o = amplify.stranger_ratio(t)
        rows.append(["stranger, no keys, victim's address as source", TYPE_NAMES[t], i, o, "%.2f" % ratio(o, i)])
    i, o = amplify.init_ratio(50)
    rows.append(["holder of the PSK, victim's address as source", "INIT", i, o, "%.2f" % ratio(o, i)])
    for t in (5, 6, 7, 8, 9, 10, 11, 12, 13, 16, 17, 4, 2):
        i, o = amplify.spoofed_peer_ratio(t)
        rows.append(["the peer, victim's address as source", TYPE_NAMES[t], i, o, "%.2f" % ratio(o, i)])
    body = table(["attacker", "sends", "bytes in", "bytes to the victim", "ratio"], rows)
    now = in_firmware(FW, AMP_CODE)
    with tempfile.TemporaryDirectory(prefix="atkamp") as wd:
        pre = in_firmware(archive(PRE_FIX_CORE, wd), AMP_CODE)
    rows = []
    for name, r in (("this core", now), ("before the fix (%s)" % PRE_FIX_CORE, pre)):
        o, e = r["one"], r["each_s"]
        rows.append([name, "%d B → %d B (%.1f×)" % (o["set_bytes"], o["out_300ms"], ratio(o["out_300ms"], o["set_bytes"])),
                     "%d B → %d B (%.1f×)" % (o["peer_in_all"], o["out_all"], ratio(o["out_all"], o["peer_in_all"])),
                     "%d B → %d B (%.1f×)" % (o["peer_in_late"], o["out_late"], ratio(o["out_late"], o["peer_in_late"])),
                     "%d B → %d B (%.1f×)" % (e["peer_in_all"], e["out_all"], ratio(e["out_all"], e["peer_in_all"]))])
    body += "\n\nThe peer's SET listing its own address and 15 victims (issue 15.4):\n\n"
    body += table(["core", "one SET, first 300 ms", "one SET, 30 s (all the peer sent)",
                   "one SET, after the first 3 s", "a fresh SET every second, 30 s"], rows)
    body += ("\n\nExact bytes on the simulated network (amplify.py; MAST packets, without UDP/IP "
             "headers); the reflector is the server of simnet.pair(), the victim an address of "
             "nobody's. `bytes in` for the SET rows: everything the peer sent to the reflector in "
             "the window. A fresh list every second starts validation anew each time, so the "
             "budget allows 3× again each time: that is the steady state of this attack.\n")
    write_section("amplification", "Amplification toward a third party", cmd, body)


CLOCK_CODE = ("import json, test_atk_clock as c\n"
              "out = {}\n"
              "for d in %r:\n"
              "    net, before, first = c.restart_after(5000, int(d * c.DAY))\n"
              "    b = c.b_assoc(net)\n"
              "    k = net.nodes['b'].ep.counters.get('stale_cookie', 0) - before.get('stale_cookie', 0)\n"
              "    out[str(d)] = [b is not None and b.state == 2 and b.peer_nonce != first, k]\n"
              "print(json.dumps(out))\n")
DAYS = (1.0 / 24, 10, 24.8, 24.9, 25, 40, 49.6, 49.8, 60)


def sec_clock(a, cmd):
    now = in_firmware(FW, CLOCK_CODE % (DAYS,))
    with tempfile.TemporaryDirectory(prefix="atkclk") as wd:
        pre = in_firmware(archive(PRE_FIX_CORE, wd), CLOCK_CODE % (DAYS,))
    rows = []
    for d in DAYS:
        n, p = now[str(d)], pre[str(d)]
        rows.append(["%.3g" % d, "in" if n[0] else "**refused** (%d × stale_cookie)" % n[1],
                     "in" if p[0] else "refused (%d × stale_cookie)" % p[1]])
    body = table(["days since the last cookie accepted from the peer", "this core",
                  "before the fix (%s)" % PRE_FIX_CORE], rows)
    body += ("\n\nThe board's box restarts that long after the server accepted its last cookie "
             "(the server gave the association up in the meantime) and connects again "
             "(test_atk_clock.py, simulated clock; `in`: the new association is up within 5 s). "
             "The same file also runs handshakes whose cookie crosses 2^30, 2^31, 2^32 and "
             "3·2^32 ms, failovers across those bounds, and a restart after 25 idle days with the "
             "association still up.\n")
    write_section("clock", "Long uptime: the cookie-stamp window (issue 15.2)", cmd, body)


PRES_CODE = ("import json, presmeter\n"
             "print(json.dumps([presmeter.measure(flood_pps=0), presmeter.measure(flood_pps=5000)]))\n")


def sec_presence(a, cmd):
    now = in_firmware(FW, PRES_CODE)
    with tempfile.TemporaryDirectory(prefix="atkpres") as wd:
        pre = in_firmware(archive(PRE_FIX_PRESENCE, wd), PRES_CODE)
    rows = []
    for name, r in (("this server", now), ("before its fix (%s)" % PRE_FIX_PRESENCE, pre)):
        quiet, flood = r
        rows.append([name, "%d of %d" % (quiet["answered"], quiet["asked"]),
                     "%d of %d" % (flood["answered"], flood["asked"]), flood["us_per_flood_packet"],
                     "%.1f%%" % (100 * flood["cpu_share_at_rate"]),
                     ", ".join("%s %d" % (k, v) for k, v in sorted(flood["counters"].items()))])
    body = table(["presence server", "lookups answered, no flood", "under the flood",
                  "µs per flood datagram", "CPU at 5,000/s", "counters under the flood"], rows)
    body += ("\n\nThe sans-IO server (presmeter.py, simulated clock, 14 s): 5,000 LOOKUPs a second "
             "under served names with tags the attacker cannot make, from 2,000 spoofed "
             "addresses; one legitimate LOOKUP a second. CPU: the server's own processing time "
             "in this process (CPython), not the socket's. The real server process in namespaces: "
             "bench/presence_flood.py (docs/BENCHMARKS.md).\n")
    write_section("presence", "Presence under an address flood (issue 15.3)", cmd, body)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--only", nargs="+", choices=SECTIONS, help="these sections only")
    p.add_argument("--quick", action="store_true", help="small counts, to try the script: prints the sections, leaves docs/SECURITY.md as it is")
    p.add_argument("--cases-cpython", type=int, default=1000000)
    p.add_argument("--cases-micropython", type=int, default=200000)
    p.add_argument("--commit", help="measure this commit's firmware/ (git archive), not the checkout's")
    a = p.parse_args(argv)
    global FW, FW_LABEL, WRITE
    keep = tempfile.mkdtemp(prefix="atkfw")
    if a.commit:
        FW = archive(a.commit, keep)
    os.environ["MAST_ATK_FIRMWARE"] = FW  # fuzzrun, floods, ... and their processes use it
    FW_LABEL = firmware_label(a.commit)
    a.flood_cpython, a.flood_micropython, a.burst_seconds, a.replay_data = 100000, 25000, 10, 2000
    WRITE = not a.quick
    if a.quick:
        a.cases_cpython, a.cases_micropython = 5000, 2000
        a.flood_cpython, a.flood_micropython, a.burst_seconds, a.replay_data = 2000, 500, 3, 100
    cmd = "make fuzz" if not (argv or sys.argv[1:]) else ".venv/bin/python bench/security.py " + " ".join(argv or sys.argv[1:])
    why = netns_ok()
    failed = []
    t0 = time.monotonic()
    for name in a.only or SECTIONS:
        if name in ("fuzz", "floods", "bursts", "replay") and why:
            log("%s: skipped: %s" % (name, why))
            continue
        log(name)
        t = time.monotonic()
        try:
            globals()["sec_" + name](a, cmd)
        except Exception as e:  # noqa: BLE001 -- one section failing does not stop the others
            log("%s failed: %r" % (name, e))
            failed.append(name)
        log("%s: %.0f s" % (name, time.monotonic() - t))
    log("done in %.0f s%s" % (time.monotonic() - t0, "; failed: " + ", ".join(failed) if failed else ""))
    import shutil

    shutil.rmtree(keep, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
