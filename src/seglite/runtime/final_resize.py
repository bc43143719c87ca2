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

from ..tflite_file import builtin_code, ints


def cut_final_resize(model) -> tuple[int, int] | None:
    """Remove the op that produces output 0 when it is RESIZE_BILINEAR with align_corners,
    no half-pixel centres, float32 scores and a whole factor on both axes ((out - 1) = f * (in - 1)); its
    input becomes output 0. Returns the factors (fy, fx), or None with the model untouched.
    """
    from ai_edge_litert import schema_py_generated as schema

    if len(model.subgraphs or []) != 1:
        return None
    sg = model.subgraphs[0]
    outputs = ints(sg.outputs)
    if not outputs or not sg.operators:
        return None
    last = sg.operators[-1]
    if builtin_code(model, last) != schema.BuiltinOperator.RESIZE_BILINEAR:
        return None
    if ints(last.outputs) != [outputs[0]]:
        return None
    options = last.builtinOptions
    if options is None or not options.alignCorners or options.halfPixelCenters:
        return None
    src = ints(last.inputs)[0]
    if src in outputs or any(src in ints(op.inputs) for op in sg.operators[:-1]):
        return None  # the coarse scores feed something else too
    coarse = ints(sg.tensors[src].shape)
    fine = ints(sg.tensors[outputs[0]].shape)
    if len(coarse) != 4 or len(fine) != 4 or coarse[3] != fine[3] or coarse[0] != 1:
        return None
    factors = []
    for n_in, n_out in ((coarse[1], fine[1]), (coarse[2], fine[2])):
        if n_in < 2 or n_out < n_in or (n_out - 1) % (n_in - 1):
            return None
        factors.append((n_out - 1) // (n_in - 1))
    if {sg.tensors[src].type, sg.tensors[outputs[0]].type} != {schema.TensorType.FLOAT32}:
        return None
    sg.operators = sg.operators[:-1]
    sg.outputs = [src, *outputs[1:]]
    for sig in model.signatureDefs or []:
        for entry in sig.outputs or []:
            if entry.tensorIndex == outputs[0]:
                entry.tensorIndex = src
    return factors[0], factors[1]
