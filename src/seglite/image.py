"""The one image loader: decode anything a user hands in, upright, as RGB, and fit it to a model.

The Segmenter always decodes in full, so a mask depends on the image's pixels alone. A
preview that needs only a small picture (the service's budgeted confidence map) may ask
the JPEG decoder for a reduced one (``min_size``, DCT scaling) and still learn the full size.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import io
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Union

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import ImageError, ImageFormatError, ImageTooLargeError
from .png_decode import decode_rgb8

# The raster formats seglite decodes, Pillow's names (MPO, phones' multi-picture JPEG, comes
# in through the JPEG plugin). Nothing else is even parsed: EPS would run Ghostscript on
# the uploader's PostScript, and the long tail of rare plugins is attack surface that no
# photo needs. JPEG 2000 is left out too: a few hundred bytes can declare a huge canvas.
FORMATS = ("JPEG", "PNG", "WEBP", "BMP", "GIF", "TIFF", "PPM", "AVIF")
# Signatures of formats people do send, to name them when they are refused.
_SIGNATURES = {
    b"%!PS": "PostScript/EPS",
    b"\xc5\xd0\xd3\xc6": "EPS",
    b"%PDF": "PDF",
    b"8BPS": "PSD",
    b"\x00\x00\x00\x0cjP  ": "JPEG 2000",
    b"\xff\x4f\xff\x51": "JPEG 2000",
    b"<svg": "SVG",
    b"<?xml": "SVG/XML",
    b"\x00\x00\x01\x00": "ICO",
}
# Signatures of the accepted formats: such a file that Pillow cannot open is broken.
_ACCEPTED_SIGNATURES = {
    b"\xff\xd8\xff": "JPEG",
    b"\x89PNG": "PNG",
    b"GIF8": "GIF",
    b"BM": "BMP",
    b"II*\x00": "TIFF",
    b"MM\x00*": "TIFF",
    b"RIFF": "WEBP",
}

DEFAULT_MAX_PIXELS = 100_000_000  # 100 MP: larger photos exist, bombs are far larger
ImageSource = Union[  # noqa: UP007 (a runtime alias)
    str, os.PathLike, bytes, bytearray, memoryview, Image.Image, np.ndarray
]

# EXIF orientations that swap width and height.
_TRANSPOSING = {5, 6, 7, 8}


@dataclass
class LoadedImage:
    """Decoded RGB pixels, upright. ``size`` is the full upright size even if ``image`` is reduced."""

    image: Image.Image
    size: tuple[int, int]  # (width, height) of the full-resolution upright image
    source_name: str = ""

    @property
    def reduced(self) -> bool:
        return self.image.size != self.size


def _describe(src) -> str:
    if isinstance(src, (str, os.PathLike)):
        return str(src)
    if isinstance(src, (bytes, bytearray, memoryview)):
        return f"<{len(src)} bytes>"
    return f"<{type(src).__name__}>"


def _from_array(arr: np.ndarray) -> Image.Image:
    a = np.asarray(arr)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (3, 4)) or a.size == 0:
        raise ImageError(
            f"array of shape {a.shape} is not an image: expected HxW, HxWx3 (RGB) or HxWx4 (RGBA)"
        )
    if a.dtype == np.uint8:
        pass
    elif a.dtype == np.uint16:
        a = (a >> 8).astype(np.uint8)
    elif a.dtype == np.bool_:
        a = a.astype(np.uint8) * 255
    elif np.issubdtype(a.dtype, np.floating):
        if not np.isfinite(a).all():
            raise ImageError("float image contains NaN or infinity")
        scale = 255.0 if a.max(initial=0.0) <= 1.0 else 1.0
        a = np.clip(a * scale, 0, 255).round().astype(np.uint8)
    elif np.issubdtype(a.dtype, np.integer):
        a = np.clip(a, 0, 255).astype(np.uint8)
    else:
        raise ImageError(f"array of dtype {a.dtype} is not an image")
    img = Image.fromarray(np.ascontiguousarray(a))
    return img.convert("RGB") if img.mode != "RGB" else img


def _to_rgb(img: Image.Image) -> Image.Image:
    if img.mode == "RGB":
        return img
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        a = np.asarray(img, dtype=np.uint32)
        top = 65535 if a.max(initial=0) > 255 else 255
        a = (a.astype(np.float32) * (255.0 / top)).clip(0, 255).astype(np.uint8)
        return Image.fromarray(a).convert("RGB")
    if img.mode == "F":
        return _from_array(np.asarray(img))
    if img.mode in ("P", "PA"):
        img = img.convert("RGBA")
    return img.convert("RGB")


def load_image(
    src: ImageSource,
    *,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    min_size: tuple[int, int] | None = None,
) -> LoadedImage:
    """Decode ``src`` to upright RGB.

    ``min_size`` (width, height) lets the JPEG decoder return a reduced image no
    smaller than that in either dimension, which is all a fixed-input model needs.
    """
    name = _describe(src)
    if isinstance(src, Image.Image):
        img = ImageOps.exif_transpose(src) if src.getexif().get(0x0112, 1) != 1 else src
        _check_pixels(img.size, max_pixels, name)
        return LoadedImage(_to_rgb(img), img.size, name)
    if isinstance(src, np.ndarray):
        img = _from_array(src)
        _check_pixels(img.size, max_pixels, name)
        return LoadedImage(img, img.size, name)
    if isinstance(src, (bytes, bytearray, memoryview)):
        if len(src) == 0:
            raise ImageError("empty image data: 0 bytes")
        fp = io.BytesIO(bytes(src))
    elif isinstance(src, (str, os.PathLike)):
        path = Path(src)
        if not path.is_file():
            raise ImageError(f"{path}: no such file")
        if path.stat().st_size == 0:
            raise ImageError(f"{path}: empty file")
        fp = path
    else:
        raise ImageError(f"cannot read an image from {type(src).__name__}")
    try:
        img = open_image(fp, name, max_pixels)
        # Size check from the header alone: for PNG, getexif() may decode the whole image.
        _check_pixels(img.size, max_pixels, name)
        if img.format == "PNG" and img.mode == "RGB":
            fast = decode_rgb8(_data(fp), img.size)
            if fast is not None:
                img.close()
                return LoadedImage(fast, fast.size, name)
        orientation = img.getexif().get(0x0112, 1)
        w, h = img.size
        upright = (h, w) if orientation in _TRANSPOSING else (w, h)
        if min_size is not None and img.format == "JPEG":
            want = min_size[::-1] if orientation in _TRANSPOSING else min_size
            img.draft("RGB", want)
        img.load()
        if orientation != 1:
            img = ImageOps.exif_transpose(img)
        img = _to_rgb(img)
    except ImageError:
        raise
    except MemoryError:
        raise ImageTooLargeError(f"{name}: not enough memory to decode this image") from None
    except Exception as exc:  # any decoder failure (OSError, RuntimeError from AVIF, ...)
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ImageError(f"{name}: corrupt or truncated image ({msg})") from None
    if img.size[0] == 0 or img.size[1] == 0:
        raise ImageError(f"{name}: image has no pixels")
    return LoadedImage(img, upright, name)


def open_image(fp, name: str = "image", max_pixels: int | None = None) -> Image.Image:
    """``Image.open`` restricted to :data:`FORMATS`: the one place a file's format is judged.

    Pillow's own pixel guard warns from 89 MP; seglite's ``max_pixels`` (checked by the
    callers from the same header) is the limit that counts, so that warning is muted here
    rather than by changing ``PIL.Image.MAX_IMAGE_PIXELS`` for the whole process.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            quick = _quick_format(fp)
            if quick is not None:
                with contextlib.suppress(UnidentifiedImageError):
                    return Image.open(fp, formats=quick)
            return Image.open(fp, formats=_available_formats())
    except UnidentifiedImageError:
        broken = _broken_accepted_format(fp)
        if broken:
            raise ImageError(f"{name}: corrupt or truncated image ({broken})") from None
        raise ImageFormatError(f"{name}: {_refused_format(fp)}") from None
    except Image.DecompressionBombError as exc:  # over twice Pillow's limit, from the header
        found = re.search(r"\((\d+) pixels\)", str(exc))
        pixels = int(found.group(1)) if found else None
        if pixels is not None and max_pixels is not None and pixels > max_pixels:
            raise ImageTooLargeError(_too_many(name, pixels, max_pixels)) from None
        raise ImageTooLargeError(
            f"{name}: {f'{pixels:,}' if pixels else 'that many'} pixels is over Pillow's own limit of "
            f"{2 * Image.MAX_IMAGE_PIXELS:,} as well; raise PIL.Image.MAX_IMAGE_PIXELS too "
            "if you trust this image"
        ) from None


