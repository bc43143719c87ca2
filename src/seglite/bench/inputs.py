"""The one image every configuration sees."""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .settings import DEFAULT_IMAGE_SIZE


@dataclass(frozen=True)
class BenchInput:
    """The one image every configuration sees: encoded bytes (for end2end) and a name.

    ``random`` means the invoke stage feeds seeded uniform noise at the model's size
    (as benchmark_model does); end2end then segments a noise JPEG of the default size.
    """

    name: str
    data: bytes
    random: bool = False

    def pixels(self, size: tuple[int, int]) -> np.ndarray:
        """uint8 (1, H, W, 3) at the model's (height, width): the same for every backend."""
        h, w = size
        if self.random:
            return np.random.default_rng(0).integers(0, 256, (1, h, w, 3), dtype=np.uint8)
        from ..image import load_image, resize, to_array

        loaded = load_image(self.data)
        return np.array(to_array(resize(loaded.image, (w, h)))[None])  # own, writable copy


def _jpeg(img) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def example_image() -> Path | None:
    """examples/astronaut.jpg of a source checkout (not shipped in the wheel)."""
    path = Path(__file__).resolve().parents[2] / "examples" / "astronaut.jpg"
    return path if path.is_file() else None


def default_jpeg(size: tuple[int, int] = DEFAULT_IMAGE_SIZE) -> bytes:
    """The standard benchmark input: a 640x480 JPEG of the astronaut photo.

    Outside a source checkout, a smooth synthetic picture of the same size stands in.
    """
    from PIL import Image

    src = example_image()
    if src is not None:
        with Image.open(src) as img:
            return _jpeg(img.convert("RGB").resize(size, Image.Resampling.BILINEAR))
    w, h = size
    y, x = np.mgrid[0:h, 0:w]
    arr = np.stack([x * 255 // w, y * 255 // h, (x + y) * 255 // (w + h)], -1).astype(np.uint8)
    return _jpeg(Image.fromarray(arr))


def make_input(spec: str | os.PathLike | None = None) -> BenchInput:
    """``None``: the default 640x480 JPEG; ``"random"``: noise; else an image file."""
    from PIL import Image

    if spec is None:
        src = example_image()
        name = "astronaut.jpg 640x480" if src is not None else "synthetic 640x480 JPEG"
        return BenchInput(name, default_jpeg())
    if str(spec) == "random":
        w, h = DEFAULT_IMAGE_SIZE
        noise = np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)
        return BenchInput("random", _jpeg(Image.fromarray(noise)), random=True)
    from ..errors import ImageError
    from ..image import load_image

    path = Path(spec)
    if not path.is_file():
        raise ImageError(f"--input {spec}: no such file (give an image file or 'random')")
    data = path.read_bytes()
    loaded = load_image(data)  # refuse a bad image here, once, rather than in every worker
    w, h = loaded.size
    return BenchInput(f"{path.name} {w}x{h}", data)
