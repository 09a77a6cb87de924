"""aot.grounding: hand-computed attention-mass loss, cell indices, targets on a real batch."""

import math
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch

from aot.grounding import attention_mass_loss, cell_index, grounding_targets
from aot.models import Defender, build_tiny
from aot.models.tokenizer import EOS
from aot.pretrain import collate, make_example


def test_cell_index_by_hand():
    assert cell_index(0, 0, 64) == 0
    assert cell_index(17, 3, 64) == 1
    assert cell_index(3, 17, 64) == 4
    assert cell_index(63.9, 63.9, 64) == 15
    assert cell_index(95, 95, 96) == 35


def test_attention_mass_loss_by_hand():
    # one row, one head, 3 keys with logits 0, ln 2, ln 3 -> probs 1/6, 2/6, 3/6
    k = torch.zeros(1, 1, 3, 1)
    k[0, 0, :, 0] = torch.tensor([0.0, math.log(2), math.log(3)])
    q = torch.ones(1, 1, 2, 1)
    mask = torch.ones(1, 1, 2, 3, dtype=torch.bool)
    loss, acc = attention_mass_loss(q, k, mask, 0, [1], [[0, 1]])
    assert abs(float(loss) - (-math.log(3 / 6))) < 1e-6
    assert acc == 0.0  # the argmax key (2) is not a target
    loss2, acc2 = attention_mass_loss(q, k, mask, 0, [1], [[2]])
    assert abs(float(loss2) - (-math.log(0.5))) < 1e-6 and acc2 == 1.0
    # a masked key takes no mass: only keys 0 and 1 remain -> p(1) = 2/3
    mask[0, 0, 1, 2] = False
    loss3, _ = attention_mass_loss(q, k, mask, 0, [1], [[1]])
    assert abs(float(loss3) - (-math.log(2 / 3))) < 1e-6
    # rows without targets are skipped
    zero, _ = attention_mass_loss(q, k, mask, 0, [1], [[]])
    assert float(zero) == 0.0


def test_grounding_targets_point_at_image_cells_and_the_answer_option():
    model, proc = build_tiny("tiny-aot-vlm")
    d = Defender(model, proc, "aot_vlm")
    tok = d.tokenizer
    exs = [e for e in (make_example(s) for s in range(40, 60)) if e is not None][:8]
    n = [len(tok(e.completion + EOS, add_special_tokens=False)["input_ids"]) for e in exs]
    b = collate(d, exs, n)
    t = grounding_targets(b["input_ids"], [e.question for e in exs], [e.scene for e in exs], n, tok, model.config.image_token_id)
    ids = b["input_ids"]
    for i, e in enumerate(exs):
        for j in t.cells[i] + t.ref_cells[i]:
            assert int(ids[i, j]) == model.config.image_token_id
        assert tok.convert_ids_to_tokens(int(ids[i, t.option[i][0]])) == e.question.answer
        assert tok.decode(ids[i, t.option[i][2]]).strip() == e.question.answer_text.split()[0]
        assert tok.convert_ids_to_tokens(int(ids[i, t.letter_pos[i] + 1])) == e.question.answer  # next token: the letter
        assert (e.question.kind == "relation") == bool(t.ref_cells[i])
