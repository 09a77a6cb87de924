"""aot_vlm: the custom born-defender architecture (patch layout, prefix-LM mask, cache, Auto classes)."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import torch

from aot.models import Defender, build_tiny, load_defender
from aot.models.aot_vlm import attention_mask_4d, patches_to_images, prefix_ends
from aot.models.defender import to_pil
from aot.models.evaluation import question_for
from aot.models.prompt import format_prompt


def _items():
    return [question_for(1000 + i, "simple") for i in range(2)] + [question_for(2000, "complex")]


def test_patches_to_images_inverts_the_qwen_processor():
    _, proc = build_tiny("tiny-aot-vlm")
    ims = [it.image for it in _items()]
    b = proc.image_processor(images=[to_pil(x) for x in ims], return_tensors="pt")
    rec = patches_to_images(b["pixel_values"], b["image_grid_thw"], 8, 2, 2)
    mean = torch.tensor(proc.image_processor.image_mean)[:, None, None]
    std = torch.tensor(proc.image_processor.image_std)[:, None, None]
    for r, im in zip(rec, ims):
        assert r.shape[1:] == im.shape[:2]
        back = ((r * std + mean) * 255).permute(1, 2, 0).numpy()
        assert np.abs(back - im).max() < 1e-3


def test_prefix_ends_and_mask_by_hand():
    IMG, START = 9, 7
    ids = torch.tensor([
        [0, 0, START, IMG, IMG, 5, START, 4],  # padded; prefix ends at the START after the images
        [START, 5, 5, START, 4, START, 4, 4],  # no image: plain causal
    ])
    pe = prefix_ends(ids, IMG, START)
    assert pe.tolist() == [6, 0]
    am = torch.tensor([[0, 0, 1, 1, 1, 1, 1, 1], [1] * 8])
    m = attention_mask_4d(am, 8, 0, pe)[:, 0]
    # row 0: an image token (pos 3) sees the later question token (pos 5) but not the answer (pos 6)
    assert bool(m[0, 3, 5]) and not bool(m[0, 3, 6])
    assert not bool(m[0, 3, 0])  # padding is never seen (except by itself)
    assert bool(m[0, 7, 2]) and bool(m[0, 6, 5]) and not bool(m[0, 5, 7])
    # row 1: causal
    assert bool(m[1, 4, 1]) and not bool(m[1, 1, 4])
    # decoding step with a cache: one query at position 8 sees every unpadded key
    step = attention_mask_4d(torch.cat([am, torch.ones(2, 1, dtype=torch.long)], 1), 1, 8, None)[:, 0]
    assert step[0, 0].tolist() == [False, False] + [True] * 7


def test_cached_generation_matches_one_full_forward_and_reload_is_exact(tmp_path):
    torch.manual_seed(0)
    model, proc = build_tiny("tiny-aot-vlm")
    d = Defender(model, proc, "aot_vlm")
    its = _items()
    batch = d.inputs([i.image for i in its], [format_prompt(i.question) for i in its])
    g = model.generate(**batch, max_new_tokens=4, do_sample=False, output_scores=True, return_dict_in_generate=True)
    L = batch["input_ids"].shape[1]
    seq = g.sequences
    mask = torch.cat([batch["attention_mask"], torch.ones(seq.shape[0], seq.shape[1] - L, dtype=torch.long)], 1)
    with torch.no_grad():
        full = model(input_ids=seq, attention_mask=mask, pixel_values=batch["pixel_values"], image_grid_thw=batch["image_grid_thw"]).logits
    for s in range(4):
        assert torch.allclose(full[:, L - 1 + s], g.scores[s], atol=1e-4)
    d.save(tmp_path / "m")
    d2 = load_defender(tmp_path / "m")
    assert type(d2.model).__name__ == "AotVlmForConditionalGeneration"
    with torch.no_grad():
        assert torch.equal(model(**batch).logits, d2.model(**batch).logits)


def test_prefix_attention_changes_what_the_image_sees():
    """With the bidirectional prefix, the question text changes the visual tokens' states (and
    so the logits at the last prompt token differ from the causal model's)."""
    torch.manual_seed(0)
    model, proc = build_tiny("tiny-aot-vlm")
    d = Defender(model, proc, "aot_vlm")
    its = _items()[:2]
    batch = d.inputs([i.image for i in its], [format_prompt(i.question) for i in its])
    with torch.no_grad():
        a = model(**batch).logits[:, -1]
        model.config.bidirectional_prefix = False
        b = model(**batch).logits[:, -1]
    assert not torch.allclose(a, b, atol=1e-5)


def test_lora_on_aot_vlm_forward_backward_step():
    """PEFT LoRA on q/v projections: a forward, backward and optimizer step moves the adapter
    only and changes the outputs (GRPO with ``RLConfig.lora``: tests/test_rl.py)."""
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(0)
    model, proc = build_tiny("tiny-aot-vlm")
    d = Defender(model, proc, "aot_vlm")
    its = _items()
    batch = d.inputs([i.image for i in its], [format_prompt(i.question) for i in its])
    pm = get_peft_model(model, LoraConfig(r=4, target_modules=["q_proj", "v_proj"]))
    trainable = {n for n, p in pm.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n and (".q_proj." in n or ".v_proj." in n) for n in trainable)
    with torch.no_grad():
        before = pm(**batch).logits
    logits = pm(**batch).logits
    # next-token loss on the prompts themselves: any differentiable objective will do
    loss = torch.nn.functional.cross_entropy(logits[:, :-1].flatten(0, 1), batch["input_ids"][:, 1:].flatten())
    loss.backward()
    grads = {n for n, p in pm.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}
    # B starts at zero, so at the first step only B has a gradient (A's is B^T times something)
    assert grads and grads <= trainable and all("lora_B" in n for n in grads)
    torch.optim.SGD([p for p in pm.parameters() if p.requires_grad], lr=1.0).step()
    with torch.no_grad():
        assert not torch.allclose(pm(**batch).logits, before)
        pm.disable_adapter_layers()  # the base weights did not move
        assert torch.equal(pm(**batch).logits, before)
