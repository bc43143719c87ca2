"""The fast boundary-only upsampling gives exactly the full computation's mask."""

from __future__ import annotations

import numpy as np
import pytest

from seglite.postprocess import upsample_bilinear, upsample_category, upsample_ids


def smooth_scores(h, w, c, seed=0):
    rng = np.random.default_rng(seed)
    coarse = rng.normal(size=(c, max(2, h // 8), max(2, w // 8))).astype(np.float32) * 3
    return np.ascontiguousarray(upsample_bilinear(coarse, (w, h)).transpose(1, 2, 0))


@pytest.mark.parametrize(
    "low, out",
    [
        ((257, 257), (640, 480)),
        ((33, 65), (1000, 7)),
        ((20, 30), (30, 20)),
        ((5, 5), (3000, 20)),
        ((33, 33), (1200, 900)),  # many pixels a cell: the candidate-class path
    ],
)
def test_matches_naive_full_computation(low, out):
    scores = smooth_scores(*low, 21)
    naive = upsample_bilinear(np.ascontiguousarray(scores.transpose(2, 0, 1)), out).argmax(axis=0)
    fast = upsample_category(scores, out)
    assert fast.shape == (out[1], out[0])
    assert (fast == naive).mean() > 0.9999  # equal up to float ties


@pytest.mark.parametrize(
    "low, classes, out", [((65, 65), 21, (1920, 1080)), ((40, 40), 151, (900, 700))]
)
def test_candidate_classes_change_no_pixel(monkeypatch, low, classes, out):
    """Cutting each cell to the classes that can win there is bit for bit the same as
    interpolating every class (the per-pixel path), ties included."""
    import seglite.postprocess.category as category

    scores = smooth_scores(*low, classes, seed=4)
    scores[10:20, 10:20, :3] = 2.0  # exact ties between classes
    assert category.cells_pay_off(*_boundary_counts(scores, out), classes)
    fast = upsample_category(scores, out)
    monkeypatch.setattr(category, "cells_pay_off", lambda *args: False)
    assert np.array_equal(fast, upsample_category(scores, out))


def _boundary_counts(scores, out):
    from seglite.postprocess.boundary import boundary_pixels, uniform_cells

    low = scores.argmax(-1)
    ys, _, ci, _, _ = boundary_pixels(uniform_cells(low), out[1], out[0])
    return ys.size, ci.size


def test_identity_size_is_plain_argmax():
    scores = smooth_scores(64, 48, 5)
    assert (upsample_category(scores, (48, 64)) == scores.argmax(-1)).all()


def test_bilinear_matches_pillow():
    from PIL import Image

    plane = np.random.default_rng(1).random((17, 23)).astype(np.float32)
    ours = upsample_bilinear(plane[None], (61, 45))[0]
    pil = np.asarray(Image.fromarray(plane, "F").resize((61, 45), Image.Resampling.BILINEAR))
    assert np.abs(ours - pil).max() < 1e-4


def test_ids_nearest():
    ids = np.arange(12).reshape(3, 4)
    up = upsample_ids(ids, (8, 6))
    assert up.shape == (6, 8) and set(np.unique(up)) == set(range(12))
    assert up[0, 0] == 0 and up[-1, -1] == 11


@pytest.mark.parametrize("shape", [(257, 257, 21), (513, 513, 151), (7, 300, 2), (4, 4, 300)])
def test_argmax_kernel_equals_numpy(shape):
    from seglite.postprocess import ArgmaxKernel, argmax_scores

    kernel = ArgmaxKernel()
    scores = np.random.default_rng(3).normal(size=shape).astype(np.float32)
    ids = argmax_scores(scores, kernel)
    assert ids.dtype == (np.uint8 if shape[-1] <= 256 else np.uint16)
    assert np.array_equal(ids, scores.argmax(-1))
    assert np.array_equal(argmax_scores(scores[:5, :6], kernel), scores[:5, :6].argmax(-1))
