"""The AOT self-play loop, written out in order.

    sft          build AOT-SFT with the born defender (the paper's adversarial dataset)
    cold_start   attacker SFT on its effective edits (the attacker's cold start)
    warmup       stage 0: defender RL on a small clean set (paper: 900 samples)
    iter i       1. attacker RL against the frozen defender i-1
                 2. the frozen attacker i writes a fresh curriculum: edits that pass integrity,
                    effective ones first, plus a share of clean replay (and optionally edits
                    from earlier attackers: the opponent pool)
                 3. defender RL (DAPO settings, dynamic sampling) on the curriculum
    eval         the evaluation suite on the base and final defenders, and the report

After every phase a checkpoint (both models, the completed phases, metrics, curriculum and
config) is written atomically under ``OUT/checkpoints``; ``resume`` continues after the last
completed phase. Each phase starts a fresh optimizer (as the paper's separate RL runs) and
derives every seed from (run seed, phase index), so a resumed run reproduces an uninterrupted one.
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import zlib
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from .attack import RandomAttacker
from .attack.base import AttackItem
from .attack.data import attack_items, cold_start_examples
from .attack.model import ModelAttacker, init_attacker
from .attack.scoring import ScoringConfig, clean_correctness, score_programs, summarize
from .attack.diffusion import DiffusionAttacker, DiffusionAttackerConfig, is_saved as is_diffusion_attacker
from .attack.diffusion_train import evaluate_diffusion, train_diffusion_attacker
from .attack.train import AttackerRLConfig, SFTConfig, cold_start, evaluate_attacker, train_attacker
from .config import dump_config, to_dict
from .backends import Backend, BackendConfig, build_backend, without_default_backend
from .data.sft import SFTBuildConfig
from .io import atomic_write_json, atomic_write_jsonl, atomic_write_text, decode_png, png_bytes
from .models.defender import Defender, load_defender
from .rl.defender import QAItem, train_defender
from .rl.grpo import RLConfig
from .vqa import Question

# seed bases (all below the evaluation range 900..999)
WARMUP_BASE = 400
CURRICULUM_BASE = 500
REPLAY_BASE = 600
ATTACKER_BASE = 700
MONITOR_OFFSET = 80  # evaluation-range offset for the per-phase monitor sets (never trained on)
MAX_SEED = 10  # bases BASE + 10 * seed + iteration stay inside their own hundred for seeds 0..9
MAX_ITERATIONS = 9


@dataclass
class WarmupConfig:
    """Stage 0: defender RL on clean items."""

    items: int = 900
    """Clean (image, question) items (paper: 900)."""
    rl: RLConfig = field(default_factory=lambda: RLConfig(learning_rate=2e-5, max_steps=20, prompts_per_step=8))
    """RL settings of the warm-up."""


@dataclass
class CurriculumConfig:
    """What the frozen attacker's curriculum holds."""

    source: str = "attacker"
    """Who edits the curriculum: 'attacker' (AOT: the learned attacker), 'random' (the random
    attacker: random-edit augmentation baseline) or 'clean' (no edits: clean-data ablation).
    The baselines skip the attacker phases and keep everything else equal."""
    proposals: int = 256
    """Fresh items the attacker proposes edits for, per iteration."""
    size: int = 128
    """Edited items kept (integrity passed; effective ones first, then by efficacy)."""
    clean_replay: float = 0.25
    """Clean items added, as a share of ``size`` (guards against forgetting clean skills)."""
    opponent_pool: bool = False
    """Mix in edits from earlier iterations' attackers."""
    pool_share: float = 0.3
    """Share of proposals made by earlier attackers when ``opponent_pool`` is on."""

    def __post_init__(self) -> None:
        if self.source not in ("attacker", "random", "clean"):
            raise ValueError(f"curriculum.source must be attacker, random or clean, got {self.source!r}")
        if self.proposals < 1 or self.size < 1:
            raise ValueError("curriculum proposals and size must be >= 1")
        if not 0 <= self.clean_replay <= 4 or not 0 <= self.pool_share <= 1:
            raise ValueError("clean_replay must be in [0, 4] and pool_share in [0, 1]")


ATTACKER_KINDS = ("program", "diffusion")


