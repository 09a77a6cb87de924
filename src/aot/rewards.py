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
