"""The world judge's eyes: a small fully convolutional dense labeller (CenterNet-style).

Every ``cell`` x ``cell`` pixel cell (4x4) gets: a centre logit (does an object's centre lie in
this cell?), the centre's offset inside the cell, and the object's colour, shape, material and
size (the born defender's phase-1 dense labels, at a finer cell and read off the pixels only).
Decoding keeps cells whose centre probability is above ``threshold`` and highest among their
3x3 neighbours. Fully convolutional: one model reads 64x64 and 96x96 scenes alike.

Targets come from the scene graph (``cell_targets``): only objects at least ``min_visible``
visible are centres; cells around a centre, and the centres of objects hidden beyond that, are
left out of the centre loss (where a centre falls near a cell border either cell is fine).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..world.render import render, visible_fraction
from ..world.sampler import sample_scene
from ..world.types import COLOR_NAMES, MATERIALS, SHAPES, SIZE_NAMES, Scene
from .detections import Detection

HEADS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("color", COLOR_NAMES), ("shape", SHAPES), ("material", MATERIALS), ("size", SIZE_NAMES),
)
"""Attribute heads, in channel order after the centre logit and the 2 offset channels."""
N_OUT = 3 + sum(len(v) for _, v in HEADS)
WEIGHTS_FILE = "world_judge.safetensors"


@dataclass(frozen=True)
class JudgeArch:
    """Sizes of the judge (defaults: about 0.3 M parameters)."""

    width: int = 32
    """Channels at full resolution; x2 at 1/2, x3 at 1/4 (the cell grid)."""
    context_layers: int = 3
    """3x3 convolutions on the cell grid, dilations 1, 2, 4, ... (an object's surroundings)."""
    cell: int = 4
    """Output stride in pixels (fixed by the two stride-2 convolutions)."""
    min_visible: float = 0.5
    """Objects at least this visible are centres to find."""
    threshold: float = 0.5
    """Centre probability a detection needs."""

    def __post_init__(self) -> None:
        if self.cell != 4:
            raise ValueError("the judge's backbone has stride 4: cell must be 4")


def conv(cin: int, cout: int, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, padding=dilation, dilation=dilation), nn.GroupNorm(8, cout), nn.SiLU())


class WorldJudge(nn.Module):
    """(B, 3, H, W) images in [0, 1] -> (B, N_OUT, H/4, W/4) cell outputs."""

    def __init__(self, arch: JudgeArch | None = None):
        super().__init__()
        self.arch = arch = arch or JudgeArch()
        w = arch.width
        layers = [conv(3, w), conv(w, 2 * w, 2), conv(2 * w, 2 * w), conv(2 * w, 3 * w, 2)]
        layers += [conv(3 * w, 3 * w, dilation=2**i) for i in range(arch.context_layers)]
        self.body = nn.Sequential(*layers)
        self.head = nn.Conv2d(3 * w, N_OUT, 1)
        with torch.no_grad():
            self.head.bias[0] = -4.0  # centres are rare: start near "no centre here"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x - 0.5))

    @torch.no_grad()
    def detect(self, images: np.ndarray) -> list[list[Detection]]:
        """(B, H, W, 3) uint8 (or one (H, W, 3)) -> detections per image."""
        single = images.ndim == 3
        batch = images[None] if single else images
        was = self.training
        self.eval()
        out = self(torch.from_numpy(np.ascontiguousarray(batch)).permute(0, 3, 1, 2).float() / 255.0)
        self.train(was)
        dets = [decode(o, self.arch.cell, self.arch.threshold) for o in out]
        return dets


def decode(out: torch.Tensor, cell: int, threshold: float) -> list[Detection]:
    """(N_OUT, h, w) cell outputs of one image -> detections (centre peaks above ``threshold``)."""
    logit = out[0]  # (h, w)
    prob = torch.sigmoid(logit)
    # peaks on the logits: a confident object saturates the sigmoid to exactly 1.0 in two
    # neighbouring cells, and a tie there made both "the 3x3 maximum" (one object, two detections)
    peak = (logit == F.max_pool2d(logit[None, None], 3, 1, 1)[0, 0]) & (prob > threshold)
    cells = sorted(peak.nonzero().tolist(), key=lambda c: -float(logit[c[0], c[1]]))
    kept: list[tuple[int, int]] = []
    for cy, cx in cells:  # exact ties left: keep the first of any two peaks in touching cells
        if all(max(abs(cy - ky), abs(cx - kx)) > 1 for ky, kx in kept):
            kept.append((cy, cx))
    dets = []
    for cy, cx in kept:
        o = out[:, cy, cx]
        ox, oy = torch.sigmoid(o[1:3]).tolist()  # centre inside the cell, in cells
        k, attrs = 3, {}
        for name, values in HEADS:
            attrs[name] = values[int(o[k : k + len(values)].argmax())]
            k += len(values)
        dets.append(Detection((cx + ox) * cell, (cy + oy) * cell, score=float(prob[cy, cx]), **attrs))
    return dets


