"""Rewards as plain functions.

Each ``*_reward`` has TRL's reward-function signature ``(completions, **columns) -> list[float]``
(completions may be strings or conversational message lists); the ``*_score`` functions are the
per-sample maths, unit-tested on hand-written cases.
"""

from __future__ import annotations

from typing import Any, Sequence

from .models.prompt import extract_choice, is_exact_format

CORRECT_REWARD = 0.8
FORMAT_BONUS = 0.2


def completion_text(completion: Any) -> str:
    """A TRL completion as text: a string, or the content of the last message of a conversation."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, list) and completion and isinstance(completion[-1], dict):
        content = completion[-1].get("content", "")
        if isinstance(content, list):  # multimodal content parts
            return "".join(p.get("text", "") for p in content if isinstance(p, dict))
        return str(content)
    raise TypeError(f"unsupported completion type {type(completion).__name__}")


def defender_score(completion: str, answer: str, options: Sequence[str]) -> float:
    """Paper's defender reward: 0.8 if the extracted choice equals ``answer`` (a letter),
    plus 0.2 only when correct and written exactly as \\boxed{X}; otherwise 0."""
    choice = extract_choice(completion, options)
    if choice is None or choice != answer:
        return 0.0
    return CORRECT_REWARD + (FORMAT_BONUS if is_exact_format(completion) else 0.0)


def defender_reward(completions: list[Any], answer: list[str], options: list[Sequence[str]], **_: Any) -> list[float]:
    """TRL reward function over a batch: needs the dataset columns ``answer`` and ``options``."""
    return [defender_score(completion_text(c), a, o) for c, a, o in zip(completions, answer, options, strict=True)]


# --- attacker ------------------------------------------------------------------------
PARSE_PENALTY = -1.0
INTEGRITY_PENALTY = 0.0


def longest_wrong_run(edited_correct: Sequence[bool]) -> int:
    """Length of the longest run of consecutive wrong answers (False) among the k samples."""
    best = run = 0
    for ok in edited_correct:
        run = 0 if ok else run + 1
        best = max(best, run)
    return best


def attacker_score(
    parsed: bool,
    integrity_passed: bool,
    clean_correct: bool,
    edited_correct: Sequence[bool],
    parse_penalty: float = PARSE_PENALTY,
    integrity_penalty: float = INTEGRITY_PENALTY,
    p_correct: float | None = None,
) -> float:
    """Semantic integrity x adversarial efficacy (our reading of the paper's reward).

    - unparseable program: ``parse_penalty`` (default -1);
    - integrity verdict fails (answer changed, low local SSIM, box overlap, duplicate):
      ``integrity_penalty`` (default 0);
    - the defender was already wrong on the clean image: 0 (nothing to flip);
    - otherwise efficacy = longest run of consecutive wrong answers among the k defender samples
      on the edited image, divided by k: 0 when it is never fooled, 1 when all k are wrong;
    - with ``p_correct`` (the defender's probability of the right option on the edited image,
      ``Defender.option_probs``) efficacy is ``1 - p_correct`` instead: the expected share of
      wrong samples, without the sampling noise (``edited_correct`` then only needs to be
      non-empty).
    """
    if not parsed:
        return parse_penalty
    if not integrity_passed:
        return integrity_penalty
    if not clean_correct or not edited_correct:
        return 0.0
    if p_correct is not None:
        if not 0.0 <= p_correct <= 1.0 + 1e-9:
            raise ValueError(f"p_correct must be a probability, got {p_correct}")
        return max(0.0, 1.0 - p_correct)
    return longest_wrong_run(edited_correct) / len(edited_correct)
