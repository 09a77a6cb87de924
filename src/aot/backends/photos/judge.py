"""Integrity of a photo edit without a scene graph: four checks, cheapest first.

A photo has no scene graph to recompute the answer from, so the judge asks whether the edit
left the question's evidence alone and added none that contradicts it:

1. boxes (``BoxCheck``): every located op's box lies inside the photo and covers at most
   ``max_overlap`` of any target box (0: no overlap at all);
2. localized SSIM (``SsimCheck``, the scikit-image constants, :func:`aot.imageops.local_ssim`)
   on each target box padded by ``pad``: exactly 1 when no global op ran (the editor pastes the
   original back outside every op's box, so an untouched target is bit-identical; anything less
   means a target was painted on), at least ``threshold`` after a global op (``photo``);
3. an open-vocabulary detector (``DetectorCheck``, :mod:`.detector`), compared between the
   clean and the edited photo: each target its label names that the detector finds near its box
   on the clean photo it must still find there ("target lost"), and it must find no instance of
   a target's label or of an ``absent`` phrase on the edited photo that was not on the clean one
   and is no target ("new instance": a duplicate that changes a count or a "no" answer). Judging
   the edited photo against the clean one's detections, not against the boxes alone, keeps an
   imperfect detector's misses and false hits from failing every edit;
4. an MLLM judge (``MllmCheck``): any answerer with the signature of
   :class:`aot.data.answerers.Answerer` (a defender, a larger VLM) is shown the clean and the
   edited photo side by side and asked whether the answer still holds; "no" fails the edit.

Each check is a component switched on in :class:`PhotoJudgeConfig`; the detector and the MLLM
judge are off by default (they need models). Every failing check adds its reasons; the verdict
passes when there are none. ``answer_after`` is the clean answer when the edit passes (the
checks found nothing that changes it) and None otherwise (the judge cannot tell).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from ...imageops import local_ssim, ssim_box
from ...vqa import Item, Question, box_iou, box_overlap
from ..base import Verdict
from .detector import Detection, Detector


@dataclass(frozen=True)
class BoxCheck:
    enabled: bool = True
    """Reject located ops that leave the photo or cover a target box."""
    max_overlap: float = 0.0
    """Largest share of a target box's area an op's box may cover (0: none)."""

    def __post_init__(self) -> None:
        if not 0.0 <= self.max_overlap <= 1.0:
            raise ValueError(f"judge.boxes.max_overlap must be in [0, 1], got {self.max_overlap}")


@dataclass(frozen=True)
class SsimCheck:
    enabled: bool = True
    """Compare each target box of the clean and the edited photo by local SSIM."""
    threshold: float = 0.85
    """Least SSIM a target box keeps after a global op; without one it must be exactly 1."""
    pad: int = 2
    """Pixels added around a target box before the SSIM crop (clipped to the photo)."""

    def __post_init__(self) -> None:
        if not -1.0 <= self.threshold <= 1.0:
            raise ValueError(f"judge.ssim.threshold must be in [-1, 1], got {self.threshold}")
        if self.pad < 0:
            raise ValueError(f"judge.ssim.pad must be >= 0, got {self.pad}")


@dataclass(frozen=True)
class DetectorCheck:
    enabled: bool = False
    """Run an open-vocabulary detector on the clean and the edited photo."""
    model: str = "OwlViTForObjectDetection"
    """``transformers`` class: OwlViTForObjectDetection or Owlv2ForObjectDetection."""
    path: str = "tiny"
    """Local model folder (nothing is downloaded), or 'tiny' for a random-weight build."""
    threshold: float = 0.1
    """Least score of a detection that counts."""
    match_iou: float = 0.3
    """IoU at which a detection is the same instance as a target box or a clean detection."""
    device: str = "cpu"

    def __post_init__(self) -> None:
        if not 0.0 <= self.threshold <= 1.0:
            raise ValueError(f"judge.detector.threshold must be in [0, 1], got {self.threshold}")
        if not 0.0 < self.match_iou <= 1.0:
            raise ValueError(f"judge.detector.match_iou must be in (0, 1], got {self.match_iou}")


@dataclass(frozen=True)
class MllmCheck:
    enabled: bool = False
    """Ask an MLLM judge (given to the backend as ``mllm_judge``) whether the answer holds."""
    gap: int = 8
    """Pixels of white between the clean (left) and the edited (right) photo it is shown."""
    seed: int = 0
    """Sampling seed passed to the judge (it answers greedily)."""


@dataclass(frozen=True)
class PhotoJudgeConfig:
    """Which integrity checks run, and their thresholds (see the module doc)."""

    boxes: BoxCheck = field(default_factory=BoxCheck)
    ssim: SsimCheck = field(default_factory=SsimCheck)
    detector: DetectorCheck = field(default_factory=DetectorCheck)
    mllm: MllmCheck = field(default_factory=MllmCheck)


def box_reasons(q: Question, boxes: Sequence[tuple[str, Any]], width: int, height: int, cfg: BoxCheck) -> list[str]:
    """``boxes``: (op label, box) of each located op."""
    out = []
    for label, b in boxes:
        if not (0 <= b[0] < b[2] <= width and 0 <= b[1] < b[3] <= height):
            out.append(f"box outside canvas: {label} box {list(b)} not inside {width}x{height}")
        for t in q.targets:
            cover = box_overlap(b, t.box)
            if cover > cfg.max_overlap:
                out.append(f"box overlaps target: {label} box {list(b)} covers {cover:.0%} of target {t.id} ({t.label or 'unlabelled'})")
    return out


def ssim_scores(q: Question, clean: np.ndarray, edited: np.ndarray, global_op: bool, cfg: SsimCheck) -> tuple[dict[int, float], list[str]]:
    """Local SSIM of each target box, and the reasons of those below the bar."""
    h, w = clean.shape[:2]
    scores: dict[int, float] = {}
    out = []
    for t in q.targets:
        x0, y0, x1, y1 = ssim_box(t.box, cfg.pad, w, h)
        a, b = clean[y0:y1, x0:x1], edited[y0:y1, x0:x1]
        s = 1.0 if np.array_equal(a, b) else local_ssim(a, b)
        scores[t.id] = s
        if not global_op and s < 1.0:
            out.append(f"target changed: target {t.id} ({t.label or 'unlabelled'}) SSIM {s:.4f} < 1 with no global op")
        elif global_op and s < cfg.threshold:
            out.append(f"low SSIM: target {t.id} ({t.label or 'unlabelled'}) {s:.3f} < {cfg.threshold}")
    return scores, out


def detector_reasons(q: Question, clean: Sequence[Detection], edited: Sequence[Detection], cfg: DetectorCheck) -> list[str]:
    """Targets the detector lost, and new instances of the question's phrases (module doc, 3)."""
    out = []
    for t in q.targets:
        if not t.label:
            continue
        near = lambda dets: any(d.phrase == t.label and box_iou(d.box, t.box) >= cfg.match_iou for d in dets)  # noqa: E731
        if near(clean) and not near(edited):
            out.append(f"target lost: the detector no longer finds '{t.label}' near target {t.id} {list(t.box)}")
    for d in edited:
        known = [t.box for t in q.targets if t.label == d.phrase] + [c.box for c in clean if c.phrase == d.phrase]
        if not any(box_iou(d.box, b) >= cfg.match_iou for b in known):
            out.append(f"new instance: the detector finds a new '{d.phrase}' at {list(d.box)} (score {d.score:.2f})")
    return out


