"""display_names_locale and the labels work the same through every runtime (LiteRT, ONNX,
PyTorch): a model's localized names where its file has them, its labels otherwise."""

from __future__ import annotations

import pytest

from seglite import Segmenter
from seglite.metadata import SegmentationMetadata, read_metadata, write_metadata
from seglite.zoo import resolve

VOC = read_metadata(resolve("deeplabv3-metadata").path).labels


@pytest.fixture(scope="module")
def localized_tflite(tmp_path_factory):
    """The starter with labels and French display names in its metadata."""
    french = [f"fr-{n}" for n in VOC]
    meta = SegmentationMetadata(
        name="x", input_mean=(127.5,), input_std=(127.5,), labels=VOC,
        display_names={"fr": french},
    )  # fmt: skip
    path = tmp_path_factory.mktemp("loc") / "starter_fr.tflite"
    path.write_bytes(write_metadata(resolve("deeplabv3").path.read_bytes(), meta))
    return path, french


def test_litert_uses_the_files_localized_names(localized_tflite):
    path, french = localized_tflite
    assert Segmenter(path, display_names_locale="fr").labels == french
    assert Segmenter(path, display_names_locale="de").labels == VOC  # no such locale: labels
    assert Segmenter(path).labels == VOC


def test_onnx_model_with_labels_and_a_locale(tmp_path):
    """ONNX properties carry labels but no locales: the labels, where the Segmenter used to
    raise AttributeError ('dict' object has no attribute 'display_names')."""
    pytest.importorskip("onnxruntime")
    import numpy as np
    from test_onnx_backend import build  # a tiny real ONNX segmenter: class c = channel c

    path = build(tmp_path / "m.onnx", meta={"labels": "red\ngreen\nblue"})
    seg = Segmenter(path, num_threads=1, display_names_locale="fr")
    assert seg.backend.name == "onnx" and seg.labels == ["red", "green", "blue"]
    img = np.zeros((30, 40, 3), np.uint8)
    img[:, :20] = (255, 0, 0)
    assert next(iter(seg.segment(img).fractions)) in ("red", "green", "blue")


def _onnx_with_locales(tmp_path):
    pytest.importorskip("onnxruntime")
    from test_onnx_backend import build

    meta = {"labels": "red\ngreen\nblue", "labels.fr": '["rouge", "vert", "bleu"]'}
    return (
        build(tmp_path / "fr.onnx", meta=meta),
        ["red", "green", "blue"],
        ["rouge", "vert", "bleu"],
    )


@pytest.mark.parametrize("runtime", ["litert", "onnx", "torch"])
def test_every_backend_describes_labels_and_locales_in_one_model_info(
    runtime, localized_tflite, tmp_path
):
    """One ModelInfo from every runtime; the Segmenter reads labels and display_names_locale
    from it alone: the file's localized names for a locale it has, its labels otherwise."""
    from seglite.runtime import ModelInfo
    from seglite.runtime.info import SOURCE_KEYS

    if runtime == "litert":
        path, french = localized_tflite
        labels = VOC
    elif runtime == "onnx":
        path, labels, french = _onnx_with_locales(tmp_path)
    else:
        pytest.importorskip("torch")
        path = resolve("camvid").path
        labels, french = Segmenter("camvid").labels, None  # checkpoints carry no locales
    fr = Segmenter(path, num_threads=1, display_names_locale="fr")
    info = fr.backend.info
    assert fr.backend.name == runtime and isinstance(info, ModelInfo)
    assert set(info.sources) == set(SOURCE_KEYS)
    assert list(info.labels) == labels and info.num_classes == len(labels)
    assert info.sources["labels"] != "default"
    assert fr.labels == (french or labels)
    assert (info.sources["display_names"] != "default") == bool(french)
    assert Segmenter(path, num_threads=1, display_names_locale="de").labels == labels
    assert Segmenter(path, num_threads=1).labels == labels
    assert len(info.mean) in (1, 3) and len(info.std) in (1, 3)


def test_torch_checkpoint_with_a_locale_gives_its_labels():
    pytest.importorskip("torch")
    seg = Segmenter("camvid", display_names_locale="fr")
    assert seg.backend.name == "torch" and seg.labels[:2] == ["sky", "building"]
