"""Defender.generate_ids: k sampled completions share one prompt prefill (image encoder +
prompt run once, KV cache repeated k times). Same distribution as a plain forward; rows in order."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import pytest
import torch

from aot.models import TINY_MODELS, Defender, build_tiny, format_prompt, load_defender
from aot.world import render, sample_question, sample_scene

K = 3


def _inputs(n: int):
    scenes = [sample_scene(i, "simple") for i in range(n)]
    qs = [sample_question(s, np.random.default_rng(i)) for i, s in enumerate(scenes)]
    prompts = [format_prompt(q) for q in qs]
    prompts[1] += " Answer carefully, please."  # a longer prompt: the others are left padded
    return [render(s) for s in scenes], prompts


def _gen_kwargs(d: Defender, **kw):
    tok = d.tokenizer
    return dict(do_sample=True, temperature=1.0, top_k=0, top_p=1.0, max_new_tokens=6,
                pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id) | kw


@pytest.mark.parametrize("name", sorted(TINY_MODELS))
def test_shared_prefill_logprobs_match_plain_forward(name):
    torch.manual_seed(0)
    model, proc = build_tiny(name)
    d = Defender(model, proc, TINY_MODELS[name].arch)
    model.eval()
    images, prompts = _inputs(3)
    batch = d.inputs(images, prompts)
    ids, mask = batch["input_ids"], batch["attention_mask"]
    assert (mask == 0).any(), "the test needs left padding"
    assert d._can_share_prefill(batch), "the shared path must be taken for this architecture"
    n, L = ids.shape
    with torch.inference_mode():
        out = d.generate_ids(batch, K, return_dict_in_generate=True, output_logits=True, **_gen_kwargs(d))
    seqs = out.sequences
    T = seqs.shape[1] - L
    assert seqs.shape[0] == n * K and T == len(out.logits) and T >= 1
    # k rows per prompt, in order: row j*K + s continues prompt j
    assert torch.equal(seqs[:, :L], ids.repeat_interleave(K, dim=0))
    gen_lp = torch.log_softmax(torch.stack(out.logits, dim=1).float(), dim=-1)  # (n*K, T, V)

    # reference: one plain forward per sample index over the full sequences (prompt + sampled
    # tokens, the batch's own image inputs), with the positions generate uses for left padding
    for s in range(K):
        full = seqs[s::K]
        full_mask = torch.cat([mask, mask.new_ones(n, T)], dim=1)
        fwd = dict(batch, input_ids=full, attention_mask=full_mask, use_cache=False)
        if "mm_token_type_ids" in batch:
            fwd["mm_token_type_ids"] = torch.cat([batch["mm_token_type_ids"], batch["mm_token_type_ids"].new_zeros(n, T)], dim=1)
        if TINY_MODELS[name].arch != "qwen2_5_vl":  # Qwen2.5-VL builds its M-RoPE ids from the mask itself
            fwd["position_ids"] = (full_mask.cumsum(-1) - 1).clamp(min=0)
        with torch.inference_mode():
            ref = model(**fwd).logits[:, L - 1 : L - 1 + T].float()
        ref_lp = torch.log_softmax(ref, dim=-1)
        lp = gen_lp[s::K]
        tokens = full[:, L:]
        chosen, ref_chosen = lp.gather(-1, tokens[..., None]), ref_lp.gather(-1, tokens[..., None])
        torch.testing.assert_close(chosen, ref_chosen, atol=1e-4, rtol=0)
        torch.testing.assert_close(lp, ref_lp, atol=1e-4, rtol=0)


def test_k_samples_per_prompt_in_order():
    """Near-greedy sampling (tiny temperature) of the trained defender reproduces each prompt's
    greedy answer K times, group by group, across batch chunks."""
    d = load_defender("base")
    scenes = [sample_scene(100 + i, "simple") for i in range(7)]
    qs = [sample_question(s, np.random.default_rng(i)) for i, s in enumerate(scenes)]
    images, prompts = [render(s) for s in scenes], [format_prompt(q) for q in qs]
    greedy = d.generate(images, prompts, max_new_tokens=8, batch_size=3)
    assert len({g[0] for g in greedy}) > 1, "the prompts must give distinguishable answers"
    sampled = d.generate(images, prompts, num_return_sequences=K, do_sample=True, temperature=1e-3, max_new_tokens=8, batch_size=3, seed=0)
    assert sampled == [[g[0]] * K for g in greedy]
    assert d.generate(images[:1], prompts[:1], num_return_sequences=K, max_new_tokens=8) == [[greedy[0][0]] * K]  # greedy: copies
