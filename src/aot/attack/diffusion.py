"""The diffusion attacker: a program attacker says where and what, a diffusion editor paints it.

    propose   a proposer (a registered program attacker, a saved model attacker, or 'fixed')
              writes an edit program; its first object op becomes a box + description
              (``fill_proposal``: add and twin -> add, replace, remove), the same triples the
              born world editor was trained on
    fill      the editor (the born world editor; its LoRA trained by Flow-GRPO) paints the box;
              pixels outside it are pasted back bit for bit
    judge     ``aot.judge.judge_verdict`` with the world judge: the scene graph cannot know what
              a fill painted, so integrity needs eyes
    reward    ``fill_reward``, a Flow-GRPO ``RewardFn``: the program attacker's reward
              (``aot.rewards.attacker_score``, integrity x efficacy, through the same defender
              calls of ``aot.attack.scoring.score_staged``), so both attackers are scored alike
              on the same items

World only for now: the judge reads world objects and the proposal reads the world's scene
graph (through the backend's editor, never by importing the world).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..backends import Backend, get_backend
from ..editors.box_ops import BoxEdit, box_mask, box_prompt
from ..editors.world_data import describe_obj, fill_box
from ..edits import AddObject, RemoveObject, ReplaceAttrs, TwinObject
from ..judge.verdict import JudgeVerdictConfig, judge_verdict
from ..rl.flow_grpo import FillRequest, FlowGRPOConfig
from .base import AttackItem, item_rng
from .scoring import ScoringConfig, Scored, score_staged

FILL_KINDS: tuple[str, ...] = ("add", "replace", "remove")
"""Op names of the world's edit language that become a fill (``twin`` too, as an add)."""
FILL_OP_TYPES = (AddObject, TwinObject, ReplaceAttrs, RemoveObject)
EDITOR_SPECS = ("tiny", "random")
"""Editors by name: 'tiny' (a tiny random-weight world editor: tests) and 'random' (the born
editor's architecture with random weights: speed figures before trained weights exist)."""
EDITOR_ASSET_DIR = Path(__file__).resolve().parent.parent / "assets" / "world_editor"
"""The shipped born world editor (``aot pretrain-editor``; docs/diffusion-attacker.md)."""
JUDGE_ASSET_DIR = Path(__file__).resolve().parent.parent / "assets" / "world_judge"
"""The shipped world judge (``aot pretrain-judge``, 3,000 steps; docs/diffusion-attacker.md)."""
ATTACKER_FILE = "diffusion_attacker.json"
LORA_FILE = "lora.safetensors"
FILL_TAG = 0xF111
"""Random-stream tag of an evaluation fill's seed."""
FIXED_TAG = 0xF1CE


@dataclass
class DiffusionAttackerConfig:
    """The diffusion attacker: proposer, editor, judge, and its Flow-GRPO training."""

    editor: str = "base"
    """The fill editor: 'base' (the shipped born world editor, ``aot/assets/world_editor``,
    docs/diffusion-attacker.md), a world editor saved by ``aot pretrain-editor`` (folder or
    .safetensors), 'tiny' (a tiny random-weight world editor, for tests) or 'random' (the born
    editor's size, random weights: for speed figures)."""
    judge: str = "base"
    """The world judge of the integrity verdict: 'base' (the shipped judge,
    ``aot/assets/world_judge``), a judge saved by ``aot pretrain-judge`` (folder or
    .safetensors), or 'untrained' (random weights: smoke tests only; it sees nothing)."""
    proposer: str = "random"
    """Where and what: 'random' (random add / replace / remove programs), 'fixed' (a
    lookalike of the first target, in a confusable colour, beside it), another registered
    program attacker (heuristic, ...) or the folder of a saved model attacker."""
    sample_steps: int = 8
    """Denoising steps per fill (rollouts and evaluation alike)."""
    verdict: JudgeVerdictConfig = field(default_factory=JudgeVerdictConfig)
    """Thresholds of the judge's integrity verdict."""
    flow_grpo: FlowGRPOConfig = field(default_factory=FlowGRPOConfig)
    """Flow-GRPO settings: SDE noise and window, group size, learning rate, clip, KL, LoRA."""
    steps: int = 20
    """Flow-GRPO optimizer steps per training run (per attacker phase in ``aot train``)."""
    requests_per_step: int = 4
    """Proposals filled per step (each ``flow_grpo.group_size`` times)."""
    seed: int = 0
    """Weight seed of a 'tiny' or 'random' editor and of an 'untrained' judge."""

    def __post_init__(self) -> None:
        if self.sample_steps < 1 or self.steps < 0 or self.requests_per_step < 1:
            raise ValueError("sample_steps and requests_per_step must be at least 1, steps at least 0")

    def check(self, prefix: str = "") -> None:
        """Raise for settings that cannot run (a missing judge, an unknown proposer or editor),
        naming the key: called before any work, not at every default construction."""
        if not self.judge:
            raise ValueError(f"{prefix}judge: give a world judge saved by `aot pretrain-judge --out DIR` (its folder), or 'untrained' for a smoke test")
        if self.judge not in ("untrained", "base") and not Path(self.judge).exists():
            raise ValueError(f"{prefix}judge: {self.judge} does not exist (a saved world judge, or 'untrained')")
        if self.editor not in EDITOR_SPECS:
            from ..editors.diffusers_editor import is_world_editor

            if self.editor == "base" and not is_world_editor(str(EDITOR_ASSET_DIR)):
                raise ValueError(f"{prefix}editor: the born world editor is not shipped at {EDITOR_ASSET_DIR}; run `aot pretrain-editor --out DIR` and pass DIR")
            if self.editor != "base" and not is_world_editor(self.editor):
                raise ValueError(f"{prefix}editor: {self.editor!r} is not a saved world editor (aot pretrain-editor --out DIR writes one), 'tiny' or 'random'")
        check_proposer(self.proposer, f"{prefix}proposer")


