"""Compact text form of a program: one op per line, single spaces, e.g.::

    add small red metal circle 40 12
    remove 3
    replace 3 color=blue shape=ring
    move 3 20 30
    patch 10 10 20 20 grey
    perturb 10 10 20 20 8 7
    background stripes sand slate
    photo brightness=1.1 contrast=0.9 blur=0.5 noise=3 seed=2
    twin 3 color=orange
    mimic 3

The parser is strict and total: any malformed input raises :class:`EditParseError`
(with 1-based ``line`` / ``col`` and what was expected) and nothing else. Integers are
written without sign or leading zeros, floats as ``D[.DDDD]`` (at most 4 decimals).
A single trailing newline is allowed; blank lines, tabs, double or edge spaces and
non-ASCII characters are not. ``format_program`` writes the canonical form, so
``parse_program(format_program(p)) == p``.
"""

from __future__ import annotations

from typing import Any, Iterable

from .ops import MAX_OPS, OP_NAMES, OPS_BY_NAME, EditParseError, EditValueError, Op

MAX_TEXT_CHARS = 4096
_OPS_LIST = ", ".join(OP_NAMES)


def format_program(ops: Iterable[Op]) -> str:
    """Canonical text: one op per line, no trailing newline."""
    lines = []
    for op in ops:
        if not isinstance(op, Op):
            raise TypeError(f"expected an edit op, got {type(op).__name__}")
        lines.append(op.to_text())
    return "\n".join(lines)


def parse_program(text: str, max_ops: int = MAX_OPS) -> tuple[Op, ...]:
    """Parse the text form; raises only :class:`EditParseError` on bad input."""
    if not isinstance(text, str):
        raise EditParseError(1, 1, f"expected program text (str), got {type(text).__name__}")
    if len(text) > MAX_TEXT_CHARS:
        raise EditParseError(1, 1, f"program text too long: {len(text)} characters, at most {MAX_TEXT_CHARS}")
    line, col = 1, 1
    for ch in text:
        if ch == "\n":
            line, col = line + 1, 1
            continue
        if not " " <= ch <= "~":
            raise EditParseError(line, col, f"unexpected character U+{ord(ch):04X}; expected printable ASCII (words, digits, '=', '.', single spaces)")
        col += 1
    lines = text.split("\n")
    if len(lines) > 1 and lines[-1] == "":
        lines.pop()  # one trailing newline
    if lines == [""]:
        raise EditParseError(1, 1, f"empty program; expected at least one op ({_OPS_LIST})")
    ops: list[Op] = []
    for i, ln in enumerate(lines, 1):
        if i > max_ops:
            raise EditParseError(i, 1, f"too many ops: at most {max_ops} allowed")
        ops.append(_parse_line(ln, i))
    return tuple(ops)


def _tokens(ln: str, lineno: int) -> list[tuple[str, int]]:
    """(token, 1-based column) pairs; rejects empty tokens (double, leading, trailing spaces)."""
    out: list[tuple[str, int]] = []
    pos = 0
    for part in ln.split(" "):
        if part == "":
            col = pos + 1 if pos < len(ln) else pos
            raise EditParseError(lineno, col, "unexpected space; separate the op and its arguments by single spaces")
        out.append((part, pos + 1))
        pos += len(part) + 1
    return out


def _parse_line(ln: str, lineno: int) -> Op:
    if ln == "":
        raise EditParseError(lineno, 1, f"empty line; expected an op ({_OPS_LIST})")
    toks = _tokens(ln, lineno)
    word, _ = toks[0]
    cls = OPS_BY_NAME.get(word)
    if cls is None:
        raise EditParseError(lineno, 1, f"unknown op {word[:20]!r}; expected one of {_OPS_LIST}")
    args = toks[1:]
    end_col = len(ln) + 1
    cols: dict[str, int] = {}
    pos: dict[str, Any] = {}
    for j, (fname, kind) in enumerate(cls.POS):
        if j >= len(args):
            raise EditParseError(lineno, end_col, f"expected {kind.label} ({kind.expected}), got end of line; usage: {cls.USAGE}")
        tok, col = args[j]
        try:
            pos[fname] = kind.parse(tok)
        except EditValueError as e:
            raise EditParseError(lineno, col, str(e)) from None
        cols[fname] = col
    rest = args[len(cls.POS):]
    keyed: dict[str, Any] = {}
    if cls.KEYS is None:
        if rest:
            tok, col = rest[0]
            raise EditParseError(lineno, col, f"unexpected extra argument {tok[:20]!r}; usage: {cls.USAGE}")
    else:
        keys = ", ".join(cls.KEYS)
        for tok, col in rest:
            key, eq, val = tok.partition("=")
            if not eq:
                raise EditParseError(lineno, col, f"expected key=value (keys: {keys}), got {tok[:20]!r}")
            if key not in cls.KEYS:
                raise EditParseError(lineno, col, f"unknown key {key[:20]!r}; expected one of {keys}")
            if key in keyed:
                raise EditParseError(lineno, col, f"duplicate key {key!r}")
            try:
                keyed[key] = cls.KEYS[key].parse(val)
            except EditValueError as e:
                raise EditParseError(lineno, col + len(key) + 1, str(e)) from None
            cols[key] = col
        if len(keyed) < cls.MIN_KEYS:
            raise EditParseError(lineno, end_col, f"expected at least {cls.MIN_KEYS} key=value (keys: {keys}), got end of line; usage: {cls.USAGE}")
    bad = cls.cross_check({**pos, **keyed})
    if bad is not None:
        raise EditParseError(lineno, cols.get(bad[0], 1), bad[1])
    try:
        return cls.from_parts(pos, keyed)
    except EditValueError as e:  # all values were checked above; kept as a safety net
        raise EditParseError(lineno, 1, str(e)) from None
