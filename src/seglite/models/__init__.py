"""The DeepLab family in PyTorch (needs the ``torch`` extra: pip install 'seglite[torch]').

>>> from seglite.models import deeplab, describe, starter_model
>>> model = deeplab(version="v3+", backbone="resnet101", num_classes=21, output_stride=16)
>>> model.set_output_stride(8)   # evaluate at 8 with the weights trained at 16
>>> describe(model, input_size=(513, 513))["params"]
>>> voc = starter_model(pretrained=True)             # deeplabv3_257_mv_gpu.tflite weights
>>> camvid = starter_model(num_classes=11, pretrained=True, labels="camvid11")

Inputs are NCHW float32 RGB normalized as ``(pixel - 127.5) / 127.5``; outputs are logits
NCHW at the input's size.
"""

from __future__ import annotations

from ..errors import require

require("torch", "torch")

from .backbones import MobileNetEdgeTPU, MobileNetV2, ResNet, Xception65  # noqa: E402
from .batchnorm import calibrate_batchnorm  # noqa: E402
from .checkpoint import load_checkpoint, read_checkpoint_metadata, save_checkpoint  # noqa: E402
from .deeplab import (  # noqa: E402
    INPUT_MEAN,
    INPUT_STD,
    OUTPUT_STRIDES,
    VERSIONS,
    DeepLab,
    deeplab,
    from_config,
    set_output_stride,
)
from .describe import count_params, describe, format_description  # noqa: E402
from .pretrained import starter_config, starter_model  # noqa: E402
from .registry import BACKBONES, backbone_entry, register_backbone  # noqa: E402
from .tflite_import import import_tflite  # noqa: E402
from .weights import BACKBONE_WEIGHTS, STARTER_WEIGHTS, Weights  # noqa: E402

__all__ = [
    "BACKBONES",
    "BACKBONE_WEIGHTS",
    "STARTER_WEIGHTS",
    "Weights",
    "INPUT_MEAN",
    "INPUT_STD",
    "OUTPUT_STRIDES",
    "VERSIONS",
    "DeepLab",
    "MobileNetEdgeTPU",
    "MobileNetV2",
    "ResNet",
    "Xception65",
    "backbone_entry",
    "calibrate_batchnorm",
    "count_params",
    "deeplab",
    "describe",
    "format_description",
    "from_config",
    "import_tflite",
    "load_checkpoint",
    "read_checkpoint_metadata",
    "register_backbone",
    "save_checkpoint",
    "set_output_stride",
    "starter_config",
    "starter_model",
]
