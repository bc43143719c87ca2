"""Import the weights of official DeepLab TFLite models into the PyTorch DeepLab.

Supported: graphs exported from TF DeepLab with MobileNetV2 and an ASPP head whose
tensors keep their TF scope names, i.e.
- ``deeplabv3_257_mv_gpu.tflite`` (the float32 "starter" model, and its metadata twin
  ``lite-model_deeplabv3_1_metadata_2.tflite``),
- Coral's ``deeplabv3_mnv2_pascal_quant.tflite`` and ``..._dm05_pascal_quant.tflite``
  (uint8 quantization-aware models; their int8/uint8 weights and int32 biases are
  dequantized to float32).

The architecture is read from the graph, not assumed: depth multiplier from the stem's
width, output stride from the depthwise dilations, ASPP rates from the ``aspp<k>`` convs,
classes from ``logits/semantic``, resize convention from the RESIZE_BILINEAR options.
Each TFLite convolution is matched to a module by its TF scope and checked against it
(shape, stride, dilation, fused activation) before its weights are copied, and every
module of the built model must receive weights, so a graph that differs anywhere is
refused with a ``ModelError`` instead of being imported wrong.

TFLite folds batch norm into the convolutions. The import "unfolds" it into identity
batch norm layers (mean 0, variance 1, scale sqrt(1 + eps), shift = the folded bias): in
eval mode the model computes exactly the TFLite function. Before fine-tuning in train
mode, call ``calibrate_batchnorm(model, images)`` so that the running statistics (and
the matching scale/shift) describe real activations; the function is unchanged in eval
mode and train-mode batch statistics then start close to it.

Not importable, and why:
- ``lite-model_deeplabv3-mobilenetv2-ade20k_1_default_1.tflite`` and
  ``mobilenetv2-dm05-coco_fp16_brainypi.tflite`` were converted by the MLIR converter:
  their weights are anonymous (``std.constant``) and atrous convolutions are unrolled
  into SPACE_TO_BATCH_ND / BATCH_TO_SPACE_ND, so there is no scope to match against.
- ``deeplab_mobilenet_edgetpu_slim_cityscapes_quant.tflite`` has a MobileNet-EdgeTPU
  backbone, which seglite does not implement.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import ModelError
from ..labels import default_label_set
from ..tflite_file import builtin_code
from .backbones.mobilenetv2 import mobilenet_widths
from .deeplab import DeepLab, deeplab
from .layers import ConvBNAct

_ACT_CODES = {nn.ReLU: 1, nn.ReLU6: 3}  # TFLite ActivationFunctionType
_ACT_NAMES = {0: "none", 1: "relu", 2: "relu_n1_to_1", 3: "relu6"}


def _schema():
    try:
        from ai_edge_litert import schema_py_generated as schema
    except ImportError as exc:  # pragma: no cover - depends on the installed LiteRT
        raise ModelError(
            "reading .tflite graphs needs ai-edge-litert with schema_py_generated "
            "(pip install -U ai-edge-litert)"
        ) from exc
    return schema


@dataclass
class _Tensor:
    index: int
    name: str
    shape: tuple[int, ...]
    dtype: int
    data: np.ndarray | None
    scale: np.ndarray | None
    zero_point: np.ndarray | None
    quantized_dimension: int


@dataclass
class _Op:
    index: int
    kind: str
    options: dict[str, Any]
    inputs: list[int]
    outputs: list[int]


@dataclass
class _Graph:
    tensors: list[_Tensor]
    ops: list[_Op]
    inputs: list[int]
    outputs: list[int]
    producer: dict[int, _Op] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for op in self.ops:
            for t in op.outputs:
                self.producer[t] = op

    def constant(self, index: int) -> np.ndarray:
        """Float32 value of a constant tensor, dequantizing int8/uint8/int32/float16 data
        and following DEQUANTIZE ops back to their constant input."""
        t = self.tensors[index]
        if t.data is None:
            op = self.producer.get(index)
            if op is not None and op.kind == "DEQUANTIZE":
                return self.constant(op.inputs[0])
            raise ModelError(f"tensor {t.name!r} is not a constant")
        return _dequantize(t)


def _dequantize(t: _Tensor) -> np.ndarray:
    schema = _schema()
    types = schema.TensorType
    np_types = {
        types.FLOAT32: np.float32,
        types.FLOAT16: np.float16,
        types.INT32: np.int32,
        types.UINT8: np.uint8,
        types.INT8: np.int8,
    }
    if t.dtype not in np_types:
        raise ModelError(f"tensor {t.name!r} has an unsupported type ({t.dtype})")
    raw = np.frombuffer(t.data.tobytes(), dtype=np_types[t.dtype]).reshape(t.shape)
    if t.dtype in (types.FLOAT32, types.FLOAT16):
        return raw.astype(np.float32)
    if t.scale is None or len(t.scale) == 0:
        raise ModelError(f"integer tensor {t.name!r} has no quantization scale")
    shape = [1] * raw.ndim
    if len(t.scale) > 1:
        shape[t.quantized_dimension] = len(t.scale)
    scale = np.asarray(t.scale, np.float64).reshape(shape)
    zero = np.asarray(t.zero_point if t.zero_point is not None else 0, np.float64)
    zero = zero.reshape(shape) if zero.size > 1 else zero
    return ((raw.astype(np.float64) - zero) * scale).astype(np.float32)


def read_graph(path: str | Path) -> _Graph:
    """The first subgraph of a .tflite file: tensors (with constant data) and ops."""
    path = Path(path)
    try:
        buf = path.read_bytes()
    except OSError as exc:
        raise ModelError(f"cannot read {path}: {exc.strerror or exc}") from None
    if len(buf) < 8 or buf[4:8] != b"TFL3":
        raise ModelError(f"{path}: not a TFLite model (no TFL3 identifier)")
    schema = _schema()
    try:
        model = schema.ModelT.InitFromObj(schema.Model.GetRootAs(buf, 0))
    except Exception as exc:
        raise ModelError(f"{path}: corrupt TFLite flatbuffer ({exc})") from None
    if not model.subgraphs:
        raise ModelError(f"{path}: the model has no subgraph")
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    g = model.subgraphs[0]
    tensors = []
    for i, t in enumerate(g.tensors):
        b = model.buffers[t.buffer] if t.buffer < len(model.buffers) else None
        data = None
        if b is not None and b.data is not None and len(b.data):
            data = np.asarray(b.data, dtype=np.uint8)
        elif b is not None and getattr(b, "offset", 0) > 1:  # large-model layout
            data = np.frombuffer(buf, np.uint8, count=b.size, offset=b.offset)
        q = t.quantization
        tensors.append(
            _Tensor(
                index=i,
                name=(t.name or b"").decode("utf-8", "replace"),
                shape=tuple(int(s) for s in (t.shape if t.shape is not None else ())),
                dtype=t.type,
                data=data,
                scale=None if q is None or q.scale is None else np.asarray(q.scale),
                zero_point=None if q is None or q.zeroPoint is None else np.asarray(q.zeroPoint),
                quantized_dimension=0 if q is None else int(q.quantizedDimension),
            )
        )
    ops = []
    for i, op in enumerate(g.operators):
        kind = names.get(builtin_code(model, op), "CUSTOM")
        opts = vars(op.builtinOptions) if op.builtinOptions is not None else {}
        ops.append(_Op(i, kind, dict(opts), list(op.inputs), list(op.outputs)))
    return _Graph(tensors, ops, list(g.inputs), list(g.outputs))


# ----------------------------------------------------------------------------- mapping

_BLOCK = re.compile(r"^MobilenetV2/expanded_conv(?:_(\d+))?/(expand|depthwise|project)$")
_ASPP = re.compile(r"^aspp(\d+)(?:_(depthwise|pointwise))?$")


def _scope(name: str) -> str:
    """TF scope of a weight tensor: 'MobilenetV2/Conv/weights' -> 'MobilenetV2/Conv';
    Coral's fused names 'aspp0/Conv2D_Fold;aspp0/weights_quant/...' -> 'aspp0'."""
    first = name.split(";")[0]
    return first.rsplit("/", 1)[0] if "/" in first else first


