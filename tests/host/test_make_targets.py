"""What a newcomer meets first: the make targets the docs name exist, make clean and distclean
remove what the targets wrote and installed, make venv recovers from an interrupted one, `make
vectors` writes every vector block, each benchmark answers --help without running, a trial run
of `make fuzz`'s script leaves the published figures alone, and README.md's layout and test
commands are the tree's."""

import importlib.util
import os
import re
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DOCS = [os.path.join(ROOT, "README.md")] + sorted(
    os.path.join(ROOT, "docs", n) for n in os.listdir(os.path.join(ROOT, "docs")) if n.endswith(".md"))


def read(path):
    with open(os.path.join(ROOT, path)) as f:
        return f.read()


def makefile():
    return read("Makefile")


def phony():
    return set(re.search(r"^\.PHONY:(.*)$", makefile(), re.M).group(1).split())


def variable(name):
    return re.search(r"^%s :?= (.*)$" % name, makefile(), re.M).group(1).split()


def recipe(target):
    m = re.search(r"^%s:[^\n]*\n((?:\t[^\n]*\n)*)" % re.escape(target), makefile(), re.M)
    assert m, target
    return m.group(1)


def test_every_make_target_the_docs_and_make_help_name_exists():
    targets = phony()
    for path in DOCS:
        with open(path) as f:
            text = f.read()
        # (`make package/mast/compile` is the OpenWrt SDK's make, docs/MASTD.md)
        named = set(re.findall(r"`make ([a-z][\w-]*)(?![\w/-])", text))
        named |= set(re.findall(r"^make ([a-z][\w-]*)(?![\w/-])", text, re.M))  # fenced command blocks
        assert named <= targets, (os.path.relpath(path, ROOT), sorted(named - targets))
    helped = set(re.findall(r'@echo "make ([a-z][\w-]*)', recipe("help")))
    assert helped <= targets, sorted(helped - targets)
    # each target but help has its line (distclean: in clean's)
    assert targets - {"help", "distclean"} <= helped, sorted(targets - helped)
    assert "make distclean" in recipe("help")


def test_make_clean_removes_what_the_targets_write_and_distclean_what_make_installed():
    """make ipk/apk/dist write dist/, make mpy and the tests build/: `make clean` ("remove build
    output") left dist/ behind; `make distclean` left npm's node_modules (make test's npm ci)."""
    outputs = set(re.findall(r"\b(build|dist)/", recipe("help") + recipe("mpy")))
    assert outputs == {"build", "dist"}, outputs
    removed = re.search(r"^\trm -rf (.*)$", recipe("clean"), re.M).group(1).split()
    assert outputs <= set(removed), removed
    removed = re.search(r"^\trm -rf (.*)$", recipe("distclean"), re.M).group(1).split()
    assert {"$(VENV)", "$(MP32)/node_modules"} <= set(removed), removed
    assert "distclean: clean" in makefile()


@pytest.mark.skipif(shutil.which("make") is None, reason="no make here")
def test_make_venv_recreates_a_venv_an_interrupted_make_venv_left_without_pip(tmp_path):
    """Ctrl-C while `python3 -m venv` ran ensurepip left a .venv whose python runs but has no pip:
    every later `make venv` (and make test) failed with "No module named pip" until make
    distclean. The Makefile's own recipe, in a scratch directory with nothing to install."""
    shutil.copy(os.path.join(ROOT, "Makefile"), str(tmp_path))
    (tmp_path / "requirements.txt").write_text("# nothing to install\n")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", ".venv"], cwd=str(tmp_path), check=True)
    r = subprocess.run(["make", "venv", "PYTHON=" + sys.executable], cwd=str(tmp_path), timeout=300,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True)
    assert r.returncode == 0, r.stdout[-3000:]
    assert "removing broken .venv" in r.stdout
    assert (tmp_path / ".venv" / ".stamp").exists()
    subprocess.run([str(tmp_path / ".venv" / "bin" / "python"), "-m", "pip", "--version"], check=True,
                   stdout=subprocess.DEVNULL)


