"""The one image loader: decode anything a user hands in, upright, as RGB, and fit it to a model.

The Segmenter always decodes in full, so a mask depends on the image's pixels alone. A
preview that needs only a small picture (the service's budgeted confidence map) may ask
the JPEG decoder for a reduced one (``min_size``, DCT scaling) and still learn the full size.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Union

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from .errors import ImageError, ImageTooLargeError

# Our own guard replaces Pillow's warning-then-error so the limit is one clear option.
Image.MAX_IMAGE_PIXELS = None
ImageFile.LOAD_TRUNCATED_IMAGES = False

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
        img = Image.open(fp)
        # Size check from the header alone: for PNG, getexif() may decode the whole image.
        _check_pixels(img.size, max_pixels, name)
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
    except UnidentifiedImageError:
        raise ImageError(f"{name}: not an image file Pillow can read") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ImageError(f"{name}: corrupt or truncated image ({msg})") from None
    if img.size[0] == 0 or img.size[1] == 0:
        raise ImageError(f"{name}: image has no pixels")
    return LoadedImage(img, upright, name)


def _check_pixels(size: tuple[int, int], max_pixels: int | None, name: str) -> None:
    if size[0] <= 0 or size[1] <= 0:
        raise ImageError(f"{name}: image has no pixels")
    if max_pixels is not None and size[0] * size[1] > max_pixels:
        raise ImageTooLargeError(
            f"{name}: {size[0]}x{size[1]} = {size[0] * size[1]:,} pixels exceeds the limit of "
            f"{max_pixels:,} (raise max_pixels / --max-pixels if you trust this image)"
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
