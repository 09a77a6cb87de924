"""AOT-SFT: the adversarial dataset the paper describes but never released (the attacker's cold
start; it can also serve defender SFT). One candidate, top to bottom:

1. source: a simple-regime scene and one question about it (``scene_seed(seed, index)``);
2. scene extension (``aot.world.extend.extend_scene``): a complex scene keeping the question's
   targets; rejected by its composition / duplication / plausibility checks;
3. the proposer (``aot.attack``) writes an edit program as text; it is parsed and applied, then
   - box check: no located op (added or moved object, patch, perturbation) overlaps a target box,
   - description check: no added or changed object fits a target's description (a copy of the
     target would make the question ambiguous), and no target is changed in place,
   - the integrity verdict (``aot.integrity.check``) must pass;
4. the defender answers the question ``k`` times on the clean image and ``k`` times on the
   edited one, *sampled* at ``temperature`` (default 1.0, the paper's rollout temperature; 0 is
   greedy, which makes the k answers identical). The clean answer counts as right only when all
   k samples are right (the paper's strict mode); the edit is **effective** when the clean
   answer is right and at least ``min_wrong`` of the k edited answers are wrong;
5. kept: every effective pair; a useless pair with probability ``keep_useless``; the clean pair
   (edited image = clean image, no program) with probability ``keep_clean``.

A shard is a deterministic function of (config, shard index): candidate ``j`` of shard ``s`` uses
scene index ``s * CANDIDATES_PER_SHARD + j``; candidates are processed in chunks of ``chunk`` (the
defender's batch), the torch sampling seed of each chunk is derived from (seed, shard, chunk),
and records are kept in candidate order until the shard holds its share of ``n``. So any number
of workers writes the same bytes as one process.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from .. import __version__
from ..attack import ATTACKERS, AttackItem, Attacker, make_attacker
from ..edits import EditError, apply_program, parse_program, program_to_json
from ..integrity import IntegrityConfig, check
from ..io import png_bytes
from ..models.prompt import extract_choice, format_prompt
from ..world.dataset import SEED_STRIDE, scene_seed
from ..world.extend import extend_scene
from ..world.questions import QUESTION_KINDS, Question, matches, sample_question
from ..world.render import render
from ..world.sampler import REGIMES, sample_scene
from ..world.types import box_overlap
from .answerers import Answerer, defender_fingerprint, make_answerer
from .store import image_value

CANDIDATES_PER_SHARD = 20_000
"""Scene indices reserved per shard; a shard that has not filled after this many candidates
stops short (its sidecar says so)."""
MAX_SHARDS = SEED_STRIDE // CANDIDATES_PER_SHARD
CATEGORIES: tuple[str, ...] = ("effective", "useless", "clean")
STAGES: tuple[str, ...] = ("question", "extension", "parse", "apply", "box", "description", "integrity")
"""Where a candidate's edit can be rejected, in pipeline order."""


@dataclass(frozen=True)
class SFTBuildConfig:
    """Everything that decides the content of an AOT-SFT dataset (its hash is the provenance)."""

    n: int = 1000
    """Records to write (effective pairs plus the kept useless and clean ones)."""
    seed: int = 0
    """Base seed: scenes, questions, extensions, edits and defender sampling all derive from it."""
    shard_size: int = 500
    """Records per parquet shard; the unit of parallelism and of resumption."""
    attacker: str = "random"
    """Proposer, by name in ``aot.attack.ATTACKERS`` (random, heuristic, ...)."""
    max_ops: int = 2
    """Largest number of ops the random proposer writes per program (1..4)."""
    question_kinds: tuple[str, ...] = QUESTION_KINDS
    """Question kinds to draw from (relation, attribute, existence, count)."""
    source_regime: str = "simple"
    """Regime of the source scenes."""
    target_regime: str = "complex"
    """Regime the scene extension grows them into."""
    defender: str = "base"
    """Who answers: "base" (the shipped born defender), a tiny registry name, a directory, or
    "scripted[:p_wrong]" (a deterministic stand-in for tests)."""
    k: int = 3
    """Answers per question on the clean and on the edited image."""
    temperature: float = 1.0
    """Sampling temperature of those answers; 0 means greedy (then all k answers agree)."""
    max_new_tokens: int = 12
    """Longest defender answer, in tokens."""
    min_wrong: int = 2
    """Edited answers (out of k) that must be wrong for an effective edit."""
    keep_useless: float = 0.25
    """Probability of keeping a useless pair (integrity passed, not effective)."""
    keep_clean: float = 0.1
    """Probability of keeping a candidate's clean pair (no edit) as well."""
    chunk: int = 64
    """Candidates processed together; the defender answers a chunk in one batched call."""
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
        bad = [q for q in self.question_kinds if q not in QUESTION_KINDS]
        if bad or not self.question_kinds:
            raise ValueError(f"question_kinds must be a non-empty subset of {QUESTION_KINDS}, got {self.question_kinds}")
        for name in (self.source_regime, self.target_regime):
            if name not in REGIMES:
                raise ValueError(f"unknown regime {name!r}; choose from {', '.join(REGIMES)}")
        if REGIMES[self.target_regime].size < REGIMES[self.source_regime].size:
            raise ValueError(f"target_regime {self.target_regime!r} has a smaller canvas than source_regime {self.source_regime!r}")
        if self.k < 1:
            raise ValueError(f"k must be >= 1, got {self.k}")
        if not 1 <= self.min_wrong <= self.k:
            raise ValueError(f"min_wrong must be in 1..k={self.k}, got {self.min_wrong}")
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0 (0 = greedy), got {self.temperature}")
        if self.temperature == 0 and self.k > 1:
            pass  # allowed: greedy answers repeat; documented on the field
        for name in ("keep_useless", "keep_clean"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"{name} must be a probability in [0, 1], got {v}")
        if self.chunk < 1 or self.batch_size < 1 or self.max_new_tokens < 1:
            raise ValueError("chunk, batch_size and max_new_tokens must be >= 1")

    @property
    def num_shards(self) -> int:
        return math.ceil(self.n / self.shard_size)

    def shard_sizes(self) -> list[int]:
        return [min(self.shard_size, self.n - s * self.shard_size) for s in range(self.num_shards)]

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["question_kinds"] = list(self.question_kinds)
        return d

    @staticmethod
    def from_dict(d: dict[str, Any]) -> "SFTBuildConfig":
        d = dict(d)
        if "integrity" in d and isinstance(d["integrity"], dict):
            d["integrity"] = IntegrityConfig(**d["integrity"])
        if "question_kinds" in d:
            d["question_kinds"] = tuple(d["question_kinds"])
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


