"""Pictures of a result: a colour overlay with a legend, a palette-indexed mask PNG."""

from __future__ import annotations

import io
import json

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .image import ImageSource, load_image
from .result import SegmentationResult

# Classes that mean "nothing in particular": left uncoloured in overlays.
UNCOLOURED = {"background", "other", "unlabelled", "void"}


def _font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: fixed bitmap font
        return ImageFont.load_default()


def colorize(result: SegmentationResult) -> np.ndarray:
    """(H, W, 3) uint8 colour image of the category mask."""
    return result.label_set.palette_lut()[result.category_mask]


def overlay(
    image: ImageSource | Image.Image,
    result: SegmentationResult,
    *,
    alpha: float = 0.55,
    legend: bool = True,
    outline: bool = True,
) -> Image.Image:
    """The image with each class painted in its colour, outlined, and a legend of classes."""
    base = load_image(image, max_pixels=None).image if not isinstance(image, Image.Image) else image
    base = base.convert("RGB")
    if base.size != result.size:
        base = base.resize(result.size, Image.Resampling.BILINEAR)
    mask = result.category_mask
    if mask is None:
        raise ValueError("overlay needs a category mask (output_category_mask=True)")
    names = result.label_set.names
    skip = [i for i, n in enumerate(names) if n.lower() in UNCOLOURED]
    colours = result.label_set.palette_lut()[mask].astype(np.float32)
    px = np.asarray(base, dtype=np.float32)
    paint = np.ones(mask.shape, dtype=bool) if not skip else ~np.isin(mask, skip)
    a = np.float32(alpha) * paint[..., None]
    blended = (px * (1 - a) + colours * a).round().astype(np.uint8)
    if outline:
        edge = _edges(mask, width=max(1, round(max(mask.shape) / 400)))
        blended[edge] = result.label_set.palette_lut()[mask[edge]]
    out = Image.fromarray(blended)
    return _with_legend(out, result) if legend else out


def _edges(mask: np.ndarray, width: int = 1) -> np.ndarray:
    """Pixels on a class boundary (either side), thickened to ``width``."""
    edge = np.zeros(mask.shape, dtype=bool)
    vertical = mask[1:] != mask[:-1]
    horizontal = mask[:, 1:] != mask[:, :-1]
    edge[1:] |= vertical
    edge[:, 1:] |= horizontal
    for _ in range(width - 1):
        grown = edge.copy()
        grown[1:] |= edge[:-1]
        grown[:-1] |= edge[1:]
        grown[:, 1:] |= edge[:, :-1]
        grown[:, :-1] |= edge[:, 1:]
        edge = grown
    return edge


def _with_legend(img: Image.Image, result: SegmentationResult) -> Image.Image:
    w, h = img.size
    fractions = result.fractions
    rows = list(fractions.items())[:24]
    fsize = max(11, min(28, round(max(w, h) / 40)))
    font = _font(fsize)
    line = int(fsize * 1.5)
    pad = fsize // 2
    texts = [f"{name}  {frac * 100:.1f}%" for name, frac in rows]
    measure = ImageDraw.Draw(img)
    text_w = max((measure.textlength(t, font=font) for t in texts), default=0)
    panel_w = int(pad * 3 + line + text_w)
    panel_h = max(h, pad * 2 + line * len(rows))
    canvas = Image.new("RGB", (w + panel_w, panel_h), (255, 255, 255))
    canvas.paste(img, (0, 0))
    draw = ImageDraw.Draw(canvas)
    for k, (name, text) in enumerate(zip((n for n, _ in rows), texts)):
        y = pad + k * line
        colour = result.label_set.color(result.label_set.index(name))
        x = w + pad
        draw.rectangle([x, y + 2, x + line - 4, y + line - 4], fill=colour, outline=(60, 60, 60))
        draw.text(
            (x + line + pad // 2, y + (line - fsize) // 2 - 1), text, fill=(20, 20, 20), font=font
        )
    return canvas


def mask_image(result: SegmentationResult) -> Image.Image:
    """Palette-indexed ('P') PNG of the category mask, in the label set's colours (VOC for VOC)."""
    mask = result.category_mask
    if mask is None:
        raise ValueError("no category mask in this result")
    if mask.dtype != np.uint8:
        if int(mask.max(initial=0)) > 255:
            return Image.fromarray(mask.astype(np.uint16))
        mask = mask.astype(np.uint8)
    img = Image.fromarray(mask, mode="L").convert("P")
    img.putpalette(result.label_set.palette_bytes())
    return img


def png_bytes(img: Image.Image, *, compress_level: int = 1) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG", compress_level=compress_level)
    return buf.getvalue()


def summary_json(result: SegmentationResult) -> str:
    return json.dumps(result.summary(), indent=2)
