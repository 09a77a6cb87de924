"""Semantic-integrity check of an edit: does the question still have the same answer, and
are its targets left alone?

The paper's attacker reward multiplies adversarial efficacy by an integrity term measured
with *localized SSIM* over the target instances; its data pipeline adds bbox-overlap and
duplication checks. ``check`` runs all of them and reports every failing reason:

1. exact recomputation of the answer on the edited scene graph (``aot.world.evaluate``,
   with the edit's pixel occluders and ``min_visible = 1 - max_occlusion``): the answer
   text is unchanged, references stay unique, targets stay present and visible, and the
   recomputed targets are the same objects as before;
2. localized SSIM (uniform 7x7 window, the scikit-image constants) between the clean and
   edited image over each target box, padded by ``ssim_pad`` and clipped to the canvas;
3. box checks: each located op's box (added object, moved object's destination, patch,
   perturbation) lies inside the canvas and has IoU <= ``max_target_iou`` with every
   target box;
4. duplication: no added or changed (replaced / moved) object matches a referring
   expression of the question (``a`` / ``b`` for relations, ``ref`` otherwise).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .backends.base import Verdict  # noqa: F401  (the neutral verdict; re-exported here)
from .edits.apply import EditResult
from .imageops import SSIM_K1, SSIM_K2, SSIM_WIN, local_ssim, ssim_box  # noqa: F401  (moved to aot.imageops; re-exported here)
from .world.questions import Question, describe, evaluate, matches
from .world.types import Obj, Scene, box_iou


@dataclass(frozen=True)
class IntegrityConfig:
    ssim_threshold: float = 0.85
    """Minimum local SSIM (mean over RGB channels) each padded target box must keep."""
    ssim_pad: int = 2
    """Pixels added on each side of a target box before the SSIM crop (then clipped to the
    canvas; a crop is grown to at least 7x7 if needed)."""
    max_target_iou: float = 0.0
    """Largest IoU allowed between a located op's box (add, move destination, patch,
    perturb) and any target box; 0.0 forbids any overlap."""
    max_occlusion: float = 0.4
    """Largest share of a target that may be hidden (by objects in front, the canvas edge
    or patches): targets must stay at least ``1 - max_occlusion`` visible."""
    check_duplicates: bool = True
    """Reject added or changed objects that match a referring expression of the question."""

    def __post_init__(self) -> None:
        if not -1.0 <= self.ssim_threshold <= 1.0:
            raise ValueError(f"ssim_threshold must be in [-1, 1], got {self.ssim_threshold}")
        if self.ssim_pad < 0:
            raise ValueError(f"ssim_pad must be >= 0, got {self.ssim_pad}")
        if not 0.0 <= self.max_target_iou <= 1.0:
            raise ValueError(f"max_target_iou must be in [0, 1], got {self.max_target_iou}")
        if not 0.0 <= self.max_occlusion <= 1.0:
            raise ValueError(f"max_occlusion must be in [0, 1], got {self.max_occlusion}")


def _refs(spec: dict[str, Any]) -> list[tuple[str, dict[str, str]]]:
    if spec["kind"] == "relation":
        return [("a", spec["a"]), ("b", spec["b"])]
    return [("ref", spec["ref"])]


def _desc(o: Obj) -> str:
    return f"{o.size} {o.color} {o.material} {o.shape}"


def check(clean_scene: Scene, clean_image: np.ndarray, question: Question, result: EditResult, cfg: IntegrityConfig | None = None) -> Verdict:
    """Judge one edit of ``clean_scene`` (rendered as ``clean_image``) for ``question``."""
    cfg = cfg or IntegrityConfig()
    W, H = clean_scene.width, clean_scene.height
    if clean_image.shape != result.image.shape or clean_image.shape[:2] != (H, W):
        raise ValueError(f"image shapes differ: clean {clean_image.shape}, edited {result.image.shape}, canvas {W}x{H}")
    reasons: list[str] = []
    before = question.answer_text

    # 1. exact recomputation
    ev = evaluate(result.scene, question.spec, occluders=result.occluders, min_visible=1.0 - cfg.max_occlusion)
    if ev.answer is None:
        reasons.extend(ev.reasons or ("no answer after edit",))
    elif ev.answer != before:
        reasons.append(f"answer changed: {before!r} -> {ev.answer!r}")
    else:
        ids_before = sorted(t.id for t in question.targets)
        if sorted(ev.targets) != ids_before:
            reasons.append(f"targets changed: ids {ids_before} -> {sorted(ev.targets)}")

    # 2. localized SSIM
    ssim: dict[int, float] = {}
    for t in question.targets:
        x0, y0, x1, y1 = ssim_box(t.box, cfg.ssim_pad, W, H)
        s = local_ssim(clean_image[y0:y1, x0:x1], result.image[y0:y1, x0:x1])
        ssim[t.id] = s
        if s < cfg.ssim_threshold:
            reasons.append(f"low SSIM: target {t.id} {s:.3f} < {cfg.ssim_threshold}")

    # 3. boxes
    for idx, box in zip(result.touched_ops, result.touched_boxes):
        label = f"op {idx + 1} ({result.program[idx].name})"
        if not (0 <= box[0] < box[2] <= W and 0 <= box[1] < box[3] <= H):
            reasons.append(f"box outside canvas: {label} box {box} not inside {W}x{H}")
        for t in question.targets:
            iou = box_iou(box, t.box)
            if iou > cfg.max_target_iou:
                reasons.append(f"box overlaps target: {label} IoU {iou:.3f} with target {t.id} > {cfg.max_target_iou}")

    # 4. duplication
    if cfg.check_duplicates:
        refs = _refs(question.spec)
        clean = {o.id: o for o in clean_scene.objects}
        for o in result.scene.objects:
            old = clean.get(o.id)
            if old == o:
                continue
            what = "new" if old is None else "changed"
            for name, ref in refs:
                if matches(o, ref):
                    reasons.append(f"duplicate: {what} object {o.id} ({_desc(o)}) matches {name} '{describe(ref)[4:]}'")

    return Verdict(passed=not reasons, reasons=tuple(reasons), ssim=ssim, answer_before=before, answer_after=ev.answer)
