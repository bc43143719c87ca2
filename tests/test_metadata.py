"""TFLite metadata: read the official files, write metadata that LiteRT and MediaPipe accept."""

from __future__ import annotations

import dataclasses
import io
import json
import struct
import zipfile

import numpy as np
import pytest
from conftest import MODEL_DIR, model_file
from PIL import Image

from seglite.errors import ModelError, OptionError
from seglite.metadata import SegmentationMetadata, read_metadata, write_metadata

OFFICIAL = "lite-model_deeplabv3_1_metadata_2.tflite"
STARTER = "deeplabv3_257_mv_gpu.tflite"
IMAGENET = "mobilenet_v2_1.0_224_quant.tflite"  # Coral classifier, other label file
CORAL = "deeplabv3_mnv2_dm05_pascal_quant.tflite"
VOC_LABELS = (
    ["background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat"]
    + ["chair", "cow", "dining table", "dog", "horse", "motorbike", "person", "potted plant"]
    + ["sheep", "sofa", "train", "tv"]
)


def model_bytes(name: str) -> bytes:
    return model_file(name).read_bytes()


def run(model: bytes, x: np.ndarray) -> list[np.ndarray]:
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_content=model, num_threads=2)
    it.allocate_tensors()
    it.set_tensor(it.get_input_details()[0]["index"], x)
    it.invoke()
    return [it.get_tensor(d["index"]) for d in it.get_output_details()]


def model_parts(model: bytes) -> tuple[list[bytes | None], dict[str, bytes], list[int]]:
    """Buffer contents, metadata entries by name, and data start offsets, via the schema."""
    from ai_edge_litert import schema_py_generated as tfl

    m = tfl.Model.GetRootAs(model, 0)
    bufs = [m.Buffers(i) for i in range(m.BuffersLength())]
    data = [None if b.DataIsNone() else b.DataAsNumpy().tobytes() for b in bufs]
    starts = [b._tab.Vector(b._tab.Offset(4)) for b in bufs if not b.DataIsNone()]
    entries = {}
    for i in range(m.MetadataLength()):
        e = m.Metadata(i)
        entries[e.Name().decode()] = data[e.Buffer()]
    return data, entries, starts


def test_read_official_metadata():
    meta = read_metadata(MODEL_DIR / OFFICIAL)
    assert meta is not None
    assert meta.name == "DeepLabV3"
    assert meta.version == "v1" and meta.author == "TensorFlow"
    assert meta.license.startswith("Apache License")
    assert meta.input_mean == (127.5,) and meta.input_std == (127.5,)
    assert meta.labels == VOC_LABELS
    assert meta.label_file_name == "labelmap.txt"
    assert meta.associated_files == ["labelmap.txt"]
    assert meta.color_space == "RGB"
    assert meta.min_parser_version == "1.0.0"
    assert meta.output_activation is None


def test_read_accepts_bytes_str_and_path():
    data = model_bytes(OFFICIAL)
    path = MODEL_DIR / OFFICIAL
    assert read_metadata(data) == read_metadata(str(path)) == read_metadata(path)


def test_read_another_writers_labels_file():
    meta = read_metadata(model_bytes(IMAGENET))
    assert meta.label_file_name == "imagenet_labels.txt"
    assert meta.labels[:2] == ["background", "tench, Tinca tinca"] and len(meta.labels) == 1001
    assert meta.input_mean == (127.5,) == meta.input_std and meta.version is None


@pytest.mark.parametrize("name", [STARTER, CORAL])
def test_no_metadata_gives_none(name):
    assert read_metadata(model_bytes(name)) is None


def test_read_does_not_unpack_weights(monkeypatch):
    """Reading runs at every model load: it must walk the flatbuffer, not unpack all buffers."""
    from ai_edge_litert import schema_py_generated as tfl

    def refuse(*args, **kwargs):
        raise AssertionError("read_metadata unpacked the whole model")

    monkeypatch.setattr(tfl.ModelT, "InitFromPackedBuf", refuse)
    monkeypatch.setattr(tfl.ModelT, "InitFromObj", refuse)
    assert read_metadata(model_bytes(OFFICIAL)).name == "DeepLabV3"


def _png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buf, "PNG")
    return buf.getvalue()


