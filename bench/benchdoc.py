"""Shared by the benchmarks: machine facts and writing one section of docs/BENCHMARKS.md.

Each benchmark owns the text between `<!-- bench:NAME:start -->` and `<!-- bench:NAME:end -->`
and rewrites only that, atomically (temp file + rename), with the command that produced it.
"""

import datetime
import os
import platform
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOC = os.path.join(ROOT, "docs", "BENCHMARKS.md")
VENV_BIN = os.path.join(ROOT, ".venv", "bin")


def micropython_version():
    exe = os.path.join(VENV_BIN, "micropython")
    if not os.path.exists(exe):
        return None
    out = subprocess.run([exe, "-c", "import sys; print(sys.implementation.version, sys.version)"],
                         capture_output=True, text=True, timeout=30).stdout.strip()
    return "MicroPython " + out


def machine():
    try:
        cpu = [l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")][0]
    except (OSError, IndexError):
        cpu = platform.processor() or platform.machine()
    return "%s, %d cores, %s; CPython %s; %s" % (
        cpu, os.cpu_count() or 0, platform.platform(terse=True), platform.python_version(),
        micropython_version() or "no MicroPython")


def write_section(name, title, command, body, doc=None, tag="bench", heading="##", extra=""):
    """Replace (or append) the section `name` of docs/BENCHMARKS.md (or of `doc`, between
    <!-- TAG:name:start/end --> markers), atomically. `extra`: more lines after "Measured"."""
    doc = doc or DOC
    start, end = "<!-- %s:%s:start -->" % (tag, name), "<!-- %s:%s:end -->" % (tag, name)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    section = "%s\n%s %s\n\nCommand: `%s`  \nMeasured: %s on %s%s\n\n%s\n%s" % (
        start, heading, title, command, stamp, machine(), extra, body.rstrip() + "\n", end)
    try:
        text = open(doc).read()
    except FileNotFoundError:
        text = "# Benchmarks\n\nEach section is written by the benchmark named in it (`make bench` runs them all).\n\n"
    if start in text and end in text:
        a, b = text.index(start), text.index(end) + len(end)
        text = text[:a] + section + text[b:]
    else:
        text = text.rstrip() + "\n\n" + section + "\n"
    tmp = doc + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, doc)
    print("wrote section %r of %s" % (name, os.path.relpath(doc, ROOT)), file=sys.stderr)