@dataclass
class AttackerPhaseConfig(AttackerRLConfig):
    """The loop's attacker: a program writer trained by GRPO (the fields above), or a diffusion
    editor trained by Flow-GRPO (``kind: diffusion``, settings under ``diffusion``; ``scoring``
    serves both)."""

    kind: str = "program"
    """'program': a model attacker writes edit programs (cold start on AOT-SFT, then GRPO).
    'diffusion': a proposer (``diffusion.proposer``, not trained) says where and what, the
    diffusion editor paints it and its LoRA is trained by Flow-GRPO; no AOT-SFT build or
    cold start, and the curricula store its images."""
    diffusion: DiffusionAttackerConfig = field(default_factory=DiffusionAttackerConfig)
    """The diffusion attacker (``kind: diffusion``): editor, judge, proposer, Flow-GRPO."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.kind not in ATTACKER_KINDS:
            raise ValueError(f"kind must be program or diffusion, got {self.kind!r}")


@dataclass
class MonitorConfig:
    """Quick held-out measurements after each phase (greedy)."""

    clean_n: int = 64
    """Clean simple-scene questions (forgetting check)."""
    complex_n: int = 64
    """Clean complex-scene questions."""
    attacked_n: int = 64
    """Held-out items attacked by the current attacker."""


@dataclass
class SelfPlayConfig:
    """A whole AOT run."""

    seed: int = 0
    """Run seed; every phase derives its seeds from it."""
    defender: str = "base"
    """Starting defender: base (the shipped born defender) | PATH | HF-ID."""
    backend: BackendConfig = field(default_factory=BackendConfig)
    """Whose items, editor and judge every phase uses (default: the world; photos with
    ``data: FILE``). The AOT-SFT build and the final evaluation use it too."""
    iterations: int = 3
    """Co-evolution iterations (paper: 3)."""
    sft: SFTBuildConfig = field(default_factory=lambda: SFTBuildConfig(n=500, attacker="heuristic", shard_size=250))
    """The AOT-SFT build used for the attacker's cold start (its defender is set to ``defender``)."""
    sft_data: str = ""
    """An existing AOT-SFT dataset to use instead of building one."""
    attacker_sft: SFTConfig = field(default_factory=SFTConfig)
    """Cold-start SFT of the attacker."""
    attacker_sft_min_examples: int = 64
    """If AOT-SFT has fewer effective edits than this, integrity-passing useless ones, then
    heuristic-proposer edits that pass integrity, pad the cold start."""
    attacker_sft_teacher: str = "heuristic"
    """The registered attacker whose integrity-passing edits pad the cold start (the standalone
    recipe's ``heuristic-relative`` teaches the relative ops ``twin`` and ``mimic``)."""
    warmup: WarmupConfig = field(default_factory=WarmupConfig)
    """Stage 0."""
    attacker: AttackerPhaseConfig = field(default_factory=AttackerPhaseConfig)
    """Attacker RL (and how its proposals are scored); ``kind: diffusion`` trains a diffusion editor instead."""
    attacker_items: int = 128
    """Items the attacker trains on per iteration."""
    curriculum: CurriculumConfig = field(default_factory=CurriculumConfig)
    """The frozen attacker's curriculum."""
    defender_rl: RLConfig = field(default_factory=lambda: RLConfig(learning_rate=2e-5, max_steps=20, prompts_per_step=8))
    """Defender RL on the curriculum (paper: DAPO settings)."""
    monitor: MonitorConfig = field(default_factory=MonitorConfig)
    """Per-phase held-out measurements."""
    save_defenders: bool = False
    """Also keep the defender after every iteration in OUT/defenders/iterN (the study evaluates them)."""
    eval_suite: str = "all"
    """Benchmarks of the final evaluation ('' skips it)."""
    eval_n: int = 64
    """Items per benchmark in the final evaluation."""
    eval_attacker_n: int = 0
    """Held-out base questions (evaluation seeds) that the run's own last attacker edits, answered
    by the base and the final defender: does the final defender resist its opponent's edits
    better? The ``heldout`` benchmark with the run's attacker, in OUT/eval/attacker/ and the
    report's summary with a paired interval. 0 skips it; world backend, program attacker."""

    def __post_init__(self) -> None:
        if self.iterations < 0 or self.iterations > MAX_ITERATIONS:
            raise ValueError(f"iterations must be in 0..{MAX_ITERATIONS} (each iteration takes its own scene base), got {self.iterations}")
        if not 0 <= self.seed < MAX_SEED:
            raise ValueError(f"seed must be in 0..{MAX_SEED - 1}: each run seed owns the scene bases BASE + 10 * seed + iteration, "
                             f"which must not collide with another seed's or reach the evaluation range (900+), got {self.seed}")
        if self.attacker_items < 1:
            raise ValueError("attacker_items must be >= 1")
        from .attack import ATTACKERS

        if self.attacker_sft_teacher not in ATTACKERS:
            raise ValueError(f"attacker_sft_teacher: unknown attacker {self.attacker_sft_teacher!r}; choose from {', '.join(sorted(ATTACKERS))}")
        _check_backend(self)
        _check_attacker_kind(self)
        # the evaluation settings are used only in the last phase: check them now, not after training
        if self.eval_n < 1:
            raise ValueError(f"eval_n must be >= 1, got {self.eval_n}")
        if self.eval_attacker_n < 0:
            raise ValueError(f"eval_attacker_n must be >= 0, got {self.eval_attacker_n}")
        if self.eval_suite:
            from .eval import BENCHMARKS, resolve_suite

            try:
                needs_files = [b for b in resolve_suite(self.eval_suite, self.backend.name) if not (BENCHMARKS[b].in_all or BENCHMARKS[b].any_backend)]
            except ValueError as e:
                raise ValueError(f"eval_suite: {e}") from None
            if needs_files:
                raise ValueError(f"eval_suite: {', '.join(needs_files)} need(s) benchmark files; run `aot eval` on the final defender for them")


