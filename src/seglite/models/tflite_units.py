"""A TFLite graph rewritten as the dataflow of whole layers, whatever the converter did.

Converters write the same layer in several ways; this module undoes them so that the
structure recogniser sees one form:
- a dilated conv written as SPACE_TO_BATCH_ND -> VALID conv -> BATCH_TO_SPACE_ND (the MLIR
  converter) becomes one conv with that dilation, after checking that the paddings and
  crops are exactly those of a SAME dilated conv;
- batch norm left unfolded as MUL and ADD by a per-channel constant is folded into the
  conv before it, and the ADD's fused activation becomes the conv's;
- QUANTIZE / DEQUANTIZE of activations are dropped; weights behind DEQUANTIZE are read
  as float (fp16, int8);
- an activation folded into the output quantization (fused NONE, but the uint8/int8
  range starts at exactly 0: MLPerf's graph) is recorded as an implied clamp ``[0, max]``;
- resizes to the size they already have (identity) are skipped.

The result is a list of ``Node`` in graph order: input, conv, add, concat, pool (global
average), broadcast (TILE or resize of a 1x1 map), resize, argmax/softmax/logistic.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import ModelError
from .tflite_graph import Graph, schema

ACT_NAMES = {0: "none", 1: "relu", 2: "relu_n1_to_1", 3: "relu6"}


@dataclass
class Node:
    """One layer. ``inputs`` are node ids; ``shape`` is NHWC of the output."""

    id: int
    kind: str
    inputs: list[int]
    shape: tuple[int, ...]
    ops: list[int] = field(default_factory=list)  # TFLite op indices it came from
    # conv only
    weight: np.ndarray | None = None  # torch layout (out, in / groups, kh, kw)
    bias: np.ndarray | None = None
    stride: int = 1
    dilation: int = 1
    groups: int = 1
    act: str = "none"  # none | relu | relu6 | clamp (implied by quantization, see clamp_max)
    clamp_max: float | None = None
    padding: str = "same"
    names: list[str] = field(default_factory=list)  # weight tensor names, for cross-checks
    weight_type: int | None = None
    # resize only
    mode: str | None = None
    # an atrous conv between its SPACE_TO_BATCH_ND and BATCH_TO_SPACE_ND: (rate, _, shape)
    s2b: tuple | None = None

    @property
    def kernel(self) -> int:
        return int(self.weight.shape[-1]) if self.weight is not None else 0

    @property
    def out_channels(self) -> int:
        return int(self.shape[-1])

    @property
    def depthwise(self) -> bool:
        return self.kind == "conv" and self.groups > 1

    @property
    def macs(self) -> int:
        if self.kind != "conv":
            return 0
        n, h, w, c = self.shape
        return n * h * w * c * int(np.prod(self.weight.shape[1:]))


@dataclass
class Units:
    nodes: list[Node]
    output: int  # node id of the graph's output
    input_shape: tuple[int, ...]
    input_dtype: int
    input_quantization: tuple[float, int] | None

    def consumers(self, node_id: int) -> list[Node]:
        return [n for n in self.nodes if node_id in n.inputs]


def _resize_mode(options: dict[str, Any]) -> str:
    if options.get("alignCorners"):
        return "align_corners"
    return "half_pixel" if options.get("halfPixelCenters") else "asymmetric"


def _implied_clamp(graph: Graph, index: int) -> float | None:
    """Upper end of the clamp an integer output's quantization implies, when it starts at 0."""
    t = graph.tensors[index]
    types = schema().TensorType
    limits = {types.UINT8: (0, 255), types.INT8: (-128, 127)}
    if t.dtype not in limits or t.scale is None or len(t.scale) != 1:
        return None
    lo, hi = limits[t.dtype]
    zero = int(t.zero_point[0]) if t.zero_point is not None and len(t.zero_point) else 0
    if zero != lo:
        return None
    return float((hi - zero) * t.scale[0])


