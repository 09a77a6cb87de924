"""Attacker training: cold-start SFT on effective AOT-SFT edits, then GRPO against a frozen defender."""

from __future__ import annotations

import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from ..models.defender import to_pil
from ..rewards import completion_text
from ..rl.grpo import RLConfig, make_trainer
from .base import AttackItem
from ..backends import BackendConfig
from ..sft import SFTConfig, sft_vlm
from ..edits.ops import MAX_OPS
from .constrained import EditProgramLogitsProcessor, scene_bounds
from .model import ModelAttacker, has_grammar, item_conversation, item_prompt
from .scoring import ScoringConfig, Scored, breakdown, clean_correctness, score_programs, summarize


def cold_start(attacker: ModelAttacker, examples: Sequence[tuple[AttackItem, str]], cfg: SFTConfig) -> dict[str, Any]:
    """The attacker's cold start: SFT on (item, effective program) pairs (TRL SFTTrainer)."""
    if not examples:
        raise ValueError("cold start needs at least one (item, program) example; the AOT-SFT build had no effective edits")
    return sft_vlm(attacker.vlm, [(it.image, item_prompt(it), prog) for it, prog in examples], cfg, prefix="attacker")


class AttackerReward:
    """TRL reward function: program text in, attacker reward out, scored against the frozen
    defender (one batched defender call per GRPO generation batch). Keeps running statistics."""

    __name__ = "attacker_reward"

    def __init__(self, defender: Any, items: Sequence[AttackItem], clean_correct: Sequence[bool], cfg: ScoringConfig, seed: int = 0, backend: Any = None):
        self.defender, self.items, self.clean, self.cfg = defender, list(items), list(clean_correct), cfg
        self.backend = backend
        self.calls = 0
        self.seed = seed
        self.history: list[Scored] = []

    def __call__(self, completions: list[Any], item_id: list[int], **_: Any) -> list[float]:
        texts = [completion_text(c).strip() for c in completions]
        items = [self.items[i] for i in item_id]
        clean = [self.clean[i] for i in item_id]
        self.calls += 1
        scored = score_programs(self.defender, items, texts, clean, self.cfg, seed=self.seed * 100_003 + self.calls, backend=self.backend)
        self.history.extend(scored)
        return [s.reward for s in scored]


@dataclass
class AttackerRLConfig:
    """Attacker GRPO: the RL settings plus how proposals are scored."""

    rl: RLConfig = field(default_factory=lambda: RLConfig(learning_rate=2e-4, num_generations=4, prompts_per_step=4, max_steps=20, max_completion_length=24, ds_mode="std"))
    """GRPO settings (dynamic sampling in 'std' mode: groups whose rewards are all equal are dropped)."""
    scoring: ScoringConfig = field(default_factory=ScoringConfig)
    """Reward settings: k defender samples, penalties, diversity bonus, integrity thresholds."""
    constrained: bool = True
    """Decode under the edit-language grammar (``attack/constrained.py``): GRPO rollouts and the
    trained attacker's proposals always parse. Rollout log-probs stay those of the
    unconstrained policy."""
    max_ops: int = MAX_OPS
    """Most ops in a constrained program (the parser's limit by default)."""
    scene_bounds: bool = True
    """Constrained decoding also keeps object ids and coordinates within the training scenes
    (a missing id would fail to apply and score like a parse failure)."""
    clean_correct_only: bool = True
    """Train only on the questions the frozen defender answers right on the clean image: on the
    others no edit can earn a reward (efficacy needs a clean-correct answer), so every group
    would score alike and dynamic sampling would drop it anyway."""

    def __post_init__(self) -> None:
        if not 1 <= self.max_ops <= MAX_OPS:
            raise ValueError(f"max_ops must be in 1..{MAX_OPS} (the parser's limit), got {self.max_ops}")


def rollout_processor(attacker: ModelAttacker, cfg: AttackerRLConfig, items: Sequence[AttackItem] = ()) -> EditProgramLogitsProcessor:
    """The grammar constraint for GRPO rollouts: TRL's budget, every EOS id TRL stops on, and
    (``cfg.scene_bounds``) ids and coordinates bounded by the training scenes."""
    tok = attacker.vlm.tokenizer
    eos = attacker.model.generation_config.eos_token_id
    eos_ids = [tok.eos_token_id] + ([eos] if isinstance(eos, int) else list(eos or []))
    bounds = scene_bounds([it.scene for it in items], cfg.max_ops) if cfg.scene_bounds and items else {}
    return EditProgramLogitsProcessor(tok, max_ops=cfg.max_ops, max_new_tokens=cfg.rl.max_completion_length, eos_token_ids=sorted(set(eos_ids)), **bounds)


