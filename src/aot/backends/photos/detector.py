"""An open-vocabulary detector for the photo judge: where does a phrase appear in a photo?

:class:`OwlDetector` wraps ``transformers``' ``OwlViTForObjectDetection`` or
``Owlv2ForObjectDetection``, chosen by class name, loaded from a local folder
(``from_pretrained(path, local_files_only=True)``) or built tiny with random weights
(``path="tiny"``) for tests and CPU runs. Anything with a ``detect(image, phrases)`` method
returning :class:`Detection` lists can stand in for it (:class:`Detector`).

Boxes come back in the photo's pixels. The post-processing is written here rather than taken
from the image processor: each predicted box is scored against every phrase (sigmoid of the
class logit) and kept once per phrase whose score reaches ``threshold``. OWL-ViT's processor
squashes the photo to a square, so its normalised boxes scale by (width, height); OWLv2's pads
the photo to a square at the bottom and right first, so its boxes scale by the longer side.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, Sequence

import numpy as np

from ...vqa import Box

OWL_CLASSES: tuple[str, ...] = ("OwlViTForObjectDetection", "Owlv2ForObjectDetection")
"""Detector classes of ``transformers`` this wrapper knows how to feed and read."""


@dataclass(frozen=True)
class Detection:
    phrase: str
    box: Box
    """(x0, y0, x1, y1) in the photo's pixels, x1/y1 exclusive."""
    score: float


class Detector(Protocol):
    def detect(self, image: np.ndarray, phrases: Sequence[str]) -> list[Detection]: ...


def tiny_owl(cls_name: str, seed: int = 0, image_size: int = 64) -> tuple[Any, Any, Any]:
    """(model, tokenizer, image processor) of a random-weight OWL detector: 1-layer towers of
    width 32, ``image_size`` px input, 16-px patches, a character-level CLIP tokenizer."""
    import torch
    import transformers

    from ...editors.tiny import clip_tokenizer

    tok = clip_tokenizer(16)
    v2 = cls_name == "Owlv2ForObjectDetection"
    config_cls = transformers.Owlv2Config if v2 else transformers.OwlViTConfig
    config = config_cls(
        text_config=dict(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                         max_position_embeddings=16, bos_token_id=0, eos_token_id=1, pad_token_id=1),
        vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                           image_size=image_size, patch_size=16),
        projection_dim=32,
    )
    torch.manual_seed(seed)
    model = getattr(transformers, cls_name)(config).eval()
    size = {"height": image_size, "width": image_size}
    if v2:
        processor = transformers.Owlv2ImageProcessorPil(size=size)
    else:
        processor = transformers.OwlViTImageProcessorPil(size=size, crop_size=size)
    return model, tok, processor


class OwlDetector:
    """An OWL-ViT / OWLv2 detector by class name and path (see the module doc)."""

    def __init__(self, cls_name: str = "OwlViTForObjectDetection", path: str = "tiny", threshold: float = 0.1,
                 device: str = "cpu", tiny_seed: int = 0, max_text_tokens: int = 16):
        if cls_name not in OWL_CLASSES:
            raise ValueError(f"detector class must be one of {', '.join(OWL_CLASSES)}, got {cls_name!r}")
        self.cls_name, self.threshold, self.device, self.max_text_tokens = cls_name, threshold, device, max_text_tokens
        if path == "tiny":
            self.model, self.tokenizer, self.image_processor = tiny_owl(cls_name, tiny_seed)
        else:
            import transformers

            self.model = getattr(transformers, cls_name).from_pretrained(path, local_files_only=True).eval()
            proc = transformers.AutoProcessor.from_pretrained(path, local_files_only=True)
            self.tokenizer, self.image_processor = proc.tokenizer, proc.image_processor
            self.max_text_tokens = int(getattr(self.model.config.text_config, "max_position_embeddings", max_text_tokens))
        self.model.to(device)

    def detect(self, image: np.ndarray, phrases: Sequence[str]) -> list[Detection]:
        """Every (box, phrase) whose score reaches the threshold, highest score first."""
        import torch
        from PIL import Image

        phrases = list(dict.fromkeys(phrases))  # each phrase once, in order
        if not phrases:
            return []
        h, w = image.shape[:2]
        text = self.tokenizer(phrases, padding="max_length", truncation=True, max_length=self.max_text_tokens, return_tensors="pt")
        pixels = self.image_processor(images=[Image.fromarray(image)], return_tensors="pt")["pixel_values"]
        with torch.no_grad():
            out = self.model(input_ids=text["input_ids"].to(self.device), attention_mask=text["attention_mask"].to(self.device),
                             pixel_values=pixels.to(self.device))
        scores = torch.sigmoid(out.logits[0]).float().cpu().numpy()  # (boxes, phrases)
        cxcywh = out.pred_boxes[0].float().cpu().numpy()  # (boxes, 4), normalised
        sx, sy = (max(w, h), max(w, h)) if self.cls_name == "Owlv2ForObjectDetection" else (w, h)
        found = []
        for b, (cx, cy, bw, bh) in enumerate(cxcywh):
            box = (int(np.floor(max(0.0, (cx - bw / 2) * sx))), int(np.floor(max(0.0, (cy - bh / 2) * sy))),
                   int(np.ceil(min(float(w), (cx + bw / 2) * sx))), int(np.ceil(min(float(h), (cy + bh / 2) * sy))))
            if box[0] >= box[2] or box[1] >= box[3]:
                continue
            for p, phrase in enumerate(phrases):
                if scores[b, p] >= self.threshold:
                    found.append(Detection(phrase, box, float(scores[b, p])))
        return sorted(found, key=lambda d: -d.score)
