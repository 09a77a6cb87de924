"""Pretraining of the born defender on simple-regime scenes (``aot pretrain``).

The recipe, top to bottom (``pretrain(cfg)``):
  0. build the tiny Qwen2.5-VL (registry) with the world tokenizer, random weights;
  1. vision stage (``vision_steps``): the vision tower and merger alone learn dense labels from
     the scene graph. Every visual token the language model will receive (one per 16-pixel
     cell) is trained to name the object whose centre lies in its cell: colour, shape,
     material and size through the language model's own word embeddings used as classifier
     weights (so visual tokens land next to the words that name them), plus its place on an
     8 x 8 grid (Qwen's vision tower has only relative rotary positions; it learns absolute
     place from the image border within a few hundred steps). No language-model forward:
     several times cheaper per image than a question step;
  2. question stage (``steps``): fresh simple scenes (seeds from ``TRAIN_SEEDS``), one question
     per scene, all kinds, trained on the completion ``' right \\boxed{B}<|im_end|>'`` (the
     option's word first, then its letter: reading the scene and copying the letter are
     separate, each easy, steps), with a share ``caption_frac`` of "Describe the scene." ->
     every object with its attributes and place (the alignment task), and the dense loss kept on;
  3. greedy evaluation on held-out seeds (``EVAL_SEEDS``) every ``eval_every`` steps, and an
     atomic save (``Defender.save``) after each.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .models.defender import Defender
from .models.evaluation import EVAL_SEEDS, TRAIN_SEEDS, eval_items, evaluate_defender, question_for
from .models.prompt import format_prompt
from .models.registry import TINY_MODELS, build_tiny
from .models.tokenizer import EOS, answer_completion
from .world import COLORS, MATERIALS, SHAPES, SIZES, QUESTION_KINDS, render, sample_question, sample_scene
from .world.render import object_alpha
from .world.types import Scene


COLOR_LIST = list(COLORS)
SIZE_LIST = list(SIZES)
POS_BINS = 8


@dataclass
class PretrainConfig:
    """Settings of the born defender's pretraining."""

    out: str = "runs/pretrain"
    """Directory of the final model (written atomically)."""
    model: str = "tiny-aot-vlm"
    """Built-in tiny model to train (see ``aot.models.TINY_MODELS``); the born defender is an aot_vlm."""
    steps: int = 2600
    """Optimiser steps of the question stage (stage 2)."""
    batch_size: int = 32
    """Questions per step (one question per scene)."""
    lr: float = 1e-3
    """Peak AdamW learning rate (linear warm-up, cosine decay to 5%)."""
    warmup: int = 200
    """Warm-up steps."""
    weight_decay: float = 0.01
    """AdamW weight decay."""
    aux_weight: float = 1.0
    """Weight of the dense visual-label loss."""
    aux_until: float = 1.0
    """Fraction of the steps during which the dense loss is applied."""
    caption_frac: float = 0.2
    """Share of each batch that is the alignment task ('Describe the scene.' -> every object
    with colour, shape, material, size and place), mixed in with the questions."""
    letter_weight: float = 5.0
    """Loss weight of the boxed letter token relative to the other completion tokens."""
    copy_batch: int = 32
    """Text-only letter-copying examples added to every question step (0: none)."""
    vision_steps: int = 1500
    """Stage 1: steps of dense-label training of the vision tower and connector alone (no
    language model forward: several times cheaper per image than a question step)."""
    patch_weight: float = 1.0
    """Weight of the per-patch colour x shape loss on the vision encoder's output."""
    vision_lr_mult: float = 1.0
    """Learning-rate multiplier of the vision tower and connector in the question stage."""
    vision_batch_size: int = 64
    """Images per stage-1 step."""
    vision_lr: float = 2e-3
    """Peak learning rate of stage 1."""
    seed: int = 0
    """Seeds the model init and the scene stream."""
    init_from: str = ""
    """Start from a saved defender directory instead of random weights (staged experiments).
    Its dense-label heads (``pretrain_heads.safetensors``) are loaded too when present."""
    vision_strides: tuple[int, ...] = ()
    """Re-stride the vision stages of the ``init_from`` defender before training, keeping its
    weights (``aot.models.restride``): (2, 2, 2, 1) gives 8-pixel cells; () keeps them."""
    schedule: str = "cosine"
    """Question-stage learning rate after warm-up: 'cosine' (decay to 5% at ``steps``) or 'constant'."""
    ground_weight: float = 0.0
    """Weight of the grounding losses (``aot.grounding``; aot_vlm models only): two attention
    heads are told where to look, the target objects' cells and the correct option's line."""
    ground_answer_layer: int = 2
    """Layer whose head ``ground_head`` attends to the target cells at the last prompt token."""
    ground_letter_layer: int = 3
    """Layer whose head ``ground_head`` attends to the correct option at the token before the letter."""
    ground_head: int = 5
    """Supervised head index in those layers."""
    ground_ref_head: int = -1
    """Head of ``ground_answer_layer`` that attends to a relation question's reference object (-1: none)."""
    eval_every: int = 250
    """Steps between held-out evaluations (0: only at the end)."""
    eval_n: int = 256
    """Held-out questions per intermediate evaluation."""
    save_every_eval: bool = True
    """Save (atomically, to ``out``) after every intermediate evaluation."""
    threads: int = 2
    """torch CPU threads."""
    stop_after: int = 0
    """Stop (and save) after this many question steps, keeping the schedule of ``steps``; 0: run all."""
    time_budget_min: float = 0.0
    """Stop (and save) after this many minutes; 0 means no limit."""
    progress: bool = True
    """Show a rich progress bar."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Free-form notes saved with the run."""

    def __post_init__(self) -> None:
        if self.model not in TINY_MODELS:
            raise ValueError(f"pretrain: unknown model {self.model!r}; choose from {sorted(TINY_MODELS)}")
        if self.steps < 1 or self.batch_size < 1:
            raise ValueError("pretrain: steps and batch_size must be >= 1")
        if not 0.0 <= self.aux_until <= 1.0:
            raise ValueError("pretrain: aux_until is a fraction in [0, 1]")
        if self.schedule not in ("cosine", "constant"):
            raise ValueError(f"pretrain: schedule must be 'cosine' or 'constant', not {self.schedule!r}")
        if self.ground_weight and TINY_MODELS[self.model].arch != "aot_vlm":
            raise ValueError("pretrain: ground_weight needs an aot_vlm model (its attention can be captured)")