@pytest.mark.skipif(shutil.which("make") is None, reason="no make here")
@pytest.mark.parametrize("uid", ["1000", "0"])
def test_make_deps_installs_the_missing_debian_packages_as_root_and_names_them_and_the_command_otherwise(tmp_path, uid):
    """As a user, make deps (and so make test) said nothing at all of the packages it would have
    installed. The Makefile's own recipe, with stand-ins for id, dpkg (nothing installed) and
    apt-get on PATH."""
    shutil.copy(os.path.join(ROOT, "Makefile"), str(tmp_path))
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for name, body in (("id", "echo %s" % uid), ("dpkg", "exit 1"), ("apt-get", 'echo "$*" >> %s/apt' % tmp_path)):
        (bindir / name).write_text("#!/bin/sh\n%s\n" % body)
        (bindir / name).chmod(0o755)
    r = subprocess.run(["make", "deps"], cwd=str(tmp_path), timeout=60, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, universal_newlines=True,
                       env=dict(os.environ, PATH="%s:%s" % (bindir, os.environ["PATH"])))
    assert r.returncode == 0, r.stdout
    pkgs = " ".join(variable("DEB_PKGS"))
    if uid == "0":
        assert "make deps: installing Debian packages: %s\n" % pkgs in r.stdout, r.stdout
        assert "install --no-install-recommends %s" % pkgs in (tmp_path / "apt").read_text()
    else:
        assert "NOTE: Debian packages the tests use are missing: %s;" % pkgs in r.stdout, r.stdout
        assert "Install them as root: sudo apt-get install --no-install-recommends %s" % pkgs in r.stdout
        assert not (tmp_path / "apt").exists()


@pytest.mark.skipif(shutil.which("make") is None, reason="no make here")
def test_the_npm_ci_of_make_test_does_not_tell_a_user_to_update_npm(tmp_path):
    """A user's npm (no update-notifier=false in ~/.npmrc, as CI's root has) printed five
    lines of 'New minor version of npm available! ... npm install -g npm@...' in make test.
    The Makefile's own recipe, with a stand-in npm that records its arguments."""
    shutil.copy(os.path.join(ROOT, "Makefile"), str(tmp_path))
    (tmp_path / "tests" / "mp32").mkdir(parents=True)
    for name in ("package.json", "package-lock.json"):
        shutil.copy(os.path.join(ROOT, "tests", "mp32", name), str(tmp_path / "tests" / "mp32"))
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "npm").write_text('#!/bin/sh\necho "$*" > %s/npm-args\nmkdir -p node_modules\n' % tmp_path)
    (bindir / "npm").chmod(0o755)
    r = subprocess.run(["make", "tests/mp32/node_modules/.stamp"], cwd=str(tmp_path), timeout=60,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True,
                       env=dict(os.environ, PATH="%s:%s" % (bindir, os.environ["PATH"])))
    assert r.returncode == 0, r.stdout
    args = (tmp_path / "npm-args").read_text().split()
    assert args[0] == "ci" and "--no-update-notifier" in args, args


def test_make_vectors_regenerates_every_vector_block_of_the_protocol_doc():
    text = read("docs/PROTOCOL.md")
    blocks = re.findall(r"<!-- ([\w-]*vectors):start -->", text)
    assert sorted(blocks) == ["presence-vectors", "vectors"], blocks
    steps = recipe("vectors")
    for name in blocks:
        writers = [n for n in sorted(os.listdir(os.path.join(ROOT, "tests", "core")))
                   if n.startswith("gen_") and "<!-- %s:start -->" % name in read("tests/core/" + n)]
        assert len(writers) == 1, (name, writers)
        assert "tests/core/" + writers[0] in steps, (name, writers[0], steps)


def test_every_benchmark_is_run_by_make_bench_or_named_as_a_helper():
    benches = variable("BENCHES")
    helpers = {"benchdoc", "nsbench", "tunrelay"}  # the Makefile's comment above BENCHES
    for h in helpers:
        assert "%s.py" % h in makefile(), h
    assert "bench/security.py" in recipe("fuzz")
    here = {n[:-3] for n in os.listdir(os.path.join(ROOT, "bench")) if n.endswith(".py")}
    assert set(benches) <= here, sorted(set(benches) - here)
    assert here - set(benches) - helpers == {"security"}, sorted(here - set(benches) - helpers)


def test_each_benchmark_answers_help_without_running_and_knows_its_documented_options():
    """`bench/X.py --help` prints a usage and exits (a benchmark that ignored its arguments ran
    for minutes and rewrote docs/BENCHMARKS.md instead); every option the docstring's command
    line shows is one its parser has."""
    before = {d: read("docs/" + d) for d in ("BENCHMARKS.md", "SECURITY.md")}
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    for b in variable("BENCHES") + ["security"]:
        script = os.path.join("bench", b + ".py")
        r = subprocess.run([sys.executable, script, "--help"], cwd=ROOT, env=env, timeout=60,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True)
        assert r.returncode == 0 and r.stdout.startswith("usage: "), (script, r.stdout[-2000:])
        doc = read(script).split('"""')[1]
        lines = [x for x in doc.splitlines() if x.strip().startswith(".venv/bin/python " + script)]
        assert lines, script
        for line in lines:
            for opt in re.findall(r"(?<![\w-])(--[a-z][\w-]*)", line.split("#")[0]):
                assert re.search(r"(?<![\w-])%s(?![\w-])" % re.escape(opt), r.stdout), (script, opt)
    assert {d: read("docs/" + d) for d in before} == before


