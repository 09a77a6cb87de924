"""Photos as a backend: a user's VQA file with target boxes, a diffusion editor, a judge of checks.

- items: the records of one item file (:mod:`.records`), train and eval split by photo;
- editor: :class:`.editor.PhotoEditor` (box fills through a diffusers inpainting pipeline,
  pixel ops in numpy); scene extension (AOT-SFT's ``grow``) is outpainting;
- judge: :func:`.judge.check` (boxes, localized SSIM, an open-vocabulary detector, an MLLM
  judge; each switched on in :class:`.judge.PhotoJudgeConfig`).

A file holds finitely many questions, unlike the world's seeded stream. ``items(split, n, slot,
seed)`` therefore walks the split's records in an order drawn from (slot, seed), cycling when
``n`` exceeds them, and gives each item the seed the world would (:mod:`aot.seeds`: train slot
``b`` is base ``b``, eval slot ``o`` base ``900 + o``), so stochastic attackers draw differently
on each repeat and eval seeds stay recognisable. Slots reorder one split; they cannot keep
apart sets the file does not have. Train and eval never share a photo.

An item's replay key is ``{"photo": {"image", "pad", "extend_seed", "extend_prompt"}}``: where
its photo was read from (relative to the data file's folder when under it) and how it was extended (pad (0, 0, 0, 0): not extended). With the
program text it re-makes an edit, byte for byte, given the same editor configuration.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Mapping, Sequence

import numpy as np

from ...editors import EditorConfig
from ...seeds import EVAL_BASES, MAX_RUN_SEED, RUN_STRIDE, item_seed
from ...vqa import Item, Question, Target
from ..base import SPLITS, Backend, Edit, Grown, Verdict
from .detector import Detector, OwlDetector
from .editor import PhotoEditor, PhotoEditResult, op_seed
from .judge import DetectorCheck, PhotoJudgeConfig, check, detector_reasons, phrases
from .program import PhotoEditError, format_program, parse_program
from .records import PHOTO_KINDS, PhotoRecord, load_image, load_records
from .sampling import random_program

SAMPLE = Path(__file__).resolve().parents[2] / "assets" / "photos" / "sample.jsonl"
"""The shipped sample: 21 hand-written questions on seven scikit-image photos."""
ORDER_TAG = 0x9407
"""Random-stream tag of the order ``items`` walks a split in."""
EXTEND_TAG = 0xE7
"""Op index under which a grown item's outpainting seed is derived (:func:`.editor.op_seed`)."""


@dataclass(frozen=True)
class PhotoBackendConfig:
    """The photo backend: which file, how it splits, how photos are edited and judged."""

    data: str = ""
    """Item file, JSON lines or parquet (:mod:`aot.backends.photos.records`); empty: the
    shipped sample (``aot/assets/photos/sample.jsonl``)."""
    eval_fraction: float = 0.25
    """Share of photos (by hash of their reference) whose questions are held out for eval."""
    extend_px: int = 32
    """Pixels AOT-SFT's scene extension outpaints on each side."""
    extend_prompt: str = "the same scene, wider"
    """Prompt of the outpainting fill."""
    editor: EditorConfig = field(default_factory=lambda: EditorConfig(work_size=128))
    """The inpainting pipeline (class and path). The default is the tiny random build run at
    128 px; a real pipeline wants its own size (FLUX.1-Fill: ``work_size=1024``)."""
    judge: PhotoJudgeConfig = field(default_factory=PhotoJudgeConfig)
    """The integrity checks (boxes and SSIM on; detector and MLLM judge off)."""
    random_target_phrase: float = 0.0
    """Chance that an ``add`` of the random attacker (``random_program``) paints the label of one
    of the question's targets: a duplicate that changes a count or a "no" answer. Only the
    detector check catches those, so raise it only with ``judge.detector`` on."""

    def __post_init__(self) -> None:
        if not 0.0 <= self.eval_fraction <= 1.0:
            raise ValueError(f"photos.eval_fraction must be in [0, 1], got {self.eval_fraction}")
        if self.extend_px < 1:
            raise ValueError(f"photos.extend_px must be at least 1, got {self.extend_px}")
        if not 0.0 <= self.random_target_phrase <= 1.0:
            raise ValueError(f"photos.random_target_phrase must be in [0, 1], got {self.random_target_phrase}")


@dataclass(frozen=True)
class PhotoEditState:
    """``Edit.state`` of a photo edit: the editor's result (global ops included)."""

    result: PhotoEditResult


