"""Cut a model's last op when it is a fixed align-corners upsampling of its scores.

The DeepLab TFLite models end with RESIZE_BILINEAR(align_corners=True) from their
logits to their input size: 33x33 -> 257x257 for the starter, 129 -> 513 for ADE20K,
an exact 8x or 4x. That op writes scores for every pixel of the larger grid (5.5 MB
for the starter, 159 MB for ADE20K) only for the category mask to need them at class
boundaries, and the argmax over all of them costs as much again. Cut from the graph,
the coarse scores come out instead, and postprocess/coarse.py computes the cut op's values
lazily, only where a class can change and only for the classes that can win there.
"""

from __future__ import annotations

import numpy as np

from ..tflite_file import builtin_code, ints, per_tensor_quantization


def cut_final_resize(model) -> tuple[int, int] | None:
    """Remove the op that produces output 0 when it is RESIZE_BILINEAR with align_corners,
    no half-pixel centres, float32 scores and a whole factor on both axes ((out - 1) = f * (in - 1)); its
    input becomes output 0. Returns the factors (fy, fx), or None with the model untouched.

    An int8 model ends in that resize of int8 scores then a DEQUANTIZE: the DEQUANTIZE is
    moved in front of the cut resize (same scale and zero point), so output 0 is the float
    coarse scores there too.
    """
    from ai_edge_litert import schema_py_generated as schema

    if len(model.subgraphs or []) != 1:
        return None
    sg = model.subgraphs[0]
    outputs = ints(sg.outputs)
    if not outputs or not sg.operators:
        return None
    ops = sg.operators
    dequantize = None
    if builtin_code(model, ops[-1]) == schema.BuiltinOperator.DEQUANTIZE and len(ops) >= 2:
        dequantize, resize = ops[-1], ops[-2]
        if ints(dequantize.outputs) != [outputs[0]]:
            return None
        fine_index = ints(resize.outputs)[0] if ints(resize.outputs) else -1
        if ints(dequantize.inputs) != [fine_index] or fine_index in outputs:
            return None
    else:
        resize = ops[-1]
        if ints(resize.outputs) != [outputs[0]]:
            return None
        fine_index = outputs[0]
    if builtin_code(model, resize) != schema.BuiltinOperator.RESIZE_BILINEAR:
        return None
    options = resize.builtinOptions
    if options is None or not options.alignCorners or options.halfPixelCenters:
        return None
    src = ints(resize.inputs)[0]
    rest = [op for op in ops if op is not resize and op is not dequantize]
    if src in outputs or any(src in ints(op.inputs) for op in rest):
        return None  # the coarse scores feed something else too
    coarse = ints(sg.tensors[src].shape)
    fine = ints(sg.tensors[fine_index].shape)
    if len(coarse) != 4 or len(fine) != 4 or coarse[3] != fine[3] or coarse[0] != 1:
        return None
    factors = []
    for n_in, n_out in ((coarse[1], fine[1]), (coarse[2], fine[2])):
        if n_in < 2 or n_out < n_in or (n_out - 1) % (n_in - 1):
            return None
        factors.append((n_out - 1) // (n_in - 1))
    if dequantize is None:
        if {sg.tensors[src].type, sg.tensors[fine_index].type} != {schema.TensorType.FLOAT32}:
            return None
        sg.operators = ops[:-1]
        sg.outputs = [src, *outputs[1:]]
        for sig in model.signatureDefs or []:
            for entry in sig.outputs or []:
                if entry.tensorIndex == outputs[0]:
                    entry.tensorIndex = src
        return factors[0], factors[1]
    quantized = (schema.TensorType.INT8, schema.TensorType.UINT8)
    a, b, out = sg.tensors[src], sg.tensors[fine_index], sg.tensors[outputs[0]]
    if a.type not in quantized or b.type != a.type or out.type != schema.TensorType.FLOAT32:
        return None
    qa, qb = per_tensor_quantization(a), per_tensor_quantization(b)
    if qa is None or qa != qb:
        return None  # the resize requantizes: dequantizing before it would change values
    dequantize.inputs = np.array([src], dtype=np.int32)
    out.shape = np.array(coarse, dtype=np.int32)
    if out.shapeSignature is not None and len(out.shapeSignature):
        out.shapeSignature = np.array(coarse, dtype=np.int32)
    sg.operators = [*ops[:-2], dequantize]
    return factors[0], factors[1]