@pytest.mark.parametrize(
    "make, hint",
    [
        (lambda: b"", "not a TFLite model"),
        (lambda: np.random.default_rng(0).bytes(4096), "not a TFLite model"),
        (_png, "not a TFLite model"),
        (lambda: model_bytes(STARTER)[:1_400_000], "truncated"),
        (lambda: model_bytes(STARTER)[:200], "truncated"),
        (lambda: model_bytes(OFFICIAL)[:-40], "label file"),  # the appended zip is cut
        (lambda: b"\x10\x00\x00\x00TFL3" + b"\xff" * 8, "truncated"),
    ],
    ids=["empty", "random", "png", "truncated-half", "truncated-head", "cut-zip", "garbage"],
)
def test_bad_model_raises_one_line(make, hint):
    with pytest.raises(ModelError) as err:
        read_metadata(make())
    assert hint in str(err.value) and "\n" not in str(err.value)


def test_missing_file_raises_model_error(tmp_path):
    with pytest.raises(ModelError, match="cannot read model file"):
        read_metadata(tmp_path / "nope.tflite")


def test_write_official_values_reproduces_official_metadata():
    official, starter = model_bytes(OFFICIAL), model_bytes(STARTER)
    meta = read_metadata(official)
    out = write_metadata(starter, meta)
    assert out[4:8] == b"TFL3"
    assert read_metadata(out) == meta
    src_bufs, _, _ = model_parts(starter)
    out_bufs, entries, starts = model_parts(out)
    assert out_bufs[: len(src_bufs)] == src_bufs  # weights byte-identical, in place
    assert all(s % 16 == 0 for s in starts)  # and aligned as the schema asks
    assert entries["TFLITE_METADATA"][4:8] == b"M001"
    with zipfile.ZipFile(io.BytesIO(out)) as zf:
        assert zf.namelist() == ["labelmap.txt"]
        assert zf.getinfo("labelmap.txt").compress_type == zipfile.ZIP_STORED
    x = np.random.default_rng(1).uniform(-1, 1, (1, 257, 257, 3)).astype(np.float32)
    (a,), (b,) = run(starter, x), run(out, x)
    assert np.array_equal(a, b)


def test_write_replaces_existing_metadata_and_zip():
    official = model_bytes(OFFICIAL)
    labels = [f"thing {i}" for i in range(21)]
    meta = SegmentationMetadata(
        name="Mine", input_mean=(1.0, 2.0, 3.0), input_std=(4.0, 5.0, 6.0), labels=labels,
        output_activation="SOFTMAX", display_names={"fr": [f"chose {i}" for i in range(21)]},
    )  # fmt: skip
    out = write_metadata(official, meta, label_file_name="classes.txt")
    back = read_metadata(out)
    assert back.name == "Mine" and back.labels == labels and back.description is None
    assert back.input_mean == (1.0, 2.0, 3.0) and back.input_std == (4.0, 5.0, 6.0)
    assert back.output_activation == "SOFTMAX" and back.min_parser_version == "1.5.0"
    assert back.label_file_name == "classes.txt"
    assert back.display_names == {"fr": meta.display_names["fr"]}
    assert back.associated_files == ["classes.txt", "classes_fr.txt"]
    _, entries, _ = model_parts(out)
    assert list(entries) == ["TFLITE_METADATA"]
    with zipfile.ZipFile(io.BytesIO(out)) as zf:
        assert sorted(zf.namelist()) == ["classes.txt", "classes_fr.txt"]  # old zip gone
    # Written twice: the same bytes (no timestamps), and no metadata without labels.
    assert write_metadata(official, meta, label_file_name="classes.txt") == out
    bare = read_metadata(write_metadata(official, SegmentationMetadata(name="x")))
    assert bare.labels is None and bare.associated_files == [] and bare.name == "x"


def test_write_keeps_other_metadata_entries():
    coral = model_bytes(CORAL)
    _, before, _ = model_parts(coral)
    meta = SegmentationMetadata(
        name="Coral", input_mean=(127.5,), input_std=(127.5,), labels=VOC_LABELS
    )
    out = write_metadata(coral, meta)
    _, after, _ = model_parts(out)
    assert after["min_runtime_version"] == before["min_runtime_version"]
    assert set(after) == {"min_runtime_version", "TFLITE_METADATA"}
    assert read_metadata(out).labels == VOC_LABELS
    x = np.random.default_rng(2).integers(0, 256, (1, 513, 513, 3), dtype=np.uint8)
    (a,), (b,) = run(coral, x), run(out, x)
    assert np.array_equal(a, b)


@pytest.mark.parametrize(
    "change",
    [
        {"output_activation": "RELU"},
        {"color_space": "BGR"},
        {"input_mean": (127.5,), "input_std": None},
        {"input_mean": (1.0, 2.0), "input_std": (1.0,)},
        {"input_mean": (1.0,), "input_std": (0.0,)},
    ],
)
def test_write_rejects_bad_values(change):
    with pytest.raises(OptionError):
        write_metadata(model_bytes(STARTER), dataclasses.replace(SegmentationMetadata(), **change))


