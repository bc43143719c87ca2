"""Backbones written for seglite: MobileNetV2, MobileNet-EdgeTPU, ResNet-50/101, Xception-65.

Each one is an ``nn.Module`` with
- ``forward(x) -> {"low_level": Tensor (stride 4), "out": Tensor (stride output_stride)}``
- ``out_channels``, ``low_level_channels``, ``output_stride``
- ``set_output_stride(8 | 16 | 32)``: moves stride into atrous rate in place; the weights
  and their shapes are untouched.

Names, aliases and options of each live in one table, ``seglite.models.registry``.
"""

from __future__ import annotations

from .mobilenet_edgetpu import MobileNetEdgeTPU
from .mobilenetv2 import MobileNetV2
from .resnet import ResNet
from .xception import Xception65

__all__ = ["MobileNetEdgeTPU", "MobileNetV2", "ResNet", "Xception65"]
