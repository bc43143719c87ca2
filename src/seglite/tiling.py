"""Accurate mode: cover the photo with model-sized tiles at several scales (and mirrored).

The DeepLab TFLite models take one small fixed input. Squashing a whole photo into it
loses detail; instead the photo is resized (aspect kept) so its long side is ``scale``
times the model's, covered by overlapping model-sized tiles, and the per-tile softmax
probabilities are averaged where tiles overlap, summed over scales and flips, and
brought to the original size with the same fast upsampling as the single-window path.

A scale of exactly 1.0 is the squash path itself, so it fuses with the others unchanged.
Models whose output is already an ArgMax have no probabilities: each tile votes with a
one-hot map instead, so fusion is a per-pixel (soft) vote.

Cost is bounded by design: scales are relative to the model's input, not the photo, so
a 4000x3000 photo at scale 2 is covered by the same 6 tiles (3x2) as a 640x480 one.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

import numpy as np

from .blas import one_blas_thread
from .image import LoadedImage, model_pixels, resize, to_array
from .postprocess import softmax
from .result import Timings
from .runtime import Backend

PAD_VALUE = 127  # mid-grey: where the resized photo is smaller than a tile
OVERLAP = 1 / 3  # tiles advance by 2/3 of their size
COARSE_SOFTMAX = True  # softmax before the final upsampling where the backend allows it
# Pixels of the largest scale per cell of the fused map. The models' outputs are samples
# 8 pixels apart there (output stride 8, align-corners upsampling), so a 2-pixel grid
# holds each tile's bilinear surface at four times its sampling rate, for a quarter of the
# memory traffic of fusing at full size (which took a third of the preset's time). On the
# shared VOC subset: stride 1 and 2 both 66.70 mIoU, 4 66.65.
WORK_STRIDE = 2


def tile_starts(length: int, tile: int, stride: int) -> list[int]:
    """Tile offsets along one axis: every ``stride``, the last one flush with the edge."""
    if length <= tile:
        return [0]
    starts = list(range(0, length - tile, stride))
    starts.append(length - tile)
    return starts


def tile_axes(size: tuple[int, int], tile: tuple[int, int], overlap: float = OVERLAP):
    """(row offsets, column offsets) of the tiles covering a (height, width) image: the
    grid is their product."""
    (h, w), (th, tw) = size, tile
    sy = max(1, math.floor(th * (1 - overlap)))
    sx = max(1, math.floor(tw * (1 - overlap)))
    return tile_starts(h, th, sy), tile_starts(w, tw, sx)


def tile_grid(size: tuple[int, int], tile: tuple[int, int], overlap: float = OVERLAP):
    """(y, x) offsets of the tiles covering a (height, width) image."""
    ys, xs = tile_axes(size, tile, overlap)
    return [(y, x) for y in ys for x in xs]


def scaled_size(size: tuple[int, int], model_hw: tuple[int, int], scale: float) -> tuple[int, int]:
    """(width, height) with the long side at ``scale`` x the model's long side, aspect kept."""
    w, h = size
    target = scale * max(model_hw)
    f = target / max(w, h)
    return max(1, round(w * f)), max(1, round(h * f))


