"""Effects on a real person matte: cutout, blur, colour and image backgrounds, invert, specs."""

from __future__ import annotations

import io

import numpy as np
import pytest
from conftest import EXAMPLES, PHOTOS
from PIL import Image, ImageFilter

from seglite import Segmenter, effects
from seglite.errors import OptionError

ASTRONAUT = EXAMPLES / "astronaut.jpg"


@pytest.fixture(scope="module")
def matte():
    result = Segmenter("selfie", num_threads=2, output_confidence_masks=True).segment(ASTRONAUT)
    return result.alpha(["person"], image=ASTRONAUT)


@pytest.fixture(scope="module")
def photo():
    return np.asarray(Image.open(ASTRONAUT).convert("RGB"))


def test_cutout_is_the_photo_with_its_alpha(matte, photo):
    out = effects.apply(ASTRONAUT, matte, "cutout")
    assert out.mode == "RGBA" and out.size == photo.shape[1::-1]
    rgba = np.asarray(out)
    np.testing.assert_array_equal(rgba[..., :3], photo)
    assert np.abs(rgba[..., 3].astype(int) - np.round(matte * 255)).max() <= 1
    inverted = np.asarray(effects.apply(ASTRONAUT, matte, "cutout", invert=True))
    assert np.abs(inverted[..., 3].astype(int) + rgba[..., 3] - 255).max() <= 1


def test_colour_and_image_backgrounds_replace_only_the_background(matte, photo, tmp_path):
    subject, background = matte == 1, matte == 0
    green = np.asarray(effects.apply(ASTRONAUT, matte, "color:#00B140"))
    assert green.shape == photo.shape
    np.testing.assert_array_equal(green[subject], photo[subject])
    assert (green[background] == (0, 0xB1, 0x40)).all()
    # A wide landscape background on the square photo: scaled to cover, centre-cropped.
    wide = np.asarray(Image.open(PHOTOS / "rocket.jpg").convert("RGB"))
    wide = np.ascontiguousarray(np.concatenate([wide, wide[:, ::-1]], axis=1))
    Image.fromarray(wide).save(tmp_path / "wide.png")
    out = np.asarray(effects.apply(ASTRONAUT, matte, f"image:{tmp_path / 'wide.png'}"))
    assert out.shape == photo.shape
    np.testing.assert_array_equal(out[subject], photo[subject])
    h, w = photo.shape[:2]
    bh, bw = wide.shape[:2]
    scale = max(w / bw, h / bh)
    fitted = Image.fromarray(wide).resize((round(bw * scale), round(bh * scale)))
    x0 = (fitted.width - w) // 2
    expected = np.asarray(fitted.crop((x0, 0, x0 + w, h)))
    diff = np.abs(out[background].astype(int) - expected[background]).mean()
    assert diff < 8, diff  # the centre of the wide picture, not stretched
    # Inverted: the subject is replaced and the background kept.
    inv = np.asarray(effects.apply(ASTRONAUT, matte, "color:#000000", invert=True))
    np.testing.assert_array_equal(inv[background], photo[background])
    assert (inv[subject] == 0).all()


def test_blur_blurs_the_background_and_keeps_the_subject(matte, photo):
    out = np.asarray(effects.apply(ASTRONAUT, matte, "blur"))
    subject, background = matte == 1, matte == 0
    np.testing.assert_array_equal(out[subject], photo[subject])

    def detail(img):  # mean absolute horizontal gradient over the background
        g = np.abs(np.diff(img.astype(np.int16).mean(-1), axis=1))
        return g[background[:, 1:]].mean()

    assert detail(out) < 0.5 * detail(photo)
    stronger = np.asarray(effects.apply(ASTRONAUT, matte, "blur", strength=30))
    assert detail(stronger) < detail(out)
    # The blurred background takes no colour from the subject (her orange suit) next to it.
    ring = (matte == 0) & (np.roll(matte, 12, axis=1) > 0.5)
    orange = lambda img: (img[..., 0].astype(int) - img[..., 2])[ring].mean()  # noqa: E731
    plain = np.asarray(Image.fromarray(photo).filter(ImageFilter.GaussianBlur(10)))
    assert orange(out) < orange(plain)


def test_effects_keep_the_upright_size_of_a_rotated_photo(tmp_path):
    stored = Image.open(ASTRONAUT).convert("RGB").crop((0, 0, 512, 384))
    exif = stored.getexif()
    exif[0x0112] = 6  # shown rotated by 90 degrees: upright it is 384 x 512
    buf = io.BytesIO()
    stored.save(buf, "JPEG", exif=exif.tobytes())
    path = tmp_path / "rotated.jpg"
    path.write_bytes(buf.getvalue())
    result = Segmenter("selfie", num_threads=2, output_confidence_masks=True).segment(path)
    alpha = result.alpha(image=path)
    assert alpha.shape == (512, 384)
    for spec in ("cutout", "blur", "color:#ffffff"):
        assert effects.apply(path, alpha, spec).size == (384, 512)


@pytest.mark.parametrize(
    "spec, message",
    [
        ("sparkle", "unknown effect 'sparkle'"),
        ("color:#12345", "color:#RRGGBB"),
        ("color:red", "color:#RRGGBB"),
        ("image:", "needs a file"),
        ("image:/no/such/file.jpg", "no such file"),
        ("blur:3", "takes no ':' value"),
        ("", "give an effect"),
    ],
)
def test_bad_specs_are_one_line_errors(spec, message):
    with pytest.raises(OptionError, match=message) as info:
        effects.parse(spec)
    assert "\n" not in str(info.value)


def test_spec_parsing_and_other_errors(matte, tmp_path):
    assert effects.parse("color:#00ff00").color == (0, 255, 0)
    assert effects.parse("Blur", strength=5).strength == 5.0
    assert effects.parse("cutout", invert=True).name == "cutout-inverted"
    with pytest.raises(OptionError, match="strength"):
        effects.parse("blur", strength=-1)
    with pytest.raises(OptionError, match="alpha is"):
        effects.apply(ASTRONAUT, matte[:100], "cutout")
    bad = tmp_path / "bad.jpg"
    bad.write_text("not an image")
    from seglite.errors import ImageError

    with pytest.raises(ImageError):
        effects.parse(f"image:{bad}").check()