def cell_targets(scene: Scene, cell: int = 4, min_visible: float = 0.5) -> np.ndarray:
    """(h, w, 7) float32 per cell: centre (1, 0, or -1 = left out of the loss), offset x, offset
    y (in cells), colour, shape, material, size indices (-1 where no counted centre)."""
    h, w = scene.height // cell, scene.width // cell
    t = np.zeros((h, w, 7), np.float32)
    t[..., 3:] = -1
    centres = []
    for o in sorted(scene.objects, key=lambda o: (o.depth, o.id)):  # the front object wins a shared cell
        cx, cy = min(int(o.x // cell), w - 1), min(int(o.y // cell), h - 1)
        v = visible_fraction(scene, o.id)
        if v <= 0:
            continue
        if v < min_visible:
            t[cy, cx, 0] = -1
            continue
        centres.append((cy, cx))
        t[cy, cx, 1:3] = (o.x / cell - cx, o.y / cell - cy)
        t[cy, cx, 3:] = (COLOR_NAMES.index(o.color), SHAPES.index(o.shape), MATERIALS.index(o.material), SIZE_NAMES.index(o.size))
    for cy, cx in centres:  # neighbours of a centre: no penalty either way
        nb = t[max(cy - 1, 0) : cy + 2, max(cx - 1, 0) : cx + 2, 0]
        nb[nb == 0] = -1
    for cy, cx in centres:
        t[cy, cx, 0] = 1
    return t


def draw_scenes(seeds: list[int], regime: str) -> tuple[list[Scene], np.ndarray]:
    """The scenes of ``seeds`` in ``regime`` and their renders (B, H, W, 3) uint8."""
    scenes = [sample_scene(s, regime) for s in seeds]
    return scenes, np.stack([render(s) for s in scenes])


def training_batch(seeds: list[int], regime: str, arch: JudgeArch) -> tuple[torch.Tensor, torch.Tensor]:
    """Images (B, 3, H, W) in [0, 1] and cell targets (B, H/4, W/4, 7) of the scenes of ``seeds``."""
    scenes, images = draw_scenes(seeds, regime)
    targets = np.stack([cell_targets(s, arch.cell, arch.min_visible) for s in scenes])
    return torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255.0, torch.from_numpy(targets)


def judge_loss(out: torch.Tensor, targets: torch.Tensor, pos_weight: float = 4.0) -> tuple[torch.Tensor, dict[str, float]]:
    """out (B, N_OUT, h, w), targets (B, h, w, 7) -> (loss, detached stats).

    Centre: binary cross-entropy over cells not left out, positives weighted ``pos_weight``;
    offset: L1 on centre cells; attributes: cross-entropy on centre cells."""
    o = out.permute(0, 2, 3, 1)  # (B, h, w, N_OUT)
    heat = targets[..., 0]
    keep = heat >= 0
    wt = torch.where(heat > 0, pos_weight, 1.0)[keep]
    loss = F.binary_cross_entropy_with_logits(o[..., 0][keep], heat[keep], weight=wt, reduction="sum") / wt.sum()
    stats = {"loss/centre": loss.item()}
    pos = heat > 0
    if pos.any():
        op, tp = o[pos], targets[pos]  # (P, N_OUT), (P, 7)
        off = F.l1_loss(torch.sigmoid(op[:, 1:3]), tp[:, 1:3])
        loss = loss + off
        k = 3
        for i, (name, values) in enumerate(HEADS):
            logits = op[:, k : k + len(values)]
            lab = tp[:, 3 + i].long()
            loss = loss + F.cross_entropy(logits, lab)
            stats[f"acc/{name}"] = (logits.argmax(-1) == lab).float().mean().item()
            k += len(values)
        stats["loss/offset"] = off.item()
    stats["loss/total"] = loss.item()
    return loss, stats


def save_judge(judge: WorldJudge, path: str | Path) -> Path:
    """Weights (safetensors, architecture in the metadata) to ``path`` or ``path/WEIGHTS_FILE``, atomically."""
    from safetensors.torch import save_file

    from ..io import atomic_path

    path = Path(path)
    if path.suffix != ".safetensors":
        path = path / WEIGHTS_FILE
    state = {k: v.detach().cpu().contiguous() for k, v in judge.state_dict().items()}
    with atomic_path(path) as tmp:
        save_file(state, str(tmp), metadata={"format": "aot-world-judge", "arch": json.dumps(asdict(judge.arch))})
    return path


def load_judge(path: str | Path) -> WorldJudge:
    """The judge saved at ``path`` (a ``.safetensors`` file or a folder holding ``WEIGHTS_FILE``)."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    path = Path(path)
    if path.is_dir():
        path = path / WEIGHTS_FILE
    if not path.is_file():
        raise FileNotFoundError(2, "no saved world judge", str(path))
    with safe_open(str(path), "pt") as fh:
        meta = fh.metadata() or {}
    if meta.get("format") != "aot-world-judge":
        raise ValueError(f"{path} is not a saved world judge (no 'aot-world-judge' metadata)")
    judge = WorldJudge(JudgeArch(**json.loads(meta["arch"])))
    judge.load_state_dict({k: v for k, v in load_file(str(path)).items() if not k.startswith("_")})
    return judge.eval()
