"""The Segmenter on real models and real images: golden parity, EXIF, every zoo model."""

from __future__ import annotations

import io

import numpy as np
import pytest
from conftest import EXAMPLES, GOLDEN, MODEL_DIR, NOT_IN_REPO
from PIL import Image

from seglite import Segmenter
from seglite.errors import ModelError, OptionError
from seglite.zoo import ZOO


def golden(name: str) -> np.ndarray:
    return np.asarray(Image.open(GOLDEN / name)) // 10  # class index x 10 in the file


def test_golden_parity_with_task_library(starter):
    result = starter.segment(GOLDEN / "segmentation_input_rotation0.jpg")
    expected = golden("segmentation_golden_rotation0.png")
    assert result.category_mask.shape == expected.shape
    agreement = (result.category_mask == expected).mean()
    assert agreement >= 0.99, agreement
    assert set(result.fractions) == {"background", "person", "horse"}


def test_exif_orientation_gives_upright_mask(starter):
    stored = Image.open(GOLDEN / "segmentation_input_rotation90_flop.jpg")
    exif = stored.getexif()
    exif[0x0112] = 7  # the transposition this file's pixels need to stand upright
    buf = io.BytesIO()
    stored.save(buf, "JPEG", exif=exif.tobytes(), quality=95)
    result = starter.segment(buf.getvalue())
    upright = (
        np.asarray(
            Image.open(GOLDEN / "segmentation_golden_rotation90_flop.png").transpose(
                Image.Transpose.TRANSVERSE
            )
        )
        // 10
    )
    assert (result.category_mask == upright).mean() >= 0.98


def test_cityscapes_matches_coral_golden():
    seg = Segmenter("cityscapes", num_threads=2)
    result = seg.segment(GOLDEN / "cityscapes_segmentation.bmp")
    expected = np.asarray(Image.open(GOLDEN / "cityscapes_segmentation_mask.bmp"))
    assert (result.category_mask == expected).mean() >= 0.90
    assert next(iter(result.fractions)) == "road"


@pytest.mark.parametrize(
    "name", [n for n, e in ZOO.items() if e.labels == "voc21" and n not in NOT_IN_REPO]
)
def test_voc_models_find_person_and_cat(name):
    seg = Segmenter(name, num_threads=2)
    astro = seg.segment(EXAMPLES / "astronaut.jpg")
    cat = seg.segment(EXAMPLES / "chelsea.jpg")
    assert astro.size == (512, 512) and astro.category_mask.shape == (512, 512)
    assert (
        max((k for k in astro.fractions if k != "background"), key=astro.fractions.get) == "person"
    )
    assert astro.fractions["person"] > 0.3
    assert cat.category_mask.shape == (300, 451)
    assert max(cat.fractions, key=cat.fractions.get) == "cat"


def test_ade20k_uses_its_own_labels():
    seg = Segmenter("ade20k", num_threads=2)
    assert len(seg.labels) == 151 and seg.labels[0] == "other"
    result = seg.segment(EXAMPLES / "astronaut.jpg")
    assert "person" in list(result.fractions)[:3]


def test_metadata_model_reads_labels_from_file():
    seg = Segmenter("deeplabv3-metadata", num_threads=1)
    assert seg.labels[11] == "dining table" and seg.labels[20] == "tv"


def test_confidence_masks_are_probabilities_at_full_size(starter):
    seg = Segmenter("deeplabv3", output_confidence_masks=True, num_threads=2)
    result = seg.segment(EXAMPLES / "chelsea.jpg")
    conf = result.confidence_masks
    assert conf.shape == (21, 300, 451) and conf.dtype == np.float32
    assert np.allclose(conf.sum(axis=0), 1.0, atol=1e-4)
    agree = (conf.argmax(axis=0) == result.category_mask).mean()
    assert agree > 0.995  # argmax of upsampled probabilities vs of upsampled logits
    assert result.confidence("cat").mean() > 0.5


