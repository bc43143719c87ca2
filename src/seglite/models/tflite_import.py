"""Import the weights of DeepLab TFLite models into the PyTorch DeepLab, by structure.

Every DeepLab file seglite knows imports: the float32 starter and its metadata twin,
Coral's uint8 PASCAL models (513 OS 16, 257 OS 8, depth 1.0 and 0.5), Coral's Cityscapes
MobileNet-EdgeTPU, MLPerf's uint8 ADE20K v3+ (512x512, TF1 asymmetric resizes), and the
MLIR-converted ADE20K v3+ (int8 weights) and COCO-VOC (fp16 weights), whose tensors are
anonymous and whose atrous convs are SPACE_TO_BATCH_ND -> conv -> BATCH_TO_SPACE_ND.

The pipeline, one module per step:
1. ``tflite_graph``: tensors and ops; int8/uint8 (per tensor, per channel), int32 and
   fp16 constants dequantized to float32;
2. ``tflite_units``: the dataflow of whole layers (atrous convs rejoined, unfolded batch
   norm folded, quantization ops dropped, activations implied by quantization kept);
3. ``tflite_structure``: backbone, depth multiplier, output stride, ASPP rates, image
   pooling, decoder, classes, bilinear convention, read from the dataflow alone;
4. ``tflite_copy``: each conv checked against its module (shape, stride, dilation,
   groups, activation, padding) and copied; every conv of the built model must get one,
   every residual connection must be where the model has one.

Where a weight's name carries a TF scope it must point to the module the structure found
(a cross-check, never the source of the mapping). In eval mode the imported model
computes the TFLite function (see ``benchmarks/import_parity.py`` for the numbers).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from ..errors import ModelError, OptionError
from .deeplab import DeepLab, deeplab
from .layers import ConvBNAct
from .tflite_copy import check_and_copy
from .tflite_graph import Graph, read_graph, schema
from .tflite_structure import Structure, recognise, scope_path
from .tflite_units import Units, build_units


def read_structure(path: str | Path, graph: Graph | None = None) -> tuple[Units, Structure]:
    """The layer dataflow and the recognised DeepLab structure of a .tflite file (``graph``:
    the file already read, for callers that need it too)."""
    path = Path(path)
    units = build_units(graph if graph is not None else read_graph(path))
    try:
        return units, recognise(units)
    except ModelError as exc:
        raise ModelError(f"{path.name}: {exc}") from None


def import_tflite(path: str | Path, *, labels: str | None = None) -> tuple[DeepLab, dict[str, Any]]:
    """Build the architecture of a DeepLab .tflite file and load its weights.

    ``labels`` (a label-set key) overrides the guess from the class count. Returns
    ``(model, info)``: the model in eval mode (``model.config`` rebuilds it,
    ``model.import_info`` is kept in checkpoints) and ``info`` with ``config``, ``source``
    (file name), ``sha256``, ``input_size`` (H, W), ``weights`` (stored weight types),
    ``input_quantization`` ((scale, zero point) or None), ``tensors`` (convolutions
    loaded) and ``graph_macs`` (multiply-adds of the graph's convolutions).
    """
    path = Path(path)
    units, structure = read_structure(path)
    config = dict(structure.config)
    if labels is not None:
        config["labels"] = labels
    try:
        model = deeplab(**config)
    except (OptionError, ValueError) as exc:
        raise ModelError(f"{path.name}: inferred architecture is not buildable ({exc})") from None
    _load(model, structure, path)

    convs = [n for n in units.nodes if n.kind == "conv"]
    types = {v: k.lower() for k, v in vars(schema().TensorType).items() if k.isupper()}
    info: dict[str, Any] = {
        "source": path.name,
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        "input_size": list(units.input_shape[1:3]),
        "weights": ",".join(sorted({types.get(n.weight_type, "?") for n in convs})),
        "input_quantization": units.input_quantization,
        "tensors": len(convs),
        "graph_macs": sum(n.macs for n in convs),
    }
    model.import_info = dict(info)
    info["config"] = model.config
    return model.eval(), info


def _load(model: DeepLab, structure: Structure, path: Path) -> None:
    modules = dict(model.named_modules())
    for where, node in structure.assign.items():
        named = [scope_path(n) for n in node.names]
        if any(p is not None and p != where for p in named):
            raise ModelError(
                f"{path.name}: the layer named {node.names[0].split(';')[0]!r} sits where the "
                f"structure has {where}"
            )
        module = modules.get(where)
        if module is None:
            raise ModelError(f"{path.name}: the inferred model has no {where}")
        if where == "head.project":
            node = _reorder_projection(node, structure.concat_order, path)
        check_and_copy(module, node, f"{path.name}: {where}")
    wanted = {
        name for name, m in modules.items()
        if isinstance(m, ConvBNAct) or (isinstance(m, nn.Conv2d) and name == "classifier")
    }  # fmt: skip
    missing = sorted(wanted - set(structure.assign))
    if missing:
        raise ModelError(f"{path.name}: no weights in the graph for {missing[:3]}")
    blocks = getattr(model.backbone, "blocks", [])
    graph_residual = structure.residual
    ours = [b.use_residual for b in blocks]
    if graph_residual != ours:
        raise ModelError(f"{path.name}: residual connections differ from the model's")


def _reorder_projection(node, order: list[str], path: Path):
    """The projection's input channels in our branch order [pool, b0, b1, ...]."""
    ours = (["pool"] if "pool" in order else []) + sorted(
        (k for k in order if k != "pool"), key=lambda k: int(k[1:])
    )
    width = node.weight.shape[1] // len(order)
    if width * len(order) != node.weight.shape[1]:
        raise ModelError(f"{path.name}: ASPP branches of unequal width")
    chunks = {k: node.weight[:, i * width : (i + 1) * width] for i, k in enumerate(order)}
    copy = type(node)(**{**node.__dict__})
    copy.weight = np.ascontiguousarray(np.concatenate([chunks[k] for k in ours], axis=1))
    return copy
