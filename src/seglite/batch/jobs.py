"""What a batch run is made of: the images, the outputs each gets, the outcome, and how
to build a Segmenter in another process."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..effects import EffectOutput
    from ..segmenter import Segmenter


IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm"}


@dataclass(frozen=True)
class Item:
    """One image to segment: where it is (path or URI) and the output stem relative to --out."""

    src: str
    name: str  # posix, no suffix: "sub/photo" -> sub/photo.mask.png


@dataclass(frozen=True)
class Outputs:
    """Which files each image gets, and how the overlay looks."""

    overlay: bool = True
    mask: bool = True
    json: bool = True
    alpha: float = 0.55
    effect: EffectOutput | None = None  # seglite.effects: also NAME.<effect>.png

    def files(self, name: str) -> list[str]:
        return [
            f"{name}{suffix}"
            for want, suffix in (
                (self.mask, ".mask.png"),
                (self.json, ".json"),
                (self.overlay, ".overlay.png"),
                (self.effect is not None, f".{self.effect.name if self.effect else ''}.png"),
            )
            if want
        ]


@dataclass
class Outcome:
    """What happened to one image; plain data so it crosses process and Ray boundaries."""

    src: str
    name: str
    status: str  # "done" | "failed" | "skipped"
    error: str = ""
    ms: float = 0.0
    summary: dict | None = None

    @property
    def ok(self) -> bool:
        return self.status != "failed"


@dataclass
class SegmenterSpec:
    """How to build a Segmenter in another process or on another machine.

    ``model_bytes`` ships the model itself (Ray nodes then need no model folder or
    network); ``labels`` keeps the label names the zoo entry gave on the driver.
    """

    model: str | None = None
    kwargs: dict = field(default_factory=dict)
    model_bytes: bytes | None = None
    model_name: str | None = None
    labels: list[str] | None = None

    @classmethod
    def shipped(cls, seg: Segmenter, kwargs: dict) -> SegmenterSpec:
        """A spec carrying ``seg``'s model file and labels, for machines without the zoo."""
        return cls(
            model=seg.model_path.name,
            kwargs=dict(kwargs),
            model_bytes=seg.model_path.read_bytes(),
            model_name=seg.model_name,
            labels=seg.labels,
        )

    def build(self) -> Segmenter:
        from ..segmenter import Segmenter

        if self.model_bytes is None:
            return Segmenter(self.model, labels=self.labels, **self.kwargs)
        import tempfile

        # The backend reads the file into memory, so the copy can go right away.
        with tempfile.TemporaryDirectory(prefix="seglite-model-") as tmp:
            path = Path(tmp) / Path(self.model or "model.tflite").name
            path.write_bytes(self.model_bytes)
            seg = Segmenter(path, labels=self.labels, **self.kwargs)
        seg.model_name = self.model_name or seg.model_name
        return seg