def _check_backend(cfg: SelfPlayConfig) -> None:
    """The run's backend reaches the AOT-SFT build (``sft.backend`` is not set apart) and every
    attacker the run names must write for it."""
    if cfg.backend.is_default:
        if not cfg.sft.backend.is_default:
            raise ValueError("sft.backend: the AOT-SFT build uses the run's backend; set backend instead")
        return
    if not cfg.sft.backend.is_default and cfg.sft.backend != cfg.backend:
        raise ValueError("sft.backend: the AOT-SFT build uses the run's backend; set backend alone")
    from .attack import ATTACKERS, takes_backend

    neutral = ", ".join(sorted(a for a in ATTACKERS if takes_backend(a)))
    for key, name in (("attacker_sft_teacher", cfg.attacker_sft_teacher), ("sft.attacker", cfg.sft.attacker)):
        if not takes_backend(name):
            preset = " (or start from the preset `--config photos`)" if cfg.backend.name == "photos" else ""
            raise ValueError(f"{key}: attacker {name!r} reads the world's scene graph; on backend {cfg.backend.name!r} set {key} to one of {neutral}{preset}")
    try:
        replace(cfg.sft, backend=cfg.backend)  # its kinds, regimes and attacker, checked now rather than after the warm-up
    except ValueError as e:
        raise ValueError(f"sft: {e}") from None


def _check_attacker_kind(cfg: SelfPlayConfig) -> None:
    """A diffusion attacker: settings that can run, on the world, editing the curriculum."""
    if cfg.attacker.kind != "diffusion":
        return
    if not cfg.backend.is_default:
        raise ValueError(f"attacker.kind: the diffusion attacker works on the world backend only (its judge reads world objects), not {cfg.backend.name!r}")
    if cfg.curriculum.source != "attacker":
        raise ValueError(f"attacker.kind: diffusion trains the attacker that edits the curriculum; curriculum.source {cfg.curriculum.source!r} uses none (set source: attacker)")
    if cfg.curriculum.opponent_pool:
        raise ValueError("curriculum.opponent_pool: not available with attacker.kind diffusion (its earlier editors are not kept loaded); set it to false")
    cfg.attacker.diffusion.check("attacker.diffusion.")


def paints(attacker: Any) -> bool:
    """Whether ``attacker`` edits pixels (a diffusion attacker) rather than writing programs."""
    return bool(getattr(attacker, "paints", False))


def load_attacker(path: Path, backend: Backend) -> Any:
    """The attacker saved at ``path``: a diffusion attacker or a model attacker."""
    return DiffusionAttacker.load(path, backend) if is_diffusion_attacker(path) else ModelAttacker.load(path, backend=backend)


def phases(cfg: SelfPlayConfig) -> list[str]:
    learned = cfg.curriculum.source == "attacker"
    # a diffusion attacker's proposer is a fixed program attacker: no AOT-SFT, no cold start
    names = ["sft", "cold_start", "warmup"] if learned and cfg.attacker.kind == "program" else ["warmup"]
    for i in range(1, cfg.iterations + 1):
        names += ([f"iter{i}.attacker"] if learned else []) + [f"iter{i}.curriculum", f"iter{i}.defender"]
    return names + ["eval"]


# --- data ----------------------------------------------------------------------------
def simple_scenes(n: int, base: int, backend: Backend | BackendConfig | None = None) -> list[tuple[Any, Any]]:
    """(scene, question) pairs of the backend's replay pool from train slot ``base`` (the
    world: simple scenes, the born defender's distribution)."""
    return [(it.scene, it.question) for it in build_backend(backend).items("train", n, base, pool="replay")]


def clean_items(n: int, base: int, regime: str = "complex", backend: Backend | BackendConfig | None = None) -> list[QAItem]:
    """Clean items of train slot ``base``: "complex" ones from the attack pool (the
    curriculum's source: extended simple scenes), "simple" ones from the replay pool."""
    pool = "attack" if regime == "complex" else "replay"
    return [QAItem(it.image, it.question) for it in build_backend(backend).items("train", n, base, pool=pool)]


def monitor_sets(cfg: SelfPlayConfig) -> dict[str, Any]:
    """Held-out sets of the eval split (slots ``MONITOR_OFFSET`` + 0, 1, 2 under the run seed)."""
    backend, run = build_backend(cfg.backend), cfg.seed % 100
    simple = backend.items("eval", cfg.monitor.clean_n, MONITOR_OFFSET, run, pool="replay")
    cplx = backend.items("eval", cfg.monitor.complex_n, MONITOR_OFFSET + 1, run)
    attacked = backend.items("eval", cfg.monitor.attacked_n, MONITOR_OFFSET + 2, run)
    return {"simple": [QAItem(it.image, it.question) for it in simple], "complex": [QAItem(it.image, it.question) for it in cplx], "attack": attacked}


def greedy_accuracy(defender: Defender, items: list[QAItem]) -> float:
    if not items:
        return float("nan")
    ans = defender.answer([it.image for it in items], [it.question for it in items], do_sample=False)
    return float(np.mean([a[0] == it.question.answer for a, it in zip(ans, items)]))