# --- one candidate ----------------------------------------------------------------------------
@dataclass
class Candidate:
    """A candidate's state as it moves through the pipeline."""

    j: int
    seed: int
    keep_useless: bool
    keep_clean: bool
    scene: Any = None
    question: Question | None = None
    image: np.ndarray | None = None
    png: bytes | None = None
    program_text: str = ""
    program: tuple = ()
    result: Any = None
    verdict: Any = None
    stage: str | None = None  # first failing stage, None while alive
    reasons: tuple[str, ...] = ()
    clean_answers: list[str] | None = None
    edited_answers: list[str] | None = None


def _reason_key(reason: str) -> str:
    return reason.split(":", 1)[0].strip()


def prepare(cfg: SFTBuildConfig, shard: int, j: int) -> Candidate:
    """Steps 1-2 for candidate ``j`` of ``shard``: source scene, question, extension, render."""
    s = scene_seed(cfg.seed, shard * CANDIDATES_PER_SHARD + j)
    rng = np.random.default_rng([s, 0x5F7])
    u_useless, u_clean, u_kind = rng.random(3)
    c = Candidate(j, s, bool(u_useless < cfg.keep_useless), bool(u_clean < cfg.keep_clean))
    src = sample_scene(s, cfg.source_regime)
    kind = cfg.question_kinds[int(u_kind * len(cfg.question_kinds))]
    q = sample_question(src, rng, kind)
    if q is None:
        c.stage, c.reasons = "question", (f"no {kind} question found",)
        return c
    ext = extend_scene(src, q, s, cfg.target_regime)
    if not ext.ok:
        c.stage, c.reasons = "extension", ext.reasons
        return c
    c.scene, c.question = ext.scene, ext.question
    c.image = render(ext.scene)
    c.png = png_bytes(c.image)
    return c


def judge_edit(cfg: SFTBuildConfig, c: Candidate, text: str) -> None:
    """Step 3 for one candidate: parse, apply, box check, description check, integrity."""
    c.program_text = text
    try:
        c.program = parse_program(text)
    except EditError as e:
        c.stage, c.reasons = "parse", (f"parse: {e}",)
        return
    try:
        c.result = apply_program(c.scene, c.program, c.image)
    except EditError as e:
        c.stage, c.reasons = "apply", (f"apply: {e}",)
        return
    q = c.question
    assert q is not None
    bad = [
        f"box overlaps target: op {i + 1} ({c.program[i].name}) box {b} covers {box_overlap(b, t.box):.0%} of target {t.id}"
        for i, b in zip(c.result.touched_ops, c.result.touched_boxes)
        for t in q.targets
        if box_overlap(b, t.box) > 0
    ]
    if bad:
        c.stage, c.reasons = "box", tuple(bad)
        return
    refs = [q.spec["a"], q.spec["b"]] if q.spec["kind"] == "relation" else [q.spec["ref"]]
    target_ids = {t.id for t in q.targets}
    before = {o.id: o for o in c.scene.objects}
    bad = []
    for o in c.result.scene.objects:
        if before.get(o.id) == o:
            continue
        if o.id in target_ids:
            bad.append(f"target changed: object {o.id} is a target of the question")
        elif any(matches(o, r) for r in refs):
            bad.append(f"copy of a target: {o.size} {o.color} {o.material} {o.shape} (object {o.id}) fits the question's description")
    if bad:
        c.stage, c.reasons = "description", tuple(bad)
        return
    c.verdict = check(c.scene, c.image, q, c.result, cfg.integrity)
    if not c.verdict.passed:
        c.stage, c.reasons = "integrity", c.verdict.reasons


