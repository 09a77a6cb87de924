"""The photo edit language: a box and what to do in it, one op per line.

::

    add 420 40 500 120 a small brown dog       paint a new object, described, into the box
    replace 420 40 500 120 a potted plant      paint the described object over what is in the box
    remove 420 40 500 120                      paint the box over with background
    patch 10 10 60 40 grey                     an opaque rectangle of a named colour
    perturb 10 10 60 40 8 7                    seeded sign noise of amplitude 8 (0-255 units)
    photo brightness=1.1 contrast=0.9 blur=0.5 noise=3 seed=2     global, in that order

Boxes are ``X0 Y0 X1 Y1`` in pixels, x1/y1 exclusive. ``add`` / ``replace`` / ``remove`` are
the paper's "a box and a description" (a diffusion inpainting pipeline carries them out);
``patch``, ``perturb`` and ``photo`` need no model. ``photo`` is the one global op: it
touches every pixel, target boxes included.

The parser is strict and total, like :mod:`aot.edits.text`: printable ASCII, single spaces,
integers without sign or leading zeros, floats ``D[.DDDD]``, a description of 1 to
``MAX_WORDS`` words of lowercase letters, digits, ``'`` and ``-``. Any malformed input raises
:class:`PhotoParseError` with a 1-based line and column; nothing is evaluated.
``format_program`` writes the canonical form: ``parse_program(format_program(p)) == p``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from typing import Any, ClassVar, Iterable

from ...vqa import Box

MAX_OPS = 4
"""Most ops a parsed program may hold."""
MAX_COORD = 8192
"""Largest pixel coordinate an op may name (the canvas check is the judge's)."""
MAX_WORDS = 12
"""Most words in a description."""
MAX_TEXT_CHARS = 4096
PATCH_COLOURS: dict[str, tuple[int, int, int]] = {
    "black": (0, 0, 0), "white": (255, 255, 255), "grey": (128, 128, 128), "red": (200, 30, 30),
    "green": (40, 160, 60), "blue": (40, 70, 200), "yellow": (230, 210, 40), "orange": (240, 130, 30),
    "brown": (120, 80, 40), "purple": (130, 50, 160), "pink": (240, 150, 180),
}
PHOTO_RANGES: dict[str, tuple[float, float]] = {
    "brightness": (0.5, 1.5), "contrast": (0.5, 1.5), "blur": (0.0, 3.0), "noise": (0.0, 32.0),
}
MAX_SEED = 2**31 - 1
_INT = re.compile(r"0|[1-9][0-9]{0,9}", re.ASCII)
_FLOAT = re.compile(r"(?:0|[1-9][0-9]{0,3})(?:\.[0-9]{1,4})?", re.ASCII)
_WORD = re.compile(r"[a-z0-9][a-z0-9'-]{0,23}", re.ASCII)


class PhotoEditError(ValueError):
    """Base of every error of a photo edit program (an attacker's fault, not a bug)."""


class PhotoParseError(PhotoEditError):
    """Malformed program text; ``line`` and ``col`` are 1-based."""

    def __init__(self, line: int, col: int, detail: str) -> None:
        self.line, self.col, self.detail = line, col, detail
        super().__init__(f"line {line}, col {col}: {detail}")


class PhotoApplyError(PhotoEditError):
    """A program cannot be applied to this photo."""


@dataclass(frozen=True)
class PhotoOp:
    """Base of every photo op. ``GLOBAL``: it changes pixels everywhere (targets included)."""

    name: ClassVar[str]
    GLOBAL: ClassVar[bool] = False

    @property
    def box(self) -> Box | None:
        """Where the op puts content, when it has a place."""
        return None

    def to_text(self) -> str:
        raise NotImplementedError

    def to_json(self) -> dict[str, Any]:
        return {"op": self.name, **{f.name: (list(v) if isinstance(v := getattr(self, f.name), tuple) else v) for f in fields(self)}}


def _check_box(box: Box) -> Box:
    if len(box) != 4 or not all(isinstance(c, int) and 0 <= c <= MAX_COORD for c in box):
        raise PhotoEditError(f"box must be four integers 0..{MAX_COORD}, got {box!r}")
    if not (box[0] < box[2] and box[1] < box[3]):
        raise PhotoEditError(f"box {list(box)} is empty: need x0 < x1 and y0 < y1")
    return tuple(box)  # type: ignore[return-value]


def _check_description(op: str, description: str) -> None:
    words = description.split(" ") if description else []
    if not 1 <= len(words) <= MAX_WORDS:
        raise PhotoEditError(f"{op} needs a description of 1 to {MAX_WORDS} words")
    bad = [w for w in words if not _WORD.fullmatch(w)]
    if bad:
        raise PhotoEditError(f"description word {bad[0][:24]!r}: use lowercase letters, digits, ' and -")


@dataclass(frozen=True)
class BoxFill(PhotoOp):
    """A box an inpainting pipeline fills (:mod:`aot.editors.box_ops`): ``add``, ``replace``
    or ``remove``; the op's ``name`` is the editor's box op."""

    xyxy: Box

    def __post_init__(self) -> None:
        object.__setattr__(self, "xyxy", _check_box(self.xyxy))

    @property
    def box(self) -> Box:
        return self.xyxy

    @property
    def prompt_text(self) -> str:
        """What to paint ("" for a removal: the editor's background prompt)."""
        return ""

    def to_text(self) -> str:
        return " ".join([self.name, *map(str, self.xyxy), *([self.prompt_text] if self.prompt_text else [])])


@dataclass(frozen=True)
class Add(BoxFill):
    """Paint a new object, described, into the box."""

    description: str = ""

    name: ClassVar[str] = "add"

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_description(self.name, self.description)

    @property
    def prompt_text(self) -> str:
        return self.description


@dataclass(frozen=True)
class Replace(Add):
    """Paint the described object over whatever is in the box."""

    name: ClassVar[str] = "replace"


@dataclass(frozen=True)
class Remove(BoxFill):
    """Paint the box over with background."""

    name: ClassVar[str] = "remove"


@dataclass(frozen=True)
class Patch(PhotoOp):
    """An opaque rectangle of a named colour."""

    xyxy: Box
    colour: str

    name: ClassVar[str] = "patch"

    def __post_init__(self) -> None:
        object.__setattr__(self, "xyxy", _check_box(self.xyxy))
        if self.colour not in PATCH_COLOURS:
            raise PhotoEditError(f"patch colour must be one of {', '.join(PATCH_COLOURS)}, got {self.colour!r}")

    @property
    def box(self) -> Box:
        return self.xyxy

    def to_text(self) -> str:
        return " ".join(["patch", *map(str, self.xyxy), self.colour])


@dataclass(frozen=True)
class Perturb(PhotoOp):
    """Seeded sign noise of amplitude ``eps`` (0-255 units) inside a box."""

    xyxy: Box
    eps: int
    seed: int

    name: ClassVar[str] = "perturb"

    def __post_init__(self) -> None:
        object.__setattr__(self, "xyxy", _check_box(self.xyxy))
        if not 1 <= self.eps <= 32:
            raise PhotoEditError(f"perturb eps must be 1..32, got {self.eps}")
        if not 0 <= self.seed <= MAX_SEED:
            raise PhotoEditError(f"perturb seed must be 0..{MAX_SEED}, got {self.seed}")

    @property
    def box(self) -> Box:
        return self.xyxy

    def to_text(self) -> str:
        return " ".join(["perturb", *map(str, self.xyxy), str(self.eps), str(self.seed)])


@dataclass(frozen=True)
class Photometric(PhotoOp):
    """Global: contrast about mid-grey, brightness gain, gaussian blur (sigma, px), gaussian
    noise (std, 0-255 units, seeded), in that order."""

    brightness: float = 1.0
    contrast: float = 1.0
    blur: float = 0.0
    noise: float = 0.0
    seed: int = 0

    name: ClassVar[str] = "photo"
    GLOBAL: ClassVar[bool] = True

    def __post_init__(self) -> None:
        for k, (lo, hi) in PHOTO_RANGES.items():
            v = float(getattr(self, k))
            if not lo <= v <= hi:
                raise PhotoEditError(f"photo {k} must be in {lo}..{hi}, got {v}")
            object.__setattr__(self, k, round(v, 4) + 0.0)
        if not 0 <= self.seed <= MAX_SEED:
            raise PhotoEditError(f"photo seed must be 0..{MAX_SEED}, got {self.seed}")

    def to_text(self) -> str:
        parts = ["photo"]
        for f in fields(self):
            v = getattr(self, f.name)
            if v != f.default:
                parts.append(f"{f.name}={v:g}" if isinstance(v, float) else f"{f.name}={v}")
        return " ".join(parts)


OP_WORDS: tuple[str, ...] = ("add", "replace", "remove", "patch", "perturb", "photo")
"""The first word of each op line."""
Program = tuple[PhotoOp, ...]


def format_program(ops: Iterable[PhotoOp]) -> str:
    """Canonical text: one op per line, no trailing newline."""
    return "\n".join(op.to_text() for op in ops)


def parse_program(text: str, max_ops: int = MAX_OPS) -> Program:
    """The ops of a program text; raises only :class:`PhotoParseError`."""
    if not isinstance(text, str):
        raise PhotoParseError(1, 1, f"expected program text (str), got {type(text).__name__}")
    if len(text) > MAX_TEXT_CHARS:
        raise PhotoParseError(1, 1, f"program text too long: {len(text)} characters, at most {MAX_TEXT_CHARS}")
    lines = text.split("\n")
    if len(lines) > 1 and lines[-1] == "":
        lines.pop()  # one trailing newline
    if lines == [""]:
        raise PhotoParseError(1, 1, f"empty program; expected at least one op ({', '.join(OP_WORDS)})")
    if len(lines) > max_ops:
        raise PhotoParseError(max_ops + 1, 1, f"too many ops: at most {max_ops} allowed")
    return tuple(_parse_line(ln, i) for i, ln in enumerate(lines, 1))


def _tokens(ln: str, lineno: int) -> list[tuple[str, int]]:
    for col, ch in enumerate(ln, 1):
        if not " " <= ch <= "~":
            raise PhotoParseError(lineno, col, f"unexpected character U+{ord(ch):04X}; expected printable ASCII")
    out, pos = [], 0
    for part in ln.split(" "):
        if part == "":
            raise PhotoParseError(lineno, max(pos, 1), "unexpected space; separate words by single spaces")
        out.append((part, pos + 1))
        pos += len(part) + 1
    return out


def _int(tok: str, col: int, lineno: int, what: str, hi: int) -> int:
    if not _INT.fullmatch(tok) or int(tok) > hi:
        raise PhotoParseError(lineno, col, f"expected {what} (integer 0..{hi}), got {tok[:20]!r}")
    return int(tok)


def _parse_line(ln: str, lineno: int) -> PhotoOp:
    if ln == "":
        raise PhotoParseError(lineno, 1, f"empty line; expected an op ({', '.join(OP_WORDS)})")
    toks = _tokens(ln, lineno)
    word, args = toks[0][0], toks[1:]
    end = len(ln) + 1
    if word not in OP_WORDS:
        raise PhotoParseError(lineno, 1, f"unknown op {word[:20]!r}; expected one of {', '.join(OP_WORDS)}")
    if word == "photo":
        return _parse_photo(args, lineno)
    if len(args) < 4:
        raise PhotoParseError(lineno, end, f"expected a box X0 Y0 X1 Y1 after {word!r}, got {len(args)} number(s)")
    box = tuple(_int(t, c, lineno, n, MAX_COORD) for (t, c), n in zip(args[:4], ("x0", "y0", "x1", "y1")))
    if box[2] <= box[0]:
        raise PhotoParseError(lineno, args[2][1], f"expected x1 > x0 = {box[0]}, got {box[2]}")
    if box[3] <= box[1]:
        raise PhotoParseError(lineno, args[3][1], f"expected y1 > y0 = {box[1]}, got {box[3]}")
    rest = args[4:]
    if word == "remove":
        if rest:
            raise PhotoParseError(lineno, rest[0][1], "remove takes a box only: remove X0 Y0 X1 Y1")
        return Remove(box)  # type: ignore[arg-type]
    if word in ("add", "replace"):
        if not rest:
            raise PhotoParseError(lineno, end, f"expected a description after the box: {word} X0 Y0 X1 Y1 WORDS...")
        if len(rest) > MAX_WORDS:
            raise PhotoParseError(lineno, rest[MAX_WORDS][1], f"description too long: at most {MAX_WORDS} words")
        for t, c in rest:
            if not _WORD.fullmatch(t):
                raise PhotoParseError(lineno, c, f"description word {t[:24]!r}: use lowercase letters, digits, ' and - (at most 24 characters)")
        return (Add if word == "add" else Replace)(box, " ".join(t for t, _ in rest))  # type: ignore[arg-type]
    if word == "patch":
        if len(rest) != 1:
            raise PhotoParseError(lineno, rest[1][1] if rest else end, "usage: patch X0 Y0 X1 Y1 COLOUR")
        colour, c = rest[0]
        if colour not in PATCH_COLOURS:
            raise PhotoParseError(lineno, c, f"expected a colour ({', '.join(PATCH_COLOURS)}), got {colour[:20]!r}")
        return Patch(box, colour)  # type: ignore[arg-type]
    # perturb
    if len(rest) != 2:
        raise PhotoParseError(lineno, rest[2][1] if len(rest) > 2 else end, "usage: perturb X0 Y0 X1 Y1 EPS SEED")
    eps = _int(rest[0][0], rest[0][1], lineno, "eps", 32)
    if eps < 1:
        raise PhotoParseError(lineno, rest[0][1], "expected eps (integer 1..32), got 0")
    return Perturb(box, eps, _int(rest[1][0], rest[1][1], lineno, "seed", MAX_SEED))  # type: ignore[arg-type]


def _parse_photo(args: list[tuple[str, int]], lineno: int) -> Photometric:
    keys = (*PHOTO_RANGES, "seed")
    got: dict[str, Any] = {}
    for tok, col in args:
        key, eq, val = tok.partition("=")
        if not eq:
            raise PhotoParseError(lineno, col, f"expected key=value (keys: {', '.join(keys)}), got {tok[:20]!r}")
        if key not in keys:
            raise PhotoParseError(lineno, col, f"unknown key {key[:20]!r}; expected one of {', '.join(keys)}")
        if key in got:
            raise PhotoParseError(lineno, col, f"duplicate key {key!r}")
        vcol = col + len(key) + 1
        if key == "seed":
            got[key] = _int(val, vcol, lineno, "seed", MAX_SEED)
            continue
        lo, hi = PHOTO_RANGES[key]
        if not _FLOAT.fullmatch(val) or not lo <= float(val) <= hi:
            raise PhotoParseError(lineno, vcol, f"expected {key} (number {lo:g}..{hi:g}, at most 4 decimals), got {val[:20]!r}")
        got[key] = float(val)
    return Photometric(**got)
