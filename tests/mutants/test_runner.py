"""The `make mutants` runner (tests/mutants/run.py) on a tiny tree of its own: a mutant its
tests catch is killed, one they miss survives, one whose text is gone no longer applies, and
a test that fails without any mutant stops the run; plus the shape of the real list."""

import importlib.util
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
RUN = os.path.join(HERE, "run.py")

_spec = importlib.util.spec_from_file_location("mutants_run", RUN)
mutants_run = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(mutants_run)

MOD = "def add(a, b):\n    return a + b\n\n\ndef double(a):\n    return add(a, a)  # twice\n"
TEST = "from mod import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n"


def _tree(tmp_path, mutants, test=TEST):
    root = tmp_path / "tree"
    (root / "firmware").mkdir(parents=True)
    (root / "tests").mkdir()
    (root / "firmware" / "mod.py").write_text(MOD)
    (root / "tests" / "test_mod.py").write_text(test)
    (root / "build").mkdir()
    (root / "build" / "junk.txt").write_text("not copied")
    lst = tmp_path / "mutants.json"
    lst.write_text(json.dumps({"mutants": mutants}))
    return root, lst


def _mutant(id_, old, new, **kw):
    m = {"id": id_, "file": "firmware/mod.py", "old": old, "new": new, "tests": ["tests/test_mod.py"],
         "why": "a test"}
    m.update(kw)
    if old is None:
        del m["old"], m["new"]
    return m


def _run(root, lst, *args):
    r = subprocess.run([sys.executable, RUN, "--root", str(root), "--list", str(lst)] + list(args),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, timeout=300)
    return r.returncode, r.stdout, r.stderr


def test_killed_survived_and_drifted_mutants_are_reported_and_fail_the_run(tmp_path):
    root, lst = _tree(tmp_path, [
        _mutant("minus", "    return a + b", "    return a - b"),
        _mutant("unseen", "    return add(a, a)  # twice", "    return a * 3"),
        _mutant("drifted", "    return a * b", "    return a / b"),
        _mutant("two-edits", None, None, edits=[
            {"old": "def add(a, b):", "new": "def add(a, b, c=1):"},
            {"old": "    return a + b", "new": "    return a + b * c + 1"}]),
    ])
    code, out, err = _run(root, lst, "--json")
    assert code == 1, (out, err)
    doc = json.loads(out)
    status = dict((r["id"], r["status"]) for r in doc["results"])
    assert status == {"minus": "killed", "unseen": "survived", "drifted": "no_longer_applies",
                      "two-edits": "killed"}
    detail = dict((r["id"], r["detail"]) for r in doc["results"])
    assert "test_add" in detail["minus"]
    assert detail["drifted"] == "no longer applies: firmware/mod.py: 'return a * b' not found"
    assert doc["counts"] == {"killed": 2, "survived": 1, "no_longer_applies": 1} and doc["ok"] is False
    # the scratch copies are gone; the tree itself is untouched
    assert not os.path.exists(os.path.join(str(root), "build", "mutants"))
    assert (root / "firmware" / "mod.py").read_text() == MOD


def test_a_run_where_every_mutant_is_killed_exits_0_and_says_so(tmp_path):
    root, lst = _tree(tmp_path, [_mutant("minus", "    return a + b", "    return a - b")])
    code, out, err = _run(root, lst, "--keep")
    assert code == 0, (out, err)
    assert "killed   cpython: tests/test_mod.py::test_add" in out
    # --keep leaves the copies: the mutated one, and the snapshot without build output
    kept = root / "build" / "mutants"
    assert "return a - b" in (kept / "minus" / "firmware" / "mod.py").read_text()
    assert (kept / "_tree" / "firmware" / "mod.py").read_text() == MOD
    assert not (kept / "_tree" / "build").exists()
    assert out.strip().splitlines()[-1].startswith("mutants: 1 killed of 1 in ")


