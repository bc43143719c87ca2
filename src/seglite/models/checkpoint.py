"""Checkpoints: safetensors weights + the model config in the file's metadata.

A checkpoint alone rebuilds its model: ``load_checkpoint(path)`` reads
``metadata["seglite.config"]`` (the ``deeplab()`` arguments as JSON), builds that
architecture and loads the tensors strictly. Nothing is unpickled.

Metadata keys written:
- ``seglite.format``: "seglite.deeplab/1"
- ``seglite.config``: JSON of ``model.config``
- ``seglite.preprocess``: JSON, how inputs are normalized (mean, std, layout, channels)
- from training: ``seglite.input_size``, ``seglite.eval_output_stride``, ``seglite.train``
  and, for a model run on enlarged frames, ``seglite.accurate_scales``
- anything in ``extra_metadata`` (strings as they are, other values as JSON)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from ..errors import ModelError, require
from ..files import write_atomic
from ..runtime.info import declared_scales
from .deeplab import INPUT_MEAN, INPUT_STD, DeepLab, from_config

FORMAT = "seglite.deeplab/1"
PREPROCESS = {
    "mean": INPUT_MEAN,
    "std": INPUT_STD,
    "layout": "NCHW",
    "channels": "RGB",
    "formula": "(pixel - mean) / std",
}


def save_checkpoint(
    model: DeepLab, path: str | Path, extra_metadata: dict[str, Any] | None = None
) -> Path:
    """Write ``model``'s weights and config to ``path`` (.safetensors) atomically."""
    safetensors_torch = require("safetensors.torch", "torch")
    config = getattr(model, "config", None)
    if not isinstance(config, dict):
        raise ModelError("only models built by seglite.models (with a .config) can be saved")
    path = Path(path)
    metadata = {
        "seglite.format": FORMAT,
        "seglite.config": json.dumps(config, sort_keys=True),
        "seglite.preprocess": json.dumps(PREPROCESS, sort_keys=True),
    }
    source = getattr(model, "import_info", None)
    if source:
        metadata["seglite.source"] = json.dumps(source, sort_keys=True)
        if source.get("input_size"):  # the size the imported graph was exported for
            metadata["seglite.input_size"] = json.dumps(source["input_size"])
    for key, value in (extra_metadata or {}).items():
        metadata[str(key)] = value if isinstance(value, str) else json.dumps(value)
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    # Serialized in memory and written by the shared atomic write: save_file's own file
    # would be 0600, whatever the user's umask says.
    return write_atomic(path, safetensors_torch.save(tensors, metadata=metadata), fsync=True)


def read_checkpoint_metadata(path: str | Path) -> dict[str, str]:
    """The metadata of a seglite checkpoint, without loading its tensors."""
    safetensors = require("safetensors", "torch")
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path}: no such checkpoint file")
    try:
        with safetensors.safe_open(str(path), framework="pt") as f:
            return dict(f.metadata() or {})
    except Exception as exc:  # safetensors raises its own error types for corrupt files
        raise ModelError(f"{path}: not a readable safetensors file ({exc})") from None


MAX_METADATA = 1 << 20  # bytes per metadata value: configs and histories are a few KB
MAX_SIDE = 8192  # largest input side a checkpoint may declare (a 32k x 32k input is 12 GB)


def _decoded_metadata(meta: dict[str, str], path: Path) -> dict[str, Any]:
    """``seglite.*`` values decoded from JSON and checked: a checkpoint is user input too."""
    decoded: dict[str, Any] = {}
    for key, value in meta.items():
        if len(value) > MAX_METADATA:
            raise ModelError(f"{path}: metadata {key!r} is {len(value):,} bytes; not a checkpoint")
        if not key.startswith("seglite."):
            decoded[key] = value
            continue
        try:
            decoded[key] = json.loads(value)
        except (ValueError, RecursionError):  # RecursionError: nesting thousands deep
            if key == "seglite.config":
                raise ModelError(f"{path}: seglite.config metadata is not valid JSON") from None
            decoded[key] = value
    size = decoded.get("seglite.input_size")
    if size is not None and not (
        isinstance(size, list) and len(size) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) and 16 <= v <= MAX_SIDE for v in size)
    ):  # fmt: skip
        raise ModelError(
            f"{path}: seglite.input_size must be [height, width], whole numbers from 16 to "
            f"{MAX_SIDE}, got {size!r}"
        )
    if decoded.get("seglite.accurate_scales") is not None:  # checked once, here, for all readers
        scales = declared_scales(decoded["seglite.accurate_scales"], str(path))
        decoded["seglite.accurate_scales"] = list(scales)
    stride = decoded.get("seglite.eval_output_stride")
    if stride is not None and stride not in (8, 16, 32):
        raise ModelError(f"{path}: seglite.eval_output_stride must be 8, 16 or 32, got {stride!r}")
    return decoded


def load_checkpoint(path: str | Path, *, device: str = "cpu") -> DeepLab:
    """Rebuild a model from a checkpoint written by ``save_checkpoint``.

    The returned model is in eval mode on ``device``; ``model.checkpoint_metadata`` holds
    the file's metadata (with the values of the ``seglite.*`` keys decoded from JSON).
    """
    safetensors_torch = require("safetensors.torch", "torch")
    path = Path(path)
    meta = read_checkpoint_metadata(path)
    if "seglite.config" not in meta:
        raise ModelError(f"{path}: not a seglite checkpoint (no seglite.config metadata)")
    decoded = _decoded_metadata(meta, path)
    config = decoded["seglite.config"]
    if not isinstance(config, dict):
        raise ModelError(f"{path}: seglite.config metadata is not a JSON object")
    try:
        with torch.device("meta"):  # shapes only: the file provides every tensor
            model = from_config(config)
    except ModelError:
        raise
    except Exception as exc:  # a config no builder accepts: say which, in one line
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ModelError(f"{path}: seglite.config does not describe a model ({first})") from None
    try:
        state = safetensors_torch.load_file(str(path))
    except Exception as exc:
        raise ModelError(f"{path}: cannot read tensors ({exc})") from None
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    wrong = [k for k in own if k in state and own[k].shape != state[k].shape]
    if missing or unexpected or wrong:
        raise ModelError(
            f"{path}: tensors do not fit the stored config (missing: {missing[:3]}, "
            f"unexpected: {unexpected[:3]}, wrong shape: {wrong[:3]})"
        )
    kinds = [k for k in own if own[k].dtype.is_floating_point != state[k].dtype.is_floating_point]
    if kinds:
        k = kinds[0]
        raise ModelError(
            f"{path}: tensor {k} is {state[k].dtype}, the model needs {own[k].dtype} "
            f"({len(kinds)} tensors differ); quantized weights are not a training checkpoint"
        )
    state = {k: v.to(own[k].dtype) for k, v in state.items()}
    model.load_state_dict(state, assign=True)
    model.checkpoint_metadata = decoded
    if "seglite.source" in decoded:
        model.import_info = decoded["seglite.source"]
    return model.to(device).eval()
