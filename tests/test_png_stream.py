"""The band-by-band PNG encoder, and overlays encoded through it."""

from __future__ import annotations

import io

import numpy as np
import pytest
from conftest import EXAMPLES, PHOTOS
from PIL import Image

from seglite import Segmenter, viz
from seglite.png_stream import encode_bands


def decode(data: bytes) -> np.ndarray:
    img = Image.open(io.BytesIO(data))
    img.load()
    return np.asarray(img)


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L"])
def test_bands_of_any_height_decode_to_the_same_pixels(mode):
    photo = np.asarray(Image.open(EXAMPLES / "chelsea.jpg").convert(mode))
    h, w = photo.shape[:2]
    channels = 1 if photo.ndim == 2 else photo.shape[2]
    cuts = [0, 1, 7, 100, 101, h]  # uneven bands, one of a single row
    bands = (photo[a:b] for a, b in zip(cuts, cuts[1:]))
    data = encode_bands(w, h, channels, bands)
    np.testing.assert_array_equal(decode(data), photo)
    assert len(data) < photo.nbytes  # compressed


def test_wrong_row_counts_are_refused():
    rows = np.zeros((4, 5, 3), np.uint8)
    with pytest.raises(ValueError, match="rows"):
        encode_bands(5, 5, 3, [rows])
    with pytest.raises(ValueError, match="more than"):
        encode_bands(5, 3, 3, [rows])
    with pytest.raises(ValueError, match="channels"):
        encode_bands(5, 4, 2, [rows[..., :2]])


@pytest.mark.parametrize("legend", [True, False])
def test_overlay_png_is_the_overlay(legend):
    seg = Segmenter("deeplabv3", num_threads=1)
    for photo in (EXAMPLES / "astronaut.jpg", PHOTOS / "camera.png"):
        image = Image.open(photo)
        result = seg.segment(image)
        expected = np.asarray(viz.overlay(image, result, legend=legend))
        np.testing.assert_array_equal(
            decode(viz.overlay_png(image, result, legend=legend)), expected
        )
        if legend:
            assert expected.shape[1] > image.width  # the legend panel sits beside it


def test_a_legend_taller_than_the_photo_extends_the_picture():
    seg = Segmenter("deeplabv3", num_threads=1)
    tiny = Image.open(EXAMPLES / "astronaut.jpg").convert("RGB").resize((40, 30))
    result = seg.segment(tiny)
    got = decode(viz.overlay_png(tiny, result))
    assert got.shape[0] > 30 and got.shape[1] > 40
    assert (got[30:, :40] == 255).all()  # white below the photo
    np.testing.assert_array_equal(got, np.asarray(viz.overlay(tiny, result)))


@pytest.mark.parametrize("alpha", [0.0, 0.3, 0.55, 1.0])
def test_overlay_pixels_are_the_photo_mixed_with_the_class_colour(alpha):
    """Away from outlines, each painted pixel is round(photo * (1 - a) + colour * a) in
    256ths, per channel, and background pixels keep the photo's value."""
    seg = Segmenter("deeplabv3", num_threads=1)
    image = Image.open(EXAMPLES / "astronaut.jpg").convert("RGB")
    result = seg.segment(image)
    got = np.asarray(viz.overlay(image, result, alpha=alpha, legend=False, outline=False))
    photo = np.asarray(image).astype(np.int64)
    mask = result.category_mask
    colour = result.label_set.palette_lut()[mask].astype(np.int64)
    a = round(alpha * 256)
    mixed = (photo * (256 - a) + colour * a + 128) >> 8
    background = mask == result.label_set.index("background")
    assert background.any() and (~background).any()
    np.testing.assert_array_equal(got[~background], mixed[~background])
    np.testing.assert_array_equal(got[background], photo[background])