# --- one shard ------------------------------------------------------------------------------
def _choices(answers: list[str] | None, q: Question) -> list[str | None]:
    return [extract_choice(a, q.options) for a in (answers or [])]


def _record(cfg: SFTBuildConfig, cfg_hash: str, shard: int, c: Candidate, category: str, attacker: str) -> dict[str, Any]:
    q = c.question
    assert q is not None and c.png is not None
    clean_choice = _choices(c.clean_answers, q)
    edited = category != "clean"
    edited_choice = _choices(c.edited_answers, q) if edited else []
    r = c.result if edited else None
    edited_png = png_bytes(r.image) if r is not None else c.png
    return {
        "id": f"aot-sft-{cfg.seed}-{shard:05d}-{c.j:05d}-{'c' if category == 'clean' else 'e'}",
        "shard": shard,
        "candidate": c.j,
        "scene_seed": c.seed,
        "category": category,
        "effective": category == "effective",
        "question_kind": q.kind,
        "question": q.text,
        "options": list(q.options),
        "answer": q.answer,
        "answer_text": q.answer_text,
        "prompt": format_prompt(q),
        "targets": [{"id": t.id, "box": list(t.box)} for t in q.targets],
        "question_spec": json.dumps(q.spec, sort_keys=True),
        "scene": json.dumps(c.scene.to_dict(), sort_keys=True),
        "clean_image": image_value(c.png),
        "edited_image": image_value(edited_png),
        "attacker": attacker if edited else "",
        "edit_program": c.program_text if edited else "",
        "edit_json": json.dumps(program_to_json(c.program) if edited else [], sort_keys=True),
        "edit_ops": [op.name for op in c.program] if edited else [],
        "integrity_passed": True,
        "integrity_ssim": [{"id": int(i), "ssim": round(float(s), 6)} for i, s in sorted(c.verdict.ssim.items())] if edited else [],
        "integrity_reasons": [],
        "answer_after": (c.verdict.answer_after or "") if edited else q.answer_text,
        "defender_clean": list(c.clean_answers or []),
        "defender_edited": list(c.edited_answers or []) if edited else [],
        "defender_clean_choice": clean_choice,
        "defender_edited_choice": edited_choice,
        "clean_correct": all(x == q.answer for x in clean_choice),
        "edited_wrong": sum(x != q.answer for x in edited_choice),
        "seed": cfg.seed,
        "aot_version": __version__,
        "config_hash": cfg_hash,
    }


def _stats_skeleton() -> dict[str, Any]:
    return {
        "candidates": 0,
        "extended": 0,
        "rejected": {s: 0 for s in STAGES},
        "reasons": {s: {} for s in STAGES},
        "integrity": {"checked": 0, "passed": 0},
        "defender": {"clean_answered": 0, "clean_correct": 0, "edited_answered": 0},
        "evaluated": 0,
        "effective": 0,
        "by_op": {},
        "by_kind": {},
        "records": {k: 0 for k in CATEGORIES},
        "answers": {},
        "exhausted": False,
    }


def _bump(d: dict, key: str, field_: str, n: int = 1) -> None:
    d.setdefault(key, {"evaluated": 0, "effective": 0})[field_] += n


