"""What the exact boundary-only upsampling is made of, shared by the fine and coarse paths.

Where the four low-resolution neighbours of an output pixel share one argmax, the
interpolated scores (a convex combination) have that same argmax, so only pixels near a
class boundary need the full computation; and inside a cell, only the classes that can
win there (:func:`candidates`) need interpolating. These helpers find those cells and
pixels and interpolate just them; category.py and coarse.py compose them.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from .bilinear import axis


def nonzero2d(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """np.nonzero of a 2-D mask, ten times faster: numpy's 2-D nonzero costs ~3 ns an
    element (200 us on 257x257), a flat one and a divmod far less."""
    flat = np.flatnonzero(mask)
    return np.divmod(flat, mask.shape[1])


def uniform_cells(labels: np.ndarray) -> np.ndarray:
    """True where a cell and its right, lower and lower-right neighbours share one label."""
    same = np.ones(labels.shape, dtype=bool)
    same[:, :-1] &= labels[:, :-1] == labels[:, 1:]
    same[:-1, :] &= labels[:-1, :] == labels[1:, :]
    same[:-1, :-1] &= labels[:-1, :-1] == labels[1:, 1:]
    return same


@lru_cache(maxsize=32)
def spans(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray]:
    """For each input index i, the range [start, end) of outputs whose i0 is i."""
    i0, _, _ = axis(n_in, n_out)
    idx = np.arange(n_in)
    return np.searchsorted(i0, idx, "left"), np.searchsorted(i0, idx, "right")


def boundary_pixels(uniform: np.ndarray, out_h: int, out_w: int):
    """Output pixels whose top-left neighbour is a non-uniform cell, enumerated cell by cell.

    Returns the pixels (ys, xs), the non-uniform cells that own any (ci, cj), and for each
    pixel the index of its cell in those. Works on the small low-resolution map, so its
    cost follows the boundary length, not the output size.
    """
    h, w = uniform.shape
    ci, cj = nonzero2d(~uniform)
    ys0, ys1 = spans(h, out_h)
    xs0, xs1 = spans(w, out_w)
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


def candidates(corners: np.ndarray, corner_ids: np.ndarray) -> np.ndarray:
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
    cell, cls = nonzero2d(keep)  # row-major: by cell, then ascending class
    counts = np.bincount(cell, minlength=len(keep))
    rank = np.arange(cell.size) - (np.cumsum(counts) - counts)[cell]
    out = np.full((len(keep), int(counts.max())), -1, dtype=np.intp)
    out[cell, rank] = cls
    return out


def candidate_corners(corners: np.ndarray, corner_ids: np.ndarray):
    """(n, 4, C) corner scores cut to each cell's candidate classes: the classes (n, K) as
    from :func:`candidates` and their corner scores (n, 4, K), padding that never wins."""
    classes = candidates(corners, corner_ids)
    corners = np.take_along_axis(corners, np.maximum(classes, 0)[:, None, :], axis=2)
    corners[np.broadcast_to(classes[:, None, :] < 0, corners.shape)] = -3e38
    return classes, corners


def lerp_cells(
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
    classes, corners = candidate_corners(corners, low[rows, cols].astype(np.intp))
    a, b = corners[:, 0], corners[:, 1] - corners[:, 0]
    d, e = corners[:, 2], corners[:, 3] - corners[:, 2]
    return classes[cell, lerp(a.take(cell, 0), b.take(cell, 0), d.take(cell, 0),
                               e.take(cell, 0), tx, ty)]  # fmt: skip


def lerp(top: np.ndarray, top_step, bottom, bottom_step, tx, ty) -> np.ndarray:
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
