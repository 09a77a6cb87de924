"""AOT defender reward for EasyR1 (copied as ``reward.py`` by ``aot data export --format easyr1``).

Self-contained on purpose (standard library only, no ``aot`` import) so EasyR1 can load it with
``worker.reward.reward_function=/path/to/reward.py:compute_score`` on a cluster where ``aot`` is
not installed. EasyR1 (``verl/workers/reward/function.py``) reads the module attributes
``REWARD_NAME`` and ``REWARD_TYPE``: with ``"batch"`` (set here) it calls ``compute_score`` once
with a list of dicts and expects a list back; with ``"sequential"`` once per sample with one
dict. Each dict has ``response`` (the decoded completion), ``response_length`` and
``ground_truth`` (the dataset's ``answer`` column); ``worker.reward.reward_function_kwargs``
would arrive as keyword arguments (this reward has none). ``compute_score`` takes every form:
a list of dicts, one dict, or ``compute_score(response, ground_truth)`` with two strings (the
older per-sample interface; verl's ``solution_str=`` keyword too).

The score is the paper's defender reward, identical to ``aot.rewards.defender_score``: 0.8 when
the choice in the last ``\\boxed{...}`` equals the answer, plus 0.2 only when it is also written
exactly as ``\\boxed{X}`` (one capital letter); otherwise 0. The exported ``answer`` column is
JSON, ``{"answer": "B", "options": ["left", "right", ...]}``, so a boxed option text
(``\\boxed{right}``) is read as its letter as in training; a bare letter (``"B"``) also works.
Returned keys: ``overall`` (the reward), ``accuracy`` (1.0 if the choice is right) and
``format`` (1.0 if the answer is written exactly as ``\\boxed{X}``).
"""

from __future__ import annotations

import json
import re
from typing import Any

REWARD_NAME = "aot_defender"
REWARD_TYPE = "batch"
"""How EasyR1 calls ``compute_score``: "batch" (a list of dicts) or "sequential" (one dict)."""
CORRECT_REWARD = 0.8
FORMAT_BONUS = 0.2
LETTERS = "ABCD"
_BOXED = re.compile(r"\\boxed\{([^{}]*)\}")
_EXACT = re.compile(r"[A-D]")


def parse_ground_truth(ground_truth: Any) -> tuple[str, list[str] | None]:
    """(answer letter, options or None) from the JSON form or a bare letter."""
    if isinstance(ground_truth, dict):
        return str(ground_truth["answer"]).strip(), list(ground_truth.get("options") or []) or None
    text = str(ground_truth).strip()
    if text.startswith("{"):
        d = json.loads(text)
        return str(d["answer"]).strip(), list(d.get("options") or []) or None
    return text, None


def last_boxed(response: str) -> str | None:
    found = _BOXED.findall(response)
    return found[-1].strip() if found else None


def extract_choice(response: str, options: list[str] | None) -> str | None:
    """The chosen letter from the last box: 'B', 'B.', '(B)', 'B. right' or an option's text."""
    content = last_boxed(response)
    if content is None:
        return None
    letters = LETTERS[: len(options)] if options else LETTERS
    c = content.strip().strip("()").strip()
    if c and c[0].upper() in letters and (len(c) == 1 or c[1:].strip().startswith((".", ")", ":"))):
        head = c[0].upper()
        rest = c[1:].strip().lstrip(".):").strip()
        if not rest or (options is not None and rest.lower() == options[letters.index(head)].lower()):
            return head
    if options:
        low = c.lower()
        for i, opt in enumerate(options):
            if low == opt.lower():
                return letters[i]
    return None


def score_one(response: str, ground_truth: Any) -> dict[str, float]:
    answer, options = parse_ground_truth(ground_truth)
    content = last_boxed(response)
    exact = 1.0 if content is not None and _EXACT.fullmatch(content) else 0.0
    accuracy = 1.0 if extract_choice(response, options) == answer else 0.0
    overall = (CORRECT_REWARD + FORMAT_BONUS * exact) if accuracy else 0.0
    return {"overall": overall, "format": exact, "accuracy": accuracy}


def compute_score(reward_inputs: Any = None, ground_truth: Any = None, **kwargs: Any) -> Any:
    """EasyR1 entry point: a list of dicts (``REWARD_TYPE = "batch"``) -> a list of scores; one
    dict (``"sequential"``) -> one score; ``(response, ground_truth)`` strings -> one score.
    Other keyword arguments (verl's ``data_source``, ``extra_info``) are ignored."""
    if reward_inputs is None and "solution_str" in kwargs:  # verl: compute_score(solution_str=..., ground_truth=...)
        reward_inputs = kwargs["solution_str"]
    if isinstance(reward_inputs, str):
        if ground_truth is None:
            raise TypeError("compute_score(response, ground_truth): ground_truth is missing")
        return score_one(reward_inputs, ground_truth)
    if isinstance(reward_inputs, dict):
        return score_one(reward_inputs["response"], reward_inputs["ground_truth"])
    if isinstance(reward_inputs, (list, tuple)):
        return [score_one(r["response"], r["ground_truth"]) for r in reward_inputs]
    raise TypeError(f"compute_score expects a list of dicts, a dict, or (response, ground_truth); got {type(reward_inputs).__name__}")
