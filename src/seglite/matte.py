"""Alpha mattes: a soft [0, 1] subject mask at the photo's size that follows the photo's edges.

A segmentation model sees the photo at 257x257 or so; upsampled, its probabilities make a
blurry, blocky edge, and an ArgMax-only model gives a hard stair-stepped one. Cut-outs and
background effects need a *matte*: opaque inside the subject, transparent outside, with a
band of partial alpha that follows the hair, fur and clothing edges of the photo itself.

:func:`alpha_matte` builds it in three steps:

1. **the subject's probability**: the sum of the chosen classes' confidence masks (or, for
   an ArgMax model, the chosen classes' category mask, feathered by a box blur of
   ``feather`` px), optionally moved by ``threshold`` (the probability that becomes 0.5);
2. **edge-aware refinement** with the guided filter of He, Sun and Tang (ECCV 2010 /
   TPAMI 2013) guided by the RGB photo, in its *fast* form (He and Sun, "Fast Guided
   Filter", 2015): the filter's linear coefficients are computed on a reduced grid (long
   side ``grid`` px) and upsampled bilinearly, so the full-resolution cost is four
   bilinear planes and a multiply-add per pixel, whatever the radius;
3. a **clean-up ramp** that sends the filter's small leaks to exactly 0 and 1, so the
   background is fully transparent and the inside fully opaque.

Why our own ~60 lines of numpy and not a library: opencv-contrib's
``cv2.ximgproc.guidedFilter`` is the maintained implementation, but it is a 60+ MB wheel
and works at full resolution only (slower than the reduced grid at video sizes); the
inference path of seglite is numpy, Pillow and LiteRT only. The box filters here are
cumulative sums (constant cost per pixel for any radius); resizes go through Pillow's
float ("F") images. The tests compare this filter with OpenCV's where OpenCV is installed.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from .errors import OptionError

if TYPE_CHECKING:
    from .image import ImageSource
    from .result import SegmentationResult

# Classes that are "not a subject" when no classes are named (as in viz.UNCOLOURED).
_NOT_SUBJECT = {"background", "other", "unlabelled", "void"}
DEFAULT_GRID = 384  # long side of the reduced grid the guided filter works on
DEFAULT_EPS = 1e-3  # guided filter regularisation (guide in [0, 1]): lower = follows edges more
RAMP = 0.3  # probabilities within threshold +- RAMP / 2 make the soft edge
_CLEAN = (0.03, 0.97)  # alpha below / above these becomes exactly 0 / 1


def subject_classes(result: SegmentationResult, classes: Sequence[str | int] | None) -> list[int]:
    """Class indices for ``classes`` (names or ids); all but background-like ones if None."""
    names = result.label_set.names
    if classes is None:
        found = [i for i, n in enumerate(names) if n.lower() not in _NOT_SUBJECT]
        return found or list(range(len(names)))
    out = []
    for c in classes:
        if isinstance(c, (int, np.integer)):
            if not 0 <= int(c) < len(names):
                raise OptionError(f"class id {c} is outside the model's {len(names)} classes")
            out.append(int(c))
            continue
        try:
            out.append(result.label_set.index(str(c)))
        except KeyError:
            shown = ", ".join(names[:8]) + (", ..." if len(names) > 8 else "")
            raise OptionError(
                f"no class {c!r} in {result.model or 'this model'}'s labels ({shown})"
            ) from None
    if not out:
        raise OptionError("name at least one class for the matte, e.g. classes=['person']")
    return sorted(set(out))


def alpha_matte(
    result: SegmentationResult,
    classes: Sequence[str | int] | None = None,
    *,
    image: ImageSource | Image.Image | np.ndarray | None = None,
    feather: float | None = None,
    threshold: float = 0.5,
    refine: bool = True,
    radius: float | None = None,
    eps: float = DEFAULT_EPS,
    grid: int = DEFAULT_GRID,
) -> np.ndarray:
    """(H, W) float32 alpha in [0, 1] at the result's size: 1 = subject, 0 = the rest.

    ``classes``: names or ids of the subject (default: every class but background-like
    ones). ``image``: the photo the result came from; with it (and ``refine``) the matte
    follows the photo's edges, without it the matte is the (feathered) probability alone.
    ``feather``: width in px of the soft edge added by a box blur (default: none for
    probability maps, which are soft already; about 0.4% of the image's diagonal for
    ArgMax masks). ``threshold``: the subject probability that maps to alpha 0.5 (raise it
    to tighten the matte, lower it to grow it). ``radius`` (px at full size, default about
    1% of the long side) and ``eps`` are the guided filter's; ``grid`` is the long side of
    the reduced grid it runs on.
    """
    if not 0.0 < threshold < 1.0:
        raise OptionError(f"threshold must be between 0 and 1 (exclusive), got {threshold}")
    if feather is not None and feather < 0:
        raise OptionError(f"feather must be >= 0 px, got {feather}")
    if grid < 16:
        raise OptionError(f"grid must be at least 16 px, got {grid}")
    ids = subject_classes(result, classes)
    w, h = result.size
    soft = result.confidence_masks is not None
    p = _subject_probability(result, ids, grid_size((w, h), grid))
    return matte_from_probability(
        p, (w, h), image, soft=soft, feather=feather, threshold=threshold, refine=refine,
        radius=radius, eps=eps, grid=grid,
    )  # fmt: skip


def subject_probability(
    result: SegmentationResult, classes: Sequence[str | int] | None = None, grid: int = DEFAULT_GRID
) -> tuple[np.ndarray, bool]:
    """(the subject's probability on the reduced grid, whether it is soft) for
    :func:`matte_from_probability`: the matte of a result computed on a reduced copy of a
    photo, brought to the photo's own size and edges (the service does this)."""
    ids = subject_classes(result, classes)
    p = _subject_probability(result, ids, grid_size(result.size, grid))
    return p, result.confidence_masks is not None


def grid_size(size: tuple[int, int], grid: int = DEFAULT_GRID) -> tuple[int, int]:
    """(width, height) of the reduced grid for an image of ``size``."""
    w, h = size
    scale = max(1.0, max(w, h) / grid)
    return max(1, round(w / scale)), max(1, round(h / scale))


def matte_from_probability(
    p: np.ndarray,
    size: tuple[int, int],
    image=None,
    *,
    soft: bool = True,
    feather: float | None = None,
    threshold: float = 0.5,
    refine: bool = True,
    radius: float | None = None,
    eps: float = DEFAULT_EPS,
    grid: int = DEFAULT_GRID,
) -> np.ndarray:
    """The matte at ``size`` from a subject probability ``p`` (h, w) at any resolution (e.g.
    video's smoothed one); ``soft`` False means ``p`` is a 0/1 mask. As :func:`alpha_matte`."""
    w, h = size
    gw, gh = grid_size(size, grid)
    scale = w / gw
    if p.shape != (gh, gw):
        p = np.clip(_resize(p, (gw, gh), Image.Resampling.BILINEAR), 0.0, 1.0)
    if soft:
        p = _ramp(p, threshold)
    if feather is None:
        feather = 0.0 if soft else max(1.0, 0.004 * float(np.hypot(w, h)))
    if feather > 0:
        p = _box_blur(p, max(1, round(feather / scale)), passes=2)
    if image is None or not refine:
        return _clean(_resize(p, (w, h)))
    guide = _guide(image, (w, h))
    r = radius if radius is not None else max(2.0, 0.01 * max(w, h))
    r_grid = max(1, round(r / scale))
    small = np.asarray(Image.fromarray(guide).resize((gw, gh), Image.Resampling.BOX), np.float32)
    a, b = _guided_coefficients(small / 255.0, p, r_grid, eps)
    q = _resize(b, (w, h))
    full = guide.astype(np.float32)
    full *= 1.0 / 255.0
    for c in range(3):
        q += _resize(a[..., c], (w, h)) * full[..., c]
    return _clean(q)


# -- steps -------------------------------------------------------------------------------------


def _subject_probability(
    result: SegmentationResult, ids: list[int], size: tuple[int, int]
) -> np.ndarray:
    """The subject's probability on the reduced grid (area-averaged from full size)."""
    if result.confidence_masks is not None:
        conf = result.confidence_masks
        rest = [i for i in range(conf.shape[0]) if i not in ids]
        use = rest if len(rest) < len(ids) else ids  # probabilities sum to 1: add the fewer
        p = (
            conf[use[0]].astype(np.float32, copy=True)
            if use
            else np.zeros(conf.shape[1:], np.float32)
        )
        for i in use[1:]:
            p += conf[i]
        if use is rest:
            p = 1.0 - p
    elif result.category_mask is not None:
        p = np.isin(result.category_mask, np.asarray(ids)).astype(np.float32)
    else:
        raise OptionError("the result has neither confidence masks nor a category mask")
    return np.clip(_resize(p, size, Image.Resampling.BOX), 0.0, 1.0)


def _ramp(p: np.ndarray, threshold: float, band: float = RAMP) -> np.ndarray:
    """Probability to matte: ``threshold`` becomes 0.5 and the ``band`` around it the soft
    edge. A model's probability is not an opacity: an unsure background at 0.2 would leave a
    haze over the whole cut-out; where it crosses the threshold is where the edge is."""
    lo = min(max(threshold - band / 2, 0.0), 1.0 - band)
    q = p - lo
    q *= 1.0 / band
    return np.clip(q, 0.0, 1.0, out=q)


def _clean(q: np.ndarray) -> np.ndarray:
    lo, hi = _CLEAN
    q -= lo
    q *= 1.0 / (hi - lo)
    return np.clip(q, 0.0, 1.0, out=q)


def _guide(image, size: tuple[int, int]) -> np.ndarray:
    """The photo as (H, W, 3) uint8 at ``size``."""
    if isinstance(image, np.ndarray) and image.ndim == 3 and image.shape[2] == 3:
        arr = image if image.dtype == np.uint8 else np.clip(image, 0, 255).astype(np.uint8)
        if arr.shape[1::-1] == size:
            return np.ascontiguousarray(arr)
        img = Image.fromarray(arr)
    elif isinstance(image, Image.Image):
        from .image import load_image

        img = load_image(image, max_pixels=None).image
    else:
        from .image import load_image

        img = load_image(image, max_pixels=None).image
    if img.size != size:
        img = img.resize(size, Image.Resampling.BILINEAR)
    return np.asarray(img.convert("RGB"))


def _resize(x: np.ndarray, size: tuple[int, int], resample=Image.Resampling.BILINEAR) -> np.ndarray:
    """(h, w) float32 to ``size`` = (width, height) through Pillow's float images."""
    if x.shape[::-1] == tuple(size):
        return np.array(x, dtype=np.float32)
    out = Image.fromarray(np.ascontiguousarray(x, dtype=np.float32), mode="F").resize(
        size, resample
    )
    return np.asarray(out, dtype=np.float32).copy()


@lru_cache(maxsize=64)
def _inverse_counts(n: int, r: int) -> np.ndarray:
    i = np.arange(n)
    return (1.0 / (np.minimum(i + r, n - 1) - np.maximum(i - r, 0) + 1)).astype(np.float32)


def _mean_along(x: np.ndarray, r: int, axis: int) -> np.ndarray:
    n = x.shape[axis]
    r = min(r, n - 1)
    pad = [(0, 0)] * x.ndim
    pad[axis] = (r + 1, r)  # one leading zero more: window i is c[i + 2r + 1] - c[i]
    c = np.cumsum(np.pad(x, pad), axis=axis, dtype=np.float32)
    hi, lo = [slice(None)] * x.ndim, [slice(None)] * x.ndim
    hi[axis], lo[axis] = slice(2 * r + 1, 2 * r + 1 + n), slice(0, n)
    out = c[tuple(hi)] - c[tuple(lo)]
    shape = [1] * x.ndim
    shape[axis] = n
    out *= _inverse_counts(n, r).reshape(shape)
    return out


def box_mean(x: np.ndarray, r: int) -> np.ndarray:
    """Mean over the (2r+1)^2 window around each pixel of (h, w) or (h, w, C), clipped at the
    borders (the guided filter's f_mean). Cumulative sums, so any radius costs the same;
    float32 (window means of values in [0, 1] come out within 2e-5 of float64)."""
    return _mean_along(_mean_along(x, r, 0), r, 1)


def _box_blur(p: np.ndarray, r: int, passes: int = 2) -> np.ndarray:
    for _ in range(passes):  # two box passes: a tent, close enough to a Gaussian here
        p = box_mean(p, r)
    return p


def _guided_coefficients(
    guide: np.ndarray, p: np.ndarray, r: int, eps: float
) -> tuple[np.ndarray, np.ndarray]:
    """Mean linear coefficients (a: (h, w, 3), b: (h, w)) of the colour guided filter.

    q = a . I + b in each window, a = (Sigma + eps U)^-1 cov(I, p), b = mean(p) - a . mean(I),
    then both averaged over the windows that cover a pixel (He et al., eq. 14-16).
    """
    pairs = ((0, 0), (0, 1), (0, 2), (1, 1), (1, 2), (2, 2))
    stack = np.empty((*p.shape, 13), np.float32)  # I, p, I p, the six products I_i I_j
    stack[..., :3] = guide
    stack[..., 3] = p
    stack[..., 4:7] = guide * p[..., None]
    for k, (i, j) in enumerate(pairs):
        np.multiply(guide[..., i], guide[..., j], out=stack[..., 7 + k])
    means = box_mean(stack, r)
    mean_i, mean_p = means[..., :3], means[..., 3]
    cov_ip = means[..., 4:7] - mean_i * mean_p[..., None]
    s00, s01, s02, s11, s12, s22 = (
        means[..., 7 + k] - mean_i[..., i] * mean_i[..., j] for k, (i, j) in enumerate(pairs)
    )
    s00 = s00 + eps
    s11 = s11 + eps
    s22 = s22 + eps
    # Inverse of the symmetric 3x3 by its adjugate, per pixel.
    i00 = s11 * s22 - s12 * s12
    i01 = s02 * s12 - s01 * s22
    i02 = s01 * s12 - s02 * s11
    i11 = s00 * s22 - s02 * s02
    i12 = s01 * s02 - s00 * s12
    i22 = s00 * s11 - s01 * s01
    det = s00 * i00 + s01 * i01 + s02 * i02
    c0, c1, c2 = cov_ip[..., 0], cov_ip[..., 1], cov_ip[..., 2]
    a = np.stack(
        [i00 * c0 + i01 * c1 + i02 * c2, i01 * c0 + i11 * c1 + i12 * c2,
         i02 * c0 + i12 * c1 + i22 * c2],
        axis=-1,
    ) / det[..., None]  # fmt: skip
    ab = np.empty((*p.shape, 4), np.float32)
    ab[..., :3] = a
    ab[..., 3] = mean_p - (a * mean_i).sum(axis=-1)
    ab = box_mean(ab, r)
    return ab[..., :3], ab[..., 3]


def guided_filter(guide: np.ndarray, p: np.ndarray, r: int, eps: float = DEFAULT_EPS) -> np.ndarray:
    """The colour guided filter at one resolution: ``guide`` (h, w, 3) in [0, 1], ``p`` (h, w)."""
    a, b = _guided_coefficients(guide.astype(np.float32), p.astype(np.float32), r, eps)
    return (a * guide).sum(axis=-1) + b
