"""Give a logits model a second output: the ARG_MAX of its scores, computed in the same invoke.

The category mask needs the low-resolution argmax of every score vector. Done outside
the interpreter it costs two copies of the whole score tensor (out of the interpreter,
into an argmax kernel) plus the kernel call; appended to the model's own graph it runs
right after the last layer while the scores are still in cache, and the scores
themselves are then read in place, only at class boundaries. The model file on disk is
never changed: the rewrite happens in memory when the backend loads it.
"""

from __future__ import annotations

import numpy as np

from ..tflite_file import aligned_buffer, pack_model, unpack_model

ARGMAX_OUTPUT_NAME = "seglite_argmax"


def with_argmax_output(data: bytes) -> bytes | None:
    """The model with an extra int32 (1, h, w) output = argmax of output 0 over classes.

    None where it does not apply: several subgraphs, or an output 0 that is not
    (1, h, w, C) float32 or uint8 scores. (Argmax of affine-quantized scores with a
    positive scale is the argmax of the real scores, so uint8 logits qualify.)
    """
    from ai_edge_litert import schema_py_generated as schema

    if not _takes_argmax(data):
        return None
    model = unpack_model(data)
    sg = model.subgraphs[0]
    shape = [int(v) for v in sg.tensors[_ints(sg.outputs)[0]].shape]

    axis_buffer = len(model.buffers)
    model.buffers.append(aligned_buffer(np.frombuffer(np.int32(3).tobytes(), np.uint8)))
    axis = schema.TensorT()
    axis.shape, axis.type, axis.buffer = [1], schema.TensorType.INT32, axis_buffer
    axis.name = b"seglite_argmax_axis"
    ids = schema.TensorT()
    ids.shape, ids.type, ids.buffer = shape[:3], schema.TensorType.INT32, 0
    ids.name = ARGMAX_OUTPUT_NAME.encode()
    sg.tensors.extend([axis, ids])
    axis_index, ids_index = len(sg.tensors) - 2, len(sg.tensors) - 1

    op = schema.OperatorT()
    op.opcodeIndex = _opcode_index(model, schema.BuiltinOperator.ARG_MAX)
    op.inputs, op.outputs = [_ints(sg.outputs)[0], axis_index], [ids_index]
    op.builtinOptionsType = schema.BuiltinOptions.ArgMaxOptions
    op.builtinOptions = schema.ArgMaxOptionsT()
    op.builtinOptions.outputType = schema.TensorType.INT32
    sg.operators.append(op)
    sg.outputs = [*_ints(sg.outputs), ids_index]
    for sig in model.signatureDefs or []:
        entry = schema.TensorMapT()
        entry.name, entry.tensorIndex = ARGMAX_OUTPUT_NAME.encode(), ids_index
        sig.outputs = [*(sig.outputs or []), entry]
    return pack_model(model, len(data))


def _takes_argmax(data: bytes) -> bool:
    """The checks of :func:`with_argmax_output`, read in place (well under a millisecond)
    so that models it does not apply to skip the full unpacking (15 ms and more)."""
    from ai_edge_litert import schema_py_generated as schema

    model = schema.Model.GetRootAs(data, 0)
    if model.SubgraphsLength() != 1 or model.Subgraphs(0).OutputsLength() < 1:
        return False
    sg = model.Subgraphs(0)
    scores = sg.Tensors(sg.Outputs(0))
    shape = scores.ShapeAsNumpy() if scores.ShapeLength() else []
    if len(shape) != 4 or shape[3] < 2:
        return False
    if scores.Type() == schema.TensorType.FLOAT32:
        return True
    if scores.Type() != schema.TensorType.UINT8:
        return False
    q = scores.Quantization()
    return q is not None and q.ScaleLength() == 1 and q.Scale(0) > 0


def _ints(vector) -> list[int]:
    """The object API gives index vectors as numpy arrays, lists or None."""
    return [] if vector is None else [int(v) for v in vector]


def _opcode_index(model, builtin: int) -> int:
    from ai_edge_litert import schema_py_generated as schema

    codes = model.operatorCodes or []
    for i, code in enumerate(codes):
        if max(code.builtinCode, code.deprecatedBuiltinCode) == builtin and not code.customCode:
            return i
    code = schema.OperatorCodeT()
    code.builtinCode = builtin
    code.deprecatedBuiltinCode = min(
        builtin, schema.BuiltinOperator.PLACEHOLDER_FOR_GREATER_OP_CODES
    )
    code.version = 1
    model.operatorCodes = [*codes, code]
    return len(model.operatorCodes) - 1
