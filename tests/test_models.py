"""aot.models: tokenizer, tiny registry, processors, Defender generation and save/load."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import pytest
import torch

from aot.models import (
    TINY_MODELS,
    Defender,
    answer_completion,
    build_tiny,
    build_tokenizer,
    conversation,
    extract_choice,
    format_prompt,
    is_exact_format,
    load_defender,
    question_conversation,
)
from aot.world import render, sample_question, sample_scene


@pytest.fixture(scope="module")
def tok():
    return build_tokenizer()


def _batch(n: int, regime: str = "simple"):
    scenes = [sample_scene(i, regime) for i in range(n)]
    qs = [sample_question(s, np.random.default_rng(i)) for i, s in enumerate(scenes)]
    return [render(s) for s in scenes], qs


def test_tokenizer_roundtrip_and_whole_words(tok):
    for s in [
        "Where is the red circle relative to the blue square?\nOptions:\nA. left\nB. right",
        answer_completion("right", "B"),
        "add red metal circle x=12 y=40 seed=3 brightness contrast blur noise perturb patch photo",
        "anything at all: ünïcode ✓",
    ]:
        assert tok.decode(tok(s)["input_ids"]) == s
    for w in ["right", "circle", "hexagons", "metal", "127", "perturb", "background"]:
        assert len(tok(" " + w)["input_ids"]) == 1, w
    assert tok.convert_ids_to_tokens(tok("\\boxed{B}")["input_ids"])[-3:] == ["{", "B", "}"]


def test_chat_template_has_image_part(tok):
    text = tok.apply_chat_template(conversation("hi"), add_generation_prompt=True, tokenize=False)
    assert text == "<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>hi<|im_end|>\n<|im_start|>assistant\n"


def test_question_conversation_is_trl_shape():
    _, qs = _batch(1)
    conv = question_conversation(qs[0])
    assert conv[0]["role"] == "user"
    assert conv[0]["content"][0] == {"type": "image"}
    assert conv[0]["content"][1]["text"] == format_prompt(qs[0])


def test_answer_completion_scores_as_exact():
    c = answer_completion("right", "B")
    assert extract_choice(c, ("left", "right", "above", "below")) == "B" and is_exact_format(c)


@pytest.mark.parametrize("name", sorted(TINY_MODELS))
def test_tiny_generate_save_load_identical_logits(name, tmp_path, tok):
    model, proc = build_tiny(name, tokenizer=tok if name == "tiny-qwen2.5-vl" else None)
    d = Defender(model, proc, TINY_MODELS[name].arch)
    images, qs = _batch(3)
    prompts = [format_prompt(q) for q in qs]
    greedy = d.generate(images, prompts, max_new_tokens=3, batch_size=2)
    assert len(greedy) == 3 and all(len(g) == 1 and isinstance(g[0], str) for g in greedy)
    sampled = d.generate(images, prompts, num_return_sequences=2, do_sample=True, max_new_tokens=3, batch_size=2, seed=1)
    assert len(sampled) == 3 and all(len(g) == 2 for g in sampled)
    # seeded sampling: reproducible, not greedy in disguise, and another seed draws otherwise
    assert d.generate(images, prompts, num_return_sequences=2, do_sample=True, max_new_tokens=3, batch_size=2, seed=1) == sampled
    assert any(x != g[0] for s, g in zip(sampled, greedy) for x in s)
    assert d.generate(images, prompts, num_return_sequences=2, do_sample=True, max_new_tokens=3, batch_size=2, seed=2) != sampled
    # batching must not change greedy answers (left padding is respected)
    one = d.generate(images[:1], prompts[:1], max_new_tokens=3)
    assert one[0] == greedy[0]
    d.save(tmp_path / "m")
    d2 = load_defender(tmp_path / "m")
    assert type(d2.processor) is type(d.processor)
    with torch.no_grad():
        a = d.model(**d.inputs(images[:2], prompts[:2])).logits
        b = d2.model(**d2.inputs(images[:2], prompts[:2])).logits
    assert torch.equal(a, b)
    assert d2.generate(images, prompts, max_new_tokens=3, batch_size=2) == greedy


def test_answer_returns_letters_or_none():
    d = load_defender("tiny-qwen2.5-vl")
    images, qs = _batch(3)
    ans = d.answer(images, qs, max_new_tokens=4)
    comps = d.generate(images, [format_prompt(q) for q in qs], max_new_tokens=4)
    assert ans == [[extract_choice(c[0], q.options)] for c, q in zip(comps, qs)]
    assert all(a[0] is None or a[0] in tuple("ABCD"[: len(q.options)]) for a, q in zip(ans, qs))
    # a completion in the born defender's format reads as its letter; free text reads as None
    assert extract_choice(answer_completion(qs[0].options[1], "B"), qs[0].options) == "B"
    assert extract_choice("AB", qs[0].options) is None and extract_choice("", qs[0].options) is None


def test_unknown_names_fail_clearly():
    with pytest.raises(ValueError, match="unknown tiny model"):
        build_tiny("tiny-nope")


def test_load_plain_hf_directory_through_auto_classes(tmp_path):
    """A directory in the ordinary Hugging Face layout (model + processor save_pretrained, no
    aot metadata) loads through AutoModelForImageTextToText / AutoProcessor, offline."""
    model, proc = build_tiny("tiny-llava")
    model.save_pretrained(tmp_path)
    proc.save_pretrained(tmp_path)
    d = load_defender(tmp_path)
    assert type(d.processor).__name__ == "LlavaProcessor"
    images, qs = _batch(2)
    assert len(d.generate(images, [format_prompt(q) for q in qs], max_new_tokens=3)) == 2