def test_input_kinds_agree(starter):
    path = EXAMPLES / "chelsea.jpg"
    pil = Image.open(path)
    arr = np.asarray(pil.convert("RGB"))
    masks = [
        starter.segment(src).category_mask
        for src in (path, str(path), path.read_bytes(), pil, arr, arr.astype(np.uint16) * 257)
    ]
    for m in masks[1:]:
        assert (m == masks[0]).mean() > 0.999
    gray = starter.segment(arr.mean(axis=2).astype(np.uint8))
    rgba = starter.segment(np.dstack([arr, np.full(arr.shape[:2], 255, np.uint8)]))
    pal = starter.segment(pil.convert("P"))
    assert gray.size == rgba.size == pal.size == (451, 300)
    assert (rgba.category_mask == masks[0]).mean() > 0.999


def test_argmax_model_refuses_confidence_masks():
    with pytest.raises(OptionError, match="class ids only"):
        Segmenter("coral-pascal-dm05", output_confidence_masks=True)


def test_bad_model_files(tmp_path):
    text = tmp_path / "model.tflite"
    text.write_text("not a model")
    with pytest.raises(ModelError, match="not a TFLite model"):
        Segmenter(text)
    corrupt = tmp_path / "corrupt.tflite"
    data = (EXAMPLES.parent / "src/seglite/assets/deeplabv3_257_mv_gpu.tflite").read_bytes()
    corrupt.write_bytes(data[:5000])
    with pytest.raises(ModelError):
        Segmenter(corrupt)
    with pytest.raises(ModelError):
        Segmenter(tmp_path / "missing.tflite")


def test_non_segmentation_model_is_refused(tmp_path):
    """A classifier-shaped model (output [1, N]) is not a segmentation model."""
    from seglite.runtime.litert import LiteRTBackend

    backend = LiteRTBackend.__new__(LiteRTBackend)
    backend.path = tmp_path / "x.tflite"
    with pytest.raises(ModelError, match="not a segmentation model"):
        backend._check_output((1, 1001), np.dtype(np.float32))


def test_bad_options():
    with pytest.raises(OptionError):
        Segmenter(num_threads=0)
    with pytest.raises(OptionError):
        Segmenter(output_category_mask=False, output_confidence_masks=False)
    with pytest.raises(OptionError):
        Segmenter(scales=(0.0,))
    with pytest.raises(OptionError):
        Segmenter(backend="tensorrt")


def test_timings_are_reported(starter):
    result = starter.segment(EXAMPLES / "astronaut.jpg")
    t = result.timings
    assert t.invoke > 0 and t.decode > 0 and t.postprocess > 0 and t.invocations == 1
    assert t.total == pytest.approx(t.decode + t.preprocess + t.invoke + t.postprocess)
    summary = result.summary()
    assert summary["width"] == 512 and summary["classes"][0]["label"] in {"background", "person"}


def test_display_names_locale_uses_localized_label_file(tmp_path):
    from conftest import MODEL_DIR

    from seglite.metadata import read_metadata, write_metadata

    official = MODEL_DIR / "lite-model_deeplabv3_1_metadata_2.tflite"
    meta = read_metadata(official)
    french = ["arrière-plan", *[f"classe {i}" for i in range(1, 21)]]
    meta.display_names = {"fr": french}
    path = tmp_path / "fr.tflite"
    path.write_bytes(write_metadata(official.read_bytes(), meta))
    assert Segmenter(path, display_names_locale="fr").labels[0] == "arrière-plan"
    assert Segmenter(path).labels[0] == "background"
    assert Segmenter(path, display_names_locale="de").labels[0] == "background"


# -- per-call options -------------------------------------------------------------------------


