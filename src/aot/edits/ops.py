"""Typed edit operations: frozen, hashable, validated at construction.

An edit *program* is a tuple of ops. Scene-graph ops (add, remove, replace, move,
background) change the scene and are applied first, in program order; pixel ops (patch,
perturb, photo) are then applied, in program order, to the re-rendered image.

Value checks that need no scene (names in the world vocabulary, numeric ranges, box
corners ordered) happen in the constructors and raise :class:`EditValueError`. Checks
that need the scene (an id exists at that point of the program) happen in
:func:`aot.edits.apply_program` and raise :class:`EditApplyError`. Geometry against the
canvas (a box outside the image) is *not* an apply error: the op is clipped to the
canvas and :func:`aot.integrity.check` rejects the program with a reason, so an attacker
gets a verdict rather than a crash.
"""

from __future__ import annotations

import math
import numbers
import re
from dataclasses import dataclass, fields
from typing import Any, ClassVar

import numpy as np

from ..world.types import (
    ATTRIBUTE_VALUES,
    ATTRIBUTES,
    BACKGROUND_KINDS,
    BG_COLORS,
    COLOR_NAMES,
    COLORS,
    MATERIALS,
    SHAPES,
    SIZE_NAMES,
    Obj,
)

MAX_OPS = 4
"""Default maximum number of ops in a parsed program."""
MAX_COORD = 1024
"""Largest pixel coordinate an op may name (the canvas check is done separately)."""
MAX_ID = 9999
MAX_SEED = 2**31 - 1
FLOAT_DECIMALS = 4
"""Float parameters are rounded to this many decimals, so the text form is exact and short."""
PATCH_COLORS: tuple[str, ...] = tuple(COLORS) + tuple(BG_COLORS)
PATCH_RGB: dict[str, tuple[int, int, int]] = {**COLORS, **BG_COLORS}

Box = tuple[int, int, int, int]


# --- errors ----------------------------------------------------------------------------
class EditError(ValueError):
    """Base class of every error raised by ``aot.edits``."""


class EditValueError(EditError):
    """An op was constructed with an invalid value (no scene needed to tell)."""


class EditApplyError(EditError):
    """An op cannot be applied to this scene (e.g. it names an id that does not exist)."""


class EditParseError(EditError):
    """Malformed program text or JSON.

    ``line`` and ``col`` are 1-based (for JSON, ``line`` is the 1-based op index and
    ``col`` is 0); ``detail`` is the message without the location prefix.
    """

    def __init__(self, line: int, col: int, detail: str, where: str | None = None) -> None:
        self.line = line
        self.col = col
        self.detail = detail
        super().__init__(f"{where or f'line {line}, col {col}'}: {detail}")


# --- value kinds -----------------------------------------------------------------------
def _show(v: Any) -> str:
    s = repr(v)
    return s if len(s) <= 40 else s[:37] + "..."


_INT_RE = re.compile(r"(?:0|[1-9][0-9]{0,9})", re.ASCII)
_FLOAT_RE = re.compile(r"(?:0|[1-9][0-9]{0,3})(?:\.[0-9]{1,%d})?" % FLOAT_DECIMALS, re.ASCII)


@dataclass(frozen=True)
class IntKind:
    label: str
    lo: int
    hi: int

    @property
    def expected(self) -> str:
        return f"integer {self.lo}..{self.hi}"

    def _fail(self, got: str) -> EditValueError:
        return EditValueError(f"expected {self.label} ({self.expected}), got {got}")

    def check(self, v: Any) -> int:
        if isinstance(v, bool) or not isinstance(v, numbers.Integral):
            raise self._fail(f"{type(v).__name__} {_show(v)}")
        v = int(v)
        if not self.lo <= v <= self.hi:
            raise self._fail(_show(v))
        return v

    def parse(self, tok: str) -> int:
        if not _INT_RE.fullmatch(tok) or not self.lo <= int(tok) <= self.hi:
            raise self._fail(_show(tok))
        return self.check(int(tok))

    def format(self, v: int) -> str:
        return str(v)


