"""The evaluation engine: items, the run config, and batched greedy + strict-k scoring.

Every benchmark turns into a flat list of :class:`Item` (an image and a lettered question);
:func:`score_items` runs the defender on all of them at once, greedily and in the paper's
strict mode, and returns one :class:`Outcome` per item. Benchmarks then compute their own
metrics from (items, outcomes). Pooling the items of every benchmark into one scoring pass
keeps the defender's batched ``generate`` (the hot path) full.

Strict mode (paper: "a sample counts as correct only if 3 trials are all correct"): up to
``strict_trials`` samples at ``temperature``. With ``strict_early_stop`` (default) trial r+1 is
only drawn for items whose trials 1..r were all correct: the strict verdict is the same, the
cost drops to about 1 + acc + acc^2 trials per item. ``Outcome.trials`` then holds the trials
actually drawn (a failed item ends on its first wrong trial).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Callable, Sequence

import numpy as np

from ..backends import BackendConfig
from ..integrity import IntegrityConfig
from ..models.prompt import extract_choice, format_prompt
from ..vqa import LETTERS, Question

Progress = Callable[[int, int, str], None]
"""``progress(done, total, phase)``: called after each generated chunk (total may shrink when
strict early stopping drops items)."""


@dataclass
class EvalConfig:
    """Settings of one evaluation run (benchmark sizes, seeds, decoding)."""

    n: int | None = None
    """Units per benchmark for every benchmark (questions, groups or base items: each benchmark
    says what one unit is); None uses each benchmark's default size."""
    sizes: dict[str, int] = field(default_factory=dict)
    """Per-benchmark unit counts, overriding ``n`` for the named benchmarks."""
    seed: int = 0
    """Evaluation seed index, 0..99: selects a disjoint slice of the evaluation seed space
    (``aot.eval.seeds``); different values give independent benchmark draws."""
    batch_size: int = 64
    """Prompts per ``generate`` call."""
    max_new_tokens: int = 16
    """Generation budget per answer (the born defender answers in about 6 tokens)."""
    strict_trials: int = 3
    """Sampled trials per item in strict mode (paper: 3); 0 disables strict mode."""
    temperature: float = 1.0
    """Sampling temperature of the strict trials (paper: 1.0)."""
    strict_early_stop: bool = True
    """Draw trial r+1 only for items whose earlier trials were all correct (same verdict)."""
    hr_size: int = 128
    """Canvas side of the HR-like benchmark (the tiny Qwen processor keeps up to 128x128 native)."""
    attacker: Any = "heuristic"
    """The held-out attacker: a name in ``aot.attack.ATTACKERS``, a path its loader accepts, or
    any object with ``propose(batch) -> list[str]``."""
    integrity: IntegrityConfig = field(default_factory=IntegrityConfig)
    """Integrity checks applied to the robustness attacks (the answer must not change; the
    world's thresholds: another backend judges with its own options)."""
    backend: BackendConfig = field(default_factory=BackendConfig)
    """Whose items the ``any_backend`` benchmarks draw and whose editor and judge they use
    (default: the world; on another backend only those benchmarks run)."""
    attack_tries: int = 40
    """Random single-op programs tried per (item, op type) before that pair is skipped."""
    pope_questions: str | None = None
    """POPE question file (jsonl: question_id, image, text, label) for the ``pope-file`` benchmark."""
    pope_images: str | None = None
    """Image folder of the POPE question file (default: the file's folder)."""
    vstar_file: str | None = None
    """V*-style question file (see ``aot.eval.adapters``) for the ``vstar-file`` benchmark."""
    vstar_images: str | None = None
    """Image folder of the V*-style file (default: the file's folder)."""
    keep_predictions: bool = True
    """Return per-item predictions under ``results["predictions"]``."""

    def __post_init__(self) -> None:
        if self.n is not None and self.n < 1:
            raise ValueError(f"EvalConfig.n must be >= 1 (or None for the defaults), got {self.n}")
        if not 0 <= self.seed < 100:
            raise ValueError(f"EvalConfig.seed must be in 0..99 (it indexes the evaluation seed space), got {self.seed}")
        if self.batch_size < 1 or self.max_new_tokens < 1:
            raise ValueError("EvalConfig: batch_size and max_new_tokens must be >= 1")
        if self.strict_trials < 0:
            raise ValueError(f"EvalConfig.strict_trials must be >= 0, got {self.strict_trials}")
        if self.temperature <= 0:
            raise ValueError(f"EvalConfig.temperature must be > 0, got {self.temperature}")
        if self.hr_size < 24:
            raise ValueError(f"EvalConfig.hr_size must be >= 24, got {self.hr_size}")
        for k, v in self.sizes.items():
            if v < 1:
                raise ValueError(f"EvalConfig.sizes[{k!r}] must be >= 1, got {v}")

    def size(self, bench: str, default: int) -> int:
        return int(self.sizes.get(bench, self.n if self.n is not None else default))

    @property
    def strict_mode(self) -> str:
        return f"strict{self.strict_trials}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-able settings (an attacker object is named, never copied)."""
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["sizes"] = dict(self.sizes)
        d["integrity"] = asdict(self.integrity)
        # the default backend is left out: a world evaluation's results read as before
        if self.backend.is_default:
            d.pop("backend")
        else:
            d["backend"] = self.backend.to_dict()
        a = self.attacker
        d["attacker"] = a if isinstance(a, (str, type(None))) else str(getattr(a, "name", type(a).__name__))
        return d


