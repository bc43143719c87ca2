"""A .tflite file's first subgraph as plain Python: tensors with their constant data, ops.

Constants come back as float32 whatever they are stored as: int8/uint8 with per-tensor or
per-channel scales, int32 biases, float16 (directly or behind a DEQUANTIZE op). Integer
parameters (block shapes, paddings, crops, sizes) come back raw from ``ints``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ModelError
from ..tflite_file import builtin_code


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
class Tensor:
    index: int
    name: str
    shape: tuple[int, ...]
    dtype: int
    data: np.ndarray | None
    scale: np.ndarray | None
    zero_point: np.ndarray | None
    quantized_dimension: int


@dataclass
class Op:
    index: int
    kind: str
    options: dict[str, Any]
    inputs: list[int]
    outputs: list[int]


@dataclass
class Graph:
    tensors: list[Tensor]
    ops: list[Op]
    inputs: list[int]
    outputs: list[int]
    producer: dict[int, Op] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for op in self.ops:
            for t in op.outputs:
                self.producer[t] = op

    def ints(self, index: int) -> list[int]:
        """A small integer constant (shape, block size, paddings) as a flat list."""
        t = self.tensors[index]
        if t.data is None:
            raise ModelError(f"tensor {t.name!r} is not a constant")
        dtype = {_schema().TensorType.INT32: np.int32, _schema().TensorType.INT64: np.int64}
        if t.dtype not in dtype:
            raise ModelError(f"tensor {t.name!r} is not an integer constant")
        return [int(v) for v in np.frombuffer(t.data.tobytes(), dtype=dtype[t.dtype])]

    def is_constant(self, index: int) -> bool:
        t = self.tensors[index]
        if t.data is not None:
            return True
        op = self.producer.get(index)
        return op is not None and op.kind == "DEQUANTIZE" and self.is_constant(op.inputs[0])

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


def _dequantize(t: Tensor) -> np.ndarray:
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


def read_graph(path: str | Path) -> Graph:
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
            Tensor(
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
        ops.append(Op(i, kind, dict(opts), list(op.inputs), list(op.outputs)))
    return Graph(tensors, ops, list(g.inputs), list(g.outputs))


def schema():
    """The LiteRT flatbuffer schema module."""
    return _schema()
