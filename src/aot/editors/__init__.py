"""Image editors that paint pixels: a diffusers mask-inpainting editor and its tiny builds.

- ``DiffusersEditor`` / ``EditorConfig``: inpaint, outpaint and box edits on any diffusers
  inpainting pipeline, pixels outside the mask pasted back bit for bit.
- ``BoxEdit`` / ``box_request``: add / replace / remove inside a box as (mask, prompt).
- ``aot.editors.tiny.build_tiny_pipeline``: random-weight pipelines for tests and CPU runs.

Importing this package does not import diffusers; building a pipeline does.
"""

from .box_ops import BOX_OPS, BoxEdit, box_mask, box_prompt, box_request
from .canvas import outpaint_canvas, paste_back
from .diffusers_editor import DiffusersEditor, EditorConfig, load_pipeline

__all__ = [
    "BOX_OPS", "BoxEdit", "DiffusersEditor", "EditorConfig", "box_mask", "box_prompt", "box_request",
    "load_pipeline", "outpaint_canvas", "paste_back",
]
