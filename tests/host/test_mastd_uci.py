"""mastd reads UCI text as libuci does: what `uci show mast` shows of a file is what mastd
parses from it. Each expected text below was observed with libuci HEAD (openwrt/uci
66127cd, December 2025) built from source: `uci -c DIR show mast` of the same file."""

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from mastd import settings, uci  # noqa: E402  (firmware/ is on sys.path: tests/conftest.py)

PSK = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="


def show(text):
    """What mastd parsed, in the form `uci show mast` prints."""
    out = []
    for s in uci.parse(text, "mast"):
        out.append("mast.%s=%s" % (s.ref(), s.type))
        for k, v in s.options.items():
            vals = v if isinstance(v, list) else [v]
            out.append("mast.%s.%s=%s" % (s.ref(), k, " ".join(
                "'%s'" % x.replace("'", "'\\''") for x in vals)))
    return "\n".join(out)


# (a) `#` outside quotes ends the line, also in the middle of a word
def test_a_hash_inside_a_bare_word_starts_a_comment_as_in_libuci():
    text = ("config mast 'global'\n"
            "\toption name 'r1.example' # trailing comment\n"
            "\toption psk abc#def\n"
            "\toption tun 'mast'#0\n"
            "\toption a a\"b#c\"d\n")
    # observed with libuci HEAD:
    assert show(text) == ("mast.global=mast\n"
                          "mast.global.name='r1.example'\n"
                          "mast.global.psk='abc'\n"
                          "mast.global.tun='mast'\n"
                          "mast.global.a='ab#cd'")


# (b) `;` ends a statement
def test_b_a_semicolon_separates_statements_as_in_libuci():
    text = ("config mast 'global'\n"
            "\toption name 'r1.example'; option port '7000'\n"
            "\toption tun 'x' ; option profile fast\n"
            "\toption masquerade 0;option mode redundant\n"  # libuci drops what follows `bare;`
            "\toption keying psk\n")
    # observed with libuci HEAD:
    assert show(text) == ("mast.global=mast\n"
                          "mast.global.name='r1.example'\n"
                          "mast.global.port='7000'\n"
                          "mast.global.tun='x'\n"
                          "mast.global.profile='fast'\n"
                          "mast.global.masquerade='0'\n"
                          "mast.global.keying='psk'")


def test_b_a_semicolon_with_nothing_after_it_is_refused_as_by_libuci():
    # libuci HEAD: "Parse error (invalid command) at line 2"
    with pytest.raises(uci.UciError) as e:
        uci.parse("config mast 'global'\n\toption name 'x';\n\toption port 1\n", "f")
    assert str(e.value) == "f:2: nothing after `;`: remove it, or put a statement after it"


# (c) a section name given twice is one section
def test_c_a_section_named_twice_is_merged_as_in_libuci():
    text = ("config mast global\n"
            "\toption name 'a'\n"
            "config peer x\n"
            "config mast global\n"
            "\toption port '1'\n"
            "\toption name 'b'\n")
    # observed with libuci HEAD:
    assert show(text) == ("mast.global=mast\n"
                          "mast.global.name='b'\n"
                          "mast.global.port='1'\n"
                          "mast.x=peer")


def test_c_a_section_named_twice_reaches_mastd_as_one_config_mast():
    s = settings.from_uci_text("config mast 'global'\n\toption name 'r1.example'\n"
                               "config mast 'global'\n\toption port '7000'\n", "f")
    assert (s.core["name"], s.core["port"]) == ("r1.example", 7000)


# (d) an option without a value sets nothing; a list item without one is ''
def test_d_an_option_without_a_value_is_ignored_as_in_libuci():
    text = ("config peer 'srv'\n"
            "\toption name\n"
            "\toption port '7000'\n"
            "\toption port\n"
            "\toption dns ''\n"
            "\tlist allowed '10.0.0.0/8'\n"
            "\tlist allowed\n")
    # observed with libuci HEAD:
    assert show(text) == ("mast.srv=peer\n"
                          "mast.srv.port='7000'\n"
                          "mast.srv.allowed='10.0.0.0/8' ''")


# (e) backslash and newline
def test_e_backslash_newline_inside_quotes_is_read_as_in_libuci():
    text = ("config mast 'global'\n"
            "\toption name 'r1.\\\n"
            "example'\n"
            "\toption a \"x\\\n"
            "y\"\n"
            "\toption b x\\\n"
            "y\n"
            "\toption c \"x\n"
            "y\"\n")
    # observed with libuci HEAD: inside '...' the backslash and the newline stay; inside "..."
    # and outside quotes a backslash at the end of a line joins the next one
    assert show(text) == ("mast.global=mast\n"
                          "mast.global.name='r1.\\\nexample'\n"
                          "mast.global.a='xy'\n"
                          "mast.global.b='xy'\n"
                          "mast.global.c='x\ny'")


def test_e_an_unterminated_quote_names_the_line_it_opened_on():
    # libuci HEAD: "Parse error (EOF with unterminated ')"
    with pytest.raises(uci.UciError) as e:
        uci.parse("config mast 'global'\n\toption name 'abc\n\toption port 1\n\n", "f")
    assert str(e.value) == "f:2: unterminated ' quote"


def test_mastd_check_reads_a_file_as_libuci_does(tmp_path):
    cfg = tmp_path / "mast"
    cfg.write_text("config mast 'global'\n\toption name 'r1.example'; option port '7000'\n"
                   "\toption tun\n"
                   "config peer 'srv'\n\toption psk '%s'#key\n\tlist addresses '192.0.2.1'\n"
                   "config mast 'global'\n\toption profile fast\n" % PSK)
    os.chmod(cfg, 0o600)
    r = subprocess.run([sys.executable, "-m", "mastd", "--check", "--config", str(cfg)],
                       capture_output=True, text=True, timeout=30,
                       env=dict(os.environ, PYTHONPATH=os.path.join(ROOT, "firmware")))
    assert (r.returncode, r.stdout, r.stderr) == (0, "mastd: %s is valid\n" % cfg, "")
