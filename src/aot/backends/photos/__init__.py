"""AOT on photographs: a user's VQA file with target boxes, a diffusion inpainting editor, and an
integrity judge of cheap-to-costly checks (boxes, localized SSIM, an open-vocabulary detector,
an MLLM judge).

::

    from aot.backends.photos import PhotoBackend
    backend = PhotoBackend("my_items.jsonl")          # or PhotoBackend() for the shipped sample
    item = backend.items("train", 1, slot=0)[0]
    attempt = backend.attempt(item, "add 420 40 500 120 a small brown dog")

Modules: :mod:`.records` (the file format, loading, splits), :mod:`.adapters` (V*-bench and
POPE layouts onto it), :mod:`.program` (the edit language), :mod:`.editor` (carrying it out),
:mod:`.detector` (OWL-ViT / OWLv2), :mod:`.judge` (the checks), :mod:`.backend` (the
:class:`aot.backends.Backend`), :mod:`.sampling` (random programs, a random attacker).
Importing this package imports torch (the editor's pipelines are built on first use).
"""

from .adapters import coco_boxes, pope_records, vstar_records
from .backend import SAMPLE, PhotoBackend, PhotoBackendConfig, PhotoEditState, shift_targets
from .detector import Detection, Detector, OwlDetector
from .editor import PhotoEditor, PhotoEditResult
from .judge import BoxCheck, DetectorCheck, MllmCheck, PhotoJudgeConfig, SsimCheck
from .program import (
    Add, Patch, Perturb, Photometric, PhotoApplyError, PhotoEditError, PhotoOp, PhotoParseError, Remove, Replace,
    format_program, parse_program,
)
from .records import PHOTO_KINDS, SKIMAGE_PHOTOS, PhotoDataError, PhotoRecord, hashed_split, load_records, write_jsonl

__all__ = [
    "PHOTO_KINDS", "SAMPLE", "SKIMAGE_PHOTOS", "Add", "BoxCheck", "Detection", "Detector", "DetectorCheck", "MllmCheck",
    "OwlDetector", "Patch", "Perturb", "PhotoApplyError", "PhotoBackend", "PhotoBackendConfig", "PhotoDataError",
    "PhotoEditError", "PhotoEditResult", "PhotoEditState", "PhotoEditor", "PhotoJudgeConfig", "PhotoOp", "PhotoParseError",
    "PhotoRecord", "Photometric", "Remove", "Replace", "SsimCheck", "format_program", "hashed_split", "load_records",
    "coco_boxes", "parse_program", "pope_records", "shift_targets", "vstar_records", "write_jsonl",
]
