"""The starter's final 8x upsampling cut from the graph and done lazily: the same masks."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import EXAMPLES, MODEL_DIR, PETS_VOC, model_file
from PIL import Image

from seglite import Segmenter
from seglite.postprocess import upsample_category, upsample_category_coarse
from seglite.runtime.final_resize import cut_final_resize
from seglite.tflite_file import unpack_model
from seglite.zoo import resolve


def align_corners_upsample(coarse: np.ndarray, factor: tuple[int, int]) -> np.ndarray:
    """What the cut RESIZE_BILINEAR(align_corners=True) computes, written out plainly."""
    hc, wc, _ = coarse.shape
    hf, wf = (hc - 1) * factor[0] + 1, (wc - 1) * factor[1] + 1
    sy, sx = np.arange(hf) / factor[0], np.arange(wf) / factor[1]
    y0, x0 = np.minimum(sy.astype(int), hc - 2), np.minimum(sx.astype(int), wc - 2)
    ty, tx = (sy - y0)[:, None, None], (sx - x0)[None, :, None]
    c = coarse.astype(np.float64)
    top = c[y0][:, x0] + (c[y0][:, x0 + 1] - c[y0][:, x0]) * tx
    bottom = c[y0 + 1][:, x0] + (c[y0 + 1][:, x0 + 1] - c[y0 + 1][:, x0]) * tx
    return (top + (bottom - top) * ty).astype(np.float32)


@pytest.mark.parametrize(
    "coarse_hw, classes, factor, size",
    [
        ((33, 33), 21, (8, 8), (640, 480)),
        ((33, 33), 21, (8, 8), (100, 3000)),
        ((17, 9), 151, (4, 4), (500, 375)),
        ((5, 6), 3, (2, 3), (7, 5)),
        ((33, 33), 21, (8, 8), (257, 257)),  # the fine grid itself: its argmax
    ],
)
def test_lazy_chain_equals_the_full_chain(coarse_hw, classes, factor, size):
    rng = np.random.default_rng(7)
    coarse = rng.normal(size=(*coarse_hw, classes)).astype(np.float32) * 4
    coarse[1:3, 1:3, :2] = 3.0  # an exact tie
    low = coarse.argmax(-1)
    fine = align_corners_upsample(coarse, factor)
    want = upsample_category(fine, size)
    got = upsample_category_coarse(coarse, low, factor, size)
    assert got.shape == want.shape == (size[1], size[0])
    assert (got == want).mean() > 0.9999  # equal up to float ties


def test_only_whole_factor_align_corners_upsampling_is_cut():
    starter = unpack_model((model_file("deeplabv3_257_mv_gpu.tflite")).read_bytes())
    assert cut_final_resize(starter) == (8, 8)
    assert [
        int(v) for v in starter.subgraphs[0].tensors[starter.subgraphs[0].outputs[0]].shape
    ] == [
        1,
        33,
        33,
        21,
    ]
    ade = unpack_model(
        (MODEL_DIR / "lite-model_deeplabv3-mobilenetv2-ade20k_1_default_1.tflite").read_bytes()
    )
    assert cut_final_resize(ade) == (4, 4)
    coral = unpack_model((MODEL_DIR / "deeplabv3_mnv2_pascal_quant.tflite").read_bytes())
    assert cut_final_resize(coral) is None  # ends in an ArgMax
    # an int8 model: RESIZE_BILINEAR of int8 scores, then DEQUANTIZE (moved before the cut)
    lite = unpack_model(resolve("camvid-lite").path.read_bytes())
    assert cut_final_resize(lite) == (4, 4)  # 135x179 -> 537x713
    sg = lite.subgraphs[0]
    out = sg.tensors[sg.outputs[0]]
    assert [int(v) for v in out.shape] == [1, 135, 179, 11] and out.type == 0  # FLOAT32


def _photos():
    names = sorted(p.name for p in (PETS_VOC / "JPEGImages").glob("*.jpg"))[:6]
    return [EXAMPLES / "astronaut.jpg", EXAMPLES / "chelsea.jpg"] + [
        PETS_VOC / "JPEGImages" / n for n in names
    ]


@pytest.mark.parametrize("name, factor", [("deeplabv3", (8, 8)), ("ade20k", (4, 4))])
def test_segmenter_masks_match_the_model_with_its_final_upsampling(name, factor):
    cut = Segmenter(name, num_threads=2)
    full = Segmenter(name, num_threads=2, output_confidence_masks=True)  # keeps the op
    assert cut.backend.reduced.coarse_factor == factor
    assert full.backend.reduced.coarse_factor is None
    for path in _photos():
        a = cut.segment(path).category_mask
        b = full.segment(path).category_mask
        assert (a == b).mean() > 0.9999, path.name
        small = Image.open(path).convert("RGB").resize((123, 77))
        assert (
            cut.segment(small).category_mask == full.segment(small).category_mask
        ).mean() > 0.999


def test_int8_model_masks_match_its_int8_upsampling(camvid_dir):
    """camvid-lite's cut path dequantizes before upsampling, where the model upsampled int8
    scores: masks differ only where that rounding tips a near-tie (99.9% agree on CamVid
    frames)."""
    cut = Segmenter("camvid-lite", num_threads=2)
    full = Segmenter("camvid-lite", num_threads=2, output_confidence_masks=True)
    assert cut.backend.reduced.coarse_factor == (4, 4)
    assert full.backend.reduced.coarse_factor is None
    for path in sorted((camvid_dir / "val").glob("*.png")):
        a, b = cut.segment(path).category_mask, full.segment(path).category_mask
        assert a.shape == b.shape and (a == b).mean() > 0.998, path.name


def test_run_still_returns_the_models_own_output(starter):
    """Accurate mode and per-request confidence masks (serve) call run() on the same backend."""
    from seglite.runtime import open_backend

    full = open_backend(starter.model_path, num_threads=2)
    assert starter.backend.reduced.coarse_factor == (8, 8) and full.reduced is None
    pixels = np.asarray(Image.open(EXAMPLES / "chelsea.jpg").convert("RGB"))[None]
    a, b = np.array(starter.backend.run(pixels)), np.array(full.run(pixels))
    assert a.shape == b.shape == (1, 257, 257, 21)
    assert np.abs(a - b).max() < 1e-3