_PLUGINS = {"JPEG": "Jpeg", "PNG": "Png", "WEBP": "WebP", "BMP": "Bmp", "GIF": "Gif",
            "TIFF": "Tiff", "PPM": "Ppm", "AVIF": "Avif"}  # fmt: skip


# The formats nearly every file is, known by their first bytes: for them only their own
# plugin is imported (the other six cost ~11 ms of a one-image run). Anything else, or a
# file these plugins refuse after all, goes through every accepted format.
_QUICK = ((b"\xff\xd8\xff", ("JPEG",)), (b"\x89PNG\r\n\x1a\n", ("PNG",)))


def _quick_format(fp) -> tuple[str, ...] | None:
    head = _head(fp)
    for magic, formats in _QUICK:
        if head.startswith(magic):
            with contextlib.suppress(ImportError):
                importlib.import_module(f"PIL.{_PLUGINS[formats[0]]}ImagePlugin")
                return formats
    return None


@functools.cache
def _available_formats() -> tuple[str, ...]:
    """:data:`FORMATS` that this Pillow build has a plugin for (AVIF is optional).

    Imports just those plugins: ``Image.init()`` would import all forty of Pillow's
    (~40 ms of a one-image CLI run), and ``Image.open`` given registered ``formats``
    looks no further.
    """
    for name in FORMATS:
        with contextlib.suppress(ImportError):
            importlib.import_module(f"PIL.{_PLUGINS[name]}ImagePlugin")
    return tuple(f for f in FORMATS if f in Image.OPEN)


