"""Does an imported model compute its TFLite graph's function? Measured against LiteRT.

One image at a time: resized to the graph's input size, fed to LiteRT as the graph wants
it (uint8 pixels for quantized inputs, ``(p - 127.5) / 127.5`` for float ones) and to the
PyTorch model as the same real numbers (``(q - zero_point) * scale`` for quantized
inputs). Reported per image: argmax agreement at the output resolution and the largest
logit difference, against the graph's own final scores (the tensor its ARG_MAX reads,
kept by running LiteRT without delegates and with all tensors preserved).

For quantized graphs the float import is compared twice: as it is (what fine-tuning
starts from), and with ``simulate_quantization``: every convolution's output, every
residual sum and the final scores rounded to the uint8/int8 grid of the graph's own
tensor, which is the function the quantized interpreter computes up to its integer
rounding. ``confident_agreement`` counts only pixels where LiteRT's two best scores are
more than two quanta of its score tensor apart: where they are closer, the graph's own
rounding decides the class and no float model can be expected to follow it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .tflite_graph import Graph, read_graph


def _logits_tensor(graph: Graph) -> tuple[int, bool]:
    """Index of the graph's final score tensor, and whether the output is an argmax."""
    out = graph.outputs[0]
    op = graph.producer.get(out)
    if op is not None and op.kind == "ARG_MAX":
        return op.inputs[0], True
    return out, False


def quantization_hooks(model, path: str | Path, graph: Graph | None = None) -> list:
    """Forward hooks that round the imported model's activations as the graph stores them.

    Returns the hook handles (``remove()`` each to get the float model back); none for a
    float graph. The activations rounded are the ones the importer can place exactly: the
    output of every convolution it copied, of every residual block (the graph's ADD), and
    the model's output (the graph's final score tensor)."""
    import torch

    from .tflite_import import read_structure

    path = Path(path)
    graph = graph if graph is not None else read_graph(path)
    units, structure = read_structure(path, graph)
    types = {3: (0, 255), 9: (-128, 127)}  # TensorType UINT8, INT8

    def rounding(index: int):
        t = graph.tensors[index]
        if t.dtype not in types or t.scale is None or not len(t.scale):
            return None
        s, z = float(t.scale[0]), float(t.zero_point[0])
        lo, hi = types[t.dtype]

        def hook(module, inputs, out):
            if torch.is_tensor(out):
                return (torch.clamp(torch.round(out / s) + z, lo, hi) - z) * s
            return None

        return hook

    consumers: dict[int, list] = {}
    for op in graph.ops:
        for i in op.inputs:
            consumers.setdefault(i, []).append(op)
    modules = dict(model.named_modules())
    hooks = []

    def add(module, index: int) -> None:
        hook = rounding(index)
        if hook is not None:
            hooks.append(module.register_forward_hook(hook))

    for where, node in structure.assign.items():
        out = graph.ops[node.ops[-1]].outputs[0]
        add(modules[where], out)
        block = where
        while block and not getattr(modules[block], "use_residual", False):
            block = block.rpartition(".")[0]
        sums = [op for op in consumers.get(out, []) if op.kind == "ADD"]
        if block and sums:
            add(modules[block], sums[0].outputs[0])
    logits, _ = _logits_tensor(graph)
    add(model, logits)
    return hooks


def parity(
    model,
    path: str | Path,
    images: list[np.ndarray],
    *,
    threads: int = 2,
    simulate_quantization: bool = False,
) -> list[dict[str, Any]]:
    """Per image: ``agreement`` (fraction of pixels with the same class),
    ``confident_agreement`` (the same over pixels whose two best LiteRT scores are more
    than two quanta apart; all pixels for float graphs), ``max_diff`` (largest |logit
    difference|), ``logit_range`` (of LiteRT's scores) and ``classes`` (distinct classes
    in LiteRT's mask). ``simulate_quantization`` rounds the model's activations as the
    graph does while it runs (see ``quantization_hooks``)."""
    import torch
    from ai_edge_litert.interpreter import Interpreter, OpResolverType
    from PIL import Image

    path = Path(path)
    graph = read_graph(path)
    logits_index, is_argmax = _logits_tensor(graph)
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
    hooks = quantization_hooks(model, path, graph) if simulate_quantization else []
    try:
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
                it.get_tensor(it.get_output_details()[0]["index"])[0]
                if is_argmax
                else ref.argmax(-1)
            )
            with torch.no_grad():
                ours = model(torch.from_numpy(x).permute(0, 3, 1, 2))[0].permute(1, 2, 0).numpy()
            same = ours.argmax(-1) == ref_ids
            confident = np.ones(same.shape, bool)
            if scale and ref.shape[-1] > 1:
                top2 = np.sort(ref, axis=-1)[..., -2:]
                confident = (top2[..., 1] - top2[..., 0]) > 2 * scale
            results.append(
                {
                    "agreement": float(same.mean()),
                    "confident_agreement": float(same[confident].mean())
                    if confident.any()
                    else 1.0,
                    "max_diff": float(np.abs(ours - ref).max()),
                    "logit_range": float(ref.max() - ref.min()),
                    "classes": int(len(np.unique(ref_ids))),
                }
            )
    finally:
        for hook in hooks:
            hook.remove()
    return results