@dataclass(frozen=True)
class FloatKind:
    label: str
    lo: float
    hi: float

    @property
    def expected(self) -> str:
        return f"number {_fmt_float(self.lo)}..{_fmt_float(self.hi)}, at most {FLOAT_DECIMALS} decimals"

    def _fail(self, got: str) -> EditValueError:
        return EditValueError(f"expected {self.label} ({self.expected}), got {got}")

    def check(self, v: Any) -> float:
        if isinstance(v, bool) or not isinstance(v, numbers.Real):
            raise self._fail(f"{type(v).__name__} {_show(v)}")
        v = float(v)
        if not (math.isfinite(v) and self.lo <= v <= self.hi):
            raise self._fail(_show(v))
        return float(round(v, FLOAT_DECIMALS)) + 0.0  # + 0.0 turns -0.0 into 0.0

    def parse(self, tok: str) -> float:
        if not _FLOAT_RE.fullmatch(tok) or not self.lo <= float(tok) <= self.hi:
            raise self._fail(_show(tok))
        return self.check(float(tok))

    def format(self, v: float) -> str:
        return _fmt_float(v)


def _fmt_float(v: float) -> str:
    return np.format_float_positional(float(v), trim="-")


@dataclass(frozen=True)
class NameKind:
    label: str
    choices: tuple[str, ...]

    @property
    def expected(self) -> str:
        return "one of " + ", ".join(self.choices)

    def _fail(self, got: str) -> EditValueError:
        return EditValueError(f"expected {self.label} ({self.expected}), got {got}")

    def check(self, v: Any) -> str:
        if not isinstance(v, str):
            raise self._fail(f"{type(v).__name__} {_show(v)}")
        if v not in self.choices:
            raise self._fail(_show(v))
        return v

    def parse(self, tok: str) -> str:
        return self.check(tok)

    def format(self, v: str) -> str:
        return v


Kind = IntKind | FloatKind | NameKind

COORD = IntKind("coordinate", 0, MAX_COORD)
OBJ_ID = IntKind("object id", 0, MAX_ID)
SEED = IntKind("seed", 0, MAX_SEED)
EPS = IntKind("eps", 1, 32)
SIZE = NameKind("size", SIZE_NAMES)
COLOR = NameKind("colour", COLOR_NAMES)
MATERIAL = NameKind("material", MATERIALS)
SHAPE = NameKind("shape", SHAPES)
ATTR_KINDS: dict[str, NameKind] = {"size": SIZE, "color": COLOR, "material": MATERIAL, "shape": SHAPE}
assert tuple(ATTR_KINDS) == ATTRIBUTES and all(ATTR_KINDS[a].choices == ATTRIBUTE_VALUES[a] for a in ATTRIBUTES)
PATCH_COLOR = NameKind("patch colour", PATCH_COLORS)
BG_KIND = NameKind("background kind", BACKGROUND_KINDS)
BG_COLOR = NameKind("background colour", tuple(BG_COLORS))


def _coord(label: str) -> IntKind:
    return IntKind(label, 0, MAX_COORD)


