"""LiteRT (TensorFlow Lite) backend: everything about the model is read from the file."""

from __future__ import annotations

import contextlib
import functools
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import numpy as np

from ..errors import ModelError
from ..files import first_line
from ..postprocess.bilinear import upsample_align_corners
from . import fit_pixels, normalize_into, read_model_file
from .info import DEFAULT_MEAN, DEFAULT_STD, UNIT_MEAN, UNIT_STD, Described, ModelInfo, ReducedRun

T = TypeVar("T")


@contextlib.contextmanager
def _quiet_stderr():
    """Silence the C++ runtime's 'Created TensorFlow Lite XNNPACK delegate' chatter."""
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):
        yield
        return
    sys.stderr.flush()
    saved = os.dup(fd)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), fd)
            yield
    finally:
        os.dup2(saved, fd)
        os.close(saved)


class LiteRTBackend(Described):
    name = "litert"

    def __init__(
        self,
        path: Path,
        *,
        num_threads: int = 2,
        fuse_argmax: bool = False,
        cut_final_resize: bool = False,
        rewrite: bool = True,
    ):
        """``fuse_argmax``: append an ARG_MAX output to a logits model (see fused_argmax),
        for callers that want the category mask through ``self.reduced`` (a ReducedRun,
        None where the rewrite does not apply); ``cut_final_resize`` (with it): drop a
        final whole-factor upsampling of the scores first (see final_resize), so that
        ``reduced.run`` hands over scores ``reduced.coarse_factor`` times coarser than the
        model's output (:meth:`run` redoes the upsampling in numpy); ``rewrite=False``:
        none of these, nor the input squash (image_input): the model exactly as it is."""
        self.path = Path(path)
        self.num_threads = num_threads
        data = read_model_file(self.path)
        if len(data) < 8 or data[4:8] != b"TFL3":
            raise ModelError(f"{self.path}: not a TFLite model file (no TFL3 identifier)")
        # The model as it is (the flatbuffer verified on the way): its signature and metadata.
        self._interp = self._interpreter(data, allocate=False)
        self._read_signature(data)
        self._ids_index: int | None = None
        self._image_index: int | None = None
        self._image_shape: tuple[int, ...] | None = None
        self._coarse: tuple[int, int] | None = None
        self.reduced: ReducedRun | None = None
        fuse_argmax = fuse_argmax and self.output_kind != "sigmoid"  # one channel: no argmax
        if not (rewrite and self._rewrite(data, fuse_argmax, fuse_argmax and cut_final_resize)):
            self._allocate(self._interp)

    def _interpreter(self, data: bytes, allocate: bool = True):
        from ai_edge_litert.interpreter import Interpreter

        try:
            with _quiet_stderr():
                interp = Interpreter(model_content=data, num_threads=self.num_threads)
        except (ValueError, RuntimeError) as exc:
            raise self._load_error(exc) from None
        if allocate:
            self._allocate(interp)
        return interp

    def _allocate(self, interp) -> None:
        try:
            with _quiet_stderr():
                interp.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise self._load_error(exc) from None

    def _load_error(self, exc: Exception) -> ModelError:
        first = first_line(exc, limit=1000)
        return ModelError(f"{self.path}: the TFLite runtime cannot load this model ({first})")

    def _rewrite(self, data: bytes, fuse_argmax: bool, cut_final_resize: bool) -> bool:
        """Load the model with its input squash (image_input) and, if asked, without its
        final upsampling (final_resize) and with its ARG_MAX output (fused_argmax), all
        built into the graph. False, and the plain model kept, where neither applies or the
        rewrite fails for any reason: that costs speed, not results (the numpy squash in
        :meth:`_invoke` takes over)."""
        mean = tuple(float(v) for v in np.ravel(self.mean))
        std = tuple(float(v) for v in np.ravel(self.std))
        rewritten = _rewritten_model(data, fuse_argmax, cut_final_resize, mean, std)
        if rewritten is None:
            return False
        model, factor, fused, takes_images = rewritten
        try:
            interp = self._interpreter(model)
        except Exception:  # noqa: BLE001 - an optimisation must never break loading
            return False
        self._interp = interp
        self._coarse = factor
        outputs = interp.get_output_details()
        self._out_index = outputs[0]["index"]
        if fused:
            self._ids_index = outputs[-1]["index"]
            self.reduced = ReducedRun(self._run_reduced, coarse_factor=factor)
        if takes_images:
            detail = interp.get_input_details()[0]
            self._image_index = detail["index"]
            self._image_shape = tuple(int(v) for v in detail["shape"])
        return True

    @property
    def squashes_in_graph(self) -> bool:
        return self._image_index is not None

    def _read_signature(self, data: bytes) -> None:
        ins = self._interp.get_input_details()
        outs = self._interp.get_output_details()
        if len(ins) != 1 or len(outs) < 1:
            raise ModelError(
                f"{self.path}: not a segmentation model (expected one image input, got {len(ins)} inputs)"
            )
        inp, out = ins[0], outs[0]
        shape = tuple(int(v) for v in inp["shape"])
        if len(shape) != 4 or shape[3] != 3:
            raise ModelError(
                f"{self.path}: not an image model (input shape {list(shape)}, expected [1, H, W, 3])"
            )
        oshape = tuple(int(v) for v in out["shape"])
        output_kind, num_classes = self._check_output(oshape, np.dtype(out["dtype"]))
        self.output_size = (oshape[1], oshape[2])
        self._in_index = inp["index"]
        self._out_index = out["index"]
        odtype = np.dtype(out["dtype"])
        self._out_quant = (
            out["quantization"] if odtype.kind in "iu" and output_kind == "logits" else None
        )
        self._batch = 1
        self._out_buf: np.ndarray | None = None

        sources = {"input": "TFLite signature", "output": "TFLite signature"}
        labels, display_names = None, {}
        mean, std = DEFAULT_MEAN, DEFAULT_STD
        try:
            from ..metadata import read_metadata

            metadata = read_metadata(data)
        except ModelError:
            metadata = None
        if metadata is not None:
            if metadata.input_mean and metadata.input_std:
                mean, std = metadata.input_mean, metadata.input_std
                sources["normalization"] = "TFLite metadata"
            if metadata.labels:
                labels, display_names = metadata.labels, metadata.display_names
                sources["labels"] = "TFLite metadata (associated label file)"
                sources["display_names"] = "TFLite metadata (localized label files)"
        if output_kind == "sigmoid" and (mean, std) == (DEFAULT_MEAN, DEFAULT_STD):
            mean, std = UNIT_MEAN, UNIT_STD
            sources["normalization"] = "default for one-channel sigmoid models (MediaPipe)"
        if num_classes is None and labels:
            num_classes = len(labels)
        self.info = ModelInfo(
            input_size=(shape[1], shape[2]),
            input_dtype=np.dtype(inp["dtype"]),
            output_kind=output_kind,
            num_classes=num_classes,
            labels=labels,
            display_names=display_names,
            mean=mean,
            std=std,
            sources=sources,
            accurate_scales=metadata.accurate_scales if metadata is not None else None,
        )

    def _check_output(self, oshape: tuple[int, ...], odtype: np.dtype):
        """(output kind, classes) of scores [1, H, W, C] or class ids [1, H, W]; anything
        else is not a segmentation model."""
        if len(oshape) == 4 and oshape[3] >= 2 and odtype.kind in "fiu":
            return "logits", oshape[3]
        if len(oshape) == 4 and oshape[3] == 1 and odtype.kind == "f":
            # One sigmoid channel (MediaPipe selfie): a person probability, served by
            # run() as two-class log-probabilities so that argmax and softmax just work.
            return "sigmoid", 2
        if len(oshape) == 3 and odtype.kind in "iu":
            return "argmax", None
        raise ModelError(
            f"{self.path}: not a segmentation model (output shape {list(oshape)} {odtype.name}; "
            "expected [1, H, W, classes] scores or [1, H, W] class ids)"
        )

    def _set_batch(self, n: int) -> None:
        if n == self._batch:
            return
        h, w = self.input_size
        self._interp.resize_tensor_input(self._in_index, [n, h, w, 3])
        self._interp.allocate_tensors()
        self._batch = n
        self._out_buf = None

    def _invoke(self, pixels: np.ndarray) -> None:
        """Run on uint8 RGB (N, h, w, 3) of any size: squashed to the input size in the
        graph where the model was rewritten for it, else here (fit_pixels)."""
        if pixels.ndim == 3:
            pixels = pixels[None]
        if self._image_index is not None:
            if pixels.shape != self._image_shape:
                self._interp.resize_tensor_input(self._image_index, list(pixels.shape))
                self._interp.allocate_tensors()
                self._image_shape = pixels.shape
                self._out_buf = None
            view = self._interp.tensor(self._image_index)()
            view[...] = pixels
            del view
            self._interp.invoke()
            return
        self._set_batch(pixels.shape[0])
        pixels = fit_pixels(pixels, self.input_size, raw=self.input_dtype != np.float32)
        view = self._interp.tensor(self._in_index)()
        if self.input_dtype == np.float32:
            normalize_into(view, pixels, self.mean, self.std)
        elif self.input_dtype == np.uint8:
            # Quantized image models take raw pixels (their input quantization encodes the scaling).
            view[...] = pixels
        elif self.input_dtype == np.int8:
            np.subtract(pixels, 128, out=view, casting="unsafe")
        else:
            raise ModelError(f"{self.path}: unsupported input type {self.input_dtype.name}")
        del view
        self._interp.invoke()

    def run(self, pixels: np.ndarray) -> np.ndarray:
        """The model's scores (or ids) at its own output size, whatever was cut from it."""
        self._invoke(pixels)
        out = self._interp.tensor(self._out_index)()
        if self.output_kind == "sigmoid":  # p -> [log(1 - p), log(p)]
            p = np.clip(out, 1e-6, 1 - 1e-6)
            del out
            return np.concatenate([np.log1p(-p), np.log(p)], axis=-1).astype(np.float32)
        if self._coarse:
            fine = np.stack([upsample_align_corners(o, self._coarse) for o in out])
            del out
            return fine
        if self._out_buf is None or self._out_buf.shape != out.shape:
            dtype = np.float32 if self._out_quant else out.dtype
            self._out_buf = np.empty(out.shape, dtype=dtype)
        if self._out_quant:
            scale, zero = self._out_quant
            np.subtract(out, zero, out=self._out_buf, casting="unsafe")
            if scale:
                self._out_buf *= scale
        else:
            np.copyto(self._out_buf, out)
        del out
        return self._out_buf

    def _run_reduced(self, pixels: np.ndarray, reduce: Callable[[np.ndarray, np.ndarray], T]) -> T:
        """``reduce(scores, ids)`` on the outputs in place, without copying the scores out
        (``self.reduced.run``).

        ``scores`` (N, h, w, C) are read-only views into the interpreter (dequantized copies
        for quantized outputs) and ``ids`` (N, h, w) int32 the fused argmax: both are valid
        only during the call, and ``reduce`` must return nothing that refers to them (the
        interpreter refuses to run again while such references live).
        """
        self._invoke(pixels)
        scores = self._interp.tensor(self._out_index)()
        ids = self._interp.tensor(self._ids_index)()
        try:
            if self._out_quant:
                scale, zero = self._out_quant
                scores = (scores.astype(np.float32) - zero) * (scale or 1.0)
            else:
                scores.flags.writeable = False
            return reduce(scores, ids)
        finally:
            del scores, ids

    def close(self) -> None:
        self._interp = None


