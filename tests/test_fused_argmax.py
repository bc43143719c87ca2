"""The ARG_MAX fused into a logits model's graph: same masks, fewer copies, safe fallbacks."""

from __future__ import annotations

import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter
from conftest import EXAMPLES, GOLDEN, MODEL_DIR, model_file

from seglite import Segmenter
from seglite.errors import ModelError
from seglite.runtime import open_backend
from seglite.runtime.fused_argmax import add_argmax_output, takes_argmax
from seglite.runtime.litert import _rewritten_model
from seglite.tflite_file import pack_model, unpack_model

LOGIT_MODELS = [
    "deeplabv3_257_mv_gpu.tflite",
    "lite-model_deeplabv3_1_metadata_2.tflite",
    "lite-model_deeplabv3-mobilenetv2-ade20k_1_default_1.tflite",
]


@pytest.mark.parametrize("name", LOGIT_MODELS)
def test_fused_ids_are_the_argmax_of_the_scores(name):
    model = unpack_model(model_file(name).read_bytes())
    assert add_argmax_output(model)
    interp = Interpreter(model_content=pack_model(model), num_threads=2)
    interp.allocate_tensors()
    inp = interp.get_input_details()[0]
    scores_out, ids_out = interp.get_output_details()
    rng = np.random.default_rng(0)
    interp.set_tensor(inp["index"], rng.uniform(-1, 1, inp["shape"]).astype(np.float32))
    interp.invoke()
    scores = interp.get_tensor(scores_out["index"])
    ids = interp.get_tensor(ids_out["index"])
    assert ids.shape == scores.shape[:3] and ids.dtype == np.int32
    assert np.array_equal(ids, scores.argmax(-1))


def test_models_that_output_class_ids_are_left_alone():
    model = unpack_model((MODEL_DIR / "deeplabv3_mnv2_pascal_quant.tflite").read_bytes())
    assert not takes_argmax(model) and not add_argmax_output(model)
    assert not open_backend(
        MODEL_DIR / "deeplabv3_mnv2_pascal_quant.tflite", fuse_argmax=True
    ).reduced


@pytest.mark.parametrize("name", ["deeplabv3", "ade20k"])
def test_fused_and_plain_paths_give_identical_masks(name):
    fused = Segmenter(name, num_threads=2, output_confidence_masks=True)
    plain = Segmenter(name, num_threads=2, output_confidence_masks=True)
    plain.backend = open_backend(plain.model_path, num_threads=2)
    assert fused.backend.reduced is not None and plain.backend.reduced is None
    for image in [GOLDEN / "segmentation_input_rotation0.jpg", EXAMPLES / "chelsea.jpg"]:
        a, b = fused.segment(image), plain.segment(image)
        assert np.array_equal(a.category_mask, b.category_mask)
        assert np.array_equal(a.confidence_masks, b.confidence_masks)


def test_accurate_mode_reads_the_scores_before_the_cut_upsampling(monkeypatch):
    """Accurate mode takes each tile's softmax on the model's 33x33 grid through the reduced
    path (the fused argmax rides along unused), then upsamples probabilities: the same
    classes as the softmax of the model's full 257x257 output, but at the boundary of two
    near-equal classes."""
    import seglite.tiling as tiling

    seg = Segmenter("deeplabv3", scales=(1.0, 1.5), flip=True)
    assert seg.backend.reduced is not None and seg.backend.reduced.coarse_factor == (8, 8)
    coarse = seg.segment(EXAMPLES / "astronaut.jpg").category_mask
    monkeypatch.setattr(tiling, "COARSE_SOFTMAX", False)
    full = seg.segment(EXAMPLES / "astronaut.jpg").category_mask
    assert (coarse == full).mean() > 0.995


def test_results_do_not_hold_the_interpreter_and_errors_release_it(starter):
    image = EXAMPLES / "astronaut.jpg"
    first = starter.segment(image)
    second = starter.segment(image)  # would raise if `first` still referenced interpreter memory
    assert np.array_equal(first.category_mask, second.category_mask)

    def fail(scores, ids):
        raise ModelError("boom")

    pixels = np.zeros((1, 257, 257, 3), np.uint8)
    for _ in range(2):
        with pytest.raises(ModelError, match="boom"):
            starter.backend.reduced.run(pixels, fail)
    assert np.array_equal(starter.segment(image).category_mask, first.category_mask)


def test_scores_handed_to_reduce_are_read_only(starter):
    def write(scores, ids):
        scores[0, 0, 0, 0] = 1.0

    with pytest.raises(ValueError, match="read-only"):
        starter.backend.reduced.run(np.zeros((1, 257, 257, 3), np.uint8), write)


def test_a_failed_rewrite_falls_back_to_the_plain_model(monkeypatch):
    import seglite.runtime.fused_argmax as fa

    expected = Segmenter("deeplabv3", num_threads=2).segment(EXAMPLES / "astronaut.jpg")

    def broken(model):
        raise RuntimeError("rewrite failed")

    monkeypatch.setattr(fa, "add_argmax_output", broken)
    monkeypatch.setenv("SEGLITE_REWRITE_CACHE", "0")  # the good rewrite above is on disk
    _rewritten_model.cache_clear()  # and in memory
    seg = Segmenter("deeplabv3", num_threads=2)
    _rewritten_model.cache_clear()
    assert seg.backend.reduced is None and not seg.backend.squashes_in_graph
    mask = seg.segment(EXAMPLES / "astronaut.jpg").category_mask
    assert mask.shape == (512, 512)
    assert (mask == expected.category_mask).mean() > 0.999  # numpy squash: same convention
