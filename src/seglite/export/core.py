"""What every export shares: where the model comes from, real images, metadata, the driver.

All option checks and file look-ups happen before conversion starts, because a conversion
takes tens of seconds and a typo should not cost that.

A little over 400 lines: the shared driver and every check that must run before a
minutes-long conversion, kept together so no exporter can skip one.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..errors import ImageError, ModelError, ModelNotFoundError, OptionError, SegliteError
from ..files import write_atomic

if TYPE_CHECKING:  # torch is an optional extra
    from torch import nn

    from .parity import ParityReport

FORMATS = ("tflite", "onnx")
PRECISIONS = ("fp32", "fp16", "int8")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".ppm")
DEFAULT_INPUT_SIZE = (513, 513)  # DeepLab's evaluation size when a checkpoint stores none
DEFAULT_CALIBRATION_IMAGES = 100  # post-training quantization saturates well before this
STARTER = "starter"


class ExportError(SegliteError):
    """A converter (litert-torch, ai-edge-quantizer, torch.onnx) failed on this model."""

    http_status = 500


@dataclass
class ExportSource:
    """A PyTorch model ready to export, and what the exported file should say about it."""

    model: nn.Module
    name: str
    labels: list[str]
    input_size: tuple[int, int] | None  # (height, width) stored with the model, if any
    description: str
    origin: str
    accurate_scales: tuple[float, ...] | None = None  # what --accurate means for it, if its own


@dataclass
class ExportResult:
    path: Path
    format: str
    precision: str
    input_size: tuple[int, int]
    size_bytes: int
    seconds: float
    argmax: bool = False
    parity: ParityReport | None = None
    notes: list[str] = field(default_factory=list)


# ----------------------------------------------------------------------------- checks


def check_format(fmt: str) -> str:
    fmt = str(fmt).lower()
    if fmt not in FORMATS:
        raise OptionError(f"unknown format {fmt!r}: choose one of {', '.join(FORMATS)}")
    return fmt


def check_precision(precision: str, fmt: str = "tflite") -> str:
    p = str(precision).lower()
    p = {"float32": "fp32", "float16": "fp16", "uint8": "int8"}.get(p, p)
    if p not in PRECISIONS:
        raise OptionError(f"unknown precision {precision!r}: choose one of {', '.join(PRECISIONS)}")
    if fmt == "onnx" and p != "fp32":
        raise OptionError(
            f"ONNX export is float32 only (got --precision {p}); use --format tflite for {p}"
        )
    return p


def check_input_size(size) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in size)
    except (TypeError, ValueError):
        raise OptionError(f"input size must be two integers HEIGHT WIDTH, got {size!r}") from None
    if not (16 <= h <= 4096 and 16 <= w <= 4096):
        raise OptionError(f"input size must be between 16 and 4096 on each side, got {h}x{w}")
    return h, w


# ----------------------------------------------------------------------------- sources


def _label_names(config: dict, num_classes: int) -> list[str]:
    from ..labels import LABEL_SETS, default_label_set

    labels = config.get("labels")
    if isinstance(labels, str) and labels in LABEL_SETS:
        names = list(LABEL_SETS[labels].names)
    elif isinstance(labels, (list, tuple)) and all(isinstance(n, str) for n in labels):
        names = list(labels)
    else:
        names = list(default_label_set(num_classes).names)
    if len(names) != num_classes:
        names = (names + [f"class {i}" for i in range(len(names), num_classes)])[:num_classes]
    return names


def _describe(config: dict) -> str:
    version = config.get("version", "v3")
    backbone = config.get("backbone", "?")
    depth = config.get("depth_multiplier")
    if depth not in (None, 1, 1.0):
        backbone += f" (depth {depth:g})"
    return (
        f"DeepLab{version} {backbone}, output stride {config.get('output_stride', '?')}, "
        f"{config.get('num_classes', '?')} classes"
    )


def _size_from(value) -> tuple[int, int] | None:
    try:
        h, w = (int(v) for v in value)
    except (TypeError, ValueError):
        return None
    return (h, w) if h > 0 and w > 0 else None


def load_source(spec: str | os.PathLike, *, output_stride: int | None = None) -> ExportSource:
    """``starter``, a seglite ``.safetensors`` checkpoint, or a DeepLab ``.tflite`` to import.

    The exported graph has its output stride baked in: ``output_stride``, else the
    checkpoint's ``seglite.eval_output_stride`` (training runs at 16 and evaluates at 8,
    and the export should match the evaluation), else the stride the model was built with.
    """
    from ..errors import require

    require("torch", "export")
    if output_stride is not None and output_stride not in (8, 16, 32):
        raise OptionError(f"output stride must be 8, 16 or 32, got {output_stride!r}")
    stored_stride = None
    scales = None
    text = str(spec)
    if text.lower() == STARTER:
        from ..models import starter_model

        model = starter_model(pretrained=True).eval()
        name, origin, size = (
            "deeplabv3_starter",
            "starter model (deeplabv3_257_mv_gpu.tflite)",
            (
                257,
                257,
            ),
        )
    else:
        path = Path(text)
        if not path.is_file() and not path.suffix:  # a zoo name, as segment and eval take
            from ..zoo import resolve

            resolved = resolve(text)
            path = resolved.path
            scales = getattr(resolved.entry, "accurate_scales", None)
        suffix = path.suffix.lower()
        if suffix not in (".safetensors", ".tflite"):
            raise OptionError(
                f"{path}: CHECKPOINT must be a .safetensors checkpoint, a .tflite file to import, "
                f"or {STARTER!r}"
            )
        if not path.is_file():
            raise ModelNotFoundError(
                f"{path}: no such checkpoint file (give a .safetensors checkpoint, a .tflite "
                f"file to import, or {STARTER!r})"
            )
        if suffix == ".tflite":
            from ..models import import_tflite

            model, info = import_tflite(path)
            size = _size_from(info.get("input_size"))
        else:
            from ..models import load_checkpoint

            model = load_checkpoint(path)
            meta = getattr(model, "checkpoint_metadata", {}) or {}
            size = _size_from(meta.get("seglite.input_size"))
            stored_stride = meta.get("seglite.eval_output_stride")
            scales = meta.get("seglite.accurate_scales") or scales  # checked by the loader
        model = model.eval()
        name, origin = path.stem, path.name
    stride = output_stride or stored_stride
    if stride and hasattr(model, "set_output_stride") and int(stride) != model.output_stride:
        model.set_output_stride(int(stride))
    config = dict(getattr(model, "config", {}) or {})
    num_classes = int(config.get("num_classes") or 0)
    if num_classes < 2:
        raise ModelError(f"{text}: the model config has no class count; not a seglite DeepLab")
    return ExportSource(
        model=model,
        name=name,
        labels=_label_names(config, num_classes),
        input_size=size,
        description=_describe(config),
        origin=origin,
        accurate_scales=tuple(scales) if scales else None,
    )


# ----------------------------------------------------------------------------- images


def list_images(folder: str | os.PathLike, limit: int | None = None) -> list[Path]:
    """Image files under ``folder`` (walked, sorted); evenly spread when more than ``limit``."""
    root = Path(folder)
    if not root.is_dir():
        raise OptionError(f"{root}: no such image folder")
    files = sorted(
        p
        for p in root.rglob("*")
        if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")
    )
    if not files:
        raise OptionError(f"{root}: no images in this folder ({', '.join(IMAGE_SUFFIXES)})")
    if limit is not None and len(files) > limit:
        idx = np.linspace(0, len(files) - 1, limit).round().astype(int)
        files = [files[i] for i in idx]
    return files


def load_pixels(paths: list[Path], input_size: tuple[int, int]) -> np.ndarray:
    """uint8 RGB (N, H, W, 3) at the model size, resized as the Segmenter does at run time.

    Calibration and parity must see what the deployed model sees, so this is the project's
    one loader and one resize, not a private copy. Unreadable files are skipped.
    """
    from ..image import load_image, resize, to_array

    h, w = input_size
    out, bad = [], []
    for p in paths:
        try:
            img = load_image(p).image
        except ImageError:
            bad.append(p)
            continue
        out.append(to_array(resize(img, (w, h))))
    if not out:
        raise OptionError(f"none of the {len(paths)} images could be read (first: {bad[0]})")
    return np.stack(out)


def normalize(pixels: np.ndarray) -> np.ndarray:
    """uint8 NHWC -> float32 NHWC ``(x - 127.5) / 127.5``, the seglite DeepLab convention."""
    from ..models.deeplab import INPUT_MEAN, INPUT_STD

    return ((pixels.astype(np.float32) - INPUT_MEAN) / INPUT_STD).astype(np.float32)


def default_parity_images() -> Path | None:
    """The examples folder of a source checkout, if there is one."""
    here = Path(__file__).resolve()
    for parent in here.parents[1:5]:
        cand = parent / "examples"
        if cand.is_dir() and any(p.suffix.lower() in IMAGE_SUFFIXES for p in cand.iterdir()):
            return cand
    return None


def synthetic_pixels(input_size: tuple[int, int], n: int = 2) -> np.ndarray:
    """Smooth colour fields with a few shapes: numerics only, when no real image is at hand."""
    h, w = input_size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    rng = np.random.default_rng(0)
    imgs = []
    for _ in range(n):
        a, b, c = rng.uniform(0.5, 3.0, 3)
        img = np.stack(
            [
                127 + 120 * np.sin(a * xx / w * np.pi),
                127 + 120 * np.cos(b * yy / h * np.pi),
                127 + 120 * np.sin(c * (xx + yy) / (w + h) * np.pi),
            ],
            -1,
        )
        cy, cx, r = rng.uniform(0.3, 0.7) * h, rng.uniform(0.3, 0.7) * w, min(h, w) / 5
        img[(yy - cy) ** 2 + (xx - cx) ** 2 < r * r] = rng.uniform(0, 255, 3)
        imgs.append(img.clip(0, 255).astype(np.uint8))
    return np.stack(imgs)


# ----------------------------------------------------------------------------- files


def default_out(source: ExportSource, fmt: str, precision: str, argmax: bool) -> Path:
    tag = "" if fmt == "onnx" else f".{precision}"
    return Path(f"{source.name}{tag}{'.argmax' if argmax else ''}.{fmt}")


def _alignment_notes(model, size: tuple[int, int]) -> list[str]:
    """A note where ``size`` makes the model pad its input (DeepLab.aligned_size)."""
    if not hasattr(model, "aligned_size"):
        return []
    aligned = tuple(model.aligned_size(n) for n in size)
    if aligned == size:
        return []
    s = model.output_stride
    below = tuple(n if a == n else (n - 1) // s * s + 1 for n, a in zip(size, aligned))
    return [
        f"{size[0]}x{size[1]} is not k x {s} + 1: the graph pads to {aligned[0]}x{aligned[1]} "
        f"and crops, so runtimes cannot cut its final upsampling; --input-size {below[0]} "
        f"{below[1]} or {aligned[0]} {aligned[1]} would need no padding"
    ]


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    line = text.splitlines()[0].strip() if text else type(exc).__name__
    return line[:300]


# ----------------------------------------------------------------------------- driver


def export_model(
    checkpoint: str | os.PathLike | ExportSource,
    *,
    format: str = "tflite",
    precision: str = "fp32",
    out: str | os.PathLike | None = None,
    input_size: tuple[int, int] | None = None,
    calibration: str | os.PathLike | None = None,
    num_calibration: int = DEFAULT_CALIBRATION_IMAGES,
    argmax: bool = False,
    parity: bool = True,
    parity_images: str | os.PathLike | None = None,
    float_model: bytes | None = None,
    output_stride: int | None = None,
    uint8_input: bool = False,
    log: Callable[[str], None] | None = None,
) -> ExportResult:
    """Export ``checkpoint`` to ``out`` and check it against the PyTorch model.

    ``float_model``: a float32 .tflite of the same model and size from an earlier export
    (with or without metadata), to quantize without converting again.
    ``output_stride``: see :func:`load_source`.
    ``uint8_input``: int8 only; the model takes raw uint8 pixels instead of floats.
    ``log``: a callable taking one line of progress (the CLI passes ``print``).
    """
    say = log or (lambda _msg: None)
    fmt = check_format(format)
    precision = check_precision(precision, fmt)
    if input_size is not None:
        input_size = check_input_size(input_size)
    if num_calibration < 1:
        raise OptionError(
            f"the number of calibration images must be positive, got {num_calibration}"
        )
    if uint8_input and (fmt != "tflite" or precision != "int8"):
        raise OptionError("--uint8-input applies to TFLite int8 exports only (--precision int8)")
    calib_files: list[Path] = []
    notes: list[str] = []
    if precision == "int8":
        if calibration is None:
            raise OptionError(
                "int8 needs calibration images: pass --calibration DIR, a folder of real images "
                "like the ones the model will see (50-200 is plenty)"
            )
        calib_files = list_images(calibration, num_calibration)
        if len(calib_files) < 10:
            notes.append(
                f"only {len(calib_files)} calibration image(s): int8 ranges may not cover real "
                "inputs (50-200 recommended)"
            )
    elif calibration is not None:
        list_images(calibration, 1)  # a wrong folder is still an error, even if unused
    parity_dir = Path(parity_images) if parity_images is not None else None
    if parity_dir is not None:
        list_images(parity_dir, 1)
    if isinstance(checkpoint, ExportSource):
        source = checkpoint
        if output_stride is not None:
            raise OptionError("output_stride applies when loading a checkpoint: use load_source")
    else:
        source = load_source(checkpoint, output_stride=output_stride)
    size = check_input_size(input_size or source.input_size or DEFAULT_INPUT_SIZE)
    if input_size is None and source.input_size is None:
        notes.append(f"no input size stored with the model: using {size[0]}x{size[1]}")
    notes.extend(_alignment_notes(source.model, size))
    path = Path(out) if out is not None else default_out(source, fmt, precision, argmax)
    if path.is_dir():
        raise OptionError(f"--out {path} is a folder; give a file name")
    if path.suffix.lower() != f".{fmt}":
        notes.append(f"{path.name}: file name does not end in .{fmt}")
    if argmax and fmt == "tflite":
        notes.append(
            "an ArgMax model outputs class ids: seglite and LiteRT read it, MediaPipe and the "
            "Task Library expect class scores (export without --argmax for them)"
        )

    t0 = time.perf_counter()
    if fmt == "tflite":
        from . import tflite

        calib = None
        if calib_files:
            say(f"calibrating on {len(calib_files)} images from {calibration}")
            calib = load_pixels(calib_files, size)
        data = tflite.export_tflite(
            source.model,
            input_size=size,
            precision=precision,
            calibration=calib,
            argmax=argmax,
            metadata=tflite.segmentation_metadata(
                source, precision=precision, argmax=argmax, uint8_input=uint8_input
            ),
            float_model=float_model,
            uint8_input=uint8_input,
            log=say,
        )
    else:
        from . import onnx as onnx_export

        data = onnx_export.export_onnx(
            source.model,
            input_size=size,
            argmax=argmax,
            properties=onnx_export.metadata_properties(source),
            log=say,
        )
    write_atomic(path, data)
    result = ExportResult(
        path=path,
        format=fmt,
        precision=precision,
        input_size=size,
        size_bytes=len(data),
        seconds=time.perf_counter() - t0,
        argmax=argmax,
        notes=notes,
    )
    if parity:
        from .parity import check_parity, parity_pixels

        spare: list[Path] = []
        if parity_dir is None and calibration is not None:
            used = set(calib_files)
            spare = [f for f in list_images(calibration) if f not in used] or calib_files
        pixels, where = parity_pixels(size, parity_dir, spare)
        result.parity = check_parity(
            source.model,
            path,
            pixels,
            precision=precision,
            images_from=where,
        )
    return result