def test_tests_that_fail_without_any_mutant_stop_the_run(tmp_path):
    root, lst = _tree(tmp_path, [_mutant("minus", "    return a + b", "    return a - b")],
                      test="def test_broken():\n    assert False\n")
    code, out, err = _run(root, lst)
    assert code == 1
    assert "the tests fail without any mutant" in err and "killed" not in out


def test_a_mutant_whose_tests_all_skip_here_is_not_counted_as_killed_or_survived(tmp_path):
    skipping = "import pytest\n\n\ndef test_add():\n    pytest.skip('no board here')\n"
    root, lst = _tree(tmp_path, [_mutant("minus", "    return a + b", "    return a - b")], test=skipping)
    code, out, err = _run(root, lst, "--json")
    assert code == 1, (out, err)
    (r,) = json.loads(out)["results"]
    assert r["status"] == "not_tested" and "skipped" in r["detail"], r


def test_check_says_which_mutants_no_longer_apply_without_running_tests(tmp_path):
    root, lst = _tree(tmp_path, [
        _mutant("minus", "    return a + b", "    return a - b"),
        _mutant("twice", "a", "b")])  # found many times: ambiguous
    code, out, err = _run(root, lst, "--check")
    assert code == 1
    lines = out.splitlines()
    assert lines[0].split()[:2] == ["applies", "minus"]
    assert lines[1].split()[:2] == ["no_longer_applies", "twice"] and "found " in lines[1]


def test_a_mutant_that_leaves_its_file_not_compiling_no_longer_applies(tmp_path):
    # (one whose old text lost a line to a later change left that line orphaned: its tests
    # failed on an IndentationError and it counted as killed, proving nothing)
    root, lst = _tree(tmp_path, [
        _mutant("orphan", "def double(a):\n", "def double(a):\n    pass\n  "),
        _mutant("fine", "    return a + b", "    return a - b")])
    code, out, err = _run(root, lst, "--check")
    assert code == 1
    lines = out.splitlines()
    assert lines[0].split()[:2] == ["no_longer_applies", "orphan"]
    assert "firmware/mod.py: the mutant does not compile (" in lines[0]
    assert lines[1].split()[:2] == ["applies", "fine"]


def test_a_bad_list_or_an_unknown_id_is_a_clear_error(tmp_path):
    root, lst = _tree(tmp_path, [_mutant("minus", "    return a + b", "    return a - b")])
    code, out, err = _run(root, lst, "nosuch")
    assert code == 1 and err.startswith("mutants: no mutant nosuch in ") and "Traceback" not in err
    lst.write_text(json.dumps({"mutants": [_mutant("x", "same", "same")]}))
    code, out, err = _run(root, lst)
    assert code == 1 and "old and new are the same text" in err and "Traceback" not in err
    lst.write_text("{not json")
    code, out, err = _run(root, lst)
    assert code == 1 and err.startswith("mutants: cannot read ") and err.rstrip().endswith("fix the list")


def test_the_projects_list_is_well_formed_and_names_files_and_tests_that_exist():
    root = os.path.dirname(os.path.dirname(HERE))
    mutants = mutants_run.load(mutants_run.LIST)
    assert len(mutants) >= 40
    core = set(os.path.splitext(n)[0] for n in os.listdir(os.path.join(root, "tests", "core")))
    for m in mutants:
        for e in m["edits"]:
            assert os.path.isfile(os.path.join(root, e["file"])), (m["id"], e["file"])
        for t in m["tests"]:
            assert os.path.isfile(os.path.join(root, t.split("::")[0])), (m["id"], t)
        for mod in m["micropython"]:
            assert mod in core and mod.startswith("test_"), (m["id"], mod)
    # every deliberate bug of issue 17's table is in it
    ids = set(m["id"] for m in mutants)
    for need in ("cookie-tag-unchecked", "cookie-age-unchecked", "cookie-not-bound-to-source", "keys-swapped",
                 "k-init-label-changed", "replay-skipped-bits-kept", "replay-big-jump-keeps-bitmap",
                 "probe-fail-one-late", "flash-check-missing-hash-verified"):
        assert need in ids, need