def build_units(graph: Graph) -> Units:
    """Walk the ops in graph (topological) order and build the layer dataflow."""
    if len(graph.inputs) != 1 or len(graph.outputs) != 1:
        raise ModelError("only graphs with one input and one output can be imported")
    types = schema().TensorType
    inp = graph.tensors[graph.inputs[0]]
    quant = None
    if inp.dtype != types.FLOAT32 and inp.scale is not None and len(inp.scale):
        quant = (float(inp.scale[0]), int(inp.zero_point[0]))
    nodes: list[Node] = [Node(0, "input", [], tuple(inp.shape))]
    at: dict[int, int] = {graph.inputs[0]: 0}  # tensor -> node id
    pending_s2b: dict[int, tuple[int, list[int], tuple]] = {}  # tensor -> (node, pads, shape)

    def node_of(tensor: int, op) -> int:
        if tensor not in at:
            raise ModelError(f"op {op.index} ({op.kind}) reads a tensor the importer cannot follow")
        return at[tensor]

    def new(kind: str, inputs: list[int], out_tensor: int, op, **kw) -> Node:
        node = Node(
            len(nodes), kind, inputs, tuple(graph.tensors[out_tensor].shape), [op.index], **kw
        )
        nodes.append(node)
        at[out_tensor] = node.id
        return node

    for op in graph.ops:
        k, ins, out = op.kind, op.inputs, op.outputs[0] if op.outputs else -1
        if k == "DEQUANTIZE" and graph.is_constant(ins[0]):
            continue  # a weight: read through constant()
        if k in ("QUANTIZE", "DEQUANTIZE") or (k == "RESHAPE" and _flat(graph, op)):
            at[out] = node_of(ins[0], op)
            continue
        if k == "SPACE_TO_BATCH_ND":
            block, pads = graph.ints(ins[1]), graph.ints(ins[2])
            if len(set(block)) != 1:
                raise ModelError(f"op {op.index}: SPACE_TO_BATCH_ND with unequal blocks {block}")
            src = node_of(ins[0], op)
            pending_s2b[out] = (src, [block[0], *pads], nodes[src].shape)
            continue
        if k in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            node = _conv(graph, op, nodes, at, pending_s2b, node_of, new)
            continue
        if k == "BATCH_TO_SPACE_ND":
            node = nodes[node_of(ins[0], op)]
            if node.kind != "conv" or node.s2b is None:
                raise ModelError(f"op {op.index}: BATCH_TO_SPACE_ND not after an atrous conv")
            rate, _pads, shape = node.s2b
            block, crops = graph.ints(ins[1]), graph.ints(ins[2])
            out_shape = tuple(graph.tensors[out].shape)
            if block[0] != rate or crops[0] != 0 or crops[2] != 0 or out_shape[1:3] != shape[1:3]:
                raise ModelError(
                    f"op {op.index}: BATCH_TO_SPACE_ND does not undo its SPACE_TO_BATCH_ND"
                )
            node.s2b = None
            node.shape = out_shape
            node.ops.append(op.index)
            at[out] = node.id
            continue
        if k in ("MUL", "ADD") and any(graph.is_constant(i) for i in ins[:2]):
            const = next(i for i in ins[:2] if graph.is_constant(i))
            src = nodes[node_of(next(i for i in ins[:2] if i != const), op)]
            value = graph.constant(const).reshape(-1)
            if src.kind != "conv" or len(src.ops) and len(graph_consumers(graph, op, src)) > 1:
                raise ModelError(
                    f"op {op.index}: {k} by a constant that is not a folded batch norm"
                )
            if value.size not in (1, src.out_channels):
                raise ModelError(f"op {op.index}: {k} by a constant of {value.size} values")
            if src.act != "none":
                raise ModelError(f"op {op.index}: {k} after an activation cannot be folded")
            if src.bias is None:
                src.bias = np.zeros(src.out_channels, np.float32)
            if k == "MUL":
                src.weight = src.weight * value.reshape(-1, 1, 1, 1)
                src.bias = src.bias * value
            else:
                src.bias = src.bias + value
            src.act = ACT_NAMES.get(op.options.get("fusedActivationFunction", 0), "?")
            src.ops.append(op.index)
            at[out] = src.id
            _set_clamp(graph, src, out)
            continue
        if k == "ADD":
            a, b = node_of(ins[0], op), node_of(ins[1], op)
            new(
                "add",
                [a, b],
                out,
                op,
                act=ACT_NAMES.get(op.options.get("fusedActivationFunction", 0), "?"),
            )
            continue
        if k == "CONCATENATION":
            axis = op.options.get("axis", -1)
            if axis not in (-1, 3):
                raise ModelError(f"op {op.index}: concatenation along axis {axis}, not channels")
            new("concat", [node_of(i, op) for i in ins], out, op)
            continue
        if k in ("AVERAGE_POOL_2D", "MEAN"):
            src = node_of(ins[0], op)
            shape = tuple(graph.tensors[out].shape)
            if k == "MEAN" and sorted(graph.ints(ins[1])) != [1, 2]:
                raise ModelError(f"op {op.index}: MEAN over axes other than height and width")
            if shape[1:3] != (1, 1):
                raise ModelError(f"op {op.index}: {k} that is not a global average")
            new("pool", [src], out, op)
            continue
        if k in ("RESIZE_BILINEAR", "TILE"):
            src = node_of(ins[0], op)
            shape = tuple(graph.tensors[out].shape)
            if shape == nodes[src].shape:
                at[out] = src  # identity resize
                continue
            if nodes[src].shape[1:3] == (1, 1):
                new("broadcast", [src], out, op)
            elif k == "TILE":
                raise ModelError(f"op {op.index}: TILE of a map larger than 1x1")
            else:
                new("resize", [src], out, op, mode=_resize_mode(op.options))
            continue
        if k in ("ARG_MAX", "SOFTMAX", "LOGISTIC"):
            new(k.lower().replace("_", ""), [node_of(ins[0], op)], out, op)
            continue
        raise ModelError(f"op {op.index} ({k}) is not part of a DeepLab graph the importer knows")
    if graph.outputs[0] not in at:
        raise ModelError("the graph's output is not reached from its input")
    return Units(nodes, at[graph.outputs[0]], tuple(inp.shape), inp.dtype, quant)


