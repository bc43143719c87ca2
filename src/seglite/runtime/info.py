"""What a backend knows about its model, in one shape for every runtime.

Each backend reads its model file its own way (a TFLite signature and metadata, ONNX
properties, a checkpoint's config) and describes the result as one :class:`ModelInfo`;
the Segmenter reads only that. Where a value came from (the file's signature, its
metadata, a default) is recorded beside it, for ``seglite inspect`` and for errors that
must say what to fix.

The fast path that reads scores in place with their fused argmax (LiteRT only, today)
is a capability a backend either has or not, decided once when it is opened: a
:class:`ReducedRun` in ``backend.reduced``, or None.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal, TypeVar

import numpy as np

from ..errors import ModelError

OutputKind = Literal["logits", "argmax", "sigmoid"]  # sigmoid: run() gives 2 log-probs
T = TypeVar("T")

# The TFLite starter model's normalization, (x - 127.5) / 127.5: the default of every
# runtime for float inputs whose file does not say otherwise.
DEFAULT_MEAN: tuple[float, ...] = (127.5,)
DEFAULT_STD: tuple[float, ...] = (127.5,)
# MediaPipe's person models (one sigmoid channel) take RGB in [0, 1].
UNIT_MEAN: tuple[float, ...] = (0.0,)
UNIT_STD: tuple[float, ...] = (255.0,)

# Keys of ModelInfo.sources: what each says where it came from.
SOURCE_KEYS = ("input", "output", "labels", "display_names", "normalization")
DEFAULT = "default"  # the value of a source that the file did not give
MAX_SCALES = 8  # tiles' scales a file may declare for its --accurate


def declared_scales(value, where: str) -> tuple[float, ...]:
    """The ``--accurate`` scales a model file declares (a checkpoint's metadata, a TFLite
    or ONNX file's): 1 to 8 numbers from 0.25 to 8, or a one-line ModelError."""
    ok = isinstance(value, (list, tuple)) and 1 <= len(value) <= MAX_SCALES
    ok = ok and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
    if not ok or not all(0.25 <= v <= 8.0 for v in value):
        raise ModelError(
            f"{where}: accurate_scales must be 1 to {MAX_SCALES} numbers from 0.25 to 8, "
            f"got {str(value)[:80]}"
        )
    return tuple(float(v) for v in value)


def declared_scales_text(text: str, where: str) -> tuple[float, ...]:
    """:func:`declared_scales` from a JSON list in a text property (ONNX metadata_props)."""
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        value = text
    return declared_scales(value, where)


@dataclass(frozen=True)
class ModelInfo:
    """One model as the Segmenter sees it, whatever runtime runs it.

    ``input_size`` is (height, width); ``input_dtype`` what the graph takes (float32 /
    float16 models normalize with ``mean`` / ``std`` in pixel units, uint8 / int8 take raw
    pixels); ``num_classes`` is None only for ArgMax models without labels; ``labels``
    are the file's own class names (None where it has none) and ``display_names`` their
    localized versions by locale ({} where none). ``sources`` maps each of SOURCE_KEYS to
    where the value came from, e.g. ``"TFLite metadata"`` or ``"default"``.
    """

    input_size: tuple[int, int]
    input_dtype: np.dtype
    output_kind: OutputKind
    num_classes: int | None
    labels: tuple[str, ...] | None = None
    display_names: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    mean: tuple[float, ...] = DEFAULT_MEAN
    std: tuple[float, ...] = DEFAULT_STD
    sources: Mapping[str, str] = field(default_factory=dict)
    # the tiles' scales --accurate means for this model where its file names them (a model
    # that already runs on enlarged frames); None: the Segmenter's preset
    accurate_scales: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        labels = tuple(self.labels) if self.labels else None
        names = {k: tuple(v) for k, v in self.display_names.items()} if labels else {}
        sources = {k: DEFAULT for k in SOURCE_KEYS}
        sources.update(self.sources)
        if not labels:
            sources["labels"] = sources["display_names"] = DEFAULT
        elif not names:
            sources["display_names"] = DEFAULT
        if set(sources) != set(SOURCE_KEYS):
            raise ValueError(
                f"unknown ModelInfo source keys {sorted(set(sources) - set(SOURCE_KEYS))}"
            )
        set_ = object.__setattr__  # frozen: normalize once, here
        set_(self, "input_size", (int(self.input_size[0]), int(self.input_size[1])))
        set_(self, "input_dtype", np.dtype(self.input_dtype))
        set_(self, "labels", labels)
        set_(self, "display_names", MappingProxyType(names))
        set_(self, "mean", tuple(float(v) for v in np.ravel(self.mean)))
        set_(self, "std", tuple(float(v) for v in np.ravel(self.std)))
        set_(self, "sources", MappingProxyType(sources))

    def names(self, locale: str | None = None) -> tuple[str, ...] | None:
        """The file's labels, in ``locale`` where the file has that many localized names
        (MediaPipe's and the Task Library's ``display_names_locale``); None without labels."""
        if locale and self.labels:
            localized = self.display_names.get(locale)
            if localized and len(localized) == len(self.labels):
                return localized
        return self.labels

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready, for reports."""
        return {
            "input_size": list(self.input_size),
            "input_dtype": self.input_dtype.name,
            "output_kind": self.output_kind,
            "num_classes": self.num_classes,
            "labels": list(self.labels) if self.labels else None,
            "display_names": sorted(self.display_names),
            "mean": list(self.mean),
            "std": list(self.std),
            "sources": dict(self.sources),
            "accurate_scales": list(self.accurate_scales) if self.accurate_scales else None,
        }


@dataclass(frozen=True)
class ReducedRun:
    """The fast path of a backend opened for it: class scores read in place, with the argmax
    the graph computed in the same invoke.

    ``run(pixels, reduce)`` invokes the model on uint8 RGB (N, H, W, 3) and returns
    ``reduce(scores, ids)``: scores (N, h, w, C) float32 views valid only during the call,
    ids (N, h, w) their argmax; ``reduce`` must keep no reference to either.
    ``coarse_factor`` (fy, fx) says the model's final align-corners upsampling was cut from
    the graph: the scores are that many times coarser than the model's output, and the
    category mask must be computed through the cut op (postprocess.coarse). None: the
    scores are the model's output itself.
    """

    run: Callable[[np.ndarray, Callable[[np.ndarray, np.ndarray], Any]], Any]
    coarse_factor: tuple[int, int] | None = None


class Described:
    """Shorthands every backend shares, read from its ``info``."""

    info: ModelInfo

    @property
    def input_size(self) -> tuple[int, int]:
        return self.info.input_size

    @property
    def input_dtype(self) -> np.dtype:
        return self.info.input_dtype

    @property
    def output_kind(self) -> OutputKind:
        return self.info.output_kind

    @property
    def num_classes(self) -> int | None:
        return self.info.num_classes

    @property
    def labels(self) -> tuple[str, ...] | None:
        return self.info.labels

    @property
    def mean(self) -> tuple[float, ...]:
        return self.info.mean

    @property
    def std(self) -> tuple[float, ...]:
        return self.info.std
