"""``inspect --fix``: a copy of a .tflite with the metadata MediaPipe and the Task Library
need, from labels and normalization the user supplies (nothing is guessed into a file)."""

from __future__ import annotations

from pathlib import Path

from ..errors import OptionError


def _numbers(text: str | None, name: str) -> tuple[float, ...] | None:
    if text is None:
        return None
    try:
        vals = tuple(float(v) for v in str(text).split(",") if v.strip())
    except ValueError:
        raise OptionError(f"--{name} takes one or three numbers, got {text!r}") from None
    if len(vals) not in (1, 3) or (name == "std" and min(vals) <= 0):
        raise OptionError(f"--{name} takes one or three numbers (std > 0), got {text!r}")
    return vals


def fix_metadata(
    model: str | Path, out: str | Path, *, labels: str | None = None, mean=None, std=None,
    activation: str | None = None,
) -> Path:  # fmt: skip
    """Write ``out``: ``model`` with labels, mean/std and activation added to its metadata.

    What the file already says is kept unless given again; a float input without mean/std
    in the file needs ``mean`` and ``std`` (MediaPipe refuses it otherwise).
    """
    from .. import zoo
    from ..files import write_atomic
    from ..labels import LABEL_SETS, read_label_file
    from ..metadata import SegmentationMetadata, read_metadata, write_metadata
    from ..runtime import read_model_file
    from .tflite import read_tflite

    path = Path(zoo.resolve(str(model)).path)
    if path.suffix.lower() != ".tflite":
        raise OptionError("--fix writes TFLite metadata: give a .tflite model")
    info = read_tflite(path)
    meta = read_metadata(info["bytes"]) or SegmentationMetadata(name=path.stem)
    m, s = _numbers(mean, "mean"), _numbers(std, "std")
    if (m is None) != (s is None):
        raise OptionError("give --mean and --std together")
    if m is not None:
        meta.input_mean, meta.input_std = m, s
    inp = info["inputs"][0] if info["inputs"] else {}
    if inp.get("dtype") == "float32" and not meta.input_mean:
        raise OptionError(
            f"{path.name} takes float32 input and says nothing about its normalization: give "
            "--mean and --std (DeepLab models: --mean 127.5 --std 127.5)"
        )
    if labels is not None:
        meta.labels = (
            list(LABEL_SETS[labels].names) if labels in LABEL_SETS else read_label_file(labels)
        )
        meta.label_file_name = meta.label_file_name or "labelmap.txt"
    out_shape = info["outputs"][-1]["shape"] if info["outputs"] else []
    if meta.labels and len(out_shape) == 4 and len(meta.labels) != out_shape[3]:
        raise OptionError(
            f"{len(meta.labels)} labels for {out_shape[3]} output classes: one name per class"
        )
    if activation is not None:
        meta.output_activation = activation.upper()
    data = write_metadata(read_model_file(path), meta)
    out = Path(out)
    write_atomic(out, data)
    return out