# --- proposals -----------------------------------------------------------------------------
class FixedProposer:
    """A lookalike of the question's first target in a confusable colour, placed beside it by
    the editor (``twin ID color=C``); a random add where the question has no target."""

    name = "fixed"

    def __init__(self, backend: Any = None):
        self.backend = backend

    def propose(self, batch: Sequence[AttackItem]) -> list[str]:
        from .heuristic import COLOR_NEIGHBOURS

        out = []
        for it in batch:
            objs = {o.id: o for o in it.scene.objects}
            t = next((objs[t.id] for t in it.question.targets if t.id in objs), None)
            if t is None:
                out.append(get_backend(self.backend).random_program(it, item_rng(it, FIXED_TAG), 1, ("add",)))
            else:
                out.append(f"twin {t.id} color={COLOR_NEIGHBOURS.get(t.color, ('red',))[0]}")
        return out


def check_proposer(spec: str, hint: str = "proposer") -> None:
    from . import ATTACKERS

    if spec in ("fixed", *ATTACKERS) or Path(spec).is_dir():
        return
    raise ValueError(f"{hint}: {spec!r} is neither fixed, a registered attacker ({', '.join(sorted(ATTACKERS))}) nor the folder of a saved model attacker")


def make_proposer(spec: str, backend: Any = None, seed: int = 0) -> Any:
    """The proposer ``spec`` names (see ``DiffusionAttackerConfig.proposer``)."""
    from . import ATTACKERS, make_attacker
    from .random_attacker import RandomAttacker

    check_proposer(spec)
    if spec == "fixed":
        return FixedProposer(backend)
    if spec == "random":  # only ops that become a fill
        return RandomAttacker(max_ops=1, kinds=FILL_KINDS, backend=backend)
    if spec in ATTACKERS:
        return make_attacker(spec, backend)
    from .model import ModelAttacker

    return ModelAttacker.load(Path(spec), backend=backend)


def fill_proposal(item: AttackItem, text: str, backend: Backend) -> tuple[BoxEdit | None, str]:
    """(box edit, '') for the first object op of program ``text`` on ``item``, or (None, why).

    The op alone is applied to the item's scene graph and the graph compared before and after:
    a new object is an add (its box, its description), a changed one a replace (the box of old
    and new, the new description), a missing one a remove; boxes grow by one pixel, as the
    editor's training boxes."""
    try:
        program = backend.parse(text)
    except backend.edit_errors as e:
        return None, f"unparseable: {e}"
    op = next((o for o in program if isinstance(o, FILL_OP_TYPES)), None)
    if op is None:
        return None, "no fill: the program has no add, twin, replace or remove"
    try:
        after = backend.edit(item, (op,)).state.scene
    except backend.edit_errors as e:
        return None, f"apply error: {e}"
    before = {o.id: o for o in item.scene.objects}
    now = {o.id: o for o in after.objects}
    W, H = item.scene.width, item.scene.height
    new = [o for i, o in now.items() if i not in before]
    gone = [o for i, o in before.items() if i not in now]
    changed = [(before[i], now[i]) for i in before if i in now and before[i] != now[i]]
    try:
        if new:
            return BoxEdit("add", fill_box(new[:1], W, H), describe_obj(new[0])), ""
        if gone:
            return BoxEdit("remove", fill_box(gone[:1], W, H)), ""
        if changed:
            return BoxEdit("replace", fill_box(list(changed[0]), W, H), describe_obj(changed[0][1])), ""
    except ValueError as e:  # an object wholly off the canvas leaves an empty box
        return None, f"no fill: {e}"
    return None, "no fill: the op changed nothing"


