"""Facts read from a .tflite file: tensors, ops, multiply-adds, metadata, output kind.

Everything comes from the flatbuffer itself (the schema's object API, as ``tflite_file``
reads it), so a file nobody documented still says what it takes and what it gives.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ModelError
from ..tflite_file import builtin_code, ints, per_tensor_quantization, unpack_model


def _names(enum) -> dict[int, str]:
    return {v: k for k, v in vars(enum).items() if k.isupper()}


def _tensor(t, types: dict[int, str]) -> dict[str, Any]:
    q = per_tensor_quantization(t)
    return {
        "name": (t.name.decode() if isinstance(t.name, bytes) else t.name) or "",
        "shape": ints(t.shape),
        "dtype": types.get(t.type, str(t.type)).lower(),
        "quantization": None if q is None else {"scale": q[0], "zero_point": q[1]},
    }


def _macs(op_name: str, ins: list, out, tensors) -> int:
    """Multiply-adds of one op from its static shapes (0 where the op has none)."""
    try:
        oshape = ints(tensors[out].shape)
        if op_name in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            w = ints(tensors[ins[1]].shape)  # conv [O, kh, kw, I]; depthwise [1, kh, kw, O]
            per = w[1] * w[2] * (w[3] if op_name == "CONV_2D" else 1)
            return int(np.prod(oshape)) * per
        if op_name == "FULLY_CONNECTED":
            w = ints(tensors[ins[1]].shape)
            return int(np.prod(oshape)) * w[-1]
        if op_name == "TRANSPOSE_CONV":
            w = ints(tensors[ins[1]].shape)  # [O, kh, kw, I]
            return int(np.prod(oshape)) * w[1] * w[2] * w[3]
    except (IndexError, TypeError):
        return 0
    return 0


def read_tflite(path: Path) -> dict[str, Any]:
    """Inputs, outputs, op counts, MACs and the op that makes each output."""
    from ai_edge_litert import schema_py_generated as schema

    data = path.read_bytes()
    try:
        model = unpack_model(data)
    except ModelError:
        raise
    except Exception as exc:  # flatbuffers raises whatever a bad offset leads to
        raise ModelError(f"{path}: not a TFLite model ({type(exc).__name__})") from None
    if not model.subgraphs:
        raise ModelError(f"{path}: TFLite model without a subgraph")
    ops_by_code = _names(schema.BuiltinOperator)
    types = _names(schema.TensorType)
    g = model.subgraphs[0]
    tensors = g.tensors or []
    counts: Counter = Counter()
    macs = 0
    producer: dict[int, str] = {}
    custom = []
    for op in g.operators or []:
        code = builtin_code(model, op)
        name = ops_by_code.get(code, str(code))
        if name == "CUSTOM":
            cc = model.operatorCodes[op.opcodeIndex].customCode
            name = f"CUSTOM:{cc.decode() if isinstance(cc, bytes) else cc}"
            custom.append(name)
        counts[name] += 1
        ins, outs = ints(op.inputs), ints(op.outputs)
        if outs:
            macs += _macs(name, ins, outs[0], tensors)
            for o in outs:
                producer[o] = name
    inputs = [_tensor(tensors[i], types) for i in ints(g.inputs)]
    outputs = []
    for i in ints(g.outputs):
        t = _tensor(tensors[i], types)
        t["produced_by"] = producer.get(i)
        outputs.append(t)
    first_consumer = None
    in_idx = ints(g.inputs)[0] if ints(g.inputs) else None
    for op in g.operators or []:
        if in_idx is not None and in_idx in ints(op.inputs):
            first_consumer = ops_by_code.get(builtin_code(model, op))
            break
    return {
        "inputs": inputs, "outputs": outputs, "ops": dict(counts.most_common()),
        "macs": int(macs), "custom_ops": custom, "first_op": first_consumer,
        "subgraphs": len(model.subgraphs), "bytes": data,
    }  # fmt: skip


def output_kind(out: dict[str, Any]) -> str:
    """``argmax`` (class ids), ``probabilities`` (softmax/sigmoid) or ``logits``."""
    if out["produced_by"] == "ARG_MAX" or (
        len(out["shape"]) == 3 and out["dtype"].startswith(("int", "uint"))
    ):
        return "argmax"
    if out["produced_by"] in ("SOFTMAX", "LOGISTIC"):
        return "probabilities"
    return "logits"
