"""Make the Qwen-Image edit pipelines run at the size asked for.

``QwenImageEditInpaintPipeline`` (and the other Qwen edit pipelines) ignore ``height``/``width``
and resize every input to about 1024x1024 through a module-level ``calculate_dimensions(1024 *
1024, ratio)``; ``QwenImageEditPlusPipeline`` also reads module constants ``VAE_IMAGE_SIZE`` and
``CONDITION_IMAGE_SIZE``. For a 64x64 tiny run that turns a fraction of a second into minutes,
and the output no longer matches the input for the paste-back. ``small_image_sizes`` swaps those
module attributes for the duration of one call so the pipeline keeps the (already
multiple-of-patch) size it was given. Pipelines without them are left alone. Not thread-safe:
two threads calling one Qwen pipeline module at different sizes would see each other's sizes.
"""

from __future__ import annotations

import sys
from contextlib import contextmanager
from typing import Any, Iterator


def exact_dimensions(width: int, height: int, original: Any):
    """A ``calculate_dimensions`` stand-in that returns (width, height) in ``original``'s tuple shape."""

    def calculate_dimensions(target_area: float, ratio: float):
        out = original(target_area, ratio)
        return (width, height, *out[2:])

    return calculate_dimensions


@contextmanager
def small_image_sizes(pipe: Any, height: int, width: int) -> Iterator[None]:
    """Within the block, ``pipe``'s module computes its working size as exactly ``height x width``."""
    module = sys.modules.get(type(pipe).__module__)
    saved: dict[str, Any] = {}
    if module is not None and hasattr(module, "calculate_dimensions"):
        saved["calculate_dimensions"] = module.calculate_dimensions
        module.calculate_dimensions = exact_dimensions(width, height, module.calculate_dimensions)
        for name in ("VAE_IMAGE_SIZE", "CONDITION_IMAGE_SIZE"):
            if hasattr(module, name):
                saved[name] = getattr(module, name)
                setattr(module, name, height * width)
    try:
        yield
    finally:
        for name, value in saved.items():
            setattr(module, name, value)
