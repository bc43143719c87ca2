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

        from ai_edge_litert.interpreter import Interpreter, OpResolverType

        data = (files("seglite") / "assets" / "argmax.tflite").read_bytes()
        # XNNPACK has no ARG_MAX, so the default delegate would only announce itself on
        # stderr (a stray "INFO: Created ... XNNPACK delegate" line on ONNX and torch runs).
        self._interp = Interpreter(
            model_content=data,
            num_threads=1,
            experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
        )
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


def _nonzero2d(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """np.nonzero of a 2-D mask, ten times faster: numpy's 2-D nonzero costs ~3 ns an
    element (200 us on 257x257), a flat one and a divmod far less."""
    flat = np.flatnonzero(mask)
    return np.divmod(flat, mask.shape[1])


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


def _boundary_pixels(uniform: np.ndarray, out_h: int, out_w: int):
    """Output pixels whose top-left neighbour is a non-uniform cell, enumerated cell by cell.

    Returns the pixels (ys, xs), the non-uniform cells that own any (ci, cj), and for each
    pixel the index of its cell in those. Works on the small low-resolution map, so its
    cost follows the boundary length, not the output size.
    """
    h, w = uniform.shape
    ci, cj = _nonzero2d(~uniform)
    ys0, ys1 = _spans(h, out_h)
    xs0, xs1 = _spans(w, out_w)
    nx = xs1[cj] - xs0[cj]
    per_cell = (ys1[ci] - ys0[ci]) * nx
    keep = np.flatnonzero(per_cell)
    if keep.size < ci.size:  # cells that no output pixel starts in (output smaller than input)
        ci, cj, nx, per_cell = ci[keep], cj[keep], nx[keep], per_cell[keep]
    cell = np.repeat(np.arange(ci.size), per_cell)
    k = np.arange(cell.size) - (np.cumsum(per_cell) - per_cell)[cell]
    dy, dx = np.divmod(k, nx[cell])
    ys = ys0[ci][cell] + dy
    xs = xs0[cj][cell] + dx
    return ys, xs, ci, cj, cell


def _candidates(corners: np.ndarray, corner_ids: np.ndarray) -> np.ndarray:
    """For (n, 4, C) corner scores of n cells, the classes that can win anywhere inside each
    cell: (n, K) class indices in ascending order, -1 where a cell has fewer than K.

    Inside a cell every score is a convex combination of its corner values, so a class is
    never below the smallest value it has at the corners, nor above the largest. A class
    whose largest corner value is below the smallest corner value of some corner's argmax
    class (``corner_ids``, (n, 4)) loses everywhere in the cell. That leaves two or three
    classes of 21 (or of 151) to interpolate. The margin keeps classes within float rounding
    of the bound, so the result is bit for bit that of interpolating every class.
    """
    n, _, c = corners.shape
    # at_winners[i, k, j]: corner k's value for the class that wins corner j, as one take.
    at = (np.arange(n * 4).reshape(n, 4, 1) * c) + corner_ids[:, None, :]
    at_winners = corners.reshape(-1).take(at)  # (n, 4, 4)
    low_of = np.minimum(np.minimum(at_winners[:, 0], at_winners[:, 1]),
                        np.minimum(at_winners[:, 2], at_winners[:, 3]))  # fmt: skip
    floor = low_of.max(axis=1)  # what the best corner class is worth at least
    margin = 1e-5 * np.abs(floor) + 1e-30
    high = np.maximum(np.maximum(corners[:, 0], corners[:, 1]),
                      np.maximum(corners[:, 2], corners[:, 3]))  # fmt: skip
    keep = high >= (floor - margin)[:, None]  # (n, C)
    cell, cls = _nonzero2d(keep)  # row-major: by cell, then ascending class
    counts = np.bincount(cell, minlength=len(keep))
    rank = np.arange(cell.size) - (np.cumsum(counts) - counts)[cell]
    out = np.full((len(keep), int(counts.max())), -1, dtype=np.intp)
    out[cell, rank] = cls
    return out


def _candidate_corners(corners: np.ndarray, corner_ids: np.ndarray):
    """(n, 4, C) corner scores cut to each cell's candidate classes: the classes (n, K) as
    from :func:`_candidates` and their corner scores (n, 4, K), padding that never wins."""
    classes = _candidates(corners, corner_ids)
    corners = np.take_along_axis(corners, np.maximum(classes, 0)[:, None, :], axis=2)
    corners[np.broadcast_to(classes[:, None, :] < 0, corners.shape)] = -3e38
    return classes, corners


def _lerp_cells(
    scores: np.ndarray, low: np.ndarray, ci, cj, cell, tx: np.ndarray, ty: np.ndarray
) -> np.ndarray:
    """Argmax of the bilinear scores at pixels that share few cells (large upscaling).

    Each cell's four corners are read once and cut down to its candidate classes, so
    every pixel interpolates two or three classes instead of all of them.
    """
    h, w, c = scores.shape
    r1, c1 = np.minimum(ci + 1, h - 1), np.minimum(cj + 1, w - 1)
    rows, cols = np.stack([ci, ci, r1, r1], axis=1), np.stack([cj, c1, cj, c1], axis=1)
    corners = scores.reshape(h * w, c).take(rows * w + cols, axis=0).astype(np.float32)
    classes, corners = _candidate_corners(corners, low[rows, cols].astype(np.intp))
    a, b = corners[:, 0], corners[:, 1] - corners[:, 0]
    d, e = corners[:, 2], corners[:, 3] - corners[:, 2]
    return classes[cell, _lerp(a.take(cell, 0), b.take(cell, 0), d.take(cell, 0),
                               e.take(cell, 0), tx, ty)]  # fmt: skip


def _lerp(top: np.ndarray, top_step, bottom, bottom_step, tx, ty) -> np.ndarray:
    """Argmax over classes of the bilinear value, in place: a + (b - a) * t along x on the
    top and bottom rows (``*_step`` = b - a), then along y. Consumes its arguments."""
    top_step *= tx
    top += top_step
    bottom_step *= tx
    bottom += bottom_step
    bottom -= top
    bottom *= ty
    top += bottom
    return top.argmax(axis=1)


def _cells_pay_off(pixels: int, cells: int, classes: int) -> bool:
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
    ys, xs, ci, cj, cell = _boundary_pixels(_uniform_cells(low), out_h, out_w)
    if not ys.size:
        return mask
    tx, ty = wx[xs][:, None], wy[ys][:, None]
    if _cells_pay_off(ys.size, ci.size, c):
        mask[ys, xs] = _lerp_cells(scores, low, ci, cj, cell, tx, ty)
        return mask
    flat = scores.reshape(h * w, c)
    r0, r1, c0, c1 = y0[ys] * w, y1[ys] * w, x0[xs], x1[xs]
    top = flat.take(r0 + c0, axis=0).astype(np.float32, copy=False)
    bottom = flat.take(r1 + c0, axis=0).astype(np.float32, copy=False)
    top_step = flat.take(r0 + c1, axis=0).astype(np.float32, copy=False) - top
    bottom_step = flat.take(r1 + c1, axis=0).astype(np.float32, copy=False) - bottom
    mask[ys, xs] = _lerp(top, top_step, bottom, bottom_step, tx, ty)
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
