"""The one bilinear convention: half-pixel centres, edges clamped (align_corners=False).

It is what TFLite's RESIZE_BILINEAR (half_pixel_centers), XNNPACK, OpenCV, Pillow's
upscaling and PyTorch's ``interpolate(align_corners=False)`` compute. The model-input
squash inside the graph (runtime/image_input.py), its numpy twin for other runtimes
(:func:`squash`), the score upsampling (category.py, probabilities.py) and the accurate
mode's score maps (tiling.py) all sample with these tables, so every path puts a pixel at
the same place. The align-corners tables are those of the DeepLab models' own last op,
which the LiteRT backend may cut from the graph (coarse.py works through it).
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


@lru_cache(maxsize=64)
def align_corners_axis(n_in: int, factor: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The same tables for align-corners upsampling by a whole ``factor`` (the last op of
    the DeepLab TFLite models): output i sits at input i / factor, corners on corners."""
    n_out = (n_in - 1) * factor + 1
    i0 = np.minimum(np.arange(n_out) // factor, max(n_in - 2, 0))
    i1 = np.minimum(i0 + 1, n_in - 1)
    w1 = ((np.arange(n_out) - i0 * factor) / factor).astype(np.float32)
    return i0, i1, w1


def resize_hwc(x: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(h, w, C) -> (out_h, out_w, C) float32 for ``size`` = (width, height); no antialiasing.

    Returns ``x`` itself when it already has that size.
    """
    h, w = x.shape[:2]
    out_w, out_h = size
    if (h, w) == (out_h, out_w):
        return x
    return resample(x, axis(h, out_h), axis(w, out_w))


def resize_hwc_rows(x: np.ndarray, size: tuple[int, int], start: int, stop: int) -> np.ndarray:
    """Output rows ``start:stop`` of ``resize_hwc(x, size)``, computed alone: a large
    result can be made a band at a time."""
    h, w = x.shape[:2]
    out_w, out_h = size
    y0, y1, wy = axis(h, out_h)
    return resample(x, (y0[start:stop], y1[start:stop], wy[start:stop]), axis(w, out_w))


def upsample_align_corners(x: np.ndarray, factor: tuple[int, int]) -> np.ndarray:
    """(h, w, C) -> ((h-1) * fy + 1, (w-1) * fx + 1, C) float32: what a model's cut final
    RESIZE_BILINEAR(align_corners=True) would have returned (runtime/final_resize.py)."""
    return resample(x, align_corners_axis(x.shape[0], factor[0]),
                     align_corners_axis(x.shape[1], factor[1]))  # fmt: skip


def resample(x: np.ndarray, rows_table, cols_table) -> np.ndarray:
    """Separable bilinear with (i0, i1, w1) tables, written as a + t * (b - a) with in-place
    steps: score maps are large (H x W x classes)."""
    y0, y1, wy = rows_table
    x0, x1, wx = cols_table
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
