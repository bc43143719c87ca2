"""The category mask straight from a model's coarse scores, through its cut final upsampling.

A model whose last op was a whole-factor align-corners upsampling (runtime/final_resize.py
cuts it) hands over coarse scores, e.g. 33x33 for the starter, and the mask must be what
the full chain gives: argmax of the half-pixel bilinear upsampling (category.py) of the
align-corners bilinear upsampling (the cut op) of those scores. Both steps only ever
average, so the reasoning of boundary.py applies at each level:

1. coarse cells whose four corners share their argmax hold that class everywhere;
2. in the other cells, only the classes that can win there (boundary.candidates) are
   interpolated, at the cut op's grid points: this rebuilds its argmax map, and its
   scores for the few candidate classes;
3. output pixels are then interpolated only in the grid cells where that argmax changes,
   from the cell's candidate scores.

The result equals the full chain in exact arithmetic; in float32, pixels where two
classes tie to within rounding may resolve either way (as between two runtimes).
"""

from __future__ import annotations

import numpy as np

from .bilinear import align_corners_axis, axis
from .boundary import boundary_pixels, candidate_corners, lerp, nonzero2d, uniform_cells
from .ids import as_ids


def upsample_category_coarse(
    coarse: np.ndarray, low: np.ndarray, factor: tuple[int, int], size: tuple[int, int]
) -> np.ndarray:
    """Category mask (out_h, out_w) for ``size`` = (width, height) from (hc, wc, C) coarse
    scores, their argmax ``low`` and the cut upsampling's whole ``factor`` (fy, fx)."""
    hc, wc, _ = coarse.shape
    fy, fx = factor
    hf, wf = (hc - 1) * fy + 1, (wc - 1) * fx + 1
    out_w, out_h = size
    low = as_ids(low, coarse.shape[2])
    # The coarse cell of each fine index: the cut op's own source table.
    cy, cx = align_corners_axis(hc, fy)[0], align_corners_axis(wc, fx)[0]

    # 1. The fine argmax map: each fine pixel takes its coarse cell's class where the cell
    #    is uniform; the others are overwritten in step 2.
    uniform = uniform_cells(low)[:-1, :-1]
    fine = low[:-1, :-1].take(cx, axis=1).take(cy, axis=0)
    ci, cj = nonzero2d(~uniform)
    if ci.size:
        # 2. Non-uniform cells: their (fy+1) x (fx+1) grid points, candidate classes only.
        rows = np.stack([ci, ci, ci + 1, ci + 1], axis=1)
        cols = np.stack([cj, cj + 1, cj, cj + 1], axis=1)
        corners = coarse[rows, cols].astype(np.float32)  # (n, 4, C)
        classes, corners = candidate_corners(corners, low[rows, cols].astype(np.intp))
        ty = (np.arange(fy + 1, dtype=np.float32) / fy)[None, :, None, None]
        tx = (np.arange(fx + 1, dtype=np.float32) / fx)[None, :, None]
        top = corners[:, 0, None] + (corners[:, 1] - corners[:, 0])[:, None] * tx
        bottom = corners[:, 2, None] + (corners[:, 3] - corners[:, 2])[:, None] * tx
        grid = top[:, None] + (bottom - top)[:, None] * ty  # (n, fy+1, fx+1, K)
        k = classes.shape[1]
        grid = grid.reshape(-1, k)  # one row per grid point, cell by cell
        offsets = (np.arange(fy + 1)[:, None] * wf + np.arange(fx + 1)[None, :]).ravel()
        at = (ci * fy * wf + cj * fx)[:, None] + offsets[None, :]  # flat fine index
        best = grid.argmax(axis=1).reshape(ci.size, -1)
        fine.ravel()[at] = classes.ravel()[(np.arange(ci.size) * k)[:, None] + best]

    if (hf, wf) == (out_h, out_w):
        return fine
    y0, y1, wy = axis(hf, out_h)
    x0, x1, wx = axis(wf, out_w)
    mask = fine.take(x0, axis=1).take(y0, axis=0)
    if not ci.size:
        return mask
    # 3. Output pixels in fine cells whose argmax changes: interpolate the candidate scores
    #    of the coarse cell that holds the fine cell.
    ys, xs, fi, fj, cell = boundary_pixels(uniform_cells(fine), out_h, out_w)
    block = np.full((hc - 1, wc - 1), -1, dtype=np.intp)
    block[ci, cj] = np.arange(ci.size)
    owner = block[cy[fi], cx[fj]]
    # A fine cell inside a uniform coarse cell can differ only by float rounding at its
    # edge: it keeps the coarse cell's class.
    if (owner < 0).any():
        keep = owner[cell] >= 0
        ys, xs, cell = ys[keep], xs[keep], cell[keep]
    if not ys.size:
        return mask
    dy, dx = fi - cy[fi] * fy, fj - cx[fj] * fx
    dy1 = np.minimum(fi + 1, hf - 1) - cy[fi] * fy
    dx1 = np.minimum(fj + 1, wf - 1) - cx[fj] * fx
    o = np.maximum(owner, 0)
    row = o * ((fy + 1) * (fx + 1))  # the cell's first grid point
    tl, tr = grid.take(row + dy * (fx + 1) + dx, 0), grid.take(row + dy * (fx + 1) + dx1, 0)
    bl, br = grid.take(row + dy1 * (fx + 1) + dx, 0), grid.take(row + dy1 * (fx + 1) + dx1, 0)
    tx, ty = wx[xs][:, None], wy[ys][:, None]
    best = lerp(tl.take(cell, 0), (tr - tl).take(cell, 0), bl.take(cell, 0),
                 (br - bl).take(cell, 0), tx, ty)  # fmt: skip
    mask[ys, xs] = classes[o[cell], best]
    return mask
