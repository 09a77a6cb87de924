"""The model attacker: a vision-language model that reads the clean image and the question and
writes an edit program in the text form (the paper's "propose a box and a description, then
fill it", learned end to end). Same registry and tokenizer as the defender, its own weights.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

import torch

from ..models.defender import Defender, conversation, load_defender
from ..world.questions import LETTERS, Question
from .base import AttackItem

META = "aot_attacker.json"


def attacker_prompt(question: Question, width: int, height: int) -> str:
    """What the attacker reads beside the image: the question, its options and answer, the
    target boxes (the instances the edit must leave intact) and the canvas size."""
    opts = "\n".join(f"{LETTERS[i]}. {o}" for i, o in enumerate(question.options))
    targets = "; ".join(" ".join(str(v) for v in t.box) for t in question.targets) or "none"
    return (
        f"Mislead a model answering: {question.text}\nOptions:\n{opts}\nAnswer: {question.answer_text}\n"
        f"Targets: {targets}\nCanvas: {width} {height}\nWrite an edit program that keeps the answer."
    )


def item_prompt(item: AttackItem) -> str:
    return attacker_prompt(item.question, item.scene.width, item.scene.height)


def item_conversation(item: AttackItem) -> list[dict[str, Any]]:
    return conversation(item_prompt(item))


class ModelAttacker:
    """``propose(batch)``: one program per item, greedy by default (then a program depends only
    on its item); with ``do_sample`` the draw is seeded from the batch's item seeds."""

    name = "model"

    def __init__(self, vlm: Defender, do_sample: bool = False, temperature: float = 1.0, max_new_tokens: int = 24, batch_size: int = 64):
        self.vlm = vlm
        self.do_sample, self.temperature = do_sample, temperature
        self.max_new_tokens, self.batch_size = max_new_tokens, batch_size

    @property
    def model(self):
        return self.vlm.model

    def propose(self, batch: Sequence[AttackItem]) -> list[str]:
        if not batch:
            return []
        seed = int(sum(int(it.seed) * 1_000_003 ** (i % 7) for i, it in enumerate(batch)) % (2**31))
        outs = self.vlm.generate(
            [it.image for it in batch], [item_prompt(it) for it in batch], num_return_sequences=1,
            do_sample=self.do_sample, temperature=self.temperature, max_new_tokens=self.max_new_tokens,
            batch_size=self.batch_size, seed=seed,
        )
        return [o[0].strip() for o in outs]

    def save(self, path: str | Path) -> Path:
        path = self.vlm.save(path)
        (Path(path) / META).write_text(json.dumps({"kind": "model-attacker", "max_new_tokens": self.max_new_tokens}))
        return path

    @staticmethod
    def load(path: str | Path, **kwargs: Any) -> "ModelAttacker":
        p = Path(path)
        if not (p / META).exists():
            raise FileNotFoundError(f"{p} is not a saved model attacker (no {META}); train one with `aot attacker train`")
        return ModelAttacker(load_defender(str(p)), **kwargs)


def init_attacker(init: str = "base", seed: int = 0) -> ModelAttacker:
    """A fresh attacker: weights copied from ``init`` (default: the born defender, which already
    reads the world's images) or a random-init tiny registry model by name."""
    torch.manual_seed(seed)
    return ModelAttacker(load_defender(init))
