"""`make mutants`: put each deliberate bug of tests/mutants/mutants.json into a scratch copy of
the tree, one at a time, and check that the tests named for it fail (the mutant is *killed*).

A mutant that survives is a bug the suite would let through; a mutant whose `old` text is no
longer found exactly once in its file *no longer applies* (the code moved on: update the list).
Either makes the exit status 1. The copy is taken from the working tree as it is (tracked and
untracked files that git does not ignore), so uncommitted edits count; it lives in
build/mutants/<id>/ and is removed afterwards (--keep leaves it).

A mutant is one edit (old, new) or several (edits: [{old, new, file (default: the mutant's)}]).
Each mutant names its CPython tests (pytest paths, run from the copy's root) and, for core
code, optionally core test modules to run on MicroPython as well
(tests/test_micropython_core.py -k MODULE). They run in that order until one fails.

    .venv/bin/python tests/mutants/run.py                  # all of them
    .venv/bin/python tests/mutants/run.py cookie-tag-unchecked keys-swapped
    .venv/bin/python tests/mutants/run.py --check          # only: does each still apply?
    .venv/bin/python tests/mutants/run.py --json           # one JSON object for scripts

Before the mutants, the union of their tests runs once on the unmutated copy: a test that
already fails would "kill" every mutant and prove nothing (--no-baseline skips this).
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
LIST = os.path.join(HERE, "mutants.json")
FIELDS = ("id", "file", "tests", "why")
SKIP_DIRS = (".git", ".venv", "build", "dist", "__pycache__", ".pytest_cache")
TIMEOUT_S = 600


class ListError(Exception):
    pass


def _text(v):
    """A mutant's old/new text: a string, or a list of lines (joined with newlines)."""
    return "\n".join(v) if isinstance(v, list) else v


def load(path):
    """The mutants of a list file, checked for shape. ListError says what is wrong."""
    try:
        with open(path) as f:
            doc = json.load(f)
    except (OSError, ValueError) as e:
        raise ListError("cannot read %s: %s" % (path, e))
    items = doc.get("mutants") if isinstance(doc, dict) else None
    if not isinstance(items, list) or not items:
        raise ListError("%s: expected {\"mutants\": [...]} with at least one mutant" % path)
    seen = set()
    out = []
    for i, m in enumerate(items):
        where = "%s: mutant %d" % (path, i + 1)
        if not isinstance(m, dict):
            raise ListError("%s is not an object" % where)
        missing = [f for f in FIELDS if not m.get(f)]
        if missing:
            raise ListError("%s (%s) lacks %s" % (where, m.get("id", "?"), ", ".join(missing)))
        if m["id"] in seen:
            raise ListError("%s: id %r is used twice" % (where, m["id"]))
        seen.add(m["id"])
        edits = m.get("edits", [{"old": m.get("old"), "new": m.get("new")}])
        if not isinstance(edits, list) or not edits or ("edits" in m and "old" in m):
            raise ListError("%s (%s): give old and new, or a list of edits" % (where, m["id"]))
        checked = []
        for e in edits:  # new may be "" (lines removed), old may not
            if not isinstance(e, dict) or not e.get("old") or e.get("new") is None:
                raise ListError("%s (%s): each edit needs old (not empty) and new" % (where, m["id"]))
            old, new = _text(e["old"]), _text(e["new"])
            if old == new:
                raise ListError("%s (%s): old and new are the same text" % (where, m["id"]))
            checked.append({"file": e.get("file", m["file"]), "old": old, "new": new})
        tests = m["tests"]
        mpy = m.get("micropython", [])
        if not isinstance(tests, list) or not isinstance(mpy, list):
            raise ListError("%s (%s): tests and micropython must be lists" % (where, m["id"]))
        out.append(dict(m, edits=checked, micropython=mpy))
    return out


def tree_files(root):
    """Paths (relative) of the working tree's files: tracked and untracked-but-not-ignored."""
    try:
        r = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                           cwd=root, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, timeout=60)
        if r.returncode == 0:
            return sorted(p for p in r.stdout.decode().split("\0") if p and os.path.isfile(os.path.join(root, p)))
    except (OSError, subprocess.SubprocessError):
        pass
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in SKIP_DIRS and not d.endswith(".egg-info")]
        for name in filenames:
            if not name.endswith(".pyc"):
                out.append(os.path.relpath(os.path.join(dirpath, name), root))
    return sorted(out)