def phrases(q: Question) -> list[str]:
    """What the detector looks for: target labels and ``absent`` phrases, each once."""
    return list(dict.fromkeys([t.label for t in q.targets if t.label] + list(q.spec.get("absent", []))))


def side_by_side(clean: np.ndarray, edited: np.ndarray, gap: int) -> np.ndarray:
    """The clean photo left, the edited right, ``gap`` white pixels between: (H, 2W + gap, 3)."""
    h = max(clean.shape[0], edited.shape[0])
    pad = lambda a: np.pad(a, ((0, h - a.shape[0]), (0, 0), (0, 0)), constant_values=255)  # noqa: E731
    return np.concatenate([pad(clean), np.full((h, gap, 3), 255, np.uint8), pad(edited)], axis=1)


def judge_question(q: Question) -> Question:
    """The yes/no question the MLLM judge answers about the side-by-side pair."""
    text = (f"The left photo is the original and the right photo is an edited copy. About the original, "
            f"the question \"{q.text}\" has the answer \"{q.answer_text}\". Is that still the right answer "
            f"for the edited copy on the right?")
    return Question(kind="judge", text=text, options=("yes", "no"), answer="A", targets=(), spec={"kind": "judge"})


def mllm_reasons(judge: Any, item: Item, edited: np.ndarray, cfg: MllmCheck) -> list[str]:
    from ...models.prompt import extract_choice

    jq = judge_question(item.question)
    completion = judge([side_by_side(item.image, edited, cfg.gap)], [jq], 1, cfg.seed, 0.0)[0][0]
    choice = extract_choice(completion, jq.options)
    if choice == "A":
        return []
    said = "no" if choice == "B" else f"no readable answer ({completion.strip()[:40]!r})"
    return [f"judge: the MLLM judge says the answer no longer holds ({said})"]


def check(item: Item, edited: np.ndarray, located: Sequence[tuple[str, Any]], global_op: bool, cfg: PhotoJudgeConfig,
          detector: Detector | None = None, mllm_judge: Any = None) -> Verdict:
    """Judge an edit of ``item`` (module doc). ``located``: (op label, unclipped box) of each
    located op; ``global_op``: whether an op changed every pixel."""
    q, clean = item.question, item.image
    if clean.shape != edited.shape:
        raise ValueError(f"image shapes differ: clean {clean.shape}, edited {edited.shape}")
    h, w = clean.shape[:2]
    reasons: list[str] = []
    ssim: dict[int, float] = {}
    if cfg.boxes.enabled:
        reasons += box_reasons(q, located, w, h, cfg.boxes)
    if cfg.ssim.enabled:
        ssim, bad = ssim_scores(q, clean, edited, global_op, cfg.ssim)
        reasons += bad
    if cfg.detector.enabled and phrases(q):
        if detector is None:
            raise ValueError("judge.detector is on but the backend has no detector")
        reasons += detector_reasons(q, detector.detect(clean, phrases(q)), detector.detect(edited, phrases(q)), cfg.detector)
    if cfg.mllm.enabled:
        if mllm_judge is None:
            raise ValueError("judge.mllm is on but no judge was given: PhotoBackend(mllm_judge=...)")
        reasons += mllm_reasons(mllm_judge, item, edited, cfg.mllm)
    before = q.answer_text
    return Verdict(passed=not reasons, reasons=tuple(reasons), ssim=ssim, answer_before=before, answer_after=None if reasons else before)


__all__ = [
    "BoxCheck", "DetectorCheck", "MllmCheck", "PhotoJudgeConfig", "SsimCheck", "box_reasons", "check", "detector_reasons",
    "judge_question", "mllm_reasons", "phrases", "side_by_side", "ssim_scores",
]