@functools.lru_cache(maxsize=4)
def _rewritten_model(data: bytes, fuse_argmax: bool, cut_final_resize: bool, mean, std):
    """(model bytes, coarse factor, fused?, squashes?) of the rewritten graph, or None.

    Cached in memory and on disk (rewrite_cache): unpacking and packing a flatbuffer with
    the object API takes 40-200 ms of Python, and a service opens the same model once per
    worker, a CLI run once per process.
    """
    from .rewrite_cache import load_or_build

    return load_or_build(
        data, (fuse_argmax, cut_final_resize, mean, std),
        lambda: _rewrite_graph(data, fuse_argmax, cut_final_resize, mean, std),
    )  # fmt: skip


def _rewrite_graph(data: bytes, fuse_argmax: bool, cut_final_resize: bool, mean, std):
    from ..tflite_file import pack_model, unpack_model
    from .final_resize import cut_final_resize as cut
    from .fused_argmax import add_argmax_output
    from .image_input import add_image_input

    try:
        model = unpack_model(data)
        factor = cut(model) if cut_final_resize else None
        fused = fuse_argmax and add_argmax_output(model)
        if factor and not fused:
            return None  # coarse scores only make sense with their argmax
        takes_images = add_image_input(model, mean, std)
        if not (fused or takes_images):
            return None
        return pack_model(model, len(data)), factor, fused, takes_images
    except Exception:  # noqa: BLE001 - an optimisation must never break loading
        return None
