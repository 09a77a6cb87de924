"""Box + description edits (the paper's "propose a box and a description") as a mask and a prompt.

An attacker names a box (x0, y0, x1, y1; x1/y1 exclusive, as in ``aot.edits``) and says what to
put there. ``add`` paints a new object described by the text into the box; ``replace`` paints
over whatever is in the box with the described object; ``remove`` paints the box over with
background. For a mask-inpainting pipeline all three are "fill this box with this prompt": they
differ only in the prompt, and ``remove`` ignores the description.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BOX_OPS = ("add", "replace", "remove")
DEFAULT_BACKGROUND_PROMPT = "plain background, empty scene, nothing there"
"""Prompt of a ``remove``: ask the filler for background only."""


@dataclass(frozen=True)
class BoxEdit:
    """One box + description edit."""

    op: str
    """'add', 'replace' or 'remove'."""
    box: tuple[int, int, int, int]
    """(x0, y0, x1, y1) in pixels, x1/y1 exclusive."""
    description: str = ""
    """What to paint in the box ("small wooden clock"); unused by 'remove'."""

    def __post_init__(self) -> None:
        if self.op not in BOX_OPS:
            raise ValueError(f"box edit op must be one of {BOX_OPS}, got {self.op!r}")
        if len(self.box) != 4:
            raise ValueError(f"box must be (x0, y0, x1, y1), got {self.box!r}")
        x0, y0, x1, y1 = self.box
        if not (x0 < x1 and y0 < y1):
            raise ValueError(f"box {self.box} is empty: need x0 < x1 and y0 < y1")
        if self.op != "remove" and not self.description.strip():
            raise ValueError(f"a {self.op!r} edit needs a description of what to paint")


def box_mask(shape: tuple[int, int], box: tuple[int, int, int, int]) -> np.ndarray:
    """HxW bool mask, True inside ``box``; a box that leaves the image is an error, not clipped."""
    h, w = shape
    x0, y0, x1, y1 = box
    if x0 < 0 or y0 < 0 or x1 > w or y1 > h or x0 >= x1 or y0 >= y1:
        raise ValueError(f"box {box} is empty or outside the {w}x{h} image")
    mask = np.zeros((h, w), dtype=bool)
    mask[y0:y1, x0:x1] = True
    return mask


def box_prompt(edit: BoxEdit, background: str = DEFAULT_BACKGROUND_PROMPT) -> str:
    """The fill prompt of ``edit``: its description, or ``background`` for a removal."""
    return background if edit.op == "remove" else edit.description.strip()


def box_request(
    shape: tuple[int, int], edit: BoxEdit, background: str = DEFAULT_BACKGROUND_PROMPT
) -> tuple[np.ndarray, str]:
    """(mask, prompt) that a mask-inpainting editor needs to carry out ``edit`` on an HxW image."""
    return box_mask(shape, edit.box), box_prompt(edit, background)