def attacked_accuracy(defender: Defender, attacker: Any, items: list[AttackItem], backend: Backend | None = None) -> tuple[float, dict[str, Any]]:
    """Accuracy on held-out items after the attacker's edits that pass integrity (items whose
    edit fails integrity are scored on the clean image), plus the attacker's eval summary.
    ``backend``: the items' (default: the attacker's own, else the world)."""
    backend = build_backend(backend if backend is not None else getattr(attacker, "backend", None))
    if paints(attacker):
        ev, scored = evaluate_diffusion(attacker, defender, items, keep_images=True)
        images = [s.edited_image if s.passed else it.image for s, it in zip(scored, items)]
        return greedy_accuracy(defender, [QAItem(im, it.question) for im, it in zip(images, items)]), ev
    ev = evaluate_attacker(attacker, defender, items, backend=backend)
    texts = attacker.propose(items)
    images = [backend.edited_or_clean(it, t) for it, t in zip(items, texts)]
    acc = greedy_accuracy(defender, [QAItem(im, it.question) for im, it in zip(images, items)])
    return acc, ev


def build_curriculum(attacker: Any, defender: Defender, cfg: SelfPlayConfig, iteration: int, pool: list[ModelAttacker],
                     backend: Backend | None = None) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Rows {seed, the backend's replay key (the world: scene), question, program, effective,
    efficacy, source} for defender RL: what ``curriculum_items`` replays.

    ``attacker`` is the frozen learned attacker, a RandomAttacker (baseline) or None (clean);
    ``backend``: the run's (default: ``cfg.backend``)."""
    cc = cfg.curriculum
    backend = build_backend(backend if backend is not None else cfg.backend)
    items = attack_items(cc.proposals, CURRICULUM_BASE + 10 * cfg.seed + iteration, backend=backend)

    def row(it: Any, program: str, effective: bool, efficacy: float, source: str) -> dict[str, Any]:
        return {"seed": it.seed, **backend.replay_key(it), "question": it.question.to_dict(), "program": program, "effective": effective, "efficacy": efficacy, "source": source}

    n_clean = int(round(cc.size * cc.clean_replay))
    replay = backend.items("train", n_clean, REPLAY_BASE + 10 * cfg.seed + iteration, pool="replay")
    if attacker is None:  # clean-data ablation: the same items, unedited
        rows = [row(it, "", False, 0.0, "clean") for it in items[: cc.size]] + [row(it, "", False, 0.0, "replay") for it in replay]
        return rows, {"curriculum/proposals": len(items), "curriculum/edited": 0, "curriculum/clean_replay": n_clean}
    scfg = cfg.attacker.scoring
    if paints(attacker):  # fills are pixels: the rows keep the image, the proposal and its fill seed
        clean = clean_correctness(defender, items, scfg, seed=cfg.seed * 7919 + iteration)
        scored = attacker.score(defender, items, clean, scfg, seed=cfg.seed * 7927 + iteration, keep_images=True)
        return _curriculum_rows(items, scored, ["current"] * len(items), replay, cc, n_clean, row)
    n_pool = int(round(cc.proposals * cc.pool_share)) if cc.opponent_pool and pool else 0
    texts = attacker.propose(items[n_pool:])
    sources = ["current"] * (len(items) - n_pool)
    if n_pool:
        pool_items = items[:n_pool]
        pool_texts: list[str] = [""] * n_pool
        for j, a in enumerate(pool):
            idx = list(range(j, n_pool, len(pool)))
            for k, t in zip(idx, a.propose([pool_items[k] for k in idx])):
                pool_texts[k] = t
        texts = pool_texts + texts
        sources = [f"pool{j % len(pool)}" for j in range(n_pool)] + sources
    clean = clean_correctness(defender, items, scfg, seed=cfg.seed * 7919 + iteration)
    scored = score_programs(defender, items, texts, clean, scfg, seed=cfg.seed * 7927 + iteration, backend=backend)
    return _curriculum_rows(items, scored, sources, replay, cc, n_clean, row)


