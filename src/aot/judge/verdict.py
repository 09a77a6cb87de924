"""Integrity verdict for pixel edits (a diffusion fill), judged by eyes rather than by the scene graph.

A diffusion fill changes pixels, not the scene graph, so ``aot.integrity.check`` cannot recompute
the answer. ``judge_verdict`` compares what a detector (the world judge, or any callable with
its signature) sees in the clean and the edited image, and reports every failing reason:

1. duplicates: an object the detector sees in the edited image, centred in the edit mask
   (grown by ``mask_margin``) and absent from the clean image (no clean detection with the
   same attributes within ``match_px``), that matches a referring expression of the question:
   a relation's ``a`` or ``b`` (a copy of a target), an attribute question's ``ref``, or the
   kind a count or existence question asks about (which would change the count or the yes/no);
2. targets intact: every target box the mask touches (padded by ``ssim_pad``) keeps a local
   SSIM of at least ``ssim_threshold`` (boxes the mask misses are bit-identical after
   paste-back: SSIM 1), and the object the detector read at the target in the clean image is
   still read there, with the same attributes, in the edited one.

``answer_after`` is None: the judge does not recompute the answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from ..backends.base import Verdict
from ..integrity import local_ssim, ssim_box
from ..vqa import Question
from .detections import Detection, describe_ref

Detector = Callable[[np.ndarray], Sequence[Sequence[Detection]]]
"""(B, H, W, 3) uint8 -> detections per image (``WorldJudge.detect``)."""


@dataclass(frozen=True)
class JudgeVerdictConfig:
    """Thresholds of the judge's integrity verdict."""

    ssim_threshold: float = 0.85
    """Minimum local SSIM of a target box the mask touches (as ``IntegrityConfig``)."""
    ssim_pad: int = 2
    """Pixels added on each side of a target box before the SSIM crop."""
    match_px: float = 3.0
    """Detections this close, with the same attributes, are the same object."""
    mask_margin: int = 2
    """New objects are looked for with centres inside the mask grown by this many pixels."""
    check_duplicates: bool = True
    """Reject new objects that match a referring expression of the question."""

    def __post_init__(self) -> None:
        if not -1.0 <= self.ssim_threshold <= 1.0:
            raise ValueError(f"ssim_threshold must be in [-1, 1], got {self.ssim_threshold}")
        if self.match_px <= 0 or self.mask_margin < 0 or self.ssim_pad < 0:
            raise ValueError("match_px must be positive, mask_margin and ssim_pad non-negative")


def question_refs(spec: dict[str, Any]) -> list[tuple[str, dict[str, str]]]:
    """The referring expressions of a world question spec, by name (relation: a and b; else ref)."""
    if spec["kind"] == "relation":
        return [("a", spec["a"]), ("b", spec["b"])]
    return [("ref", spec["ref"])] if "ref" in spec else []


def same_object(a: Detection, b: Detection, match_px: float) -> bool:
    return a.attrs() == b.attrs() and (a.x - b.x) ** 2 + (a.y - b.y) ** 2 <= match_px**2


def grow(mask: np.ndarray, margin: int) -> np.ndarray:
    """``mask`` (H, W) bool grown by ``margin`` pixels in the 8 directions (a square dilation)."""
    if margin == 0:
        return mask
    h, w = mask.shape
    padded = np.pad(mask, margin)
    out = np.zeros_like(mask)
    for dy in range(2 * margin + 1):
        for dx in range(2 * margin + 1):
            out |= padded[dy : dy + h, dx : dx + w]
    return out


def new_objects(clean: Sequence[Detection], edited: Sequence[Detection], mask: np.ndarray, cfg: JudgeVerdictConfig) -> list[Detection]:
    """Edited detections centred in the grown mask that no clean detection accounts for."""
    region = grow(mask, cfg.mask_margin)
    h, w = mask.shape
    found = []
    for d in edited:
        x, y = min(max(int(d.x), 0), w - 1), min(max(int(d.y), 0), h - 1)
        if region[y, x] and not any(same_object(d, c, cfg.match_px) for c in clean):
            found.append(d)
    return found


def reading_at(dets: Sequence[Detection], box: tuple[int, int, int, int]) -> Detection | None:
    """The detection centred in ``box`` nearest its centre (the object the judge reads there)."""
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    inside = [d for d in dets if box[0] <= d.x < box[2] and box[1] <= d.y < box[3]]
    return min(inside, key=lambda d: (d.x - cx) ** 2 + (d.y - cy) ** 2, default=None)


def judge_verdict(clean: np.ndarray, edited: np.ndarray, mask: np.ndarray, question: Question, detect: Detector,
                  cfg: JudgeVerdictConfig | None = None) -> Verdict:
    """Judge one pixel edit (``mask``: the pixels it may have changed) of ``clean`` for ``question``."""
    cfg = cfg or JudgeVerdictConfig()
    if clean.shape != edited.shape or mask.shape != clean.shape[:2]:
        raise ValueError(f"shapes differ: clean {clean.shape}, edited {edited.shape}, mask {mask.shape}")
    H, W = mask.shape
    clean_d, edit_d = detect(np.stack([clean, edited]))
    reasons: list[str] = []

    if cfg.check_duplicates:
        refs = question_refs(question.spec)
        for d in new_objects(clean_d, edit_d, mask, cfg):
            for name, ref in refs:
                if all(getattr(d, k) == v for k, v in ref.items()):
                    reasons.append(f"duplicate: new object ({d.describe()}) at ({d.x:.0f}, {d.y:.0f}) matches {name} '{describe_ref(ref)}'")

    ssim: dict[int, float] = {}
    for t in question.targets:
        x0, y0, x1, y1 = ssim_box(t.box, cfg.ssim_pad, W, H)
        if not mask[y0:y1, x0:x1].any():
            ssim[t.id] = 1.0  # untouched: bit-identical after paste-back
            continue
        ssim[t.id] = s = local_ssim(clean[y0:y1, x0:x1], edited[y0:y1, x0:x1])
        if s < cfg.ssim_threshold:
            reasons.append(f"low SSIM: target {t.id} {s:.3f} < {cfg.ssim_threshold}")
        before = reading_at(clean_d, t.box)
        if before is not None and not any(same_object(before, d, cfg.match_px) for d in edit_d):
            after = reading_at(edit_d, t.box)
            now = f"reads {after.describe()}" if after is not None else "sees nothing there"
            reasons.append(f"target destroyed: target {t.id} ({before.describe()}) is gone, the judge {now}")

    return Verdict(passed=not reasons, reasons=tuple(reasons), ssim=ssim, answer_before=question.answer_text, answer_after=None)
