"""Random photo edit programs, and the random attacker that writes them.

The photo counterpart of :func:`aot.edits.random_program`: a program of 1 to ``max_ops`` ops,
each box drawn inside the photo at 10-30% of each side and, in up to ``tries`` draws, clear of
every target box (an attacker that only ever hit targets would teach nothing). ``add`` and
``replace`` describe things from ``DESCRIPTIONS``; with probability ``p_target_phrase`` an
``add`` paints the label of one of the question's targets instead, the edit that changes a
count or a "no" answer and that the judge's detector check is there to catch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ...vqa import Box, Item, box_overlap
from .program import PATCH_COLOURS, Add, Patch, Perturb, Photometric, PhotoOp, Remove, Replace, format_program

DESCRIPTIONS: tuple[str, ...] = (
    "a small brown dog", "a potted plant", "a red ball", "a stack of books", "a white cat", "a wooden chair",
    "a blue umbrella", "a green bottle", "a glass vase", "a black bag", "a yellow sign", "a tree",
)
OP_WEIGHTS: dict[str, float] = {"add": 0.3, "replace": 0.15, "remove": 0.15, "patch": 0.15, "perturb": 0.15, "photo": 0.1}
ATTACKER_TAG = 0x9A7
"""Random-stream tag of :class:`PhotoRandomAttacker` (see :func:`aot.attack.base.item_rng`)."""


def random_box(rng: np.random.Generator, width: int, height: int, avoid: Sequence[Box], tries: int = 20) -> Box:
    """A box inside the photo at 10-30% of each side, clear of ``avoid`` if one is found in ``tries``."""
    box: Box = (0, 0, 1, 1)
    for _ in range(tries):
        bw = max(1, int(width * rng.uniform(0.1, 0.3)))
        bh = max(1, int(height * rng.uniform(0.1, 0.3)))
        x0, y0 = int(rng.integers(0, width - bw + 1)), int(rng.integers(0, height - bh + 1))
        box = (x0, y0, x0 + bw, y0 + bh)
        if not any(box_overlap(box, a) > 0 for a in avoid):
            break
    return box


def as_words(phrase: str) -> str:
    """``phrase`` in the description alphabet (lowercase letters, digits, ' and -), at most 8 words."""
    words = ["".join(c for c in w if c.isascii() and (c.isalnum() or c in "'-"))[:24] for w in phrase.lower().split()]
    return " ".join(w for w in words if w and w[0].isalnum())[:200] if words else ""


def op_names(ops: Sequence[str] | None) -> list[str]:
    """The photo ops among ``ops`` (None: all), in ``OP_WEIGHTS`` order. Names this language
    lacks are skipped (the world's ``move``, ``background``, ``twin`` and ``mimic``: what the
    ``random-all`` attacker asks every backend for); none left is an error."""
    names = [n for n in OP_WEIGHTS if ops is None or n in ops]
    if not names:
        raise ValueError(f"no photo op among {list(ops or ())}; the photo ops are {', '.join(OP_WEIGHTS)}")
    return names


def random_op(item: Item, rng: np.random.Generator, p_target_phrase: float = 0.2, ops: Sequence[str] | None = None) -> PhotoOp:
    h, w = item.image.shape[:2]
    names = op_names(ops)
    p = np.array([OP_WEIGHTS[n] for n in names])
    name = names[int(rng.choice(len(names), p=p / p.sum()))]
    if name == "photo":
        return Photometric(brightness=round(float(rng.uniform(0.8, 1.2)), 2), contrast=round(float(rng.uniform(0.8, 1.2)), 2))
    box = random_box(rng, w, h, [t.box for t in item.targets])
    if name == "remove":
        return Remove(box)
    if name == "patch":
        return Patch(box, str(rng.choice(list(PATCH_COLOURS))))
    if name == "perturb":
        return Perturb(box, int(rng.integers(2, 17)), int(rng.integers(0, 10_000)))
    labels = [w for w in map(as_words, [t.label for t in item.targets] + list(item.question.spec.get("absent", []))) if w]
    text = str(rng.choice(DESCRIPTIONS))
    if name == "add" and labels and rng.random() < p_target_phrase:
        text = "a " + str(rng.choice(labels))
    return (Add if name == "add" else Replace)(box, text)


def random_program(item: Item, rng: np.random.Generator, max_ops: int = 2, p_target_phrase: float = 0.2,
                   ops: Sequence[str] | None = None) -> tuple[PhotoOp, ...]:
    """1 to ``max_ops`` random ops for ``item`` (module doc); ``ops``: draw only these (see
    :func:`op_names`)."""
    names = op_names(ops)  # checked before drawing anything
    return tuple(random_op(item, rng, p_target_phrase, names) for _ in range(int(rng.integers(1, max_ops + 1))))


@dataclass
class PhotoRandomAttacker:
    """Writes one random photo program per item, from the item's own random stream."""

    max_ops: int = 2
    p_target_phrase: float = 0.2
    name: str = "photo-random"

    def propose(self, batch: Sequence[Item]) -> list[str]:
        return [format_program(random_program(it, np.random.default_rng([int(it.seed), ATTACKER_TAG]), self.max_ops, self.p_target_phrase))
                for it in batch]
