"""A byte-level BPE tokenizer trained locally on the world's vocabulary.

The corpus is every question text, option, prompt and answer completion the world can
produce (both regimes), the edit language (``add remove replace move patch perturb
background photo brightness contrast blur noise seed``, ``=``, numbers 0-127) and the
chat markup. Byte-level BPE means any string still encodes (unknown words fall back to
bytes) and ``decode(encode(s)) == s``; with a vocabulary this small every world word is a
single token (``Ġright``, ``Ġcircle``...). An attacker model reuses this tokenizer.

The chat template handles image parts (``{"type": "image"}``) with a per-architecture
placeholder that the architecture's processor expands into visual tokens.
"""

from __future__ import annotations

import numpy as np

from ..world import ATTRIBUTE_VALUES, LETTERS, render, sample_scene, scene_questions  # noqa: F401
from ..world.types import BG_COLORS, COLOR_NAMES, SHAPES
from .prompt import INSTRUCTION, format_prompt

PAD = "<|endoftext|>"
BOS = "<|im_start|>"
EOS = "<|im_end|>"
# every special token any supported architecture needs; one tokenizer serves all of them
SPECIAL_TOKENS: tuple[str, ...] = (
    PAD, BOS, EOS,
    "<|vision_start|>", "<|vision_end|>", "<|image_pad|>", "<|video_pad|>",  # Qwen2(.5)-VL
    "<image>",  # LLaVA and Idefics3
    "<fake_token_around_image>", "<global-img>", "<end_of_utterance>",  # Idefics3
)
EDIT_WORDS: tuple[str, ...] = (
    "add", "remove", "replace", "move", "patch", "perturb", "background", "photo",
    "brightness", "contrast", "blur", "noise", "seed", "object", "to", "at", "x", "y", "id",
)

IMAGE_PLACEHOLDER: dict[str, str] = {
    "qwen2_5_vl": "<|vision_start|><|image_pad|><|vision_end|>",
    "qwen2_vl": "<|vision_start|><|image_pad|><|vision_end|>",
    "aot_vlm": "<|vision_start|><|image_pad|><|vision_end|>",
    "llava": "<image>",
    "idefics3": "<image>",
}


def chat_template(image_placeholder: str) -> str:
    """ChatML with image parts; ``add_generation_prompt`` opens the assistant turn."""
    return (
        "{% for message in messages %}"
        "{{ '<|im_start|>' + message['role'] + '\n' }}"
        "{% if message['content'] is string %}{{ message['content'] }}"
        "{% else %}{% for part in message['content'] %}"
        "{% if part['type'] == 'image' %}{{ '" + image_placeholder + "' }}"
        "{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}"
        "{% endfor %}{% endif %}"
        "{{ '<|im_end|>\n' }}"
        "{% endfor %}"
        "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
    )


def answer_completion(answer_text: str, letter: str) -> str:
    """The born defender's answer: the option's word, then its letter boxed (' right \\boxed{B}').

    Saying what it sees first and copying the matching letter second is what makes the
    lettered format learnable for a tiny model; ``is_exact_format`` only looks at the last box.
    """
    return f" {answer_text} \\boxed{{{letter}}}"


def world_corpus(n_scenes: int = 400, seed: int = 0) -> list[str]:
    """Lines covering the world's language (deterministic)."""
    lines: list[str] = []
    for regime in ("simple", "complex"):
        for s in range(n_scenes):
            scene = sample_scene(10_000_000 + seed * 100_000 + s, regime)
            for q in scene_questions(scene, s, n=4):
                lines.append(format_prompt(q))
                lines.append(answer_completion(q.answer_text, q.answer))
                lines.append(f"\\boxed{{{q.answer_text}}}")
    words = [w for vals in ATTRIBUTE_VALUES.values() for w in vals] + list(COLOR_NAMES) + list(SHAPES) + list(BG_COLORS)
    words += list(EDIT_WORDS) + ["yes", "no", "left", "right", "above", "below"]
    lines.append(" ".join(words))
    lines.append(" ".join(f"{w}=" for w in EDIT_WORDS))
    nums = [str(i) for i in range(128)]
    lines.append(" ".join(nums))
    lines.append(" ".join(f"{w}={n}" for w in EDIT_WORDS for n in nums[::7]))
    lines += [INSTRUCTION, " ".join(f"\\boxed{{{c}}}" for c in LETTERS)]
    rng = np.random.default_rng(seed)
    for _ in range(2000):  # edit-language lines: 'add red metal circle x=12 y=40 seed=3'
        lines.append(
            f"{EDIT_WORDS[int(rng.integers(8))]} {COLOR_NAMES[int(rng.integers(8))]} {SHAPES[int(rng.integers(len(SHAPES)))]}"
            f" x={int(rng.integers(128))} y={int(rng.integers(128))} seed={int(rng.integers(128))}"
        )
    return lines


def build_tokenizer(arch: str = "qwen2_5_vl", vocab_size: int = 1024):
    """Train the world tokenizer and wrap it as a ``PreTrainedTokenizerFast``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    # repeat whole words so merges always complete them into single tokens
    corpus = world_corpus()
    tok.train_from_iterator(corpus * 3, trainer=trainer)
    return wrap_tokenizer(tok, arch)


def wrap_tokenizer(tok, arch: str):
    from transformers import PreTrainedTokenizerFast

    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=BOS,
        eos_token=EOS,
        pad_token=PAD,
        unk_token=None,
        padding_side="left",
        model_max_length=4096,
        extra_special_tokens={},
    )
    fast.chat_template = chat_template(IMAGE_PLACEHOLDER[arch])
    return fast
