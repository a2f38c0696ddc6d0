"""UCI configuration text (OpenWrt's /etc/config/<package>), read without libuci.

The format, as `uci export` writes it and as people edit it:

    # a comment
    config <type> ['<name>']
            option <key> '<value>'
            list <key> '<value>'

There is no well-kept pure-Python UCI reader (pyuci wraps the C libuci, which OpenWrt's
python3 does not ship), so it is read here, by the rules of libuci's own reader (file.c), so
that mastd sees what `uci show` shows:

- Words are bare, 'single-quoted' or "double-quoted"; quoted parts may be glued together
  ('it'\\''s' is "it's"). A backslash outside single quotes takes the next character as it
  is; a backslash at the end of a line (outside single quotes) joins the next line.
  A quoted word may span lines (the newline is part of it).
- `#` outside quotes ends the line, also in the middle of a word (`abc#def` is `abc`).
- `;` outside quotes ends a statement: `option a '1'; option b '2'` are two options.
- A section name given twice names one section: the second block adds to the first (both
  must be of the same type).
- `option key` with no value (or '') sets nothing; `list key ''` adds an empty item.
- The keywords may be shortened to their first letter (c, o, l, p), as libuci allows.

parse(text) -> [Section]; a syntax error raises UciError naming the line.
"""


class UciError(ValueError):
    """A syntax error: str(e) is "<file>:<line>: <message>"."""

    def __init__(self, where, line, message):
        ValueError.__init__(self, "%s:%d: %s" % (where, line, message))
        self.line = line


class Section:
    """One `config` block. name is None for an anonymous section; ref() is how UCI names it
    (the name, or @type[index] counted among sections of its type)."""

    def __init__(self, type_, name, index, line):
        self.type = type_
        self.name = name
        self.index = index
        self.line = line
        self.options = {}  # key -> str (option) or [str] (list)

    def ref(self):
        return self.name if self.name is not None else "@%s[%d]" % (self.type, self.index)

    def __repr__(self):
        return "<Section %s %s %r>" % (self.type, self.ref(), self.options)


_NAME_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")


def _shown(word, longest=24):
    """word quoted for an error, unless it may be a key typed where a name goes (`option
    psk=KEY`, a key on a line of its own): a PSK is 44 characters ending in "=", and the log
    that mastd's errors go to (logread, a remote syslog) must never hold it."""
    if len(word) <= longest and "=" not in word:
        return repr(word)
    return "(not repeated: it may be a key)"


def keyword_shown(word):
    """An unknown keyword quoted, if it may be a misspelt one (letters, as the keywords)."""
    return _shown(word, 10) if word.isalpha() else _shown("=")


_SPACE = " \t\n\r\v\f"  # C's isspace()
_KEYWORDS = {"c": "config", "o": "option", "l": "list", "p": "package"}
_EXPECT = {"config": "config <type> ['<name>']", "option": "option <name> '<value>'",
           "list": "list <name> '<value>'", "package": "package <name>"}


def _lines(text):
    """The file's lines as fgets() gives them: each with its "\\n" (the last maybe without)."""
    out, i = [], 0
    while i < len(text):
        j = text.find("\n", i)
        j = len(text) if j < 0 else j + 1
        out.append(text[i:j])
        i = j
    return out


