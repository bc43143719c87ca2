"""Will it load? MediaPipe's and the Task Library's ImageSegmenter rules, and runtimes.

The rules are those the two libraries enforce (MediaPipe's messages are quoted; the tests
load every model in ``mediapipe.tasks.python.vision.ImageSegmenter`` and hold the verdict
to what happens):

MediaPipe ImageSegmenter
- one image input [1, H, W, 3 or 4], uint8 or float32; a float32 input needs
  NormalizationOptions in the metadata ("Input tensor has type float32: it requires
  specifying NormalizationOptions metadata to preprocess input images") - refused at load;
- the output is read as [1, H, W, classes] scores: an int64 output fails at the first
  segment() ("Unsupported output tensor type: INT64"); a [1, H, W] class-id output
  loads and runs but is read as W classes of one row each, so its masks are wrong;
- labels are optional (category names are then unknown); without an activation in
  SEGMENTER_METADATA the confidence masks are raw scores, not probabilities.

TFLite Task Library ImageSegmenter (tflite-support image_segmenter.cc)
- the same input rules; exactly one output, 4-D [1, H, W, classes], float32 or uint8;
  a label map, if present, must have one name per class.
"""

from __future__ import annotations

from typing import Any

# Ops the LiteRT GPU delegate runs (the rest fall back to the CPU, splitting the graph).
GPU_OPS = {
    "ADD", "AVERAGE_POOL_2D", "CONCATENATION", "CONV_2D", "DEPTHWISE_CONV_2D",
    "DEPTH_TO_SPACE", "DEQUANTIZE", "DIV", "FULLY_CONNECTED", "HARD_SWISH", "LOGISTIC",
    "MAX_POOL_2D", "MEAN", "MUL", "PAD", "PADV2", "PRELU", "QUANTIZE", "RELU", "RELU6",
    "RELU_N1_TO_1", "RESHAPE", "RESIZE_BILINEAR", "RESIZE_NEAREST_NEIGHBOR", "SOFTMAX",
    "SPACE_TO_DEPTH", "SPLIT", "SQRT", "SQUARED_DIFFERENCE", "SUB", "TANH", "TRANSPOSE",
    "TRANSPOSE_CONV", "STRIDED_SLICE", "SLICE", "MAXIMUM", "MINIMUM", "LEAKY_RELU",
}  # fmt: skip


def _image_input(inputs: list[dict]) -> list[str]:
    if len(inputs) != 1:
        return [f"one image input (has {len(inputs)})"]
    shape, dtype = inputs[0]["shape"], inputs[0]["dtype"]
    problems = []
    if len(shape) != 4 or shape[0] != 1 or shape[3] not in (3, 4):
        problems.append(f"an image input [1, H, W, 3] (has {shape})")
    if dtype not in ("uint8", "float32"):
        problems.append(f"a uint8 or float32 input (has {dtype})")
    return problems


def mediapipe_verdict(info: dict[str, Any], meta) -> dict[str, Any]:
    """``loads``: create_from_options succeeds; ``works``: its masks are right."""
    missing = _image_input(info["inputs"])
    has_norm = bool(meta and meta.input_mean and meta.input_std)
    if info["inputs"] and info["inputs"][0]["dtype"] == "float32" and not has_norm:
        missing.append("NormalizationOptions metadata (input mean/std) for its float32 input")
    loads = not missing
    out = info["outputs"][-1] if info["outputs"] else None
    notes = []
    works = loads
    if out is None:
        works = False
    elif out["dtype"] == "int64":
        works = False
        notes.append("int64 output: loads, then segment() fails (Unsupported output tensor type)")
    elif len(out["shape"]) != 4:
        works = False
        notes.append(
            f"output {out['shape']} is class ids: read as [1, H, W, classes] scores, its masks "
            "come out wrong (export with scores, not ArgMax)"
        )
    if len(info["outputs"]) > 1:
        notes.append(f"{len(info['outputs'])} outputs: only the last is read")
        works = False
    if not (meta and meta.labels):
        notes.append("no labels in the metadata: category names unknown")
    if not (meta and meta.output_activation):
        notes.append("no output activation metadata: confidence masks are raw scores")
    return {"loads": loads, "works": works, "missing": missing, "notes": notes}


def task_library_verdict(info: dict[str, Any], meta) -> dict[str, Any]:
    missing = _image_input(info["inputs"])
    if info["inputs"] and info["inputs"][0]["dtype"] == "float32":
        if not (meta and meta.input_mean and meta.input_std):
            missing.append("NormalizationOptions metadata (input mean/std) for its float32 input")
    outs = info["outputs"]
    if len(outs) != 1:
        missing.append(f"exactly one output (has {len(outs)})")
    elif len(outs[0]["shape"]) != 4:
        missing.append(f"a 4-D [1, H, W, classes] output (has {outs[0]['shape']})")
    elif outs[0]["dtype"] not in ("float32", "uint8"):
        missing.append(f"a float32 or uint8 output (has {outs[0]['dtype']})")
    elif meta and meta.labels and len(meta.labels) != outs[0]["shape"][3]:
        missing.append(
            f"one label per class ({len(meta.labels)} labels, {outs[0]['shape'][3]} classes)"
        )
    return {"loads": not missing, "missing": missing}


def runtimes(info: dict[str, Any]) -> list[dict[str, Any]]:
    """Which runtimes and delegates can run the file, and what stops the others."""
    ops = set(info["ops"])
    rows = [{"runtime": "LiteRT CPU (XNNPACK)", "ok": True, "note": "seglite's default"}]
    off_gpu = sorted(o for o in ops if o not in GPU_OPS)
    rows.append({
        "runtime": "LiteRT GPU delegate", "ok": not off_gpu,
        "note": "all ops" if not off_gpu else f"falls back to CPU for {', '.join(off_gpu)}",
    })  # fmt: skip
    edgetpu = any("edgetpu" in o for o in info["custom_ops"])
    quant = info["inputs"] and info["inputs"][0]["quantization"] is not None
    rows.append({
        "runtime": "Edge TPU", "ok": edgetpu,
        "note": "compiled for it" if edgetpu else (
            "quantized: run edgetpu_compiler first" if quant else "needs a full-integer model"
        ),
    })  # fmt: skip
    rows.append({"runtime": "NNAPI / Core ML delegates", "ok": None, "note": "device-dependent"})
    return rows
