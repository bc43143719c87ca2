"""PyTorch DeepLab -> one self-contained .onnx file, in the TFLite export's convention.

Input ``image``: float32 NHWC ``[batch, H, W, 3]`` normalized as ``(x - 127.5) / 127.5``,
batch dynamic; output ``logits`` NHWC ``[batch, H, W, classes]`` (or ``classes``, uint8
ids ``[batch, H, W]``). The same layout as the .tflite lets one pre- and post-processing
serve both, and the transposes run inside ONNX Runtime instead of in numpy.

The weights stay inside the file (``external_data=False``): a model is one file to copy.
Labels and normalization go into ``metadata_props``, which seglite's ONNX backend reads.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from ..errors import require
from .core import ExportError, ExportSource, first_line
from .tflite import captured_output

INPUT_NAME = "image"
MAX_BATCH = 64


def metadata_properties(source: ExportSource) -> dict[str, str]:
    """``metadata_props`` of the exported model: what the ONNX backend needs, and provenance."""
    from .. import __version__

    props = {
        "mean": "127.5",
        "std": "127.5",
        "labels": json.dumps(list(source.labels)),
        "output_layout": "NHWC",
        "seglite.name": source.name,
        "seglite.description": source.description,
        "seglite.source": source.origin,
        "seglite.version": __version__,
    }
    if source.accurate_scales:
        props["seglite.accurate_scales"] = json.dumps(list(source.accurate_scales))
    return props


def _wrap(model, argmax: bool, num_classes: int | None):
    import torch
    from torch import nn

    class _NHWC(nn.Module):
        def __init__(self, net: nn.Module) -> None:
            super().__init__()
            self.net = net

        def forward(self, image):
            y = self.net(image.permute(0, 3, 1, 2))
            if argmax:
                ids = y.argmax(1)
                return ids.to(torch.uint8) if (num_classes or 256) <= 256 else ids.to(torch.int32)
            return y.permute(0, 2, 3, 1)

    return _NHWC(model).eval()


def export_onnx(
    model,
    *,
    input_size: tuple[int, int],
    argmax: bool = False,
    properties: dict[str, str] | None = None,
    log: Callable[[str], None] | None = None,
) -> bytes:
    """The .onnx bytes of ``model`` (NCHW logits) with NHWC input/output and dynamic batch."""
    torch = require("torch", "export")
    require("onnxscript", "export")  # torch.onnx's exporter is written with it
    say = log or (lambda _msg: None)
    h, w = input_size
    net = _wrap(model, argmax, getattr(model, "num_classes", None))
    output = "classes" if argmax else "logits"
    say(f"exporting to ONNX with torch.onnx at {h}x{w}, dynamic batch")
    # A batch of 2 to trace: torch.export specializes a size-1 dimension to a constant.
    sample = torch.zeros(2, h, w, 3)
    batch = torch.export.Dim("batch", min=1, max=MAX_BATCH)
    with captured_output() as read:
        try:
            with torch.no_grad():
                program = torch.onnx.export(
                    net,
                    (sample,),
                    dynamo=True,
                    external_data=False,
                    input_names=[INPUT_NAME],
                    output_names=[output],
                    dynamic_shapes={"image": {0: batch}},
                    verbose=False,
                )
        except Exception as exc:
            detail = first_line(exc)
            log_lines = [ln for ln in read().splitlines() if "Error" in ln]
            if detail == type(exc).__name__ and log_lines:
                detail = log_lines[-1].strip()[:300]
            raise ExportError(
                f"ONNX export (torch.onnx) failed: {type(exc).__name__}: {detail}"
            ) from None
    proto = program.model_proto
    for key, value in (properties or {}).items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    if properties and properties.get("seglite.description"):
        proto.doc_string = properties["seglite.description"]
    data = proto.SerializeToString()
    if not data:
        raise ExportError("ONNX export (torch.onnx) produced an empty model")
    return data
