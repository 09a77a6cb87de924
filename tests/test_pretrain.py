"""aot.pretrain: dense labels, a few steps of both stages end to end, the CLI wiring."""

from __future__ import annotations

import json
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import pytest

from aot.models.evaluation import EVAL_SEEDS, TRAIN_SEEDS, eval_items
from aot.pretrain import PREVIOUS, PretrainConfig, copy_batch, dense_labels, make_example, pretrain, pretrain_recipe
from aot.world import COLORS, sample_scene


def test_seed_ranges_are_disjoint():
    assert TRAIN_SEEDS[1] <= EVAL_SEEDS[0]
    items = eval_items(8, "simple", seed=0)
    assert all(EVAL_SEEDS[0] <= it.scene.seed < EVAL_SEEDS[1] for it in items)
    assert [it.question.kind for it in items[:4]] == ["relation", "attribute", "existence", "count"]


def test_dense_labels_mark_object_centres():
    scene = sample_scene(3, "simple")
    lab = dense_labels(scene, 4)
    assert lab.shape == (16, 6)
    assert (lab[:, 0] >= 0).sum() <= len(scene.objects)
    for o in scene.objects:
        row = lab[int(o.y // 16) * 4 + int(o.x // 16)]
        assert row[0] >= 0 and row[4] == int(o.x // 8)
    assert set(lab[lab[:, 0] >= 0, 0]) <= set(range(len(COLORS)))


def test_make_example_completion_names_the_answer():
    e = make_example(5)
    assert e is not None and e.completion.endswith("}") and "\\boxed{" in e.completion


def test_config_rejects_bad_values():
    with pytest.raises(ValueError, match="unknown model"):
        PretrainConfig(model="nope")
    with pytest.raises(ValueError, match="aux_until"):
        PretrainConfig(aux_until=2.0)


def test_pretrain_few_steps_saves_loadable_defender(tmp_path):
    from aot.models import load_defender

    cfg = PretrainConfig(out=str(tmp_path / "m"), model="tiny-qwen2.5-vl", steps=2, batch_size=4, vision_steps=2,
                         vision_batch_size=4, copy_batch=2, eval_every=0, eval_n=8, progress=False, threads=1)
    res = pretrain(cfg)
    assert res["steps_done"] == 2 and res["curve"][-1]["step"] == 2
    saved = json.loads((tmp_path / "m" / "pretrain.json").read_text())
    assert saved["config"]["steps"] == 2
    d = load_defender(tmp_path / "m")
    out = d.generate([e.image for e in eval_items(2)], ["hi", "there"], max_new_tokens=3)
    assert len(out) == 2


def test_cli_defender_eval_json(capsys):
    """`aot defender eval --json` on the shipped born defender, greedy accuracy recounted here
    from the same held-out items with Defender.answer."""
    import numpy as np

    from aot.cli import main
    from aot.models import load_defender
    from aot.models.evaluation import eval_items

    code = main(["defender", "eval", "--model", "base", "--regime", "complex", "--n", "12", "--seed", "1", "--json", "--batch-size", "4"])
    assert code == 0
    res = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    for k in ("accuracy", "strict3_accuracy", "format_rate", "questions_per_s", "accuracy_by_kind"):
        assert k in res
    items = eval_items(12, "complex", 1)
    right = [a[0] == it.question.answer for a, it in zip(load_defender("base").answer([it.image for it in items], [it.question for it in items]), items)]
    assert res["n"] == 12 and res["accuracy"] == np.mean(right) and 0 < res["accuracy"] < 1
    kinds = sorted({it.question.kind for it in items})
    assert res["accuracy_by_kind"] == {k: np.mean([r for r, it in zip(right, items) if it.question.kind == k]) for k in kinds}


def test_recipe_chains_phases_and_stop_after(tmp_path):
    phases = (
        dict(vision_steps=1, vision_batch_size=2, steps=1, batch_size=2, copy_batch=0, eval_n=4, threads=1),
        dict(init_from=PREVIOUS, vision_steps=0, steps=5, stop_after=2, batch_size=2, copy_batch=2, caption_frac=0.5, eval_n=4, threads=1),
    )
    res = pretrain_recipe(str(tmp_path / "born"), phases, progress=False)
    assert [r["steps_done"] for r in res] == [1, 2]
    assert res[1]["config"]["init_from"] == str(tmp_path / "born") + ".phase1"
    assert not (tmp_path / "born.phase1").exists() and (tmp_path / "born" / "model.safetensors").exists()


def test_copy_batch_labels_only_the_letter():
    from aot.models import load_defender

    d = load_defender("tiny-qwen2.5-vl")
    b = copy_batch(d, np.random.default_rng(0), 3)
    lab = b["labels"]
    assert ((lab != -100).sum(1) == 1).all()
    letters = d.tokenizer.convert_ids_to_tokens(lab[:, -3].tolist())
    assert set(letters) <= set("ABCD")
