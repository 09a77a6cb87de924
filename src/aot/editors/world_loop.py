"""What the world editor's and the world judge's training loops share: schedule, checkpoints, progress.

- ``lr_at``: linear warm-up, then cosine decay to ``floor`` x the peak at ``steps``;
- ``save_checkpoint`` / ``load_checkpoint``: weights, AdamW state and the step in ONE
  safetensors file written atomically (a run killed at any moment resumes from its last
  checkpoint, never from a mix of two); no pickle;
- ``write_json``: an atomic JSON file (the curve, the resolved config);
- ``StepBar``: a rich progress bar on a terminal, a plain line every 1/20 of the run otherwise.

A loop's data and noise at step k are functions of (seed, k) alone, so a resumed run takes the
same steps as an unbroken one.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import torch


def lr_at(step: int, peak: float, warmup: int, steps: int, floor: float = 0.1) -> float:
    """Learning rate of (0-based) ``step``: ``peak`` (step + 1) / warmup during warm-up, then
    cosine from ``peak`` to ``floor`` x ``peak`` at ``steps`` (and ``floor`` x ``peak`` after)."""
    if step < warmup:
        return peak * (step + 1) / warmup
    t = min(1.0, (step - warmup) / max(1, steps - warmup))
    return peak * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * t)))


def optimizer_tensors(opt: torch.optim.Optimizer) -> dict[str, torch.Tensor]:
    """The optimizer's per-parameter state as flat tensors: ``optim.<index>.<key>``."""
    out = {}
    for idx, st in opt.state_dict()["state"].items():
        for k, v in st.items():
            out[f"optim.{idx}.{k}"] = (v if torch.is_tensor(v) else torch.tensor(v)).detach().cpu().contiguous()
    return out


def load_optimizer_tensors(opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor]) -> None:
    """Inverse of ``optimizer_tensors`` (param groups keep the optimizer's own settings)."""
    sd = opt.state_dict()
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, v in tensors.items():
        if key.startswith("optim."):
            _, idx, k = key.split(".", 2)
            state.setdefault(int(idx), {})[k] = v
    sd["state"] = state
    opt.load_state_dict(sd)


def save_checkpoint(path: str | Path, weights: dict[str, torch.Tensor], opt: torch.optim.Optimizer, step: int,
                    meta: dict[str, str] | None = None) -> None:
    """Weights (keys not starting with ``optim.``), the optimizer state and ``step`` in one file, atomically."""
    from safetensors.torch import save_file

    from ..io import atomic_path

    tensors = dict(weights) | optimizer_tensors(opt)
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=(meta or {}) | {"step": str(step)})


def load_checkpoint(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, str], int]:
    """(tensors, metadata, step) of a checkpoint written by ``save_checkpoint``."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    with safe_open(str(path), "pt") as fh:
        meta = dict(fh.metadata() or {})
    return load_file(str(path)), meta, int(meta["step"])


def write_json(path: str | Path, data: Any) -> None:
    from ..io import atomic_write_bytes

    atomic_write_bytes(path, json.dumps(data, indent=1).encode())


class StepBar:
    """Progress over optimizer steps with a short info text; ``enabled=False`` shows nothing."""

    def __init__(self, desc: str, total: int, start: int = 0, enabled: bool = True):
        from rich.console import Console

        self.desc, self.total, self.t0, self.bar, self.plain = desc, total, time.perf_counter(), None, None
        if not enabled:
            return
        console = Console(stderr=True)
        if console.is_terminal:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

            self.bar = Progress(TextColumn(desc), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn(),
                                TextColumn("{task.fields[info]}"), console=console, transient=True)
            self.bar.start()
            self.task = self.bar.add_task(desc, total=total, completed=start, info="")
        else:
            self.plain, self.every = console, max(1, total // 20)

    def update(self, step: int, info: str) -> None:
        """``step`` steps are done."""
        if self.bar is not None:
            self.bar.update(self.task, completed=step, info=info)
        elif self.plain is not None and (step % self.every == 0 or step == self.total):
            self.plain.print(f"{self.desc} {step}/{self.total} {info} ({time.perf_counter() - self.t0:.0f} s)", highlight=False)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None