def _curriculum_rows(items: list[Any], scored: list[Any], sources: list[str], replay: list[Any], cc: CurriculumConfig, n_clean: int,
                     row: Callable[..., dict[str, Any]]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The kept rows (passing edits, effective first) and the clean replay, with their counts.
    A fill's row also holds ``fill`` (op, box, description, seed) and ``image_png`` (base64):
    the program cannot make a diffusion fill again."""
    passing = [(i, s) for i, s in enumerate(scored) if s.passed]
    # effective first (highest efficacy), then the rest in proposal order
    passing.sort(key=lambda p: (-(p[1].reward if p[1].clean_correct else 0.0), p[0]))
    rows = [row(items[i], s.text, bool(s.success), float(s.reward), sources[i]) for i, s in passing[: cc.size]]
    for r, (_, s) in zip(rows, passing):
        if s.fill is not None:
            r["fill"], r["image_png"] = s.fill, base64.b64encode(png_bytes(s.edited_image)).decode()
    rows += [row(it, "", False, 0.0, "replay") for it in replay]
    summ = summarize(scored)
    stats = {
        "curriculum/proposals": len(items),
        "curriculum/passing": len(passing),
        "curriculum/edited": min(len(passing), cc.size),
        "curriculum/effective": sum(r["effective"] for r in rows),
        "curriculum/clean_replay": n_clean,
        "curriculum/op_mix": summ["op_mix"],
        "curriculum/success_rate": summ["success_rate"],
    }
    return rows, stats


def curriculum_items(rows: list[dict[str, Any]], backend: Backend | BackendConfig | None = None) -> list[QAItem]:
    """(edited image, question) items from curriculum rows; the backend makes the images again
    from each row's replay key and program (making and editing are deterministic), except where
    a row stores its image (``image_png``: a diffusion fill)."""
    backend = build_backend(backend)
    out = []
    for r in rows:
        q = Question.from_dict(r["question"])
        if r.get("image_png"):
            out.append(QAItem(decode_png(base64.b64decode(r["image_png"]), what=f"curriculum row of item {r.get('seed')}"), q))
            continue
        out.append(QAItem(backend.replay_image(r, q, r["program"], int(r.get("seed", 0)))[1], q))
    return out


# --- checkpoints -----------------------------------------------------------------------
def _save_checkpoint(out: Path, state: dict[str, Any], defender: Defender, attacker: ModelAttacker | None) -> None:
    ck = out / "checkpoints"
    ck.mkdir(parents=True, exist_ok=True)
    name = f"{len(state['done']):02d}-{state['done'][-1].replace('.', '-')}"
    tmp = ck / f".{name}.tmp"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    defender.save(tmp / "defender")
    if attacker is not None:
        attacker.save(tmp / "attacker")
    atomic_write_json(tmp / "state.json", state)
    final = ck / name
    if final.exists():
        shutil.rmtree(final)
    tmp.rename(final)
    for old in ck.iterdir():  # keep only the newest complete checkpoint
        if old.is_dir() and old.name != name and not old.name.startswith("."):
            shutil.rmtree(old)


def _latest_checkpoint(out: Path) -> Path | None:
    ck = out / "checkpoints"
    if not ck.exists():
        return None
    done = sorted(p for p in ck.iterdir() if p.is_dir() and not p.name.startswith(".") and (p / "state.json").exists())
    return done[-1] if done else None


def _phase_seed(cfg: SelfPlayConfig, phase: str) -> int:
    """Seed of a phase from its *name*, so a phase gets the same seed in every arm of a study
    (the warm-up of the AOT run and of the clean-data baseline are the same computation)."""
    return (cfg.seed * 1_000_003 + zlib.crc32(phase.encode())) % (2**31)


def _jsonable(v: Any) -> Any:
    if isinstance(v, float) and (v != v):
        return None
    if isinstance(v, dict):
        return {k: _jsonable(x) for k, x in v.items()}
    return v


# --- the run folder --------------------------------------------------------------------
RUN_OUTPUTS = ("config.yaml", "checkpoints", "metrics.jsonl", "metrics.json", "attackers", "curricula", "defenders", "sft", "eval", "report.html")
"""What a run writes into its folder (``--overwrite`` removes all of it)."""
EVAL_ONLY_FIELDS = ("eval_suite", "eval_n", "eval_attacker_n")
"""Config fields used only by the final evaluation: left out of the resume hash, so they can
be corrected and a run resumed."""


class RunDirError(ValueError):
    """The run folder cannot be used as asked (another run is there, or the checkpoint belongs
    to another config); the message says what to do."""


def _hashed(cfg: SelfPlayConfig) -> dict[str, Any]:
    """The config as its hashes read it: the default backend left out (at any depth), so runs
    begun before there was a backend setting resume."""
    d = without_default_backend(to_dict(cfg))
    if d["attacker"].get("kind") == "program":  # the default attacker: hashes as before the setting existed
        d["attacker"] = {k: v for k, v in d["attacker"].items() if k not in ("kind", "diffusion")}
    return d


def resume_hash(cfg: SelfPlayConfig) -> str:
    """Hash of every setting that shapes training (the config less ``EVAL_ONLY_FIELDS``)."""
    d = {k: v for k, v in _hashed(cfg).items() if k not in EVAL_ONLY_FIELDS}
    return hashlib.sha256(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:16]


def full_hash(cfg: SelfPlayConfig) -> str:
    """``config_hash`` of the whole config (what checkpoints made before ``resume_hash`` hold)."""
    return hashlib.sha256(json.dumps(_hashed(cfg), sort_keys=True, default=str).encode()).hexdigest()[:16]


def _run_path(out: Path, p: str) -> Path:
    """A path stored in state.json: relative to the run folder (so a run can be moved or resumed
    from another working directory); absolute for data outside it. Checkpoints written before
    paths were stored this way hold paths relative to the working directory: still read."""
    q = Path(p)
    if q.is_absolute():
        return q
    return out / q if (out / q).exists() or not q.exists() else q


def _prepare_run_dir(out: Path, cfg: SelfPlayConfig, resume: bool, overwrite: bool, log: Callable[[str], None]) -> Path | None:
    """Check the run folder before anything is written; returns the checkpoint to resume from.

    Without ``resume`` or ``overwrite`` a folder that holds a run is refused. ``resume`` with a
    checkpoint of another training config is refused (evaluation-only fields may differ).
    ``overwrite`` removes every output of the earlier run; ``resume`` without a checkpoint
    removes them too, except ``sft/`` (its shards are verified and kept or rebuilt by hash)."""
    if out.exists() and not out.is_dir():
        raise RunDirError(f"{out} exists and is not a folder; choose another --out")
    ckpt = _latest_checkpoint(out) if resume else None
    if ckpt is not None:
        try:
            prev = json.loads((ckpt / "state.json").read_text())["config_hash"]
        except (ValueError, KeyError, TypeError) as e:
            raise RunDirError(f"cannot resume {out}: {ckpt / 'state.json'} is unreadable ({type(e).__name__}: {e})") from None
        if prev not in (resume_hash(cfg), full_hash(cfg)):
            raise RunDirError(f"cannot resume {out}: its checkpoint was made with another config (hash {prev}, this config {resume_hash(cfg)}); "
                              f"compare with {out / 'config.yaml'}, or pass --overwrite to start again")
        return ckpt
    found = [n for n in RUN_OUTPUTS if (out / n).exists()]
    if found and not (resume or overwrite):
        raise RunDirError(f"{out} already holds a run ({', '.join(found)}); pass --resume to continue it or --overwrite to replace it")
    if resume and found:
        log("no checkpoint found: starting from the beginning")
    for name in found:
        if resume and not overwrite and name == "sft":
            continue
        p = out / name
        if p.is_dir():
            shutil.rmtree(p)
        else:
            p.unlink()
    return None


# --- the loop --------------------------------------------------------------------------
def run_selfplay(cfg: SelfPlayConfig, out: str | Path, resume: bool = False, log: Callable[[str], None] = print, stop_after: str | None = None, overwrite: bool = False) -> dict[str, Any]:
    """Run (or resume) the whole AOT loop into ``out``; returns the final metrics.

    A folder that already holds a run needs ``resume`` (continue after its last checkpoint) or
    ``overwrite`` (remove it and start again). ``stop_after`` ends the run after the named phase
    (tests use it to simulate a kill)."""
    out = Path(out)
    ckpt = _prepare_run_dir(out, cfg, resume, overwrite, log)
    backend = build_backend(cfg.backend)
    out.mkdir(parents=True, exist_ok=True)
    chash = resume_hash(cfg)
    state: dict[str, Any] = {"done": [], "metrics": [], "config_hash": chash, "pool": [], "curriculum": {}}
    defender: Defender
    attacker: Any = None  # ModelAttacker, or DiffusionAttacker with attacker.kind diffusion
    if ckpt is not None:
        state = json.loads((ckpt / "state.json").read_text())
        state["config_hash"] = chash
        defender = load_defender(str(ckpt / "defender"))
        if (ckpt / "attacker").exists():
            attacker = load_attacker(ckpt / "attacker", backend)
        # rows of a phase that finished after this checkpoint was written are dropped (it is redone)
        atomic_write_jsonl(out / "metrics.jsonl", state["metrics"])
        log(f"resuming after phase {state['done'][-1]} ({ckpt.name})")
    else:
        defender = load_defender(cfg.defender)
    atomic_write_text(out / "config.yaml", dump_config(cfg))  # after the checks: a refused run leaves it as it was
    base_defender_path = cfg.defender
    mon = monitor_sets(cfg)

    def record(phase: str, k: int, m: dict[str, Any], t0: float) -> None:
        m = {"phase": phase, "phase_index": k, **m, "time/phase_s": time.perf_counter() - t0}
        state["metrics"].append(_jsonable(m))
        state["done"].append(phase)
        _save_checkpoint(out, state, defender, attacker)
        # after the checkpoint, and whole: a kill in between leaves the file one row short, and a
        # resume rewrites it from the checkpoint, so it never holds a phase twice
        atomic_write_jsonl(out / "metrics.jsonl", state["metrics"])
        log(f"[{k + 1}/{len(all_phases)}] {phase}: " + ", ".join(f"{a}={b:.3f}" for a, b in m.items() if isinstance(b, float) and not a.startswith("time/")))

    def monitor_answers() -> list[str | None]:
        items = mon["simple"] + mon["complex"]
        return [a[0] for a in defender.answer([it.image for it in items], [it.question for it in items], do_sample=False)] if items else []

    def monitor_defender() -> dict[str, Any]:
        """Greedy accuracies on the monitor sets, and how many monitor answers the phase changed
        (0 marks a wasted phase: the update moved no answer)."""
        before = state.get("monitor_answers") or start_answers
        now = monitor_answers()
        state["monitor_answers"] = now
        ns = len(mon["simple"])
        items = mon["simple"] + mon["complex"]
        right = [a == it.question.answer for a, it in zip(now, items)]
        return {
            "monitor/clean_simple_acc": float(np.mean(right[:ns])) if ns else float("nan"),
            "monitor/clean_complex_acc": float(np.mean(right[ns:])) if len(items) > ns else float("nan"),
            "monitor/changed_answers": int(sum(a != b for a, b in zip(now, before or []))),
        }

    all_phases = phases(cfg)
    # the starting defender's monitor answers (a phase's changed_answers compares with the last ones)
    start_answers = monitor_answers() if not state.get("monitor_answers") else None
    for k, phase in enumerate(all_phases):
        if phase in state["done"]:
            continue
        if stop_after is not None and stop_after in state["done"]:
            log(f"stopping after {stop_after} (as asked)")
            break
        t0 = time.perf_counter()
        torch.manual_seed(_phase_seed(cfg, phase))
        m: dict[str, Any] = {}
        if phase == "sft":
            sft_dir = Path(cfg.sft_data) if cfg.sft_data else out / "sft"
            if not cfg.sft_data:
                from .data.build import build_sft

                manifest = build_sft(replace(cfg.sft, defender=base_defender_path, backend=cfg.backend), sft_dir, resume=True, log=log)
                m["sft/records"] = manifest.get("records", manifest.get("counts", {}).get("records"))
            state["sft_dir"] = str(sft_dir.resolve()) if cfg.sft_data else "sft"
        elif phase == "cold_start":
            attacker = init_attacker(base_defender_path, _phase_seed(cfg, phase), backend=backend)
            examples, n_heuristic = cold_start_examples(_run_path(out, state["sft_dir"]), cfg.attacker_sft_min_examples, cfg.seed, teacher=cfg.attacker_sft_teacher, backend=backend)
            if n_heuristic:
                m["attacker/sft_heuristic_examples"] = n_heuristic
            m |= cold_start(attacker, examples, replace(cfg.attacker_sft, seed=_phase_seed(cfg, phase)))
        elif phase == "warmup":
            items = clean_items(cfg.warmup.items, WARMUP_BASE + cfg.seed, backend=backend)
            m |= train_defender(defender, items, replace(cfg.warmup.rl, seed=_phase_seed(cfg, phase)))
            m |= monitor_defender()
            if cfg.save_defenders:
                defender.save(out / "defenders" / "warmup")
        elif phase.endswith(".attacker"):
            it = int(phase[4:].split(".")[0])
            items = attack_items(cfg.attacker_items, ATTACKER_BASE + 10 * cfg.seed + it, backend=backend)
            if cfg.attacker.kind == "diffusion":
                attacker = attacker or DiffusionAttacker(cfg.attacker.diffusion, backend)
                m |= train_diffusion_attacker(attacker, defender, items, cfg.attacker.scoring, _phase_seed(cfg, phase), cfg.attacker.clean_correct_only)
            else:
                assert attacker is not None
                acfg = replace(cfg.attacker, rl=replace(cfg.attacker.rl, seed=_phase_seed(cfg, phase)))
                m |= train_attacker(attacker, defender, items, acfg)
            pool_dir = out / "attackers" / f"iter{it}"
            attacker.save(pool_dir)
            state["pool"].append(str(pool_dir.relative_to(out)))
            ev = evaluate_diffusion(attacker, defender, mon["attack"])[0] if paints(attacker) else evaluate_attacker(attacker, defender, mon["attack"])
            m |= {"monitor/attacker_success": ev["success_rate"], "monitor/attacker_integrity": ev["integrity_pass_rate"], "monitor/attacker_parse": ev["parse_rate"], "monitor/attacker_op_mix": ev["op_mix"]}
        elif phase.endswith(".curriculum"):
            it = int(phase[4:].split(".")[0])
            pool = [ModelAttacker.load(_run_path(out, p), backend=backend) for p in state["pool"][:-1]] if cfg.curriculum.opponent_pool else []
            src = cfg.curriculum.source
            editor = attacker if src == "attacker" else (RandomAttacker(backend=backend) if src == "random" else None)
            rows, stats = build_curriculum(editor, defender, cfg, it, pool, backend=backend)
            path = out / "curricula" / f"iter{it}.jsonl"
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(path, "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))
            state["curriculum"][str(it)] = str(path.relative_to(out))
            m |= stats
        elif phase.endswith(".defender"):
            it = int(phase[4:].split(".")[0])
            rows = [json.loads(line) for line in _run_path(out, state["curriculum"][str(it)]).read_text().splitlines()]
            items = curriculum_items(rows, backend)
            m |= train_defender(defender, items, replace(cfg.defender_rl, seed=_phase_seed(cfg, phase)))
            m |= monitor_defender()
            if cfg.save_defenders:
                defender.save(out / "defenders" / f"iter{it}")
            if attacker is not None:
                # the same attacker against the defender it was trained on (iterN.attacker's
                # monitor/attacker_success) and against the one just trained on its edits
                acc, ev = attacked_accuracy(defender, attacker, mon["attack"], backend)
                m["monitor/attacked_acc"] = acc
                m["monitor/attacker_success_vs_new"] = ev["success_rate"]
        elif phase == "eval":
            m |= final_eval(cfg, out, defender, log, state, None if paints(attacker) else attacker)
        record(phase, k, m, t0)
    summary = summarize_run(state)
    atomic_write_json(out / "metrics.json", summary)
    return summary


def final_eval(cfg: SelfPlayConfig, out: Path, defender: Defender, log: Callable[[str], None], state: dict[str, Any] | None = None, attacker: Any = None) -> dict[str, Any]:
    """The evaluation suite on the base and final defenders: OUT/eval/{base,final}/results.json
    and table.md, and OUT/report.html (a summary paragraph of the paired changes, comparison
    table, per-iteration plots, attack gallery)."""
    if not cfg.eval_suite:
        return {}
    from .eval.core import EvalConfig
    from .eval.suite import run_suite, write_results
    from .report import attack_gallery, build_report, change_summary, table_from_results

    world = cfg.backend.is_default
    # on another backend the held-out attacker of the suite must write its edit language
    ecfg = EvalConfig(n=cfg.eval_n, seed=cfg.seed % 100, backend=cfg.backend, **({} if world else {"attacker": attacker if attacker is not None else "random"}))
    base = load_defender(cfg.defender)
    results = {"base": run_suite(base, cfg.eval_suite, ecfg), "final": run_suite(defender, cfg.eval_suite, ecfg)}
    for name, res in results.items():
        write_results(res, out / "eval" / name)
    # the run's own last attacker on held-out questions: it writes each program once, so base and
    # final answer the same edited images and the comparison is paired (checked by the bootstrap)
    own: dict[str, Any] = {}
    if cfg.eval_attacker_n and world and attacker is not None:
        from .attack import ProposeOnce

        acfg = replace(ecfg, attacker=ProposeOnce(attacker), n=cfg.eval_attacker_n, sizes={}, strict_trials=0)
        own = {"base": run_suite(base, "heldout", acfg), "final": run_suite(defender, "heldout", acfg)}
        for name, res in own.items():
            write_results(res, out / "eval" / "attacker" / name)
    data: dict[str, Any] = {
        "title": f"AOT run {out.name}",
        "notes": f"Born defender vs the defender after {cfg.iterations} AOT iteration(s); greedy and strict-3 metrics on held-out "
                 f"{'world benchmarks' if world else f'items of backend {cfg.backend.name}'} ({cfg.eval_n} units each).",
        "table": table_from_results({"base": [results["base"]], "final": [results["final"]]}),
        "per_iteration": per_iteration(state["metrics"] if state else []),
    }
    # the report's parts must not sink a finished run: a failure is said in the report instead
    try:
        data["summary"] = change_summary(results["base"], results["final"])
        if own:
            data["summary"] += " " + change_summary(own["base"], own["final"], {"heldout/greedy/attacked/accuracy": OWN_ATTACKER_LABEL}, lead="Against this run's last attacker, on held-out questions, ")
    except Exception as e:
        log(f"report summary skipped: {e}")
        data["summary"] = f"The summary of changes could not be computed: {e}"
    try:
        # at least 32 attacked questions, so that even a small run has a few fooling edits to show
        data["gallery"] = attack_gallery(base, defender, ecfg, attacker=attacker if attacker is not None else ("heuristic" if world else "random"), questions=max(cfg.eval_n, 32))
    except Exception as e:
        log(f"attack gallery skipped: {e}")
        data["gallery"] = {"entries": [], "note": f"The attack gallery could not be built: {e}"}
    build_report(data, out / "report.html")
    out_metrics = {f"eval/{arm}/{k}": v for arm, res in results.items() for k, v in res.get("metrics", {}).items() if isinstance(v, (int, float))}
    return out_metrics | {f"eval/attacker/{arm}/{k}": v for arm, res in own.items() for k, v in res.get("metrics", {}).items() if isinstance(v, (int, float))}


OWN_ATTACKER_LABEL = "accuracy on its edited images"


SUCCESS_LABELS = ("vs the defender it trained against", "vs the defender then trained on its edits")
"""The report's two attacker-success lines: monitor/attacker_success and monitor/attacker_success_vs_new."""


def per_iteration(metrics: list[dict[str, Any]]) -> dict[str, Any]:
    """Series for the report: iteration 0 is the warm-up, then one point per iteration."""
    by = {m["phase"]: m for m in metrics}
    iters = sorted({int(p[4:].split(".")[0]) for p in by if p.startswith("iter")})
    defender_phases = ["warmup"] + [f"iter{i}.defender" for i in iters]
    series = {}
    for key, label in (("monitor/clean_simple_acc", "clean simple accuracy"), ("monitor/clean_complex_acc", "clean complex accuracy"), ("monitor/attacked_acc", "attacked accuracy")):
        series[label] = [by.get(p, {}).get(key) for p in defender_phases]
    out: dict[str, Any] = {"iterations": [0] + iters, "metrics": series}
    # one chart, two lines: iteration N's attacker against the defender it trained against
    # (iterN.attacker) and against the defender then trained on its edits (iterN.defender);
    # the gap between them is what the defender phase took away
    att = [by.get(f"iter{i}.attacker", {}).get("monitor/attacker_success") for i in iters]
    new = [by.get(f"iter{i}.defender", {}).get("monitor/attacker_success_vs_new") for i in iters]
    success = {SUCCESS_LABELS[0]: [None] + att, SUCCESS_LABELS[1]: [None] + new}
    success = {name: s for name, s in success.items() if any(v is not None for v in s)}
    if success:
        out["attacker_success"] = success
    if any(v is not None for v in att):
        out["op_mix"] = [{}] + [by.get(f"iter{i}.attacker", {}).get("monitor/attacker_op_mix") or {} for i in iters]
    return out


def summarize_run(state: dict[str, Any]) -> dict[str, Any]:
    """metrics.json: every phase's metrics, in order, plus the completed phases."""
    return {"phases": state["done"], "metrics": state["metrics"]}
