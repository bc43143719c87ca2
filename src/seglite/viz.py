"""Pictures of a result: a colour overlay with a legend, a palette-indexed mask PNG."""

from __future__ import annotations

import io
import json

import numpy as np
from PIL import Image

from .image import ImageSource, load_image
from .png_stream import encode_bands
from .result import SegmentationResult

# Classes that mean "nothing in particular": left uncoloured in overlays.
UNCOLOURED = {"background", "other", "unlabelled", "void"}


def _font(size: int):
    from PIL import ImageFont  # here: masks and JSON never draw text (~4 ms of imports)

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
    width, height, bands = _overlay_bands(image, result, alpha, legend, outline)
    canvas = Image.new("RGB", (width, height))
    y = 0
    for band in bands:
        canvas.paste(Image.fromarray(band), (0, y))
        y += len(band)
    return canvas


def overlay_png(
    image: ImageSource | Image.Image,
    result: SegmentationResult,
    *,
    alpha: float = 0.55,
    legend: bool = True,
    outline: bool = True,
    compress_level: int = 1,
) -> bytes:
    """:func:`overlay` as PNG bytes, encoded band by band (png_stream): no full-size
    picture is made besides the photo, which is what bounds a service's memory per
    request (a 16 MP overlay: the photo, its mask and the PNG)."""
    width, height, bands = _overlay_bands(image, result, alpha, legend, outline)
    return encode_bands(width, height, 3, bands, level=compress_level)


def _overlay_bands(image, result: SegmentationResult, alpha: float, legend: bool, outline: bool):
    """(width, height, bands): the overlay picture as an iterator of row bands.

    Painted band by band from the photo: the working memory is a few MB at any photo
    size (a 16 MP overlay once took 52 bytes a pixel in float32)."""
    base = load_image(image, max_pixels=None).image if not isinstance(image, Image.Image) else image
    if base.mode != "RGB":  # convert() copies even when nothing changes: 64 MB at 16 MP
        base = base.convert("RGB")
    if base.size != result.size:
        base = base.resize(result.size, Image.Resampling.BILINEAR)
    mask = result.category_mask
    if mask is None:
        raise ValueError("overlay needs a category mask (output_category_mask=True)")
    names = result.label_set.names
    skip = np.array([i for i, n in enumerate(names) if n.lower() in UNCOLOURED], dtype=np.int64)
    lut = result.label_set.palette_lut()
    edge = max(1, round(max(mask.shape) / 400)) if outline else 0
    blend = _blend_table(lut, skip, round(alpha * 256))
    panel = _legend_panel(base.size, result) if legend else None
    w, h = base.size
    height = max(h, len(panel)) if panel is not None else h
    width = w + (panel.shape[1] if panel is not None else 0)

    def bands():
        for y0 in range(0, height, _BAND):
            y1 = min(y0 + _BAND, height)
            if y0 < h:
                photo = np.array(base.crop((0, y0, w, min(y1, h))))
                _paint_band(photo, mask, lut, blend, y0, min(y1, h), edge)
                if y1 > h:  # a legend taller than the photo: white below it
                    photo = np.concatenate([photo, np.full((y1 - h, w, 3), 255, np.uint8)])
            else:
                photo = np.full((y1 - y0, w, 3), 255, np.uint8)
            yield photo if panel is None else np.concatenate([photo, panel[y0:y1]], axis=1)

    return width, height, bands()


_BAND = 256  # rows blended at a time: working memory stays a few MB at any photo size


def _blend_table(lut: np.ndarray, skip: np.ndarray, a: int) -> np.ndarray:
    """Every blended value, flat: entry ``(k * 256 + v) * 3 + c`` is channel ``c`` of value
    ``v`` under class ``k``'s colour at ``a``/256, rounded; classes in ``skip`` keep ``v``.

    One lookup per byte then paints a band, instead of widening, multiplying and masking
    it (half the time of the arithmetic, the same numbers)."""
    v = np.arange(256, dtype=np.uint16)[None, :, None]
    table = ((v * (256 - a) + lut[:, None, :].astype(np.uint16) * a + 128) >> 8).astype(np.uint8)
    table[skip] = v.astype(np.uint8)
    return table.reshape(-1)


_CHANNEL = np.arange(3, dtype=np.int32)


def _paint_band(
    px: np.ndarray,
    mask: np.ndarray,
    lut: np.ndarray,
    blend: np.ndarray,
    y0: int,
    y1: int,
    width: int,
) -> None:
    """Blend ``px`` (rows y0:y1 of the photo) with the class colours through ``blend``
    (:func:`_blend_table`), in place, then draw the class outlines (computed with
    ``width`` rows of context)."""
    m = mask[y0:y1]
    index = px.astype(np.int32)
    index *= 3
    index += (m.astype(np.int32) * 768)[..., None]
    index += _CHANNEL
    np.take(blend, index, out=px, mode="clip")  # in range by construction; clip skips checks
    if width:
        top, bottom = max(0, y0 - width), min(mask.shape[0], y1 + width)
        edge = _edges(mask[top:bottom], width)[y0 - top : y0 - top + (y1 - y0)]
        px[edge] = lut[m[edge]]


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


def _legend_panel(size: tuple[int, int], result: SegmentationResult) -> np.ndarray:
    """The class legend beside a photo of ``size``: (rows, width, 3) uint8, white ground,
    at least the photo's height."""
    w, h = size
    fractions = result.fractions
    rows = list(fractions.items())[:24]
    fsize = max(11, min(28, round(max(w, h) / 40)))
    font = _font(fsize)
    line = int(fsize * 1.5)
    pad = fsize // 2
    texts = [f"{name}  {frac * 100:.1f}%" for name, frac in rows]
    from PIL import ImageDraw

    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    text_w = max((measure.textlength(t, font=font) for t in texts), default=0)
    panel_w = int(pad * 3 + line + text_w)
    panel_h = max(h, pad * 2 + line * len(rows))
    panel = Image.new("RGB", (panel_w, panel_h), (255, 255, 255))
    draw = ImageDraw.Draw(panel)
    for k, (name, text) in enumerate(zip((n for n, _ in rows), texts)):
        y = pad + k * line
        colour = result.label_set.color(result.label_set.index(name))
        x = pad
        draw.rectangle([x, y + 2, x + line - 4, y + line - 4], fill=colour, outline=(60, 60, 60))
        draw.text(
            (x + line + pad // 2, y + (line - fsize) // 2 - 1), text, fill=(20, 20, 20), font=font
        )
    return np.asarray(panel)


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