# --- data ---------------------------------------------------------------------------------
@dataclass
class Example:
    image: np.ndarray
    prompt: str
    completion: str
    kind: str
    scene: Scene
    question: Any = None
    """The world question (None for the describe-the-scene task)."""


def make_example(seed: int, kind: str | None = None, regime: str = "simple") -> Example | None:
    """The training example of a scene seed (the same draw as evaluation's ``question_for``)."""
    it = question_for(seed, regime, kind)
    if it is None:
        return None
    q = it.question
    return Example(it.image, format_prompt(q), answer_completion(q.answer_text, q.answer), q.kind, it.scene, q)


CAPTION_PROMPT = "Describe the scene."


def caption_completion(scene: Scene) -> str:
    """' large red metal circle x 3 y 5, small blue matte ring x 6 y 1' in raster order of the
    objects' 16-pixel cells (the order the visual tokens come in), positions in 8 bins."""
    def key(o):
        return (int(o.y // 16), int(o.x // 16), o.x)

    parts = []
    for o in sorted(scene.objects, key=key):
        xb = min(int(o.x * POS_BINS / scene.width), POS_BINS - 1)
        yb = min(int(o.y * POS_BINS / scene.height), POS_BINS - 1)
        parts.append(f" {o.size} {o.color} {o.material} {o.shape} x {xb} y {yb}")
    return ",".join(parts)


def make_caption_example(seed: int) -> Example:
    """The alignment task: list every object with its attributes and place."""
    scene = sample_scene(seed, "simple")
    return Example(render(scene), CAPTION_PROMPT, caption_completion(scene), "caption", scene)


def dense_labels(scene: Scene, grid: int) -> np.ndarray:
    """(grid*grid, 6) int64 per visual cell, row-major: colour, shape, material, size, x bin,
    y bin of the object whose centre lies in the cell (drawn last wins), -1 where none."""
    lab = -np.ones((grid * grid, 6), np.int64)
    cell = scene.width / grid
    for o in sorted(scene.objects, key=lambda o: (o.depth, o.id)):
        cx, cy = min(int(o.x // cell), grid - 1), min(int(o.y // cell), grid - 1)
        lab[cy * grid + cx] = (
            COLOR_LIST.index(o.color), SHAPES.index(o.shape), MATERIALS.index(o.material), SIZE_LIST.index(o.size),
            min(int(o.x * POS_BINS / scene.width), POS_BINS - 1), min(int(o.y * POS_BINS / scene.height), POS_BINS - 1),
        )
    return lab


def patch_labels(scene: Scene, grid: int) -> np.ndarray:
    """(grid*grid, 2) int64 per vision patch, row-major: colour and shape of the object that
    covers most of the patch (at least a fifth of it), -1 where none: dense supervision for
    the vision encoder itself, before the connector merges patches."""
    W = scene.width
    cover = np.zeros((len(scene.objects) + 1, W, W), np.float32)
    cover[0] = 0.2  # "none" wins below a fifth of coverage
    vis = np.ones((W, W), np.float32)
    for i, o in sorted(enumerate(scene.objects), key=lambda t: (-t[1].depth, -t[1].id)):  # front first
        a, (x0, y0, x1, y1) = object_alpha(o, W, W)
        if a.size == 0:
            continue
        region = vis[y0:y1, x0:x1]
        cover[i + 1, y0:y1, x0:x1] = a * region
        region *= 1.0 - a
    p = W // grid
    per = cover.reshape(len(cover), grid, p, grid, p).mean(axis=(2, 4)).reshape(len(cover), -1)
    owner = per.argmax(0)
    lab = -np.ones((grid * grid, 2), np.int64)
    for cell, k in enumerate(owner):
        if k > 0:
            o = scene.objects[k - 1]
            lab[cell] = (COLOR_LIST.index(o.color), SHAPES.index(o.shape))
    return lab


class PatchHeads(torch.nn.Module):
    """Colour and shape classifiers on the vision encoder's patch features."""

    def __init__(self, dim: int):
        super().__init__()
        self.lin = torch.nn.Linear(dim, 1 + len(COLOR_LIST) * len(SHAPES))

    def forward(self, feats: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        f = feats.reshape(-1, feats.shape[-1])
        lab = labels.reshape(-1, 2)
        target = torch.where(lab[:, 0] >= 0, 1 + lab[:, 0] * len(SHAPES) + lab[:, 1], torch.zeros_like(lab[:, 0]))
        logits = self.lin(f)
        loss = F.cross_entropy(logits, target)
        has = target > 0
        stats = {"patch/acc": float((logits.argmax(-1) == target)[has].float().mean()) if has.any() else 0.0}
        return loss, stats


class VisualTap:
    """Captures the visual tokens handed to the language model, as (images, tokens, dim)."""

    def __init__(self, model, arch: str):
        self.arch, self.feats, self.patch_feats = arch, None, None
        inner = model.model
        if arch == "aot_vlm":  # cells after the projection; patches: the 8-pixel conv stage
            inner.visual.register_forward_hook(self._plain)
            inner.visual.stages[-2].register_forward_hook(self._conv)
        elif arch == "qwen2_5_vl":
            inner.visual.register_forward_hook(self._qwen)
        elif arch == "llava":
            inner.multi_modal_projector.register_forward_hook(self._plain)
            inner.vision_tower.register_forward_hook(self._patches_cls)
        elif arch == "idefics3":
            inner.connector.register_forward_hook(self._plain)
            inner.vision_model.register_forward_hook(self._patches)
        else:
            raise ValueError(arch)

    def _qwen(self, mod, args, out):
        self.feats = out.pooler_output

    def _plain(self, mod, args, out):
        self.feats = out

    def _conv(self, mod, args, out):
        self.patch_feats = out.flatten(2).transpose(1, 2)  # (N, C, h, w) -> (N, h*w, C)

    def _patches(self, mod, args, out):
        self.patch_feats = out.last_hidden_state

    def _patches_cls(self, mod, args, out):
        self.patch_feats = out.last_hidden_state[:, 1:]

    def take_patches(self) -> torch.Tensor | None:
        f, self.patch_feats = self.patch_feats, None
        return f

    def take(self, n_images: int) -> torch.Tensor:
        f = self.feats
        self.feats = None
        return f.reshape(n_images, -1, f.shape[-1])


class DenseHeads(torch.nn.Module):
    """Classifiers over visual tokens; the attribute heads use the LM's word embeddings."""

    def __init__(self, dim: int, word_ids: list[torch.Tensor]):
        super().__init__()
        self.word_ids = word_ids  # colour, shape, material, size word ids
        self.bias = torch.nn.ParameterList([torch.nn.Parameter(torch.zeros(len(w))) for w in word_ids])
        self.scale = torch.nn.Parameter(torch.full((len(word_ids),), 10.0))
        self.present = torch.nn.Linear(dim, 1)
        self.pos = torch.nn.Linear(dim, 2 * POS_BINS)

    def forward(self, feats: torch.Tensor, emb: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        # feats (N, T, D), labels (N, T, 6)
        f = feats.reshape(-1, feats.shape[-1])
        lab = labels.reshape(-1, labels.shape[-1])
        has = lab[:, 0] >= 0
        loss = F.binary_cross_entropy_with_logits(self.present(f).squeeze(-1), has.float())
        stats = {}
        if has.any():
            fo, lo = f[has], lab[has]
            fn = F.normalize(fo, dim=-1)
            for i, ids in enumerate(self.word_ids):
                w = F.normalize(emb[ids], dim=-1)
                logits = self.scale[i] * fn @ w.T + self.bias[i]
                loss = loss + F.cross_entropy(logits, lo[:, i])
                stats[f"aux/acc_{('color', 'shape', 'material', 'size')[i]}"] = float((logits.argmax(-1) == lo[:, i]).float().mean())
            p = self.pos(fo)
            loss = loss + F.cross_entropy(p[:, :POS_BINS], lo[:, 4]) + F.cross_entropy(p[:, POS_BINS:], lo[:, 5])
            stats["aux/acc_x"] = float((p[:, :POS_BINS].argmax(-1) == lo[:, 4]).float().mean())
        return loss, stats


def copy_batch(defender: Defender, rng: np.random.Generator, n: int) -> dict[str, torch.Tensor]:
    """Text-only letter copying: a real question's prompt (no image), a teacher-forced option
    word, and loss only on the boxed letter that labels that option in the prompt. This is the
    half of the answer that needs no vision; cheap examples make the copy circuit form early."""
    tok = defender.tokenizer
    texts, letters = [], []
    while len(texts) < n:
        seed = int(rng.integers(*TRAIN_SEEDS))
        q = sample_question(sample_scene(seed, "simple"), np.random.default_rng([seed, 0xC0]))
        if q is None:
            continue
        k = int(rng.integers(len(q.options)))
        conv = [{"role": "user", "content": [{"type": "text", "text": format_prompt(q)}]}]
        head = tok.apply_chat_template(conv, add_generation_prompt=True, tokenize=False)
        texts.append(head + answer_completion(q.options[k], "ABCD"[k]) + EOS)
    batch = tok(texts, padding=True, return_tensors="pt", add_special_tokens=False)
    labels = torch.full_like(batch["input_ids"], -100)
    L = labels.shape[1]
    labels[:, L - 3] = batch["input_ids"][:, L - 3]  # ... { LETTER } <|im_end|>
    batch = dict(batch)
    batch["labels"] = labels
    return batch


def collate(defender: Defender, examples: list[Example], n_comp: list[int]) -> dict[str, torch.Tensor]:
    texts = [defender.chat_text(e.prompt) + e.completion + EOS for e in examples]
    from .models.defender import to_pil

    batch = defender.processor(images=[to_pil(e.image) for e in examples], text=texts, padding=True, return_tensors="pt")
    labels = torch.full_like(batch["input_ids"], -100)
    L = labels.shape[1]
    for i, n in enumerate(n_comp):  # left padding: the completion is the last n tokens
        labels[i, L - n :] = batch["input_ids"][i, L - n :]
    batch["labels"] = labels
    return dict(batch)


# --- evaluation ---------------------------------------------------------------------------
def quick_eval(defender: Defender, items) -> dict[str, float]:
    """Greedy held-out accuracy, overall and per kind (no sampling)."""
    r = evaluate_defender(defender, items=items, strict_k=0, batch_size=128)
    return {"eval/acc": r["accuracy"]} | {f"eval/acc_{k}": v for k, v in r["accuracy_by_kind"].items()} | {"eval/format": r["format_rate"]}


# --- the loop -----------------------------------------------------------------------------
def image_inputs(processor, images: list[np.ndarray]) -> dict[str, torch.Tensor]:
    """The image half of the processor's output (what ``get_image_features`` takes)."""
    from .models.defender import to_pil

    out = processor.image_processor(images=[to_pil(im) for im in images], return_tensors="pt")
    return {k: v for k, v in out.items() if k in ("pixel_values", "image_grid_thw", "pixel_attention_mask")}


def is_vision_param(name: str) -> bool:
    """Vision tower and connector parameters (not the language model, not the embeddings)."""
    return any(k in name for k in ("visual", "vision_model", "vision_tower", "connector", "multi_modal_projector"))


def vision_stage(cfg: PretrainConfig, model, processor, tap: VisualTap, heads: DenseHeads, pheads: PatchHeads, grid: int, pgrid: int, rng: np.random.Generator, log) -> list[dict[str, Any]]:
    """Stage 1: the vision tower and connector learn the dense labels, the language model
    only lends its word embeddings (as the attribute classifiers)."""
    emb = model.get_input_embeddings()
    params = [p for n, p in model.named_parameters() if "language_model" not in n and "lm_head" not in n and p is not emb.weight]
    params += list(heads.parameters()) + list(pheads.parameters()) + [emb.weight]
    opt = torch.optim.AdamW(params, lr=cfg.vision_lr, betas=(0.9, 0.98), weight_decay=0.0)
    curve = []
    running: dict[str, float] = {}
    t0 = time.time()
    for step in range(cfg.vision_steps):
        scenes = [sample_scene(int(rng.integers(*TRAIN_SEEDS)), "simple") for _ in range(cfg.vision_batch_size)]
        warm = min(1.0, (step + 1) / cfg.warmup)
        t = step / max(1, cfg.vision_steps)
        decay = 1.0 if cfg.schedule == "constant" else 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * t))
        for g in opt.param_groups:
            g["lr"] = cfg.vision_lr * warm * decay
        model.get_image_features(**image_inputs(processor, [render(s) for s in scenes]))
        feats = tap.take(len(scenes))
        dl = torch.from_numpy(np.stack([dense_labels(s, grid) for s in scenes]))
        loss, stats = heads(feats, emb.weight, dl)
        pf = tap.take_patches()
        if pf is not None and cfg.patch_weight > 0:
            pl, ps = pheads(pf, torch.from_numpy(np.stack([patch_labels(s, pgrid) for s in scenes])))
            loss = loss + cfg.patch_weight * pl
            stats |= ps
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        for k, v in (stats | {"loss/aux": float(loss.detach())}).items():
            running[k] = 0.95 * running.get(k, v) + 0.05 * v
        if (step + 1) % 100 == 0 or step == cfg.vision_steps - 1:
            row = {"stage": "vision", "step": step + 1, "minutes": round((time.time() - t0) / 60, 2)} | {k: round(v, 4) for k, v in running.items()}
            curve.append(row)
            log(row)
    return curve


HEADS_FILE = "pretrain_heads.safetensors"
"""The dense-label classifier heads, saved beside a pretraining phase's weights."""


def grounded_losses(cfg: PretrainConfig, attns: list, input_ids: torch.Tensor, exs: list[Example], n_comp: list[int], tok, image_token_id: int, cell: int = 16) -> tuple[torch.Tensor, dict[str, float]]:
    """Grounding losses (``aot.grounding``) from the attention the two layers captured."""
    from .grounding import attention_mass_loss, grounding_targets

    qs = [e for e in exs if e.question is not None]
    if len(qs) != len(exs):
        raise ValueError("pretrain: grounding needs question examples only (set caption_frac to 0)")
    t = grounding_targets(input_ids, [e.question for e in exs], [e.scene for e in exs], n_comp, tok, image_token_id, cell)
    qa, ka, ma = attns[0].captured
    qb, kb, mb = attns[1].captured
    la, acc_a = attention_mass_loss(qa, ka, ma, cfg.ground_head, t.answer_pos, t.cells)
    lb, acc_b = attention_mass_loss(qb, kb, mb, cfg.ground_head, t.letter_pos, t.option)
    loss = la + lb
    if cfg.ground_ref_head >= 0:
        lr_, _ = attention_mass_loss(qa, ka, ma, cfg.ground_ref_head, t.answer_pos, t.ref_cells)
        loss = loss + lr_
    for a in attns:
        a.captured = None
    return loss, {"loss/ground": float(loss.detach()), "ground/cells_acc": acc_a, "ground/option_acc": acc_b}


def pretrain(cfg: PretrainConfig) -> dict[str, Any]:
    """Train the born defender; returns the final metrics and the learning curve."""
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    spec = TINY_MODELS[cfg.model]
    if cfg.init_from:
        from .models.defender import load_defender

        d = load_defender(cfg.init_from)
        if cfg.vision_strides:
            from .models.restride import restride

            d = restride(d, cfg.vision_strides)
        model, proc = d.model, d.processor
    else:
        model, proc = build_tiny(cfg.model, seed=cfg.seed)
        d = Defender(model, proc, spec.arch)
    tok = d.tokenizer
    tap = VisualTap(model, spec.arch)
    word_ids = [
        torch.tensor([tok.convert_tokens_to_ids("Ġ" + w) for w in vals])
        for vals in (COLOR_LIST, list(SHAPES), list(MATERIALS), SIZE_LIST)
    ]
    heads = DenseHeads(spec.text_hidden, word_ids)
    pheads = PatchHeads(model.config.vision_channels[-2] if spec.arch == "aot_vlm" else spec.vision_hidden)
    heads_file = Path(cfg.init_from) / HEADS_FILE if cfg.init_from else None
    if heads_file is not None and heads_file.exists():
        from safetensors.torch import load_file

        state = load_file(str(heads_file))
        heads.load_state_dict({k[6:]: v for k, v in state.items() if k.startswith("dense.")})
        pheads.load_state_dict({k[6:]: v for k, v in state.items() if k.startswith("patch.")})
    pgrid = spec.image_size // spec.patch_size
    grid = (spec.image_size // spec.patch_size) // (spec.merge if spec.arch != "llava" else 1)
    if spec.arch == "aot_vlm":  # the loaded model's strides decide its cells (restride)
        strides = model.config.vision_strides
        grid, pgrid = spec.image_size // math.prod(strides), spec.image_size // math.prod(strides[:-1])
    emb = model.get_input_embeddings()
    params = list(model.parameters()) + list(heads.parameters()) + list(pheads.parameters())
    vis_ids = {id(p) for n, p in model.named_parameters() if is_vision_param(n)}
    groups = []
    for vis in (False, True):
        for dec in (True, False):
            ps = [p for p in params if (id(p) in vis_ids) == vis and (p.ndim >= 2) == dec]
            if ps:
                groups.append({"params": ps, "weight_decay": cfg.weight_decay if dec else 0.0, "mult": cfg.vision_lr_mult if vis else 1.0})
    opt = torch.optim.AdamW(groups, lr=cfg.lr, betas=(0.9, 0.98))

    def lr_at(step: int) -> float:
        if step < cfg.warmup:
            return cfg.lr * (step + 1) / cfg.warmup
        if cfg.schedule == "constant":
            return cfg.lr
        t = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
        return cfg.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(t, 1.0))))

    evalset = eval_items(cfg.eval_n, "simple", seed=90)  # eval seed 90: apart from the CLI's default 0
    rng = np.random.default_rng(cfg.seed)
    comp_len: dict[str, int] = {}
    curve: list[dict[str, Any]] = []

    t_start = time.time()

    def log(row: dict[str, Any]) -> None:
        print(json.dumps(row), flush=True)

    def save(steps_done: int) -> Path:
        was = model.training
        model.eval()
        out_dir = d.save(cfg.out)  # atomic: a stopped run still leaves its latest saved model
        model.train(was)
        result = {"config": asdict(cfg), "steps_done": steps_done, "minutes": round((time.time() - t_start) / 60, 2), "curve": curve}
        (Path(out_dir) / "pretrain.json").write_text(json.dumps(result, indent=1))
        from safetensors.torch import save_file

        state = {f"dense.{k}": v.detach().contiguous() for k, v in heads.state_dict().items()}
        state |= {f"patch.{k}": v.detach().contiguous() for k, v in pheads.state_dict().items()}
        save_file(state, str(Path(out_dir) / HEADS_FILE))  # beside the weights: the next phase goes on with them
        return out_dir

    if cfg.vision_steps:
        model.train()
        curve += vision_stage(cfg, model, proc, tap, heads, pheads, grid, pgrid, rng, log)
        if cfg.save_every_eval:
            save(0)
    t0 = time.time()
    model.train()
    progress = None
    if cfg.progress:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        progress = Progress(TextColumn("pretrain"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TextColumn("{task.fields[info]}"))
        progress.start()
        task = progress.add_task("pretrain", total=cfg.steps, info="")
    running: dict[str, float] = {}
    step = 0
    ground_attn = []
    if cfg.ground_weight:
        layers = model.model.layers
        ground_attn = [layers[cfg.ground_answer_layer].self_attn, layers[cfg.ground_letter_layer].self_attn]
    try:
        for step in range(cfg.steps):
            exs: list[Example] = []
            while len(exs) < cfg.batch_size:
                sd = int(rng.integers(*TRAIN_SEEDS))
                e = make_caption_example(sd) if rng.random() < cfg.caption_frac else make_example(sd)
                if e is not None:
                    exs.append(e)
            n_comp = []
            for e in exs:
                if e.completion not in comp_len:
                    comp_len[e.completion] = len(tok(e.completion + EOS, add_special_tokens=False)["input_ids"])
                n_comp.append(comp_len[e.completion])
            batch = collate(d, exs, n_comp)
            labels = batch.pop("labels")
            for g in opt.param_groups:
                g["lr"] = lr_at(step) * g["mult"]
            for a in ground_attn:
                a.capture = True
            out = model(**batch)
            for a in ground_attn:
                a.capture = False
            logits = out.logits[:, :-1]
            tgt = labels[:, 1:]
            tok_loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tgt.reshape(-1), ignore_index=-100, reduction="none").view_as(tgt)
            w = (tgt != -100).float()
            is_q = torch.tensor([e.kind != "caption" for e in exs])
            w[is_q, -3] *= cfg.letter_weight  # the boxed letter (..., LETTER, }, <|im_end|>)
            lm_loss = (tok_loss * w).sum() / w.sum()
            loss = lm_loss
            letter_ok = (logits[is_q, -3].argmax(-1) == tgt[is_q, -3]).float().mean() if is_q.any() else torch.tensor(0.0)
            stats: dict[str, float] = {"loss/lm": float(lm_loss.detach()), "train/letter_acc": float(letter_ok)}
            if ground_attn:
                g_loss, g_stats = grounded_losses(cfg, ground_attn, batch["input_ids"], exs, n_comp, tok, model.config.image_token_id, spec.image_size // grid)
                loss = loss + cfg.ground_weight * g_loss
                stats |= g_stats
            if cfg.copy_batch:
                cb = copy_batch(d, rng, cfg.copy_batch)
                cl = cb.pop("labels")
                c_logits = model(**cb).logits[:, -4]
                c_loss = F.cross_entropy(c_logits, cl[:, -3])
                loss = loss + c_loss
                stats |= {"loss/copy": float(c_loss.detach()), "train/copy_acc": float((c_logits.argmax(-1) == cl[:, -3]).float().mean())}
            feats = tap.take(len(exs))
            if cfg.aux_weight > 0 and step < cfg.aux_until * cfg.steps:
                dl = torch.from_numpy(np.stack([dense_labels(e.scene, grid) for e in exs]))
                aux, s2 = heads(feats, emb.weight, dl)
                pf = tap.take_patches()
                if pf is not None and cfg.patch_weight > 0:
                    pl, ps = pheads(pf, torch.from_numpy(np.stack([patch_labels(e.scene, pgrid) for e in exs])))
                    aux = aux + cfg.patch_weight * pl
                    s2 |= ps
                loss = loss + cfg.aux_weight * aux
                stats |= s2 | {"loss/aux": float(aux.detach())}
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            for k, v in stats.items():
                running[k] = 0.98 * running.get(k, v) + 0.02 * v
            if progress is not None:
                progress.update(task, advance=1, info=" ".join(f"{k.split('/')[-1]}={v:.3f}" for k, v in running.items() if k.startswith("loss")))
            elapsed = (time.time() - t0) / 60
            last = (
                step == cfg.steps - 1
                or (cfg.stop_after and step + 1 >= cfg.stop_after)
                or bool(cfg.time_budget_min and elapsed >= cfg.time_budget_min)
            )
            if (cfg.eval_every and (step + 1) % cfg.eval_every == 0) or last:
                ev = quick_eval(d, evalset)
                model.train()
                row = {"stage": "questions", "step": step + 1, "minutes": round((time.time() - t0) / 60, 2), "total_minutes": round((time.time() - t_start) / 60, 2)} | {k: round(v, 4) for k, v in running.items()} | ev
                curve.append(row)
                log(row)
                if cfg.save_every_eval and not last:
                    save(step + 1)
            if last:
                break
    finally:
        if progress is not None:
            progress.stop()
    out_dir = save(step + 1)
    model.eval()
    return json.loads((Path(out_dir) / "pretrain.json").read_text())


BORN_FINAL_STEPS = 1600
"""Question steps of phase 4 of the shipped run (it ran on a time budget; its last save)."""


# --- the shipped recipe -------------------------------------------------------------------
PREVIOUS = "<previous phase>"
_GROUNDED = dict(
    init_from=PREVIOUS, model="tiny-aot-vlm", vision_steps=0, lr=1e-3, warmup=100, schedule="constant",
    caption_frac=0.0, letter_weight=1.0, copy_batch=0, aux_weight=1.0, patch_weight=0.0, ground_weight=1.0,
)
BORN_RECIPE: tuple[dict[str, Any], ...] = (
    # 1. vision stage: the conv encoder alone learns dense cell labels (through the word
    #    embeddings) and 8-pixel patch labels (about 8 min here)
    dict(model="tiny-aot-vlm", vision_steps=850, vision_lr=3e-3, vision_batch_size=64, warmup=50, schedule="constant", steps=1,
         caption_frac=0.0, letter_weight=1.0, copy_batch=0, patch_weight=1.0),
    # 2-3. questions, answer word then letter, with the grounding losses (targets' cells, option line)
    _GROUNDED | dict(steps=500, seed_offset=0),
    _GROUNDED | dict(steps=600, seed_offset=1),
    # 4. as 2-3, plus a second head that finds a relation question's reference object
    _GROUNDED | dict(steps=BORN_FINAL_STEPS, seed_offset=2, ground_ref_head=4),
    # 5. the same, annealed: cosine decay of the learning rate to 5% over 400 steps
    _GROUNDED | dict(steps=400, warmup=1, schedule="cosine", seed_offset=3, ground_ref_head=4, eval_every=200),
)
"""How the shipped born defender was made: phases run in order, each starting from the one
before (the recipe grew phase by phase while it was measured; the curve is in docs/born-defender.md)."""


def pretrain_recipe(out: str, phases: tuple[dict[str, Any], ...] = BORN_RECIPE, seed: int = 0, progress: bool = True, **common: Any) -> list[dict[str, Any]]:
    """Run ``phases`` in order (intermediate phases saved beside ``out``); returns each phase's result."""
    import shutil

    results = []
    prev = ""
    tmp_dirs = []
    for i, ph in enumerate(phases):
        last = i == len(phases) - 1
        target = out if last else f"{out}.phase{i + 1}"
        kw = dict(ph) | common
        if kw.get("init_from") == PREVIOUS:
            kw["init_from"] = prev
        offset = kw.pop("seed_offset", 0)
        res = pretrain(PretrainConfig(out=target, seed=seed + offset, progress=progress, **kw))
        results.append(res)
        prev = target
        if not last:
            tmp_dirs.append(target)
    for t in tmp_dirs:
        shutil.rmtree(t, ignore_errors=True)
    return results