# --- the reward ----------------------------------------------------------------------------
def judged(clean: np.ndarray, edited: np.ndarray, mask: np.ndarray, item: AttackItem, edit: BoxEdit, text: str, clean_correct: bool,
           detect: Any, verdict: JudgeVerdictConfig | None, seed: int | None) -> dict[str, Any]:
    """One fill through the judge, as a staged record of ``score_staged``."""
    v = judge_verdict(clean, edited, mask, item.question, detect, verdict)
    return {"text": text, "clean_correct": bool(clean_correct), "ops": (edit.op,), "parsed": True, "reasons": v.reasons,
            "passed": v.passed, "image": edited, "fill": {"op": edit.op, "box": list(edit.box), "description": edit.description, "seed": seed}}


def score_fills(images: np.ndarray, requests: Sequence[FillRequest], *, defender: Any, scoring: ScoringConfig, detect: Any,
                verdict: JudgeVerdictConfig | None = None, seed: int = 0, keep_images: bool = False) -> list[Scored]:
    """Judge each fill ``images[i]`` ([N, H, W, 3] uint8, after paste-back) of ``requests[i]``
    (meta: item, edit, text, clean_correct), then score it against the frozen defender."""
    staged = [judged(r.image, im, r.mask, r.meta["item"], r.meta["edit"], r.meta["text"], r.meta["clean_correct"], detect, verdict, r.meta.get("seed"))
              for im, r in zip(images, requests)]
    return score_staged(defender, staged, [r.meta["item"].question for r in requests], scoring, seed, keep_images)


def fill_reward(images: np.ndarray, requests: list[FillRequest], *, defender: Any, scoring: ScoringConfig, detect: Any,
                verdict: JudgeVerdictConfig | None = None, seed: int = 0, history: list[Scored] | None = None) -> list[float]:
    """The Flow-GRPO ``RewardFn`` of the diffusion attacker (bind the keywords with
    ``functools.partial``): the program attacker's reward of each fill; integrity fails ->
    ``scoring.integrity_penalty``, a clean-wrong question -> 0, else the defender's efficacy.
    ``history`` (when given) collects the ``Scored`` fills."""
    scored = score_fills(images, requests, defender=defender, scoring=scoring, detect=detect, verdict=verdict, seed=seed)
    if history is not None:
        history.extend(scored)
    return [s.reward for s in scored]


# --- the attacker ----------------------------------------------------------------------------
def load_fill_editor(spec: str, steps: int, seed: int = 0) -> Any:
    """A ``DiffusersEditor`` on the world editor ``spec`` names (see ``DiffusionAttackerConfig.editor``)."""
    from ..editors import DiffusersEditor
    from ..editors.world_editor import TINY_WORLD_ARCH, build_world_pipeline, load_world_editor, world_editor_config

    if spec in EDITOR_SPECS:
        pipe = build_world_pipeline(TINY_WORLD_ARCH if spec == "tiny" else None, seed=seed)
        cfg = world_editor_config(steps=steps, seed=seed)
        cfg.max_sequence_length = pipe.tokenizer.model_max_length
        return DiffusersEditor(cfg, pipe=pipe)
    return load_world_editor(EDITOR_ASSET_DIR if spec == "base" else spec, steps=steps, seed=seed)


def load_detector(spec: str, seed: int = 0) -> Any:
    """``WorldJudge.detect`` of a saved judge, or of a random-weight one ('untrained')."""
    import torch

    from ..judge.model import WorldJudge, load_judge

    if spec == "untrained":
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return WorldJudge().eval().detect
    return load_judge(JUDGE_ASSET_DIR if spec == "base" else spec).detect


def fill_seed(item: AttackItem, seed: int) -> int:
    """The seed of ``item``'s evaluation fill (the item's own stream, as a program attacker's)."""
    return int(np.random.SeedSequence([int(item.seed), int(seed), FILL_TAG]).generate_state(1)[0])


