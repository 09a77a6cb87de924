"""AOT-SFT: the adversarial dataset the paper describes but never released (the attacker's cold
start; it can also serve defender SFT). One source scene, top to bottom:

1. source: a simple-regime scene and one question about it (``item_seed(seed, index)``);
2. scene extension (the backend's ``grow``; the world: ``aot.world.extend.extend_scene``): a
   complex scene keeping the question's targets; rejected by its composition / duplication /
   plausibility checks;
3. the defender answers the question on the clean extended image, greedily (the paper's
   evaluation decoding). Only a scene it gets right can host an effective edit; the others can
   still give a clean record;
4. the proposer (``aot.attack``) writes ``edits_per_scene`` edit programs as text; each is parsed
   and applied, then
   - box check: no located op (added or moved object, patch, perturbation) overlaps a target box,
   - description check (the backend's ``target_check``): no added or changed object fits a
     target's description (a copy of the target makes the question ambiguous), and no target
     is changed in place,
   - the backend's integrity verdict (the world: ``aot.integrity.check``) must pass;
5. the defender answers each surviving edited question ``k`` times: once greedily, ``k - 1``
   times sampled at ``temperature`` (the paper's rollout temperature, 1.0). The edit is
   **effective** when the greedy answer flips (right on the clean image, wrong on the edited
   one: the paper's evaluation decoding) *and* at least ``min_wrong`` of the k answers are wrong
   (default 2 of 3: the flip holds for most of the answer distribution, not one unlucky
   decode); otherwise it is *useless*. An edit whose greedy answer stays right cannot be
   effective, so it is sampled only when it is kept as a useless pair;
6. kept: every effective pair; a useless pair with probability ``keep_useless``; the scene's
   clean pair (edited image = clean image, no program) with probability ``keep_clean``.

A shard is a deterministic function of (config, shard index, shard size): scene ``j`` of shard ``s`` uses
scene index ``s * SCENES_PER_SHARD + j``; scenes are processed in chunks of ``chunk`` (the
defender's batch; smaller near the end of a shard, sized from the shard's own yield so far), the
torch sampling seed of each call is derived from (seed, shard, chunk), and records are kept in
scene order until the shard holds its share of ``n``. So any number of
workers writes the same bytes as one process.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import math
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import numpy as np

from .. import __version__
from ..attack import ATTACKERS, Attacker, make_attacker, takes_backend
from ..backends import DEFAULT_BACKEND, Backend, BackendConfig, backend_class, build_backend
from ..integrity import IntegrityConfig
from ..io import png_bytes
from ..models.prompt import extract_choice, format_prompt
from ..seeds import SEED_STRIDE, item_seed
from ..vqa import LETTERS, Item, Question, box_overlap
from .answerers import Answerer, defender_fingerprint, make_answerer
from .store import carries_labels, image_value

SCENES_PER_SHARD = 20_000
"""Scene indices reserved per shard; a shard that has not filled after this many scenes stops
short (its sidecar says so)."""
MAX_SHARDS = SEED_STRIDE // SCENES_PER_SHARD
CATEGORIES: tuple[str, ...] = ("effective", "useless", "clean")
SCENE_STAGES: tuple[str, ...] = ("question", "extension")
"""Where a source scene can be rejected."""
EDIT_STAGES: tuple[str, ...] = ("parse", "apply", "box", "description", "integrity")
"""Where a proposed edit can be rejected, in pipeline order."""
MIN_CHUNK = 16
"""Smallest chunk of scenes once a shard is nearly full (keeps the defender's batches useful)."""
BACKEND = backend_class(DEFAULT_BACKEND)
"""The default backend: its question kinds and regimes are the config's defaults."""
QUESTION_KINDS = BACKEND.question_kinds


@dataclass(frozen=True)
class SFTBuildConfig:
    """Everything that decides the content of an AOT-SFT dataset (its hash is the provenance)."""

    n: int = 1000
    """Records to write (effective pairs plus the kept useless and clean ones)."""
    seed: int = 0
    """Base seed: scenes, questions, extensions, edits and defender sampling all derive from it."""
    backend: BackendConfig = field(default_factory=BackendConfig)
    """Whose items, editor and judge (default: the world). On another backend the question
    kinds and regimes, left at the world's defaults, become that backend's own."""
    shard_size: int = 500
    """Records per parquet shard; the unit of parallelism and of resumption."""
    attacker: str = "random"
    """Proposer, by name in ``aot.attack.ATTACKERS`` (random, heuristic, ...)."""
    max_ops: int = 2
    """Largest number of ops the random proposer writes per program (1..4)."""
    attacker_options: dict[str, Any] = field(default_factory=dict)
    """Extra constructor arguments of the proposer (e.g. a trained attacker's checkpoint path)."""
    question_kinds: tuple[str, ...] = QUESTION_KINDS
    """Question kinds to draw from (the world: relation, attribute, existence, count)."""
    shuffle_options: bool = False
    """Permute every question's options (seeded per scene) so answer letters are balanced: the
    world lists yes/no and consecutive counts in order, which skews answers towards A."""
    source_regime: str = "simple"
    """Regime of the source scenes (the backend's ``regimes``; photos: photo)."""
    target_regime: str = "complex"
    """Regime the scene extension grows them into (photos: extended, by outpainting)."""
    defender: str = "base"
    """Who answers: "base" (the shipped born defender), a tiny registry name, a directory, or
    "scripted[:p_wrong]" (a deterministic stand-in for tests)."""
    edits_per_scene: int = 2
    """Edit programs proposed per scene the defender answers right (one clean answer serves all)."""
    k: int = 3
    """Answers per edited question: one greedy, k - 1 sampled."""
    temperature: float = 1.0
    """Temperature of the k - 1 sampled answers; 0 makes them greedy too (all k then agree)."""
    max_new_tokens: int = 12
    """Longest defender answer, in tokens."""
    min_wrong: int = 2
    """Edited answers (out of k) that must be wrong for an effective edit (the greedy one too)."""
    unreadable_is_wrong: bool = True
    """An answer with no readable choice counts as wrong (as in the defender reward, which gives
    it 0); False demands a wrong *choice*, i.e. a semantic flip rather than a broken format."""
    keep_useless: float = 0.25
    """Probability of keeping a useless pair (integrity passed, not effective)."""
    keep_clean: float = 0.1
    """Probability of keeping a scene's clean pair (no edit) as well."""
    chunk: int = 64
    """Scenes processed together; the defender answers a chunk's images in batched calls."""
    batch_size: int = 64
    """The defender's generation batch size (prompts per ``generate`` call)."""
    integrity: IntegrityConfig = field(default_factory=IntegrityConfig)
    """Thresholds of the integrity verdict."""

    def __post_init__(self) -> None:
        if self.n < 1:
            raise ValueError(f"n must be >= 1, got {self.n}")
        if self.shard_size < 1:
            raise ValueError(f"shard_size must be >= 1, got {self.shard_size}")
        if self.num_shards > MAX_SHARDS:
            raise ValueError(f"n={self.n} with shard_size={self.shard_size} needs {self.num_shards} shards, more than {MAX_SHARDS}; raise shard_size")
        if self.attacker not in ATTACKERS:
            raise ValueError(f"unknown attacker {self.attacker!r}; choose from {', '.join(sorted(ATTACKERS))}")
        if not 1 <= self.max_ops <= 4:
            raise ValueError(f"max_ops must be in 1..4, got {self.max_ops}")
        cls = self._backend_defaults()
        if self.backend.name != DEFAULT_BACKEND and not takes_backend(self.attacker):
            neutral = ", ".join(sorted(a for a in ATTACKERS if takes_backend(a)))
            raise ValueError(f"attacker {self.attacker!r} reads the world's scene graph; on backend {self.backend.name!r} choose one of {neutral}")
        bad = [q for q in self.question_kinds if q not in cls.question_kinds]
        if bad or not self.question_kinds:
            raise ValueError(f"question_kinds must be a non-empty subset of {cls.question_kinds}, got {self.question_kinds}")
        for name in (self.source_regime, self.target_regime):
            if name not in cls.regimes:
                raise ValueError(f"unknown regime {name!r}; choose from {', '.join(cls.regimes)}")
        if cls.regimes[self.target_regime] < cls.regimes[self.source_regime]:
            raise ValueError(f"target_regime {self.target_regime!r} has a smaller canvas than source_regime {self.source_regime!r}")
        if self.k < 1:
            raise ValueError(f"k must be >= 1, got {self.k}")
        if not 1 <= self.min_wrong <= self.k:
            raise ValueError(f"min_wrong must be in 1..k={self.k}, got {self.min_wrong}")
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0 (0 = greedy), got {self.temperature}")
        if not 1 <= self.edits_per_scene <= 16:
            raise ValueError(f"edits_per_scene must be in 1..16, got {self.edits_per_scene}")
        for name in ("keep_useless", "keep_clean"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"{name} must be a probability in [0, 1], got {v}")
        if self.chunk < 1 or self.batch_size < 1 or self.max_new_tokens < 1:
            raise ValueError("chunk, batch_size and max_new_tokens must be >= 1")

    def _backend_defaults(self) -> type[Backend]:
        """The backend's class; on a backend other than the world, the question kinds and
        regimes still at the world's defaults become the backend's own (all its kinds; its
        ``default_growth``)."""
        if isinstance(self.backend, dict):  # built from a mapping by hand rather than from_dict
            object.__setattr__(self, "backend", BackendConfig(**self.backend))
        cls = backend_class(self.backend.name)
        if cls is not BACKEND:
            if self.question_kinds == QUESTION_KINDS:
                object.__setattr__(self, "question_kinds", tuple(cls.question_kinds))
            if (self.source_regime, self.target_regime) == ("simple", "complex") and not {"simple", "complex"} <= set(cls.regimes):
                src, tgt = cls.default_growth()
                object.__setattr__(self, "source_regime", src)
                object.__setattr__(self, "target_regime", tgt)
        return cls

    @property
    def num_shards(self) -> int:
        return math.ceil(self.n / self.shard_size)

    def shard_sizes(self) -> list[int]:
        return [min(self.shard_size, self.n - s * self.shard_size) for s in range(self.num_shards)]

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["question_kinds"] = list(self.question_kinds)
        d["attacker_options"] = dict(sorted(self.attacker_options.items()))
        # the default backend is left out, so a world build's hash is what it was before the setting
        if self.backend.is_default:
            d.pop("backend")
        else:
            d["backend"] = self.backend.to_dict()
        return d

    @staticmethod
    def from_dict(d: dict[str, Any]) -> "SFTBuildConfig":
        d = dict(d)
        if "integrity" in d and isinstance(d["integrity"], dict):
            d["integrity"] = IntegrityConfig(**d["integrity"])
        if "question_kinds" in d:
            d["question_kinds"] = tuple(d["question_kinds"])
        if isinstance(d.get("backend"), dict):
            d["backend"] = BackendConfig(**d["backend"])
        return SFTBuildConfig(**d)


def build_hash(cfg: SFTBuildConfig, defender_id: str) -> str:
    """Hash of everything that decides a shard's content: the config without ``n`` (a shard does
    not depend on how many follow it), the defender's weights and the package version."""
    d = cfg.to_dict()
    d.pop("n")
    d["defender_id"] = defender_id
    d["aot_version"] = __version__
    return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]


