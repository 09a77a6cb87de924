"""Scoring edit programs against a frozen defender: the one place that turns proposals into
verdicts, defender answers and attacker rewards (used by the reward, the evaluation and the
curriculum). Defender calls are batched across everything passed in at once.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from ..backends import Backend, get_backend
from ..integrity import IntegrityConfig
from ..rewards import attacker_score
from ..vqa import LETTERS
from .base import AttackItem


EFFICACY = ("samples", "prob")


@dataclass(frozen=True)
class ScoringConfig:
    """How proposals are judged."""

    k: int = 3
    """Defender samples per edited image (efficacy counts consecutive wrong ones)."""
    temperature: float = 1.0
    """Defender sampling temperature for the k samples; 0 means greedy (then k = 1 sample repeated)."""
    parse_penalty: float = -1.0
    """Reward of a program that does not parse or cannot be applied."""
    integrity_penalty: float = 0.0
    """Reward of a program that fails the integrity verdict."""
    efficacy: str = "samples"
    """'samples': efficacy from the k sampled answers (longest wrong run / k, the paper's);
    'prob': 1 - the defender's probability of the right option (``Defender.option_probs``,
    teacher-forced, no sampling noise: a dense reward where flips are rare). With 'prob' an
    edit counts as a flip when the most likely option is wrong."""
    diversity_bonus: float = 0.0
    """Added to passing programs: bonus x (1 - share of their first op type among the batch's
    passing programs); 0 disables it. Guards against collapsing onto one trick."""
    integrity: IntegrityConfig = field(default_factory=IntegrityConfig)
    """Integrity thresholds."""
    batch_size: int = 64
    """Defender generation batch size."""

    def __post_init__(self) -> None:
        if self.k < 1:
            raise ValueError("k must be >= 1")
        if self.temperature < 0:
            raise ValueError("temperature must be >= 0")
        if self.efficacy not in EFFICACY:
            raise ValueError(f"efficacy must be one of {EFFICACY}, got {self.efficacy!r}")


@dataclass
class Scored:
    """One proposal's fate."""

    text: str
    parsed: bool
    passed: bool
    reasons: tuple[str, ...]
    ops: tuple[str, ...]
    clean_correct: bool
    edited_correct: tuple[bool, ...]
    reward: float
    edited_image: np.ndarray | None = None
    fill: dict[str, Any] | None = None
    """A diffusion attacker's fill (op, box, description, seed); None for a program."""

    @property
    def success(self) -> bool:
        """Passes integrity and flips a clean-correct answer (majority of the k samples wrong)."""
        return self.passed and self.clean_correct and sum(not c for c in self.edited_correct) * 2 > len(self.edited_correct)


def _answers(defender: Any, images: list[np.ndarray], questions: list, cfg: ScoringConfig, seed: int) -> list[list[bool]]:
    if not images:
        return []
    greedy = cfg.temperature == 0
    letters = defender.answer(
        images, questions, num_return_sequences=1 if greedy else cfg.k, do_sample=not greedy,
        temperature=cfg.temperature or 1.0, batch_size=cfg.batch_size, seed=seed,
    )
    return [[a == q.answer for a in ls] for ls, q in zip(letters, questions)]


def clean_correctness(defender: Any, items: Sequence[AttackItem], cfg: ScoringConfig, seed: int = 0) -> list[bool]:
    """Whether the defender answers each clean item right on every one of its samples."""
    res = _answers(defender, [it.image for it in items], [it.question for it in items], cfg, seed)
    return [all(r) for r in res]


def score_programs(
    defender: Any,
    items: Sequence[AttackItem],
    texts: Sequence[str],
    clean_correct: Sequence[bool],
    cfg: ScoringConfig,
    seed: int = 0,
    keep_images: bool = False,
    backend: Backend | None = None,
) -> list[Scored]:
    """Parse, apply, check and (for passing programs) query the defender; never raises on bad text."""
    if not (len(items) == len(texts) == len(clean_correct)):
        raise ValueError(f"score_programs: {len(items)} items, {len(texts)} texts, {len(clean_correct)} clean flags")
    backend = get_backend(backend)
    staged: list[dict[str, Any]] = []
    for it, text, cc in zip(items, texts, clean_correct):
        a = backend.attempt(it, text, backend.run_judge_settings(cfg.integrity))
        rec: dict[str, Any] = {"text": text, "clean_correct": bool(cc), "ops": tuple(type(op).__name__ for op in a.program or ()), "parsed": a.edit is not None}
        if a.edit is None:  # a program that cannot be applied counts as unparseable too
            rec.update(reasons=(f"unparseable: {a.error}",), passed=False, image=None)
        else:
            rec.update(reasons=tuple(a.verdict.reasons), passed=a.passed, image=a.edit.image)  # type: ignore[union-attr]
        staged.append(rec)
    return score_staged(defender, staged, [it.question for it in items], cfg, seed, keep_images)


