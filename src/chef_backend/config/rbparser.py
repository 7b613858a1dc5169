"""A parser for the Ruby-flavoured assignments that chef-backend.rb is written in.

It accepts what operators and the original's tools write, and nothing that would need Ruby:

    publish_address '10.0.0.5'            # method-call style
    hide_sensitive = false                # assignment style
    postgresql.max_connections = 500      # service.key = value
    leaderl.health_check.interval_seconds = 2
    postgresql['port'] = 5433             # hash style
    postgresql.md5_auth_cidr_addresses = ["samehost", "samenet",
                                          "10.1.0.0/16"]
    postgresql.environment = { "TZ" => "UTC", LANG: "C" }
    postgresql.md5_auth_cidr_addresses = %w(samehost samenet 10.1.0.0/16)

Values: single- and double-quoted strings, integers (with `_` separators), floats, true, false,
nil, :symbols (read as strings), arrays (also Ruby's `%w(...)` / `%i(...)` word lists) and hashes,
nested. `#` starts a comment outside strings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any


class RbSyntaxError(ValueError):
    """A malformed line; `line` is 1-based."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message


@dataclass(frozen=True)
class Assignment:
    """`key` is dotted (`postgresql.port`); `line` is where the statement starts."""

    key: str
    value: Any
    line: int


@dataclass(frozen=True)
class _Tok:
    kind: str  # ident, str, num, sym, op, nl, eof
    text: str
    value: Any
    line: int


_TOKEN_RE = re.compile(
    r"""
    (?P<ws>[ \t\r\f]+)
  | (?P<comment>\#[^\n]*)
  | (?P<nl>\n|;)
  | (?P<words>%[wWiI][(\[{<])
  | (?P<num>[-+]?(?:\d[\d_]*)(?:\.\d[\d_]*)?(?:[eE][-+]?\d+)?)
  | (?P<sym>:[A-Za-z_][A-Za-z0-9_]*[?!]?)
  | (?P<label>[A-Za-z_][A-Za-z0-9_]*:(?!:))
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*[?!]?)
  | (?P<op>=>|[=.,\[\]{}])
  | (?P<quote>['"])
    """,
    re.VERBOSE,
)

_CLOSERS = {"(": ")", "[": "]", "{": "}", "<": ">"}

_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "0": "\0", "s": " ", "e": "\x1b", "a": "\a", "b": "\b"}


def _read_string(src: str, pos: int, line: int) -> tuple[str, int, int]:
    """Read a quoted string starting at src[pos] (the quote); return value, end, end line."""
    quote = src[pos]
    out: list[str] = []
    i = pos + 1
    start_line = line
    while i < len(src):
        c = src[i]
        if c == quote:
            return "".join(out), i + 1, line
        if c == "\n":
            line += 1
        if c == "\\" and i + 1 < len(src):
            nxt = src[i + 1]
            if quote == "'":
                out.append(nxt if nxt in "\\'" else "\\" + nxt)
            else:
                if nxt == "#":
                    out.append("#")
                else:
                    out.append(_ESCAPES.get(nxt, nxt))
            if nxt == "\n":
                line += 1
            i += 2
            continue
        if quote == '"' and c == "#" and src.startswith("#{", i):
            raise RbSyntaxError(line, "string interpolation (#{...}) is not supported; write the value out")
        out.append(c)
        i += 1
    raise RbSyntaxError(start_line, f"unterminated string starting with {quote}")


def _tokenize(src: str) -> list[_Tok]:
    toks: list[_Tok] = []
    pos, line = 0, 1
    spaced = False  # whitespace before this token: `members ["a"]` is a call with an array, `x["a"]` an index
    while pos < len(src):
        m = _TOKEN_RE.match(src, pos)
        if not m:
            raise RbSyntaxError(line, f"unexpected character {src[pos]!r}")
        kind = m.lastgroup
        text = m.group()
        if kind == "quote":
            value, pos, end_line = _read_string(src, pos, line)
            toks.append(_Tok("str", text, value, line))
            line = end_line
            continue
        if kind == "words":
            # %w(a b c): whitespace-separated words up to the matching bracket, read as strings.
            close = src.find(_CLOSERS[text[-1]], m.end())
            if close < 0:
                raise RbSyntaxError(line, f"unterminated word list starting with {text}")
            body = src[m.end():close]
            toks.append(_Tok("words", text, body.split(), line))
            line += body.count("\n")
            pos, spaced = close + 1, False
            continue
        pos = m.end()
        was_spaced, spaced = spaced, kind == "ws"
        if kind in ("ws", "comment"):
            continue
        if kind == "nl":
            toks.append(_Tok("nl", text, None, line))
            if text == "\n":
                line += 1
        elif kind == "num":
            clean = text.replace("_", "")
            is_float = any(ch in clean for ch in ".eE")
            toks.append(_Tok("num", text, float(clean) if is_float else int(clean), line))
        elif kind == "sym":
            toks.append(_Tok("sym", text, text[1:], line))
        elif kind == "label":
            toks.append(_Tok("label", text, text[:-1], line))
        elif kind == "ident":
            toks.append(_Tok("ident", text, text, line))
        else:
            toks.append(_Tok("op", text, " [" if text == "[" and was_spaced else text, line))
    toks.append(_Tok("eof", "", None, line))
    return toks