def _module_path(scope: str) -> str | None:
    if scope == "MobilenetV2/Conv":
        return "backbone.stem"
    m = _BLOCK.match(scope)
    if m:
        return f"backbone.blocks.{int(m.group(1) or 0)}.{m.group(2)}"
    m = _ASPP.match(scope)
    if m:
        path = f"head.branches.{int(m.group(1))}"
        return f"{path}.{m.group(2)}" if m.group(2) else path
    return {
        "image_pooling": "head.pooling.conv",
        "concat_projection": "head.project",
        "logits/semantic": "classifier",
    }.get(scope)


@dataclass
class _Conv:
    op: _Op
    scope: str
    path: str
    weight: np.ndarray  # torch layout (out, in/groups, kh, kw)
    bias: np.ndarray | None


def _conv_ops(graph: _Graph) -> list[_Conv]:
    convs = []
    for op in graph.ops:
        if op.kind not in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            continue
        wt = graph.tensors[op.inputs[1]]
        scope = _scope(wt.name)
        path = _module_path(scope)
        if path is None:
            raise ModelError(
                f"unsupported layer {scope!r}: only TF DeepLab MobileNetV2 graphs with "
                "their TF scope names can be imported"
            )
        w = graph.constant(op.inputs[1])
        # TFLite: conv (O, kh, kw, I); depthwise (1, kh, kw, C*M). Torch: (O, I/g, kh, kw).
        w = w.transpose(3, 0, 1, 2) if op.kind == "DEPTHWISE_CONV_2D" else w.transpose(0, 3, 1, 2)
        bias = graph.constant(op.inputs[2]) if len(op.inputs) > 2 and op.inputs[2] >= 0 else None
        convs.append(_Conv(op, scope, path, np.ascontiguousarray(w), bias))
    if not convs:
        raise ModelError("the graph has no convolutions")
    paths = [c.path for c in convs]
    dup = {p for p in paths if paths.count(p) > 1}
    if dup:
        raise ModelError(f"the graph has several convolutions for {sorted(dup)[0]}")
    return convs