def test_write_rejects_non_tflite():
    with pytest.raises(ModelError, match="not a TFLite model"):
        write_metadata(_png(), SegmentationMetadata())


def test_custom_metadata_layout():
    """SEGMENTER_METADATA holds an ImageSegmenterOptions flatbuffer ("V001"), 16-aligned."""
    out = write_metadata(model_bytes(STARTER), SegmentationMetadata(output_activation="SIGMOID"))
    _, entries, _ = model_parts(out)
    raw = entries["TFLITE_METADATA"]
    at = raw.find(b"V001")
    assert at >= 4 and (at - 4) % 16 == 0  # the vector data (root offset, "V001") is aligned
    (root,) = struct.unpack_from("<I", raw, at - 4)
    assert root > 0 and read_metadata(out).output_activation == "SIGMOID"


def test_model_names_its_own_accurate_scales(tmp_path):
    """SEGLITE_METADATA carries what --accurate means for a model that runs on enlarged
    frames; the Segmenter takes it, and a bad entry is a one-line error, not a crash."""
    from seglite import Segmenter

    meta = dataclasses.replace(read_metadata(model_bytes(OFFICIAL)), accurate_scales=(1.0, 4 / 3))
    path = tmp_path / "own_scales.tflite"
    path.write_bytes(write_metadata(model_bytes(STARTER), meta))
    got = read_metadata(path)
    assert got.accurate_scales == pytest.approx((1.0, 4 / 3)) and got.labels == VOC_LABELS
    seg = Segmenter(path, accurate=True, num_threads=1)
    assert seg.options.scales == pytest.approx((1.0, 4 / 3)) and seg.options.flip
    assert Segmenter(model_file(STARTER), num_threads=1).accurate_scales == (1.5, 2.0)
    # Another writer's bad entries, written in place of a good one of the same length.
    good = write_metadata(
        model_bytes(STARTER), dataclasses.replace(meta, accurate_scales=(1.0,) * 8)
    )
    entry = json.dumps({"accurate_scales": [1.0] * 8}).encode()
    for bad in ([0.1], [], "fast", [1] * 9, [True], "{not json"):
        text = (
            bad
            if isinstance(bad, str) and bad.startswith("{")
            else json.dumps({"accurate_scales": bad})
        )
        assert len(text) <= len(entry)
        raw = good.replace(entry, text.encode().ljust(len(entry)))
        with pytest.raises(ModelError, match="accurate_scales|not JSON") as err:
            read_metadata(raw)
        assert "\n" not in str(err.value)
    with pytest.raises(OptionError, match="accurate_scales"):
        write_metadata(model_bytes(STARTER), dataclasses.replace(meta, accurate_scales=(0.0,)))


def test_mediapipe_loads_written_model():
    try:
        import mediapipe as mp
        from mediapipe.tasks.python import BaseOptions, vision
    except ImportError as exc:
        pytest.skip(f"mediapipe is not importable here ({exc}); pip install mediapipe")
    official, starter = model_bytes(OFFICIAL), model_bytes(STARTER)
    meta = dataclasses.replace(
        read_metadata(official), output_activation="SOFTMAX", accurate_scales=(1.0, 1.25)
    )
    written = write_metadata(starter, meta)  # seglite's own entry beside MediaPipe's
    rgb = np.random.default_rng(3).integers(0, 256, (257, 257, 3), dtype=np.uint8)
    rgb[60:200, 80:180] = (200, 120, 90)  # something to segment
    image = mp.Image(image_format=mp.ImageFormat.SRGB, data=rgb)

    def segment(model: bytes):
        opts = vision.ImageSegmenterOptions(
            base_options=BaseOptions(model_asset_buffer=model),
            output_category_mask=True,
            output_confidence_masks=True,
        )
        with vision.ImageSegmenter.create_from_options(opts) as seg:
            res = seg.segment(image)
            conf = np.stack([m.numpy_view() for m in res.confidence_masks], -1)
            return seg.labels, res.category_mask.numpy_view().copy(), conf

    labels, cat, conf = segment(written)
    ref_labels, ref_cat, _ = segment(official)
    assert labels == ref_labels == VOC_LABELS
    assert read_metadata(written).accurate_scales == (1.0, 1.25)
    assert np.array_equal(cat, ref_cat)  # same normalization read from the metadata
    np.testing.assert_allclose(conf.sum(-1), 1.0, atol=1e-4)  # softmax from the metadata
