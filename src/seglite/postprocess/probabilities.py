"""Class probabilities: the one softmax, confidence planes at the photo's size, and the
budgeted single-class path (a reduced grid for all classes, one class to full size)."""

from __future__ import annotations

import math

import numpy as np

from .bilinear import axis as bilinear_axis
from .bilinear import resize_hwc_rows


def softmax(scores: np.ndarray, axis: int = -1, *, inplace: bool = False) -> np.ndarray:
    """exp(s - max) / sum over ``axis``; ``inplace`` overwrites float ``scores`` instead of
    allocating (same arithmetic, same bits)."""
    if not inplace:
        e = np.exp(scores - scores.max(axis=axis, keepdims=True))
        e /= e.sum(axis=axis, keepdims=True)
        return e
    scores -= scores.max(axis=axis, keepdims=True)
    np.exp(scores, out=scores)
    scores /= scores.sum(axis=axis, keepdims=True)
    return scores


def upsample_bilinear(planes: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of (C, h, w) float planes to (C, out_h, out_w) for ``size`` =
    (width, height), in bilinear.py's convention."""
    c, h, w = planes.shape
    out_w, out_h = size
    if (h, w) == (out_h, out_w):
        return planes.astype(np.float32, copy=False)
    y0, y1, wy = bilinear_axis(h, out_h)
    x0, x1, wx = bilinear_axis(w, out_w)
    rows = planes[:, y0, :] * (1 - wy)[None, :, None] + planes[:, y1, :] * wy[None, :, None]
    out = rows[:, :, x0] * (1 - wx)[None, None, :]
    out += rows[:, :, x1] * wx[None, None, :]
    return out.astype(np.float32, copy=False)


def confidence_planes(
    scores: np.ndarray, size: tuple[int, int], probabilities: bool = False
) -> np.ndarray:
    """(C, out_h, out_w) float32 probabilities at ``size`` from (h, w, C) scores (logits,
    softmax-ed here; or already ``probabilities``)."""
    probs = scores if probabilities else softmax(scores.astype(np.float32), axis=-1)
    return upsample_bilinear(np.ascontiguousarray(probs.transpose(2, 0, 1)), size)


def probability_pixels(model_hw: tuple[int, int], num_classes: int, budget_bytes: int) -> int:
    """How many pixels' worth of all ``num_classes`` float32 probability planes fit
    ``budget_bytes``: at least the model's input area, at most four times it (the model's
    own output is that coarse, so a finer grid adds nothing but bytes)."""
    area = model_hw[0] * model_hw[1]
    return max(area, min(4 * area, budget_bytes // (4 * num_classes)))


def reduced_size(size: tuple[int, int], model_hw: tuple[int, int], num_classes: int,
                 budget_bytes: int) -> tuple[int, int]:  # fmt: skip
    """The (width, height), aspect kept and never above the photo's, at which the
    probability planes of a photo of ``size`` stay within ``probability_pixels``."""
    budget = probability_pixels(model_hw, num_classes, budget_bytes)
    w, h = size
    if w * h <= budget:
        return size
    s = math.sqrt(budget / (w * h))
    return max(1, round(w * s)), max(1, round(h * s))


_BAND = 256  # output rows interpolated at a time


def class_plane_u8(prob: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """One class's (h, w) probability as uint8 (0-255) at ``size`` = (width, height), by
    bilinear.py's convention, a band of rows at a time: a 12 MP plane costs its 12 MB, not
    48 MB of float32."""
    out_w, out_h = size
    plane = prob.astype(np.float32, copy=False)[:, :, None]
    out = np.empty((out_h, out_w), np.uint8)
    for a in range(0, out_h, _BAND):
        band = resize_hwc_rows(plane, size, a, min(a + _BAND, out_h))[:, :, 0]
        np.clip(band * 255.0 + 0.5, 0, 255, out=band)
        out[a : a + len(band)] = band
    return out
