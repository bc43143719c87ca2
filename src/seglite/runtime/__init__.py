"""One Backend protocol for every runtime; the Segmenter never knows which one it drives.

A backend takes uint8 RGB pixels (NHWC) of any size, squashes them to the model's
input size (postprocess/bilinear.py's convention; image.model_pixels has already box-reduced big
photos) and returns either float class scores (NHWC) or class ids (NHW). The squash,
normalization and quantization are the backend's business, read from the model file.
What it read is its ``info`` (info.ModelInfo, the same shape for every runtime); the
fast in-place path is its ``reduced`` (info.ReducedRun), or None, fixed when opened.

To add a runtime: a module here with a class that fills ``info`` (subclass
info.Described for the shorthands), sets ``reduced``, and implements ``run`` and
``close``; then a branch in :func:`backend_for` and :func:`open_backend`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from ..errors import ModelError, OptionError
from .info import DEFAULT_MEAN, DEFAULT_STD, ModelInfo, OutputKind, ReducedRun

__all__ = [
    "BACKENDS",
    "DEFAULT_MEAN",
    "DEFAULT_STD",
    "Backend",
    "ModelInfo",
    "OutputKind",
    "ReducedRun",
    "open_backend",
]

BACKENDS = ("litert", "onnx", "torch")


@runtime_checkable
class Backend(Protocol):
    name: str
    path: Path
    info: ModelInfo  # everything read from the model file, and where from
    reduced: ReducedRun | None  # the fast in-place path, where opened for and available
    num_threads: int

    @property
    def input_size(self) -> tuple[int, int]:  # (height, width): info.input_size
        ...

    @property
    def output_kind(self) -> OutputKind:  # info.output_kind
        ...

    def run(self, pixels: np.ndarray) -> np.ndarray:
        """uint8 RGB (N, H, W, 3), any H and W -> scores (N, h, w, C) float or ids (N, h, w).

        The returned array may be a buffer reused by the next call: copy it to keep it.
        """
        ...

    def close(self) -> None: ...


def default_threads() -> int:
    """As many threads as cores, at most 4 (DeepLab on a phone-sized model stops scaling there)."""
    return max(1, min(4, os.cpu_count() or 1))


def check_threads(num_threads: int | None) -> int:
    if num_threads is None or num_threads == -1:
        return default_threads()
    if isinstance(num_threads, bool) or not isinstance(num_threads, int) or num_threads < 1:
        raise OptionError(
            f"num_threads must be a positive integer (or -1 for auto), got {num_threads!r}"
        )
    return num_threads


def backend_for(path: Path, backend: str = "auto") -> str:
    """Pick the runtime from the option or the file suffix."""
    if backend not in ("auto", *BACKENDS):
        raise OptionError(f"unknown backend {backend!r}: choose one of auto, {', '.join(BACKENDS)}")
    if backend != "auto":
        return backend
    suffix = path.suffix.lower()
    if suffix == ".onnx":
        return "onnx"
    if suffix in (".safetensors", ".pt", ".pth"):
        return "torch"
    return "litert"


def open_backend(
    path: str | os.PathLike,
    *,
    backend: str = "auto",
    num_threads: int | None = None,
    fuse_argmax: bool = False,
    cut_final_resize: bool = False,
    rewrite: bool = True,
) -> Backend:
    """Open a model file with the runtime that fits it.

    ``fuse_argmax`` asks a runtime that can for the argmax inside the model's graph
    (LiteRT: see fused_argmax): ``backend.reduced`` is then a ReducedRun, else None.
    ``cut_final_resize`` (with ``fuse_argmax``) also lets LiteRT drop a final whole-factor
    upsampling of the scores (see final_resize): ``backend.reduced.coarse_factor`` then
    says by how much the scores it hands over are coarser than the model's output
    (``run`` still returns the model's own output). ``rewrite=False`` runs a LiteRT model
    exactly as it is (no input squash in the graph either), as benchmark_model does.
    """
    path = Path(path)
    kind = backend_for(path, backend)
    threads = check_threads(num_threads)
    if kind == "litert":
        from .litert import LiteRTBackend

        return LiteRTBackend(
            path,
            num_threads=threads,
            fuse_argmax=fuse_argmax,
            cut_final_resize=cut_final_resize,
            rewrite=rewrite,
        )
    if kind == "onnx":
        from .onnx import OnnxBackend

        return OnnxBackend(path, num_threads=threads)
    from .torch import TorchBackend

    return TorchBackend(path, num_threads=threads)


def read_model_file(path: Path) -> bytes:
    """The model file's bytes, or a one-line ModelError (missing, unreadable, empty)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ModelError(f"{path}: cannot read model file ({exc.strerror})") from None
    if not data:
        raise ModelError(f"{path}: empty model file")
    return data


def fit_pixels(pixels: np.ndarray, size: tuple[int, int], raw: bool) -> np.ndarray:
    """(N, h, w, 3) uint8 pixels brought to ``size`` (height, width) by bilinear.squash:
    float32 for models that normalize, rounded uint8 for ``raw`` (quantized) inputs."""
    if pixels.shape[1:3] == tuple(size):
        return pixels
    from ..postprocess.bilinear import squash

    out = squash(pixels, size)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8) if raw else out


def normalize_into(out: np.ndarray, pixels: np.ndarray, mean, std) -> None:
    """(pixels - mean) / std written into ``out`` without temporaries; per-channel or scalar."""
    mean = np.asarray(mean, dtype=np.float32)
    inv = (1.0 / np.asarray(std, dtype=np.float32)).astype(np.float32)
    np.multiply(pixels, inv, out=out, casting="unsafe")
    np.subtract(out, mean * inv, out=out)
