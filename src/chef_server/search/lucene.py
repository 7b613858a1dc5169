"""erchef's rewriting of a user's Lucene query into a query on the `content` field.

erchef parses `q` with a PEG grammar (chef_lucene.peg) and copies it through unchanged except:
- `field:arg` becomes `content:field__=__arg` (arg a term, a fuzzy term, a phrase or a group),
- `field:"a b"` becomes `content:"field__=__a b"`,
- `field:[a TO b]` becomes `content:[field__=__a TO field__=__b]` (also `{}`); an open end `*`
  becomes the empty value below or `\\ufff0` above; `[* TO *]` becomes `content:field__=__*`,
- spaces around a boolean operator (`AND`, `OR`, `&&`, `||`) become exactly one.
A query the grammar does not match in full is a bad query (HTTP 400). This module implements the
same grammar with the same ordered-choice, no-backtracking semantics, so it accepts and rejects
the same queries; notably only ASCII letters, digits and `_ . * / ? @ + -` make up terms,
escapes are allowed only before `[ ] \\ / " ! ( ) { } ^ ~ * ? :`, and a query that is `*:*`
must be only that.
"""

from __future__ import annotations

import string
import sys

_ALNUM = frozenset(string.ascii_letters + string.digits)
_START = _ALNUM | frozenset("_.*/")  # may begin a term
_CONTINUE = _ALNUM | frozenset("*?@_+./-")  # may follow inside a term
_ESCAPABLE = frozenset('[]\\/"!(){}^~*?:')
_KEYWORDS = ("AND", "OR", "NOT")
_BOOL_OPS = ("AND", "&&", "OR", "||")

# The grammar recurses once per boolean operator (the right-hand side is a whole query); a query
# with a few hundred `OR`s needs more than Python's default 1000 frames.
_RECURSION_LIMIT = 20000

Result = tuple[int, str] | None  # (end position, output) or no match


def escape(value: str) -> str:
    """`value` as one term of a query (`"name:" + escape(value)` finds `name__=__value`), with a
    backslash before each character the grammar lets one escape. ValueError for a value no term
    can match: empty, holding characters outside terms (space, `&`, `|`, `=` ...), starting with
    `@ + -`, or a bare `AND`/`OR`/`NOT` (not followed by a term's first character)."""
    escaped = "".join("\\" + c if c in _ESCAPABLE else c for c in value)
    after_keyword = next((len(k) for k in _KEYWORDS if value.startswith(k)), 0)
    first = value[after_keyword:after_keyword + 1]
    if not value or any(c not in _CONTINUE | _ESCAPABLE for c in value) or not first or \
            first not in _START | _ESCAPABLE:
        raise ValueError(f"no search term matches {value!r} exactly")
    return escaped


def unescape(term: str) -> str:
    """The value a term stands for: its escapes resolved."""
    out, i = [], 0
    while i < len(term):
        if term[i] == "\\" and i + 1 < len(term) and term[i + 1] in _ESCAPABLE:
            i += 1
        out.append(term[i])
        i += 1
    return "".join(out)


def rewrite(query: str) -> str | None:
    """The query erchef sends to the search engine for the user's `query`, or None when erchef
    rejects it as a bad query."""
    if sys.getrecursionlimit() < _RECURSION_LIMIT:
        sys.setrecursionlimit(_RECURSION_LIMIT)
    try:
        parsed = _Parser(query).query(0)
    except RecursionError:
        return None
    if parsed is None or parsed[0] != len(query):
        return None
    return parsed[1]