def derive_seed(*parts: int) -> int:
    """A 31-bit seed from integers (torch.manual_seed and numpy both accept it)."""
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1)[0] & 0x7FFFFFFF)


# --- one scene, its edits ----------------------------------------------------------------------
@dataclass
class Edit:
    """One proposed edit of a scene as it moves through the checks."""

    e: int
    keep_useless: bool
    text: str = ""
    program: tuple = ()
    result: Any = None
    verdict: Any = None
    stage: str | None = None  # first failing stage; None while alive
    reasons: tuple[str, ...] = ()
    answers: list[str] | None = None  # k completions on the edited image: greedy first


@dataclass
class Source:
    """One source scene: its question, extension, clean rendering, clean answer and edits."""

    j: int
    seed: int
    keep_clean: bool
    keep_useless: tuple[bool, ...]
    scene: Any = None
    question: Question | None = None
    image: np.ndarray | None = None
    item_id: str = ""
    meta: dict[str, Any] = field(default_factory=dict)
    """The grown item's id and metadata (what another backend's replay key is made from)."""
    png: bytes | None = None
    stage: str | None = None
    reasons: tuple[str, ...] = ()
    clean_answers: list[str] | None = None
    clean_correct: bool = False
    edits: list[Edit] = field(default_factory=list)