def _infer_config(graph: _Graph, convs: list[_Conv], path: Path) -> dict[str, Any]:
    by_scope = {c.scope: c for c in convs}
    for needed in ("MobilenetV2/Conv", "aspp0", "logits/semantic"):
        if needed not in by_scope:
            raise ModelError(f"{path.name}: not a DeepLab MobileNetV2 graph (no {needed!r})")
    depth_multiplier = _depth_multiplier(by_scope)
    max_rate = max(
        c.op.options.get("dilationHFactor", 1) for c in convs if c.path.startswith("backbone")
    )
    output_stride = 32 // max_rate
    if output_stride not in (8, 16, 32) or 32 % max_rate:
        raise ModelError(f"{path.name}: backbone dilation {max_rate} fits no output stride")
    k, rates = 1, []
    while f"aspp{k}" in by_scope or f"aspp{k}_depthwise" in by_scope:
        atrous = by_scope.get(f"aspp{k}") or by_scope[f"aspp{k}_depthwise"]
        rates.append(int(atrous.op.options.get("dilationHFactor", 1)))
        k += 1
    separable = any(s.endswith("_depthwise") for s in by_scope)
    num_classes = by_scope["logits/semantic"].weight.shape[0]
    resizes = [op for op in graph.ops if op.kind == "RESIZE_BILINEAR"]
    align_corners = bool(resizes[-1].options.get("alignCorners", False)) if resizes else True
    labels = default_label_set(num_classes).key
    config: dict[str, Any] = dict(
        version="v3",
        backbone="mobilenet_v2",
        num_classes=num_classes,
        output_stride=output_stride,
        depth_multiplier=depth_multiplier,
        atrous_rates=rates,
        image_pooling="image_pooling" in by_scope,
        aspp_separable=separable,
        labels=labels if not labels.startswith("generic") else None,
        align_corners=align_corners,
    )
    # The ASPP width and dropout of a float TF model are not in the graph beyond shapes.
    config["aspp_channels"] = by_scope["aspp0"].weight.shape[0]
    return config


