"""Accurate mode: the tile grid, fusion across scales and flips, odd image sizes, ArgMax models."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import EXAMPLES
from PIL import Image

from seglite import Segmenter
from seglite.image import load_image
from seglite.postprocess.bilinear import resample
from seglite.result import Timings
from seglite.tiling import _footprint, _Fuser, fused_scores, scaled_size, tile_grid, tile_starts


@pytest.mark.parametrize("length", [1, 100, 257, 258, 300, 385, 428, 429, 514, 1000, 1031])
def test_tiles_cover_every_pixel_with_overlap_and_flush_edge(length):
    tile, stride = 257, 171
    starts = tile_starts(length, tile, stride)
    assert starts[0] == 0
    if length <= tile:
        assert starts == [0]
        return
    assert starts[-1] == length - tile  # last tile flush with the edge
    covered = np.zeros(length, dtype=int)
    for s in starts:
        covered[s : s + tile] += 1
    assert covered.min() >= 1
    gaps = np.diff(starts)
    assert (gaps <= stride).all() and (gaps > 0).all()
    assert all(tile - g >= tile // 3 for g in gaps)  # neighbours overlap by at least a third


@pytest.mark.parametrize("align", [True, False])
@pytest.mark.parametrize(("n_scaled", "n_work"), [(386, 500), (514, 500), (514, 514), (300, 281)])
def test_tile_samples_land_where_they_were_taken(n_scaled, n_work, align):
    """Each tile's output samples are laid onto the work grid at the places they describe:
    samples of a ramp (value = the scaled-image coordinate they sit at) interpolate back
    to each work pixel's own coordinate, and the tiles together cover every work pixel."""
    tile, nodes = 257, 33
    ratio = n_scaled / n_work
    covered = np.zeros(n_work, dtype=int)
    for start in tile_starts(n_scaled, tile, 171):
        k = np.arange(nodes, dtype=np.float64)
        at = k * (tile - 1) / (nodes - 1) if align else (k + 0.5) * tile / nodes - 0.5
        samples = np.broadcast_to((start + at)[:, None, None], (nodes, 1, 1)).astype(np.float32)
        first, rows = _footprint(start, tile, nodes, align, n_scaled, n_work)
        _, cols = _footprint(0, tile, 1, align, tile, 1)
        got = resample(samples, rows, cols)[:, 0, 0]
        r = np.arange(first, first + len(got))
        want = (r + 0.5) * ratio - 0.5
        lo, hi = start + at[0], start + at[-1]  # clamped outside the samples' span
        np.testing.assert_allclose(got, np.clip(want, lo, hi), atol=1e-3)
        covered[first : first + len(got)] += 1
    assert covered.min() >= 1


def test_grid_is_the_product_of_axes():
    grid = tile_grid((386, 514), (257, 257))
    assert len(grid) == 2 * 3
    assert (386 - 257, 514 - 257) in grid


def test_scaled_size_keeps_aspect():
    assert scaled_size((500, 375), (257, 257), 2.0) == (514, 386)
    assert scaled_size((3000, 20), (257, 257), 1.5) == (386, 3)


def test_tiled_single_tile_equals_squash_exactly(starter):
    img = Image.open(EXAMPLES / "chelsea.jpg").convert("RGB").resize((257, 257))
    t = Timings()
    fuser = _Fuser(starter.backend, 21, t)
    squash = fuser.pass_scores(np.asarray(img), (257, 257), squash=True)
    tiled = fuser.pass_scores(np.asarray(img), (257, 257), squash=False)
    assert np.array_equal(squash, tiled)
    fused, n = fused_scores(starter.backend, load_image(img), (1.0,), False, t, 21)
    grid = (fused.shape[1], fused.shape[0])  # the fused map's own, coarser grid
    assert n == 1 and grid == (129, 129)
    assert np.array_equal(fused, fuser.pass_scores(np.asarray(img), grid, squash=True))
    # the model's own output: the probabilities come from its scores before the final
    # upsampling (softmax first, then the same align-corners upsampling), so the classes
    # agree except where two are within rounding of each other
    logits = starter.backend.run(np.asarray(img)[None])[0]
    assert (squash.argmax(-1) == logits.argmax(-1)).mean() > 0.998


def test_flip_fusion_of_a_symmetric_image_is_symmetric():
    half = np.asarray(Image.open(EXAMPLES / "astronaut.jpg").convert("RGB"))[:, :256]
    sym = np.ascontiguousarray(np.concatenate([half, half[:, ::-1]], axis=1))
    seg = Segmenter(scales=(1.5,), flip=True, output_confidence_masks=True, num_threads=2)
    result = seg.segment(sym)
    conf = result.confidence_masks
    assert np.allclose(conf, conf[:, :, ::-1], atol=1e-5)
    assert (result.category_mask == result.category_mask[:, ::-1]).mean() > 0.999


def test_accurate_mode_on_argmax_model_votes():
    seg = Segmenter("coral-pascal-dm05", scales=(1.5, 2.0), flip=True, num_threads=2)
    result = seg.segment(EXAMPLES / "chelsea.jpg")
    assert result.category_mask.shape == (300, 451)
    assert max(result.fractions, key=result.fractions.get) == "cat"
    assert result.timings.invocations > 2


@pytest.mark.parametrize("size", [(5, 5), (3000, 20), (20, 3000), (4000, 3000), (257, 257)])
def test_any_image_size(size, starter):
    seg = Segmenter(scales=(1.5, 2.0), flip=True, num_threads=2)
    rng = np.random.default_rng(0)
    img = Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8))
    result = seg.segment(img)
    assert result.category_mask.shape == (size[1], size[0])
    # Tiles follow the model size, not the photo: at most 3x3 tiles per scale and flip.
    assert result.timings.invocations <= 2 * (4 + 9)


def test_accurate_confidence_masks_are_probabilities():
    seg = Segmenter(scales=(1.0, 1.5), flip=True, output_confidence_masks=True, num_threads=2)
    result = seg.segment(EXAMPLES / "chelsea.jpg")
    assert result.confidence_masks.shape == (21, 300, 451)
    assert np.allclose(result.confidence_masks.sum(0), 1.0, atol=1e-4)
    assert (result.confidence_masks.argmax(0) == result.category_mask).mean() > 0.99


def test_segment_accurate_writes_the_masks_eval_scores(tmp_path):
    """`seglite segment --accurate` and `seglite eval --accurate` see the same masks."""
    import json
    import subprocess
    import sys

    from conftest import PETS_VOC

    from seglite.data.datasets import voc_dataset
    from seglite.eval.evaluate import evaluate
    from seglite.eval.metrics import ConfusionMatrix
    from seglite.segmenter import ACCURATE_FLIP, ACCURATE_SCALES

    voc = voc_dataset(PETS_VOC).subset(2)
    images = [voc.pairs[i][0] for i in range(2)]
    proc = subprocess.run(
        [sys.executable, "-m", "seglite", "segment", *map(str, images), "--accurate", "--mask",
         "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    cm = ConfusionMatrix(voc.num_classes, voc.ignore_index)
    for i, image in enumerate(images):
        mask = np.asarray(Image.open(tmp_path / f"{image.stem}.mask.png"))
        cm.update(mask, voc.read_mask(i, (mask.shape[1], mask.shape[0])))
    scored = evaluate("deeplabv3", voc, scales=ACCURATE_SCALES, flip=ACCURATE_FLIP, num_threads=2)
    assert np.array_equal(scored.cm.matrix, cm.matrix)
    assert json.dumps(scored.as_dict()["settings"]["scales"]) == "[1.5, 2.0]"
