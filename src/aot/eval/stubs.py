"""Stand-in defenders with ``Defender.generate``'s signature, for tests and dry runs.

``ConstantDefender("\\\\boxed{A}")`` always writes the same completion; ``OracleDefender(items)``
answers every known (image, prompt) correctly and, when sampling, follows an optional script of
per-trial mistakes. Both count their calls so tests can check batching and early stopping.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..models.prompt import format_prompt


def _key(image: Any, prompt: str) -> str:
    arr = np.ascontiguousarray(np.asarray(image, dtype=np.uint8))
    return hashlib.sha1(arr.tobytes() + str(arr.shape).encode() + prompt.encode()).hexdigest()


class ConstantDefender:
    def __init__(self, completion: str = "\\boxed{A}"):
        self.completion = completion
        self.calls: list[tuple[int, bool]] = []  # (batch size, sampled)

    def generate(self, images: Sequence[Any], prompts: Sequence[str], num_return_sequences: int = 1, do_sample: bool = False, **_: Any) -> list[list[str]]:
        self.calls.append((len(prompts), do_sample))
        return [[self.completion] * num_return_sequences for _ in prompts]


class OracleDefender:
    """Right on every item it was built with. ``wrong_trials`` maps an item index to the set of
    sampled-trial numbers (0-based, counted per item) on which it answers wrongly instead;
    ``wrong_greedy`` is a set of item indices it gets wrong greedily."""

    def __init__(self, items: Sequence[Any], wrong_greedy: set[int] | None = None, wrong_trials: dict[int, set[int]] | None = None):
        self.index = {_key(it.image, format_prompt(it.question)): i for i, it in enumerate(items)}
        self.items = list(items)
        self.wrong_greedy = set(wrong_greedy or ())
        self.wrong_trials = dict(wrong_trials or {})
        self.sampled: dict[int, int] = {}
        self.calls: list[tuple[int, bool]] = []

    def _answer(self, i: int, wrong: bool) -> str:
        q = self.items[i].question
        letters = "ABCD"[: len(q.options)]
        a = q.answer if not wrong else next(x for x in letters if x != q.answer)
        return f"\\boxed{{{a}}}"

    def generate(self, images: Sequence[Any], prompts: Sequence[str], num_return_sequences: int = 1, do_sample: bool = False, **_: Any) -> list[list[str]]:
        self.calls.append((len(prompts), do_sample))
        out = []
        for im, p in zip(images, prompts):
            i = self.index.get(_key(im, p))
            if i is None:
                out.append(["\\boxed{Z}"] * num_return_sequences)
                continue
            if not do_sample:
                out.append([self._answer(i, i in self.wrong_greedy)] * num_return_sequences)
                continue
            group = []
            for _ in range(num_return_sequences):
                t = self.sampled.get(i, 0)
                self.sampled[i] = t + 1
                group.append(self._answer(i, t in self.wrong_trials.get(i, set())))
            out.append(group)
        return out