def clean_correct_items(items: Sequence[Any], clean: Sequence[bool], min_items: int = 1) -> tuple[list[Any], list[bool]]:
    """The items the defender answers right on the clean image (all of them when it answers
    none right: then every group scores alike and is dropped, but training does not crash),
    cycled up to ``min_items`` (one GRPO batch of prompts: fewer would give no step at all)."""
    keep = [i for i, ok in enumerate(clean) if ok] or list(range(len(items)))
    while len(keep) < min_items:
        keep += keep[: min_items - len(keep)]
    return [items[i] for i in keep], [bool(clean[i]) for i in keep]


def train_attacker(attacker: ModelAttacker, defender: Any, items: Sequence[AttackItem], cfg: AttackerRLConfig) -> dict[str, Any]:
    """GRPO of the attacker against the frozen ``defender``; updates ``attacker`` in place.

    Returns namespaced metrics: reward, parse / integrity / success rates over all rollouts,
    operation mix, kept and dropped groups, time.
    """
    t0 = time.perf_counter()
    frozen = []
    if hasattr(defender, "model"):  # the defender is frozen while the attacker trains
        for p in defender.model.parameters():
            frozen.append((p, p.requires_grad))
            p.requires_grad_(False)
    try:
        return _train_attacker(attacker, defender, items, cfg, t0)
    finally:
        for p, flag in frozen:
            p.requires_grad_(flag)


def _train_attacker(attacker: ModelAttacker, defender: Any, items: Sequence[AttackItem], cfg: AttackerRLConfig, t0: float) -> dict[str, Any]:
    from datasets import Dataset

    clean = clean_correctness(defender, items, cfg.scoring, seed=cfg.rl.seed)
    clean_rate = float(np.mean(clean)) if clean else float("nan")
    if cfg.clean_correct_only:
        items, clean = clean_correct_items(items, clean, cfg.rl.prompts_per_step)
    ds = Dataset.from_dict(
        {"prompt": [item_conversation(it) for it in items], "image": [to_pil(it.image) for it in items], "item_id": list(range(len(items)))}
    )
    reward = AttackerReward(defender, items, clean, cfg.scoring, seed=cfg.rl.seed, backend=getattr(attacker, "backend", None))
    proc = rollout_processor(attacker, cfg, items) if cfg.constrained and has_grammar(getattr(attacker, "backend", None)) else None
    with tempfile.TemporaryDirectory(prefix="aot-attacker-grpo-") as tmp:
        tr = make_trainer(attacker.model, attacker.vlm.processor, ds, [reward], cfg.rl, tmp, desc="attacker GRPO", logits_processor=proc)
        tr.train()
        attacker.vlm.model = tr.model if not cfg.rl.lora else tr.model.merge_and_unload()
    attacker.vlm.model.eval()
    summ = summarize(reward.history)
    rewards = [h["reward"] for h in tr.state.log_history if "reward" in h]
    return {
        "attacker/reward": float(np.mean(rewards)) if rewards else float("nan"),
        "attacker/reward_first": float(rewards[0]) if rewards else float("nan"),
        "attacker/reward_last": float(rewards[-1]) if rewards else float("nan"),
        "attacker/rollout_parse_rate": summ["parse_rate"],
        "attacker/rollout_integrity_rate": summ["integrity_pass_rate"],
        "attacker/rollout_success_rate": summ["success_rate"],
        "attacker/op_mix": summ["op_mix"],
        "attacker/clean_correct_rate": clean_rate,
        "attacker/train_items": len(items),
        "attacker/kept_groups": int(tr.ds_kept),
        "attacker/dropped_groups": int(tr.ds_dropped),
        "attacker/steps": int(tr.state.global_step),
        "time/attacker_rl_s": time.perf_counter() - t0,
    }


def evaluate_attacker(attacker: Any, defender: Any, items: Sequence[AttackItem], cfg: ScoringConfig | None = None, backend: Any = None) -> dict[str, Any]:
    """Success rate (share of proposals that pass integrity and flip a clean-correct answer),
    integrity pass rate, parse rate and operation mix, with a greedy defender. ``backend``
    (default: the attacker's own, else the world) judges the proposals."""
    backend = backend if backend is not None else getattr(attacker, "backend", None)
    cfg = cfg or ScoringConfig(k=1, temperature=0.0)
    t0 = time.perf_counter()
    clean = clean_correctness(defender, items, cfg)
    texts = attacker.propose(items)
    scored = score_programs(defender, items, texts, clean, cfg, backend=backend)
    out = summarize(scored)
    out["attacker"] = getattr(attacker, "name", type(attacker).__name__)
    out["seconds"] = time.perf_counter() - t0
    out["reject_reasons"] = dict(Counter(r.split(":")[0] for s in scored for r in s.reasons).most_common(8))
    out["by_op"] = breakdown(scored, [s.ops[0] if s.ops else "none" for s in scored])
    out["by_kind"] = breakdown(scored, [it.question.kind for it in items])
    return out