def _reason_key(reason: str) -> str:
    return reason.split(":", 1)[0].strip()


def prepare(cfg: SFTBuildConfig, shard: int, j: int, backend: Backend | None = None) -> Source:
    """Steps 1-2 for scene ``j`` of ``shard``: source item, question, growth (the world: scene
    extension), image."""
    s = item_seed(cfg.seed, shard * SCENES_PER_SHARD + j)
    rng = np.random.default_rng([s, 0x5F7])
    u_kind, u_clean = rng.random(2)
    src = Source(j, s, bool(u_clean < cfg.keep_clean), tuple(bool(u < cfg.keep_useless) for u in rng.random(cfg.edits_per_scene)))
    kind = cfg.question_kinds[int(u_kind * len(cfg.question_kinds))]
    grown = build_backend(backend or cfg.backend).grow(s, rng, kind, cfg.source_regime, cfg.target_regime)
    if grown.item is None:
        src.stage, src.reasons = grown.stage, grown.reasons
        return src
    q = grown.item.question
    if cfg.shuffle_options:  # the world lists yes/no and counts in order, so letters skew to A
        perm = np.random.default_rng([s, 0x0B7]).permutation(len(q.options))
        opts = tuple(q.options[i] for i in perm)
        q = dataclasses.replace(q, options=opts, answer=LETTERS[opts.index(q.answer_text)])
    src.scene, src.question, src.image = grown.item.scene, q, grown.item.image
    src.item_id, src.meta = grown.item.id, grown.item.meta
    return src


