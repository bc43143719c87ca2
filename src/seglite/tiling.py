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

from .image import LoadedImage, model_pixels, resize, to_array
from .postprocess import softmax, upsample_ids
from .postprocess.bilinear import resize_hwc, upsample_align_corners
from .result import Timings
from .runtime import Backend

PAD_VALUE = 127  # mid-grey: where the resized photo is smaller than a tile
OVERLAP = 1 / 3  # tiles advance by 2/3 of their size
COARSE_SOFTMAX = True  # softmax before the final upsampling where the backend allows it


def tile_starts(length: int, tile: int, stride: int) -> list[int]:
    """Tile offsets along one axis: every ``stride``, the last one flush with the edge."""
    if length <= tile:
        return [0]
    starts = list(range(0, length - tile, stride))
    starts.append(length - tile)
    return starts


def tile_grid(size: tuple[int, int], tile: tuple[int, int], overlap: float = OVERLAP):
    """(y, x) offsets of the tiles covering a (height, width) image."""
    (h, w), (th, tw) = size, tile
    sy = max(1, math.floor(th * (1 - overlap)))
    sx = max(1, math.floor(tw * (1 - overlap)))
    return [(y, x) for y in tile_starts(h, th, sy) for x in tile_starts(w, tw, sx)]


def scaled_size(size: tuple[int, int], model_hw: tuple[int, int], scale: float) -> tuple[int, int]:
    """(width, height) with the long side at ``scale`` x the model's long side, aspect kept."""
    w, h = size
    target = scale * max(model_hw)
    f = target / max(w, h)
    return max(1, round(w * f)), max(1, round(h * f))


class _Fuser:
    """Runs tiles through one backend and accumulates probabilities (or votes)."""

    def __init__(self, backend: Backend, num_classes: int, timings: Timings):
        self.backend = backend
        self.num_classes = num_classes
        self.t = timings
        self.invocations = 0

    def _run(self, pixels: np.ndarray) -> np.ndarray:
        t0 = time.perf_counter()
        out = self.backend.run(pixels[None])[0]
        self.t.invoke += (time.perf_counter() - t0) * 1e3
        self.invocations += 1
        return out

    def _coarse_factor(self) -> tuple[int, int] | None:
        """The cut final upsampling's factor where the backend's reduced path exposes the
        scores before it (probabilities can then be made and fused on that coarse grid)."""
        reduced = self.backend.reduced
        if not COARSE_SOFTMAX or reduced is None or reduced.coarse_factor is None:
            return None
        return reduced.coarse_factor

    def _coarse_probabilities(self, pixels: np.ndarray) -> np.ndarray:
        """Softmax of the model's scores before its final upsampling: 64 times fewer pixels
        to exponentiate than at the model's output size (only with a _coarse_factor)."""
        t0 = time.perf_counter()
        probs = self.backend.reduced.run(
            pixels[None], lambda scores, ids: softmax(scores[0].astype(np.float32), inplace=True)
        )
        self.t.invoke += (time.perf_counter() - t0) * 1e3
        self.invocations += 1
        return probs

    def add(self, target: np.ndarray, pixels: np.ndarray) -> None:
        """Add the probabilities (or one-hot votes) for ``pixels`` into ``target`` (th, tw, C);
        the backend squashes pixels of another size to its input."""
        th, tw = target.shape[:2]
        factor = self._coarse_factor()
        if factor is not None:
            coarse = self._coarse_probabilities(pixels)
            t0 = time.perf_counter()
            probs = upsample_align_corners(coarse, factor)
            target += probs if probs.shape[:2] == (th, tw) else resize_hwc(probs, (tw, th))
            self.t.postprocess += (time.perf_counter() - t0) * 1e3
            return
        out = self._run(pixels)
        t0 = time.perf_counter()
        if out.ndim == 2:
            if out.shape != (th, tw):
                out = upsample_ids(out, (tw, th))
            ids = np.minimum(out, self.num_classes - 1).astype(np.intp)
            rows, cols = np.indices((th, tw), sparse=True)
            target[rows, cols, ids] += 1.0  # each pixel once: no repeated index
        else:
            probs = softmax(out.astype(np.float32), inplace=True)
            if probs.shape[:2] != (th, tw):
                probs = resize_hwc(probs, (tw, th))
            target += probs
        self.t.postprocess += (time.perf_counter() - t0) * 1e3

    def squash(self, pixels: np.ndarray) -> np.ndarray:
        """Probabilities for the photo squashed to the model's input (``model_pixels``)."""
        h_in, w_in = self.backend.input_size
        total = np.zeros((h_in, w_in, self.num_classes), dtype=np.float32)
        self.add(total, pixels)
        return total

    def tiled(self, pixels: np.ndarray) -> np.ndarray:
        """Average of overlapping tile probabilities over an (H, W, 3) image."""
        th, tw = self.backend.input_size
        h, w = pixels.shape[:2]
        ph, pw = max(h, th), max(w, tw)
        if (ph, pw) != (h, w):
            padded = np.full((ph, pw, 3), PAD_VALUE, dtype=np.uint8)
            padded[:h, :w] = pixels
            pixels = padded
        total = np.zeros((ph, pw, self.num_classes), dtype=np.float32)
        count = np.zeros((ph, pw, 1), dtype=np.float32)
        for y, x in tile_grid((ph, pw), (th, tw)):
            self.add(total[y : y + th, x : x + tw], pixels[y : y + th, x : x + tw])
            count[y : y + th, x : x + tw] += 1.0
        total /= count
        return total[:h, :w]


def fused_scores(
    backend: Backend,
    loaded: LoadedImage,
    scales: Sequence[float],
    flip: bool,
    timings: Timings,
    num_classes: int,
) -> tuple[np.ndarray, int]:
    """Probabilities (H, W, C) averaged over scales and flips.

    The fused map is kept at the largest scale's size, or at the photo's own size where
    that is smaller (finer than the output would only cost memory). Returns the map and
    the number of model invocations it took.
    """
    fuser = _Fuser(backend, num_classes, timings)
    img = loaded.image
    model_hw = backend.input_size
    work = scaled_size(img.size, model_hw, max(scales))
    if work[0] * work[1] > loaded.size[0] * loaded.size[1]:
        work = loaded.size
    fused = np.zeros((work[1], work[0], num_classes), dtype=np.float32)
    passes = 0
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
            probs = fuser.squash(pixels) if scale == 1.0 else fuser.tiled(pixels)
            t0 = time.perf_counter()
            if mirrored:
                probs = probs[:, ::-1]
            fused += resize_hwc(probs, work)
            passes += 1
            timings.postprocess += (time.perf_counter() - t0) * 1e3
    fused /= passes
    return fused, fuser.invocations