class _Parser:
    """One rule per method, each returning (end, output) or None; results are memoised per
    (rule, position), as a packrat parser does, so nested groups stay linear."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.memo: dict[tuple[str, int], Result] = {}

    # --- helpers ---------------------------------------------------------------------------

    def _memo(self, rule: str, pos: int, parse) -> Result:  # type: ignore[no-untyped-def]
        key = (rule, pos)
        if key not in self.memo:
            self.memo[key] = parse(pos)
        return self.memo[key]

    def _literal(self, pos: int, *options: str) -> Result:
        for option in options:
            if self.text.startswith(option, pos):
                return pos + len(option), option
        return None

    def _first(self, pos: int, *rules) -> Result:  # type: ignore[no-untyped-def]
        for rule in rules:
            found = rule(pos)
            if found is not None:
                return found
        return None

    def _text(self, start: int, end: int) -> Result:
        return end, self.text[start:end]

    # --- lexical rules ---------------------------------------------------------------------

    def _escape(self, pos: int) -> int | None:
        t = self.text
        if pos + 1 < len(t) and t[pos] == "\\" and t[pos + 1] in _ESCAPABLE:
            return pos + 2
        return None

    def _char_or_escape(self, pos: int, allowed: frozenset[str]) -> int | None:
        if pos < len(self.text) and self.text[pos] in allowed:
            return pos + 1
        return self._escape(pos)

    def letters(self, pos: int) -> Result:
        """valid_letter+: characters that may start a term, then characters that may continue one."""
        end = self._char_or_escape(pos, _START)
        if end is None:
            return None
        while (nxt := self._char_or_escape(end, _CONTINUE)) is not None:
            end = nxt
        return self._text(pos, end)

    def keyword(self, pos: int) -> Result:
        return self._literal(pos, *_KEYWORDS)

    def space(self, pos: int) -> Result:
        end = pos
        while end < len(self.text) and self.text[end] in " \t":
            end += 1
        return self._text(pos, end) if end > pos else None

    def term(self, pos: int) -> Result:
        """A keyword may begin a term (`ORACLE`) but is not one by itself."""
        def parse(pos: int) -> Result:
            after = self.keyword(pos)
            if after is not None:
                rest = self.letters(after[0])
                return self._text(pos, rest[0]) if rest is not None else None
            return self.letters(pos)
        return self._memo("term", pos, parse)

    def field_name(self, pos: int) -> Result:
        return None if self.keyword(pos) is not None else self.letters(pos)

    def _terms(self, pos: int) -> Result:
        """term (space term)*"""
        first = self.term(pos)
        if first is None:
            return None
        end = first[0]
        while (gap := self.space(end)) is not None and (nxt := self.term(gap[0])) is not None:
            end = nxt[0]
        return self._text(pos, end)

    def string(self, pos: int) -> Result:
        """A phrase: terms between double quotes, separated by spaces."""
        def parse(pos: int) -> Result:
            if self._literal(pos, '"') is None:
                return None
            inner = self._terms(pos + 1)
            if inner is None or self._literal(inner[0], '"') is None:
                return None
            return self._text(pos, inner[0] + 1)
        return self._memo("string", pos, parse)

    def _fuzzy_param(self, pos: int) -> int | None:
        """[0-9]+ ('.' [0-9])?"""
        t, end = self.text, pos
        while end < len(t) and t[end].isascii() and t[end].isdigit():
            end += 1
        if end == pos:
            return None
        if end + 1 < len(t) and t[end] == "." and t[end + 1].isascii() and t[end + 1].isdigit():
            end += 2
        return end

    def _term_or_string(self, pos: int) -> Result:
        return self._first(pos, self.term, self.string)

    def fuzzy_op(self, pos: int) -> Result:
        def parse(pos: int) -> Result:
            base = self._term_or_string(pos)
            if base is None or self._literal(base[0], "~") is None:
                return None
            end = self._fuzzy_param(base[0] + 1) or base[0] + 1
            return self._text(pos, end)
        return self._memo("fuzzy_op", pos, parse)

    def boost_op(self, pos: int) -> Result:
        base = self._term_or_string(pos)
        if base is None or self._literal(base[0], "^") is None:
            return None
        end = self._fuzzy_param(base[0] + 1)
        return self._text(pos, end) if end is not None else None

    # --- rules that rewrite ----------------------------------------------------------------

    def field(self, pos: int) -> Result:
        """name:arg -> content:name__=__arg"""
        def parse(pos: int) -> Result:
            name = self.field_name(pos)
            if name is None or self._literal(name[0], ":") is None:
                return None
            arg = self._first(name[0] + 1, self.fuzzy_op, self.term, self.group, self.string)
            if arg is None:
                return None
            return arg[0], f"content:{name[1]}__=__{arg[1]}"
        return self._memo("field", pos, parse)

    def field_phrase(self, pos: int) -> Result:
        """name:"a b" -> content:"name__=__a b\""""
        def parse(pos: int) -> Result:
            name = self.field_name(pos)
            if name is None or self._literal(name[0], ':"') is None:
                return None
            phrase = self._terms(name[0] + 2)
            if phrase is None or self._literal(phrase[0], '"') is None:
                return None
            return phrase[0] + 1, f'content:"{name[1]}__=__{phrase[1]}"'
        return self._memo("field_phrase", pos, parse)

    def _range_entry(self, pos: int) -> Result:
        return self._first(pos, lambda p: self._literal(p, "*"), self.letters)

    def field_range(self, pos: int) -> Result:
        """name:[a TO b] -> content:[name__=__a TO name__=__b], with open ends."""
        def parse(pos: int) -> Result:
            name = self.field_name(pos)
            if name is None or self._literal(name[0], ":") is None:
                return None
            for opening, closing in (("[", "]"), ("{", "}")):
                at = name[0] + 1
                if self._literal(at, opening) is None:
                    continue
                low = self._range_entry(at + 1)
                if low is None or self._literal(low[0], " TO ") is None:
                    continue
                high = self._range_entry(low[0] + 4)
                if high is None or self._literal(high[0], closing) is None:
                    continue
                return high[0] + 1, _range(name[1], opening, low[1], high[1], closing)
            return None
        return self._memo("field_range", pos, parse)

    def group(self, pos: int) -> Result:
        def parse(pos: int) -> Result:
            if self._literal(pos, "(") is None:
                return None
            inner = self.query(pos + 1)
            if inner is None or self._literal(inner[0], ")") is None:
                return None
            return inner[0] + 1, f"({inner[1]})"
        return self._memo("group", pos, parse)

    def binary_op(self, pos: int) -> Result:
        """lhs op rhs, with exactly one space either side of the operator; rhs is the rest."""
        lhs = self._first(pos, self.group, self.field_phrase, self.field, self.field_range, self.term)
        if lhs is None:
            return None
        at = (self.space(lhs[0]) or lhs)[0]
        op = self._literal(at, *_BOOL_OPS)
        if op is None:
            return None
        at = (self.space(op[0]) or op)[0]
        rhs = self.query(at)
        if rhs is None:
            return None
        return rhs[0], f"{lhs[1]} {op[1]} {rhs[1]}"

    def _prefixed(self, pos: int, prefix_end: int, *rules) -> Result:  # type: ignore[no-untyped-def]
        operand = self._first(prefix_end, *rules)
        if operand is None:
            return None
        return operand[0], self.text[pos:prefix_end] + operand[1]

    def not_op(self, pos: int) -> Result:
        """`NOT x` or `!x` / `! x`"""
        if self._literal(pos, "NOT") is not None and (gap := self.space(pos + 3)) is not None:
            prefix_end = gap[0]
        elif self._literal(pos, "!") is not None:
            prefix_end = (self.space(pos + 1) or (pos + 1, ""))[0]
        else:
            return None
        return self._prefixed(pos, prefix_end, self.group, self.field, self.field_range, self.term, self.string)

    def required_op(self, pos: int) -> Result:
        if self._literal(pos, "+") is None:
            return None
        return self._prefixed(pos, pos + 1, self.term, self.string)

    def prohibited_op(self, pos: int) -> Result:
        if self._literal(pos, "-") is None:
            return None
        return self._prefixed(pos, pos + 1, self.field, self.field_range, self.term, self.string)

    def operation(self, pos: int) -> Result:
        return self._first(pos, self.binary_op, self.not_op, self.required_op, self.prohibited_op,
                           self.fuzzy_op, self.boost_op)

    def expression(self, pos: int) -> Result:
        return self._memo("expression", pos, lambda p: self._first(
            p, self.operation, self.group, self.field_phrase, self.field, self.field_range, self.term, self.string))

    def query(self, pos: int) -> Result:
        """`*:*`, or any run of expressions and spaces (possibly none)."""
        def parse(pos: int) -> Result:
            star = self._literal(pos, "*:*")
            if star is not None:
                return star
            end, out = pos, []
            while (part := self._first(end, self.expression, self.space)) is not None:
                end = part[0]
                out.append(part[1])
            return end, "".join(out)
        return self._memo("query", pos, parse)


def _range(name: str, opening: str, low: str, high: str, closing: str) -> str:
    if low == "*" and high == "*":
        return f"content:{name}__=__*"
    if high == "*":
        high = "\\ufff0"  # the six characters, as erchef writes them: Lucene reads the escape
    elif low == "*":
        low = ""
    return f"content:{opening}{name}__=__{low} TO {name}__=__{high}{closing}"