def _item(src: Source, seed: int) -> Item:
    assert src.question is not None and src.image is not None
    return Item(src.scene, src.image, src.question, seed, src.item_id, src.meta)


def judge_edit(cfg: SFTBuildConfig, src: Source, ed: Edit, backend: Backend | None = None) -> None:
    """Step 4 for one edit: parse, apply, box check, target check, integrity verdict."""
    backend = build_backend(backend or cfg.backend)
    item = _item(src, src.seed)
    try:
        ed.program = backend.parse(ed.text)
    except backend.edit_errors as e:
        ed.stage, ed.reasons = "parse", (f"parse error: {e}",)
        return
    try:
        ed.result = backend.edit(item, ed.program)
    except backend.edit_errors as e:
        ed.stage, ed.reasons = "apply", (f"apply error: {e}",)
        return
    q = item.question
    bad = [
        f"box overlaps target: op {i + 1} ({ed.program[i].name}) box {b} covers {box_overlap(b, t.box):.0%} of target {t.id}"
        for i, b in zip(ed.result.touched_ops, ed.result.touched_boxes)
        for t in q.targets
        if box_overlap(b, t.box) > 0
    ]
    if bad:
        ed.stage, ed.reasons = "box", tuple(bad)
        return
    bad = list(backend.target_check(item, ed.result))
    if bad:
        ed.stage, ed.reasons = "description", tuple(bad)
        return
    ed.verdict = backend.judge(item, ed.result, backend.run_judge_settings(cfg.integrity))
    if not ed.verdict.passed:
        ed.stage, ed.reasons = "integrity", ed.verdict.reasons


# --- one shard ------------------------------------------------------------------------------
def _choices(answers: list[str] | None, q: Question) -> list[str | None]:
    return [extract_choice(a, q.options) for a in (answers or [])]


