"""The one bilinear convention: half-pixel centres, edges clamped (align_corners=False).

It is what TFLite's RESIZE_BILINEAR (half_pixel_centers), XNNPACK, OpenCV, Pillow's
upscaling and PyTorch's ``interpolate(align_corners=False)`` compute. The model-input
squash inside the graph (runtime/image_input.py), its numpy twin for other runtimes,
the score upsampling (upsample.py) and the accurate mode's score maps (tiling.py) all
sample with these tables, so every path puts a pixel at the same place.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np


@lru_cache(maxsize=64)
def axis(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Source indices (i0, i1) and the weight of i1 for each output coordinate."""
    src = (np.arange(n_out, dtype=np.float64) + 0.5) * (n_in / n_out) - 0.5
    src = np.clip(src, 0, n_in - 1)
    i0 = np.floor(src).astype(np.intp)
    i1 = np.minimum(i0 + 1, n_in - 1)
    w1 = (src - i0).astype(np.float32)
    return i0, i1, w1


def resize_hwc(x: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(h, w, C) -> (out_h, out_w, C) float32 for ``size`` = (width, height); no antialiasing.

    Written as a + t * (b - a) with in-place steps: score maps are large (H x W x classes).
    Returns ``x`` itself when it already has that size.
    """
    h, w = x.shape[:2]
    out_w, out_h = size
    if (h, w) == (out_h, out_w):
        return x
    y0, y1, wy = axis(h, out_h)
    x0, x1, wx = axis(w, out_w)
    rows = x.take(y0, axis=0).astype(np.float32, copy=False)
    step = x.take(y1, axis=0).astype(np.float32, copy=False)
    step -= rows
    step *= wy[:, None, None]
    rows += step
    out = rows.take(x0, axis=1)
    step = rows.take(x1, axis=1)
    step -= out
    step *= wx[None, :, None]
    out += step
    return out


def squash(pixels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """uint8 (N, h, w, 3) images -> float32 (N, H, W, 3) at ``size`` = (height, width).

    The numpy twin of the graph's input squash, for runtimes without one.
    """
    h, w = size
    if pixels.shape[1:3] == (h, w):
        return pixels.astype(np.float32)
    return np.stack([resize_hwc(p, (w, h)) for p in pixels])
