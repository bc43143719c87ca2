"""What people do with a subject matte: cut it out, blur or replace the background.

One module for every front end (``seglite segment --effect``, the service's
``output=effect``, video, Python)::

    from seglite import Segmenter, effects

    seg = Segmenter("selfie", output_confidence_masks=True)
    result = seg.segment("me.jpg")
    alpha = result.alpha(["person"], image="me.jpg")
    effects.apply("me.jpg", alpha, "blur").save("me.blur.png")
    effects.apply("me.jpg", alpha, "cutout").save("me.cutout.png")          # RGBA
    effects.apply("me.jpg", alpha, "color:#00b140")                         # green screen
    effects.apply("me.jpg", alpha, "image:beach.jpg")                       # new background
    effects.apply("me.jpg", alpha, "blur", invert=True)                     # blur the subject

Effect specs: ``cutout`` (RGBA, the subject with its alpha), ``blur`` (background blurred,
``strength`` = blur radius in px, default 2% of the long side), ``color:#RRGGBB`` and
``image:FILE`` (background replaced; the image is scaled to cover the frame and
centre-cropped, never stretched). ``invert`` swaps subject and background. Photo effects
return an RGB image of the photo's own (upright) size.

Compositing is Pillow's (``Image.composite`` with an 8-bit alpha, C speed); the blur is
alpha-weighted (the subject's colours do not bleed into the blurred background around it).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter, ImageOps

from .errors import OptionError

KINDS = ("cutout", "blur", "color", "image")
SPECS = "cutout, blur, color:#RRGGBB or image:FILE"
_COLOUR = re.compile(r"#?([0-9a-fA-F]{6})")


@dataclass(frozen=True)
class Effect:
    """A parsed effect spec; plain data (crosses process boundaries for batch workers)."""

    kind: str
    color: tuple[int, int, int] | None = None
    path: str | None = None
    strength: float | None = None
    invert: bool = False
    _cache: dict = field(default_factory=dict, compare=False, repr=False, hash=False)

    @property
    def name(self) -> str:
        """The output suffix: ``NAME.<name>.png`` (``blur``, ``cutout-inverted``, ...)."""
        return self.kind + ("-inverted" if self.invert else "")

    @property
    def rgba(self) -> bool:
        return self.kind == "cutout"

    def record(self) -> dict:
        """What decides this effect's pixels (for an output folder's run record)."""
        d: dict = {"kind": self.kind, "invert": self.invert}
        if self.color is not None:
            d["color"] = "#%02x%02x%02x" % self.color
        if self.path is not None:
            d["image"] = str(Path(self.path).resolve())
        if self.strength is not None:
            d["strength"] = self.strength
        return d

    def check(self) -> Effect:
        """Decode an ``image:`` background now, so a bad file is one line before any work."""
        if self.path is not None:
            _background(self.path, _mtime(self.path))
        return self

    def __call__(self, image, alpha: np.ndarray) -> Image.Image:
        return apply(image, alpha, self)


def parse(spec: str | Effect, *, strength: float | None = None, invert: bool = False) -> Effect:
    """An :class:`Effect` from ``cutout``, ``blur``, ``color:#RRGGBB`` or ``image:FILE``."""
    if isinstance(spec, Effect):
        if strength is None and not invert:
            return spec
        return Effect(
            spec.kind,
            spec.color,
            spec.path,
            spec.strength if strength is None else _strength(strength),
            spec.invert or invert,
        )
    if not isinstance(spec, str) or not spec.strip():
        raise OptionError(f"give an effect: {SPECS}")
    text = spec.strip()
    kind, sep, arg = text.partition(":")
    kind = kind.lower()
    if kind not in KINDS:
        raise OptionError(f"unknown effect {text!r}: use {SPECS}")
    if strength is not None:
        strength = _strength(strength)
    if kind in ("cutout", "blur"):
        if sep:
            raise OptionError(f"effect {kind} takes no ':' value (got {text!r})")
        return Effect(kind, strength=strength, invert=invert)
    if kind == "color":
        m = _COLOUR.fullmatch(arg.strip())
        if not m:
            raise OptionError(f"{text!r}: give the colour as color:#RRGGBB, e.g. color:#00b140")
        v = m.group(1)
        rgb = (int(v[0:2], 16), int(v[2:4], 16), int(v[4:6], 16))
        return Effect("color", color=rgb, strength=strength, invert=invert)
    path = arg.strip()
    if not path:
        raise OptionError("image: needs a file, e.g. image:beach.jpg")
    if not Path(path).is_file():
        raise OptionError(f"{text!r}: no such file {path}")
    return Effect("image", path=path, strength=strength, invert=invert)


def _strength(value) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise OptionError(f"effect strength must be a number, got {value!r}") from None
    if not 0 <= v <= 500:
        raise OptionError(f"effect strength must be between 0 and 500 px, got {value}")
    return v