def _record(cfg: SFTBuildConfig, cfg_hash: str, shard: int, src: Source, ed: Edit | None, category: str, attacker: str, backend: Backend | None = None) -> dict[str, Any]:
    """One row of the store (``ed`` is None for a clean record)."""
    q = src.question
    assert q is not None and src.image is not None
    if src.png is None:  # encoded once, and only for scenes that give a record
        src.png = png_bytes(src.image)
    clean_choice = _choices(src.clean_answers, q)
    edited_choice = _choices(ed.answers, q) if ed else []
    backend = build_backend(backend or cfg.backend)
    key = backend.replay_key(_item(src, src.seed))
    labelled = carries_labels(list(key))  # another backend's targets keep their labels; the world's records stay as they were
    return {
        "id": f"aot-sft-{cfg.seed}-{shard:05d}-{src.j:05d}-{f'e{ed.e}' if ed else 'c'}",
        "shard": shard,
        "candidate": src.j,
        "scene_seed": src.seed,
        "category": category,
        "effective": category == "effective",
        "question_kind": q.kind,
        "question": q.text,
        "options": list(q.options),
        "answer": q.answer,
        "answer_text": q.answer_text,
        "prompt": format_prompt(q),
        "targets": [{"id": t.id, "box": list(t.box), **({"label": t.label} if labelled else {})} for t in q.targets],
        "question_spec": json.dumps(q.spec, sort_keys=True),
        # the backend's replay key, one JSON column per field (the world: "scene")
        **{k: json.dumps(v, sort_keys=True) for k, v in key.items()},
        "clean_image": image_value(src.png),
        "edited_image": image_value(png_bytes(ed.result.image) if ed else src.png),
        "attacker": attacker if ed else "",
        "edit_program": ed.text if ed else "",
        "edit_json": json.dumps(backend.program_json(ed.program) if ed else [], sort_keys=True),
        "edit_ops": [op.name for op in ed.program] if ed else [],
        "integrity_passed": True,
        "integrity_ssim": [{"id": int(i), "ssim": round(float(v), 6)} for i, v in sorted(ed.verdict.ssim.items())] if ed else [],
        "integrity_reasons": [],
        "answer_after": (ed.verdict.answer_after or "") if ed else q.answer_text,
        "defender_clean": list(src.clean_answers or []),
        "defender_edited": list(ed.answers or []) if ed else [],
        "defender_clean_choice": clean_choice,
        "defender_edited_choice": edited_choice,
        "clean_correct": src.clean_correct,
        "edited_wrong": sum(x != q.answer for x in edited_choice),
        "seed": cfg.seed,
        "aot_version": __version__,
        "config_hash": cfg_hash,
    }


def _stats_skeleton() -> dict[str, Any]:
    return {
        "scenes": {"sampled": 0, "extended": 0, "clean_correct": 0},
        "edits": {"proposed": 0, "integrity_checked": 0, "integrity_passed": 0, "evaluated": 0, "greedy_flipped": 0, "effective": 0, "effective_unreadable": 0},
        "rejected": {s: 0 for s in SCENE_STAGES + EDIT_STAGES},
        "reasons": {},
        "sequences": {"clean": 0, "edited": 0},
        "by_op": {},
        "by_kind": {},
        "records": {k: 0 for k in CATEGORIES},
        "answers": {},
        "exhausted": False,
    }


def _bump(d: dict, key: str, effective: bool) -> None:
    c = d.setdefault(key, {"evaluated": 0, "effective": 0})
    c["evaluated"] += 1
    c["effective"] += int(effective)


