"""Rollouts from one prefill per prompt: the grouping rule by hand, and the trainer's use of it."""

import torch

from aot.models.registry import build_tiny
from aot.rl import RLConfig, make_trainer
from aot.rl.defender import to_dataset
from aot.rl.rollouts import unique_prompts


def _batch():
    # 2 prompts x 2 rollouts; image j has 2 patch rows (grid 1x1x2) of value j
    ids = torch.tensor([[1, 2, 3], [1, 2, 3], [4, 5, 6], [4, 5, 6]])
    grid = torch.tensor([[1, 1, 2]] * 4)
    pv = torch.tensor([[0.0], [0.0], [0.0], [0.0], [1.0], [1.0], [1.0], [1.0]])
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "pixel_values": pv, "image_grid_thw": grid}


def test_unique_prompts_by_hand():
    u = unique_prompts(_batch(), 2)
    assert u["input_ids"].tolist() == [[1, 2, 3], [4, 5, 6]]
    assert u["pixel_values"].flatten().tolist() == [0.0, 0.0, 1.0, 1.0]
    assert u["image_grid_thw"].tolist() == [[1, 1, 2], [1, 1, 2]]


def test_rows_that_are_not_groups_of_identical_prompts_are_left_alone():
    b = _batch()
    b["input_ids"] = b["input_ids"].clone()
    b["input_ids"][1, 0] = 9  # prompt 0's second row differs
    assert unique_prompts(b, 2) is None
    b = _batch()
    b["pixel_values"] = b["pixel_values"].clone()
    b["pixel_values"][2] = 5.0  # same text, another image
    assert unique_prompts(b, 2) is None
    assert unique_prompts(_batch(), 3) is None  # 4 rows do not split into groups of 3
    assert unique_prompts(_batch(), 1) is None




def test_trainer_rollouts_take_the_shared_path_and_still_sample(tmp_path, qa_items):
    torch.manual_seed(0)
    model, proc = build_tiny("tiny-qwen2.5-vl")
    seen = []

    def reward(completions, **_):
        seen.append([str(c) for c in completions])
        return [0.0] * len(completions)

    for shared in (True, False):
        cfg = RLConfig(max_steps=1, prompts_per_step=2, num_generations=4, max_completion_length=6, dynamic_sampling=False, shared_prefill=shared)
        tr = make_trainer(model, proc, to_dataset(qa_items()), [reward], cfg, str(tmp_path / str(shared)), progress=False)
        tr.train()
        assert tr.shared_rollouts == (1 if shared else 0)
        lengths = [h["completions/max_length"] for h in tr.state.log_history if "completions/max_length" in h]
        assert lengths and max(lengths) <= 6  # the generation config (length budget) holds
    shared_rows = seen[0]
    assert len(shared_rows) == 8
    assert len(set(shared_rows[:4])) > 1  # four different draws for one prompt, not one greedy answer