def copy_tree(root, files, dest):
    if os.path.exists(dest):
        shutil.rmtree(dest)
    for rel in files:
        target = os.path.join(dest, rel)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copy2(os.path.join(root, rel), target)


def where_applies(tree, m):
    """None if each of m's old texts occurs exactly once in its file of tree and a Python file
    so changed still compiles (a mutant that leaves a line orphaned would be 'killed' by an
    IndentationError, proving nothing), else why not."""
    changed = {}
    for e in m["edits"]:
        path = os.path.join(tree, e["file"])
        try:
            if e["file"] not in changed:
                with open(path) as f:
                    changed[e["file"]] = f.read()
        except OSError:
            return "%s is missing" % e["file"]
        text = changed[e["file"]]
        n = text.count(e["old"])
        if n != 1:
            first = e["old"].strip().splitlines()[0].strip() if e["old"].strip() else e["old"]
            return "%s: %r %s" % (e["file"], first[:70], "not found" if n == 0 else "found %d times" % n)
        changed[e["file"]] = text.replace(e["old"], e["new"], 1)
    for name, text in changed.items():
        if name.endswith(".py"):
            try:
                compile(text, name, "exec")
            except SyntaxError as err:  # (IndentationError included)
                return "%s: the mutant does not compile (%s, line %s)" % (name, err.msg, err.lineno)
    return None


def apply(tree, m):
    for e in m["edits"]:
        path = os.path.join(tree, e["file"])
        with open(path) as f:
            text = f.read()
        with open(path, "w") as f:
            f.write(text.replace(e["old"], e["new"], 1))


def _env(tree):
    env = dict(os.environ)
    # the copy's packages, not the work tree's (host-tools is installed in editable mode)
    env["PYTHONPATH"] = os.pathsep.join([os.path.join(tree, "host-tools"), os.path.join(tree, "firmware")])
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.pop("PYTEST_ADDOPTS", None)
    return env


def stages(m):
    """[(label, pytest arguments)] for m, in the order they run."""
    out = []
    if m["tests"]:
        out.append(("cpython", list(m["tests"])))
    if m["micropython"]:
        out.append(("micropython", ["tests/test_micropython_core.py", "-k", " or ".join(m["micropython"])]))
    return out


