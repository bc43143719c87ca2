"""DeepLab training augmentation: random scale, pad with ignore, random crop, flip, jitter.

Every random choice comes from a ``numpy.random.Generator`` the caller passes in, so a
sample's augmentation depends only on (seed, epoch, position) and a resumed run sees
exactly the crops it would have seen without the interruption.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

MEAN = 127.5
STD = 127.5


def normalize(image: np.ndarray) -> np.ndarray:
    """uint8 HWC -> float32 CHW, ``(x - 127.5) / 127.5`` as every seglite DeepLab expects."""
    out = image.astype(np.float32).transpose(2, 0, 1)
    out -= MEAN
    out /= STD
    return np.ascontiguousarray(out)


def _resize_pair(
    image: np.ndarray, mask: np.ndarray, scale: float
) -> tuple[np.ndarray, np.ndarray]:
    h, w = mask.shape
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    if (nw, nh) == (w, h):
        return image, mask
    img = Image.fromarray(image).resize((nw, nh), Image.Resampling.BILINEAR)
    m = Image.fromarray(mask).resize((nw, nh), Image.Resampling.NEAREST)
    return np.asarray(img), np.asarray(m)


def _jitter(image: np.ndarray, strength: float, rng: np.random.Generator) -> np.ndarray:
    """Brightness, contrast and saturation each scaled by a factor in [1-s, 1+s]."""
    x = image.astype(np.float32)
    b, c, s = rng.uniform(1 - strength, 1 + strength, size=3)
    x *= b
    mean = x.mean()
    x = (x - mean) * c + mean
    gray = x @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    x = (x - gray[..., None]) * s + gray[..., None]
    return np.clip(x, 0, 255).astype(np.uint8)


@dataclass(frozen=True)
class TrainTransform:
    """Scale by U(scale_range), pad to ``crop_size`` (image with the mean, mask with
    ``ignore_index``), crop at a random place, flip left-right with p=0.5, optionally jitter.

    ``crop_size`` is (height, width). Returns (float32 CHW normalized, int64 HW mask).
    """

    crop_size: tuple[int, int] = (321, 321)
    scale_range: tuple[float, float] = (0.5, 2.0)
    ignore_index: int = 255
    flip: bool = True
    jitter: float = 0.0
    # rare-class crops: with probability ``focus`` the crop is placed over a pixel of a class
    # drawn in proportion to ``class_rarity`` among the classes the scaled mask holds
    focus: float = 0.0
    class_rarity: tuple[float, ...] = ()

    def __call__(
        self, image: np.ndarray, mask: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        lo, hi = self.scale_range
        scale = float(rng.uniform(lo, hi)) if hi > lo else float(lo)
        image, mask = _resize_pair(image, mask, scale)
        ch, cw = self.crop_size
        h, w = mask.shape
        ph, pw = max(ch - h, 0), max(cw - w, 0)
        if ph or pw:
            image = np.pad(image, ((0, ph), (0, pw), (0, 0)), constant_values=round(MEAN))
            mask = np.pad(mask, ((0, ph), (0, pw)), constant_values=self.ignore_index)
            h, w = mask.shape
        y, x = self._place(mask, rng)
        image, mask = image[y : y + ch, x : x + cw], mask[y : y + ch, x : x + cw]
        if self.flip and rng.random() < 0.5:
            image, mask = image[:, ::-1], mask[:, ::-1]
        if self.jitter > 0:
            image = _jitter(image, self.jitter, rng)
        return normalize(np.ascontiguousarray(image)), mask.astype(np.int64)

    def _place(self, mask: np.ndarray, rng: np.random.Generator) -> tuple[int, int]:
        ch, cw = self.crop_size
        h, w = mask.shape
        if self.focus > 0 and rng.random() < self.focus:
            anchor = self._rare_pixel(mask, rng)
            if anchor is not None:
                py, px = anchor
                y = int(rng.integers(max(0, py - ch + 1), min(py, h - ch) + 1))
                x = int(rng.integers(max(0, px - cw + 1), min(px, w - cw) + 1))
                return y, x
        return int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))

    def _rare_pixel(self, mask: np.ndarray, rng: np.random.Generator) -> tuple[int, int] | None:
        """A pixel of a class chosen by rarity; None when the mask holds no weighted class."""
        rarity = np.asarray(self.class_rarity, dtype=np.float64)
        counts = np.bincount(mask.ravel(), minlength=len(rarity))[: len(rarity)]
        p = np.where(counts > 0, rarity, 0.0)
        if p.sum() <= 0:
            return None
        c = int(rng.choice(len(p), p=p / p.sum()))
        where = np.flatnonzero(mask.ravel() == c)
        return divmod(int(where[rng.integers(len(where))]), mask.shape[1])


@dataclass(frozen=True)
class EvalTransform:
    """The whole image, unscaled: normalized CHW and the int64 mask."""

    def __call__(
        self, image: np.ndarray, mask: np.ndarray, rng=None
    ) -> tuple[np.ndarray, np.ndarray]:
        return normalize(image), mask.astype(np.int64)
