"""Temporal smoothing on real frames: less flicker on a pan and on a still camera, no smear
after a cut, the pan itself found by phase correlation."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import EXAMPLES, PETS_VOC, model_file, pan_frames, pan_offset
from PIL import Image

from seglite import Segmenter
from seglite.errors import OptionError
from seglite.smoothing import DEFAULT_SMOOTH, TemporalSmoother, global_shift, shift

N, SIZE = 40, (480, 360)


@pytest.fixture(scope="module")
def seg():
    return Segmenter("deeplabv3", num_threads=2, output_confidence_masks=True)


def flicker(masks: list[np.ndarray], offsets: list[tuple[int, int]]) -> float:
    """Share of pixels whose label differs from the previous frame's at the same scene point."""
    changed = []
    for (a, (xa, _)), (b, (xb, _)) in zip(zip(masks, offsets), zip(masks[1:], offsets[1:])):
        dx = xb - xa  # frame b's column x shows what frame a showed at column x + dx
        changed.append(float((a[:, dx:] != b[:, : b.shape[1] - dx]).mean()))
    return float(np.mean(changed))


def smoothed(results, frames, strength) -> list[np.ndarray]:
    sm = TemporalSmoother(strength)
    return [sm(r, f).category_mask for r, f in zip(results, frames)]


def test_pan_flickers_at_most_about_half_as_much_and_stays_as_accurate(seg):
    rng = np.random.default_rng(0)
    frames = [
        np.clip(f + rng.normal(0, 3, f.shape), 0, 255).astype(np.uint8)
        for f in pan_frames(N, SIZE)[:14]
    ]
    offsets = [pan_offset(i, N, SIZE) for i in range(len(frames))]
    results = [seg.segment(f) for f in frames]
    off = [r.category_mask for r in results]
    on = smoothed(results, frames, DEFAULT_SMOOTH)
    f_off, f_on = flicker(off, offsets), flicker(on, offsets)
    assert f_off > 0.003  # there is flicker to remove
    assert f_on <= 0.6 * f_off, (f_on, f_off)
    # Not a frozen mask: each smoothed frame stays close to that frame's own segmentation.
    assert min((a == b).mean() for a, b in zip(on, off)) > 0.95
    assert all(m.shape == (SIZE[1], SIZE[0]) and m.dtype == off[0].dtype for m in on)


def test_a_still_camera_with_noise_is_steadied_and_a_cut_is_not_smeared(seg):
    photo = np.asarray(Image.open(EXAMPLES / "astronaut.jpg").convert("RGB"))
    rng = np.random.default_rng(1)
    frames = [np.clip(photo + rng.normal(0, 6, photo.shape), 0, 255).astype(np.uint8)
              for _ in range(8)]  # fmt: skip
    results = [seg.segment(f) for f in frames]
    zero = [(0, 0)] * len(frames)
    off, on = [r.category_mask for r in results], smoothed(results, frames, DEFAULT_SMOOTH)
    assert flicker(on, zero) <= 0.5 * flicker(off, zero)
    # A cut to another photo of the same size: the new frame's own mask at once.
    other = Image.open(sorted((PETS_VOC / "JPEGImages").glob("*.jpg"))[2]).convert("RGB")
    cut = np.asarray(other.resize(photo.shape[1::-1]))
    sm = TemporalSmoother(DEFAULT_SMOOTH)
    for r, f in zip(results, frames):
        sm(r, f)
    raw = seg.segment(cut)
    assert (sm(raw, cut).category_mask == raw.category_mask).mean() > 0.98


def test_strength_zero_is_off_and_bad_values_are_one_line(seg):
    frame = np.asarray(Image.open(EXAMPLES / "astronaut.jpg").convert("RGB"))
    r = seg.segment(frame)
    sm = TemporalSmoother(0)
    assert not sm.enabled and sm(r, frame) is r and sm(r, frame) is r
    for bad in (-0.1, 1.0, "x"):
        with pytest.raises(OptionError, match="--smooth"):
            TemporalSmoother(bad)


def test_argmax_models_are_smoothed_as_votes():
    seg = Segmenter(model_file("deeplabv3_mnv2_pascal_257_os8_quant.tflite"), num_threads=2)
    frames = pan_frames(N, SIZE)[:4]
    results = [seg.segment(f) for f in frames]
    assert results[0].confidence_masks is None
    on = smoothed(results, frames, DEFAULT_SMOOTH)
    assert all((a == r.category_mask).mean() > 0.9 for a, r in zip(on, results))


def test_global_shift_finds_the_pan():
    grey = np.asarray(Image.open(EXAMPLES / "astronaut.jpg").convert("L"), np.float32) / 255
    a = grey[100:292, 60:316]
    for dy, dx in ((0, 4), (-3, 2), (0, 0)):
        b = grey[100 - dy : 292 - dy, 60 - dx : 316 - dx]
        got = global_shift(a, b)
        assert abs(got[0] - dy) < 0.3 and abs(got[1] - dx) < 0.3, (dy, dx, got)
        moved = shift(a, *got)
        assert np.abs(moved - b)[8:-8, 8:-8].mean() < 0.01
    noise = np.random.default_rng(2).random((2, 120, 160)).astype(np.float32)
    assert global_shift(noise[0], noise[1]) == (0.0, 0.0)  # no translation stands out