def build_shard(
    cfg: SFTBuildConfig,
    shard: int,
    size: int,
    answerer: Answerer,
    attacker: Attacker,
    cfg_hash: str,
    progress: Callable[[int], None] | None = None,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The first ``size`` records of shard ``shard`` and the shard's statistics."""
    rows: list[dict[str, Any]] = []
    st = _stats_skeleton()
    reasons: dict[str, Counter] = defaultdict(Counter)
    j0 = chunk_i = done = 0
    while len(rows) < size:
        if j0 >= CANDIDATES_PER_SHARD:
            st["exhausted"] = True
            break
        js = range(j0, min(j0 + cfg.chunk, CANDIDATES_PER_SHARD))
        cands = [prepare(cfg, shard, j) for j in js]
        alive = [c for c in cands if c.stage is None]
        st["candidates"] += len(cands)
        st["extended"] += len(alive)
        # 3. propose, then judge each edit
        texts = attacker.propose([AttackItem(c.scene, c.image, c.question, c.seed) for c in alive]) if alive else []
        if len(texts) != len(alive):
            raise RuntimeError(f"attacker {attacker.name!r} returned {len(texts)} programs for {len(alive)} items")
        for c, t in zip(alive, texts):
            judge_edit(cfg, c, t)
            if c.stage in (None, "integrity"):
                st["integrity"]["checked"] += 1
                st["integrity"]["passed"] += c.stage is None
        for c in cands:
            if c.stage is not None:
                st["rejected"][c.stage] += 1
                reasons[c.stage].update({_reason_key(r) for r in c.reasons})
        # 4. the defender: clean images of edit survivors and of clean keepers, in one call
        ask_clean = [c for c in alive if c.stage is None or c.keep_clean]
        comps = answerer([c.image for c in ask_clean], [c.question for c in ask_clean], cfg.k, derive_seed(cfg.seed, shard, chunk_i, 1))
        for c, a in zip(ask_clean, comps, strict=True):
            c.clean_answers = list(a)
        st["defender"]["clean_answered"] += len(ask_clean)
        ok = [c for c in alive if c.stage is None]
        right = {c.j for c in ok if all(x == c.question.answer for x in _choices(c.clean_answers, c.question))}
        st["defender"]["clean_correct"] += len(right)
        # edited images only where they can matter: an effectiveness test or a kept useless pair
        ask_edit = [c for c in ok if c.j in right or c.keep_useless]
        comps = answerer([c.result.image for c in ask_edit], [c.question for c in ask_edit], cfg.k, derive_seed(cfg.seed, shard, chunk_i, 2))
        for c, a in zip(ask_edit, comps, strict=True):
            c.edited_answers = list(a)
        st["defender"]["edited_answered"] += len(ask_edit)
        # 5. keep
        for c in cands:
            if c.stage is None:
                effective = False
                if c.j in right:
                    wrong = sum(x != c.question.answer for x in _choices(c.edited_answers, c.question))
                    effective = wrong >= cfg.min_wrong
                    st["evaluated"] += 1
                    st["effective"] += effective
                    for op in sorted({op.name for op in c.program}):
                        _bump(st["by_op"], op, "evaluated")
                        _bump(st["by_op"], op, "effective", effective)
                    _bump(st["by_kind"], c.question.kind, "evaluated")
                    _bump(st["by_kind"], c.question.kind, "effective", effective)
                if effective:
                    rows.append(_record(cfg, cfg_hash, shard, c, "effective", attacker.name))
                elif c.keep_useless:
                    rows.append(_record(cfg, cfg_hash, shard, c, "useless", attacker.name))
            if c.question is not None and c.png is not None and c.keep_clean:
                rows.append(_record(cfg, cfg_hash, shard, c, "clean", attacker.name))
        j0 += cfg.chunk
        chunk_i += 1
        if progress is not None:
            progress(min(len(rows), size) - done)
        done = min(len(rows), size)
    rows = rows[:size]
    st["reasons"] = {s: dict(sorted(reasons[s].items())) for s in STAGES}
    for r in rows:
        st["records"][r["category"]] += 1
        st["answers"][r["answer"]] = st["answers"].get(r["answer"], 0) + 1
    st["answers"] = dict(sorted(st["answers"].items()))
    st["by_op"] = dict(sorted(st["by_op"].items()))
    st["by_kind"] = dict(sorted(st["by_kind"].items()))
    return rows, st


class ShardBuilder:
    """What one worker holds: the answerer (loaded once) and the attacker; builds shards by index."""

    def __init__(self, cfg: SFTBuildConfig, answerer_factory: Callable[[], Answerer] | None = None, threads: int | None = None):
        self.cfg = cfg
        factory = answerer_factory or (lambda: make_answerer(cfg.defender, cfg.temperature, cfg.max_new_tokens, cfg.batch_size, threads))
        self.answerer = factory()
        self.attacker = make_attacker(cfg.attacker, **({"max_ops": cfg.max_ops} if cfg.attacker == "random" else {}))

    def build(self, shard: int, size: int, cfg_hash: str, progress: Callable[[int], None] | None = None) -> tuple[list[dict[str, Any]], dict[str, Any], float]:
        t = time.perf_counter()
        rows, st = build_shard(self.cfg, shard, size, self.answerer, self.attacker, cfg_hash, progress)
        return rows, st, time.perf_counter() - t


def resolve_defender_id(cfg: SFTBuildConfig, answerer_factory: Callable[[], Answerer] | None) -> str:
    if answerer_factory is not None:
        return str(getattr(answerer_factory, "fingerprint", None) or getattr(answerer_factory, "__name__", None) or repr(answerer_factory))
    return defender_fingerprint(cfg.defender)
