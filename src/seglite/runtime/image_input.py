"""Give a model a raw-image input: uint8 RGB of any size, squashed and normalized in the graph.

Bringing a decoded photo to the model's input in Python takes a resize and a
normalization pass on one core (about 0.9 ms for the 257x257 starter model, a tenth
of its invoke); as the graph's first ops they run in XNNPACK on every interpreter
thread in about 0.1 ms. The squash is RESIZE_BILINEAR with half-pixel centres, the
convention of postprocess/bilinear.py, whose numpy ``squash`` does the same for runtimes without
it. Like the TFLite Task Library and MediaPipe it does not antialias: the caller first
box-reduces big images to within 2x of the model's size (image.model_pixels; JPEGs
are already reduced in the decoder), so every pixel still counts.

What the new input feeds, by the model's input type:
- float32: DEQUANTIZE (uint8 -> float) -> RESIZE_BILINEAR -> CONV_2D 1x1 whose weights
  and bias are the normalization, (x - mean) / std (a per-channel MUL/ADD pair would
  fall out of XNNPACK);
- uint8 (quantized models take raw pixels): RESIZE_BILINEAR in the model's own
  quantization.
Other inputs (int8, which no model in the zoo or from the exporter has) keep the
numpy squash.
"""

from __future__ import annotations

import numpy as np

from ..tflite_file import add_tensor, ints, new_op, per_tensor_quantization

IMAGE_INPUT_NAME = "seglite_image"


def add_image_input(model, mean, std) -> bool:
    """Make the model's input a uint8 (N, h, w, 3) batch of images of any size (resize the
    input tensor to each batch's shape); False, and the model untouched, where the input is not (1, H, W, 3) of
    float32 or uint8."""
    from ai_edge_litert import schema_py_generated as schema

    T, Op = schema.TensorType, schema.BuiltinOperator
    if len(model.subgraphs or []) != 1 or len(ints(model.subgraphs[0].inputs)) != 1:
        return False
    sg = model.subgraphs[0]
    old = ints(sg.inputs)[0]
    shape = ints(sg.tensors[old].shape)
    dtype = sg.tensors[old].type
    if len(shape) != 4 or shape[0] != 1 or shape[3] != 3 or min(shape) < 1:
        return False
    if any(d < 0 for d in ints(sg.tensors[old].shapeSignature)[1:3]):
        return False  # no fixed size to squash to
    quant = per_tensor_quantization(sg.tensors[old])
    if not (dtype == T.FLOAT32 or (dtype == T.UINT8 and quant is not None)):
        return False
    h, w = shape[1], shape[2]
    size = add_tensor(model, sg, "seglite_image_size", [2], T.INT32, np.array([h, w], np.int32))
    resize = schema.ResizeBilinearOptionsT()
    resize.alignCorners, resize.halfPixelCenters = False, True
    if dtype == T.FLOAT32:
        image = add_tensor(model, sg, IMAGE_INPUT_NAME, shape, T.UINT8, quantization=(1.0, 0))
        real = add_tensor(model, sg, "seglite_image_float", shape, T.FLOAT32)
        squashed = add_tensor(model, sg, "seglite_image_squashed", shape, T.FLOAT32)
        inv = 1.0 / np.broadcast_to(np.asarray(std, np.float64), (3,))
        offset = -np.broadcast_to(np.asarray(mean, np.float64), (3,)) * inv
        weights = add_tensor(model, sg, "seglite_normalize_w", [3, 1, 1, 3], T.FLOAT32,
                             np.diag(inv).astype(np.float32).reshape(3, 1, 1, 3))  # fmt: skip
        bias = add_tensor(model, sg, "seglite_normalize_b", [3], T.FLOAT32,
                          offset.astype(np.float32))  # fmt: skip
        conv = schema.Conv2DOptionsT()
        conv.padding, conv.strideH, conv.strideW = schema.Padding.VALID, 1, 1
        conv.dilationHFactor = conv.dilationWFactor = 1
        ops = [
            new_op(model, Op.DEQUANTIZE, [image], [real]),
            new_op(model, Op.RESIZE_BILINEAR, [real, size], [squashed], resize),
            new_op(model, Op.CONV_2D, [squashed, weights, bias], [old], conv),
        ]
    else:
        image = add_tensor(model, sg, IMAGE_INPUT_NAME, shape, T.UINT8, quantization=quant)
        ops = [new_op(model, Op.RESIZE_BILINEAR, [image, size], [old], resize)]
    sg.tensors[image].shapeSignature = [-1, -1, -1, 3]
    sg.operators = [*ops, *(sg.operators or [])]
    sg.inputs = [image]
    for sig in model.signatureDefs or []:
        for entry in sig.inputs or []:
            if entry.tensorIndex == old:
                entry.tensorIndex = image
    return True
