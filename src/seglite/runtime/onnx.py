"""ONNX Runtime backend: the same Backend protocol as the LiteRT one, for ``.onnx`` files.

Everything is read from the file: the input layout (NHWC ``[1, H, W, 3]`` or NCHW
``[1, 3, H, W]``, from the input shape), the input type (float normalized, or raw uint8
pixels), and the output (scores ``[1, h, w, C]`` / ``[1, C, h, w]``, or class ids
``[1, h, w]``). Float inputs are normalized ``(x - 127.5) / 127.5`` like the TFLite starter
model unless the model's metadata properties say otherwise:

- ``mean`` / ``std``: comma-separated numbers in pixel units (0..255), one or three each;
- ``labels``: a JSON list of class names, or one name per line;
- ``labels.LOCALE`` (e.g. ``labels.fr``): the same names in that language, for
  ``display_names_locale`` (as TFLite metadata's localized label files);
- ``output_layout``: ``NHWC`` or ``NCHW`` when the output shape alone is ambiguous.

Keys may carry a ``seglite.`` prefix. Without ``output_layout``, a 4-D output follows the
input's layout, which is what exporters (torch.onnx, tf2onnx) produce.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..errors import ModelError, require
from ..files import first_line
from . import fit_pixels, normalize_into, read_model_file
from .info import DEFAULT_MEAN, DEFAULT_STD, Described, ModelInfo, declared_scales_text

_FLOAT_TYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16}
_INT_TYPES = ("tensor(int64)", "tensor(int32)", "tensor(uint8)", "tensor(int8)", "tensor(uint16)")


def _numbers(text: str, key: str, path: Path) -> tuple[float, ...]:
    try:
        vals = tuple(float(v) for v in text.replace(";", ",").split(",") if v.strip())
    except ValueError:
        vals = ()
    if len(vals) not in (1, 3) or (key == "std" and any(v == 0 for v in vals)):
        raise ModelError(f"{path}: metadata {key}={text!r} is not 1 or 3 numbers (std non-zero)")
    return vals


class OnnxBackend(Described):
    """Runs an ONNX segmentation model on ONNX Runtime's CPU provider with ``num_threads``."""

    name = "onnx"
    reduced = None  # no fused argmax: the Segmenter takes the general path

    def __init__(self, path: Path, *, num_threads: int = 2):
        ort = require("onnxruntime", "onnx")
        self.path = Path(path)
        self.num_threads = num_threads
        data = read_model_file(self.path)
        if data[4:8] == b"TFL3":
            raise ModelError(f"{self.path}: this is a TFLite model; use --backend litert")
        opts = ort.SessionOptions()
        # One thread count means the same thing as for LiteRT: the caller + (n - 1) workers.
        opts.intra_op_num_threads = num_threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.log_severity_level = 3  # errors only: no warnings on stderr
        # Idle worker threads sleep instead of spinning: spinning burns the cores that image
        # decoding and upsampling (and anything else on a shared machine) need between runs,
        # and measured here it made ONNX Runtime itself slower under load, not faster.
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self._session = ort.InferenceSession(
                data, sess_options=opts, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # ORT raises its own pybind exception types
            raise ModelError(
                f"{self.path}: ONNX Runtime cannot load this model ({first_line(exc)})"
            ) from None
        self._read_signature()

    # -- reading the file ---------------------------------------------------------------------

    def _meta(self) -> dict[str, str]:
        props = dict(self._session.get_modelmeta().custom_metadata_map or {})
        out = {}
        for k, v in props.items():
            out[k.removeprefix("seglite.").lower()] = v
        return out

    def _read_signature(self) -> None:
        ins = self._session.get_inputs()
        outs = self._session.get_outputs()
        if len(ins) != 1 or not outs:
            raise ModelError(
                f"{self.path}: not a segmentation model (expected one image input, got {len(ins)})"
            )
        inp, out = ins[0], outs[0]
        shape = list(inp.shape)
        if len(shape) != 4:
            raise ModelError(
                f"{self.path}: not an image model (input shape {shape}, expected [1, H, W, 3] "
                "or [1, 3, H, W])"
            )
        if shape[3] == 3:
            self.layout = "NHWC"
            h, w = shape[1], shape[2]
        elif shape[1] == 3:
            self.layout = "NCHW"
            h, w = shape[2], shape[3]
        else:
            raise ModelError(
                f"{self.path}: not an image model (input shape {shape}: no axis of 3 channels)"
            )
        if not (isinstance(h, int) and isinstance(w, int) and h > 0 and w > 0):
            raise ModelError(
                f"{self.path}: the input size is not fixed in the file (shape {shape}); "
                "export the model with a fixed height and width"
            )
        input_size = (h, w)
        self._fixed_batch = shape[0] if isinstance(shape[0], int) and shape[0] > 0 else None
        if self._fixed_batch not in (None, 1):
            raise ModelError(f"{self.path}: batch size {shape[0]} in the file; expected 1")
        self._in_name, self._out_name = inp.name, out.name
        if inp.type in _FLOAT_TYPES:
            input_dtype = np.dtype(_FLOAT_TYPES[inp.type])
        elif inp.type == "tensor(uint8)":
            input_dtype = np.dtype(np.uint8)
        else:
            raise ModelError(f"{self.path}: unsupported input type {inp.type} (float or uint8)")

        meta = self._meta()
        sources = {"input": "ONNX graph input", "output": "ONNX graph output"}
        mean, std = DEFAULT_MEAN, DEFAULT_STD
        if "mean" in meta or "std" in meta:
            sources["normalization"] = "ONNX metadata properties mean/std"
        if "mean" in meta:
            mean = _numbers(meta["mean"], "mean", self.path)
        if "std" in meta:
            std = _numbers(meta["std"], "std", self.path)
        labels = self._labels(meta.get("labels"))

        oshape = list(out.shape)
        layout = meta.get("output_layout", "").upper() or self.layout
        if layout not in ("NHWC", "NCHW"):
            raise ModelError(f"{self.path}: metadata output_layout={layout!r}: NHWC or NCHW")
        num_classes: int | None
        if len(oshape) == 4 and out.type in (*_FLOAT_TYPES, *_INT_TYPES):
            output_kind = "logits"
            classes = oshape[3] if layout == "NHWC" else oshape[1]
            self._out_layout = layout
            num_classes = classes if isinstance(classes, int) else None
            if num_classes is not None and num_classes < 2:
                raise ModelError(
                    f"{self.path}: not a segmentation model (output shape {oshape}, "
                    f"{num_classes} class)"
                )
        elif len(oshape) == 3 and out.type in _INT_TYPES:
            output_kind = "argmax"
            self._out_layout = "NHW"
            num_classes = None
        else:
            raise ModelError(
                f"{self.path}: not a segmentation model (output shape {oshape} {out.type}; "
                "expected [1, H, W, classes] or [1, classes, H, W] scores, or [1, H, W] ids)"
            )
        if num_classes is None and labels:
            num_classes = len(labels)
        if labels and num_classes is not None and len(labels) != num_classes:
            labels = None  # metadata that does not fit the output is ignored, not trusted
        display_names: dict[str, list[str]] = {}
        if labels:
            sources["labels"] = "ONNX metadata property labels"
            sources["display_names"] = "ONNX metadata properties labels.LOCALE"
            for key, text in meta.items():
                locale = key.removeprefix("labels.")
                names = self._labels(text) if key.startswith("labels.") and locale else None
                if names and len(names) == len(labels):
                    display_names[locale] = names
        self.info = ModelInfo(
            input_size=input_size,
            input_dtype=input_dtype,
            output_kind=output_kind,
            num_classes=num_classes,
            labels=labels,
            display_names=display_names,
            mean=mean,
            std=std,
            sources=sources,
            accurate_scales=None
            if meta.get("accurate_scales") is None
            else declared_scales_text(meta["accurate_scales"], str(self.path)),
        )
        self._in_buf: np.ndarray | None = None
        self._out_buf: np.ndarray | None = None

    def _labels(self, text: str | None) -> list[str] | None:
        if not text:
            return None
        try:
            names = json.loads(text)
        except ValueError:
            names = [line.strip() for line in text.splitlines() if line.strip()]
        if isinstance(names, list) and names and all(isinstance(n, str) for n in names):
            return names
        return None

    @property
    def output_size(self) -> tuple[int, int] | None:
        shape = self._session.get_outputs()[0].shape
        dims = shape[1:3] if self._out_layout in ("NHWC", "NHW") else shape[2:4]
        return tuple(dims) if all(isinstance(d, int) for d in dims) else None

    # -- running ------------------------------------------------------------------------------

    def _prepare(self, pixels: np.ndarray) -> np.ndarray:
        """uint8 NHWC pixels -> the model's input tensor, in a buffer reused across calls."""
        n = pixels.shape[0]
        h, w = self.input_size
        shape = (n, h, w, 3) if self.layout == "NHWC" else (n, 3, h, w)
        dtype = np.float32 if self.input_dtype == np.float16 else self.input_dtype
        if self._in_buf is None or self._in_buf.shape != shape:
            self._in_buf = np.empty(shape, dtype=dtype)
        src = pixels if self.layout == "NHWC" else pixels.transpose(0, 3, 1, 2)
        if self.input_dtype == np.uint8:
            np.copyto(self._in_buf, src)
            return self._in_buf
        if self.layout == "NHWC":
            normalize_into(self._in_buf, src, self.mean, self.std)
        else:
            mean = np.asarray(self.mean, np.float32).reshape(-1, 1, 1)
            std = np.asarray(self.std, np.float32).reshape(-1, 1, 1)
            normalize_into(self._in_buf, src, mean, std)
        if self.input_dtype == np.float16:
            return self._in_buf.astype(np.float16)
        return self._in_buf

    def run(self, pixels: np.ndarray) -> np.ndarray:
        """uint8 RGB (N, H, W, 3), any H and W -> scores (N, h, w, C) float32 or ids (N, h, w)."""
        if pixels.ndim == 3:
            pixels = pixels[None]
        pixels = fit_pixels(pixels, self.input_size, raw=self.input_dtype == np.uint8)
        if self._fixed_batch == 1 and pixels.shape[0] > 1:
            return np.concatenate([self.run(p[None]).copy() for p in pixels])
        feed = {self._in_name: self._prepare(pixels)}
        out = self._session.run([self._out_name], feed)[0]
        if self._out_layout == "NCHW":
            out = out.transpose(0, 2, 3, 1)
        if self.output_kind == "logits":
            if self._out_buf is None or self._out_buf.shape != out.shape:
                self._out_buf = np.empty(out.shape, dtype=np.float32)
            np.copyto(self._out_buf, out, casting="unsafe")
            return self._out_buf
        return out

    def close(self) -> None:
        self._session = None
