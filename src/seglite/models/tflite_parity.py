"""Does an imported model compute its TFLite graph's function? Measured against LiteRT.

One image at a time: resized to the graph's input size, fed to LiteRT as the graph wants
it (uint8 pixels for quantized inputs, ``(p - 127.5) / 127.5`` for float ones) and to the
PyTorch model as the same real numbers (``(q - zero_point) * scale`` for quantized
inputs). Reported per image: argmax agreement at the output resolution and the largest
logit difference, against the graph's own final scores (the tensor its ARG_MAX reads,
kept by running LiteRT without delegates and with all tensors preserved).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .tflite_graph import read_graph


def _logits_tensor(path: Path) -> tuple[int, bool]:
    """Index of the graph's final score tensor, and whether the output is an argmax."""
    graph = read_graph(path)
    out = graph.outputs[0]
    op = graph.producer.get(out)
    if op is not None and op.kind == "ARG_MAX":
        return op.inputs[0], True
    return out, False


def parity(
    model, path: str | Path, images: list[np.ndarray], *, threads: int = 2
) -> list[dict[str, Any]]:
    """Per image: ``agreement`` (fraction of pixels with the same class), ``max_diff`` (largest
    |logit difference|), ``logit_range`` (of LiteRT's scores) and ``classes`` (distinct
    classes in LiteRT's mask)."""
    import torch
    from ai_edge_litert.interpreter import Interpreter, OpResolverType
    from PIL import Image

    path = Path(path)
    logits_index, is_argmax = _logits_tensor(path)
    it = Interpreter(str(path), num_threads=threads)
    it.allocate_tensors()
    scores = it
    if is_argmax:
        scores = Interpreter(
            str(path), num_threads=threads, experimental_preserve_all_tensors=True,
            experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
        )  # fmt: skip
        scores.allocate_tensors()
    inp = it.get_input_details()[0]
    h, w = int(inp["shape"][1]), int(inp["shape"][2])
    detail = next(d for d in scores.get_tensor_details() if d["index"] == logits_index)
    scale, zero = detail["quantization"]
    results = []
    for image in images:
        pixels = np.asarray(
            Image.fromarray(image).convert("RGB").resize((w, h), Image.Resampling.BILINEAR),
            np.uint8,
        )
        if inp["dtype"] in (np.uint8, np.int8):
            q = pixels.astype(np.int32) - (128 if inp["dtype"] == np.int8 else 0)
            s, z = inp["quantization"]
            feed = q.astype(inp["dtype"])[None]
            x = ((q.astype(np.float32) - z) * s)[None]
        else:
            x = ((pixels.astype(np.float32) - 127.5) / 127.5)[None]
            feed = x.astype(inp["dtype"])
        for run in {id(it): it, id(scores): scores}.values():
            run.set_tensor(inp["index"], feed)
            run.invoke()
        ref = scores.get_tensor(logits_index).astype(np.float32)
        if scale:
            ref = (ref - zero) * scale
        ref = ref[0]
        ref_ids = (
            it.get_tensor(it.get_output_details()[0]["index"])[0] if is_argmax else ref.argmax(-1)
        )
        with torch.no_grad():
            ours = model(torch.from_numpy(x).permute(0, 3, 1, 2))[0].permute(1, 2, 0).numpy()
        results.append(
            {
                "agreement": float((ours.argmax(-1) == ref_ids).mean()),
                "max_diff": float(np.abs(ours - ref).max()),
                "logit_range": float(ref.max() - ref.min()),
                "classes": int(len(np.unique(ref_ids))),
            }
        )
    return results
