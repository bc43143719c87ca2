"""``inspect_model``: what a model file takes, gives, needs and where it will load.

Answers the questions nobody can answer from a bare .tflite ("there is no easy way to know"
its mean/std, tensorflow/tensorflow#44431): inputs and their quantization, the
normalization it expects *and where that came from* (metadata: sure; quantization
parameters: sure; the graph's first op or the DeepLab convention: a guess), outputs and
their kind, labels and their source, size, op counts, multiply-adds, runtimes, whether
MediaPipe's and the Task Library's ImageSegmenter will load it, and whether it imports
into PyTorch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import ModelError
from ..runtime.info import declared_scales_text

DEEPLAB_MEAN, DEEPLAB_STD = 127.5, 127.5


def _labels(num_classes: int | None, meta_labels, entry) -> tuple[list[str] | None, str | None]:
    from ..labels import LABEL_SETS, default_label_set

    if meta_labels:
        return list(meta_labels), "metadata"
    if entry is not None and getattr(entry, "labels", None) in LABEL_SETS:
        return list(LABEL_SETS[entry.labels].names), f"zoo entry {entry.name}"
    if num_classes:
        ls = default_label_set(num_classes)
        if not ls.key.startswith("generic"):
            return list(ls.names), f"guessed from the class count ({ls.key})"
    return None, None


def _normalization(info: dict, meta) -> dict[str, Any]:
    inp = info["inputs"][0] if info["inputs"] else None
    if meta and meta.input_mean and meta.input_std:
        return {"mean": list(meta.input_mean), "std": list(meta.input_std),
                "source": "metadata", "confidence": "sure"}  # fmt: skip
    if inp and inp["quantization"] and inp["dtype"] in ("uint8", "int8"):
        s, z = inp["quantization"]["scale"], inp["quantization"]["zero_point"]
        shift = 128 if inp["dtype"] == "int8" else 0
        return {
            "mean": [round(z + shift, 4)], "std": [round(1 / s, 4)],
            "source": "quantization parameters", "confidence": "sure",
            "note": f"feed raw 0..255 pixels; the file maps them to (p - {z + shift}) * {s:g}",
        }  # fmt: skip
    return {
        "mean": [DEEPLAB_MEAN], "std": [DEEPLAB_STD], "source": "inferred",
        "confidence": "guess",
        "note": "the file says nothing; DeepLab's convention (x - 127.5) / 127.5 is assumed "
        "(first op: " + str(info.get("first_op")) + "); confirm against the training code",
    }  # fmt: skip


def _pytorch_import(path: Path) -> dict[str, Any]:
    try:
        from ..models.tflite_import import import_tflite

        model, meta = import_tflite(path)
    except Exception as exc:  # the importer says why in its message; anything else is a no
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return {"ok": False, "note": text[:300]}
    cfg = getattr(model, "config", {}) or {}
    what = ", ".join(f"{k} {cfg[k]}" for k in ("version", "backbone", "output_stride") if k in cfg)
    return {"ok": True, "note": what or "imported"}


def inspect_tflite(path: Path, entry=None, *, try_import: bool = True) -> dict[str, Any]:
    from ..metadata import read_metadata
    from .tflite import output_kind, read_tflite
    from .verdicts import mediapipe_verdict, runtimes, task_library_verdict

    info = read_tflite(path)
    try:
        meta = read_metadata(info["bytes"])
    except ModelError as exc:
        meta, meta_error = None, str(exc)
    else:
        meta_error = None
    for o in info["outputs"]:
        o["kind"] = output_kind(o)
    out = info["outputs"][-1] if info["outputs"] else None
    classes = out["shape"][-1] if out and out["kind"] != "argmax" and out["shape"] else None
    if classes is None and entry is not None:
        classes = entry.num_classes
    labels, source = _labels(classes, meta.labels if meta else None, entry)
    report = {
        "format": "tflite",
        "inputs": info["inputs"],
        "normalization": _normalization(info, meta),
        "outputs": info["outputs"],
        "classes": classes if classes is not None else (len(labels) if labels else None),
        "labels": labels,
        "labels_source": source,
        "metadata": None if meta is None else {
            "name": meta.name, "version": meta.version, "author": meta.author,
            "license": meta.license, "output_activation": meta.output_activation,
            "label_file": meta.label_file_name,
        },
        "metadata_error": meta_error,
        "accurate_scales": list(meta.accurate_scales) if meta and meta.accurate_scales else None,
        "ops": info["ops"],
        "op_count": sum(info["ops"].values()),
        "macs": info["macs"],
        "runtimes": runtimes(info),
        "mediapipe": mediapipe_verdict(info, meta),
        "task_library": task_library_verdict(info, meta),
    }  # fmt: skip
    if try_import:
        report["pytorch_import"] = _pytorch_import(path)
    return report


def inspect_onnx(path: Path, entry=None) -> dict[str, Any]:
    import json

    from ..errors import require

    onnx = require("onnx", "onnx")
    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as exc:
        raise ModelError(f"{path}: not an ONNX model ({type(exc).__name__})") from None

    def tensors(vals):
        out = []
        for v in vals:
            t = v.type.tensor_type
            shape = [d.dim_value if d.HasField("dim_value") else d.dim_param for d in t.shape.dim]
            dtype = onnx.helper.tensor_dtype_to_np_dtype(t.elem_type).name
            out.append({"name": v.name, "shape": shape, "dtype": dtype, "quantization": None})
        return out

    props = {p.key: p.value for p in proto.metadata_props}
    ops: dict[str, int] = {}
    for n in proto.graph.node:
        ops[n.op_type] = ops.get(n.op_type, 0) + 1
    inputs, outputs = tensors(proto.graph.input), tensors(proto.graph.output)
    for o in outputs:
        o["kind"] = "argmax" if o["dtype"].startswith("int") else "logits"
    meta_labels = None
    if "labels" in props:
        try:
            meta_labels = json.loads(props["labels"])
        except json.JSONDecodeError:
            meta_labels = [s for s in props["labels"].splitlines() if s.strip()]
    classes = len(meta_labels) if meta_labels else (entry.num_classes if entry else None)
    labels, source = _labels(classes, meta_labels, entry)
    norm = (
        {"mean": props["mean"], "std": props.get("std"), "source": "metadata_props",
         "confidence": "sure"}
        if "mean" in props
        else {"mean": [DEEPLAB_MEAN], "std": [DEEPLAB_STD], "source": "inferred",
              "confidence": "guess", "note": "no mean/std in metadata_props"}
    )  # fmt: skip
    return {
        "format": "onnx", "inputs": inputs, "normalization": norm, "outputs": outputs,
        "classes": classes, "labels": labels, "labels_source": source,
        "metadata": props or None, "ops": dict(sorted(ops.items(), key=lambda kv: -kv[1])),
        "accurate_scales": list(declared_scales_text(props["seglite.accurate_scales"], str(path)))
        if "seglite.accurate_scales" in props else None,
        "op_count": len(proto.graph.node), "macs": None,
        "runtimes": [{"runtime": "onnxruntime CPU", "ok": True, "note": "seglite's onnx backend"}],
        "mediapipe": {"loads": False, "works": False, "missing": ["a .tflite file (export it)"],
                      "notes": []},
        "task_library": {"loads": False, "missing": ["a .tflite file (export it)"]},
        "pytorch_import": {"ok": False, "note": "import from the .tflite or use the checkpoint"},
    }  # fmt: skip


def inspect_checkpoint(path: Path, entry=None) -> dict[str, Any]:
    from ..models.checkpoint import load_checkpoint
    from ..models.describe import count_params

    model = load_checkpoint(path)
    cfg = dict(model.config)
    meta = getattr(model, "checkpoint_metadata", {}) or {}
    size = meta.get("seglite.input_size")
    labels = cfg.get("labels")
    labels, source = _labels(model.num_classes, labels if isinstance(labels, list) else None, entry)
    if source is None and isinstance(cfg.get("labels"), str):
        from ..labels import LABEL_SETS

        if cfg["labels"] in LABEL_SETS:
            labels, source = list(LABEL_SETS[cfg["labels"]].names), f"config ({cfg['labels']})"
    shape = [1, 3, *(size or ["H", "W"])]
    return {
        "format": "safetensors",
        "inputs": [{"name": "image", "shape": shape, "dtype": "float32", "quantization": None}],
        "normalization": {"mean": [DEEPLAB_MEAN], "std": [DEEPLAB_STD], "source": "seglite",
                          "confidence": "sure"},  # fmt: skip
        "outputs": [{"name": "logits", "shape": [1, model.num_classes, *shape[2:]],
                     "dtype": "float32", "kind": "logits", "quantization": None}],
        "classes": model.num_classes, "labels": labels, "labels_source": source,
        "metadata": {"config": cfg, "train": meta.get("seglite.train")},
        "accurate_scales": meta.get("seglite.accurate_scales"),
        "ops": {}, "op_count": None, "macs": None, "params": count_params(model),
        "runtimes": [{"runtime": "PyTorch (seglite)", "ok": True, "note": "any output stride"}],
        "mediapipe": {"loads": False, "works": False, "missing": ["a .tflite export"], "notes": []},
        "task_library": {"loads": False, "missing": ["a .tflite export"]},
        "pytorch_import": {"ok": True, "note": "is a seglite checkpoint"},
    }  # fmt: skip


def inspect_model(model: str | Path, *, try_import: bool = True) -> dict[str, Any]:
    """The report for a zoo name or a .tflite/.onnx/.safetensors file."""
    from .. import zoo

    resolved = zoo.resolve(str(model))
    path = Path(resolved.path)
    entry = resolved.entry
    suffix = path.suffix.lower()
    if suffix == ".tflite":
        report = inspect_tflite(path, entry, try_import=try_import)
    elif suffix == ".onnx":
        report = inspect_onnx(path, entry)
    elif suffix == ".safetensors":
        report = inspect_checkpoint(path, entry)
    else:
        raise ModelError(f"{path}: inspect reads .tflite, .onnx and .safetensors files")
    return {"model": str(model), "path": str(path), "size_bytes": path.stat().st_size,
            "zoo": entry.name if entry else None, **report}  # fmt: skip