def _flat(graph: Graph, op) -> bool:
    """A RESHAPE that only drops 1x1 spatial dims (a classifier's logits): no change."""
    a, b = graph.tensors[op.inputs[0]].shape, graph.tensors[op.outputs[0]].shape
    return [d for d in a if d != 1] == [d for d in b if d != 1]


def graph_consumers(graph: Graph, op, node: Node) -> list:
    """Ops reading the tensor ``op`` folds into ``node`` (a folded op must be its only reader)."""
    read = [t for t in op.inputs if not graph.is_constant(t)]
    return [o for o in graph.ops if any(t in o.inputs for t in read)]


def _set_clamp(graph: Graph, node: Node, out_tensor: int) -> None:
    if node.act == "none":
        top = _implied_clamp(graph, out_tensor)
        if top is not None:
            node.act, node.clamp_max = "clamp", top


def _conv(graph: Graph, op, nodes, at, pending_s2b, node_of, new) -> Node:
    ins, out, opts = op.inputs, op.outputs[0], op.options
    w = graph.constant(ins[1])
    depthwise = op.kind == "DEPTHWISE_CONV_2D"
    if depthwise:
        if opts.get("depthMultiplier", 1) not in (0, 1):
            raise ModelError(f"op {op.index}: depthwise conv with a channel multiplier")
        w = w.transpose(3, 0, 1, 2)  # (1, kh, kw, C) -> (C, 1, kh, kw)
    else:
        w = w.transpose(0, 3, 1, 2)  # (O, kh, kw, I) -> (O, I, kh, kw)
    bias = graph.constant(ins[2]) if len(ins) > 2 and ins[2] >= 0 else None
    dilation = int(opts.get("dilationHFactor", 1))
    if opts.get("dilationWFactor", 1) != dilation or opts.get("strideW", 1) != opts.get(
        "strideH", 1
    ):
        raise ModelError(f"op {op.index}: convolutions with unequal H/W stride or dilation")
    padding = "valid" if opts.get("padding", 0) == 1 else "same"
    s2b = pending_s2b.pop(ins[0], None)
    if s2b is not None:
        src, (rate, top, bottom, left, right), shape = s2b
        k = w.shape[-1]
        need = rate * (k - 1) // 2
        if padding != "valid" or opts.get("strideH", 1) != 1 or dilation != 1:
            raise ModelError(f"op {op.index}: SPACE_TO_BATCH_ND before a conv that is not VALID")
        if top != need or left != need or bottom < need or right < need:
            raise ModelError(
                f"op {op.index}: SPACE_TO_BATCH_ND paddings are not a SAME atrous conv"
            )
        dilation, padding = rate, "same"
    else:
        src = node_of(ins[0], op)
    cin = nodes[src].shape[-1]
    groups = cin if depthwise else 1
    if depthwise and w.shape[0] != cin:
        raise ModelError(
            f"op {op.index}: depthwise conv with {w.shape[0]} outputs for {cin} inputs"
        )
    if not depthwise and w.shape[1] != cin:
        raise ModelError(f"op {op.index}: conv expects {w.shape[1]} channels, gets {cin}")
    node = new(
        "conv", [src], out, op,
        weight=np.ascontiguousarray(w, dtype=np.float32), bias=bias,
        stride=int(opts.get("strideH", 1)), dilation=dilation, groups=groups,
        act=ACT_NAMES.get(opts.get("fusedActivationFunction", 0), "?"), padding=padding,
        names=[graph.tensors[ins[1]].name], weight_type=_weight_type(graph, ins[1]),
    )  # fmt: skip
    node.s2b = (dilation, None, nodes[src].shape) if s2b is not None else None
    _set_clamp(graph, node, out)
    return node


def _weight_type(graph: Graph, index: int) -> int:
    op = graph.producer.get(index)
    if graph.tensors[index].data is None and op is not None and op.kind == "DEQUANTIZE":
        return graph.tensors[op.inputs[0]].dtype
    return graph.tensors[index].dtype
