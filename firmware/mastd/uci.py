"""UCI configuration text (OpenWrt's /etc/config/<package>), read without libuci.

The format, as `uci export` writes it and as people edit it:

    # a comment
    config <type> ['<name>']
            option <key> '<value>'
            list <key> '<value>'

Words are bare, 'single-quoted' or "double-quoted"; quoted words may be glued together
('it'\\''s' is "it's"). A backslash escapes the next character outside single quotes.
There is no well-kept pure-Python UCI reader (pyuci wraps the C libuci, which OpenWrt's
python3 does not ship), and the format is this small, so it is read here.

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


def _words(text, where, lineno):
    """The words of one line, comments dropped; quotes and escapes resolved."""
    words, cur, in_word, i, n = [], [], False, 0, len(text)
    while i < n:
        c = text[i]
        if c in " \t\r":
            if in_word:
                words.append("".join(cur))
                cur, in_word = [], False
            i += 1
        elif c == "#" and not in_word:
            break
        elif c in "'\"":
            j = i + 1
            while True:
                if j >= n:
                    raise UciError(where, lineno, "unterminated %s quote" % c)
                if text[j] == c:
                    break
                if c == '"' and text[j] == "\\" and j + 1 < n:
                    j += 1
                cur.append(text[j])
                j += 1
            in_word = True
            i = j + 1
        elif c == "\\":
            if i + 1 < n:
                cur.append(text[i + 1])
            in_word = True
            i += 2
        else:
            cur.append(c)
            in_word = True
            i += 1
    if in_word:
        words.append("".join(cur))
    return words


def parse(text, where="config"):
    """The sections of UCI text, in order."""
    sections, counts, cur = [], {}, None
    for lineno, line in enumerate(text.splitlines(), 1):
        w = _words(line, where, lineno)
        if not w:
            continue
        kw = w[0]
        if kw == "package":
            continue
        if kw == "config":
            if len(w) not in (2, 3):
                raise UciError(where, lineno, "expected: config <type> ['<name>']")
            if len(w) == 3 and (not w[2] or not set(w[2]) <= _NAME_CHARS):
                raise UciError(where, lineno, "section name %r: use only A-Za-z0-9_" % w[2])
            idx = counts.get(w[1], 0)
            counts[w[1]] = idx + 1
            cur = Section(w[1], w[2] if len(w) == 3 else None, idx, lineno)
            sections.append(cur)
        elif kw in ("option", "list"):
            if cur is None:
                raise UciError(where, lineno, "%s outside a config section" % kw)
            if len(w) != 3:
                raise UciError(where, lineno, "expected: %s <name> '<value>'" % kw)
            key, value = w[1], w[2]
            if not key or not set(key) <= _NAME_CHARS:
                raise UciError(where, lineno, "option name %r: use only A-Za-z0-9_" % key)
            if kw == "option":
                cur.options[key] = value
            else:
                old = cur.options.get(key)
                if isinstance(old, str):  # `list` after `option` of the same name: UCI makes a list
                    old = [old]
                cur.options[key] = (old or []) + [value]
        else:
            raise UciError(where, lineno, "unknown keyword %r (config, option or list)" % kw)
    names = {}
    for s in sections:
        if s.name is not None:
            if s.name in names:
                raise UciError(where, s.line, "section %r defined twice (also line %d)"
                               % (s.name, names[s.name]))
            names[s.name] = s.line
    return sections