def test_per_call_options_give_what_a_segmenter_made_with_them_gives():
    """Outputs, scales and flip per call: the same masks as a Segmenter constructed with
    them (a 480x360 model keeps its final upsampling in every graph: not a whole factor of
    its 60x45 scores, so bit for bit)."""
    from seglite.segmenter import SegmentOptions

    image = EXAMPLES / "astronaut.jpg"
    model = MODEL_DIR / "camvid_edgetpu_cityscapes_fp16.tflite"
    seg = Segmenter(model, num_threads=2)
    assert seg.backend.reduced.coarse_factor is None
    plain = seg.segment(image)
    for options in (
        SegmentOptions(output_confidence_masks=True),
        SegmentOptions().accurate_preset(),
        SegmentOptions(output_category_mask=False, output_confidence_masks=True),
    ):
        made = Segmenter(
            model,
            num_threads=2,
            output_category_mask=options.output_category_mask,
            output_confidence_masks=options.output_confidence_masks,
            scales=options.scales,
            flip=options.flip,
        ).segment(image)
        got = seg.segment(image, options)
        for a, b in (
            (got.category_mask, made.category_mask),
            (got.confidence_masks, made.confidence_masks),
        ):
            assert (a is None and b is None) or np.array_equal(a, b), options
    # the defaults are untouched by per-call options
    assert seg.options == SegmentOptions() and not seg.accurate
    assert np.array_equal(seg.segment(image).category_mask, plain.category_mask)


def test_per_call_confidence_on_a_graph_without_its_final_upsampling(starter):
    """The starter's default graph hands over coarse scores; confidence masks per call go
    through run(), which redoes the cut upsampling in numpy: the same mask to float ties."""
    full = Segmenter("deeplabv3", num_threads=2, output_confidence_masks=True)
    image = EXAMPLES / "chelsea.jpg"
    got = starter.segment(image, output_confidence_masks=True)
    want = full.segment(image)
    assert (got.category_mask == want.category_mask).mean() > 0.9999
    assert np.abs(got.confidence_masks - want.confidence_masks).max() < 1e-3


def test_option_sets_are_prepared_once_and_checked():
    from seglite.segmenter import SegmentOptions

    seg = Segmenter("deeplabv3", num_threads=1)
    accurate = SegmentOptions(scales=(1.0, 1.5), flip=True)
    assert seg.plan(accurate) is seg.plan(SegmentOptions(scales=[1, 1.5], flip=1))
    assert hash(accurate) == hash(SegmentOptions(scales=(1.0, 1.5), flip=True))
    with pytest.raises(OptionError, match="unknown segment option"):
        seg.segment(EXAMPLES / "astronaut.jpg", colour=True)
    with pytest.raises(OptionError, match="at least one"):
        SegmentOptions(output_category_mask=False)
    with pytest.raises(OptionError, match="scale"):
        seg.segment(EXAMPLES / "astronaut.jpg", scales=(100,))
    coral = Segmenter("coral-pascal-257", num_threads=1)
    with pytest.raises(OptionError, match="class ids only"):
        coral.segment(EXAMPLES / "astronaut.jpg", output_confidence_masks=True)


def test_accurate_means_each_models_own_preset():
    """``accurate=True`` is the zoo entry's preset where it names one: camvid already
    enlarges CamVid's frames 1.5x into its input, so its tiles are 1x and 4/3 of the input
    (the frame at 1.5x and 2x); other models take the default 1.5x and 2x of the input."""
    from seglite.segmenter import ACCURATE_SCALES

    camvid = Segmenter("camvid-lite", num_threads=2, accurate=True)
    assert camvid.scales == (1.0, 4 / 3) and camvid.flip and camvid.accurate
    assert camvid.accurate_scales == camvid.scales
    starter = Segmenter("deeplabv3", num_threads=2, accurate=True)
    assert starter.scales == ACCURATE_SCALES and starter.flip
    with pytest.raises(OptionError, match="give one"):
        Segmenter("deeplabv3", accurate=True, scales=(1.5,))
    # the same passes as asking for the scales by hand
    image = EXAMPLES / "chelsea.jpg"
    by_hand = Segmenter("camvid-lite", num_threads=2, scales=(1.0, 4 / 3), flip=True)
    assert np.array_equal(camvid.segment(image).category_mask, by_hand.segment(image).category_mask)