def run_pytest(tree, args, timeout):
    """-> (outcome, summary): outcome "pass", "skipped" (nothing ran: all skipped), "fail",
    "timeout" or "error"."""
    cmd = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", "-o", "addopts="] + args
    try:
        r = subprocess.run(cmd, cwd=tree, env=_env(tree), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, universal_newlines=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return "timeout", "no result in %d s" % timeout
    lines = [x for x in r.stdout.strip().splitlines() if x.strip()]
    last = lines[-1].strip("= ") if lines else "no output"
    if r.returncode == 0:
        if " passed" not in last:  # e.g. no MicroPython here: a skip proves nothing
            return "skipped", last
        return "pass", last
    if r.returncode == 1:
        failed = [x for x in lines if x.startswith("FAILED ")]
        return "fail", (failed[0][7:] if failed else last)
    return "error", "pytest exit %d: %s" % (r.returncode, "\n".join(lines[-15:]))


def run_mutant(base, work, m, timeout):
    """Copy base to work, apply m, run its stages until one fails -> result dict."""
    t0 = time.monotonic()
    res = {"id": m["id"], "file": m["file"], "why": m["why"]}
    why = where_applies(base, m)
    if why:
        res.update(status="no_longer_applies", detail="no longer applies: " + why)
        return res
    shutil.copytree(base, work, symlinks=True)
    try:
        apply(work, m)
        res.update(status="survived", detail="every test passed: " + "; ".join(
            "%s: %s" % (label, " ".join(a)) for label, a in stages(m)))
        skipped = []
        for label, args in stages(m):
            outcome, summary = run_pytest(work, args, timeout)
            if outcome == "skipped":
                skipped.append("%s: %s" % (label, summary))
                continue
            if outcome in ("fail", "timeout"):
                res.update(status="killed", detail="%s: %s" % (label, summary))
                break
            if outcome == "error":
                res.update(status="error", detail="%s: %s" % (label, summary))
                break
        else:
            if skipped:  # survived only because some of its tests could not run here
                res.update(status="not_tested", detail="its tests were skipped here (%s)" % "; ".join(skipped))
    finally:
        res["seconds"] = round(time.monotonic() - t0, 1)
    return res


def main(argv=None):
    ap = argparse.ArgumentParser(prog="tests/mutants/run.py", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="example: .venv/bin/python tests/mutants/run.py keys-swapped --keep")
    ap.add_argument("ids", nargs="*", help="run only these mutants (default: all)")
    ap.add_argument("--list", default=LIST, help="the mutant list (default: tests/mutants/mutants.json)")
    ap.add_argument("--root", default=ROOT, help="the tree to copy (default: this checkout)")
    ap.add_argument("--check", action="store_true", help="only say whether each mutant still applies")
    ap.add_argument("--no-baseline", action="store_true", help="skip the run of the tests without mutants")
    ap.add_argument("--keep", action="store_true", help="keep build/mutants/<id>/ for a look")
    ap.add_argument("--timeout", type=int, default=TIMEOUT_S, help="seconds per test stage (default %(default)s)")
    ap.add_argument("--json", action="store_true", help="print one JSON object instead of lines")
    args = ap.parse_args(argv)

    def say(msg):
        if not args.json:
            print(msg, flush=True)

    try:
        mutants = load(args.list)
    except ListError as e:
        print("mutants: %s; fix the list" % e, file=sys.stderr)
        return 1
    if args.ids:
        known = set(m["id"] for m in mutants)
        unknown = [i for i in args.ids if i not in known]
        if unknown:
            print("mutants: no mutant %s in %s; run with --check to list them"
                  % (", ".join(unknown), os.path.relpath(args.list)), file=sys.stderr)
            return 1
        mutants = [m for m in mutants if m["id"] in args.ids]
    root = os.path.abspath(args.root)
    scratch = os.path.join(root, "build", "mutants")
    base = os.path.join(scratch, "_tree")
    t0 = time.monotonic()
    results = []
    os.makedirs(scratch, exist_ok=True)
    copy_tree(root, tree_files(root), base)  # one snapshot: edits made during the run do not count
    try:
        if args.check:
            for m in mutants:
                why = where_applies(base, m)
                results.append({"id": m["id"], "file": m["file"], "why": m["why"],
                                "status": "applies" if why is None else "no_longer_applies",
                                "detail": "applies" if why is None else "no longer applies: " + why})
                say("%-18s %-34s %s" % (results[-1]["status"], m["id"], results[-1]["detail"]))
        else:
            baseline = None
            if not args.no_baseline:
                tests = []
                for m in mutants:
                    for t in m["tests"]:
                        if t not in tests:
                            tests.append(t)
                say("mutants: the tests without any mutant first (%d files)" % len(tests))
                outcome, summary = run_pytest(base, tests, args.timeout)
                baseline = {"outcome": outcome, "summary": summary}
                if outcome not in ("pass", "skipped"):
                    msg = ("mutants: the tests fail without any mutant (%s), so a failure would prove "
                           "nothing; make them pass first" % summary)
                    if args.json:
                        print(json.dumps({"baseline": baseline, "results": [], "ok": False}))
                    else:
                        print(msg, file=sys.stderr)
                    return 1
            for i, m in enumerate(mutants):
                work = os.path.join(scratch, m["id"])
                if os.path.exists(work):
                    shutil.rmtree(work)
                say("[%d/%d] %s (%s)" % (i + 1, len(mutants), m["id"], m["file"]))
                try:
                    r = run_mutant(base, work, m, args.timeout)
                finally:
                    if not args.keep and os.path.exists(work):
                        shutil.rmtree(work)
                results.append(r)
                say("  %-8s %s%s" % ("SURVIVED" if r["status"] == "survived" else r["status"], r["detail"],
                                     " (%.1f s)" % r["seconds"] if "seconds" in r else ""))
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
            try:
                os.rmdir(scratch)  # only if nothing else is in it
            except OSError:
                pass
    counts = {}
    for r in results:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    ok = all(r["status"] in ("killed", "applies") for r in results)
    if args.json:
        print(json.dumps({"results": results, "counts": counts, "ok": ok,
                          "seconds": round(time.monotonic() - t0, 1)}, indent=1))
    else:
        bad = [r for r in results if r["status"] not in ("killed", "applies")]
        if bad:
            print("\nnot killed:")
            for r in bad:
                print("  %s: %s\n    why it matters: %s" % (r["id"], r["detail"], r["why"]))
        print("mutants: %s of %d in %.0f s" % (", ".join("%d %s" % (n, s.replace("_", " "))
                                                        for s, n in sorted(counts.items())),
                                              len(results), time.monotonic() - t0))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
