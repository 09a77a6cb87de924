"""The defender: a vision-language model plus its processor, with batched generation.

``Defender.generate`` is the hot path of the whole system (evaluation and reward scoring):
left padding, ``torch.inference_mode``, one ``model.generate`` call per chunk of
``batch_size`` prompts. Sampling ``k > 1`` completions per prompt shares one prefill
(``Defender.generate_ids``): the prompt (image encoder included) runs once per prompt and its
KV cache is repeated ``k`` times, where ``num_return_sequences=k`` prefills ``k`` copies.
``load_defender(name_or_path)`` accepts ``"base"`` (the shipped born defender), a built-in
tiny name (random init), a local directory or a Hugging Face id (offline when
``HF_HUB_OFFLINE=1``). A Hugging Face id is resolved to its snapshot directory first, so it
loads the same files as a local path. A processor that cannot take images is an error: the
model would otherwise answer without seeing the image.

``Defender.save`` of an ``aot_vlm`` model writes the model's code (``aot_vlm.py``), the
``auto_map`` and ``processor_config.json`` too, so plain ``transformers`` loads it without
``aot`` (``trust_remote_code=True``; the README's "Publishing a trained defender").
"""

from __future__ import annotations

import inspect
import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from ..vqa import LETTERS, Question
from .prompt import extract_choice, format_prompt, is_exact_format
from .aot_vlm import AotVlmProcessor
from .registry import TINY_MODELS, build_processor, build_tiny
from .tokenizer import answer_completion

ASSET_DIR = Path(__file__).resolve().parent.parent / "assets" / "defender"
"""The shipped born defender (``load_defender("base")``)."""
META_FILE = "aot_defender.json"
"""Written beside the weights: the architecture, so the processor can be rebuilt part by part."""

ImageLike = np.ndarray | Image.Image

PER_TOKEN_KEYS = ("input_ids", "attention_mask", "mm_token_type_ids", "token_type_ids")
"""Processor outputs laid out per prompt token (sliced with the prompt for the shared prefill)."""