def apply(
    image,
    alpha: np.ndarray,
    effect: str | Effect,
    *,
    strength: float | None = None,
    invert: bool = False,
) -> Image.Image:
    """``image`` (path, bytes, PIL image or RGB array) with ``effect`` applied through
    ``alpha`` ((H, W) floats in [0, 1] at the image's size, 1 = subject).

    Returns RGBA for ``cutout``, RGB of the photo's size for the others.
    """
    fx = parse(effect, strength=strength, invert=invert)
    photo = _rgb(image)
    a = np.asarray(alpha)
    if a.ndim != 2 or a.shape != (photo.height, photo.width):
        raise OptionError(
            f"alpha is {'x'.join(map(str, a.shape[::-1]))} but the image is "
            f"{photo.width}x{photo.height}: compute the matte from this image's result"
        )
    if fx.invert:
        a = 1.0 - a
    mask = Image.fromarray(_to_u8(a), mode="L")
    if fx.kind == "cutout":
        out = photo.copy()
        out.putalpha(mask)
        return out
    if fx.kind == "color":
        background = Image.new("RGB", photo.size, fx.color)
    elif fx.kind == "image":
        background = _fitted(fx, photo.size)
    else:
        background = _blurred_background(photo, mask, fx.strength)
    return Image.composite(photo, background, mask)


def _rgb(image) -> Image.Image:
    if isinstance(image, Image.Image) and image.mode == "RGB" and not image.getexif().get(0x0112):
        return image
    if isinstance(image, np.ndarray) and image.ndim == 3 and image.shape[2] == 3:
        return Image.fromarray(np.ascontiguousarray(image, dtype=np.uint8))
    from .image import load_image

    return load_image(image, max_pixels=None).image


def _to_u8(a: np.ndarray) -> np.ndarray:
    out = np.multiply(a, 255.0, dtype=np.float32)
    out += 0.5
    np.clip(out, 0, 255, out=out)
    return out.astype(np.uint8)


def blur_radius(size: tuple[int, int], strength: float | None) -> float:
    """The blur's Gaussian radius in px: ``strength``, or 2% of the long side."""
    return float(strength) if strength is not None else max(2.0, 0.02 * max(size))


def _blurred_background(
    photo: Image.Image, mask: Image.Image, strength: float | None
) -> Image.Image:
    """The background blurred with weights (1 - alpha): blur(img * w) / blur(w), so the
    subject's colours do not leak into the background around it. Large radii blur a copy
    reduced by a whole factor k (a Gaussian of radius R at 1/k scale is one of radius k R);
    ``mask`` is the 8-bit alpha."""
    radius = blur_radius(photo.size, strength)
    if radius <= 0:
        return photo
    k = max(1, int(radius // 4))  # blur at <= 1/k scale, radius >= 4 px there
    if k > 1:  # Image.reduce: a box average by whole factors, cheaper than resize
        photo_small, mask_small = photo.reduce(k), mask.reduce(k)
    else:
        photo_small, mask_small = photo, mask
    img = np.asarray(photo_small, np.float32)
    weight = 1.0 - np.asarray(mask_small, np.float32) * (1.0 / 255.0)
    r = radius / k
    wimg = Image.fromarray(_to_u8(weight), mode="L")
    premult = Image.fromarray((img * weight[..., None] + 0.5).astype(np.uint8), mode="RGB")
    num = np.asarray(premult.filter(ImageFilter.GaussianBlur(r)), np.float32)
    den = np.asarray(wimg.filter(ImageFilter.GaussianBlur(r)), np.float32) / 255.0
    out = num / np.maximum(den, 1e-3)[..., None]
    hollow = den <= 0.05  # deep inside a large subject no background is near: plain blur
    if hollow.any():
        plain = photo_small.filter(ImageFilter.GaussianBlur(r))
        out[hollow] = np.asarray(plain, np.float32)[hollow]
    out = Image.fromarray(np.clip(out + 0.5, 0, 255).astype(np.uint8), mode="RGB")
    return out if k == 1 else out.resize(photo.size, Image.Resampling.BILINEAR)


def _mtime(path: str) -> float:
    try:
        return os.stat(path).st_mtime
    except OSError:
        raise OptionError(f"image:{path}: no such file") from None


@lru_cache(maxsize=4)
def _background(path: str, mtime: float) -> Image.Image:
    from .image import load_image

    return load_image(path).image


def _fitted(fx: Effect, size: tuple[int, int]) -> Image.Image:
    """The ``image:`` background scaled to cover ``size`` and centre-cropped (cached per
    size, so video frames pay for it once)."""
    key = (size, _mtime(fx.path))
    got = fx._cache.get(key)
    if got is None:
        got = ImageOps.fit(_background(fx.path, key[1]), size, Image.Resampling.BILINEAR)
        fx._cache.clear()
        fx._cache[key] = got
    return got


@dataclass(frozen=True)
class EffectOutput:
    """An effect as a batch output: which classes make the matte, its feather, the effect.

    ``seglite segment --effect`` hands one to ``batch.Outputs``; every image then also gets
    ``NAME.<effect.name>.png`` (RGBA for cutouts). The Segmenter must give confidence masks
    where the model has them (:func:`segmenter_options`); ArgMax models get a feathered matte.
    """

    effect: Effect
    classes: tuple[str, ...] | None = None
    feather: float | None = None

    @property
    def name(self) -> str:
        return self.effect.name

    def record(self) -> dict:
        classes = list(self.classes) if self.classes is not None else None
        return {**self.effect.record(), "classes": classes, "feather": self.feather}

    def render(self, image, result) -> Image.Image:
        alpha = result.alpha(self.classes, image=image, feather=self.feather)
        return apply(image, alpha, self.effect)

    def png(self, image, result) -> bytes:
        from .viz import png_bytes

        return png_bytes(self.render(image, result))


def segmenter_options(seg) -> dict:
    """The Segmenter keyword an effect needs from ``seg``'s model: confidence masks, unless
    it outputs class ids only (an ArgMax graph), whose matte is feathered from the mask."""
    return {"output_confidence_masks": seg.backend.output_kind != "argmax"}
