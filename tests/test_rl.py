"""GRPO/DAPO wiring on a tiny random-init model: parameters move, the filter is applied."""

import numpy as np
import pytest
import torch

from aot.models.defender import Defender
from aot.models.registry import build_tiny
from aot.rl import RLConfig, make_trainer
from aot.rl.defender import QAItem, to_dataset, train_defender
from aot.world import render, sample_question, sample_scene


def _items(n=8):
    rng = np.random.default_rng(0)
    out = []
    for s in range(n):
        sc = sample_scene(s, "simple")
        out.append(QAItem(render(sc), sample_question(sc, rng)))
    return out


def _varied_reward(completions, **_):
    # random-init completions differ in length/content: a reward with non-zero group variance
    return [float(len(str(c)) % 3) / 2 for c in completions]


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return build_tiny("tiny-qwen2.5-vl")


def test_two_grpo_steps_change_parameters(tiny, tmp_path):
    model, proc = tiny
    cfg = RLConfig(max_steps=2, prompts_per_step=2, num_generations=4, learning_rate=1e-3, weight_decay=0.0, max_completion_length=8, dynamic_sampling=False)
    before = {k: v.detach().clone() for k, v in model.named_parameters()}
    tr = make_trainer(model, proc, to_dataset(_items()), [_varied_reward], cfg, str(tmp_path), progress=False)
    tr.train()
    delta = sum((before[k] - v.detach()).abs().sum().item() for k, v in tr.model.named_parameters())
    assert delta > 0
    assert any(float(h.get("grad_norm", 0)) > 0 for h in tr.state.log_history)


def test_dynamic_sampling_filter_in_trainer(tiny, tmp_path):
    model, proc = tiny
    cfg = RLConfig(max_steps=1, prompts_per_step=2, num_generations=4, max_completion_length=4)

    def constant(completions, **_):  # every group saturated at 0: all dropped, no update
        return [0.0] * len(completions)

    before = {k: v.detach().clone() for k, v in model.named_parameters()}
    tr = make_trainer(model, proc, to_dataset(_items()), [constant], cfg, str(tmp_path), progress=False, weight_decay=0.0)
    tr.train()
    assert tr.ds_dropped == 2 and tr.ds_kept == 0
    assert all(torch.equal(before[k], v.detach()) for k, v in tr.model.named_parameters())


def test_train_defender_metrics(tiny, tmp_path):
    model, proc = tiny
    d = Defender(model, proc)
    res = train_defender(d, _items(4), RLConfig(max_steps=1, prompts_per_step=2, num_generations=2, max_completion_length=4))
    assert res["defender/steps"] == 1
    assert res["defender/kept_groups"] + res["defender/dropped_groups"] == 2
    with pytest.raises(ValueError):
        to_dataset([])


def test_progress_prints_plain_lines_when_not_a_terminal(capsys):
    from types import SimpleNamespace

    from aot.progress import RichProgress

    cb = RichProgress("attacker GRPO", lines=4)
    state = SimpleNamespace(max_steps=8, global_step=0)
    cb.on_train_begin(None, state, None)
    for step in range(1, 9):
        state.global_step = step
        cb.on_step_end(None, state, None)
        cb.on_log(None, state, None, logs={"reward": step / 10})
    cb.on_train_end(None, state, None)
    lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert [ln.split(" (")[0] for ln in lines] == [f"attacker GRPO step {s}/8 reward {s / 10:.3f}" for s in (2, 4, 6, 8)]
