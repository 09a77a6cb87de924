"""The model attacker: a vision-language model that reads the clean image and the question and
writes an edit program in the text form (the paper's "propose a box and a description, then
fill it", learned end to end). Same registry and tokenizer as the defender, its own weights.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

import torch

from ..backends import get_backend
from ..edits.ops import MAX_OPS
from ..models.defender import Defender, conversation, load_defender
from ..vqa import LETTERS, Question
from .base import AttackItem
from .constrained import EditProgramLogitsProcessor, scene_bounds

META = "aot_attacker.json"


def attacker_prompt(question: Question, width: int, height: int) -> str:
    """What the attacker reads beside the image: the question, its options and answer, the
    targets (the instances the edit must leave intact: object id, then box) and the canvas
    size. The ids are what the relative ops (``twin ID ...``, ``mimic ID``) name."""
    opts = "\n".join(f"{LETTERS[i]}. {o}" for i, o in enumerate(question.options))
    targets = "; ".join(f"id {t.id} box " + " ".join(str(v) for v in t.box) for t in question.targets) or "none"
    return (
        f"Mislead a model answering: {question.text}\nOptions:\n{opts}\nAnswer: {question.answer_text}\n"
        f"Targets: {targets}\nCanvas: {width} {height}\nWrite an edit program that keeps the answer."
    )


def item_prompt(item: AttackItem) -> str:
    """The prompt of ``item``; its canvas is its image's size (the world renders a scene at its
    own size, so this is the scene's, without reading the scene)."""
    h, w = item.image.shape[:2]
    return attacker_prompt(item.question, w, h)


def item_conversation(item: AttackItem) -> list[dict[str, Any]]:
    return conversation(item_prompt(item))


class ModelAttacker:
    """``propose(batch)``: one program per item, greedy by default (then a program depends only
    on its item); with ``do_sample`` the draw is seeded from the batch's item seeds.

    ``constrained`` (default): decode under the edit-language grammar
    (:class:`~aot.attack.constrained.EditProgramLogitsProcessor`), so every proposal parses,
    with at most ``max_ops`` ops, within ``max_new_tokens``; with ``scene_bounds`` (default)
    coordinates are also kept within the batch's canvases (``scene_bounds``) and each proposal
    may name only the object ids of its own item's scene.

    The grammar is the world's edit language (``Backend.edit_grammar == "aot.edits"``); on a
    backend without one (``backend``) the attacker decodes freely, ``constrained`` notwithstanding,
    and the backend's ``parse`` rejects what does not parse."""

    name = "model"

    def __init__(
        self, vlm: Defender, do_sample: bool = False, temperature: float = 1.0, max_new_tokens: int = 24, batch_size: int = 64,
        constrained: bool = True, max_ops: int = MAX_OPS, scene_bounds: bool = True, backend: Any = None,
    ):
        self.vlm = vlm
        self.backend = backend
        self.do_sample, self.temperature = do_sample, temperature
        self.max_new_tokens, self.batch_size = max_new_tokens, batch_size
        self.constrained, self.max_ops, self.scene_bounds = constrained, max_ops, scene_bounds
        self._processors: dict[tuple, EditProgramLogitsProcessor] = {}

    @property
    def model(self):
        return self.vlm.model

    def logits_processor(self, batch: Sequence[AttackItem] = ()) -> EditProgramLogitsProcessor | None:
        """The grammar constraint for this attacker's tokenizer and budget, bounded to the scenes
        of ``batch`` when ``scene_bounds`` (None when unconstrained): coordinates within the
        largest canvas, and the rows of the next ``generate`` calls naming only the ids of
        ``batch[0]``, ``batch[1]``, ... in turn (one row per item, as in ``propose``). Built once
        per setting, its state cache reused across calls."""
        if not self.constrained or not has_grammar(self.backend):
            return None
        bounds = scene_bounds([it.scene for it in batch], self.max_ops) if self.scene_bounds and batch else {}
        if bounds:  # each row names only its own scene's ids (set below); the shared grammar needs no id bound
            bounds.pop("max_id")
        key = (self.max_ops, self.max_new_tokens, bounds.get("max_coord"))
        p = self._processors.get(key)
        if p is None:
            if len(self._processors) >= 8:  # a handful of settings in practice; bound the memory
                self._processors.clear()
            p = self._processors[key] = EditProgramLogitsProcessor(self.vlm.tokenizer, max_ops=self.max_ops, max_new_tokens=self.max_new_tokens, **bounds)
        # one prompt per item, in order (propose's layout; num_return_sequences=1)
        p.set_rows([[o.id for o in it.scene.objects] for it in batch] if bounds else None, num_return_sequences=1)
        return p

    def propose(self, batch: Sequence[AttackItem]) -> list[str]:
        if not batch:
            return []
        seed = int(sum(int(it.seed) * 1_000_003 ** (i % 7) for i, it in enumerate(batch)) % (2**31))
        outs = self.vlm.generate(
            [it.image for it in batch], [item_prompt(it) for it in batch], num_return_sequences=1,
            do_sample=self.do_sample, temperature=self.temperature, max_new_tokens=self.max_new_tokens,
            batch_size=self.batch_size, seed=seed, logits_processor=self.logits_processor(batch),
        )
        return [o[0].strip() for o in outs]

    def save(self, path: str | Path) -> Path:
        path = self.vlm.save(path)
        (Path(path) / META).write_text(json.dumps({"kind": "model-attacker", "max_new_tokens": self.max_new_tokens, "constrained": self.constrained, "max_ops": self.max_ops, "scene_bounds": self.scene_bounds}))
        return path

    @staticmethod
    def load(path: str | Path, **kwargs: Any) -> "ModelAttacker":
        p = Path(path)
        if not (p / META).exists():
            raise FileNotFoundError(f"{p} is not a saved model attacker (no {META}); train one with `aot attacker train`")
        return ModelAttacker(load_defender(str(p)), **kwargs)


def has_grammar(backend: Any = None) -> bool:
    """Whether :mod:`aot.attack.constrained`'s grammar describes ``backend``'s programs."""
    return get_backend(backend).edit_grammar == "aot.edits"


def init_attacker(init: str = "base", seed: int = 0, **kwargs: Any) -> ModelAttacker:
    """A fresh attacker: weights copied from ``init`` (default: the born defender, which already
    reads the world's images) or a random-init tiny registry model by name; ``kwargs`` go to
    :class:`ModelAttacker` (e.g. ``constrained=False``)."""
    torch.manual_seed(seed)
    return ModelAttacker(load_defender(init), **kwargs)
