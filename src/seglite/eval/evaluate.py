"""Evaluate any model over a dataset: one code path for .tflite, .onnx and checkpoints.

``evaluate`` drives a ``Segmenter`` (so the zoo's TFLite files, exported ONNX files and
seglite checkpoints are measured the same way, including the Segmenter's multi-scale and
flip options) and accumulates one confusion matrix. ``evaluate_checkpoint`` is the
PyTorch-native alternative for checkpoints: whole images at paper-style scales, faster
because nothing is squashed or tiled.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import OptionError
from .metrics import ConfusionMatrix


def _check_label_sets(model_name: str, model_labels, dataset) -> None:
    """Refuse to score a model against data labelled with other classes: the number would
    be meaningless (a Cityscapes model on VOC scores 0.7 mIoU, and says nothing)."""
    from ..labels import same_classes

    if same_classes(model_labels, dataset.labels):
        return
    sample = ", ".join(model_labels.names[:4])
    raise OptionError(
        f"{model_name} predicts {len(model_labels)} classes ({sample}, ...) but {dataset.name} "
        f"is labelled with {dataset.num_classes} {dataset.labels.key} classes "
        f"({', '.join(dataset.labels.names[:4])}, ...); evaluate it on data with its label set"
    )


def _checkpoint_labels(model):
    from ..labels import LABEL_SETS, default_label_set, label_set_from_names

    labels = (getattr(model, "config", None) or {}).get("labels")
    if isinstance(labels, str) and labels in LABEL_SETS:
        return LABEL_SETS[labels]
    if isinstance(labels, (list, tuple)) and len(labels) == model.num_classes:
        return label_set_from_names([str(n) for n in labels])
    return default_label_set(model.num_classes)


@dataclass
class EvalResult:
    """A confusion matrix with its context; ``as_dict()`` is the JSON users get."""

    model: str
    dataset: str
    split: str
    images: int
    cm: ConfusionMatrix
    names: list[str]
    settings: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def miou(self) -> float:
        return round(100.0 * self.cm.miou, 2)

    def as_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "dataset": self.dataset,
            "split": self.split,
            "images": self.images,
            **self.cm.summary(self.names),
            "settings": self.settings,
            "ms_per_image": round(1e3 * self.seconds / max(self.images, 1), 1),
            "confusion_matrix": self.cm.matrix.tolist(),
        }


def _progress(n: int, enabled: bool, desc: str):
    from tqdm.auto import tqdm

    return tqdm(total=n, desc=desc, unit="img", disable=not enabled, leave=False)


def evaluate(
    model: str | Path,
    dataset,
    *,
    num_threads: int | None = None,
    scales: Sequence[float] = (1.0,),
    flip: bool = False,
    accurate: bool = False,
    output_stride: int | None = None,
    max_pixels: int | None = None,
    backend: str = "auto",
    limit: int | None = None,
    progress: bool = False,
) -> EvalResult:
    """Segment every image of ``dataset`` with a Segmenter and score the category masks.

    ``scales``/``flip``/``accurate`` are the Segmenter's (a scale is the long side as a
    multiple of the model's input size; ``accurate`` the model's own preset).
    ``output_stride`` applies to PyTorch checkpoints only.
    """
    from ..image import DEFAULT_MAX_PIXELS
    from ..segmenter import Segmenter

    dataset = dataset.subset(limit)
    seg = Segmenter(
        model, num_threads=num_threads, scales=scales, flip=flip, accurate=accurate,
        max_pixels=max_pixels or DEFAULT_MAX_PIXELS, backend=backend,
    )  # fmt: skip
    try:
        if output_stride is not None:
            if not hasattr(seg.backend, "set_output_stride"):
                raise OptionError(
                    "--output-stride applies to PyTorch checkpoints (.safetensors) only; "
                    f"{seg.model_name} has its stride baked in"
                )
            seg.backend.set_output_stride(output_stride)
        _check_label_sets(seg.model_name, seg.label_set, dataset)
        cm = ConfusionMatrix(dataset.num_classes, dataset.ignore_index)
        t0 = time.perf_counter()
        with _progress(len(dataset), progress, f"eval {seg.model_name}") as bar:
            for i in range(len(dataset)):
                image_path = dataset.pairs[i][0]
                result = seg.segment(image_path)
                pred = result.category_mask
                target = dataset.read_mask(i, (pred.shape[1], pred.shape[0]))
                if int(pred.max(initial=0)) >= dataset.num_classes:
                    raise OptionError(
                        f"{seg.model_name} predicted class {int(pred.max())} on {image_path.name}, "
                        f"outside {dataset.labels.key}'s {dataset.num_classes} classes"
                    )
                cm.update(pred, target)
                bar.update(1)
        seconds = time.perf_counter() - t0
        settings = {
            "path": "segmenter", "backend": seg.backend.name, "scales": list(seg.scales),
            "flip": seg.flip, "input_size": list(seg.input_size),
            "threads": seg.backend.num_threads,
        }  # fmt: skip
        if hasattr(seg.backend, "output_stride"):
            settings["output_stride"] = seg.backend.output_stride
        return EvalResult(
            seg.model_name, dataset.name, dataset.split, len(dataset), cm,
            list(dataset.labels.names), settings, seconds,
        )  # fmt: skip
    finally:
        seg.close()


def evaluate_checkpoint(
    path: str | Path,
    dataset,
    *,
    num_threads: int | None = None,
    scales: Sequence[float] = (1.0,),
    flip: bool = False,
    output_stride: int | None = 8,
    limit: int | None = None,
    progress: bool = False,
) -> EvalResult:
    """PyTorch-native evaluation of a seglite checkpoint: each image whole, at each of
    ``scales`` (multiples of the image's own size), optionally mirrored."""
    import torch

    from ..models.checkpoint import load_checkpoint
    from ..runtime import check_threads
    from .native import evaluate_torch

    threads = check_threads(num_threads)
    torch.set_num_threads(threads)
    dataset = dataset.subset(limit)
    model = load_checkpoint(path)
    _check_label_sets(Path(path).name, _checkpoint_labels(model), dataset)
    t0 = time.perf_counter()
    cm = evaluate_torch(
        model, dataset, scales=tuple(scales), flip=flip, output_stride=output_stride,
        progress=progress,
    )  # fmt: skip
    settings = {
        "path": "native", "backend": "torch", "scales": list(scales), "flip": flip,
        "output_stride": output_stride or model.output_stride, "threads": threads,
    }  # fmt: skip
    return EvalResult(
        Path(path).name, dataset.name, dataset.split, len(dataset), cm,
        list(dataset.labels.names), settings, time.perf_counter() - t0,
    )  # fmt: skip