def _answer_edits(cfg: SFTBuildConfig, answerer: Answerer, eds: list[tuple[Source, Edit]], seed: int) -> int:
    """The greedy answer on every edited image, then k - 1 sampled answers where they matter: the
    greedy answer flipped (an effectiveness test) or the edit is kept as useless anyway. Edits
    whose greedy answer stays right and which are not kept are decided without sampling.
    Returns the number of sequences generated."""
    if not eds:
        return 0
    greedy = answerer([ed.result.image for _, ed in eds], [src.question for src, _ in eds], 1, seed, 0.0)
    for (src, ed), g in zip(eds, greedy, strict=True):
        ed.answers = [g[0]]
    def flipped(src: Source, ed: Edit) -> bool:
        c = _choices(ed.answers, src.question)[0]
        return c != src.question.answer and (c is not None or cfg.unreadable_is_wrong)

    need = [(src, ed) for src, ed in eds if cfg.k > 1 and (flipped(src, ed) or ed.keep_useless)]
    if cfg.temperature > 0 and need:
        sampled = answerer([ed.result.image for _, ed in need], [src.question for src, _ in need], cfg.k - 1, seed, cfg.temperature)
    else:
        sampled = [ed.answers * (cfg.k - 1) for _, ed in need]  # greedy throughout: the answers repeat
    for (_, ed), smp in zip(need, sampled, strict=True):
        ed.answers = ed.answers + list(smp)
    return len(eds) + (len(need) * (cfg.k - 1) if cfg.temperature > 0 else 0)


