"""Labelled contact sheets (grids of images with captions)."""

from __future__ import annotations

import textwrap

import numpy as np
from PIL import Image, ImageDraw, ImageFont


def contact_sheet(images: list[np.ndarray], captions: list[str], cols: int = 4, scale: int = 2, caption_lines: int = 3, width_chars: int = 30) -> np.ndarray:
    """Grid of images (each upscaled ``scale`` x, nearest) with a caption under each; RGB uint8."""
    if not images:
        raise ValueError("contact_sheet: no images")
    font = ImageFont.load_default()
    cw = max(i.shape[1] for i in images) * scale
    ch = max(i.shape[0] for i in images) * scale
    line_h = 11
    cap_h = caption_lines * line_h + 4
    cw = max(cw, width_chars * 6 + 4)
    rows = (len(images) + cols - 1) // cols
    sheet = Image.new("RGB", (cols * (cw + 6) + 6, rows * (ch + cap_h + 6) + 6), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for k, (img, cap) in enumerate(zip(images, captions)):
        r, c = divmod(k, cols)
        x, y = 6 + c * (cw + 6), 6 + r * (ch + cap_h + 6)
        im = Image.fromarray(img).resize((img.shape[1] * scale, img.shape[0] * scale), Image.NEAREST)
        sheet.paste(im, (x, y))
        lines = textwrap.wrap(cap, width_chars)[:caption_lines]
        for j, line in enumerate(lines):
            draw.text((x, y + img.shape[0] * scale + 2 + j * line_h), line, fill=(0, 0, 0), font=font)
    return np.asarray(sheet)
