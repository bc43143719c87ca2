"""seglite eval: one Segmenter code path for every backend, the native path, the CLI,
and the PyTorch twin of the starter model scoring what its TFLite file scores."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from conftest import PETS_VOC, REPO  # noqa: E402
from test_data import make_camvid, make_voc  # noqa: E402

from seglite.cli import main  # noqa: E402
from seglite.data import open_dataset  # noqa: E402
from seglite.errors import OptionError  # noqa: E402
from seglite.eval import evaluate, evaluate_checkpoint  # noqa: E402

STARTER = REPO / "src" / "seglite" / "assets" / "deeplabv3_257_mv_gpu.tflite"


@pytest.fixture(scope="module")
def camvid(tmp_path_factory) -> Path:
    return make_camvid(tmp_path_factory.mktemp("cv"), n_train=2, n_val=3)


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory) -> Path:
    """A small random 11-class model whose input size is the CamVid-like images' size."""
    from seglite.models.checkpoint import save_checkpoint
    from seglite.models.deeplab import deeplab

    torch.manual_seed(0)
    model = deeplab(
        version="v3+", depth_multiplier=0.25, num_classes=11, atrous_rates=(), aspp_channels=16,
        decoder_channels=16, labels="camvid11",
    )  # fmt: skip
    with torch.no_grad():  # a biased classifier so that several classes appear
        model.classifier.bias.copy_(torch.linspace(-0.5, 0.5, 11))
    path = tmp_path_factory.mktemp("ckpt") / "tiny.safetensors"
    return save_checkpoint(model.eval(), path, extra_metadata={"seglite.input_size": [36, 48]})


@pytest.fixture(scope="module")
def starter_twin(tmp_path_factory) -> Path:
    """The starter .tflite imported into PyTorch and saved as a checkpoint (OS 8, 257x257)."""
    from seglite.models.checkpoint import save_checkpoint
    from seglite.models.tflite_import import import_tflite

    model, _ = import_tflite(STARTER)
    path = tmp_path_factory.mktemp("twin") / "starter_torch.safetensors"
    return save_checkpoint(model, path, extra_metadata={"seglite.input_size": [257, 257]})


def test_checkpoint_through_segmenter_equals_native_path(camvid, tiny_ckpt):
    ds = open_dataset(camvid, split="val")
    seg = evaluate(tiny_ckpt, ds, num_threads=1)
    nat = evaluate_checkpoint(tiny_ckpt, ds, num_threads=1, output_stride=8)
    np.testing.assert_array_equal(seg.cm.matrix, nat.cm.matrix)
    assert seg.settings["backend"] == "torch" and seg.settings["output_stride"] == 8
    d = seg.as_dict()
    assert d["images"] == 3 and len(d["per_class_iou"]) == 11 and d["pixels"] > 0
    assert np.asarray(d["confusion_matrix"]).sum() == d["pixels"]


def test_output_stride_and_native_multiscale_flip(camvid, tiny_ckpt):
    ds = open_dataset(camvid, split="val")
    os16 = evaluate(tiny_ckpt, ds, num_threads=1, output_stride=16)
    assert os16.settings["output_stride"] == 16
    ms = evaluate_checkpoint(tiny_ckpt, ds, num_threads=1, scales=(0.5, 1.0, 1.5), flip=True)
    assert ms.cm.matrix.sum() == os16.cm.matrix.sum()
    assert 0 <= ms.miou <= 100


def test_native_prediction_of_a_symmetric_image_is_symmetric(tiny_ckpt):
    from seglite.eval.native import predict_torch
    from seglite.models.checkpoint import load_checkpoint

    half = np.random.default_rng(0).integers(0, 255, (36, 24, 3), dtype=np.uint8)
    img = np.concatenate([half, half[:, ::-1]], axis=1)
    pred = predict_torch(load_checkpoint(tiny_ckpt), img, scales=(1.0, 0.75), flip=True)
    np.testing.assert_array_equal(pred, pred[:, ::-1])


