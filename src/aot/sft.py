"""Supervised fine-tuning of a vision-language model on (image, prompt, completion) triples with
TRL's SFTTrainer (prompt/completion format: the loss covers the completion only). Used by the
attacker's cold start and by the defender-SFT baseline."""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from .models.defender import Defender, conversation, to_pil


@dataclass
class SFTConfig:
    """Supervised fine-tuning settings."""

    learning_rate: float = 5e-4
    """AdamW learning rate."""
    epochs: float = 3.0
    """Passes over the examples."""
    batch_size: int = 16
    """Examples per step."""
    max_steps: int = -1
    """Stop after this many steps (-1: run the epochs)."""
    seed: int = 0
    """Seed of data order."""

    def __post_init__(self) -> None:
        if self.learning_rate <= 0 or self.batch_size < 1 or self.epochs <= 0:
            raise ValueError("learning_rate, batch_size and epochs must be positive")


def sft_vlm(vlm: Defender, examples: Sequence[tuple[np.ndarray, str, str]], cfg: SFTConfig, prefix: str = "model") -> dict[str, Any]:
    """Fine-tune ``vlm`` in place on (image (H, W, 3) uint8, prompt, completion) examples."""
    import torch
    from datasets import Dataset
    from transformers.trainer_callback import PrinterCallback
    from trl import SFTConfig as TRLSFTConfig
    from trl import SFTTrainer

    from .progress import RichProgress

    if not examples:
        raise ValueError(f"{prefix}: SFT needs at least one example")
    t0 = time.perf_counter()
    ds = Dataset.from_dict(
        {
            "prompt": [conversation(p) for _, p, _ in examples],
            "completion": [[{"role": "assistant", "content": [{"type": "text", "text": c}]}] for _, _, c in examples],
            "images": [[to_pil(im)] for im, _, _ in examples],
        }
    )
    with tempfile.TemporaryDirectory(prefix="aot-sft-") as tmp:
        args = TRLSFTConfig(
            output_dir=tmp, use_cpu=not torch.cuda.is_available(), per_device_train_batch_size=cfg.batch_size,
            num_train_epochs=cfg.epochs, max_steps=cfg.max_steps, learning_rate=cfg.learning_rate, report_to=[],
            save_strategy="no", logging_steps=1, disable_tqdm=True, max_length=None, seed=cfg.seed, data_seed=cfg.seed,
            bf16=False, fp16=False, dataloader_num_workers=0, gradient_checkpointing=False,
        )
        tr = SFTTrainer(model=vlm.model, processing_class=vlm.processor, args=args, train_dataset=ds)
        tr.remove_callback(PrinterCallback)
        tr.add_callback(RichProgress(f"{prefix} SFT"))
        tr.train()
        vlm.model = tr.model
        losses = [h["loss"] for h in tr.state.log_history if "loss" in h]
    vlm.model.eval()
    return {
        f"{prefix}/sft_examples": len(examples),
        f"{prefix}/sft_steps": int(tr.state.global_step),
        f"{prefix}/sft_loss_first": float(losses[0]) if losses else float("nan"),
        f"{prefix}/sft_loss_last": float(losses[-1]) if losses else float("nan"),
        f"time/{prefix}_sft_s": time.perf_counter() - t0,
    }