class _Reader:
    """libuci's parse context (file.c): one statement's line in a buffer that words are
    unquoted into in place. "\\0" is C's NUL: the end of a word, or of what was read."""

    def __init__(self, text, where):
        self.src = _lines(text)
        self.where = where
        self.next_line = 0  # index into src
        self.line = 0  # 1-based number of the last line read
        self.buf = []
        self.pos = 0

    def error(self, message, line=None):
        raise UciError(self.where, line or self.line, message)

    def getln(self, offset):
        """Read the next line into the buffer at offset (what was there from offset is gone)."""
        del self.buf[offset:]
        if self.next_line < len(self.src):
            self.buf.extend(self.src[self.next_line])
            self.next_line += 1
            self.line += 1

    def char(self, i=None):
        i = self.pos if i is None else i
        return self.buf[i] if i < len(self.buf) else "\0"

    def string(self, i):
        """The word that starts at i (up to the next NUL)."""
        out = []
        while i < len(self.buf) and self.buf[i] != "\0":
            out.append(self.buf[i])
            i += 1
        return "".join(out)

    def skip_space(self):
        while self.char() != "\0" and self.char() in _SPACE:
            self.pos += 1

    def backslash(self):
        """After a backslash: False if it ended the line (the next line is joined), else True
        (the character after it is taken as it is)."""
        self.pos += 1
        c = self.char()
        if c in "\0\n" or (c == "\r" and self.char(self.pos + 1) == "\n" and self.char(self.pos + 2) == "\0"):
            self.getln(self.pos)
            return False
        return True

    def quoted(self, target, q):
        """A quoted part, unquoted to target; -> the new target."""
        first = self.line
        self.pos += 1
        while True:
            c = self.char()
            if c == q:
                self.pos += 1
                return target
            if c == "\0":
                self.getln(self.pos)  # the word goes on on the next line
                if self.char() == "\0":
                    self.error("unterminated %s quote" % q, first)
                continue
            if c == "\\" and q == '"' and not self.backslash():
                continue
            self.buf[target] = self.buf[self.pos]
            target += 1
            self.pos += 1

    def word(self):
        """One argument (parse_str and next_arg): -> (its text, True if it ended at a `;`
        that ends the statement)."""
        self.skip_space()
        val = target = self.pos
        if self.char() == ";":
            self.buf[self.pos] = "\0"
            self.pos += 1
            return "", True
        goes_on = True
        while True:
            c = self.char()
            if c in "'\"":
                target = self.quoted(target, c)
            elif c == "#":
                self.buf[self.pos] = "\0"  # the rest of the line is a comment
                break
            elif c == "\0":
                break
            elif c == ";":
                goes_on = False
                break
            else:
                if c == "\\" and not self.backslash():
                    if self.char() == "\0" or self.char() in _SPACE:
                        break
                    continue
                self.buf[target] = self.buf[self.pos]
                target += 1
                self.pos += 1
            if self.char() == "\0" or self.char() in _SPACE:
                break
        if self.char() != "\0" and goes_on:
            self.pos += 1
        if target < len(self.buf):
            self.buf[target] = "\0"
        return self.string(val), False

    def statement(self):
        """The next statement's words ([keyword, arg, ...]) on the current line, or None at
        its end; like strtok(" \\t") for the keyword, then next_arg for each argument."""
        i = self.pos
        while self.char(i) in " \t":
            i += 1
        if self.char(i) == "\0":
            return None
        j = i
        while self.char(j) not in " \t\0":
            j += 1
        kw = "".join(self.buf[i:j])
        first = self.line
        if kw[0] == "#":
            return None
        name = _KEYWORDS.get(kw[0])
        if name is None or kw not in (kw[0], name):
            bare = kw.strip(_SPACE)
            if not bare:  # libuci too refuses a `;` with nothing after it on its line
                self.error("nothing after `;`: remove it, or put a statement after it", first)
            if bare in _KEYWORDS.values() or bare in _KEYWORDS:
                self.error("expected: %s" % _EXPECT[_KEYWORDS.get(bare, bare)], first)
            self.error("unknown keyword %s (config, option or list)" % keyword_shown(bare), first)
        if j >= len(self.buf):
            self.error("expected: %s" % _EXPECT[name], first)
        self.buf[j] = "\0"
        self.pos = j + 1
        args = []
        for _ in range(2 if name in ("config", "option", "list") else 1):
            w, ended = self.word()
            args.append(w)
            if ended:
                break
        extra, _ = self.word()  # assert_eol: also takes a `;` after the last argument
        if extra:
            self.error("too many words: expected: %s" % _EXPECT[name], first)
        while len(args) < 2:
            args.append("")
        return [name, first] + args

    def statements(self):
        """Every statement of the text: (keyword, line, arg1, arg2)."""
        while self.next_line < len(self.src):
            self.pos = 0
            self.getln(0)
            self.skip_space()
            while True:
                st = self.statement()
                if st is None:
                    break
                yield st


def _name_ok(text):
    return bool(text) and set(text) <= _NAME_CHARS


def parse(text, where="config"):
    """The sections of UCI text, in order (a section named twice is one section)."""
    sections, counts, named, cur = [], {}, {}, None
    for kw, lineno, a, b in _Reader(text, where).statements():
        if kw == "package":
            if not a:
                raise UciError(where, lineno, "expected: package <name>")
            continue
        if kw == "config":
            if not a or any(ord(c) < 33 or ord(c) > 126 for c in a):
                raise UciError(where, lineno, "section type %r: use printable characters, no spaces"
                               % a if a else "expected: %s" % _EXPECT["config"])
            if b and not _name_ok(b):
                raise UciError(where, lineno, "section name %s: use only A-Za-z0-9_" % _shown(b))
            if b and b in named:
                cur = named[b]  # libuci: the same section, its options added to
                if cur.type != a:
                    raise UciError(where, lineno, "section %r is config %s on line %d and config %s "
                                   "here; give one of them another name" % (b, cur.type, cur.line, a))
                continue
            idx = counts.get(a, 0)
            counts[a] = idx + 1
            cur = Section(a, b or None, idx, lineno)
            sections.append(cur)
            if b:
                named[b] = cur
        else:  # option, list
            if cur is None:
                raise UciError(where, lineno, "%s outside a config section" % kw)
            if not a:
                raise UciError(where, lineno, "expected: %s" % _EXPECT[kw])
            if not _name_ok(a):
                raise UciError(where, lineno, "option name %s: use only A-Za-z0-9_" % _shown(a))
            if kw == "option":
                if b:  # libuci: an empty value sets nothing
                    cur.options[a] = b
            else:
                old = cur.options.get(a)
                if isinstance(old, str):  # `list` after `option` of the same name: UCI makes a list
                    old = [old]
                cur.options[a] = (old or []) + [b]
    return sections