def test_torch_backend_matches_litert_logits(starter_twin):
    from seglite.runtime import open_backend

    pixels = np.random.default_rng(1).integers(0, 256, (1, 257, 257, 3), dtype=np.uint8)
    tb = open_backend(starter_twin, num_threads=1)
    lb = open_backend(STARTER, num_threads=1)
    assert tb.name == "torch" and tb.input_size == lb.input_size == (257, 257)
    assert tb.labels[0] == "background" and tb.num_classes == 21
    np.testing.assert_allclose(tb.run(pixels), lb.run(pixels), atol=1e-3)


def test_pytorch_twin_scores_the_tflite_miou(starter_twin):
    ds = open_dataset(PETS_VOC, split="val")
    lite = evaluate("deeplabv3", ds, num_threads=1, limit=4)
    twin = evaluate(starter_twin, ds, num_threads=1, limit=4)
    assert abs(lite.miou - twin.miou) < 0.5
    assert np.abs(lite.cm.matrix - twin.cm.matrix).sum() <= 0.001 * lite.cm.matrix.sum()


def test_voc_layout_through_the_tflite_starter(tmp_path):
    ds = open_dataset(make_voc(tmp_path, n=2))
    r = evaluate("deeplabv3", ds, num_threads=1)
    assert r.settings["backend"] == "litert" and r.images == 2
    assert r.as_dict()["pixels"] == int(
        (np.asarray(ds[0][1]) != 255).sum() + (ds[1][1] != 255).sum()
    )


def test_cli_table_and_json(camvid, tiny_ckpt, tmp_path, capsys):
    out = tmp_path / "r.json"
    rc = main(
        [
            "eval",
            str(tiny_ckpt),
            str(camvid),
            "--split",
            "val",
            "--threads",
            "1",
            "--json",
            str(out),
        ]
    )
    assert rc == 0
    text = capsys.readouterr().out
    assert "mIoU" in text and "| sky" in text and "fwIoU" in text
    data = json.loads(out.read_text())
    assert data["miou"] is not None and data["split"] == "val" and "sky" in data["per_class_iou"]
    rc = main(["eval", str(tiny_ckpt), str(camvid), "--native", "--scales", "0.75,1", "--flip",
               "--threads", "1", "--json", "-"])  # fmt: skip
    assert rc == 0
    native = json.loads(capsys.readouterr().out)
    assert native["settings"]["path"] == "native" and native["settings"]["flip"] is True


def test_cli_errors_are_one_line(camvid, tmp_path, capsys):
    assert main(["eval", "deeplabv3", str(camvid), "--threads", "1"]) == 2
    assert "21 classes" in capsys.readouterr().err
    assert main(["eval", "deeplabv3", str(camvid), "--output-stride", "8"]) == 2
    assert main(["eval", "deeplabv3", str(tmp_path)]) == 2
    assert "not a known dataset layout" in capsys.readouterr().err


def test_class_count_mismatch_is_an_option_error(camvid):
    with pytest.raises(OptionError, match="predicts 21 classes"):
        evaluate("deeplabv3", open_dataset(camvid, split="val"), num_threads=1)


@pytest.mark.parametrize("model", ["cityscapes", "ade20k"])
def test_a_model_with_other_classes_is_refused_not_scored(model):
    """An ArgMax model does not say its class count: its label set still must match."""
    with pytest.raises(OptionError, match=r"predicts \d+ classes .* labelled with 21 voc21"):
        evaluate(model, open_dataset(PETS_VOC), num_threads=1, limit=1)


def test_voc_models_score_voc_data_whatever_the_spelling_of_their_labels():
    """The TF Hub twin names 'dining table' and 'tv', the VOC files 'diningtable', 'tvmonitor'."""
    r = evaluate("deeplabv3-metadata", open_dataset(PETS_VOC), num_threads=1, limit=1)
    assert r.images == 1 and r.miou > 0
