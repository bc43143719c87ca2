"""The one image loader: every input kind, EXIF, odd modes, and every kind of bad input."""

from __future__ import annotations

import io
import subprocess
import sys

import numpy as np
import pytest
from conftest import EXAMPLES
from PIL import Image

from seglite.errors import ImageError, ImageTooLargeError
from seglite.image import load_image


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def test_sixteen_bit_png_is_scaled_not_clipped():
    ramp = (np.linspace(0, 65535, 64 * 64).reshape(64, 64)).astype(np.uint16)
    loaded = load_image(_png(Image.fromarray(ramp)))
    px = np.asarray(loaded.image)
    assert loaded.image.mode == "RGB" and px.max() >= 250 and px.min() <= 5


def test_palette_and_rgba_and_gray():
    base = Image.open(EXAMPLES / "chelsea.jpg")
    for mode in ("P", "RGBA", "L", "LA", "1", "CMYK"):
        loaded = load_image(_png(base.convert(mode)) if mode != "CMYK" else base.convert(mode))
        assert loaded.image.mode == "RGB" and loaded.size == (451, 300)


def test_jpeg_draft_reduces_but_reports_full_size():
    big = Image.open(EXAMPLES / "astronaut.jpg").resize((2048, 1536))
    buf = io.BytesIO()
    big.save(buf, "JPEG")
    loaded = load_image(buf.getvalue(), min_size=(257, 257))
    assert loaded.size == (2048, 1536)
    assert loaded.reduced and min(loaded.image.size) >= 257


def test_exif_rotation_swaps_size():
    img = Image.open(EXAMPLES / "chelsea.jpg")
    exif = img.getexif()
    exif[0x0112] = 6
    buf = io.BytesIO()
    img.save(buf, "JPEG", exif=exif.tobytes())
    loaded = load_image(buf.getvalue(), min_size=(100, 100))
    assert loaded.size == (300, 451) and loaded.image.size[0] < loaded.image.size[1]


@pytest.mark.parametrize(
    "data, message",
    [
        (b"", "empty"),
        (b"this is text, not a picture\n", "not an image"),
        ((EXAMPLES / "astronaut.jpg").read_bytes()[:4000], "truncated"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, "image"),
    ],
)
def test_bad_bytes_give_one_line_errors(data, message):
    with pytest.raises(ImageError, match=message) as info:
        load_image(data)
    assert "\n" not in str(info.value)


def test_jpeg_and_png_files_open_with_their_own_plugin_alone(tmp_path):
    # The common formats are told by their first bytes, so a one-image run imports one
    # Pillow plugin, not eight (a PNG named .jpg too); a GIF still opens.
    Image.new("RGB", (4, 4)).save(tmp_path / "png_inside.jpg", "PNG")
    Image.new("P", (4, 4)).save(tmp_path / "x.gif", "GIF")
    code = (
        "import sys; from seglite.image import load_image;"
        f"load_image({str(EXAMPLES / 'astronaut.jpg')!r}); load_image({str(tmp_path / 'png_inside.jpg')!r});"
        "print(sorted(m for m in sys.modules if m.endswith('ImagePlugin')));"
        f"print(load_image({str(tmp_path / 'x.gif')!r}).size)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    plugins, gif_size = out.stdout.splitlines()
    assert plugins == "['PIL.JpegImagePlugin', 'PIL.PngImagePlugin']"
    assert gif_size == "(4, 4)"


def test_bytes_with_jpeg_magic_that_are_not_jpeg():
    with pytest.raises(ImageError, match="image") as info:
        load_image(b"\xff\xd8\xff" + b"GIF89a" * 20)
    assert "\n" not in str(info.value)


def test_text_file_named_jpg(tmp_path):
    bad = tmp_path / "notes.jpg"
    bad.write_text("hello")
    with pytest.raises(ImageError, match="notes.jpg"):
        load_image(bad)
    with pytest.raises(ImageError, match="no such file"):
        load_image(tmp_path / "missing.jpg")


def test_decompression_bomb_refused_before_decoding():
    # A 30000x30000 PNG header with almost no data: refused from the header alone.
    bomb = Image.new("1", (30000, 30000))
    data = _png(bomb)
    assert len(data) < 200_000
    with pytest.raises(ImageTooLargeError, match="exceeds the limit"):
        load_image(data)
    with pytest.raises(ImageTooLargeError):
        load_image(data, max_pixels=10_000_000)


def test_arrays():
    assert load_image(np.zeros((10, 20), np.uint8)).size == (20, 10)
    assert load_image(np.ones((10, 20, 3), np.float32)).size == (20, 10)
    for bad in (np.zeros((0, 5, 3), np.uint8), np.zeros((4, 4, 7), np.uint8), np.zeros(5)):
        with pytest.raises(ImageError):
            load_image(bad)
    with pytest.raises(ImageError, match="NaN"):
        load_image(np.full((4, 4, 3), np.nan, np.float32))


def test_bomb_is_refused_without_decoding(monkeypatch):
    """The pixel limit is checked from the header, before anything (EXIF lookup included) decodes."""
    from PIL import ImageFile

    data = _png(Image.new("1", (30000, 30000)))

    def refuse(self, *a, **k):
        raise AssertionError("decoded a bomb")

    monkeypatch.setattr(ImageFile.ImageFile, "load", refuse)
    with pytest.raises(ImageTooLargeError):
        load_image(data)