@dataclass
class AttackerTrainConfig:
    """`aot attacker train`: the cold start and the RL phase."""

    sft: SFTConfig = field(default_factory=SFTConfig)
    """Cold-start SFT settings."""
    attacker_rl: AttackerRLConfig = field(default_factory=AttackerRLConfig)
    """GRPO settings and reward settings."""
    sft_limit: int = 2000
    """Use at most this many AOT-SFT examples (effective edits first)."""
    sft_min_examples: int = 0
    """Pad the cold start to this many examples: first with AOT-SFT edits that pass integrity
    but flip nothing (within ``sft_limit``), then with ``sft_teacher`` edits that pass
    integrity on fresh training scenes (0: effective edits only, the paper's cold start)."""
    sft_teacher: str = "heuristic"
    """The registered attacker whose edits pad the cold start (``heuristic``, or
    ``heuristic-relative`` to teach the relative ops ``twin`` and ``mimic``; on a backend
    other than the world, ``random``)."""
    backend: BackendConfig = field(default_factory=BackendConfig)
    """Whose items, editor and judge (default: the world). On another backend the AOT-SFT set
    built for the cold start uses the random proposer."""

    def __post_init__(self) -> None:
        from . import ATTACKERS, takes_backend

        if self.sft_teacher not in ATTACKERS:
            raise ValueError(f"sft_teacher: unknown attacker {self.sft_teacher!r}; choose from {', '.join(sorted(ATTACKERS))}")
        if self.sft_min_examples > 0 and not self.backend.is_default and not takes_backend(self.sft_teacher):
            raise ValueError(f"sft_teacher: attacker {self.sft_teacher!r} reads the world's scene graph; on backend {self.backend.name!r} use random")


def train_attacker_run(out, defender_spec: str, init: str, sft_data, sft_n: int, config, overrides: list[str], n_items: int, seed: int, log=print) -> dict[str, Any]:
    """The whole `aot attacker train` job; writes OUT/attacker, OUT/config.yaml, OUT/metrics.json."""
    from pathlib import Path

    from ..config import dump_config, load_config
    from ..io import atomic_write_json, atomic_write_text
    from ..models.defender import load_defender
    from .data import ATTACK_TRAIN_BASE, attack_items, cold_start_examples
    from .model import init_attacker

    from ..backends import build_backend

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    cfg = load_config(AttackerTrainConfig, config, overrides)
    atomic_write_text(out / "config.yaml", dump_config(cfg))
    backend = build_backend(cfg.backend)
    defender = load_defender(defender_spec)
    metrics: dict[str, Any] = {}
    if init == "cold-start":
        if sft_data is None:
            from ..data.build import build_sft
            from ..data.sft import SFTBuildConfig

            sft_data = out / "sft"
            proposer = "heuristic" if cfg.backend.is_default else "random"  # the heuristic reads the world's scene graph
            log(f"building a {sft_n}-record AOT-SFT set with the {proposer} proposer in {sft_data}")
            build_sft(SFTBuildConfig(n=sft_n, seed=seed + 1, attacker=proposer, defender=defender_spec, backend=cfg.backend), sft_data, resume=True, log=log)
        examples, n_heuristic = cold_start_examples(sft_data, cfg.sft_min_examples, seed, limit=cfg.sft_limit, teacher=cfg.sft_teacher, backend=backend)
        log(f"cold start on {len(examples)} edits from {sft_data}" + (f", {n_heuristic} of them {cfg.sft_teacher}-proposer edits" if n_heuristic else ""))
        if n_heuristic:
            metrics["attacker/sft_heuristic_examples"] = n_heuristic
        attacker = init_attacker(defender_spec if Path(str(defender_spec)).exists() or defender_spec == "base" else "base", seed, backend=backend)
        metrics |= cold_start(attacker, examples, cfg.sft)
    else:
        from .model import ModelAttacker

        attacker = ModelAttacker.load(init, backend=backend)
    rl = cfg.attacker_rl
    attacker.constrained, attacker.max_ops, attacker.scene_bounds = rl.constrained, rl.max_ops, rl.scene_bounds
    if cfg.attacker_rl.rl.max_steps > 0 and n_items > 0:
        items = attack_items(n_items, ATTACK_TRAIN_BASE + seed, backend=backend)
        metrics |= train_attacker(attacker, defender, items, cfg.attacker_rl)
    attacker.save(out / "attacker")
    atomic_write_json(out / "metrics.json", metrics)
    return metrics
