"""Scene sampling for the two regimes, deterministic by seed."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .render import snap
from .types import (
    BACKGROUND_KINDS,
    BG_COLORS,
    COLOR_NAMES,
    MATERIALS,
    SHAPES,
    SIZES,
    TEXTURE_KINDS,
    Background,
    Lighting,
    Obj,
    Scene,
)


@dataclass(frozen=True)
class RegimeConfig:
    """How scenes of one regime are drawn."""

    name: str
    size: int = 64
    """Canvas side in pixels (square)."""
    n_objects: tuple[int, int] = (2, 4)
    """Inclusive range of the number of objects."""
    size_weights: tuple[float, float, float] = (1.0, 1.0, 1.0)
    """Sampling weights of the small / medium / large size classes."""
    backgrounds: tuple[str, ...] = ("plain",)
    """Background kinds to draw from."""
    clutter: tuple[int, int] = (0, 0)
    """Inclusive range of thin clutter marks on the background."""
    min_gap: float = 3.0
    """Minimum gap in pixels between object outlines; negative allows partial occlusion."""
    overlap_factor: float = 1.0
    """Centres at least overlap_factor * (r1 + r2) + min_gap apart."""
    brightness: tuple[float, float] = (1.0, 1.0)
    contrast: tuple[float, float] = (1.0, 1.0)

    def __post_init__(self) -> None:
        lo, hi = self.n_objects
        if not 1 <= lo <= hi:
            raise ValueError(f"regime {self.name}: n_objects must satisfy 1 <= lo <= hi, got {self.n_objects}")
        if self.size < 24:
            raise ValueError(f"regime {self.name}: canvas size {self.size} is below the 24 px minimum")
        for b in self.backgrounds:
            if b not in BACKGROUND_KINDS:
                raise ValueError(f"regime {self.name}: unknown background {b!r}; choose from {BACKGROUND_KINDS}")


REGIMES: dict[str, RegimeConfig] = {
    # 2-4 large-ish objects on a plain ground: what the born defender learns on.
    "simple": RegimeConfig(name="simple", size=64, n_objects=(2, 4), size_weights=(0.2, 0.4, 0.4)),
    # 8-20 objects, textured ground with clutter, partial occlusion, small targets on a
    # larger canvas, varied lighting: what breaks it.
    "complex": RegimeConfig(
        name="complex",
        size=96,
        n_objects=(8, 20),
        size_weights=(0.5, 0.3, 0.2),
        backgrounds=TEXTURE_KINDS + ("gradient",),
        clutter=(4, 12),
        min_gap=-1.0,
        overlap_factor=0.8,
        brightness=(0.8, 1.15),
        contrast=(0.7, 1.1),
    ),
}


def get_regime(name: str | RegimeConfig) -> RegimeConfig:
    if isinstance(name, RegimeConfig):
        return name
    if name not in REGIMES:
        raise ValueError(f"unknown regime {name!r}; choose from {sorted(REGIMES)}")
    return REGIMES[name]


def _place(rng: np.random.Generator, cfg: RegimeConfig, r: float, placed: list[tuple[float, float, float]]) -> tuple[float, float] | None:
    """Rejection-sample a centre for radius r; None after 60 failed tries."""
    lo, hi = r + 1.0, cfg.size - r - 1.0
    for _ in range(60):
        x, y = snap(rng.uniform(lo, hi)), snap(rng.uniform(lo, hi))
        if all((x - px) ** 2 + (y - py) ** 2 >= (cfg.overlap_factor * (r + pr) + cfg.min_gap) ** 2 for px, py, pr in placed):
            return x, y
    return None


def sample_scene(seed: int, regime: str | RegimeConfig = "simple") -> Scene:
    """Draw one scene; the same (seed, regime) always gives the same scene."""
    cfg = get_regime(regime)
    rng = np.random.default_rng([int(seed), 0x5CE7E])
    n = int(rng.integers(cfg.n_objects[0], cfg.n_objects[1] + 1))
    sizes = list(SIZES)
    w = np.array(cfg.size_weights, float)
    w = w / w.sum()
    objects: list[Obj] = []
    placed: list[tuple[float, float, float]] = []
    for i in range(n):
        size = sizes[int(rng.choice(3, p=w))]
        r = SIZES[size]
        pos = _place(rng, cfg, r, placed)
        if pos is None:
            continue  # canvas full: fewer objects, still deterministic
        placed.append((pos[0], pos[1], r))
        objects.append(
            Obj(
                id=len(objects),
                shape=SHAPES[int(rng.integers(len(SHAPES)))],
                color=COLOR_NAMES[int(rng.integers(len(COLOR_NAMES)))],
                material=MATERIALS[int(rng.integers(len(MATERIALS)))],
                size=size,
                x=pos[0],
                y=pos[1],
                depth=0,
            )
        )
    # depth order: a random permutation, so occlusion is not tied to creation order
    order = rng.permutation(len(objects))
    objects = [Obj(**{**o.__dict__, "depth": int(d)}) for o, d in zip(objects, order)]
    bg_names = list(BG_COLORS)
    c1, c2 = rng.choice(len(bg_names), size=2, replace=False)
    bg = Background(
        kind=cfg.backgrounds[int(rng.integers(len(cfg.backgrounds)))],
        color=bg_names[int(c1)],
        color2=bg_names[int(c2)],
        phase=int(rng.integers(64)),
        clutter=int(rng.integers(cfg.clutter[0], cfg.clutter[1] + 1)),
    )
    light = Lighting(
        brightness=round(float(rng.uniform(*cfg.brightness)), 3),
        contrast=round(float(rng.uniform(*cfg.contrast)), 3),
    )
    return Scene(width=cfg.size, height=cfg.size, objects=tuple(objects), background=bg, lighting=light, regime=cfg.name, seed=int(seed))
