"""GRPO/DAPO wiring on a tiny random-init model: parameters move, the filter is applied."""

import pytest
import torch

from aot.models.defender import Defender
from aot.models.registry import build_tiny
from aot.rl import RLConfig, make_trainer
from aot.rl.defender import to_dataset, train_defender




def _varied_reward(completions, **_):
    # random-init completions differ in length/content: a reward with non-zero group variance
    return [float(len(str(c)) % 3) / 2 for c in completions]


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return build_tiny("tiny-qwen2.5-vl")


def test_two_grpo_steps_change_parameters(tiny, tmp_path, qa_items):
    model, proc = tiny
    cfg = RLConfig(max_steps=2, prompts_per_step=2, num_generations=4, learning_rate=1e-3, weight_decay=0.0, max_completion_length=8, dynamic_sampling=False)
    before = {k: v.detach().clone() for k, v in model.named_parameters()}
    tr = make_trainer(model, proc, to_dataset(qa_items()), [_varied_reward], cfg, str(tmp_path), progress=False)
    tr.train()
    delta = sum((before[k] - v.detach()).abs().sum().item() for k, v in tr.model.named_parameters())
    assert delta > 0
    assert any(float(h.get("grad_norm", 0)) > 0 for h in tr.state.log_history)


def _by_group(kept_group, dropped_group, num_generations):
    """A reward by position in the batch: group 0 gets ``kept_group``, group 1 ``dropped_group``
    (TRL lays out each prompt's rollouts contiguously), whatever the completions say."""

    def reward(completions, **_):
        return [(kept_group if i // num_generations % 2 == 0 else dropped_group)[i % num_generations] for i in range(len(completions))]

    return reward


# group 0: mean 0.25, kept; group 1: mean 0.005 (<= 0.01, dropped) but not constant, so its
# advantages are non-zero and only the filter keeps it out of the loss
KEPT, DROPPED = [1.0, 0.0, 0.0, 0.0], [0.02, 0.0, 0.0, 0.0]


def test_dynamic_sampling_masks_only_the_dropped_groups_tokens(tiny, tmp_path, monkeypatch, qa_items):
    from trl import GRPOTrainer

    model, proc = tiny
    seen = []  # (batch before the filter, batch after)
    plain = GRPOTrainer._generate_and_score_completions

    def spy(self, inputs):
        out = plain(self, inputs)
        seen.append({k: v.clone() for k, v in out.items() if isinstance(v, torch.Tensor)})
        return out

    monkeypatch.setattr(GRPOTrainer, "_generate_and_score_completions", spy)
    cfg = RLConfig(max_steps=1, prompts_per_step=2, num_generations=4, max_completion_length=4, weight_decay=0.0)
    tr = make_trainer(model, proc, to_dataset(qa_items()), [_by_group(KEPT, DROPPED, 4)], cfg, str(tmp_path), progress=False)
    after = []
    filtered = tr._generate_and_score_completions
    tr._generate_and_score_completions = lambda inputs: after.append(filtered(inputs)) or after[-1]
    tr.train()
    assert len(seen) == len(after) == 1
    pre, post = seen[0], after[0]
    kept, dropped = slice(0, 4), slice(4, 8)
    # before the filter both groups carry advantages (the dropped group is not constant)
    assert pre["advantages"][kept].abs().sum() > 0 and pre["advantages"][dropped].abs().sum() > 0
    assert pre["completion_mask"][dropped].sum() > 0
    # after it: the dropped group has no loss tokens and no advantage; the kept group is untouched
    assert post["completion_mask"][dropped].sum() == 0 and torch.all(post["advantages"][dropped] == 0)
    assert torch.equal(post["completion_mask"][kept], pre["completion_mask"][kept])
    assert torch.equal(post["advantages"][kept], pre["advantages"][kept])
    assert int(post["num_items_in_batch"]) == int(pre["completion_mask"][kept].sum())  # the token-level normaliser
    assert (tr.ds_kept, tr.ds_dropped) == (1, 1)


@pytest.mark.parametrize("filter_on", [True, False])
def test_dropped_groups_move_nothing_with_the_filter_and_train_without_it(tmp_path, filter_on, qa_items):
    """Both groups fall under the paper's mean threshold but are not constant: with the filter
    the step is empty (parameters unchanged); without it the same batch trains."""
    torch.manual_seed(0)
    model, proc = build_tiny("tiny-qwen2.5-vl")
    cfg = RLConfig(max_steps=1, prompts_per_step=2, num_generations=4, max_completion_length=4, learning_rate=1e-3,
                   weight_decay=0.0, dynamic_sampling=filter_on)
    before = {k: v.detach().clone() for k, v in model.named_parameters()}
    tr = make_trainer(model, proc, to_dataset(qa_items()), [_by_group(DROPPED, DROPPED, 4)], cfg, str(tmp_path), progress=False)
    tr.train()
    unchanged = all(torch.equal(before[k], v.detach()) for k, v in tr.model.named_parameters())
    assert unchanged == filter_on
    if filter_on:
        assert (tr.ds_kept, tr.ds_dropped) == (0, 2)


def test_train_vision_false_freezes_the_vision_tower_only(tmp_path, qa_items):
    torch.manual_seed(0)
    model, proc = build_tiny("tiny-qwen2.5-vl")
    cfg = RLConfig(max_steps=1, prompts_per_step=2, num_generations=4, max_completion_length=6, learning_rate=1e-3,
                   weight_decay=0.0, dynamic_sampling=False, train_vision=False)
    before = {k: v.detach().clone() for k, v in model.named_parameters()}
    tr = make_trainer(model, proc, to_dataset(qa_items()), [_by_group(KEPT, KEPT, 4)], cfg, str(tmp_path), progress=False)
    tr.train()
    changed = {k for k, v in tr.model.named_parameters() if not torch.equal(before[k], v.detach())}
    vision = {k for k in before if "visual" in k}
    assert vision and not (changed & vision)
    assert any("language_model" in k for k in changed)


def test_rlconfig_lora_trains_an_adapter_on_aot_vlm_and_leaves_the_base_weights(tmp_path, qa_items):
    """RLConfig.lora through make_trainer on the born defender's architecture: a real GRPO step
    (forward, backward, optimizer) moves the LoRA weights and nothing else; merging the adapter
    changes the model's outputs."""
    torch.manual_seed(0)
    model, proc = build_tiny("tiny-aot-vlm")
    before = {k: v.detach().clone() for k, v in model.named_parameters()}
    d = Defender(model, proc, "aot_vlm")
    batch = d.inputs([it.image for it in qa_items(2)], ["hi", "there"])
    with torch.no_grad():
        logits_before = model(**batch).logits
    cfg = RLConfig(max_steps=2, prompts_per_step=2, num_generations=4, max_completion_length=6, learning_rate=1e-2,
                   weight_decay=0.0, dynamic_sampling=False, lora=True, lora_r=4)
    tr = make_trainer(model, proc, to_dataset(qa_items()), [_by_group(KEPT, KEPT, 4)], cfg, str(tmp_path), progress=False)
    tr.train()
    params = dict(tr.model.named_parameters())
    lora_b = {k: v for k, v in params.items() if "lora_B" in k}
    assert lora_b and all(k.split(".")[-4] in ("q_proj", "v_proj") for k in lora_b)
    assert any(v.detach().abs().sum() > 0 for v in lora_b.values())  # initialised to zero: only training moves it
    base = {k.replace("base_model.model.", "", 1).replace(".base_layer", ""): v for k, v in params.items() if "lora_" not in k}
    assert set(base) == set(before)
    assert all(torch.equal(before[k], v.detach()) for k, v in base.items())
    assert not any(v.requires_grad for v in base.values())
    with torch.no_grad():
        assert not torch.allclose(tr.model.merge_and_unload()(**batch).logits, logits_before)


def test_train_defender_metrics(tiny, tmp_path, qa_items):
    model, proc = tiny
    d = Defender(model, proc)
    res = train_defender(d, qa_items(4), RLConfig(max_steps=1, prompts_per_step=2, num_generations=2, max_completion_length=4))
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