class _Parser:
    def __init__(self, toks: list[_Tok]) -> None:
        self.toks = toks
        self.i = 0

    def peek(self, skip_nl: bool = False) -> _Tok:
        if skip_nl:
            while self.toks[self.i].kind == "nl":
                self.i += 1
        return self.toks[self.i]

    def take(self, skip_nl: bool = False) -> _Tok:
        tok = self.peek(skip_nl)
        self.i += 1
        return tok

    def expect_op(self, op: str, skip_nl: bool = False) -> _Tok:
        tok = self.take(skip_nl)
        if tok.kind != "op" or tok.text != op:
            raise RbSyntaxError(tok.line, f"expected '{op}' but found {_describe(tok)}")
        return tok

    def statements(self) -> list[Assignment]:
        out: list[Assignment] = []
        while True:
            tok = self.peek(skip_nl=True)
            if tok.kind == "eof":
                return out
            out.append(self.statement())
            end = self.take()
            if end.kind not in ("nl", "eof"):
                raise RbSyntaxError(end.line, f"unexpected {_describe(end)} after the value; one setting per line")
            if end.kind == "eof":
                return out

    def statement(self) -> Assignment:
        first = self.take()
        if first.kind != "ident":
            raise RbSyntaxError(first.line, f"expected a setting name but found {_describe(first)}")
        parts = [first.text]
        while True:
            tok = self.peek()
            if tok.kind == "op" and tok.text == ".":
                self.take()
                name = self.take()
                if name.kind != "ident":
                    raise RbSyntaxError(name.line, f"expected a name after '.' but found {_describe(name)}")
                parts.append(name.text)
            elif tok.kind == "op" and tok.text == "[" and tok.value == "[":
                self.take()
                sub = self.take()
                if sub.kind not in ("str", "sym"):
                    raise RbSyntaxError(sub.line, f"expected a quoted key inside [...] but found {_describe(sub)}")
                parts.append(str(sub.value))
                self.expect_op("]")
            else:
                break
        tok = self.peek()
        if tok.kind == "op" and tok.text == "=":
            self.take()
            if self.peek().kind in ("nl", "eof"):
                raise RbSyntaxError(tok.line, f"missing value after '{'.'.join(parts)} ='")
        elif tok.kind in ("nl", "eof"):
            raise RbSyntaxError(first.line, f"missing value for '{'.'.join(parts)}'")
        value = self.value()
        return Assignment(".".join(parts), value, first.line)

    def value(self) -> Any:
        tok = self.take(skip_nl=True)
        if tok.kind in ("str", "num", "sym"):
            return tok.value
        if tok.kind == "words":
            return list(tok.value)
        if tok.kind == "ident":
            if tok.text == "true":
                return True
            if tok.text == "false":
                return False
            if tok.text == "nil":
                return None
            raise RbSyntaxError(tok.line, f"unknown word {tok.text!r} where a value was expected (quote strings)")
        if tok.kind == "op" and tok.text == "[":
            return self.array()
        if tok.kind == "op" and tok.text == "{":
            return self.hash()
        raise RbSyntaxError(tok.line, f"expected a value but found {_describe(tok)}")

    def array(self) -> list[Any]:
        items: list[Any] = []
        while True:
            tok = self.peek(skip_nl=True)
            if tok.kind == "op" and tok.text == "]":
                self.take()
                return items
            items.append(self.value())
            tok = self.take(skip_nl=True)
            if tok.kind == "op" and tok.text == "]":
                return items
            if not (tok.kind == "op" and tok.text == ","):
                raise RbSyntaxError(tok.line, f"expected ',' or ']' in the array but found {_describe(tok)}")

    def hash(self) -> dict[str, Any]:
        items: dict[str, Any] = {}
        while True:
            tok = self.take(skip_nl=True)
            if tok.kind == "op" and tok.text == "}":
                return items
            if tok.kind == "label":
                key = tok.value
            elif tok.kind in ("str", "sym", "num"):
                key = str(tok.value)
                arrow = self.take(skip_nl=True)
                if not (arrow.kind == "op" and arrow.text == "=>"):
                    raise RbSyntaxError(arrow.line, f"expected '=>' after the hash key but found {_describe(arrow)}")
            else:
                raise RbSyntaxError(tok.line, f"expected a hash key but found {_describe(tok)}")
            items[key] = self.value()
            tok = self.take(skip_nl=True)
            if tok.kind == "op" and tok.text == "}":
                return items
            if not (tok.kind == "op" and tok.text == ","):
                raise RbSyntaxError(tok.line, f"expected ',' or '}}' in the hash but found {_describe(tok)}")


def _describe(tok: _Tok) -> str:
    if tok.kind == "eof":
        return "the end of the file"
    if tok.kind == "nl":
        return "the end of the line"
    return repr(tok.text)


def parse(src: str) -> list[Assignment]:
    """Parse chef-backend.rb text into assignments, in file order."""
    return _Parser(_tokenize(src)).statements()


def format_value(value: Any) -> str:
    """Render a value back in the file's syntax (used by gen-sample-backend-config and show-config)."""
    if value is None:
        return "nil"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    if isinstance(value, list):
        return "[" + ", ".join(format_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{format_value(str(k))} => {format_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"cannot render {type(value).__name__}")
