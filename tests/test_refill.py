"""DAPO's refill: over-sample prompts, train on the first informative groups only."""

import pytest
import torch

from aot.models.registry import build_tiny
from aot.rl import RLConfig, make_trainer
from aot.rl.defender import to_dataset
from aot.rl.dynamic_sampling import refill_groups


def test_refill_groups_by_hand():
    idx, live = refill_groups(torch.tensor([False, True, False, True, True]), 2)
    assert idx.tolist() == [1, 3] and live
    idx, live = refill_groups(torch.tensor([True, False]), 4)  # fewer than asked: all of them
    assert idx.tolist() == [0] and live
    idx, live = refill_groups(torch.tensor([False, False]), 2)  # none: one group, to be masked
    assert idx.tolist() == [0] and not live
    with pytest.raises(ValueError):
        refill_groups(torch.tensor([True]), 0)


def test_refill_needs_the_filter():
    with pytest.raises(ValueError, match="dynamic_sampling"):
        RLConfig(refill=2, dynamic_sampling=False)
    with pytest.raises(ValueError, match="refill"):
        RLConfig(refill=0)




def test_trainer_trains_on_exactly_the_first_informative_groups(tmp_path, qa_items):
    """Half the prompts are informative (rewards 1, 0 within the group), half saturated (1.0):
    with refill 3 and 2 prompts per step, every step sees 6 prompts, about 3 informative, and
    the loss gets exactly 2 groups (4 rows), all informative."""
    torch.manual_seed(0)
    model, proc = build_tiny("tiny-qwen2.5-vl")
    items = qa_items(24)
    ds = to_dataset(items).add_column("informative", [i % 2 == 0 for i in range(len(items))])

    def reward(completions, informative, **_):
        # completions of one prompt are contiguous (G = 2): alternate 1, 0 in informative groups
        return [(1.0 if j % 2 == 0 else 0.0) if inf else 1.0 for j, inf in enumerate(informative)]

    cfg = RLConfig(max_steps=3, prompts_per_step=2, num_generations=2, refill=3, learning_rate=1e-3, max_completion_length=6)
    tr = make_trainer(model, proc, ds, [reward], cfg, str(tmp_path), progress=False)
    seen = []
    plain = tr.compute_loss

    def spy(model, inputs, *a, **kw):
        seen.append((inputs["completion_ids"].shape[0], float(inputs["advantages"].abs().min())))
        return plain(model, inputs, *a, **kw)

    tr.compute_loss = spy
    tr.train()
    assert tr.state.global_step == 3
    assert tr.ds_kept + tr.ds_dropped == 3 * 6  # 6 prompts sampled per step
    assert tr.ds_trained == min(tr.ds_kept, 6)
    for rows, min_adv in seen:
        assert rows <= 4  # never more than prompts_per_step groups reach the loss
        assert min_adv > 0  # and none of them is a constant (dropped) group
    assert sum(r for r, _ in seen) == 2 * tr.ds_trained


def test_without_refill_the_whole_batch_reaches_the_loss(tmp_path, qa_items):
    torch.manual_seed(0)
    model, proc = build_tiny("tiny-qwen2.5-vl")
    items = qa_items(8)
    cfg = RLConfig(max_steps=1, prompts_per_step=2, num_generations=2, learning_rate=1e-3, max_completion_length=6)
    tr = make_trainer(model, proc, to_dataset(items), [lambda completions, **_: [1.0, 0.0] * (len(completions) // 2)], cfg, str(tmp_path), progress=False)
    seen = []
    plain = tr.compute_loss
    tr.compute_loss = lambda model, inputs, *a, **kw: (seen.append(inputs["completion_ids"].shape[0]), plain(model, inputs, *a, **kw))[1]
    tr.train()
    assert seen == [4] and tr.ds_trained == 2
