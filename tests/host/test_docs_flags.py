"""Every `mast`, `mastd` and `mastctl` command line in README.md and docs/*.md names
subcommands and options the argparse definitions have: in a fenced or indented code block, or
an inline code span, each `mast SUB [ACTION] ... --flag` is walked down the parser's subcommands and each
option must be one of that level's or its parents'; a word where a subcommand goes must be one,
and a positional with choices must take one of them (`mast maintenance on|off`). (The options'
values are not checked.)"""

import argparse
import glob
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
for p in (os.path.join(ROOT, "firmware"), os.path.join(ROOT, "host-tools")):
    if p not in sys.path:
        sys.path.insert(0, p)

from mast_tools import cli  # noqa: E402
from mastd import ctl, main as mastd_main  # noqa: E402

PARSERS = {"mast": cli.build_parser, "mastd": mastd_main.build_parser, "mastctl": ctl.build_parser}
DOCS = [os.path.join(ROOT, "README.md")] + sorted(glob.glob(os.path.join(ROOT, "docs", "*.md")))


def _levels(parser):
    opts, subs = set(), {}
    for a in parser._actions:
        if isinstance(a, argparse._SubParsersAction):
            subs.update(a.choices)
        else:
            opts.update(a.option_strings)
    return opts, subs


def _commands(text):
    """(command line, where) of each mast/mastd/mastctl command in fenced blocks and code spans."""
    out = []
    fenced = re.findall(r"^```[^\n]*\n(.*?)^```", text, re.S | re.M)
    for block in fenced:
        for line in block.splitlines():
            out.extend((c, line) for c in _split(line.split(" #")[0]))
    prose = re.sub(r"^```[^\n]*\n.*?^```", "", text, flags=re.S | re.M)
    for line in re.findall(r"^    (\S.*)$", prose, re.M):  # indented code blocks
        out.extend((c, line) for c in _split(line.split(" #")[0]))
    for para in re.split(r"\n\s*\n", prose):
        spans = para.split("`")[1::2]
        for span in spans:
            out.extend((c, span) for c in _split(" ".join(span.split())))
    return out


def _split(line):
    """The commands of one line: split on pipes and && (with spaces around them)."""
    cmds = []
    for part in re.split(r" \| | && |; ", line):
        words = part.strip().split()
        if words and words[0] in PARSERS and len(words) > 1 and not words[1].endswith(":"):
            cmds.append(words)  # ("mast console: ..." is a message the command prints)
    return cmds


def _positionals(parser):
    return [a for a in parser._actions if not a.option_strings
            and not isinstance(a, argparse._SubParsersAction)]


def _placeholder(w):
    """A word that stands for a value (KEY, on|off, <name>, ...) rather than being one."""
    return w.isupper() or "|" in w or w in ("...", "-") or w.startswith(("<", "$"))


def _check(words):
    """None if the command's subcommands, options and positional choices exist, else what does
    not. At a level with subcommands the first word that is neither an option nor an option's
    value must be one of them (`mast config --port P exprot` is caught); a positional with
    choices (`mast maintenance on|off`, `mastctl uplink NAME up|down`) must take one."""
    parser = PARSERS[words[0]]()
    opts, subs = _levels(parser)
    known = set(opts)
    actions = dict((o, a) for a in parser._actions for o in a.option_strings)
    pos = _positionals(parser)
    if subs and not words[1].startswith("-") and words[1].strip("[]{},") not in subs:
        return "no subcommand %s" % words[1]  # the word after `mast` (or `mastctl`) is one
    skip = False
    for w in words[1:]:
        w = w.strip("[]{},")
        if skip:  # an option's value
            skip = False
            continue
        if not w or w == "-" or w.startswith("-") and not re.match(r"^--?[A-Za-z]", w):
            continue
        if w.startswith("-"):
            flag = w.split("=")[0]
            if flag not in known:
                return "no option %s" % flag
            skip = actions[flag].nargs != 0 and "=" not in w
        elif w in subs:
            parser = subs[w]
            opts, subs = _levels(parser)
            known |= opts
            actions.update((o, a) for a in parser._actions for o in a.option_strings)
            pos = _positionals(parser)
        elif subs and not _placeholder(w):
            return "no subcommand %s" % w
        elif pos:
            a = pos[0]
            if a.choices and not _placeholder(w) and w not in a.choices:
                return "%s: not one of %s" % (w, ", ".join(sorted(a.choices)))
            if a.nargs not in ("*", "+", argparse.REMAINDER):
                pos = pos[1:]
    return None


def test_every_command_line_in_the_docs_names_options_the_parsers_have():
    bad, seen = [], 0
    for path in DOCS:
        with open(path) as f:
            for words, where in _commands(f.read()):
                seen += 1
                why = _check(words)
                if why:
                    bad.append("%s: %s: %s" % (os.path.basename(path), " ".join(words), why))
    assert not bad, "\n".join(bad)
    assert seen >= 60, seen


def test_the_check_finds_a_flag_or_a_subcommand_that_does_not_exist():
    assert _check("mast config --port P set a.b 1 --commit --apply".split()) is None
    assert _check("mast flash --board x --no-such-flag".split()) == "no option --no-such-flag"
    assert _check("mast config --port P export --commit".split()) == "no option --commit"
    assert _check("mast frobnicate --port P".split()) == "no subcommand frobnicate"
    assert _check("mastctl peer add b7 --psk-file - --allowed 10.0.0.0/8".split()) is None
    assert _check("mastd --check --config /etc/config/mast".split()) is None
    assert _check("mast config --port P exprot -o x.json".split()) == "no subcommand exprot"
    assert _check("mast maintenance of --port P".split()) == "of: not one of off, on"
    assert _check("mastctl uplink lte dwn".split()) == "dwn: not one of down, up"
    assert _check("mastctl uplink NAME up|down".split()) is None
    assert _check("mast config --port /dev/ttyUSB0 get uplinks".split()) is None
