"""The one place that formats prompts and extracts answers (paper: lettered options, \\boxed{X})."""

from __future__ import annotations

import re

from ..vqa import LETTERS, Question

INSTRUCTION = "Answer with \\boxed{letter}."
_BOXED = re.compile(r"\\boxed\{([^{}]*)\}")


def format_prompt(question: Question | str, options: tuple[str, ...] | list[str] | None = None) -> str:
    """'<question>\\nOptions:\\nA. left\\nB. right\\n...\\nAnswer with \\boxed{letter}.'"""
    if isinstance(question, Question):
        text, options = question.text, question.options
    else:
        text = question
        if options is None:
            raise ValueError("format_prompt: options are required when the question is given as text")
    lines = [text, "Options:"] + [f"{LETTERS[i]}. {o}" for i, o in enumerate(options)] + [INSTRUCTION]
    return "\n".join(lines)


def last_boxed(completion: str) -> str | None:
    """Content of the last \\boxed{...} in the completion, stripped, or None."""
    found = _BOXED.findall(completion)
    return found[-1].strip() if found else None


def extract_choice(completion: str, options: tuple[str, ...] | list[str]) -> str | None:
    """The chosen letter: the last \\boxed{...} holding a letter ('B', 'B.', '(B)') or an
    option's text (case-insensitive, 'B. right' too); None when there is no such box."""
    content = last_boxed(completion)
    if content is None:
        return None
    letters = LETTERS[: len(options)]
    c = content.strip().strip("()").strip()
    if len(c) >= 1 and c[0].upper() in letters and (len(c) == 1 or c[1:].strip().startswith((".", ")", ":"))):
        head = c[0].upper()
        rest = c[1:].strip().lstrip(".):").strip()
        if not rest or rest.lower() == options[letters.index(head)].lower():
            return head
    low = c.lower()
    for i, o in enumerate(options):
        if low == o.lower():
            return letters[i]
    return None


def is_exact_format(completion: str) -> bool:
    """True when the answer is written exactly as \\boxed{X}: a single capital letter."""
    content = last_boxed(completion)
    return content is not None and re.fullmatch(r"[A-D]", content) is not None