@dataclass(frozen=True)
class Item:
    """One question about one image. ``meta`` holds what the benchmark needs for its metrics
    (subset, group, variant, op...) and must stay JSON-able."""

    bench: str
    image: np.ndarray  # (H, W, 3) uint8
    question: Question
    meta: dict[str, Any] = field(default_factory=dict, hash=False)


@dataclass
class Outcome:
    """The defender's answers to one item."""

    completion: str
    """Greedy completion text."""
    pred: str | None
    """Greedy extracted letter (None when unreadable)."""
    correct: bool
    """Greedy correctness."""
    trials: list[bool] = field(default_factory=list)
    """Strict-mode trial correctness, in order (may stop early at the first wrong trial)."""
    trial_preds: list[str | None] = field(default_factory=list)

    def strict_correct(self, k: int) -> bool:
        return k > 0 and len(self.trials) >= k and all(self.trials[:k])

    def strict_pred(self, question: Question, k: int) -> str | None:
        """The strict-mode prediction: the answer when every trial is right, else the first
        wrong trial's prediction (a letter or None)."""
        if self.strict_correct(k):
            return question.answer
        for ok, p in zip(self.trials, self.trial_preds):
            if not ok:
                return p
        return None


def answer_text(question: Question, letter: str | None) -> str | None:
    """The option text of a letter, or None."""
    if letter is None or letter not in LETTERS[: len(question.options)]:
        return None
    return question.options[LETTERS.index(letter)]


def _chunks(idx: Sequence[int], size: int) -> list[list[int]]:
    return [list(idx[i : i + size]) for i in range(0, len(idx), size)]


def score_items(defender, items: Sequence[Item], cfg: EvalConfig, progress: Progress | None = None) -> list[Outcome]:
    """Greedy answers for every item, then strict-mode trials; one Outcome per item, in order.

    Items are sorted by image size and prompt length before batching (less padding); the
    chunk seeds depend only on ``cfg.seed``, the round and the chunk index.
    """
    prompts = [format_prompt(it.question) for it in items]
    order = sorted(range(len(items)), key=lambda i: (items[i].image.shape, len(prompts[i])))
    k = cfg.strict_trials
    total = len(items) * (1 + k)
    done = 0
    outs: list[Outcome | None] = [None] * len(items)

    def run(idx: list[int], sample: bool, seed: int) -> list[str]:
        comps = defender.generate(
            [items[i].image for i in idx],
            [prompts[i] for i in idx],
            do_sample=sample,
            temperature=cfg.temperature,
            max_new_tokens=cfg.max_new_tokens,
            batch_size=len(idx),
            seed=seed if sample else None,
        )
        return [c[0] for c in comps]

    for idx in _chunks(order, cfg.batch_size):
        for i, c in zip(idx, run(idx, False, 0)):
            q = items[i].question
            p = extract_choice(c, q.options)
            outs[i] = Outcome(completion=c, pred=p, correct=p == q.answer)
        done += len(idx)
        if progress:
            progress(done, total, "greedy")
    alive = list(order)
    for r in range(k):
        total = done + len(alive) * (k - r)
        for ci, idx in enumerate(_chunks(alive, cfg.batch_size)):
            seed = (cfg.seed * 1_000 + r) * 100_003 + ci
            for i, c in zip(idx, run(idx, True, seed)):
                q = items[i].question
                p = extract_choice(c, q.options)
                o = outs[i]
                assert o is not None
                o.trials.append(p == q.answer)
                o.trial_preds.append(p)
            done += len(idx)
            if progress:
                progress(done, total, f"strict {r + 1}/{k}")
        if cfg.strict_early_stop:
            alive = [i for i in alive if outs[i].trials[-1]]  # type: ignore[union-attr]
    return [o for o in outs if o is not None]


def mc_metrics(items: Sequence[Item], outcomes: Sequence[Outcome], k: int, group_key: str | None = None) -> dict[str, dict[str, float]]:
    """Accuracy (greedy) and strict-k accuracy, overall and per ``meta[group_key]`` value."""
    from .metrics import accuracy

    def block(sel: list[int]) -> tuple[float, float]:
        g = accuracy([outcomes[i].correct for i in sel])
        s = accuracy([outcomes[i].strict_correct(k) for i in sel]) if k else math.nan
        return g, s

    greedy: dict[str, float] = {}
    strict: dict[str, float] = {}
    allidx = list(range(len(items)))
    greedy["accuracy"], strict["accuracy"] = block(allidx)
    if group_key:
        groups: dict[str, list[int]] = {}
        for i, it in enumerate(items):
            groups.setdefault(str(it.meta.get(group_key)), []).append(i)
        for g, sel in sorted(groups.items()):
            greedy[f"{g}/accuracy"], strict[f"{g}/accuracy"] = block(sel)
    out = {"greedy": greedy}
    if k:
        out[f"strict{k}"] = strict
    return out