def score_staged(defender: Any, staged: Sequence[dict[str, Any]], questions: Sequence[Any], cfg: ScoringConfig, seed: int = 0,
                 keep_images: bool = False) -> list[Scored]:
    """The defender's part of scoring, for edits already judged (a program's, or a diffusion
    fill's): one batched defender call for every passing, clean-correct edit, then
    ``attacker_score`` (integrity x efficacy). ``staged[i]`` holds text, clean_correct, ops,
    parsed, reasons, passed, image (None when nothing was made) and optionally fill (kept on
    the ``Scored``); ``questions[i]`` is its question."""
    ask = [i for i, r in enumerate(staged) if r["passed"] and r["clean_correct"]]
    images, qs = [staged[i]["image"] for i in ask], [questions[i] for i in ask]
    p_right: dict[int, float] = {}
    if cfg.efficacy == "prob":  # one "answer" per edit: is the most likely option the right one
        probs = defender.option_probs(images, qs, batch_size=cfg.batch_size) if ask else []
        p_right = {i: float(p[LETTERS.index(q.answer)]) for i, p, q in zip(ask, probs, qs)}
        answers = [[LETTERS[int(np.argmax(p))] == q.answer] for p, q in zip(probs, qs)]
    else:
        answers = _answers(defender, images, qs, cfg, seed)
    edited: dict[int, list[bool]] = dict(zip(ask, answers))
    passing_ops = Counter(r["ops"][0] for r in staged if r["passed"] and r["ops"])
    n_pass = sum(passing_ops.values())
    out = []
    for i, r in enumerate(staged):
        ec = tuple(edited.get(i, ()))
        reward = attacker_score(r["parsed"], r["passed"], r["clean_correct"], ec, cfg.parse_penalty, cfg.integrity_penalty, p_right.get(i))
        if cfg.diversity_bonus and r["passed"] and r["ops"]:
            reward += cfg.diversity_bonus * (1.0 - passing_ops[r["ops"][0]] / n_pass)
        out.append(Scored(r["text"], r["parsed"], r["passed"], r["reasons"], r["ops"], r["clean_correct"], ec, reward,
                          r["image"] if keep_images else None, r.get("fill")))
    return out


def summarize(scored: Sequence[Scored]) -> dict[str, Any]:
    """Rates over proposals and the operation mix (share of each op type among parsed programs)."""
    n = len(scored)
    ops = Counter(op for s in scored for op in s.ops[:1])
    total_ops = sum(ops.values())
    return {
        "n": n,
        "parse_rate": sum(s.parsed for s in scored) / n if n else float("nan"),
        "integrity_pass_rate": sum(s.passed for s in scored) / n if n else float("nan"),
        "success_rate": sum(s.success for s in scored) / n if n else float("nan"),
        "clean_correct_rate": sum(s.clean_correct for s in scored) / n if n else float("nan"),
        "mean_reward": float(np.mean([s.reward for s in scored])) if n else float("nan"),
        "op_mix": {k: v / total_ops for k, v in sorted(ops.items())} if total_ops else {},
    }


def breakdown(scored: Sequence[Scored], keys: Sequence[str]) -> dict[str, dict[str, float]]:
    """Per group (``keys[i]`` labels ``scored[i]``, e.g. its first op or its question kind):
    proposals, integrity pass rate, success rate, and the flip rate among passing proposals on
    clean-correct questions (how effective the edits that count are)."""
    if len(keys) != len(scored):
        raise ValueError(f"breakdown: {len(scored)} proposals but {len(keys)} keys")
    groups: dict[str, list[Scored]] = {}
    for s, k in zip(scored, keys):
        groups.setdefault(k, []).append(s)
    out = {}
    for k in sorted(groups):
        g = groups[k]
        eligible = sum(s.passed and s.clean_correct for s in g)
        succ = sum(s.success for s in g)
        out[k] = {
            "n": len(g),
            "integrity_pass_rate": sum(s.passed for s in g) / len(g),
            "success_rate": succ / len(g),
            "flip_rate_passing": succ / eligible if eligible else float("nan"),
        }
    return out