# --- ops -------------------------------------------------------------------------------
class Op:
    """Base of every edit op.

    Class attributes describe the text / JSON form: ``name`` is the keyword, ``POS`` the
    positional fields in order, ``KEYS`` the ``key=value`` fields (``None``: no keyed
    part), ``MIN_KEYS`` how many keyed values are required, ``SCENE_OP`` whether the op
    edits the scene graph (True) or the rendered pixels (False).
    """

    name: ClassVar[str]
    POS: ClassVar[tuple[tuple[str, Kind], ...]] = ()
    KEYS: ClassVar[dict[str, Kind] | None] = None
    MIN_KEYS: ClassVar[int] = 0
    SCENE_OP: ClassVar[bool]
    USAGE: ClassVar[str]

    def __post_init__(self) -> None:
        for fname, kind in self.POS:
            object.__setattr__(self, fname, kind.check(getattr(self, fname)))
        if self.KEYS is not None:
            self._check_keyed()
        bad = self.cross_check({f.name: getattr(self, f.name) for f in fields(self)})  # type: ignore[arg-type]
        if bad is not None:
            raise EditValueError(f"{self.name}: {bad[1]}")

    def _check_keyed(self) -> None:
        for key, kind in (self.KEYS or {}).items():
            object.__setattr__(self, key, kind.check(getattr(self, key)))

    @classmethod
    def cross_check(cls, values: dict[str, Any]) -> tuple[str, str] | None:
        """(field, message) when values that are each valid do not fit together."""
        return None

    @classmethod
    def from_parts(cls, pos: dict[str, Any], keyed: dict[str, Any]) -> "Op":
        return cls(**pos, **keyed)

    def keyed_items(self) -> list[tuple[str, Any]]:
        """The key=value pairs written in the text form (canonical order)."""
        return []

    def to_text(self) -> str:
        parts = [self.name] + [kind.format(getattr(self, f)) for f, kind in self.POS]
        for k, v in self.keyed_items():
            parts.append(f"{k}={(self.KEYS or {})[k].format(v)}")
        return " ".join(parts)

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {"op": self.name}
        for f in fields(self):  # type: ignore[arg-type]
            d[f.name] = getattr(self, f.name)
        return d

    @property
    def box(self) -> Box | None:
        """The op's location on the canvas, when it has a fixed one."""
        return None


def _box_cross_check(values: dict[str, Any]) -> tuple[str, str] | None:
    if values["x1"] <= values["x0"]:
        return "x1", f"expected x1 > x0 = {values['x0']}, got {values['x1']}"
    if values["y1"] <= values["y0"]:
        return "y1", f"expected y1 > y0 = {values['y0']}, got {values['y1']}"
    return None


@dataclass(frozen=True)
class AddObject(Op):
    """Add an object centred on integer pixel (x, y), drawn in front of every other object."""

    size: str
    color: str
    material: str
    shape: str
    x: int
    y: int

    name: ClassVar[str] = "add"
    POS: ClassVar[tuple[tuple[str, Kind], ...]] = (
        ("size", SIZE), ("color", COLOR), ("material", MATERIAL), ("shape", SHAPE), ("x", _coord("x")), ("y", _coord("y"))
    )
    SCENE_OP: ClassVar[bool] = True
    USAGE: ClassVar[str] = "add SIZE COLOUR MATERIAL SHAPE X Y"

    def make(self, obj_id: int, depth: int) -> Obj:
        return Obj(obj_id, self.shape, self.color, self.material, self.size, float(self.x), float(self.y), depth)

    @property
    def box(self) -> Box:
        return self.make(0, 0).box()


@dataclass(frozen=True)
class RemoveObject(Op):
    """Delete an object."""

    id: int

    name: ClassVar[str] = "remove"
    POS: ClassVar[tuple[tuple[str, Kind], ...]] = (("id", OBJ_ID),)
    SCENE_OP: ClassVar[bool] = True
    USAGE: ClassVar[str] = "remove ID"