def _security(monkeypatch, tmp_path):
    monkeypatch.setattr(sys, "path", list(sys.path))  # (it puts bench/ and tests/attacks/ first)
    spec = importlib.util.spec_from_file_location("security_under_test", os.path.join(ROOT, "bench", "security.py"))
    sec = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(sec)
    doc = tmp_path / "SECURITY.md"
    doc.write_text("# Security\n\n<!-- security:clock:start -->\nold figures\n<!-- security:clock:end -->\n")
    monkeypatch.setattr(sec, "DOC", str(doc))
    monkeypatch.setattr(sec, "netns_ok", lambda: "not here")
    monkeypatch.setattr(sec, "firmware_label", lambda commit=None: "firmware/ of the test")
    monkeypatch.setattr(sec, "sec_clock", lambda a, cmd: sec.write_section("clock", "Clock", cmd, "new figures"))
    monkeypatch.setenv("MAST_ATK_FIRMWARE", sec.FW)
    return sec, doc


def test_security_quick_prints_its_sections_and_leaves_the_published_figures(monkeypatch, tmp_path, capsys):
    """`bench/security.py --quick` (small counts, to try the script; the README offers it) wrote
    its 5,000-case figures over docs/SECURITY.md's 1M-case ones."""
    sec, doc = _security(monkeypatch, tmp_path)
    before = doc.read_text()
    assert sec.main(["--quick", "--only", "clock"]) == 0
    assert doc.read_text() == before
    out = capsys.readouterr().out
    assert "### Clock" in out and "new figures" in out and "--quick" in out
    assert sec.main(["--only", "clock"]) == 0  # without --quick: written
    assert "new figures" in doc.read_text() and "old figures" not in doc.read_text()


def _layout():
    text = read("README.md")
    block = text[text.index("## Layout"):]
    block = block[block.index("```\n") + 4:]
    block = block[:block.index("```")]
    entries, current = {}, None
    for line in block.splitlines():
        if line and not line.startswith(" "):
            current, rest = line.split(None, 1)
            entries[current] = rest
        else:
            entries[current] += " " + line.strip()
    return entries


def test_readme_layout_names_every_directory_and_core_module_and_only_real_ones():
    entries = _layout()
    for name in entries:
        assert name.endswith("/") and os.path.isdir(os.path.join(ROOT, name)), name
    skip = {"__pycache__", "node_modules", "build", "dist"}
    dirs = set()
    for parent in ("", "firmware/", "tests/"):
        for n in os.listdir(os.path.join(ROOT, parent or ".")):
            if os.path.isdir(os.path.join(ROOT, parent, n)) and not n.startswith(".") and n not in skip \
                    and not n.endswith(".egg-info"):
                dirs.add(parent + n + "/")
    dirs -= {"firmware/", "tests/"}  # listed by their subdirectories
    assert dirs <= set(entries), sorted(dirs - set(entries))
    core = set(re.findall(r"(\w+\.py)", entries["firmware/mast/"]))
    here = {n for n in os.listdir(os.path.join(ROOT, "firmware", "mast")) if n.endswith(".py")}
    assert core == here - {"__init__.py"}, (sorted(here - core), sorted(core - here))
    docs = set(re.findall(r"(\w+\.md)", entries["docs/"]))
    assert docs == {n for n in os.listdir(os.path.join(ROOT, "docs")) if n.endswith(".md")}, docs


def test_the_readme_commands_that_run_tests_name_real_files_and_modules():
    text = read("README.md")
    cmds = re.findall(r"`(\.venv/bin/python -m pytest [^`]+)`", text)
    assert len(cmds) >= 2, cmds
    for cmd in cmds:
        words = cmd.split()[3:]
        for i, w in enumerate(words):
            if w.startswith("tests/"):
                assert os.path.exists(os.path.join(ROOT, w)), (cmd, w)
            if i and words[i - 1] == "-k":
                assert os.path.isfile(os.path.join(ROOT, "tests", "core", w + ".py")), (cmd, w)
