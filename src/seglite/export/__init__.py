"""Ship a trained DeepLab: .tflite (float32, float16, int8) with metadata, and .onnx.

Needs the ``export`` extra (litert-torch, ai-edge-quantizer) for TFLite and the ``onnx``
extra for ONNX; both import lazily, so ``import seglite.export`` stays cheap.

>>> from seglite.export import export_model
>>> r = export_model("starter", format="tflite", precision="int8", calibration="photos/")
>>> r.path, r.size_bytes, r.parity.summary()

Every export is followed by a parity check against the PyTorch model (``r.parity``).
"""

from __future__ import annotations

from .core import (
    FORMATS,
    PRECISIONS,
    ExportError,
    ExportResult,
    ExportSource,
    export_model,
    list_images,
    load_pixels,
    load_source,
)

__all__ = [
    "FORMATS",
    "PRECISIONS",
    "ExportError",
    "ExportResult",
    "ExportSource",
    "export_model",
    "list_images",
    "load_pixels",
    "load_source",
]
