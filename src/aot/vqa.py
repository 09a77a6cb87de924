"""Lettered visual questions and items, as every layer above the backends sees them.

Nothing here knows how an image was made: the procedural world (:mod:`aot.world`) and any
other backend (:mod:`aot.backends`) produce the same :class:`Item`, so the self-play loop,
AOT-SFT, scoring, evaluation and the report read items and never a world. ``question.spec``
and ``Item.scene`` are the backend's own: the world keeps the question's structured form and
its scene graph there; the loop passes them back to the backend untouched.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

LETTERS = "ABCD"
"""Option letters, in order; an answer is one of them."""

Box = tuple[int, int, int, int]
"""(x0, y0, x1, y1) in pixels, origin top-left, x1 and y1 exclusive."""

@dataclass(frozen=True)
class Target:
    """An instance the question is about: its id in the item and its box on the image."""

    id: int
    box: Box
    label: str = ""
    """What the instance is, in words (a detector's phrase); the world leaves it empty (its
    question spec describes the target)."""


@dataclass(frozen=True)
class Question:
    """A multiple-choice question about one image."""

    kind: str
    """The question's family (the world: relation, attribute, existence, count)."""
    text: str
    options: tuple[str, ...]
    answer: str
    """The right option's letter."""
    targets: tuple[Target, ...]
    """The instances the answer depends on; edits must leave them alone."""
    spec: dict[str, Any]
    """The backend's structured form of the question (the world recomputes answers from it)."""

    @property
    def answer_text(self) -> str:
        return self.options[LETTERS.index(self.answer)]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["options"] = list(self.options)
        # a label is written only when there is one, so unlabelled targets store as they always did
        d["targets"] = [{"id": t.id, "box": list(t.box), **({"label": t.label} if t.label else {})} for t in self.targets]
        return d

    @staticmethod
    def from_dict(d: dict[str, Any]) -> "Question":
        return Question(
            kind=d["kind"],
            text=d["text"],
            options=tuple(d["options"]),
            answer=d["answer"],
            targets=tuple(Target(int(t["id"]), tuple(int(v) for v in t["box"]), str(t.get("label", ""))) for t in d["targets"]),  # type: ignore[arg-type]
            spec=d["spec"],
        )


@dataclass(frozen=True)
class Item:
    """One question about one image: what a backend hands out, attackers edit and defenders answer.

    The field order (scene, image, question, seed) is the attackers' historical ``AttackItem``
    order, so positional construction keeps working."""

    scene: Any
    """What the backend made the image from, opaque to the loop (the world: its ``Scene``; a
    backend whose image is all there is: None). Only the backend and its own attackers read it."""
    image: np.ndarray
    """(H, W, 3) uint8."""
    question: Question
    seed: int
    """Per-item seed; a stochastic attacker draws from it alone."""
    id: str = ""
    """A stable name for the item (a file's question id); empty when the seed names it."""
    meta: dict[str, Any] = field(default_factory=dict)
    """Anything else the backend wants kept with the item (JSON-able)."""

    @property
    def options(self) -> tuple[str, ...]:
        return self.question.options

    @property
    def answer(self) -> str:
        return self.question.answer

    @property
    def targets(self) -> tuple[Target, ...]:
        return self.question.targets


def box_iou(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    ua = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / ua if ua > 0 else 0.0


def box_overlap(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    """Fraction of box ``b``'s area covered by box ``a``."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    area = (b[2] - b[0]) * (b[3] - b[1])
    return ix * iy / area if area > 0 else 0.0


__all__ = ["Box", "Item", "LETTERS", "Question", "Target", "box_iou", "box_overlap"]