def _footprint(
    start: int, tile: int, nodes: int, align_corners: bool, n_scaled: int, n_work: int
) -> tuple[int, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """One axis of a tile's footprint on the work grid: the first work pixel it covers and
    the bilinear tables (i0, i1, w1) into the tile's ``nodes`` output samples for each.

    Work pixel r sits at scaled-image coordinate (r + 0.5) * n_scaled / n_work - 0.5 (the
    one half-pixel convention, bilinear.py); output sample k sits at tile pixel k * f for
    the models' align-corners upsampling (f = (tile - 1) / (nodes - 1)), or at its
    half-pixel centre for outputs resized that way. The first and last tiles reach the
    grid's edges, so every work pixel is covered."""
    ratio = n_scaled / n_work
    first = 0 if start == 0 else math.ceil((start + 0.5) / ratio - 0.5)
    stop = (
        n_work if start + tile >= n_scaled else math.floor((start + tile - 0.5) / ratio - 0.5) + 1
    )
    stop = min(max(stop, first + 1), n_work)
    coord = (np.arange(first, stop, dtype=np.float64) + 0.5) * ratio - 0.5 - start
    if align_corners:
        k = coord * ((nodes - 1) / max(tile - 1, 1))
    else:
        k = (coord + 0.5) * (nodes / tile) - 0.5
    k = np.clip(k, 0, nodes - 1)
    i0 = np.floor(k).astype(np.intp)
    i1 = np.minimum(i0 + 1, nodes - 1)
    return first, (i0, i1, (k - i0).astype(np.float32))


def _axis_weights(
    starts: Sequence[int],
    tile: int,
    nodes: int,
    align: bool,
    n_scaled: int,
    n_work: int,
    weight: float = 1.0,
) -> dict[int, tuple[int, np.ndarray]]:
    """Each tile's footprint along one axis: (first work pixel, W), W the (pixels, nodes)
    matrix that interpolates the tile's output samples there (two bilinear weights a row),
    with the averaging folded in: a work pixel that ``n`` tiles of this axis cover takes
    1/n of each (times ``weight``). The grid is a product of its axes, so the two axes'
    factors multiply to one over the tiles covering a pixel: tiles add straight into the
    fused map, with no count map and no division.

    Applying W is a matrix product: at a tile's 33 samples a side, BLAS does it in a fifth
    of the time of gathering and blending rows with fancy indexing."""
    footprints = {s: _footprint(s, tile, nodes, align, n_scaled, n_work) for s in starts}
    cover = np.zeros(n_work, dtype=np.float32)
    for first, (i0, _, _) in footprints.values():
        cover[first : first + len(i0)] += 1.0
    matrices = {}
    for s, (first, (i0, i1, w1)) in footprints.items():
        share = weight / cover[first : first + len(i0)]
        m = np.zeros((len(i0), nodes), dtype=np.float32)
        r = np.arange(len(i0))
        m[r, i0] = (1.0 - w1) * share
        m[r, i1] += w1 * share  # i1 == i0 at a clamped edge: the weights add to one there
        matrices[s] = (first, m)
    return matrices


class _Fuser:
    """Runs tiles through one backend and lays their probabilities (or votes) straight
    onto the work grid: each tile's own output samples are interpolated once, to the work
    pixels the tile covers, instead of upsampled to the tile and the whole pass resized
    again (that second resize of an H x W x classes map was a third of the preset's time)."""

    def __init__(self, backend: Backend, num_classes: int, timings: Timings):
        self.backend = backend
        self.num_classes = num_classes
        self.t = timings
        self.invocations = 0

    def _coarse_scores(self) -> bool:
        """Whether the backend's reduced path exposes the scores before the cut final
        upsampling (probabilities are then made on that coarse grid)."""
        reduced = self.backend.reduced
        return COARSE_SOFTMAX and reduced is not None and reduced.coarse_factor is not None

    def tile_map(self, pixels: np.ndarray) -> tuple[np.ndarray, bool]:
        """(samples (n_h, n_w, C) float32, align_corners) for one model-input-sized tile:
        softmax of the scores before the final upsampling where the backend exposes them
        (64 times fewer pixels to exponentiate), else of the model's output, or one-hot
        votes for an ArgMax output. The backend squashes pixels of another size."""
        t0 = time.perf_counter()
        self.invocations += 1
        if self._coarse_scores():
            probs = self.backend.reduced.run(
                pixels[None],
                lambda scores, ids: softmax(scores[0].astype(np.float32), inplace=True),
            )
            self.t.invoke += (time.perf_counter() - t0) * 1e3
            return probs, True
        out = self.backend.run(pixels[None])[0]
        t1 = time.perf_counter()
        self.t.invoke += (t1 - t0) * 1e3
        if out.ndim == 2:  # ArgMax models: each tile votes for its class at every sample
            ids = np.minimum(out, self.num_classes - 1).astype(np.intp)
            probs = np.zeros((*ids.shape, self.num_classes), dtype=np.float32)
            rows, cols = np.indices(ids.shape, sparse=True)
            probs[rows, cols, ids] = 1.0
        else:
            probs = softmax(out.astype(np.float32), inplace=True)
        self.t.postprocess += (time.perf_counter() - t1) * 1e3
        return probs, False

    def add_pass(
        self, target: np.ndarray, pixels: np.ndarray, squash: bool, weight: float = 1.0
    ) -> None:
        """Add ``weight`` x the probabilities of one pass over ``pixels`` to ``target``
        (H, W, C), the work grid (a mirrored view of it for a mirrored pass): the photo
        squashed into one model input (``squash``), or a resized photo covered by
        overlapping model-sized tiles, averaged where they overlap."""
        th, tw = self.backend.input_size
        wh, ww = target.shape[:2]
        h, w = (th, tw) if squash else pixels.shape[:2]
        ph, pw = max(h, th), max(w, tw)
        if not squash and (ph, pw) != (h, w):
            padded = np.full((ph, pw, 3), PAD_VALUE, dtype=np.uint8)
            padded[:h, :w] = pixels
            pixels = padded
        ys, xs = ([0], [0]) if squash else tile_axes((ph, pw), (th, tw))
        rows = cols = None
        for y in ys:
            for x in xs:
                probs, align = self.tile_map(pixels if squash else pixels[y : y + th, x : x + tw])
                t0 = time.perf_counter()
                nh, nw, c = probs.shape
                if rows is None:  # the output's sample grid is known from the first tile
                    rows = _axis_weights(ys, th, nh, align, h, wh, weight)
                    cols = _axis_weights(xs, tw, nw, align, w, ww)
                (y0, wy), (x0, wx) = rows[y], cols[x]
                along_y = (wy @ probs.reshape(nh, nw * c)).reshape(len(wy), nw, c)
                target[y0 : y0 + len(wy), x0 : x0 + len(wx)] += np.matmul(wx, along_y)
                self.t.postprocess += (time.perf_counter() - t0) * 1e3

    def pass_scores(self, pixels: np.ndarray, work: tuple[int, int], squash: bool) -> np.ndarray:
        """One pass's probabilities (H, W, C) alone, on the ``work`` = (width, height) grid."""
        total = np.zeros((work[1], work[0], self.num_classes), dtype=np.float32)
        self.add_pass(total, pixels, squash)
        return total


def fused_scores(
    backend: Backend,
    loaded: LoadedImage,
    scales: Sequence[float],
    flip: bool,
    timings: Timings,
    num_classes: int,
) -> tuple[np.ndarray, int]:
    """Probabilities (H, W, C) averaged over scales and flips.

    The fused map is kept on a grid of :data:`WORK_STRIDE` pixels of the largest scale
    (or at the photo's own size where that is smaller); the caller's final bilinear
    upsampling brings it to the photo. Returns the map and the number of model
    invocations it took.
    """
    fuser = _Fuser(backend, num_classes, timings)
    img = loaded.image
    model_hw = backend.input_size
    largest = scaled_size(img.size, model_hw, max(scales))
    work = tuple(max(1, math.ceil(n / WORK_STRIDE)) for n in largest)
    if work[0] * work[1] > loaded.size[0] * loaded.size[1]:
        work = loaded.size
    fused = np.zeros((work[1], work[0], num_classes), dtype=np.float32)
    passes = len(scales) * (2 if flip else 1)
    with one_blas_thread:  # the tiles' interpolation is BLAS products beside XNNPACK
        for scale in scales:
            # Each scale's pixels are made once; the mirrored pass reads them backwards (the
            # bilinear resize is symmetric, so that is the resize of the mirrored photo).
            t0 = time.perf_counter()
            if scale == 1.0:
                h_in, w_in = model_hw
                scaled = model_pixels(img, (w_in, h_in))
            else:
                scaled = to_array(resize(img, scaled_size(img.size, model_hw, scale)))
            timings.preprocess += (time.perf_counter() - t0) * 1e3
            for mirrored in (False, True) if flip else (False,):
                pixels = np.ascontiguousarray(scaled[:, ::-1]) if mirrored else scaled
                target = fused[:, ::-1] if mirrored else fused  # a mirrored pass adds mirrored
                fuser.add_pass(target, pixels, squash=scale == 1.0, weight=1.0 / passes)
    return fused, fuser.invocations
