"""Segmenter: image -> preprocess -> backend -> postprocess -> SegmentationResult.

Option names follow the TFLite Task Library and MediaPipe ImageSegmenterOptions,
so users of those find their way: num_threads, output_category_mask,
output_confidence_masks, display_names_locale.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .errors import ModelError, OptionError
from .image import DEFAULT_MAX_PIXELS, ImageSource, LoadedImage, load_image, model_pixels
from .labels import LabelSet, default_label_set, label_set_from_names, read_label_file
from .postprocess import ArgmaxKernel, to_masks
from .result import SegmentationResult, Timings
from .runtime import Backend, open_backend

ACCURATE_SCALES = (1.5, 2.0)
ACCURATE_FLIP = True


def check_scales(scales: Sequence[float] | float | None) -> tuple[float, ...]:
    if scales is None:
        return (1.0,)
    if isinstance(scales, (int, float)):
        scales = (scales,)
    try:
        out = tuple(float(s) for s in scales)
    except (TypeError, ValueError):
        raise OptionError(f"scales must be numbers, got {scales!r}") from None
    if not out or any(not (0.25 <= s <= 8.0) for s in out):
        raise OptionError(f"each scale must be between 0.25 and 8 (got {scales!r})")
    return out


class Segmenter:
    """Runs one segmentation model on images of any size.

    Not thread-safe (the runtime's interpreter is not): use one Segmenter per
    thread or process, as the service and batch front ends do.
    """

    def __init__(
        self,
        model: str | os.PathLike | None = None,
        *,
        num_threads: int | None = None,
        output_category_mask: bool = True,
        output_confidence_masks: bool = False,
        display_names_locale: str | None = None,
        labels: Sequence[str] | str | os.PathLike | None = None,
        max_pixels: int | None = DEFAULT_MAX_PIXELS,
        scales: Sequence[float] | float | None = (1.0,),
        flip: bool = False,
        backend: str = "auto",
    ):
        from .zoo import resolve

        if not output_category_mask and not output_confidence_masks:
            raise OptionError(
                "ask for at least one of output_category_mask, output_confidence_masks"
            )
        if max_pixels is not None and (not isinstance(max_pixels, int) or max_pixels < 1):
            raise OptionError(f"max_pixels must be a positive integer or None, got {max_pixels!r}")
        self.scales = check_scales(scales)
        self.flip = bool(flip)
        self.output_category_mask = output_category_mask
        self.output_confidence_masks = output_confidence_masks
        self.display_names_locale = display_names_locale
        self.max_pixels = max_pixels

        resolved = resolve(model)
        self.entry = resolved.entry
        self.model_path: Path = resolved.path
        self.model_name = resolved.entry.name if resolved.entry else resolved.path.name
        # The plain path takes the low-resolution argmax from the model's own graph.
        self.backend: Backend = open_backend(
            resolved.path,
            backend=backend,
            num_threads=num_threads,
            fuse_argmax=output_category_mask and not self.accurate,
            cut_final_resize=not output_confidence_masks,
        )
        if output_confidence_masks and self.backend.output_kind == "argmax":
            raise OptionError(
                f"{self.model_name} outputs class ids only (an ArgMax): confidence masks are not "
                "available; use output_category_mask"
            )
        self.label_set = self._label_set(labels)
        self._argmax: ArgmaxKernel | None = None

    def _label_set(self, labels) -> LabelSet:
        from .labels import get_label_set

        info = self.backend.info
        n = info.num_classes
        if labels is not None:
            names = (
                read_label_file(labels, n)
                if isinstance(labels, (str, os.PathLike))
                else [str(x) for x in labels]
            )
            if n is not None and len(names) != n:
                raise OptionError(f"{len(names)} labels given but the model has {n} classes")
            return label_set_from_names(names)
        if info.labels:
            return label_set_from_names(info.names(self.display_names_locale))
        if self.entry is not None:
            return get_label_set(self.entry.labels)
        if n is None:
            return default_label_set(256)
        return default_label_set(n)

    # -- public API ---------------------------------------------------------------------------

    @property
    def input_size(self) -> tuple[int, int]:
        """Model input (height, width)."""
        return self.backend.input_size

    @property
    def labels(self) -> list[str]:
        return list(self.label_set.names)

    @property
    def accurate(self) -> bool:
        return self.scales != (1.0,) or self.flip

    def segment(self, image: ImageSource) -> SegmentationResult:
        """Segment one image (path, bytes, PIL image or numpy array) at its original size."""
        t = Timings()
        t0 = time.perf_counter()
        h_in, w_in = self.input_size
        # Always the full decode, never the JPEG decoder's reduced (DCT-scaled) one: the mask
        # is then a function of the image's pixels alone, the same whether a path, bytes, a
        # PIL image or an array came in, and whichever outputs the caller writes from it.
        loaded = load_image(image, max_pixels=self.max_pixels)
        t1 = time.perf_counter()
        t.decode = (t1 - t0) * 1e3
        if self.accurate:
            from .tiling import fused_scores

            scores, t.invocations = fused_scores(
                self.backend, loaded, self.scales, self.flip, t, len(self.label_set)
            )
            return self._finish(loaded, scores, t, probabilities=True)
        pixels = model_pixels(loaded.image, (w_in, h_in))
        t2 = time.perf_counter()
        t.preprocess = (t2 - t1) * 1e3
        t.invocations = 1
        reduced = self.backend.reduced
        factor = reduced.coarse_factor if reduced else None
        # A service may ask this Segmenter's copy for confidence masks (serve/pool.py): a
        # backend without the model's final upsampling then takes the general path.
        if reduced is not None and not (factor and self.output_confidence_masks):

            def masks(scores: np.ndarray, ids: np.ndarray):
                t3 = time.perf_counter()
                t.invoke = (t3 - t2) * 1e3
                out = to_masks(
                    scores[0],
                    loaded.size,
                    category=self.output_category_mask,
                    confidence=self.output_confidence_masks,
                    ids=ids[0],
                    coarse_factor=factor,
                )
                t.postprocess += (time.perf_counter() - t3) * 1e3
                return out

            category, confidence = reduced.run(pixels[None], masks)
            return self._result(loaded, category, confidence, t)
        out = self.backend.run(pixels[None])[0]
        t3 = time.perf_counter()
        t.invoke = (t3 - t2) * 1e3
        return self._finish(loaded, out, t)

    def _finish(
        self, loaded: LoadedImage, out: np.ndarray, t: Timings, probabilities: bool = False
    ) -> SegmentationResult:
        """Bring scores (h, w, C) or ids (h, w) to the original size.

        ``probabilities`` says ``out`` is already softmax-ed (the fused accurate-mode map).
        """
        t3 = time.perf_counter()
        if out.ndim == 3 and self.output_category_mask and self._argmax is None:
            self._argmax = ArgmaxKernel()
        category, confidence = to_masks(
            out,
            loaded.size,
            category=self.output_category_mask,
            confidence=self.output_confidence_masks,
            probabilities=probabilities,
            kernel=self._argmax,
        )
        if out.ndim == 2:
            self._check_ids(category)
        t.postprocess += (time.perf_counter() - t3) * 1e3
        return self._result(loaded, category, confidence, t)

    def _result(
        self,
        loaded: LoadedImage,
        category: np.ndarray | None,
        confidence: np.ndarray | None,
        t: Timings,
    ) -> SegmentationResult:
        size = loaded.size
        return SegmentationResult(
            category_mask=category,
            confidence_masks=confidence,
            label_set=self.label_set,
            size=size,
            timings=t,
            model=self.model_name,
            source=loaded.source_name,
        )

    def _check_ids(self, ids: np.ndarray) -> None:
        top = int(ids.max(initial=0))
        if top >= len(self.label_set):
            raise ModelError(
                f"{self.model_name} produced class id {top}, outside its {len(self.label_set)} labels"
            )

    def close(self) -> None:
        self.backend.close()

    def __enter__(self) -> Segmenter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        h, w = self.input_size
        return (
            f"Segmenter(model={self.model_name!r}, input={w}x{h}, classes={len(self.label_set)}, "
            f"threads={self.backend.num_threads}, scales={self.scales}, flip={self.flip})"
        )
