"""The scene graph: typed, immutable, JSON-serialisable.

Nothing here imports torch. Coordinates are pixels on the canvas, origin top-left,
x to the right, y downwards. Object centres are snapped to a quarter pixel so the
renderer's sprite cache is exact (see ``render.py``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from ..vqa import box_iou, box_overlap  # noqa: F401  (neutral geometry; re-exported here)

# --- vocabulary -------------------------------------------------------------------
SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "diamond", "cross", "ring", "hexagon")
# RGB in [0, 255]; chosen far apart in hue so a tiny model can tell them apart.
COLORS: dict[str, tuple[int, int, int]] = {
    "red": (225, 35, 35),
    "orange": (250, 140, 20),
    "yellow": (245, 225, 40),
    "green": (40, 175, 60),
    "cyan": (40, 210, 225),
    "blue": (40, 80, 235),
    "purple": (145, 55, 205),
    "pink": (250, 130, 200),
}
MATERIALS: tuple[str, ...] = ("matte", "metal")
# Size class -> radius in pixels (independent of canvas size, so a larger canvas makes
# the same object relatively smaller: "small targets on a larger canvas").
SIZES: dict[str, float] = {"small": 3.5, "medium": 5.0, "large": 7.0}
SIZE_NAMES: tuple[str, ...] = tuple(SIZES)
COLOR_NAMES: tuple[str, ...] = tuple(COLORS)
BACKGROUND_KINDS: tuple[str, ...] = ("plain", "gradient", "stripes", "checker", "noise")
TEXTURE_KINDS: tuple[str, ...] = ("stripes", "checker", "noise")
# Muted background palette, kept away from the object colours.
BG_COLORS: dict[str, tuple[int, int, int]] = {
    "charcoal": (45, 45, 50),
    "slate": (80, 90, 100),
    "grey": (125, 125, 125),
    "sand": (170, 160, 135),
    "olive": (95, 100, 70),
    "brown": (110, 80, 60),
    "navy": (35, 40, 75),
    "silver": (185, 185, 190),
}
ATTRIBUTES: tuple[str, ...] = ("size", "color", "material", "shape")
ATTRIBUTE_VALUES: dict[str, tuple[str, ...]] = {
    "size": SIZE_NAMES,
    "color": COLOR_NAMES,
    "material": MATERIALS,
    "shape": SHAPES,
}


@dataclass(frozen=True)
class Obj:
    """One object. ``depth`` orders drawing: larger depth is drawn later (in front)."""

    id: int
    shape: str
    color: str
    material: str
    size: str
    x: float
    y: float
    depth: int

    @property
    def radius(self) -> float:
        return SIZES[self.size]

    def box(self) -> tuple[int, int, int, int]:
        """Tight integer bounding box (x0, y0, x1, y1), x1/y1 exclusive, unclipped."""
        r = self.radius
        return (
            math.floor(self.x - r),
            math.floor(self.y - r),
            math.ceil(self.x + r),
            math.ceil(self.y + r),
        )

    def attrs(self) -> dict[str, str]:
        return {"size": self.size, "color": self.color, "material": self.material, "shape": self.shape}


@dataclass(frozen=True)
class Background:
    """``kind`` in BACKGROUND_KINDS; ``color``/``color2`` in BG_COLORS; ``phase`` picks the
    texture variant and clutter layout (0..63); ``clutter`` is the number of thin marks."""

    kind: str = "plain"
    color: str = "grey"
    color2: str = "slate"
    phase: int = 0
    clutter: int = 0


@dataclass(frozen=True)
class Lighting:
    """Global photometric state: out = clip((img - 0.5) * contrast + 0.5) * brightness."""

    brightness: float = 1.0
    contrast: float = 1.0


@dataclass(frozen=True)
class Scene:
    width: int
    height: int
    objects: tuple[Obj, ...]
    background: Background = field(default_factory=Background)
    lighting: Lighting = field(default_factory=Lighting)
    regime: str = "simple"
    seed: int = 0

    def get(self, obj_id: int) -> Obj | None:
        for o in self.objects:
            if o.id == obj_id:
                return o
        return None

    def next_id(self) -> int:
        return max((o.id for o in self.objects), default=-1) + 1

    def top_depth(self) -> int:
        return max((o.depth for o in self.objects), default=-1)

    def with_objects(self, objects: tuple[Obj, ...] | list[Obj]) -> "Scene":
        return replace(self, objects=tuple(objects))

    # --- JSON ---------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @staticmethod
    def from_dict(d: dict[str, Any]) -> "Scene":
        return Scene(
            width=int(d["width"]),
            height=int(d["height"]),
            objects=tuple(Obj(**o) for o in d["objects"]),
            background=Background(**d.get("background", {})),
            lighting=Lighting(**d.get("lighting", {})),
            regime=d.get("regime", "simple"),
            seed=int(d.get("seed", 0)),
        )


def clip_box(box: tuple[int, int, int, int], width: int, height: int) -> tuple[int, int, int, int]:
    x0, y0, x1, y1 = box
    return (max(0, x0), max(0, y0), min(width, x1), min(height, y1))