def _data(fp) -> bytes:
    """All bytes of a path or of in-memory data (its BytesIO)."""
    if isinstance(fp, (str, os.PathLike)):
        return Path(fp).read_bytes()
    return fp.getvalue()


def _head(fp) -> bytes:
    try:
        if isinstance(fp, (str, os.PathLike)):
            with open(fp, "rb") as fh:
                return fh.read(16)
        fp.seek(0)
        return fp.read(16)
    except OSError:
        return b""


def _broken_accepted_format(fp) -> str | None:
    """'an unreadable PNG header' when the file starts like an accepted format."""
    head = _head(fp)
    for sig, kind in _ACCEPTED_SIGNATURES.items():
        if head.startswith(sig):
            return f"an unreadable {kind} header"
    if head[4:12] in (b"ftypavif", b"ftypavis"):
        return "an unreadable AVIF header"
    return None


def _refused_format(fp) -> str:
    accepted = ", ".join(FORMATS)
    head = _head(fp)
    for sig, kind in _SIGNATURES.items():
        if head.lstrip().startswith(sig):
            return f"{kind} files are not accepted; seglite reads {accepted}"
    return f"not an image file seglite reads ({accepted})"


def _check_pixels(size: tuple[int, int], max_pixels: int | None, name: str) -> None:
    if size[0] <= 0 or size[1] <= 0:
        raise ImageError(f"{name}: image has no pixels")
    if max_pixels is not None and size[0] * size[1] > max_pixels:
        raise ImageTooLargeError(_too_many(name, size[0] * size[1], max_pixels, size))


def _too_many(name: str, pixels: int, limit: int, size: tuple[int, int] | None = None) -> str:
    dims = f"{size[0]}x{size[1]} = " if size else ""
    return (
        f"{name}: {dims}{pixels:,} pixels exceeds the limit of {limit:,} "
        "(raise max_pixels / --max-pixels if you trust this image)"
    )


def resize(img: Image.Image, size: tuple[int, int]) -> Image.Image:
    """Bilinear resize of a picture to (width, height); antialiased when shrinking.

    For what people look at (overlays, the accurate mode's scaled copies); a model's own
    input goes through :func:`model_pixels` instead. reducing_gap=2 first box-reduces by
    an integer factor when shrinking more than 2x (much faster, visually the same).
    """
    if img.size == size:
        return img
    return img.resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0)


def model_pixels(img: Image.Image, size: tuple[int, int]) -> np.ndarray:
    """uint8 (h, w, 3) pixels for a model whose input is ``size`` (width, height).

    Box-reduced by whole factors until less than twice ``size`` on each axis; the backend
    then squashes them to ``size`` with plain bilinear (bilinear.py, inside the model's
    graph for LiteRT), as the TFLite Task Library and MediaPipe do. Within 2x, bilinear
    still reads every pixel, so nothing aliases; JPEGs arrive here already reduced by the
    decoder (load_image's ``min_size``).
    """
    fx = max(1, img.width // size[0])
    fy = max(1, img.height // size[1])
    if fx > 1 or fy > 1:
        img = img.reduce((fx, fy))
    return to_array(img)


def to_array(img: Image.Image) -> np.ndarray:
    return np.asarray(img.convert("RGB") if img.mode != "RGB" else img)
