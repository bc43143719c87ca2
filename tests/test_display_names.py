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


def test_torch_checkpoint_with_a_locale_gives_its_labels():
    pytest.importorskip("torch")
    seg = Segmenter("camvid", display_names_locale="fr")
    assert seg.backend.name == "torch" and seg.labels[:2] == ["sky", "building"]
