"""Temporal smoothing for video: masks that do not flicker from frame to frame.

A segmentation model sees every frame afresh, so sensor noise and small shifts flip the
labels of uncertain pixels back and forth. :class:`TemporalSmoother` keeps an exponential
moving average of the class probabilities::

    state = w * state + (1 - w) * p_frame,    w = strength * gate(change)

after the past (``state`` and the previous frame) is moved along with the camera: a global
translation between the two frames, found by phase correlation (``follow``; a pan then
keeps its smoothing), and ``change`` is how much the frame still changed at that place since the previous one (mean
absolute difference of the grey frames, in [0, 1]) and ``gate`` falls from 1 (no change)
to 0 at ``motion`` (default 0.08, about 20 grey levels): where something moved, the new
frame's probabilities take over at once and motion is not smeared; where the picture stayed
the same, noise is averaged away; where most of the picture changed (a cut), the past is
dropped altogether. ``strength`` 0 turns smoothing off (every frame as is).

Everything runs on a reduced grid (long side ``grid`` px, 320 by default: the models'
probabilities carry no finer detail, DeepLab's are 33x33 or 65x65 upsampled); the smoothed
probabilities come back to a full-size category mask through the Segmenter's own
upsampling (argmax of the bilinear upsampling, computed only in the cells with an edge).
ArgMax-only models are smoothed as one-hot votes.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from .errors import OptionError

if TYPE_CHECKING:
    from .result import SegmentationResult

DEFAULT_SMOOTH = 0.8  # video files and streams
DEFAULT_MOTION = 0.08
DEFAULT_GRID = 320  # a model-sized view (257, 321 px) passes through unresampled
CUT = 0.5  # frames where less than this share of the past may be kept are a new scene


def check_strength(strength: float) -> float:
    try:
        s = float(strength)
    except (TypeError, ValueError):
        raise OptionError(
            f"--smooth takes a number from 0 (off) to 0.95, got {strength!r}"
        ) from None
    if not 0.0 <= s <= 0.95:
        raise OptionError(f"--smooth must be between 0 (off) and 0.95, got {strength}")
    return s


class TemporalSmoother:
    """Smooths a sequence of results of one Segmenter on consecutive frames of one video.

    Call it with each result and its frame (H, W, 3 uint8) in order; it returns the result
    with a smoothed ``category_mask`` (confidence masks dropped: the smoothed ones live on
    the grid, :meth:`probability` gives a class group's). Frames of another size start over.
    """

    def __init__(
        self,
        strength: float = DEFAULT_SMOOTH,
        *,
        motion: float = DEFAULT_MOTION,
        grid: int = DEFAULT_GRID,
        follow: bool = True,
    ):
        self.strength = check_strength(strength)
        self.follow = bool(follow)
        self.last_shift = (0.0, 0.0)
        if not motion > 0:
            raise OptionError(f"motion must be > 0, got {motion}")
        self.motion = float(motion)
        self.grid = int(grid)
        self.reset()

    def reset(self) -> None:
        self.state: np.ndarray | None = None  # (gh, gw, C) probabilities
        self.soft = True
        self._grey: np.ndarray | None = None
        self._size: tuple[int, int] | None = None

    @property
    def enabled(self) -> bool:
        return self.strength > 0

    def _grid_size(self, size: tuple[int, int]) -> tuple[int, int]:
        w, h = size
        scale = max(1.0, max(w, h) / self.grid)
        return max(1, round(w / scale)), max(1, round(h / scale))

    def step(self, result: SegmentationResult, frame: np.ndarray) -> np.ndarray:
        """Take in one frame's result; the (gh, gw, C) probabilities to use for it (smoothed,
        or the frame's own when off). ``frame`` is the picture ``result`` was made from."""
        size = result.size
        gsize = self._grid_size(size)
        p = _grid_probabilities(result, gsize)
        self.soft = result.confidence_masks is not None  # else one-hot votes of an ArgMax
        grey = _grey(frame, gsize)
        if self.state is None or self._size != size or self.state.shape != p.shape:
            self.state = p
        elif self.enabled:
            dy, dx = global_shift(self._grey, grey) if self.follow else (0.0, 0.0)
            before, state = self._grey, self.state
            if dy or dx:  # the camera moved: carry the past along before comparing
                before, state = shift(before, dy, dx), shift(state, dy, dx)
            change = _local_mean(np.abs(grey - before))
            keep = np.clip(1.0 - change / self.motion, 0.0, 1.0)
            if keep.mean() < CUT:  # most of the picture changed: a cut, start over
                self.state = p
            else:
                keep *= self.strength
                state += (1.0 - keep)[..., None] * (p - state)
                self.state = state
            self.last_shift = (dy, dx)
        else:
            self.state = p
        self._grey, self._size = grey, size
        return self.state

    def __call__(
        self,
        result: SegmentationResult,
        frame: np.ndarray,
        size: tuple[int, int] | None = None,
    ) -> SegmentationResult:
        """``result`` with the smoothed category mask at ``size`` (default: the result's).

        ``result`` may be of a reduced copy of the frame (video segments the model-sized
        view, whose probabilities cost 1/20 of full-size ones): ``frame`` is that copy and
        ``size`` the full frame's (width, height). Off, a full-size result comes back as is.
        """
        from .postprocess import argmax_scores, upsample_category

        probs = self.step(result, frame)
        size = tuple(size or result.size)
        if not self.enabled and size == tuple(result.size):
            return result
        mask = upsample_category(probs, size, argmax_scores(probs))
        if result.category_mask is not None:
            mask = mask.astype(result.category_mask.dtype, copy=False)
        return replace(result, category_mask=mask, confidence_masks=None, size=size)

    def probability(self, ids: list[int]) -> np.ndarray:
        """(gh, gw) smoothed probability of the classes ``ids`` together (for mattes)."""
        if self.state is None:
            raise ValueError("no frame smoothed yet")
        return np.clip(self.state[..., ids].sum(axis=-1), 0.0, 1.0)


def _grid_probabilities(result: SegmentationResult, gsize: tuple[int, int]) -> np.ndarray:
    """(gh, gw, C) class probabilities of ``result`` area-averaged onto the grid."""
    gw, gh = gsize
    n = len(result.label_set)
    if result.confidence_masks is not None:
        return reduce_planes(result.confidence_masks, gsize)
    if result.category_mask is None:
        raise OptionError("smoothing needs a category mask or confidence masks")
    mask = result.category_mask
    out = np.zeros((gh, gw, n), np.float32)
    for c in np.unique(mask):  # one-hot votes, area-averaged
        out[..., int(c)] = _reduce((mask == c).astype(np.float32), gsize)
    return out


def reduce_planes(planes: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(C, H, W) planes to (h, w, C) at ``size`` = (w, h): a whole-factor box reduction in
    the array's own memory order (one pass, whatever its strides), then bilinear."""
    hwc = np.moveaxis(planes, 0, -1)
    transposed = not hwc.flags["C_CONTIGUOUS"] and hwc.transpose(1, 0, 2).flags["C_CONTIGUOUS"]
    x = hwc.transpose(1, 0, 2) if transposed else np.ascontiguousarray(hwc)
    want = (size[1], size[0]) if transposed else (size[0], size[1])  # (width, height) of x
    a, b, c = x.shape
    if (b, a) == want:  # already at the grid's size (a model-sized view): reorder only
        return np.ascontiguousarray(x.transpose(1, 0, 2) if transposed else x, dtype=np.float32)
    ka, kb = max(1, a // want[1]), max(1, b // want[0])
    if ka > 1 or kb > 1:  # rows first (contiguous blocks), then columns
        x = x[: a - a % ka, : b - b % kb]
        x = (
            x.reshape(a // ka, ka, -1)
            .sum(axis=1, dtype=np.float32)
            .reshape(a // ka, b // kb, kb, c)
        )
        x = x.sum(axis=2) * np.float32(1.0 / (ka * kb))
    out = np.empty((want[1], want[0], c), np.float32)
    for k in range(c):  # small planes now: Pillow's bilinear, one class at a time
        out[..., k] = _reduce(x[..., k], want, Image.Resampling.BILINEAR)
    return np.ascontiguousarray(out.transpose(1, 0, 2) if transposed else out)


def _reduce(plane: np.ndarray, size: tuple[int, int], resample=Image.Resampling.BOX) -> np.ndarray:
    if plane.shape[::-1] == tuple(size):
        return plane.astype(np.float32, copy=False)
    img = Image.fromarray(np.ascontiguousarray(plane, dtype=np.float32), mode="F")
    return np.asarray(img.resize(size, resample), dtype=np.float32)


def _grey(frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    img = Image.fromarray(np.ascontiguousarray(frame)).convert("L")
    if img.size != tuple(size):
        img = img.resize(size, Image.Resampling.BOX)
    return np.asarray(img, np.float32) * (1.0 / 255.0)


def _local_mean(x: np.ndarray) -> np.ndarray:
    """3x3 mean: one noisy grey level is not a change, a moved edge is."""
    from .matte import box_mean

    return box_mean(x, 1)


def global_shift(before: np.ndarray, after: np.ndarray) -> tuple[float, float]:
    """(dy, dx) in grid cells that moves ``before`` onto ``after`` (a camera pan), by phase
    correlation with a sub-cell peak; (0, 0) where no single translation stands out."""
    h, w = before.shape
    if h < 8 or w < 8:
        return 0.0, 0.0
    window = np.outer(np.hanning(h), np.hanning(w)).astype(np.float32)
    fa = np.fft.rfft2((before - before.mean()) * window)
    fb = np.fft.rfft2((after - after.mean()) * window)
    cross = fb * np.conj(fa)
    cross /= np.maximum(np.abs(cross), 1e-9)
    corr = np.fft.irfft2(cross, s=(h, w))
    peak = np.unravel_index(int(np.argmax(corr)), corr.shape)
    top = corr[peak]
    if top < 0.08 or top < 4 * float(np.abs(corr).mean()) * np.sqrt(h * w) / 8:
        return 0.0, 0.0
    out = []
    for axis, n in enumerate((h, w)):
        i = peak[axis]
        lo = corr[(i - 1) % h, peak[1]] if axis == 0 else corr[peak[0], (i - 1) % w]
        hi = corr[(i + 1) % h, peak[1]] if axis == 0 else corr[peak[0], (i + 1) % w]
        den = lo - 2 * top + hi
        frac = 0.5 * (lo - hi) / den if den < 0 else 0.0
        d = i + float(np.clip(frac, -0.5, 0.5))
        out.append(d - n if d > n / 2 else d)
    dy, dx = out
    if abs(dy) > h / 4 or abs(dx) > w / 4:  # a cut, not a pan
        return 0.0, 0.0
    return (dy, dx) if abs(dy) + abs(dx) >= 0.25 else (0.0, 0.0)


def shift(x: np.ndarray, dy: float, dx: float) -> np.ndarray:
    """``x`` (h, w[, C]) moved by (dy, dx) cells, bilinear, edges repeated."""
    h, w = x.shape[:2]
    ys = np.clip(np.arange(h) - dy, 0, h - 1)
    xs = np.clip(np.arange(w) - dx, 0, w - 1)
    y0 = np.floor(ys).astype(np.intp)
    x0 = np.floor(xs).astype(np.intp)
    y1, x1 = np.minimum(y0 + 1, h - 1), np.minimum(x0 + 1, w - 1)
    wy = (ys - y0).astype(np.float32)
    wx = (xs - x0).astype(np.float32)
    shape_y = (h, 1) + (1,) * (x.ndim - 2)
    shape_x = (1, w) + (1,) * (x.ndim - 2)
    rows = x[y0] * (1 - wy).reshape(shape_y) + x[y1] * wy.reshape(shape_y)
    return rows[:, x0] * (1 - wx).reshape(shape_x) + rows[:, x1] * wx.reshape(shape_x)