class DiffusionAttacker:
    """Proposals from a program proposer, fills from a diffusion editor, judged by the world judge."""

    name = "diffusion"
    paints = True
    """Its edits are pixels, not programs: curricula store its images (``aot.selfplay``)."""

    def __init__(self, cfg: DiffusionAttackerConfig, backend: Any = None, editor: Any = None, detect: Any = None):
        self.cfg = cfg
        self.backend = get_backend(backend)
        if self.backend.name != "world":
            raise ValueError(f"the diffusion attacker works on the world backend only (its judge reads world objects), not {self.backend.name!r}")
        self.editor = editor if editor is not None else load_fill_editor(cfg.editor, cfg.sample_steps, cfg.seed)
        self.detect = detect if detect is not None else load_detector(cfg.judge, cfg.seed)
        self.proposer = make_proposer(cfg.proposer, self.backend, cfg.seed)

    @property
    def transformer(self) -> Any:
        return self.editor.pipe.transformer

    def proposals(self, items: Sequence[AttackItem]) -> list[tuple[str, BoxEdit | None, str]]:
        """(program text, its box edit or None, why not) per item."""
        texts = self.proposer.propose(items)
        return [(t, *fill_proposal(it, t, self.backend)) for it, t in zip(items, texts)]

    def request(self, item: AttackItem, text: str, edit: BoxEdit, clean_correct: bool, seed: int | None = None) -> FillRequest:
        """The fill request of one proposal (meta: what ``fill_reward`` reads)."""
        mask = box_mask(item.image.shape[:2], edit.box)
        prompt = box_prompt(edit, self.editor.cfg.background_prompt)
        return FillRequest(item.image, mask, prompt, {"item": item, "edit": edit, "text": text, "clean_correct": bool(clean_correct), "seed": seed})

    def score(self, defender: Any, items: Sequence[AttackItem], clean_correct: Sequence[bool], scoring: ScoringConfig, seed: int = 0,
              keep_images: bool = False) -> list[Scored]:
        """One fill per item (the ODE sampler, seeded by the item), judged and scored as
        ``score_programs`` scores programs; an item without a fill scores as unparseable."""
        staged = []
        for it, (text, edit, why), cc in zip(items, self.proposals(items), clean_correct):
            if edit is None:
                staged.append({"text": text, "clean_correct": bool(cc), "ops": (), "parsed": False, "reasons": (why,), "passed": False, "image": None})
                continue
            r = self.request(it, text, edit, cc, fill_seed(it, seed))
            image = self.editor.inpaint(it.image, r.mask, r.prompt, seed=r.meta["seed"])
            staged.append(judged(it.image, image, r.mask, it, edit, text, cc, self.detect, self.cfg.verdict, r.meta["seed"]))
        return score_staged(defender, staged, [it.question for it in items], scoring, seed, keep_images)

    def reward_fn(self, defender: Any, scoring: ScoringConfig, seed: int, history: list[Scored] | None = None) -> Any:
        """``fill_reward`` bound to this attacker's judge and the frozen ``defender``."""
        return partial(fill_reward, defender=defender, scoring=scoring, detect=self.detect, verdict=self.cfg.verdict, seed=seed, history=history)

    # --- saving ---------------------------------------------------------------------------
    def has_lora(self) -> bool:
        return bool(getattr(self.transformer, "peft_config", None))

    def lora_state(self) -> dict[str, Any]:
        from peft.utils import get_peft_model_state_dict

        return {k: v.detach().cpu().contiguous() for k, v in get_peft_model_state_dict(self.transformer).items()}

    def save(self, path: str | Path) -> Path:
        """``path``/diffusion_attacker.json (its settings) and lora.safetensors (its LoRA, once trained)."""
        from safetensors.torch import save_file

        from ..io import atomic_path, atomic_write_text

        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        if self.has_lora():
            with atomic_path(path / LORA_FILE) as tmp:
                save_file(self.lora_state(), str(tmp))
        atomic_write_text(path / ATTACKER_FILE, json.dumps({"format": "aot-diffusion-attacker", "config": asdict(self.cfg)}, indent=1))
        return path

    @classmethod
    def load(cls, path: str | Path, backend: Any = None, **overrides: Any) -> "DiffusionAttacker":
        """The attacker saved at ``path``; ``overrides`` replace saved settings (editor, judge, proposer)."""
        from safetensors.torch import load_file

        from ..config import from_dict
        from ..rl.flow_grpo import load_lora

        path = Path(path)
        if not is_saved(path):
            raise ValueError(f"{path} is not a saved diffusion attacker (no {ATTACKER_FILE})")
        d = json.loads((path / ATTACKER_FILE).read_text())
        cfg = from_dict(DiffusionAttackerConfig, d["config"] | {k: v for k, v in overrides.items() if v is not None})
        att = cls(cfg, backend)
        if (path / LORA_FILE).exists():
            load_lora(att.transformer, cfg.flow_grpo, load_file(str(path / LORA_FILE)))
        return att


def is_saved(path: str | Path) -> bool:
    """Whether ``path`` holds a saved diffusion attacker."""
    return (Path(path) / ATTACKER_FILE).is_file()
