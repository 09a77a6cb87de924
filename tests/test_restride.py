"""aot.models.restride and ``vision_strides``: finer visual cells on the same weights."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import pytest
import torch

from aot.grounding import cell_index, grounding_targets
from aot.models import Defender, build_tiny
from aot.models.aot_vlm import AotVlmConfig
from aot.models.defender import load_defender
from aot.models.restride import restride
from aot.models.tokenizer import EOS
from aot.pretrain import collate, make_example


def image_tokens(d: Defender, side: int) -> int:
    b = d.inputs([np.zeros((side, side, 3), np.uint8)], ["What is there?"])
    return int((b["input_ids"] == d.model.config.image_token_id).sum())


def test_strides_must_multiply_to_the_cell():
    AotVlmConfig(vision_strides=[2, 2, 2, 1], spatial_merge_size=1)  # 8-pixel cells of 8-pixel patches
    with pytest.raises(ValueError, match="16-pixel cells"):
        AotVlmConfig(vision_strides=[2, 2, 2, 2], spatial_merge_size=1)
    with pytest.raises(ValueError, match="stride of 1 or 2"):
        AotVlmConfig(vision_strides=[2, 2, 2])
    with pytest.raises(ValueError, match="stride of 1 or 2"):
        AotVlmConfig(vision_strides=[4, 2, 1, 1])


def test_restride_keeps_every_weight_and_quadruples_the_cells(tmp_path):
    model, proc = build_tiny("tiny-aot-vlm", seed=3)
    d = Defender(model, proc, "aot_vlm")
    f = restride(d, [2, 2, 2, 1])
    assert (image_tokens(d, 64), image_tokens(d, 96)) == (16, 36)
    assert (image_tokens(f, 64), image_tokens(f, 96)) == (64, 144)
    old, new = d.model.state_dict(), f.model.state_dict()
    assert old.keys() == new.keys()
    assert all(torch.equal(old[k], new[k]) for k in old)
    assert f.model.model.visual.stages[-1].down.stride == (1, 1)
    assert d.model.model.visual.stages[-1].down.stride == (2, 2)  # the source is not touched
    # the encoder yields one token per placeholder: a forward runs, and differs from the 16-pixel one
    img = (np.random.default_rng(0).random((96, 96, 3)) * 255).astype(np.uint8)
    with torch.no_grad():
        a = d.model(**d.inputs([img], ["What is there?"])).logits[0, -1]
        b = f.model(**f.inputs([img], ["What is there?"])).logits[0, -1]
    assert not torch.allclose(a, b)
    # saved and loaded, it is the same model with the same processor
    f.save(tmp_path / "c8")
    g = load_defender(str(tmp_path / "c8"))
    assert g.model.config.vision_strides == [2, 2, 2, 1] and image_tokens(g, 96) == 144
    with torch.no_grad():
        c = g.model(**g.inputs([img], ["What is there?"])).logits[0, -1]
    assert torch.allclose(b, c, atol=1e-5)


def test_restride_refuses_other_architectures():
    model, proc = build_tiny("tiny-qwen2.5-vl")
    with pytest.raises(ValueError, match="only aot_vlm"):
        restride(Defender(model, proc, "qwen2_5_vl"), [2, 2, 2, 1])


def test_cell_index_on_8_pixel_cells_by_hand():
    assert cell_index(9, 3, 64, cell=8) == 1
    assert cell_index(3, 9, 64, cell=8) == 8
    assert cell_index(95, 95, 96, cell=8) == 143
    assert cell_index(17, 17, 96, cell=8) == 2 * 12 + 2


def test_grounding_targets_follow_the_finer_cells():
    model, proc = build_tiny("tiny-aot-vlm")
    f = restride(Defender(model, proc, "aot_vlm"), [2, 2, 2, 1])
    tok = f.tokenizer
    exs = [e for e in (make_example(s) for s in range(40, 60)) if e is not None][:6]
    n = [len(tok(e.completion + EOS, add_special_tokens=False)["input_ids"]) for e in exs]
    b = collate(f, exs, n)
    t = grounding_targets(b["input_ids"], [e.question for e in exs], [e.scene for e in exs], n, tok, f.model.config.image_token_id, cell=8)
    for i, e in enumerate(exs):
        img = [j for j, tid in enumerate(b["input_ids"][i].tolist()) if tid == f.model.config.image_token_id]
        want = [cell_index(e.scene.get(q.id).x, e.scene.get(q.id).y, 64, 8) for q in e.question.targets if e.scene.get(q.id)]
        if e.question.kind == "relation":  # subject, then the reference object
            assert [img.index(j) for j in t.cells[i] + t.ref_cells[i]] == want
        else:
            assert sorted(img.index(j) for j in t.cells[i]) == sorted(set(want))
