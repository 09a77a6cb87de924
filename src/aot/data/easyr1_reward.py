"""AOT defender reward for EasyR1 (copied as ``reward.py`` by ``aot data export --format easyr1``).

Self-contained on purpose (standard library only, no ``aot`` import) so EasyR1 can load it with
``worker.reward.reward_function=./reward.py:compute_score`` on a cluster where ``aot`` is not
installed. EasyR1 calls it either per sample (``reward_type=sequential``: one dict in, one dict
out) or per batch (``reward_type=batch``: a list of dicts in, a list out); both work. Each input
has ``response`` (the decoded completion) and ``ground_truth`` (the dataset's ``answer`` column).

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


def compute_score(reward_inputs: Any, **_: Any) -> Any:
    """EasyR1 entry point: a dict (sequential) or a list of dicts (batch)."""
    if isinstance(reward_inputs, dict):
        return score_one(reward_inputs["response"], reward_inputs["ground_truth"])
    return [score_one(r["response"], r["ground_truth"]) for r in reward_inputs]
