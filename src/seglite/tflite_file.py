"""Read and rewrite TFLite flatbuffers with the schema's object API (ai_edge_litert ships it).

One place for the detail the generated packer gets wrong: buffer data must be 16-byte
aligned (``force_align: 16`` in the schema), or XNNPACK and mmap readers copy or refuse.
"""

from __future__ import annotations

import functools

import numpy as np

from .errors import ModelError


def unpack_model(data: bytes):
    """The model as a mutable ``ModelT``; only models with their buffers inside the file."""
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(data, 0)
    if any((b.offset or 0) > 1 for b in model.buffers or []):
        raise ModelError("model: models with external (>2 GB) buffers are not supported")
    return model


def pack_model(model, size_hint: int = 0) -> bytes:
    """Serialize a ``ModelT`` (as from :func:`unpack_model`) with aligned buffers."""
    import flatbuffers

    aligned = aligned_buffer_class()
    for buf in model.buffers or []:
        buf.__class__ = aligned
    builder = flatbuffers.Builder(size_hint + 4096)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def builtin_code(model, op) -> int:
    """The builtin operator of ``op``."""
    return code_builtin(model.operatorCodes[op.opcodeIndex])


def code_builtin(code) -> int:
    """The builtin operator of an ``OperatorCodeT``: codes past 127 live only in
    ``builtinCode``, older writers fill only ``deprecatedBuiltinCode``; the larger of the
    two is the real one."""
    return max(code.builtinCode, code.deprecatedBuiltinCode)


def per_tensor_quantization(tensor) -> tuple[float, int] | None:
    """(scale, zero point) of a tensor quantized per tensor with a positive scale, else None."""
    q = tensor.quantization
    if q is None or q.scale is None or len(q.scale) != 1 or float(q.scale[0]) <= 0:
        return None
    zero = ints(q.zeroPoint)
    return float(q.scale[0]), zero[0] if zero else 0


def ints(vector) -> list[int]:
    """The object API gives index vectors as numpy arrays, lists or None."""
    return [] if vector is None else [int(v) for v in vector]


def opcode_index(model, builtin: int) -> int:
    """Index of ``builtin`` in the model's operator codes, added if the model lacks it."""
    from ai_edge_litert import schema_py_generated as schema

    codes = model.operatorCodes or []
    for i, code in enumerate(codes):
        if code_builtin(code) == builtin and not code.customCode:
            return i
    code = schema.OperatorCodeT()
    code.builtinCode = builtin
    code.deprecatedBuiltinCode = min(
        builtin, schema.BuiltinOperator.PLACEHOLDER_FOR_GREATER_OP_CODES
    )
    code.version = 1
    model.operatorCodes = [*codes, code]
    return len(model.operatorCodes) - 1


def add_tensor(model, subgraph, name: str, shape, dtype: int, data=None, quantization=None) -> int:
    """Append a tensor (a constant when ``data`` is given) and return its index."""
    from ai_edge_litert import schema_py_generated as schema

    tensor = schema.TensorT()
    tensor.name, tensor.shape, tensor.type = name.encode(), [int(v) for v in shape], dtype
    tensor.buffer = 0
    if data is not None:
        raw = np.ascontiguousarray(data).reshape(-1).view(np.uint8)
        model.buffers.append(aligned_buffer(raw))
        tensor.buffer = len(model.buffers) - 1
    if quantization is not None:
        scale, zero_point = quantization
        tensor.quantization = schema.QuantizationParametersT()
        tensor.quantization.scale = [float(scale)]
        tensor.quantization.zeroPoint = [int(zero_point)]
    subgraph.tensors.append(tensor)
    return len(subgraph.tensors) - 1


def new_op(model, builtin: int, inputs, outputs, options=None):
    """An operator (not yet placed in a subgraph); ``options`` is the builtin's ``...OptionsT``."""
    from ai_edge_litert import schema_py_generated as schema

    op = schema.OperatorT()
    op.opcodeIndex = opcode_index(model, builtin)
    op.inputs, op.outputs = [int(i) for i in inputs], [int(i) for i in outputs]
    if options is not None:
        op.builtinOptionsType = getattr(schema.BuiltinOptions, type(options).__name__[:-1])
        op.builtinOptions = options
    return op


def text(s: str | bytes | None) -> str | None:
    """Flatbuffer strings come back as bytes from the object API."""
    return s.decode("utf-8", "replace") if isinstance(s, bytes) else s


@functools.cache
def aligned_buffer_class():
    from ai_edge_litert import schema_py_generated as schema

    class AlignedBuffer(schema.BufferT):
        """BufferT whose data vector is 16-byte aligned."""

        def Pack(self, builder):  # noqa: N802 (flatbuffers API)
            data = None
            if self.data is not None:
                payload = np.asarray(self.data, dtype=np.uint8).reshape(-1).tobytes()
                builder.StartVector(1, len(payload), 16)
                builder.head -= len(payload)
                builder.Bytes[builder.head : builder.head + len(payload)] = payload
                data = builder.EndVector()
            schema.BufferStart(builder)
            if data is not None:
                schema.BufferAddData(builder, data)
            schema.BufferAddOffset(builder, self.offset or 0)
            schema.BufferAddSize(builder, self.size or 0)
            return schema.BufferEnd(builder)

    return AlignedBuffer


def aligned_buffer(data: np.ndarray | None):
    buf = aligned_buffer_class()()
    buf.data = data
    return buf
