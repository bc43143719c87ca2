"""What a segmentation returns: plain dataclasses with numpy arrays; front ends only format them."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from .labels import LabelSet


@dataclass
class Timings:
    """Milliseconds spent in each stage of one ``segment()`` call.

    ``preprocess`` is what happens before the interpreter (box reduction of big photos);
    with LiteRT the squash to the model's size and the normalization run inside the graph
    and count as ``invoke``, as does the argmax; ``postprocess`` brings the scores to a
    mask at the photo's size.
    """

    decode: float = 0.0
    preprocess: float = 0.0
    invoke: float = 0.0
    postprocess: float = 0.0
    invocations: int = 0

    @property
    def total(self) -> float:
        return self.decode + self.preprocess + self.invoke + self.postprocess

    def as_dict(self) -> dict[str, float]:
        d = {
            k: round(getattr(self, k), 3) for k in ("decode", "preprocess", "invoke", "postprocess")
        }
        d["total"] = round(self.total, 3)
        d["invocations"] = self.invocations
        return d


@dataclass
class SegmentationResult:
    """One image's segmentation, at the original (upright) image size.

    ``category_mask`` (H, W) holds class indices into ``labels``.
    ``confidence_masks`` (C, H, W) float32 probabilities, only when asked for.
    """

    category_mask: np.ndarray | None
    label_set: LabelSet
    size: tuple[int, int]  # (width, height)
    timings: Timings = field(default_factory=Timings)
    confidence_masks: np.ndarray | None = None
    model: str = ""
    source: str = ""

    @property
    def labels(self) -> list[str]:
        return list(self.label_set.names)

    @cached_property
    def class_counts(self) -> np.ndarray:
        if self.category_mask is None:
            if self.confidence_masks is None:
                return np.zeros(len(self.label_set), dtype=np.int64)
            mask = self.confidence_masks.argmax(axis=0)
        else:
            mask = self.category_mask
        return count_classes(mask, len(self.label_set))

    @property
    def fractions(self) -> dict[str, float]:
        """Share of pixels per class present, largest first."""
        counts = self.class_counts
        total = max(1, int(counts.sum()))
        order = np.argsort(-counts, kind="stable")
        return {
            self.label_set.name(int(i)): float(counts[i]) / total for i in order if counts[i] > 0
        }

    @property
    def present(self) -> list[int]:
        """Class indices present in the mask, largest share first."""
        counts = self.class_counts
        return [int(i) for i in np.argsort(-counts, kind="stable") if counts[i] > 0]

    def confidence(self, name_or_index: str | int) -> np.ndarray:
        if self.confidence_masks is None:
            raise ValueError("confidence masks were not requested (output_confidence_masks=True)")
        i = name_or_index if isinstance(name_or_index, int) else self.label_set.index(name_or_index)
        return self.confidence_masks[i]

    def alpha(self, classes=None, *, image=None, **options) -> np.ndarray:
        """(H, W) float32 alpha matte in [0, 1] of ``classes`` (names or ids; default: all but
        background), refined along the edges of ``image`` (the photo) when given; ``feather``,
        ``threshold`` and the rest as in :func:`seglite.matte.alpha_matte`."""
        from .matte import alpha_matte

        return alpha_matte(self, classes, image=image, **options)

    def summary(self) -> dict:
        """A JSON-ready summary (no pixel data)."""
        counts = self.class_counts
        total = max(1, int(counts.sum()))
        return {
            "source": self.source,
            "model": self.model,
            "width": self.size[0],
            "height": self.size[1],
            "classes": [
                {
                    "index": i,
                    "label": self.label_set.name(i),
                    "fraction": round(float(counts[i]) / total, 6),
                    "color": "#%02x%02x%02x" % self.label_set.color(i),
                }
                for i in self.present
            ],
            "timings_ms": self.timings.as_dict(),
        }


def count_classes(mask: np.ndarray, minlength: int) -> np.ndarray:
    """Pixels per class id. np.bincount casts its input to int64, 8 bytes a pixel (128 MB
    for a 16 MP mask), so it is fed a million pixels at a time."""
    flat = mask.reshape(-1)
    counts = np.zeros(max(minlength, int(flat.max(initial=0)) + 1), dtype=np.int64)
    step = 1 << 20
    for i in range(0, flat.size, step):
        part = np.bincount(flat[i : i + step], minlength=counts.size)
        counts[: part.size] += part
    return counts
