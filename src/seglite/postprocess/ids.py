"""Class-id maps: the one dtype rule (uint8 while ids fit, else uint16) and their resize."""

from __future__ import annotations

from functools import lru_cache

import numpy as np


def id_dtype(num_classes: int) -> np.dtype:
    """uint8 for up to 256 classes, uint16 beyond: what every category mask is stored as."""
    return np.dtype(np.uint8 if num_classes <= 256 else np.uint16)


def as_ids(ids: np.ndarray, num_classes: int) -> np.ndarray:
    """``ids`` in :func:`id_dtype` of ``num_classes`` (no copy where it already is)."""
    return ids.astype(id_dtype(num_classes), copy=False)


@lru_cache(maxsize=32)
def nearest_axis(n_in: int, n_out: int) -> np.ndarray:
    """Source index of each output coordinate for a nearest-neighbour resize (pixel centres)."""
    return np.minimum(((np.arange(n_out) + 0.5) * (n_in / n_out)).astype(np.intp), n_in - 1)


def upsample_ids(ids: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize of a class-id map (models whose output is already an ArgMax)
    to ``size`` = (width, height); stored by the largest id it holds."""
    h, w = ids.shape
    out_w, out_h = size
    ids = as_ids(ids, int(ids.max(initial=0)) + 1)
    if (h, w) == (out_h, out_w):
        return ids
    return ids.take(nearest_axis(w, out_w), axis=1).take(nearest_axis(h, out_h), axis=0)