def build_shard(
    cfg: SFTBuildConfig,
    shard: int,
    size: int,
    answerer: Answerer,
    attacker: Attacker,
    cfg_hash: str,
    progress: Callable[[int], None] | None = None,
    backend: Backend | None = None,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The first ``size`` records of shard ``shard`` and the shard's statistics."""
    backend = build_backend(backend or cfg.backend)
    rows: list[dict[str, Any]] = []
    st = _stats_skeleton()
    reasons: dict[str, Counter] = defaultdict(Counter)
    j0 = chunk_i = done = 0
    while len(rows) < size:
        if j0 >= SCENES_PER_SHARD:
            st["exhausted"] = True
            break
        n_scenes = cfg.chunk
        if rows:  # near the end of the shard, size the chunk to what is still missing (+25%)
            per_scene = len(rows) / st["scenes"]["sampled"]
            n_scenes = max(min(cfg.chunk, MIN_CHUNK), min(cfg.chunk, math.ceil((size - len(rows)) / per_scene * 1.25)))
        srcs = [prepare(cfg, shard, j, backend) for j in range(j0, min(j0 + n_scenes, SCENES_PER_SHARD))]
        st["scenes"]["sampled"] += len(srcs)
        for src in srcs:
            if src.stage is not None:
                st["rejected"][src.stage] += 1
                reasons[src.stage].update({_reason_key(r) for r in src.reasons})
        alive = [src for src in srcs if src.stage is None]
        st["scenes"]["extended"] += len(alive)
        # 3. the clean answer, greedy, for every extended scene
        comps = answerer([src.image for src in alive], [src.question for src in alive], 1, derive_seed(cfg.seed, shard, chunk_i, 1), 0.0)
        st["sequences"]["clean"] += len(alive)
        for src, a in zip(alive, comps, strict=True):
            src.clean_answers = list(a)
            src.clean_correct = _choices(a, src.question) == [src.question.answer]
        right = [src for src in alive if src.clean_correct]
        st["scenes"]["clean_correct"] += len(right)
        # 4. proposals for the scenes the defender got right, then the checks
        items = [_item(src, derive_seed(src.seed, e, 0xED)) for src in right for e in range(cfg.edits_per_scene)]
        texts = attacker.propose(items) if items else []
        if len(texts) != len(items):
            raise RuntimeError(f"attacker {attacker.name!r} returned {len(texts)} programs for {len(items)} items")
        it = iter(texts)
        survivors: list[tuple[Source, Edit]] = []
        for src in right:
            for e in range(cfg.edits_per_scene):
                ed = Edit(e, src.keep_useless[e], next(it))
                judge_edit(cfg, src, ed, backend)
                src.edits.append(ed)
                st["edits"]["proposed"] += 1
                if ed.stage in (None, "integrity"):
                    st["edits"]["integrity_checked"] += 1
                if ed.stage is None:
                    st["edits"]["integrity_passed"] += 1
                    survivors.append((src, ed))
                else:
                    st["rejected"][ed.stage] += 1
                    reasons[ed.stage].update({_reason_key(r) for r in ed.reasons})
        # 5. k answers per surviving edit
        st["sequences"]["edited"] += _answer_edits(cfg, answerer, survivors, derive_seed(cfg.seed, shard, chunk_i, 2))
        # 6. keep
        for src in alive:
            for ed in src.edits:
                if ed.stage is not None:
                    continue
                choices = _choices(ed.answers, src.question)
                wrong = [x != src.question.answer and (x is not None or cfg.unreadable_is_wrong) for x in choices]
                effective = wrong[0] and sum(wrong) >= cfg.min_wrong
                st["edits"]["evaluated"] += 1
                st["edits"]["greedy_flipped"] += choices[0] != src.question.answer
                st["edits"]["effective"] += effective
                st["edits"]["effective_unreadable"] += effective and choices[0] is None
                for op in sorted({op.name for op in ed.program}):
                    _bump(st["by_op"], op, effective)
                _bump(st["by_kind"], src.question.kind, effective)
                if effective:
                    rows.append(_record(cfg, cfg_hash, shard, src, ed, "effective", attacker.name, backend))
                elif ed.keep_useless:
                    rows.append(_record(cfg, cfg_hash, shard, src, ed, "useless", attacker.name, backend))
            if src.keep_clean:
                rows.append(_record(cfg, cfg_hash, shard, src, None, "clean", attacker.name, backend))
        j0 += len(srcs)
        chunk_i += 1
        if progress is not None:
            progress(min(len(rows), size) - done)
        done = min(len(rows), size)
    rows = rows[:size]
    st["reasons"] = {s: dict(sorted(reasons[s].items())) for s in SCENE_STAGES + EDIT_STAGES}
    for r in rows:
        st["records"][r["category"]] += 1
        st["answers"][r["answer"]] = st["answers"].get(r["answer"], 0) + 1
    st["answers"] = dict(sorted(st["answers"].items()))
    st["by_op"] = dict(sorted(st["by_op"].items()))
    st["by_kind"] = dict(sorted(st["by_kind"].items()))
    return rows, st


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run with ``n`` torch intra-op threads, restoring the previous count after. One thread per
    worker is the default: the defender's matrices are small, and a second thread on a busy core
    makes every op wait for it (measured 6x slower under load). The thread count does not change
    the answers (checked bitwise on the born defender)."""
    torch = sys.modules.get("torch")
    if not n or torch is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class ShardBuilder:
    """What one worker holds: the answerer (loaded once) and the attacker; builds shards by index."""

    def __init__(self, cfg: SFTBuildConfig, answerer_factory: Callable[[], Answerer] | None = None, threads: int | None = 1):
        self.cfg = cfg
        self.threads = threads
        factory = answerer_factory or (lambda: make_answerer(cfg.defender, cfg.max_new_tokens, cfg.batch_size))
        self.answerer = factory()
        backend = build_backend(cfg.backend)
        self.attacker = make_attacker(cfg.attacker, backend, **({"max_ops": cfg.max_ops} if cfg.attacker == "random" else {}), **cfg.attacker_options)

    def build(self, shard: int, size: int, cfg_hash: str, progress: Callable[[int], None] | None = None) -> tuple[list[dict[str, Any]], dict[str, Any], float, float]:
        """(rows, stats, wall seconds, CPU seconds of this process)."""
        t, c = time.perf_counter(), time.process_time()
        with torch_threads(self.threads):
            rows, st = build_shard(self.cfg, shard, size, self.answerer, self.attacker, cfg_hash, progress)
        return rows, st, time.perf_counter() - t, time.process_time() - c


def resolve_defender_id(cfg: SFTBuildConfig, answerer_factory: Callable[[], Answerer] | None) -> str:
    if answerer_factory is not None:
        return str(getattr(answerer_factory, "fingerprint", None) or getattr(answerer_factory, "__name__", None) or repr(answerer_factory))
    return defender_fingerprint(cfg.defender)