def _depth_multiplier(by_scope: dict[str, _Conv]) -> float:
    """The multiplier whose MobileNetV2 channel plan gives the graph's widths."""
    widths = [by_scope["MobilenetV2/Conv"].weight.shape[0]]
    k = 0
    while (scope := f"MobilenetV2/expanded_conv{'_' + str(k) if k else ''}/project") in by_scope:
        widths.append(by_scope[scope].weight.shape[0])
        k += 1
    candidates = (1.0, 0.5, 0.75, 0.35, 1.3, 1.4, 0.25, widths[0] / 32)
    for dm in candidates:
        if mobilenet_widths(dm)[: len(widths)] == widths:
            return dm
    raise ModelError(f"MobileNetV2 widths {widths} fit no depth multiplier")


def _concat_order(graph: _Graph, convs: list[_Conv]) -> list[str] | None:
    """Scopes feeding concat_projection's input, in the graph's channel order."""
    proj = next((c for c in convs if c.scope == "concat_projection"), None)
    if proj is None:
        return None
    op = graph.producer.get(proj.op.inputs[0])
    while op is not None and op.kind in ("QUANTIZE", "DEQUANTIZE"):
        op = graph.producer.get(op.inputs[0])
    if op is None or op.kind != "CONCATENATION":
        raise ModelError("concat_projection is not fed by a concatenation")
    order = []
    for t in op.inputs:
        src = graph.producer.get(t)
        while src is not None and src.kind not in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            src = graph.producer.get(src.inputs[0])
        if src is None:
            raise ModelError("cannot trace an ASPP branch back to its convolution")
        scope = _scope(graph.tensors[src.inputs[1]].name)
        order.append(re.sub(r"_(depthwise|pointwise)$", "", scope))
    return order


def _check_and_copy(module: nn.Module, conv: _Conv) -> None:
    opts = conv.op.options
    if isinstance(module, ConvBNAct):
        target, act = module.conv, module[-1] if len(module) > 2 else None
    elif isinstance(module, nn.Conv2d):
        target, act = module, None
    else:
        raise ModelError(f"{conv.scope}: maps to {type(module).__name__}, not a convolution")
    problems = []
    if tuple(target.weight.shape) != conv.weight.shape:
        problems.append(f"weight {conv.weight.shape} vs {tuple(target.weight.shape)}")
    stride = (opts.get("strideH", 1), opts.get("strideW", 1))
    if tuple(target.stride) != stride:
        problems.append(f"stride {stride} vs {tuple(target.stride)}")
    dilation = (opts.get("dilationHFactor", 1), opts.get("dilationWFactor", 1))
    if tuple(target.dilation) != dilation:
        problems.append(f"dilation {dilation} vs {tuple(target.dilation)}")
    fused = opts.get("fusedActivationFunction", 0)
    expected = _ACT_CODES.get(type(act), 0) if act is not None else 0
    if fused != expected:
        problems.append(f"activation {_ACT_NAMES.get(fused, fused)} vs {_ACT_NAMES[expected]}")
    if opts.get("padding", 0) != 0 and max(target.kernel_size) > 1:  # 0 = SAME
        problems.append("VALID padding")
    if problems:
        raise ModelError(f"{conv.scope} does not match the model: {'; '.join(problems)}")
    bias = conv.bias if conv.bias is not None else np.zeros(conv.weight.shape[0], np.float32)
    with torch.no_grad():
        target.weight.copy_(torch.from_numpy(conv.weight))
        if isinstance(module, ConvBNAct):
            bn = module.bn
            bn.running_mean.zero_()
            bn.running_var.fill_(1.0)
            bn.weight.fill_(math.sqrt(1.0 + bn.eps))
            bn.bias.copy_(torch.from_numpy(bias))
        elif target.bias is not None:
            target.bias.copy_(torch.from_numpy(bias))
        else:
            raise ModelError(f"{conv.scope}: the model's conv has no bias to load")


