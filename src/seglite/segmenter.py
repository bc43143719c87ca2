"""Segmenter: image -> preprocess -> backend -> postprocess -> SegmentationResult.

Option names follow the TFLite Task Library and MediaPipe ImageSegmenterOptions,
so users of those find their way: num_threads, output_category_mask,
output_confidence_masks, display_names_locale. As in MediaPipe, what is fixed per model
and runtime is given when the Segmenter is made (model, backend, threads, labels and
their locale, the pixel limit), and what may vary per image is a :class:`SegmentOptions`
(outputs, scales, flip): the constructor's are the defaults, and ``segment(image,
options)`` or ``segment(image, scales=...)`` overrides them for one call.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import ModelError, OptionError
from .image import DEFAULT_MAX_PIXELS, ImageSource, LoadedImage, load_image, model_pixels
from .labels import LabelSet, default_label_set, label_set_from_names, read_label_file
from .postprocess import ArgmaxKernel, to_masks
from .result import SegmentationResult, Timings
from .runtime import Backend, ReducedRun, open_backend

ACCURATE_SCALES = (1.5, 2.0)  # the preset's tiles; a zoo entry may name its own
ACCURATE_FLIP = True


def accurate_scales_of(entry, info=None) -> tuple[float, ...]:
    """The scales ``--accurate`` means for a model that already runs on enlarged frames:
    its zoo entry's own, else those its file names (``ModelInfo.accurate_scales``: a
    checkpoint trained with ``val_scale``, or its export), else :data:`ACCURATE_SCALES`."""
    own = getattr(entry, "accurate_scales", None) or getattr(info, "accurate_scales", None)
    return tuple(own) if own else ACCURATE_SCALES


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


@dataclass(frozen=True)
class SegmentOptions:
    """What one ``segment()`` call asks for; frozen and hashable, so a Segmenter prepares
    each option set once (which path, which kernels) and reuses it.

    ``scales`` / ``flip`` other than ``(1.0,)`` / False select accurate mode (tiling.py);
    :meth:`accurate_preset` is what ``--accurate`` means.
    """

    output_category_mask: bool = True
    output_confidence_masks: bool = False
    scales: tuple[float, ...] = (1.0,)
    flip: bool = False

    def __post_init__(self) -> None:
        if not self.output_category_mask and not self.output_confidence_masks:
            raise OptionError(
                "ask for at least one of output_category_mask, output_confidence_masks"
            )
        object.__setattr__(self, "output_category_mask", bool(self.output_category_mask))
        object.__setattr__(self, "output_confidence_masks", bool(self.output_confidence_masks))
        object.__setattr__(self, "scales", check_scales(self.scales))
        object.__setattr__(self, "flip", bool(self.flip))

    @property
    def accurate(self) -> bool:
        return self.scales != (1.0,) or self.flip

    def replace(self, **changes) -> SegmentOptions:
        """A copy with some options changed; an unknown name is an OptionError."""
        names = [f.name for f in dataclasses.fields(self)]
        unknown = set(changes) - set(names)
        if unknown:
            raise OptionError(
                f"unknown segment option(s) {', '.join(sorted(unknown))}; known: "
                + ", ".join(names)
            )
        return dataclasses.replace(self, **changes)

    def accurate_preset(self, scales: Sequence[float] = ACCURATE_SCALES) -> SegmentOptions:
        """These options in accurate mode: ``scales`` (a model's own, see
        :attr:`Segmenter.accurate_scales`; else ACCURATE_SCALES), mirrored."""
        return self.replace(scales=scales, flip=ACCURATE_FLIP)


@dataclass(frozen=True)
class _Plan:
    """How one option set runs on this Segmenter's backend: through the backend's in-place
    reduced path (``reduced``), over tiles (``options.accurate``), or through ``run()``."""

    options: SegmentOptions
    reduced: bool


class Segmenter:
    """Runs one segmentation model on images of any size.

    Not thread-safe (the runtime's interpreter is not): use one Segmenter per
    thread or process, as the service and batch front ends do.

    The default options decide, once, how the model's graph is rewritten when it is
    opened (runtime.open_backend): the fused argmax for the plain category mask, and the
    model's final upsampling cut unless confidence masks are the default. Per-call options
    that this rewrite does not serve (confidence masks from a cut graph, accurate mode) go
    through ``backend.run()``, which returns the model's own output either way.

    ``accurate=True`` sets the scales and flip to this model's accurate preset
    (:attr:`accurate_scales`, mirrored); give it or ``scales``/``flip``, not both.
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
        accurate: bool = False,
    ):
        from .zoo import resolve

        options = SegmentOptions(output_category_mask, output_confidence_masks, scales, flip)
        if accurate and options.accurate:
            raise OptionError("accurate and scales / flip both choose the passes: give one")
        if max_pixels is not None and (not isinstance(max_pixels, int) or max_pixels < 1):
            raise OptionError(f"max_pixels must be a positive integer or None, got {max_pixels!r}")
        self.options = options
        self.display_names_locale = display_names_locale
        self.max_pixels = max_pixels

        resolved = resolve(model)
        self.entry = resolved.entry
        self.model_path: Path = resolved.path
        self.model_name = resolved.entry.name if resolved.entry else resolved.path.name
        # The plain path takes the low-resolution argmax from the model's own graph; accurate
        # mode takes the scores before the cut upsampling from the same reduced path (tiling).
        self.backend: Backend = open_backend(
            resolved.path,
            backend=backend,
            num_threads=num_threads,
            fuse_argmax=options.output_category_mask,
            cut_final_resize=not options.output_confidence_masks,
        )
        if accurate:  # the model's own preset, known once the model is open
            self.options = options = options.accurate_preset(self.accurate_scales)
        self._plans: dict[SegmentOptions, _Plan] = {}
        self._argmax: ArgmaxKernel | None = None
        self._default = self.plan(options)  # errors in the defaults surface here, at once
        self.label_set = self._label_set(labels)

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

    # The default options, read-only: per-call ones go to segment().
    @property
    def scales(self) -> tuple[float, ...]:
        return self.options.scales

    @property
    def flip(self) -> bool:
        return self.options.flip

    @property
    def output_category_mask(self) -> bool:
        return self.options.output_category_mask

    @property
    def output_confidence_masks(self) -> bool:
        return self.options.output_confidence_masks

    @property
    def accurate(self) -> bool:
        return self.options.accurate

    @property
    def accurate_scales(self) -> tuple[float, ...]:
        """What ``accurate=True`` / ``--accurate`` means for this model."""
        return accurate_scales_of(self.entry, self.backend.info)

    def plan(self, options: SegmentOptions) -> _Plan:
        """How ``options`` run here, prepared once per option set (an OptionError for what
        the model cannot give)."""
        plan = self._plans.get(options)
        if plan is not None:
            return plan
        if options.output_confidence_masks and self.backend.output_kind == "argmax":
            raise OptionError(
                f"{self.model_name} outputs class ids only (an ArgMax): confidence masks are not "
                "available; use output_category_mask"
            )
        fast: ReducedRun | None = self.backend.reduced
        # The in-place path serves the plain category mask; confidence masks need the
        # model's full-size scores, which a graph without its final upsampling lacks.
        reduced = bool(
            fast is not None
            and not options.accurate
            and options.output_category_mask
            and not (fast.coarse_factor and options.output_confidence_masks)
        )
        if options.output_category_mask and self.backend.output_kind != "argmax":
            if self._argmax is None and not reduced:
                self._argmax = ArgmaxKernel()
        plan = self._plans[options] = _Plan(options, reduced)
        return plan

    def segment(
        self, image: ImageSource, options: SegmentOptions | None = None, **changes
    ) -> SegmentationResult:
        """Segment one image (path, bytes, PIL image or numpy array) at its original size.

        ``options`` (default: the constructor's) and keyword ``changes`` to them
        (``output_confidence_masks=True``, ``scales=(1.5, 2)``, ...) apply to this call only.
        """
        if options is None and not changes:
            plan = self._default
        else:
            options = options or self.options
            plan = self.plan(options.replace(**changes) if changes else options)
        opts = plan.options
        t = Timings()
        t0 = time.perf_counter()
        h_in, w_in = self.input_size
        # Always the full decode, never the JPEG decoder's reduced (DCT-scaled) one: the mask
        # is then a function of the image's pixels alone, the same whether a path, bytes, a
        # PIL image or an array came in, and whichever outputs the caller writes from it.
        loaded = load_image(image, max_pixels=self.max_pixels)
        t1 = time.perf_counter()
        t.decode = (t1 - t0) * 1e3
        if opts.accurate:
            from .tiling import fused_scores

            scores, t.invocations = fused_scores(
                self.backend, loaded, opts.scales, opts.flip, t, len(self.label_set)
            )
            return self._finish(loaded, scores, t, opts, probabilities=True)
        pixels = model_pixels(loaded.image, (w_in, h_in))
        t2 = time.perf_counter()
        t.preprocess = (t2 - t1) * 1e3
        t.invocations = 1
        reduced = self.backend.reduced if plan.reduced else None
        if reduced is not None:

            def masks(scores: np.ndarray, ids: np.ndarray):
                t3 = time.perf_counter()
                t.invoke = (t3 - t2) * 1e3
                out = to_masks(
                    scores[0],
                    loaded.size,
                    category=opts.output_category_mask,
                    confidence=opts.output_confidence_masks,
                    ids=ids[0],
                    coarse_factor=reduced.coarse_factor,
                )
                t.postprocess += (time.perf_counter() - t3) * 1e3
                return out

            category, confidence = reduced.run(pixels[None], masks)
            return self._result(loaded, category, confidence, t)
        out = self.backend.run(pixels[None])[0]
        t3 = time.perf_counter()
        t.invoke = (t3 - t2) * 1e3
        return self._finish(loaded, out, t, opts)

    def _finish(
        self,
        loaded: LoadedImage,
        out: np.ndarray,
        t: Timings,
        opts: SegmentOptions,
        probabilities: bool = False,
    ) -> SegmentationResult:
        """Bring scores (h, w, C) or ids (h, w) to the original size.

        ``probabilities`` says ``out`` is already softmax-ed (the fused accurate-mode map).
        """
        t3 = time.perf_counter()
        category, confidence = to_masks(
            out,
            loaded.size,
            category=opts.output_category_mask,
            confidence=opts.output_confidence_masks,
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
