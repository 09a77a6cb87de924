"""Models: registry of tiny configs, HF loading, tokenizer, prompt format and answer extraction."""

from .aot_vlm import register as _register_aot_vlm

_register_aot_vlm()  # AutoConfig / AutoModelForImageTextToText know "aot_vlm" once aot.models is imported

from .defender import ASSET_DIR, Defender, conversation, load_defender, question_conversation
from .prompt import extract_choice, format_prompt, is_exact_format, last_boxed
from .registry import DEFAULT_TINY, TINY_MODELS, TinySpec, build_tiny
from .tokenizer import answer_completion, build_tokenizer

__all__ = [
    "ASSET_DIR", "DEFAULT_TINY", "Defender", "TINY_MODELS", "TinySpec", "answer_completion", "build_tiny",
    "build_tokenizer", "conversation", "extract_choice", "format_prompt", "is_exact_format", "last_boxed",
    "load_defender", "question_conversation",
]
