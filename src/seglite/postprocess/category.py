"""The category mask at any size: argmax of the bilinearly upsampled scores, exactly, fast.

The category mask is the argmax of the *bilinearly upsampled scores* (sharper than
upsampling the argmax). Doing that for every pixel and every class is about six
times the cost of the model itself. But where the four low-resolution neighbours
of an output pixel share one argmax, the interpolated scores (a convex combination)
have that same argmax, so only pixels near a class boundary need the full
computation (boundary.py). The result is exactly the full computation's, at a fraction
of its cost.

Coordinates follow bilinear.py's convention (half-pixel centres).
"""

from __future__ import annotations

import numpy as np

from .argmax import argmax_scores
from .bilinear import axis
from .boundary import boundary_pixels, lerp, lerp_cells, uniform_cells


def cells_pay_off(pixels: int, cells: int, classes: int) -> bool:
    """Whether reading each cell's corners once and cutting them to candidate classes beats
    gathering every class of four corners per pixel: it takes enough output pixels per
    boundary cell. Measured crossovers: about 12 pixels a cell with 21 classes, 4 with 151."""
    return pixels >= cells * max(4.0, 250.0 / classes)


def upsample_category(
    scores: np.ndarray, size: tuple[int, int], low: np.ndarray | None = None
) -> np.ndarray:
    """Category mask (out_h, out_w) = argmax of the bilinear upsampling of (h, w, C) scores.

    ``size`` is (width, height) of the output; ``low`` is the argmax of ``scores`` if the
    caller already has it.
    """
    h, w, c = scores.shape
    out_w, out_h = size
    if low is None:
        low = argmax_scores(scores)
    if (h, w) == (out_h, out_w):
        return low
    y0, y1, wy = axis(h, out_h)
    x0, x1, wx = axis(w, out_w)
    mask = low.take(x0, axis=1).take(y0, axis=0)  # gather on the short side first
    ys, xs, ci, cj, cell = boundary_pixels(uniform_cells(low), out_h, out_w)
    if not ys.size:
        return mask
    tx, ty = wx[xs][:, None], wy[ys][:, None]
    if cells_pay_off(ys.size, ci.size, c):
        mask[ys, xs] = lerp_cells(scores, low, ci, cj, cell, tx, ty)
        return mask
    flat = scores.reshape(h * w, c)
    r0, r1, c0, c1 = y0[ys] * w, y1[ys] * w, x0[xs], x1[xs]
    top = flat.take(r0 + c0, axis=0).astype(np.float32, copy=False)
    bottom = flat.take(r1 + c0, axis=0).astype(np.float32, copy=False)
    top_step = flat.take(r0 + c1, axis=0).astype(np.float32, copy=False) - top
    bottom_step = flat.take(r1 + c1, axis=0).astype(np.float32, copy=False) - bottom
    mask[ys, xs] = lerp(top, top_step, bottom, bottom_step, tx, ty)
    return mask