@dataclass(frozen=True, init=False)
class _IdAttrsOp(Op):
    """An op on object ``id`` with some attributes given: ``attrs`` may be a dict; it is stored
    as a tuple of (attribute, value) pairs in the canonical order size, color, material, shape."""

    id: int
    attrs: tuple[tuple[str, str], ...]

    POS: ClassVar[tuple[tuple[str, Kind], ...]] = (("id", OBJ_ID),)
    KEYS: ClassVar[dict[str, Kind] | None] = dict(ATTR_KINDS)
    MIN_KEYS: ClassVar[int] = 1

    def __init__(self, id: int, attrs: Any) -> None:  # noqa: A002 - the field is called id
        object.__setattr__(self, "id", id)
        object.__setattr__(self, "attrs", attrs)
        self.__post_init__()

    def _check_keyed(self) -> None:
        raw = self.attrs
        if isinstance(raw, dict):
            pairs = list(raw.items())
        else:
            try:
                pairs = [tuple(p) for p in raw]
            except TypeError:
                raise EditValueError(f"{self.name}: attrs must be a dict or (key, value) pairs, got {_show(raw)}") from None
        seen: dict[str, str] = {}
        for p in pairs:
            if len(p) != 2:
                raise EditValueError(f"{self.name}: attrs must be (key, value) pairs, got {_show(p)}")
            k, v = p
            if k not in ATTR_KINDS:
                raise EditValueError(f"{self.name}: expected attribute (one of {', '.join(ATTRIBUTES)}), got {_show(k)}")
            if k in seen:
                raise EditValueError(f"{self.name}: duplicate attribute {k!r}")
            seen[k] = ATTR_KINDS[k].check(v)
        if not seen:
            raise EditValueError(f"{self.name}: expected at least one attribute to change")
        object.__setattr__(self, "attrs", tuple((k, seen[k]) for k in ATTRIBUTES if k in seen))

    @property
    def attr_dict(self) -> dict[str, str]:
        return dict(self.attrs)

    @classmethod
    def from_parts(cls, pos: dict[str, Any], keyed: dict[str, Any]) -> "Op":
        return cls(pos["id"], keyed)

    def keyed_items(self) -> list[tuple[str, Any]]:
        return list(self.attrs)

    def to_json(self) -> dict[str, Any]:
        return {"op": self.name, "id": self.id, "attrs": dict(self.attrs)}


@dataclass(frozen=True, init=False)
class ReplaceAttrs(_IdAttrsOp):
    """Change some of an object's attributes."""

    name: ClassVar[str] = "replace"
    SCENE_OP: ClassVar[bool] = True
    USAGE: ClassVar[str] = "replace ID KEY=VALUE... (keys: size, color, material, shape)"


@dataclass(frozen=True, init=False)
class TwinObject(_IdAttrsOp):
    """Add a lookalike of object ``id``: a copy with ``attrs`` changed, drawn in front, placed
    beside it by the editor (the first free spot of :func:`aot.edits.apply.place_beside`).

    A *relative* op: the attacker names what to copy and what to change, the editor finds
    the room. ``add`` needs both right at once, which a small policy rarely learns."""

    name: ClassVar[str] = "twin"
    SCENE_OP: ClassVar[bool] = True
    USAGE: ClassVar[str] = "twin ID KEY=VALUE... (keys: size, color, material, shape)"


@dataclass(frozen=True)
class MoveObject(Op):
    """Move an object's centre to integer pixel (x, y); its depth is kept."""

    id: int
    x: int
    y: int

    name: ClassVar[str] = "move"
    POS: ClassVar[tuple[tuple[str, Kind], ...]] = (("id", OBJ_ID), ("x", _coord("x")), ("y", _coord("y")))
    SCENE_OP: ClassVar[bool] = True
    USAGE: ClassVar[str] = "move ID X Y"


@dataclass(frozen=True)
class OccludingPatch(Op):
    """Paint an opaque rectangle [x0, x1) x [y0, y1) on the rendered image."""

    x0: int
    y0: int
    x1: int
    y1: int
    color: str

    name: ClassVar[str] = "patch"
    POS: ClassVar[tuple[tuple[str, Kind], ...]] = (
        ("x0", _coord("x0")), ("y0", _coord("y0")), ("x1", _coord("x1")), ("y1", _coord("y1")), ("color", PATCH_COLOR)
    )
    SCENE_OP: ClassVar[bool] = False
    USAGE: ClassVar[str] = "patch X0 Y0 X1 Y1 COLOUR"

    @classmethod
    def cross_check(cls, values: dict[str, Any]) -> tuple[str, str] | None:
        return _box_cross_check(values)

    @property
    def box(self) -> Box:
        return (self.x0, self.y0, self.x1, self.y1)