def import_tflite(path: str | Path) -> tuple[DeepLab, dict[str, Any]]:
    """Build the architecture of a TF DeepLab .tflite file and load its weights.

    Returns ``(model, info)``: the model in eval mode (``model.config`` rebuilds it,
    ``model.import_info`` is kept in checkpoints) and ``info`` with ``config``,
    ``source`` (file name), ``sha256``, ``input_size`` (H, W), ``weights`` (the stored
    weight type), ``input_quantization`` ((scale, zero point) or None) and ``tensors``
    (number of convolutions loaded).
    """
    path = Path(path)
    graph = read_graph(path)
    convs = _conv_ops(graph)
    config = _infer_config(graph, convs, path)
    try:
        model = deeplab(**config)
    except Exception as exc:
        raise ModelError(f"{path.name}: inferred architecture is not buildable ({exc})") from None

    order = _concat_order(graph, convs)
    ours = (["image_pooling"] if config["image_pooling"] else []) + [
        f"aspp{k}" for k in range(1 + len(config["atrous_rates"]))
    ]
    modules = dict(model.named_modules())
    loaded = set()
    for conv in convs:
        if conv.scope == "concat_projection" and order is not None:
            if sorted(order) != sorted(ours):
                raise ModelError(f"ASPP branches {order} do not match the model's {ours}")
            width = conv.weight.shape[1] // len(order)
            chunks = {s: conv.weight[:, i * width : (i + 1) * width] for i, s in enumerate(order)}
            conv.weight = np.ascontiguousarray(np.concatenate([chunks[s] for s in ours], axis=1))
        module = modules.get(conv.path)
        if module is None:
            raise ModelError(f"{conv.scope}: the inferred model has no {conv.path}")
        _check_and_copy(module, conv)
        loaded.add(conv.path)

    expected = {
        name
        for name, m in model.named_modules()
        if isinstance(m, ConvBNAct) or (isinstance(m, nn.Conv2d) and name == "classifier")
    }
    missing = sorted(expected - loaded)
    if missing:
        raise ModelError(f"{path.name}: no weights in the graph for {missing[:3]}")

    inp = graph.tensors[graph.inputs[0]]
    schema = _schema()
    quant = None
    if inp.dtype != schema.TensorType.FLOAT32 and inp.scale is not None and len(inp.scale):
        quant = (float(inp.scale[0]), int(inp.zero_point[0]))
    weight_types = {graph.tensors[c.op.inputs[1]].dtype for c in convs}
    type_names = {v: k.lower() for k, v in vars(schema.TensorType).items() if k.isupper()}
    info: dict[str, Any] = {
        "source": path.name,
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        "input_size": list(inp.shape[1:3]),
        "weights": ",".join(sorted(type_names.get(t, str(t)) for t in weight_types)),
        "input_quantization": quant,
        "tensors": len(convs),
    }
    model.import_info = dict(info)
    info["config"] = model.config
    return model.eval(), info


@torch.no_grad()
def calibrate_batchnorm(model: nn.Module, images: Iterable[torch.Tensor]) -> nn.Module:
    """Give the identity batch norms of an imported model real statistics.

    For each BatchNorm2d with running mean ``m`` and variance ``v`` measured on
    ``images`` (batches of normalized NCHW tensors), sets scale ``sqrt(v + eps)`` and shift
    ``beta + m``: eval-mode outputs stay the same (up to rounding), while train-mode batch
    statistics now start near the imported function. Returns the model, in eval mode.
    """
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    sums = {bn: [0.0, 0.0, 0] for bn in bns}

    def hook(bn, inputs, _output):
        # The BN input, un-normalized: what the folded conv computes before its bias.
        x = inputs[0].double()
        dims = [0, 2, 3]
        s = sums[bn]
        s[0] = s[0] + x.sum(dims)
        s[1] = s[1] + (x * x).sum(dims)
        s[2] += x.numel() // x.shape[1]

    model.eval()
    handles = [bn.register_forward_hook(hook) for bn in bns]
    try:
        count = 0
        for batch in images:
            model(batch)
            count += 1
    finally:
        for h in handles:
            h.remove()
    if count == 0:
        raise ValueError("calibrate_batchnorm needs at least one batch of images")
    for bn, (s1, s2, n) in sums.items():
        mean = s1 / n
        var = (s2 / n - mean * mean).clamp_min(0)
        # Current affine map: y = (x - m0) / sqrt(v0 + eps) * g0 + b0 = a * x + c.
        a = bn.weight.double() / torch.sqrt(bn.running_var.double() + bn.eps)
        c = bn.bias.double() - a * bn.running_mean.double()
        std = torch.sqrt(var + bn.eps)
        bn.running_mean.copy_(mean)
        bn.running_var.copy_(var)
        bn.weight.copy_(a * std)
        bn.bias.copy_(a * mean + c)
    return model
