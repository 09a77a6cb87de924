"""How the dataset builder asks a defender: ``answerer(images, questions, n, seed, temperature)``
returns, per item, ``n`` completions (raw text; the builder extracts the choice with
``aot.models.prompt``). ``temperature == 0`` means greedy decoding (then ``n`` must be 1).

Two kinds behind one signature:

- :class:`DefenderAnswerer` wraps the vision-language :class:`aot.models.Defender` (the born
  defender by default): one batched ``generate`` per call, sampled at ``temperature`` with a
  torch seed, greedy when ``temperature == 0``;
- :class:`ScriptedAnswerer` is a deterministic stand-in without torch (``--defender scripted``):
  it knows the true answer and errs on a fixed share of (image, question, sample) triples chosen
  by hashing, so edited images get answers of their own. For tests and smoke runs only.

``make_answerer(spec, ...)`` builds either from a string, which is what travels to Ray workers.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, Sequence

import numpy as np

from ..models.prompt import format_prompt
from ..vqa import LETTERS, Question


class Answerer(Protocol):
    def __call__(self, images: Sequence[np.ndarray], questions: Sequence[Question], n: int, seed: int, temperature: float) -> list[list[str]]: ...


def completion_for(option_text: str, letter: str) -> str:
    """The born defender's answer format: the option's word, then the boxed letter."""
    return f" {option_text} \\boxed{{{letter}}}"


@dataclass
class ScriptedAnswerer:
    """Right unless a hash of (image, question) -- greedy -- or of (image, question, seed, sample)
    -- sampled -- falls in the ``p_wrong`` share."""

    p_wrong: float = 0.25
    name: str = "scripted"

    def __call__(self, images: Sequence[np.ndarray], questions: Sequence[Question], n: int, seed: int, temperature: float) -> list[list[str]]:
        if temperature == 0 and n != 1:
            raise ValueError("greedy answers repeat: ask for n=1")
        out = []
        for img, q in zip(images, questions, strict=True):
            base = hashlib.sha256(np.ascontiguousarray(img).tobytes() + q.text.encode()).digest()
            comps = []
            for i in range(n):
                salt = b"greedy" if temperature == 0 else f"{seed}/{i}".encode()
                h = int.from_bytes(hashlib.sha256(base + salt).digest()[:8], "big")
                li = LETTERS.index(q.answer)
                if (h % 10_000) < self.p_wrong * 10_000:
                    li = (li + 1 + (h >> 20) % (len(q.options) - 1)) % len(q.options)
                comps.append(completion_for(q.options[li], LETTERS[li]))
            out.append(comps)
        return out


@dataclass
class DefenderAnswerer:
    """A loaded :class:`aot.models.Defender` behind the answerer signature."""

    defender: Any
    max_new_tokens: int = 12
    batch_size: int = 64

    def __call__(self, images: Sequence[np.ndarray], questions: Sequence[Question], n: int, seed: int, temperature: float) -> list[list[str]]:
        if temperature == 0 and n != 1:
            raise ValueError("greedy answers repeat: ask for n=1")
        if not images:
            return []
        return self.defender.generate(
            list(images),
            [format_prompt(q) for q in questions],
            num_return_sequences=n,
            do_sample=temperature > 0,
            temperature=temperature if temperature > 0 else 1.0,
            max_new_tokens=self.max_new_tokens,
            batch_size=self.batch_size,
            seed=seed,
        )


def make_answerer(spec: str, max_new_tokens: int = 12, batch_size: int = 64) -> Answerer:
    """``"scripted"`` / ``"scripted:0.3"`` (share wrong), or anything ``load_defender`` accepts:
    ``"base"`` (the shipped born defender), a tiny registry name (random init) or a directory."""
    if spec == "scripted" or spec.startswith("scripted:"):
        return ScriptedAnswerer(float(spec.split(":", 1)[1])) if ":" in spec else ScriptedAnswerer()
    from ..models.defender import load_defender

    return DefenderAnswerer(load_defender(spec), max_new_tokens, batch_size)


def defender_fingerprint(spec: str) -> str:
    """``spec`` plus a short hash of its weight files (``*.safetensors``) when it names a
    directory (or "base"), so a dataset records which weights answered, and resuming with other
    weights rebuilds; saved code, processor and tokenizer files do not count."""
    path: Path | None = None
    if spec == "base":
        from ..models.defender import ASSET_DIR

        path = ASSET_DIR
    elif os.path.isdir(spec):
        path = Path(spec)
    if path is None or not path.is_dir():
        return spec
    h = hashlib.sha256()
    for f in sorted(p for p in path.rglob("*.safetensors") if p.is_file()):
        h.update(str(f.relative_to(path)).encode())
        with open(f, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    return f"{spec}@{h.hexdigest()[:12]}"
