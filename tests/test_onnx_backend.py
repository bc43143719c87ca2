"""The ONNX Runtime backend on real (tiny) ONNX segmentation graphs built with onnx.helper.

Each graph is a real conv net: a 1x1 convolution with stride 2 whose weights copy input
channel c to class c, plus a per-class bias, so the expected scores are known exactly.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from onnx import TensorProto, helper  # noqa: E402

from seglite.errors import MissingExtraError, ModelError  # noqa: E402
from seglite.runtime import open_backend  # noqa: E402
from seglite.runtime.onnx import OnnxBackend  # noqa: E402

H = W = 8
BIAS = np.array([0.0, 0.5, -0.25], np.float32)


def build(
    path,
    *,
    layout: str = "NHWC",
    in_type: int = TensorProto.FLOAT,
    argmax: bool = False,
    meta: dict[str, str] | None = None,
    in_shape: list | None = None,
    out_shape: list | None = None,
    flatten: bool = False,
):
    """Write a tiny segmentation model: stride-2 1x1 conv, class c = channel c (+ bias)."""
    nodes = []
    x = "pixels"
    if in_shape is None:
        in_shape = [1, H, W, 3] if layout == "NHWC" else [1, 3, H, W]
    cur = x
    if in_type != TensorProto.FLOAT:
        nodes.append(helper.make_node("Cast", [cur], ["xf"], to=TensorProto.FLOAT))
        cur = "xf"
    if layout == "NHWC":
        nodes.append(helper.make_node("Transpose", [cur], ["nchw"], perm=[0, 3, 1, 2]))
        cur = "nchw"
    weight = helper.make_tensor("w", TensorProto.FLOAT, [3, 3, 1, 1], np.eye(3).ravel().tolist())
    bias = helper.make_tensor("b", TensorProto.FLOAT, [3], BIAS.tolist())
    nodes.append(helper.make_node("Conv", [cur, "w", "b"], ["conv"], strides=[2, 2]))
    cur = "conv"
    if layout == "NHWC":
        nodes.append(helper.make_node("Transpose", [cur], ["nhwc"], perm=[0, 2, 3, 1]))
        cur = "nhwc"
    out_type = TensorProto.FLOAT
    if argmax:
        axis = 3 if layout == "NHWC" else 1
        nodes.append(helper.make_node("ArgMax", [cur], ["ids"], axis=axis, keepdims=0))
        cur, out_type = "ids", TensorProto.INT64
    if flatten:  # a classifier-like output: [1, N] instead of a score map
        nodes.append(helper.make_node("Flatten", [cur], ["flat"], axis=1))
        cur, out_shape = "flat", [1, 3 * (H // 2) * (W // 2)]
    nodes.append(helper.make_node("Identity", [cur], ["scores"]))
    if out_shape is None:
        if argmax:
            out_shape = [1, H // 2, W // 2]
        else:
            out_shape = [1, H // 2, W // 2, 3] if layout == "NHWC" else [1, 3, H // 2, W // 2]
    graph = helper.make_graph(
        nodes,
        "tiny_seg",
        [helper.make_tensor_value_info(x, in_type, in_shape)],
        [helper.make_tensor_value_info("scores", out_type, out_shape)],
        initializer=[weight, bias],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    for k, v in (meta or {}).items():
        helper.set_model_props(model, {**{p.key: p.value for p in model.metadata_props}, k: v})
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def pixels(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (1, H, W, 3), dtype=np.uint8)


def expected(px: np.ndarray, mean=127.5, std=127.5) -> np.ndarray:
    norm = (px.astype(np.float32) - np.float32(mean)) / np.float32(std)
    return norm[:, ::2, ::2, :] + BIAS


@pytest.mark.parametrize("layout", ["NHWC", "NCHW"])
def test_float_model_scores_in_both_layouts(tmp_path, layout):
    be = OnnxBackend(build(tmp_path / "m.onnx", layout=layout), num_threads=1)
    assert (be.name, be.input_size, be.output_kind, be.num_classes) == ("onnx", (H, W), "logits", 3)
    assert be.layout == layout and be.labels is None and be.num_threads == 1
    px = pixels()
    out = be.run(px)
    assert out.shape == (1, H // 2, W // 2, 3) and out.dtype == np.float32
    np.testing.assert_allclose(out, expected(px), atol=1e-5)
    assert be.output_size == (H // 2, W // 2)
    be.close()


def test_uint8_model_gets_raw_pixels(tmp_path):
    be = OnnxBackend(build(tmp_path / "u8.onnx", in_type=TensorProto.UINT8), num_threads=1)
    px = pixels(1)
    np.testing.assert_allclose(be.run(px), px[:, ::2, ::2, :].astype(np.float32) + BIAS, atol=1e-4)


def test_metadata_normalization_and_labels(tmp_path):
    meta = {
        "seglite.mean": "123.675,116.28,103.53",
        "std": "58.395,57.12,57.375",
        "labels": '["background", "cat", "dog"]',
    }
    be = OnnxBackend(build(tmp_path / "meta.onnx", meta=meta), num_threads=2)
    assert be.labels == ("background", "cat", "dog")
    px = pixels(2)
    mean = np.array([123.675, 116.28, 103.53], np.float32)
    std = np.array([58.395, 57.12, 57.375], np.float32)
    np.testing.assert_allclose(be.run(px), expected(px, mean, std), atol=1e-4)


def test_argmax_model_returns_ids(tmp_path):
    be = OnnxBackend(build(tmp_path / "ids.onnx", argmax=True), num_threads=1)
    assert be.output_kind == "argmax" and be.num_classes is None
    px = pixels(3)
    ids = be.run(px)
    assert ids.shape == (1, H // 2, W // 2)
    np.testing.assert_array_equal(ids, expected(px).argmax(-1))


def test_batch_of_two_on_a_batch_one_model(tmp_path):
    be = OnnxBackend(build(tmp_path / "m.onnx"), num_threads=1)
    px = np.concatenate([pixels(4), pixels(5)])
    np.testing.assert_allclose(be.run(px), expected(px), atol=1e-5)


def test_open_backend_picks_onnx_by_suffix_and_segmenter_runs_it(tmp_path):
    from seglite import Segmenter

    path = build(tmp_path / "m.onnx", meta={"labels": "red\ngreen\nblue"})
    be = open_backend(path, num_threads=1)
    assert isinstance(be, OnnxBackend)
    seg = Segmenter(path, num_threads=1)
    img = np.zeros((30, 40, 3), np.uint8)
    img[:, :20] = (255, 0, 0)  # red left half
    img[:, 20:] = (0, 255, 0)  # green right half
    result = seg.segment(img)
    assert result.category_mask.shape == (30, 40)
    assert seg.labels == ["red", "green", "blue"]
    assert (result.category_mask[:, :15] == 0).all() and (result.category_mask[:, 25:] == 1).all()


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "empty model file"),
        (b"this is not a protobuf at all" * 10, "ONNX Runtime cannot load this model"),
        (b"\x1c\x00\x00\x00TFL3" + b"\x00" * 64, "TFLite model"),
    ],
)
def test_bad_files_raise_one_line_model_errors(tmp_path, content, message):
    path = tmp_path / "bad.onnx"
    path.write_bytes(content)
    with pytest.raises(ModelError, match=message) as info:
        OnnxBackend(path, num_threads=1)
    assert "\n" not in str(info.value)


def test_missing_file(tmp_path):
    with pytest.raises(ModelError, match="cannot read model file"):
        OnnxBackend(tmp_path / "nope.onnx", num_threads=1)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"in_shape": [1, 1, H, W], "layout": "NCHW"}, "no axis of 3 channels"),
        ({"in_shape": [1, "h", "w", 3]}, "input size is not fixed"),
        ({"flatten": True}, "not a segmentation model"),
    ],
)
def test_models_that_are_not_image_segmenters(tmp_path, kwargs, message):
    path = tmp_path / "odd.onnx"
    try:
        build(path, **kwargs)
    except Exception:  # the checker may refuse a shape that does not fit the graph
        pytest.skip("onnx refused to build this variant")
    with pytest.raises(ModelError, match=message):
        OnnxBackend(path, num_threads=1)


def test_missing_onnxruntime_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(MissingExtraError, match=r"seglite\[onnx\]"):
        OnnxBackend(tmp_path / "m.onnx", num_threads=1)


@pytest.mark.slow
def test_onnx_twin_of_the_starter_agrees_with_litert(tmp_path):
    """The starter's weights, imported into PyTorch and exported to ONNX (NCHW), through this
    backend give the same scores as LiteRT on the .tflite file."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("seglite.models.tflite_import")
    import warnings

    from seglite.bench import make_input
    from seglite.models.tflite_import import import_tflite
    from seglite.zoo import resolve

    tflite = resolve("deeplabv3").path
    model, info = import_tflite(tflite)
    model.eval()
    path = tmp_path / "starter.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model, (torch.zeros(1, 3, 257, 257),), str(path), opset_version=17, dynamo=False
        )
    twin = OnnxBackend(path, num_threads=2)
    assert twin.layout == "NCHW" and twin.input_size == (257, 257) and twin.num_classes == 21
    px = make_input(None).pixels((257, 257))
    ref = open_backend(tflite, num_threads=2).run(px).copy()
    out = twin.run(px)
    assert out.shape == ref.shape == (1, 257, 257, 21)
    assert np.abs(out - ref).max() < 1e-3
    assert (out.argmax(-1) == ref.argmax(-1)).mean() > 0.999