class PhotoBackend(Backend):
    """A VQA file of photos with target boxes (see the module doc)."""

    name: ClassVar[str] = "photos"
    pools: ClassVar[tuple[str, ...]] = ("attack", "replay")
    """Both draw the split's photos: a photo file has no separate pre-training distribution,
    so the clean photos are what the defender replays against forgetting."""
    question_kinds: ClassVar[tuple[str, ...]] = PHOTO_KINDS
    regimes: ClassVar[Mapping[str, int]] = {"photo": 0, "extended": 1}
    """'photo': as in the file; 'extended': outpainted by ``extend_px`` on each side. Photos
    have no one canvas side, so the values only order the two."""
    replay_fields: ClassVar[tuple[str, ...]] = ("photo",)
    edit_errors: ClassVar[tuple[type[Exception], ...]] = (PhotoEditError,)

    def __init__(self, data: str | Path | None = None, config: PhotoBackendConfig | None = None, *,
                 editor: PhotoEditor | None = None, detector: Detector | None = None, mllm_judge: Any = None):
        """``data`` overrides ``config.data``; ``editor`` / ``detector`` / ``mllm_judge``: built
        objects to use instead of building from the config (``mllm_judge``: any answerer,
        ``(images, questions, n, seed, temperature) -> completions``)."""
        cfg = config or PhotoBackendConfig()
        if data is not None:
            cfg = dataclasses.replace(cfg, data=str(data))
        self.config = cfg
        self.data_file = Path(cfg.data) if cfg.data else SAMPLE
        self.records: list[PhotoRecord] = load_records(self.data_file, cfg.eval_fraction)
        self.editor = editor or PhotoEditor(cfg.editor)
        self.mllm_judge = mllm_judge
        self._detector = detector
        self._built: dict[DetectorCheck, Detector] = {}

    # --- items ----------------------------------------------------------------------------
    def split_records(self, split: str, kinds: Sequence[str] | None = None) -> list[PhotoRecord]:
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; choose from {', '.join(SPLITS)}")
        return [r for r in self.records if r.split == split and (kinds is None or r.question.kind in kinds)]

    def _item(self, rec: PhotoRecord, seed: int) -> Item:
        meta = {"image": rec.image_path, "pad": [0, 0, 0, 0], "extend_seed": 0, "extend_prompt": "", "split": rec.split}
        return Item(None, rec.image, rec.question, seed, rec.id, meta)

    def items(self, split: str, n: int, slot: int, seed: int = 0, *, pool: str = "attack", kinds: Sequence[str] | None = None) -> list[Item]:
        if pool not in self.pools:
            raise ValueError(f"unknown pool {pool!r}; choose from {', '.join(self.pools)}")
        bad = [k for k in kinds or () if k not in PHOTO_KINDS]
        if bad:
            raise ValueError(f"unknown question kind(s) {bad}; choose from {', '.join(PHOTO_KINDS)}")
        recs = self.split_records(split, kinds)
        lo, hi = EVAL_BASES
        width = lo if split == "train" else hi - lo
        if not 0 <= slot < width:
            raise ValueError(f"{split} slot {slot} outside [0, {width})")
        if not 0 <= seed < MAX_RUN_SEED:
            raise ValueError(f"seed {seed} outside [0, {MAX_RUN_SEED})")
        if not 0 <= n <= RUN_STRIDE:
            raise ValueError(f"n = {n} outside [0, {RUN_STRIDE}]")
        if n and not recs:
            which = f" of kind {', '.join(kinds)}" if kinds else ""
            raise ValueError(f"{self.data_file}: no {split} questions{which} (eval_fraction {self.config.eval_fraction})")
        base = slot if split == "train" else lo + slot
        order = np.random.default_rng([base, seed, ORDER_TAG]).permutation(len(recs)) if recs else []
        return [self._item(recs[order[i % len(recs)]], item_seed(base, seed * RUN_STRIDE + i)) for i in range(n)]

    def grow(self, seed: int, rng: np.random.Generator, kind: str, source: str, target: str) -> Grown:
        for r in (source, target):
            if r not in self.regimes:
                raise ValueError(f"unknown regime {r!r}; choose from {', '.join(self.regimes)}")
        if self.regimes[target] < self.regimes[source]:
            raise ValueError(f"cannot grow {source!r} photos into {target!r}")
        recs = self.split_records("train", [kind])
        if not recs:
            return Grown(None, "question", (f"no {kind} question: none in the train split of {self.data_file}",))
        rec = recs[int(rng.integers(len(recs)))]
        if source == target:
            return Grown(self._item(rec, seed))
        return self.extend(rec, seed)

    def extend(self, rec: PhotoRecord, seed: int) -> Grown:
        """AOT-SFT step 1 on a photo: outpaint ``extend_px`` on each side, shift the targets,
        and reject an extension that changed the photo or (detector on) added a target's kind."""
        p = self.config.extend_px
        s = op_seed(seed, EXTEND_TAG)
        img = self.editor.extend(rec.image, (p, p, p, p), self.config.extend_prompt, s)
        h, w = rec.image.shape[:2]
        if img.shape != (h + 2 * p, w + 2 * p, 3) or not np.array_equal(img[p : p + h, p : p + w], rec.image):
            return Grown(None, "extension", (f"extension changed the photo: {img.shape} from {rec.image.shape}",))
        q = shift_targets(rec.question, p, p)
        det = self.judge_config.detector
        if det.enabled and phrases(q):
            d = self.detector(det)
            clean = [dataclasses.replace(x, box=(x.box[0] + p, x.box[1] + p, x.box[2] + p, x.box[3] + p)) for x in d.detect(rec.image, phrases(q))]
            bad = detector_reasons(q, clean, d.detect(img, phrases(q)), det)
            if bad:
                return Grown(None, "extension", tuple(bad))
        meta = {"image": rec.image_path, "pad": [p] * 4, "extend_seed": s, "extend_prompt": self.config.extend_prompt, "split": rec.split}
        return Grown(Item(None, img, q, seed, rec.id, meta))

    def replay_key(self, item: Item) -> dict[str, Any]:
        m = item.meta
        return {"photo": {"image": self._portable(m["image"]), "pad": list(m["pad"]), "extend_seed": m["extend_seed"], "extend_prompt": m["extend_prompt"]}}

    def replay(self, key: Mapping[str, Any], question: Question, seed: int = 0, image: np.ndarray | None = None) -> Item:
        ph = key["photo"]
        pad = tuple(int(v) for v in ph["pad"])
        if image is None:
            image, _ = load_image(ph["image"], self.data_file.parent.resolve())
            if any(pad):
                image = self.editor.extend(image, pad, ph["extend_prompt"], int(ph["extend_seed"]))  # type: ignore[arg-type]
        meta = {"image": ph["image"], "pad": list(pad), "extend_seed": int(ph["extend_seed"]), "extend_prompt": ph["extend_prompt"]}
        return Item(None, image, question, seed, str(question.spec.get("id", "")), meta)

    def _portable(self, ref: str) -> str:
        """A photo under the data file's folder is keyed relative to it, so a curriculum still
        replays after the folder moves; any other reference stays as it is."""
        p = Path(ref)
        if not p.is_absolute():
            return ref
        try:
            return p.relative_to(self.data_file.parent.resolve()).as_posix()
        except ValueError:
            return ref

    # --- the editor and the judge -----------------------------------------------------------
    @property
    def judge_config(self) -> PhotoJudgeConfig:
        return self.config.judge

    def detector(self, cfg: DetectorCheck) -> Detector:
        """The injected detector, or one built from ``cfg`` (once per distinct setting)."""
        if self._detector is not None:
            return self._detector
        if cfg not in self._built:
            self._built[cfg] = OwlDetector(cfg.model, cfg.path, cfg.threshold, cfg.device)
        return self._built[cfg]

    def parse(self, text: str) -> tuple[Any, ...]:
        return parse_program(text)

    def random_program(self, item: Item, rng: np.random.Generator, max_ops: int = 2, ops: Sequence[str] | None = None) -> str:
        """:func:`.sampling.random_program` as text: 1 to ``max_ops`` photo ops, boxes clear of
        the targets where one is found, descriptions from a fixed list. ``ops``: the photo ops
        among these names (others, such as the world's ``move``, are skipped)."""
        return format_program(random_program(item, rng, max_ops, self.config.random_target_phrase, ops))

    def edit(self, item: Item, program: Sequence[Any]) -> Edit:
        r = self.editor.apply(item.image, program, item.seed)
        d = r.image != item.image
        mask = d[..., 0] | d[..., 1] | d[..., 2]  # (H, W)
        return Edit(r.image, r.program, r.touched_boxes, r.touched_ops, mask, PhotoEditState(r))

    def judge(self, item: Item, edit: Edit, cfg: PhotoJudgeConfig | None = None) -> Verdict:
        cfg = cfg if cfg is not None else self.judge_config
        if not isinstance(cfg, PhotoJudgeConfig):
            raise ValueError(f"the photos judge takes a PhotoJudgeConfig, got {type(cfg).__name__}")
        located = [(f"op {i + 1} ({edit.program[i].name})", b) for i, b in zip(edit.touched_ops, edit.touched_boxes)]
        global_op = bool(edit.state.result.global_ops) if isinstance(edit.state, PhotoEditState) else False
        det = self.detector(cfg.detector) if cfg.detector.enabled else None
        return check(item, edit.image, located, global_op, cfg, det, self.mllm_judge)

    def target_check(self, item: Item, edit: Edit) -> tuple[str, ...]:
        """Targets whose pixels the edit changed, when no global op ran (a global op changes
        every pixel; the verdict's SSIM bar judges it)."""
        if isinstance(edit.state, PhotoEditState) and edit.state.result.global_ops:
            return ()
        return tuple(
            f"target changed: target {t.id} ({t.label or 'unlabelled'}) pixels differ"
            for t in item.targets
            if edit.mask[t.box[1] : t.box[3], t.box[0] : t.box[2]].any()
        )


def shift_targets(q: Question, dx: int, dy: int) -> Question:
    """``q`` with every target box moved by (dx, dy) (a photo placed on a larger canvas)."""
    moved = tuple(Target(t.id, (t.box[0] + dx, t.box[1] + dy, t.box[2] + dx, t.box[3] + dy), t.label) for t in q.targets)
    return dataclasses.replace(q, targets=moved)
