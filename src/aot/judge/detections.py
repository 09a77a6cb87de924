"""Detections, the renderer's truth as detections, and precision / recall of one against the other.

A detection is an object centre with its four attributes. The truth of a scene is every object
at least ``min_visible`` visible (``counted``) and the objects hidden beyond that (``ignored``:
finding one is no error, missing one is none either: even a careful eye cannot read a sliver).

``match`` pairs detections with true objects greedily by score, each detection with the nearest
free true object within ``max_dist`` pixels; ``Counts`` adds up over images and
``Counts.summary`` gives detection precision / recall (place only), *exact* precision / recall
(place and all four attributes right) and per-attribute accuracy on the matched pairs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple, Sequence

from ..world.render import visible_fraction
from ..world.types import ATTRIBUTES, Scene


class Detection(NamedTuple):
    """One object: centre in pixels, attributes in the world's words, and a confidence."""

    x: float
    y: float
    color: str
    shape: str
    material: str
    size: str
    score: float = 1.0

    def attrs(self) -> dict[str, str]:
        return {"size": self.size, "color": self.color, "material": self.material, "shape": self.shape}

    def describe(self) -> str:
        return f"{self.size} {self.color} {self.material} {self.shape}"


def describe_ref(ref: dict[str, str]) -> str:
    """'small red circle': a referring expression's words in size, colour, material, shape
    order; 'object' when it names no shape (as the world's questions say it)."""
    words = [ref[k] for k in ("size", "color", "material") if k in ref]
    return " ".join(words + [ref.get("shape", "object")])


class Truth(NamedTuple):
    counted: list[Detection]
    """Objects at least ``min_visible`` visible: a judge should find each."""
    ignored: list[Detection]
    """Objects hidden beyond that, yet not wholly: neither finding nor missing one counts."""


def truth_detections(scene: Scene, min_visible: float = 0.5) -> Truth:
    """The scene's objects as detections, split by visible fraction (canvas edge and occluders)."""
    counted, ignored = [], []
    for o in scene.objects:
        v = visible_fraction(scene, o.id)
        d = Detection(o.x, o.y, o.color, o.shape, o.material, o.size, 1.0)
        if v >= min_visible:
            counted.append(d)
        elif v > 0:
            ignored.append(d)
    return Truth(counted, ignored)


@dataclass
class Counts:
    """Matching outcomes, summed over images."""

    tp: int = 0
    """Detections placed on a counted object."""
    fp: int = 0
    """Detections on nothing (nor on an ignored object)."""
    fn: int = 0
    """Counted objects no detection found."""
    exact: int = 0
    """True positives with all four attributes right."""
    attr_right: dict[str, int] = field(default_factory=lambda: {a: 0 for a in ATTRIBUTES})
    """Per attribute: true positives that read it right."""

    def __add__(self, other: "Counts") -> "Counts":
        return Counts(self.tp + other.tp, self.fp + other.fp, self.fn + other.fn, self.exact + other.exact,
                      {a: self.attr_right[a] + other.attr_right[a] for a in ATTRIBUTES})

    def summary(self) -> dict[str, float]:
        """precision / recall (place), exact_precision / exact_recall (place + attributes),
        acc_<attribute> on true positives; 0 where a denominator is 0."""
        def ratio(a: int, b: int) -> float:
            return a / b if b else 0.0

        out = {
            "precision": ratio(self.tp, self.tp + self.fp), "recall": ratio(self.tp, self.tp + self.fn),
            "exact_precision": ratio(self.exact, self.tp + self.fp), "exact_recall": ratio(self.exact, self.tp + self.fn),
        }
        out |= {f"acc_{a}": ratio(self.attr_right[a], self.tp) for a in ATTRIBUTES}
        return out | {"tp": self.tp, "fp": self.fp, "fn": self.fn, "exact": self.exact}


def match(pred: Sequence[Detection], truth: Truth, max_dist: float = 3.0) -> Counts:
    """Greedy matching, highest score first: each detection takes the nearest free true object
    (counted or ignored) within ``max_dist`` pixels."""
    objs = [(d, True) for d in truth.counted] + [(d, False) for d in truth.ignored]
    free = [True] * len(objs)
    c = Counts()
    for p in sorted(pred, key=lambda d: -d.score):
        best, best_d2 = -1, max_dist**2
        for i, (t, _) in enumerate(objs):
            d2 = (p.x - t.x) ** 2 + (p.y - t.y) ** 2
            if free[i] and d2 <= best_d2:
                best, best_d2 = i, d2
        if best < 0:
            c.fp += 1
            continue
        free[best] = False
        t, counted = objs[best]
        if not counted:
            continue
        c.tp += 1
        right = {a: getattr(p, a) == getattr(t, a) for a in ATTRIBUTES}
        for a, ok in right.items():
            c.attr_right[a] += ok
        c.exact += all(right.values())
    c.fn = sum(1 for i, (_, counted) in enumerate(objs) if counted and free[i])
    return c
