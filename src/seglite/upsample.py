"""Bring low-resolution class scores to the original image size, fast.

The category mask is the argmax of the *bilinearly upsampled scores* (sharper than
upsampling the argmax). Doing that for every pixel and every class is about six
times the cost of the model itself. But where the four low-resolution neighbours
of an output pixel share one argmax, the interpolated scores (a convex combination)
have that same argmax, so only pixels near a class boundary need the full
computation. The result is exactly the full computation's, at a fraction of its cost.

Coordinates follow bilinear.py's convention (half-pixel centres).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from .bilinear import axis


@lru_cache(maxsize=32)
def _nearest_axis(n_in: int, n_out: int) -> np.ndarray:
    return np.minimum(((np.arange(n_out) + 0.5) * (n_in / n_out)).astype(np.intp), n_in - 1)


class ArgmaxKernel:
    """Argmax over the last axis on LiteRT's ARG_MAX kernel (a one-op graph shipped in assets).

    numpy's argmax over a short last axis costs about 15 ns per pixel in per-row overhead;
    the kernel is several times faster on (257, 257, 21) scores. One interpreter, so one
    kernel per thread (each Segmenter owns one).
    """

    def __init__(self):
        from importlib.resources import files

        from ai_edge_litert.interpreter import Interpreter

        data = (files("seglite") / "assets" / "argmax.tflite").read_bytes()
        self._interp = Interpreter(model_content=data, num_threads=1)
        self._shape: tuple[int, ...] | None = None
        self._in = self._interp.get_input_details()[0]["index"]
        self._out = self._interp.get_output_details()[0]["index"]

    def __call__(self, scores: np.ndarray) -> np.ndarray:
        shape = (1, *scores.shape)
        if shape != self._shape:
            self._interp.resize_tensor_input(self._in, list(shape))
            self._interp.allocate_tensors()
            self._shape = shape
        view = self._interp.tensor(self._in)()
        view[0] = scores
        del view
        self._interp.invoke()
        ids = self._interp.tensor(self._out)()[0]
        return ids.astype(np.uint8 if scores.shape[-1] <= 256 else np.uint16)


def argmax_scores(scores: np.ndarray, kernel: ArgmaxKernel | None = None) -> np.ndarray:
    """Argmax over the last axis of (h, w, C) scores, as uint8 where classes fit."""
    if kernel is not None and scores.dtype == np.float32:
        return kernel(scores)
    dtype = np.uint8 if scores.shape[-1] <= 256 else np.uint16
    return scores.argmax(axis=-1).astype(dtype)


def _uniform_cells(labels: np.ndarray) -> np.ndarray:
    """True where a cell and its right, lower and lower-right neighbours share one label."""
    same = np.ones(labels.shape, dtype=bool)
    same[:, :-1] &= labels[:, :-1] == labels[:, 1:]
    same[:-1, :] &= labels[:-1, :] == labels[1:, :]
    same[:-1, :-1] &= labels[:-1, :-1] == labels[1:, 1:]
    return same


@lru_cache(maxsize=32)
def _spans(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray]:
    """For each input index i, the range [start, end) of outputs whose i0 is i."""
    i0, _, _ = axis(n_in, n_out)
    idx = np.arange(n_in)
    return np.searchsorted(i0, idx, "left"), np.searchsorted(i0, idx, "right")


def _boundary_pixels(uniform: np.ndarray, out_h: int, out_w: int) -> tuple[np.ndarray, np.ndarray]:
    """Output pixels whose top-left neighbour is a non-uniform cell, enumerated cell by cell.

    Works on the small low-resolution map, so its cost follows the boundary length, not the
    output size.
    """
    h, w = uniform.shape
    ci, cj = np.nonzero(~uniform)
    if ci.size == 0:
        return ci, cj
    ys0, ys1 = _spans(h, out_h)
    xs0, xs1 = _spans(w, out_w)
    y_start, ny = ys0[ci], ys1[ci] - ys0[ci]
    x_start, nx = xs0[cj], xs1[cj] - xs0[cj]
    per_cell = ny * nx
    keep = per_cell > 0
    y_start, x_start, nx, per_cell = y_start[keep], x_start[keep], nx[keep], per_cell[keep]
    cell = np.repeat(np.arange(per_cell.size), per_cell)
    offsets = np.cumsum(per_cell) - per_cell
    k = np.arange(cell.size) - offsets[cell]
    nxc = nx[cell]
    return y_start[cell] + k // nxc, x_start[cell] + k % nxc


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
    ys, xs = _boundary_pixels(_uniform_cells(low), out_h, out_w)
    if ys.size:
        # Lerp in place on the gathered corner scores: a + (b - a) * t, no temporaries.
        flat = scores.reshape(h * w, c)
        r0, r1, c0, c1 = y0[ys] * w, y1[ys] * w, x0[xs], x1[xs]
        tx, ty = wx[xs][:, None], wy[ys][:, None]
        top = flat.take(r0 + c0, axis=0).astype(np.float32, copy=False)
        delta = flat.take(r0 + c1, axis=0).astype(np.float32, copy=False)
        delta -= top
        delta *= tx
        top += delta  # top row, interpolated along x
        bottom = flat.take(r1 + c0, axis=0).astype(np.float32, copy=False)
        delta = flat.take(r1 + c1, axis=0).astype(np.float32, copy=False)
        delta -= bottom
        delta *= tx
        bottom += delta  # bottom row, interpolated along x
        bottom -= top
        bottom *= ty
        top += bottom  # then along y
        mask[ys, xs] = top.argmax(axis=1)
    return mask


def upsample_ids(ids: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize of a class-id map (models whose output is already an ArgMax)."""
    h, w = ids.shape
    out_w, out_h = size
    dtype = np.uint8 if ids.max(initial=0) < 256 else np.uint16
    ids = ids.astype(dtype, copy=False)
    if (h, w) == (out_h, out_w):
        return ids
    return ids.take(_nearest_axis(w, out_w), axis=1).take(_nearest_axis(h, out_h), axis=0)


def upsample_bilinear(planes: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of (C, h, w) float planes to (C, out_h, out_w), same convention."""
    c, h, w = planes.shape
    out_w, out_h = size
    if (h, w) == (out_h, out_w):
        return planes.astype(np.float32, copy=False)
    y0, y1, wy = axis(h, out_h)
    x0, x1, wx = axis(w, out_w)
    rows = planes[:, y0, :] * (1 - wy)[None, :, None] + planes[:, y1, :] * wy[None, :, None]
    out = rows[:, :, x0] * (1 - wx)[None, None, :]
    out += rows[:, :, x1] * wx[None, None, :]
    return out.astype(np.float32, copy=False)


def softmax(scores: np.ndarray, axis: int = -1) -> np.ndarray:
    e = np.exp(scores - scores.max(axis=axis, keepdims=True))
    e /= e.sum(axis=axis, keepdims=True)
    return e
