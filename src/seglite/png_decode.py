"""8-bit RGB PNGs decoded by libspng (through pyspng) where it is installed.

libspng inflates and unfilters a CamVid frame (480x360) in half of Pillow's time (2.4 vs
4.8 ms measured here, the same pixels), and in a folder run of PNGs decoding is the
largest cost beside the model's invoke. Only the plain case takes this path: a file that
Pillow's header names 8-bit RGB, with no EXIF chunk that could turn the picture. Anything
else (16-bit, palette, grey, alpha), and any file libspng refuses, goes through Pillow,
which also names whatever is wrong with it: the two decoders never disagree on pixels,
only one of them is faster.
"""

from __future__ import annotations

import functools

import numpy as np
from PIL import Image


@functools.cache
def _spng():
    try:
        import pyspng
    except ImportError:  # optional: Pillow decodes every PNG too
        return None
    return pyspng


def decode_rgb8(data: bytes, size: tuple[int, int]) -> Image.Image | None:
    """The RGB picture of an 8-bit RGB PNG of ``size`` (width, height), or None where
    Pillow should decode it (libspng missing or refusing, any other pixel layout)."""
    spng = _spng()
    if spng is None or b"eXIf" in data:
        return None
    try:
        pixels = spng.load(data)
    except Exception:  # corrupt or truncated: Pillow decodes it and names the problem
        return None
    w, h = size
    if pixels.dtype != np.uint8 or pixels.shape != (h, w, 3):
        return None
    return Image.fromarray(pixels)
