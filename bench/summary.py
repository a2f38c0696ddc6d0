"""The "Results at a glance" table at the top of docs/BENCHMARKS.md, from the other sections.

    .venv/bin/python bench/summary.py

`make bench` runs it last. Each benchmark leaves its figures against their targets in its own
section as a `<!-- results: [...] -->` comment (what, target, measured, met); bench/heap.py and
bench/failover_sim.py, which predate that, are read from their tables. A section that is
missing (a benchmark that was skipped, e.g. without root) shows as not measured. Writes the
`summary` section, kept right under the document's title.
"""

import json
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import benchdoc  # noqa: E402
import heap  # noqa: E402  (its BUDGET: the core's .mpy)

ORDER = [  # section, what it is about (for a missing section)
    ("failover-sim", "failover gap, the core on the simulated network"),
    ("badlinks", "the core on hostile links (RTT rise, loss), simulated"),
    ("failover-netns", "failover in network namespaces against MPTCP"),
    ("datapath", "data path through mastd"),
    ("heap", "core heap (tests in 128K)"),
    ("footprint", "whole firmware footprint"),
    ("overhead", "overhead on the wire"),
    ("flash", "flashing"),
    ("alloc", "heap allocated per packet, 64-bit and 32-bit MicroPython"),
    ("scale", "a fleet on one server"),
    ("redial", "a fleet's reconnects after its server's graceful restart"),
    ("presence-flood", "presence under a spoofed flood"),
    ("pkgstart", "mastd start from the OpenWrt package"),
]
INTRO = "Each section is written by the benchmark named in it (`make bench` runs them all)."


def sections(text):
    out = {}
    for m in re.finditer(r"<!-- bench:([\w-]+):start -->(.*?)<!-- bench:\1:end -->", text, re.S):
        out[m.group(1)] = m.group(2)
    return out


def measured_on(body):
    m = re.search(r"Measured: (\d{4}-\d\d-\d\d \d\d:\d\d UTC)", body)
    return m.group(1) if m else "?"


def results_of(name, body):
    m = re.search(r"<!-- results: (\[.*?\]) -->", body, re.S)
    if m:
        return json.loads(m.group(1))
    if name == "heap":
        ks = re.findall(r"\| (test_\w+) \| (\d+)K \|", body)
        tot = re.search(r"\| \*\*total\*\* \| \*\*(\d+)\*\*", body)
        items = []
        if ks:
            worst = max(ks, key=lambda kv: int(kv[1]))
            items.append({"what": "core tests on MicroPython: the largest smallest heap of %d modules" % len(ks),
                          "target": "≤ 128K", "measured": "%sK (%s)" % (worst[1], worst[0]),
                          "met": int(worst[1]) <= 128})
        if tot:
            n = int(tot.group(1))
            items.append({"what": "the core's .mpy (as tests/test_firmware_compiles.py builds it)",
                          "target": "≤ %d KB (%d B)" % (heap.BUDGET // 1024, heap.BUDGET),
                          "measured": "%d B" % n, "met": n <= heap.BUDGET})
        return items
    if name == "failover-sim":
        items = []
        for prof, mode, p95, bound in re.findall(
                r"\| (\w+) \| (failover) \| \d+ \| \d+ ms \| (\d+) ms \| \d+ ms \| (\d+) ms \|", body):
            items.append({"what": "gap p95, %s profile, the core alone (simulated network)" % prof,
                          "target": "≤ %s ms" % bound, "measured": "%s ms" % p95, "met": int(p95) <= int(bound)})
        for prof, lost in re.findall(r"\| (\w+) \| redundant \| \d+ \|.*?\| 0 lost \| ([\d.]+) \|", body):
            items.append({"what": "redundant mode, the core alone: datagrams lost", "target": "0",
                          "measured": lost, "met": float(lost) == 0})
        return items
    return []


def main():
    try:
        text = open(benchdoc.DOC).read()
    except FileNotFoundError:
        text = "# Benchmarks\n\n%s\n" % INTRO
    secs = sections(text)
    rows = ["| area | what | target | measured | met | measured on |", "|---|---|---|---|---|---|"]
    missed = []
    for name, about in ORDER:
        body = secs.get(name)
        if body is None:
            rows.append("| %s | %s | | not measured (section missing) | – | |" % (name, about))
            continue
        for it in results_of(name, body):
            met = it.get("met")
            mark = "–" if met is None else ("yes" if met else "**no**")
            if met is False:
                missed.append(it["what"])
            rows.append("| [%s](#%s) | %s | %s | %s | %s | %s |" % (
                name, anchor(body), it["what"], it["target"], it["measured"].replace("|", "/"), mark,
                measured_on(body)))
    body = ["Targets from issue 8, each with the figure its benchmark measured last (follow the area "
            "to its section for the method, the baseline measured in the same run, and the "
            "machine). \"–\": reported, no target.", ""] + rows
    if missed:
        body += ["", "Not met: %s. Each section says why." % "; ".join(missed)]
    start, end = "<!-- bench:summary:start -->", "<!-- bench:summary:end -->"
    if start not in text:  # keep the table at the top: its markers go right under the title
        lines = text.split("\n")
        at = 1
        for i, ln in enumerate(lines[:6]):
            if ln.strip() == INTRO:
                at = i + 1
        lines[at:at] = ["", start, end]
        with open(benchdoc.DOC, "w") as f:
            f.write("\n".join(lines))
    benchdoc.write_section("summary", "Results at a glance", ".venv/bin/python bench/summary.py", "\n".join(body))
    return 0


def anchor(body):
    """GitHub's anchor of the section's "## Title" heading."""
    m = re.search(r"^## (.+)$", body, re.M)
    if not m:
        return ""
    a = m.group(1).strip().lower()
    a = re.sub(r"[^\w\- ]", "", a)
    return a.replace(" ", "-")


if __name__ == "__main__":
    import argparse

    # no options: --help says what it does (and does not run it), a stray argument is refused
    argparse.ArgumentParser(description=__doc__.split("\n\n")[0]).parse_args()
    sys.exit(main())
