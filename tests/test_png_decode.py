"""libspng decodes plain 8-bit RGB PNGs; every other PNG, and every broken one, goes
through Pillow: the pixels seglite sees never depend on which decoder ran."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from conftest import PHOTOS
from PIL import Image

from seglite import png_decode
from seglite.errors import ImageError
from seglite.image import load_image


@pytest.fixture
def spy(monkeypatch):
    """Records what the libspng path returned for each call (None: Pillow decoded)."""
    calls = []
    real = png_decode.decode_rgb8

    def recording(data, size):
        out = real(data, size)
        calls.append(out is not None)
        return out

    monkeypatch.setattr("seglite.image.decode_rgb8", recording)
    return calls


def _pillow(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def _png(img: Image.Image, **params) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG", **params)
    return buf.getvalue()


def test_real_rgb_photos_take_libspng_with_pillows_pixels(spy, tmp_path):
    for name in ("coffee.png", "camera.png"):
        data = (PHOTOS / name).read_bytes()
        rgb = Image.open(io.BytesIO(data)).convert("RGB")
        for variant in (_png(rgb), _png(rgb, optimize=True), _png(rgb, compress_level=1)):
            loaded = load_image(variant)
            assert np.array_equal(np.asarray(loaded.image), _pillow(variant))
            assert loaded.size == rgb.size
        path = tmp_path / name  # from a path as from bytes
        path.write_bytes(_png(rgb))
        assert np.array_equal(np.asarray(load_image(path).image), np.asarray(rgb))
    assert spy and all(spy)


def test_other_layouts_go_through_pillow(spy):
    rgb = Image.open(PHOTOS / "coffee.png").convert("RGB").resize((96, 64))
    a = np.asarray(rgb)
    cases = {
        "palette": _png(rgb.convert("P")),
        "grey": _png(rgb.convert("L")),
        "rgba": _png(rgb.convert("RGBA")),
    }
    for name, data in cases.items():
        loaded = load_image(data)
        assert loaded.image.mode == "RGB", name
        assert loaded.size == (96, 64), name
    assert spy == []  # none of them is RGB by its header: libspng never asked
    # 16-bit RGB: Pillow's header says "RGB" too, libspng would give 16-bit samples
    loaded = load_image(_png_rgb16(a.astype(np.uint16) * 256 + 3))
    assert np.array_equal(np.asarray(loaded.image), a)  # the high byte, as Pillow reads it
    assert spy == [False]


def _png_rgb16(pixels: np.ndarray) -> bytes:
    """A 16-bit RGB PNG (Pillow writes none), by the format's own chunk rules."""
    h, w, _ = pixels.shape

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    rows = b"".join(b"\x00" + pixels[y].astype(">u2").tobytes() for y in range(h))
    ihdr = struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def test_exif_orientation_is_honoured(spy):
    rgb = Image.open(PHOTOS / "coffee.png").convert("RGB").resize((90, 60))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 clockwise to view
    loaded = load_image(_png(rgb, exif=exif.tobytes()))
    assert loaded.size == (60, 90)
    assert np.array_equal(np.asarray(loaded.image), np.asarray(rgb.transpose(Image.ROTATE_270)))
    assert spy == [False]  # the EXIF chunk sends it to Pillow


def test_corrupt_png_gets_pillows_one_line_error(spy):
    rgb = Image.open(PHOTOS / "coffee.png").convert("RGB")
    data = _png(rgb)
    broken = bytearray(data)
    broken[len(data) // 2 : len(data) // 2 + 64] = b"\x00" * 64  # inside the IDAT stream
    for bad in (data[: len(data) // 2], bytes(broken)):
        with pytest.raises(ImageError, match="corrupt or truncated image"):
            load_image(bad)
    assert spy == [False, False]
