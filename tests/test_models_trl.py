"""Stock TRL (no aot trainer code): ``trl.GRPOTrainer`` (DAPO loss, no KL) trains the registry's
tiny Qwen2.5-VL with aot's prompt format. The project's own trainer (``aot.rl.make_trainer``,
dynamic sampling, LoRA, frozen vision) is tested in tests/test_rl.py."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import torch
from PIL import Image

from aot.models import build_tiny, extract_choice, question_conversation
from aot.world import render, sample_question, sample_scene


def test_stock_trl_grpo_trains_tiny_qwen_vision_and_language(tmp_path):
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    model, proc = build_tiny("tiny-qwen2.5-vl")
    rows = []
    for i in range(8):
        s = sample_scene(i, "simple")
        q = sample_question(s, np.random.default_rng(i))
        rows.append({"prompt": question_conversation(q), "image": Image.fromarray(render(s)), "answer": q.answer, "options": list(q.options)})

    def reward(completions, answer, options, **kw):
        texts = [c[-1]["content"] if isinstance(c, list) else c for c in completions]
        # correctness plus a length term so every group has spread (a random model is rarely right)
        return [float(extract_choice(t, o) == a) + 0.05 * len(t) for t, a, o in zip(texts, answer, options)]

    cfg = GRPOConfig(
        output_dir=str(tmp_path / "grpo"), use_cpu=True, loss_type="dapo", beta=0.0, num_generations=4,
        per_device_train_batch_size=4, max_steps=2, max_completion_length=8, learning_rate=1e-3,
        report_to=[], save_strategy="no", temperature=1.0, epsilon=0.2, epsilon_high=0.28, seed=0,
    )
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    GRPOTrainer(model=model, reward_funcs=reward, args=cfg, train_dataset=Dataset.from_list(rows), processing_class=proc).train()
    changed = [n for n, p in model.named_parameters() if not torch.equal(before[n], p)]
    assert any("visual" in n for n in changed) and any("language_model" in n for n in changed)