def conversation(prompt: str) -> list[dict[str, Any]]:
    """TRL's conversational prompt: one user turn with an image part, then the text."""
    return [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": prompt}]}]


def question_conversation(question: Question) -> list[dict[str, Any]]:
    """``conversation(format_prompt(question))``: the ``prompt`` column for TRL."""
    return conversation(format_prompt(question))


def to_pil(image: ImageLike) -> Image.Image:
    if isinstance(image, Image.Image):
        return image.convert("RGB")
    arr = np.asarray(image)
    if arr.dtype != np.uint8:
        arr = np.clip(arr, 0, 255).astype(np.uint8)
    return Image.fromarray(arr, "RGB")


class Defender:
    """A vision-language model and its processor."""

    def __init__(self, model, processor, arch: str | None = None):
        self.model = model
        self.processor = processor
        self.arch = arch or getattr(model.config, "model_type", None)
        tok = self.tokenizer
        tok.padding_side = "left"
        if tok.pad_token_id is None:
            tok.pad_token = tok.eos_token

    @property
    def tokenizer(self):
        return getattr(self.processor, "tokenizer", self.processor)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def chat_text(self, prompt: str) -> str:
        """The full prompt string (chat template, generation prompt opened)."""
        return self.processor.apply_chat_template(conversation(prompt), add_generation_prompt=True, tokenize=False)

    def inputs(self, images: Sequence[ImageLike], prompts: Sequence[str]) -> dict[str, torch.Tensor]:
        """Processor outputs for a batch (left padded), on the model's device."""
        texts = [self.chat_text(p) for p in prompts]
        batch = self.processor(images=[to_pil(im) for im in images], text=texts, padding=True, return_tensors="pt")
        return {k: v.to(self.device) for k, v in batch.items()}

    @torch.inference_mode()
    def generate(
        self,
        images: Sequence[ImageLike],
        prompts: Sequence[str],
        num_return_sequences: int = 1,
        do_sample: bool = False,
        temperature: float = 1.0,
        max_new_tokens: int = 16,
        batch_size: int = 64,
        seed: int | None = None,
        shared_prefill: bool = True,
        logits_processor: Any = None,
    ) -> list[list[str]]:
        """Completions: one list of ``num_return_sequences`` strings per (image, prompt).

        Sampled with ``num_return_sequences > 1``, the samples of a prompt share one prefill
        (``generate_ids``); ``shared_prefill=False`` keeps the plain ``num_return_sequences``
        path (same distribution; for a fixed seed the draws may differ; for benchmarks).
        ``logits_processor``: a ``transformers`` logits processor (or a list of them) applied at
        every decoding step, e.g. the attacker's edit-language constraint."""
        if len(images) != len(prompts):
            raise ValueError(f"generate: {len(images)} images but {len(prompts)} prompts")
        if seed is not None:
            torch.manual_seed(seed)
        was_training = self.model.training
        self.model.eval()
        k = num_return_sequences if do_sample else 1
        tok = self.tokenizer
        out: list[list[str]] = []
        try:
            for i in range(0, len(prompts), batch_size):
                batch = self.inputs(images[i : i + batch_size], prompts[i : i + batch_size])
                gen_kwargs: dict[str, Any] = dict(
                    max_new_tokens=max_new_tokens,
                    do_sample=do_sample,
                    pad_token_id=tok.pad_token_id,
                    eos_token_id=tok.eos_token_id,
                )
                if do_sample:
                    gen_kwargs |= dict(temperature=temperature, top_k=0, top_p=1.0)
                if logits_processor is not None:
                    gen_kwargs["logits_processor"] = processor_list(logits_processor)
                seqs = self.generate_ids(batch, k, shared_prefill=shared_prefill, **gen_kwargs)
                texts = tok.batch_decode(seqs[:, batch["input_ids"].shape[1] :], skip_special_tokens=True)
                for j in range(len(texts) // k):
                    group = texts[j * k : (j + 1) * k]
                    out.append(group if do_sample else group * num_return_sequences)
        finally:
            self.model.train(was_training)
        return out

    @torch.inference_mode()
    def generate_ids(self, batch: dict[str, torch.Tensor], num_return_sequences: int = 1, shared_prefill: bool = True, **gen_kwargs: Any):
        """``model.generate`` on one processed batch (``inputs``), ``num_return_sequences`` rows per
        prompt: rows ``j*k .. j*k+k-1`` belong to prompt ``j`` (``model.generate``'s layout).

        With ``k > 1`` and ``shared_prefill`` the prompt is encoded once: one forward over all
        but its last token (image encoder included), with the position ids ``generate`` would
        build (Qwen2.5-VL's M-RoPE ids included); the KV cache, attention mask and position ids
        are repeated ``k`` times and ``generate`` continues from the cache, feeding only the last
        prompt token before sampling. Each row's tokens are drawn from the same distribution as
        with ``num_return_sequences=k`` (a fixed seed may give other draws). Greedy decoding
        (``k == 1``) and models the shared path does not fit keep the plain call."""
        k = num_return_sequences
        if k > 1 and shared_prefill and self._can_share_prefill(batch):
            return self._generate_shared(batch, k, **gen_kwargs)
        return self.model.generate(**batch, num_return_sequences=k, **gen_kwargs)

    def _can_share_prefill(self, batch: dict[str, torch.Tensor]) -> bool:
        """The shared prefill needs a position-id aware forward, a cache, and a prompt whose
        last token is plain text (the image placeholders all fall in the prefilled part)."""
        model = self.model
        params = inspect.signature(model.forward).parameters
        if "position_ids" not in params or not hasattr(model, "_prepare_position_ids_for_generation"):
            return False
        if batch["input_ids"].shape[1] < 2 or "inputs_embeds" in batch:
            return False
        last = batch["input_ids"][:, -1]
        for key in ("image_token_id", "video_token_id"):
            tid = getattr(model.config, key, None)
            if tid is not None and bool((last == tid).any()):
                return False
        if "mm_token_type_ids" in batch and bool(batch["mm_token_type_ids"][:, -1].any()):
            return False
        return True

    def _generate_shared(self, batch: dict[str, torch.Tensor], k: int, **gen_kwargs: Any):
        model = self.model
        ids, mask = batch["input_ids"], batch["attention_mask"]
        # The position ids generate builds for the full prompt: cumulative over the mask
        # (left padding), Qwen2.5-VL: (4, B, L) text + 3D M-RoPE ids.
        position_ids = model._prepare_position_ids_for_generation(ids, {key: v for key, v in batch.items() if key != "input_ids"})
        head = {key: (v[:, :-1] if key in PER_TOKEN_KEYS else v) for key, v in batch.items()}
        fwd: dict[str, Any] = dict(head, position_ids=position_ids[..., :-1], use_cache=True, return_dict=True)
        if "logits_to_keep" in inspect.signature(model.forward).parameters:
            fwd["logits_to_keep"] = 1
        cache = getattr(model(**fwd), "cache", None)
        if cache is None:  # a model that returns no cache: the plain path
            return model.generate(**batch, num_return_sequences=k, **gen_kwargs)
        cache.batch_repeat_interleave(k)
        rep_ids, rep_mask = ids.repeat_interleave(k, dim=0), mask.repeat_interleave(k, dim=0)
        rep_pos = position_ids.repeat_interleave(k, dim=1 if position_ids.ndim == 3 else 0)
        return model.generate(input_ids=rep_ids, attention_mask=rep_mask, position_ids=rep_pos, cache=cache, num_return_sequences=1, **gen_kwargs)

    def answer(self, images: Sequence[ImageLike], questions: Sequence[Question], **kwargs: Any) -> list[list[str | None]]:
        """Extracted letters (None when unreadable) per question, one per returned sequence."""
        comps = self.generate(images, [format_prompt(q) for q in questions], **kwargs)
        return [[extract_choice(c, q.options) for c in cs] for cs, q in zip(comps, questions)]

    def score(self, images: Sequence[ImageLike], questions: Sequence[Question], **kwargs: Any) -> dict[str, Any]:
        """Greedy (or sampled) completions with per-item correctness and exact-format flags."""
        comps = self.generate(images, [format_prompt(q) for q in questions], **kwargs)
        correct = [[extract_choice(c, q.options) == q.answer for c in cs] for cs, q in zip(comps, questions)]
        exact = [[is_exact_format(c) for c in cs] for cs in comps]
        return {"completions": comps, "correct": correct, "exact": exact}

    @torch.inference_mode()
    def option_probs(self, images: Sequence[ImageLike], questions: Sequence[Question], completion=None, batch_size: int = 64) -> list[np.ndarray]:
        """How much the model believes each option, read off its logits (no sampling).

        For question ``q`` with options ``o_1..o_m``, ``completion(o_i, letter_i)`` is the answer
        the model would write for option ``i`` (default: the born defender's
        ``' right \\boxed{B}'``, :func:`aot.models.tokenizer.answer_completion`). Returns, per
        question, ``softmax_i(log p(completion_i | image, prompt))``: shape ``(m,)``, summing
        to 1. One teacher-forced forward per (question, option) row, ``batch_size`` rows at a
        time. It is the noise-free counterpart of sampling the model and counting answers,
        exact when the model only ever writes these completions (as the born defender does)."""
        if len(images) != len(questions):
            raise ValueError(f"option_probs: {len(images)} images but {len(questions)} questions")
        completion = completion or answer_completion
        tok = self.tokenizer
        rows = [(i, j) for i, q in enumerate(questions) for j in range(len(q.options))]
        logp = np.zeros(len(rows))
        was_training = self.model.training
        self.model.eval()
        try:
            for s in range(0, len(rows), batch_size):
                chunk = rows[s : s + batch_size]
                conts = [completion(questions[i].options[j], LETTERS[j]) for i, j in chunk]
                cont_ids = [tok(c, add_special_tokens=False)["input_ids"] for c in conts]
                texts = [self.chat_text(format_prompt(questions[i])) + c for (i, _), c in zip(chunk, conts)]
                batch = self.processor(images=[to_pil(images[i]) for i, _ in chunk], text=texts, padding=True, return_tensors="pt")
                batch = {k: v.to(self.device) for k, v in batch.items()}
                ids = batch["input_ids"]  # (R, L), left padded: each completion ends its row
                logits = self.model(**batch).logits  # (R, L, V)
                lp = torch.log_softmax(logits[:, :-1].float(), dim=-1).gather(-1, ids[:, 1:, None])[..., 0]  # (R, L-1): log p(token t+1)
                for r, c in enumerate(cont_ids):
                    n = len(c)
                    if ids[r, -n:].tolist() != c:
                        raise ValueError(f"option_probs: the completion {conts[r]!r} does not tokenize the same after the prompt; pass a completion= that does")
                    logp[s + r] = float(lp[r, -n:].sum())
        finally:
            self.model.train(was_training)
        out, k = [], 0
        for q in questions:
            m = len(q.options)
            z = logp[k : k + m]
            p = np.exp(z - z.max())
            out.append(p / p.sum())
            k += m
        return out

    # --- persistence -----------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> Path:
        """``save_pretrained`` (safetensors) of model, tokenizer and image processor, atomically."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=path.name + ".tmp", dir=path.parent))
        try:
            self.model.save_pretrained(tmp, safe_serialization=True)
            save_processor(self.processor, tmp, self.arch)
            if path.exists():
                shutil.rmtree(path)
            os.replace(tmp, path)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        return path


def processor_list(processors: Any):
    """A ``LogitsProcessorList`` from one processor, a list of them, or a list already."""
    from transformers import LogitsProcessorList

    if isinstance(processors, LogitsProcessorList):
        return processors
    return LogitsProcessorList(processors if isinstance(processors, (list, tuple)) else [processors])


def save_processor(processor, path: str | os.PathLike, arch: str | None) -> None:
    """Tokenizer and image processor saved separately (``Qwen2VLProcessor.save_pretrained``
    fails without a video processor), plus the processor's own settings. ``AotVlmProcessor``
    saves whole as well (``processor_config.json`` and its code file), for ``AutoProcessor``."""
    path = Path(path)
    if isinstance(processor, AotVlmProcessor):
        processor.save_pretrained(path)  # tokenizer, chat template, processor_config.json, aot_vlm.py
    else:
        processor.tokenizer.save_pretrained(path)
    processor.image_processor.save_pretrained(path)  # preprocessor_config.json, for load_processor
    meta = {"arch": arch, "image_processor_class": type(processor.image_processor).__name__}
    for key in ("patch_size", "num_additional_image_tokens", "vision_feature_select_strategy", "image_seq_len"):
        if hasattr(processor, key):
            meta[key] = getattr(processor, key)
    (path / META_FILE).write_text(json.dumps(meta, indent=1))


def load_processor(path: str | os.PathLike):
    """Rebuild a processor saved by ``save_processor``."""
    import transformers
    from transformers import AutoTokenizer

    path = Path(path)
    meta = json.loads((path / META_FILE).read_text())
    tok = AutoTokenizer.from_pretrained(path)
    tok.padding_side = "left"
    ip_cls = getattr(transformers, meta["image_processor_class"], None)
    if ip_cls is None:  # PIL image processors are not all exported at top level
        from transformers.models.auto import image_processing_auto as ipa

        ip_cls = ipa.get_image_processor_class_from_name(meta["image_processor_class"])
    ip = ip_cls.from_pretrained(path)
    arch = meta["arch"]
    proc = build_processor(arch, tok, ip, None) if arch != "llava" else None
    if arch == "llava":
        from transformers import LlavaProcessor

        proc = LlavaProcessor(
            image_processor=ip, tokenizer=tok, patch_size=meta["patch_size"],
            vision_feature_select_strategy=meta.get("vision_feature_select_strategy", "default"),
            num_additional_image_tokens=meta.get("num_additional_image_tokens", 1), chat_template=tok.chat_template,
        )
    elif arch == "idefics3":
        from transformers import Idefics3Processor

        proc = Idefics3Processor(image_processor=ip, tokenizer=tok, image_seq_len=meta["image_seq_len"], chat_template=tok.chat_template)
    return proc


def model_dir(name: str) -> Path:
    """A local directory as it is; a Hugging Face id as its snapshot directory (fetched, or read
    from the local cache under ``HF_HUB_OFFLINE=1``), so that both load the same files, the
    project's ``aot_defender.json`` included."""
    path = Path(name).expanduser()
    if path.is_dir():
        return path
    if path.exists() or name.startswith((".", "/", "~")) or name.count("/") > 1:
        raise FileNotFoundError(f"{name}: no such model directory")
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(name))
    except (OSError, ValueError) as e:
        from huggingface_hub.constants import is_offline_mode

        offline = " (offline mode: only the local Hugging Face cache is read)" if is_offline_mode() else ""
        raise FileNotFoundError(f"{name!r} is neither a model directory nor a Hugging Face model id that could be fetched{offline}: {e}") from e


def load_defender(name_or_path: str | os.PathLike = "base", dtype: torch.dtype = torch.float32) -> Defender:
    """``"base"``: the shipped born defender; a tiny registry name: random init; a directory
    saved by ``Defender.save``; or any Hugging Face image-text-to-text model id or path.

    Raises ``ValueError`` when the processor found beside the model cannot take images (a bare
    tokenizer): the model would then answer every question without its image."""
    from transformers import AutoModelForImageTextToText, AutoProcessor

    name = str(name_or_path)
    if name == "base":
        if not (ASSET_DIR / "config.json").exists():
            raise FileNotFoundError(f"the born defender is not shipped at {ASSET_DIR}; run `aot pretrain --out {ASSET_DIR}`")
        name = str(ASSET_DIR)
    if name in TINY_MODELS:
        model, proc = build_tiny(name)
        return Defender(model, proc, TINY_MODELS[name].arch)
    path = model_dir(name)
    fix = (
        "Save a full processor beside the weights (processor.save_pretrained: processor_config.json or "
        f"preprocessor_config.json with the tokenizer), or use Defender.save, which also writes {META_FILE}."
    )
    if (path / META_FILE).exists():
        proc = load_processor(path)
        arch = json.loads((path / META_FILE).read_text())["arch"]
    else:
        from .registry import _allow_none_processor_args

        _allow_none_processor_args()
        try:
            proc = AutoProcessor.from_pretrained(path)
        except (OSError, ValueError) as e:
            raise ValueError(f"{name}: no processor that can take images was found beside the model ({type(e).__name__}: {e}). {fix}") from e
        arch = None
    if getattr(proc, "image_processor", None) is None:
        raise ValueError(
            f"{name}: the processor saved with this model is a {type(proc).__name__}, which cannot take images, so the "
            f"model would answer without seeing them. {fix}"
        )
    model = AutoModelForImageTextToText.from_pretrained(path, dtype=dtype)
    model.eval()
    return Defender(model, proc, arch or model.config.model_type)
