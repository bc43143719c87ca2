"""Backbones written for seglite: MobileNetV2, ResNet-50/101, Xception-65.

Each one is an ``nn.Module`` with
- ``forward(x) -> {"low_level": Tensor (stride 4), "out": Tensor (stride output_stride)}``
- ``out_channels``, ``low_level_channels``, ``output_stride``
- ``set_output_stride(8 | 16 | 32)``: moves stride into atrous rate in place; the weights
  and their shapes are untouched.
"""

from __future__ import annotations

from torch import nn

from .mobilenetv2 import MobileNetV2
from .resnet import ResNet
from .xception import Xception65

BACKBONES = ("mobilenet_v2", "resnet50", "resnet101", "xception65")


def build_backbone(
    name: str, *, output_stride: int, depth_multiplier: float = 1.0, multi_grid=(1, 1, 1)
) -> nn.Module:
    """A backbone by canonical name (see ``BACKBONES``); arguments are already validated."""
    if name == "mobilenet_v2":
        return MobileNetV2(depth_multiplier=depth_multiplier, output_stride=output_stride)
    if name in ("resnet50", "resnet101"):
        return ResNet(name, output_stride=output_stride, multi_grid=multi_grid)
    if name == "xception65":
        return Xception65(output_stride=output_stride, multi_grid=multi_grid)
    raise KeyError(name)


__all__ = ["BACKBONES", "MobileNetV2", "ResNet", "Xception65", "build_backbone"]
