"""How long mastd takes to start from the OpenWrt package: the .py sources against the .pyc the
package now ships (both built by `mast ipk`, same run, same interpreter).

    .venv/bin/python bench/pkgstart.py [--runs N]

For each variant the .ipk's data is unpacked into a root, and these are timed (wall clock, the
median and the best of N runs, each a new interpreter, as procd starts it):
- `python3 <root>/usr/sbin/mastd --check --config <root>/etc/config/mast`: the real wrapper and
  the real UCI file (with a key filled in), up to a validated configuration;
- `python3 -c` with the wrapper's sys.path and `import mastd.main, mastd.agent`: every module the
  daemon loads before it runs (what `mastd` imports when it starts);
- `python3 -c pass`: the interpreter alone, the floor under both.
`python3 -X importtime` of the second gives the import time of our modules alone.
The wrapper sets sys.dont_write_bytecode, so on the router the sources are compiled at every
start, as here. A router's CPU is much slower than this machine's: the figures scale, the ratio
is what carries over. The .pyc are for the interpreter that made them (3.11 here, as OpenWrt
24.10's python3); writes the `pkgstart` section of docs/BENCHMARKS.md.
"""

import argparse
import base64
import io
import os
import re
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "host-tools"))
import benchdoc  # noqa: E402
from mast_tools import cmd_ipk  # noqa: E402

IMPORT = ("import sys; sys.dont_write_bytecode = True; sys.path.insert(0, %r); "
          "import mastd.main, mastd.agent")


def log(msg):
    sys.stderr.write("[%s] %s\n" % (time.strftime("%H:%M:%S"), msg))
    sys.stderr.flush()


def unpack(ipk, dest):
    with tarfile.open(ipk) as outer:
        data = outer.extractfile("./data.tar.gz").read()
    with tarfile.open(fileobj=io.BytesIO(data)) as t:
        t.extractall(dest)
    conf = os.path.join(dest, "etc", "config", "mast")
    text = open(conf).read()
    key = base64.b64encode(bytes(range(32))).decode()
    text = re.sub(r"option psk '[^']*'", "option psk '%s'" % key, text)
    with open(conf, "w") as f:
        f.write(text)
    return dest


def run_once(cmd, env):
    t = time.perf_counter()
    r = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, timeout=120)
    if r.returncode != 0:
        raise SystemExit("bench/pkgstart.py: %s failed: %s" % (" ".join(cmd), r.stderr.decode()[-300:]))
    return (time.perf_counter() - t) * 1000


def timed_interleaved(cmds, runs, env):
    """{name: (median ms, best ms)}; the commands take turns, so a busy moment of this shared
    machine falls on all of them alike."""
    times = {name: [] for name in cmds}
    for _ in range(runs):
        for name, cmd in cmds.items():
            times[name].append(run_once(cmd, env))
    return {name: (statistics.median(t), min(t)) for name, t in times.items()}


def import_time_us(lib, env):
    """Our modules' share of `python -X importtime` (cumulative us of the top-level imports)."""
    r = subprocess.run([sys.executable, "-X", "importtime", "-c", IMPORT % lib], capture_output=True,
                       text=True, env=env, timeout=120)
    total = 0
    for line in r.stderr.splitlines():
        m = re.match(r"import time:\s+\d+ \|\s+(\d+) \|( *)(\S+)$", line)
        if m and len(m.group(2)) == 1 and m.group(3).split(".")[0] in ("mastd", "mast", "runtime", "presence"):
            total += int(m.group(1))
    return total


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=31)
    args = ap.parse_args()
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C"}
    py = "%d.%d" % sys.version_info[:2]
    rows, results = [], []
    with tempfile.TemporaryDirectory(prefix="mast-pkgstart-") as tmp:
        roots = {}
        for name, bytecode in (("sources (.py)", False), ("byte code (.pyc)", True)):
            r = cmd_ipk.build(os.path.join(tmp, name[:4]), python=sys.executable, bytecode=bytecode)
            assert (r["bytecode"] is not None) == bytecode, r
            roots[name] = (unpack(r["path"], os.path.join(tmp, name[:4], "root")), r)
        cmds = {"base": [sys.executable, "-c", "pass"]}
        for name, (root, r) in roots.items():
            lib = os.path.join(root, "usr", "lib", "mast")
            cmds[name, "check"] = [sys.executable, os.path.join(root, "usr/sbin/mastd"), "--check", "--config",
                                   os.path.join(root, "etc/config/mast")]
            cmds[name, "import"] = [sys.executable, "-c", IMPORT % lib]
        t = timed_interleaved(cmds, args.runs, env)
        base = t["base"]
        figures = {}
        for name, (root, r) in roots.items():
            ours = min(import_time_us(os.path.join(root, "usr", "lib", "mast"), env) for _ in range(5))
            check, imp = t[name, "check"], t[name, "import"]
            figures[name] = (check, imp, ours)
            log("%s: --check median %.1f ms, import median %.1f ms, importtime %.1f ms"
                % (name, check[0], imp[0], ours / 1000))
            rows.append("| %s | %d | %.1f (%.1f) | %.1f (%.1f) | %.1f |" % (
                name, r["installed_size"], check[0], check[1], imp[0], imp[1], ours / 1000))
        src, pyc = figures["sources (.py)"], figures["byte code (.pyc)"]
        speed = src[1][1] / pyc[1][1]  # the best runs: the least disturbed by this shared machine
        results.append({"what": "mastd start from the package (import of the daemon), .pyc vs .py",
                        "target": "faster", "measured": "%.1fx (best %.0f -> %.0f ms)" % (speed, src[1][1], pyc[1][1]),
                        "met": pyc[1][1] < src[1][1] and pyc[1][0] < src[1][0]})
    body = "\n".join([
        "Wall time of a new `python%s` process (median and, in brackets, best of %d, the commands "
        "taking turns); the package built by `mast ipk` with and without byte code, unpacked, in the "
        "same run. `-X importtime`: best of 5." % (py, args.runs),
        "",
        "| package carries | installed bytes | `mastd --check` ms | import of the daemon ms | our modules in `-X importtime` ms |",
        "|---|---:|---:|---:|---:|",
    ] + rows + [
        "| (the interpreter alone: `python3 -c pass`) | | %.1f (%.1f) | | |" % base,
        "",
        "Starting the daemon (import of `mastd.main` and `mastd.agent`, with the core and the "
        "runtime) takes %.1fx less time from the .pyc (best runs; the medians move with the load "
        "of this shared machine): %.0f ms of compiling per start saved on "
        "this CPU, more on a router's. The .pyc are CPython %s's (OpenWrt 24.10 ships 3.11, 25.12 "
        "ships 3.13; a .pyc loads only in the version that made it): the SDK compiles them with its "
        "host Python, the target's version; `make ipk` with the interpreter it runs on when that is "
        "3.11, `make apk` when it is 3.13 (else each ships the sources and says so)."
        % (speed, src[1][1] - pyc[1][1], py),
        "",
        "<!-- results: %s -->" % __import__("json").dumps(results),
    ])
    benchdoc.write_section("pkgstart", "mastd start time from the OpenWrt package: .py against .pyc",
                           ".venv/bin/python bench/pkgstart.py", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
