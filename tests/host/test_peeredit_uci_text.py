"""mastctl's edits of /etc/config/mast (mastd/peeredit.py) read the file as mastd does (uci.py,
libuci's rules). Its own scan, word by word on the lines that start with `config` or `option
name`, and str.splitlines() for the lines, disagreed with mastd on text libuci takes:

- `option name 'x'; option psk '...'` on one line (docs/MASTD.md's own example of `;`): the
  peer mastd ran was "not in" the file for mastctl peer remove;
- a quoted name over two lines (a backslash before the newline): every remove and add failed,
  "unterminated quote";
- the keywords shortened (`c peer 'b7_example'`, `o name ...`): the section was not seen as
  taken, so mastctl peer add wrote a second block of that name, which libuci reads as the same
  section: the other peer was gone, the new one holding its section;
- a line break other than "\\n" in a comment (U+2028, a form feed, a lone CR): splitlines()
  cut the comment there, and the file was written back with the rest of it as a line of its
  own, a bare word libuci refuses: mastd would not start on it again."""

import pytest

from mastd import peeredit, settings, uci

PSK = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
PSK2 = "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8="
HEAD = "config mast 'global'\n\toption name 'server.example'\n\n"


def peers(path):
    """{peer: psk} as mastd reads the file (bytes decoded: no newline translation)."""
    conf = settings.from_uci_text(path.read_bytes().decode(), str(path))
    return dict((n, p["psk"]) for n, p in conf.core["peers"].items())


def test_a_peer_whose_name_shares_its_line_with_another_option_is_removed(tmp_path):
    path = tmp_path / "mast"
    path.write_text(HEAD + "config peer 'one'\n\toption name 'one.example'; option psk '%s'\n\n"
                    "config peer 'two'\n\toption name 'two.example'\n\toption psk '%s'\n" % (PSK, PSK2))
    assert peers(path) == {"one.example": PSK, "two.example": PSK2}
    peeredit.remove_peer(str(path), "one.example")
    assert peers(path) == {"two.example": PSK2}
    peeredit.remove_peer(str(path), "two.example")
    assert peers(path) == {}


def test_a_quoted_name_over_two_lines_is_read_and_its_peer_removed_and_others_added(tmp_path):
    path = tmp_path / "mast"
    path.write_text(HEAD + "config peer 'c'\n\toption psk '%s'\n\toption name \"three.\\\nexample\"\n\n"
                    "config peer 'd'\n\toption name 'four.example'\n\toption psk '%s'\n" % (PSK, PSK2))
    assert peers(path) == {"three.example": PSK, "four.example": PSK2}
    assert peeredit.add_peer(str(path), "five.example", {"psk": PSK2}) == "mast.five_example"
    peeredit.remove_peer(str(path), "three.example")
    assert peers(path) == {"four.example": PSK2, "five.example": PSK2}


def test_a_section_written_with_shortened_keywords_is_taken_and_removed_whole(tmp_path):
    path = tmp_path / "mast"
    path.write_text(HEAD + "c peer 'b7_example'\n\to name 'other.example'\n\to psk '%s'\n" % PSK)
    assert peers(path) == {"other.example": PSK}
    assert peeredit.add_peer(str(path), "b7.example", {"psk": PSK2}) == "mast.b7_example_2"
    assert peers(path) == {"other.example": PSK, "b7.example": PSK2}
    peeredit.remove_peer(str(path), "other.example")
    assert peers(path) == {"b7.example": PSK2}
    assert b"other.example" not in path.read_bytes() and PSK.encode() not in path.read_bytes()


@pytest.mark.parametrize("brk", ["\u2028", "\x0c", "\x85", "\r"])
def test_a_comment_holding_a_line_break_other_than_newline_is_written_back_as_it_was(tmp_path, brk):
    path = tmp_path / "mast"
    head = "# copied from the wiki:%s see the page for more\n" % brk
    path.write_text(head + HEAD + "config peer 'a'\n\toption name 'a.example'\n\toption psk '%s'\n" % PSK,
                    newline="")
    peeredit.add_peer(str(path), "b.example", {"psk": PSK2})
    assert peers(path) == {"a.example": PSK, "b.example": PSK2}
    peeredit.remove_peer(str(path), "a.example")
    assert peers(path) == {"b.example": PSK2}
    with open(str(path), newline="") as f:
        assert f.read().startswith(head + HEAD)


def test_a_crlf_file_keeps_its_line_ends_where_it_was_not_edited(tmp_path):
    path = tmp_path / "mast"
    text = (HEAD + "config peer 'a'\n\toption name 'a.example'\n\toption psk '%s'\n" % PSK).replace("\n", "\r\n")
    path.write_bytes(text.encode())
    peeredit.add_peer(str(path), "b.example", {"psk": PSK2})
    assert path.read_bytes().startswith(text.encode())
    assert peers(path) == {"a.example": PSK, "b.example": PSK2}
    assert [s.name for s in uci.parse(path.read_bytes().decode())] == ["global", "a", "b_example"]