@dataclass(frozen=True)
class Perturb(Op):
    """Add seeded sign noise of amplitude ``eps`` (0-255 units, L-infinity budget) inside a box."""

    x0: int
    y0: int
    x1: int
    y1: int
    eps: int
    seed: int

    name: ClassVar[str] = "perturb"
    POS: ClassVar[tuple[tuple[str, Kind], ...]] = (
        ("x0", _coord("x0")), ("y0", _coord("y0")), ("x1", _coord("x1")), ("y1", _coord("y1")), ("eps", EPS), ("seed", SEED)
    )
    SCENE_OP: ClassVar[bool] = False
    USAGE: ClassVar[str] = "perturb X0 Y0 X1 Y1 EPS SEED"

    @classmethod
    def cross_check(cls, values: dict[str, Any]) -> tuple[str, str] | None:
        return _box_cross_check(values)

    @property
    def box(self) -> Box:
        return (self.x0, self.y0, self.x1, self.y1)


@dataclass(frozen=True)
class MimicPatch(Op):
    """Paint an opaque rectangle the size of object ``id``'s box, in its colour, beside it (the
    editor places it at the first free spot of :func:`aot.edits.apply.place_beside`, after the
    scene ops). A relative op, like ``twin``."""

    id: int

    name: ClassVar[str] = "mimic"
    POS: ClassVar[tuple[tuple[str, Kind], ...]] = (("id", OBJ_ID),)
    SCENE_OP: ClassVar[bool] = False
    USAGE: ClassVar[str] = "mimic ID"


@dataclass(frozen=True)
class BackgroundChange(Op):
    """Change the background's kind and colours (its phase and clutter are kept)."""

    kind: str
    color: str
    color2: str

    name: ClassVar[str] = "background"
    POS: ClassVar[tuple[tuple[str, Kind], ...]] = (("kind", BG_KIND), ("color", BG_COLOR), ("color2", BG_COLOR))
    SCENE_OP: ClassVar[bool] = True
    USAGE: ClassVar[str] = "background KIND COLOUR COLOUR2"


PHOTO_KEYS: dict[str, Kind] = {
    "brightness": FloatKind("brightness", 0.5, 1.5),
    "contrast": FloatKind("contrast", 0.5, 1.5),
    "blur": FloatKind("blur sigma", 0.0, 3.0),
    "noise": FloatKind("noise std", 0.0, 32.0),
    "seed": SEED,
}


@dataclass(frozen=True)
class Photometric(Op):
    """Global pixel op, in this order: contrast about mid-grey, brightness gain, gaussian blur
    (sigma in px), gaussian noise (std in 0-255 units, seeded)."""

    brightness: float = 1.0
    contrast: float = 1.0
    blur: float = 0.0
    noise: float = 0.0
    seed: int = 0

    name: ClassVar[str] = "photo"
    KEYS: ClassVar[dict[str, Kind] | None] = PHOTO_KEYS
    MIN_KEYS: ClassVar[int] = 0
    SCENE_OP: ClassVar[bool] = False
    USAGE: ClassVar[str] = "photo [brightness=B] [contrast=C] [blur=S] [noise=N] [seed=K]"

    def keyed_items(self) -> list[tuple[str, Any]]:
        defaults = Photometric.__dataclass_fields__  # type: ignore[attr-defined]
        return [(k, getattr(self, k)) for k in PHOTO_KEYS if getattr(self, k) != defaults[k].default]


OP_TYPES: tuple[type[Op], ...] = (
    AddObject, RemoveObject, ReplaceAttrs, MoveObject, OccludingPatch, Perturb, BackgroundChange, Photometric, TwinObject, MimicPatch
)
OPS_BY_NAME: dict[str, type[Op]] = {c.name: c for c in OP_TYPES}
OP_NAMES: tuple[str, ...] = tuple(OPS_BY_NAME)
RELATIVE_OPS: tuple[str, ...] = ("twin", "mimic")
"""Ops placed by the editor relative to an object (the attacker gives no coordinates)."""
ABSOLUTE_OPS: tuple[str, ...] = tuple(n for n in OP_NAMES if n not in RELATIVE_OPS)
"""The eight ops that carry their own coordinates (or need none); the default of
:func:`aot.edits.random_program` and of the robustness suite."""
Program = tuple[Op, ...]
