"""From what a model gave to masks at the photo's size: one entry, :func:`to_masks`.

What a backend hands over takes one of four shapes, and each has its strategy:

- class ids (h, w), from models that end in an ArgMax: nearest-neighbour (ids.py);
- scores (h, w, C) with their argmax: the exact boundary-only upsampling (category.py,
  built from boundary.py), the argmax computed here where the graph did not (argmax.py);
- coarse scores whose final align-corners upsampling was cut from the graph, with their
  argmax: the same reasoning through the cut op (coarse.py);
- probabilities fused over tiles, scales and flips (accurate mode, tiling.py).

Confidence masks are softmax + bilinear planes (probabilities.py). Every resize samples
with bilinear.py's tables. Class ids are uint8 while they fit, else uint16 (ids.py).
To add an upsampling strategy: a module here and a branch in :func:`to_masks`.
"""

from __future__ import annotations

import numpy as np

from .argmax import ArgmaxKernel, argmax_scores
from .category import upsample_category
from .coarse import upsample_category_coarse
from .ids import as_ids, id_dtype, upsample_ids
from .probabilities import confidence_planes, softmax, upsample_bilinear

__all__ = [
    "ArgmaxKernel",
    "argmax_scores",
    "as_ids",
    "confidence_planes",
    "id_dtype",
    "softmax",
    "to_masks",
    "upsample_bilinear",
    "upsample_category",
    "upsample_category_coarse",
    "upsample_ids",
]


def to_masks(
    out: np.ndarray,
    size: tuple[int, int],
    *,
    category: bool = True,
    confidence: bool = False,
    ids: np.ndarray | None = None,
    coarse_factor: tuple[int, int] | None = None,
    probabilities: bool = False,
    kernel: ArgmaxKernel | None = None,
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(category mask (H, W) ids, confidence masks (C, H, W) float32) at ``size`` =
    (width, height), each None where not asked for.

    ``out`` is class ids (h, w) or scores (h, w, C); ``ids`` their argmax where the graph
    computed it; ``coarse_factor`` says the scores are that much coarser than the model's
    output (its final align-corners upsampling cut; category mask only); ``probabilities``
    says ``out`` is already softmax-ed; ``kernel`` computes a missing argmax.
    """
    if out.ndim == 2:
        return upsample_ids(out, size), None
    if coarse_factor:
        if confidence or ids is None:
            raise ValueError("coarse scores give the category mask only, from their argmax")
        return upsample_category_coarse(out, ids, coarse_factor, size), None
    mask = planes = None
    if category:
        low = as_ids(ids, out.shape[-1]) if ids is not None else argmax_scores(out, kernel)
        mask = upsample_category(out, size, low)
    if confidence:
        planes = confidence_planes(out, size, probabilities)
    return mask, planes
