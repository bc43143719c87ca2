"""Give a logits model a second output: the ARG_MAX of its scores, computed in the same invoke.

The category mask needs the low-resolution argmax of every score vector. Done outside
the interpreter it costs two copies of the whole score tensor (out of the interpreter,
into an argmax kernel) plus the kernel call; appended to the model's own graph it runs
right after the last layer while the scores are still in cache, and the scores
themselves are then read in place, only at class boundaries. The model file on disk is
never changed: the LiteRT backend rewrites its in-memory copy (see litert.py).
"""

from __future__ import annotations

import numpy as np

from ..tflite_file import add_tensor, ints, new_op, per_tensor_quantization

ARGMAX_OUTPUT_NAME = "seglite_argmax"


def takes_argmax(model) -> bool:
    """One subgraph whose output 0 is (1, h, w, C) float32 or uint8 scores.

    (Argmax of affine-quantized scores with a positive scale is the argmax of the real
    scores, so uint8 logits qualify; models that already output class ids do not.)
    """
    from ai_edge_litert import schema_py_generated as schema

    if len(model.subgraphs or []) != 1 or not ints(model.subgraphs[0].outputs):
        return False
    sg = model.subgraphs[0]
    scores = sg.tensors[ints(sg.outputs)[0]]
    shape = ints(scores.shape)
    if len(shape) != 4 or shape[3] < 2:
        return False
    if scores.type == schema.TensorType.FLOAT32:
        return True
    return scores.type == schema.TensorType.UINT8 and per_tensor_quantization(scores) is not None


def add_argmax_output(model) -> bool:
    """Append an int32 (1, h, w) output = argmax of output 0 over classes, if it applies."""
    from ai_edge_litert import schema_py_generated as schema

    if not takes_argmax(model):
        return False
    sg = model.subgraphs[0]
    scores = ints(sg.outputs)[0]
    shape = ints(sg.tensors[scores].shape)
    axis = add_tensor(model, sg, "seglite_argmax_axis", [1], schema.TensorType.INT32,
                      data=np.array([3], np.int32))  # fmt: skip
    ids = add_tensor(model, sg, ARGMAX_OUTPUT_NAME, shape[:3], schema.TensorType.INT32)
    options = schema.ArgMaxOptionsT()
    options.outputType = schema.TensorType.INT32
    sg.operators.append(
        new_op(model, schema.BuiltinOperator.ARG_MAX, [scores, axis], [ids], options)
    )
    sg.outputs = [*ints(sg.outputs), ids]
    for sig in model.signatureDefs or []:
        entry = schema.TensorMapT()
        entry.name, entry.tensorIndex = ARGMAX_OUTPUT_NAME.encode(), ids
        sig.outputs = [*(sig.outputs or []), entry]
    return True
