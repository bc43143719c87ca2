"""Class probabilities: the one softmax, and confidence planes at the photo's size."""

from __future__ import annotations

import numpy as np

from .bilinear import axis as bilinear_axis


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
