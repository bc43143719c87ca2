"""MobileNetV2 as DeepLab uses it (Sandler et al. 2018; TF-slim ``mobilenet_v2``).

Differences from the ImageNet classifier, all taken from DeepLab's feature extractor:
- the network ends at the last inverted residual (``layer_18``, 320 x depth channels);
  the 1x1 conv to 1280 channels and the classifier are not part of it;
- with a depth multiplier other than 1.0, channel counts are rounded to the nearest
  integer instead of to a multiple of 8 (``divisible_by=1, min_depth=1``), so depth 0.5
  gives 16, 8, 12, 16, 32, 48, 80, 160 channels as in ``deeplabv3_257_mv_gpu.tflite``.
  Expansion widths stay multiples of 8;
- the low-level feature for the v3+ decoder is the depthwise output of the block at
  stride 4 (``layer_4/depthwise_output``: 144 channels at depth 1.0, 72 at depth 0.5).
"""

from __future__ import annotations

from collections import OrderedDict

from torch import Tensor, nn

from ..layers import ConvBNAct, set_atrous, tf_atrous_schedule

# (expansion t, channels c, repeats n, first stride s), as in the paper's Table 2.
INVERTED_RESIDUAL_SETTING = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)
LOW_LEVEL_BLOCK = 2  # expanded_conv_2: the last block at stride 4


def make_divisible(value: float, divisor: int, min_value: int | None = None) -> int:
    """TF-slim's channel rounding: nearest multiple of ``divisor``, never below 90%."""
    min_value = divisor if min_value is None else min_value
    new = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if new < 0.9 * value:
        new += divisor
    return new


def mobilenet_widths(depth_multiplier: float) -> list[int]:
    """Output channels of the stem and of each inverted residual block, in order."""
    divisor = 8 if depth_multiplier == 1.0 else 1  # DeepLab's feature_extractor rule
    widths = [make_divisible(32 * depth_multiplier, divisor, divisor)]
    for _t, c, n, _s in INVERTED_RESIDUAL_SETTING:
        widths += [make_divisible(c * depth_multiplier, divisor, divisor)] * n
    return widths


class InvertedResidual(nn.Module):
    """1x1 expand (ReLU6) -> 3x3 depthwise (ReLU6) -> 1x1 linear projection [+ input]."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, expansion: int) -> None:
        super().__init__()
        hidden = make_divisible(in_channels * expansion, 8) if expansion > 1 else in_channels
        self.expand = (
            ConvBNAct(in_channels, hidden, 1, act=nn.ReLU6) if hidden > in_channels else None
        )
        self.depthwise = ConvBNAct(hidden, hidden, 3, stride=stride, groups=hidden, act=nn.ReLU6)
        self.project = ConvBNAct(hidden, out_channels, 1, act=None)
        self.nominal_stride = stride
        self.hidden_channels = hidden
        self.use_residual = stride == 1 and in_channels == out_channels

    def forward(self, x: Tensor, return_hidden: bool = False):
        h = self.expand(x) if self.expand is not None else x
        h = self.depthwise(h)
        y = self.project(h)
        if self.use_residual:
            y = y + x
        return (y, h) if return_hidden else y


class MobileNetV2(nn.Module):
    """Feature extractor: ``forward(x) -> {"low_level": stride-4, "out": stride-OS}``."""

    def __init__(self, depth_multiplier: float = 1.0, output_stride: int = 16) -> None:
        super().__init__()
        widths = iter(mobilenet_widths(depth_multiplier))
        in_ch = next(widths)
        self.stem = ConvBNAct(3, in_ch, 3, stride=2, act=nn.ReLU6)
        blocks = []
        for t, _c, n, s in INVERTED_RESIDUAL_SETTING:
            for i in range(n):
                out_ch = next(widths)
                blocks.append(InvertedResidual(in_ch, out_ch, s if i == 0 else 1, t))
                in_ch = out_ch
        self.blocks = nn.Sequential(OrderedDict((str(i), b) for i, b in enumerate(blocks)))
        self.depth_multiplier = depth_multiplier
        self.out_channels = in_ch
        self.low_level_channels = blocks[LOW_LEVEL_BLOCK].hidden_channels
        self.output_stride = 32
        self.set_output_stride(output_stride)

    def set_output_stride(self, output_stride: int) -> None:
        strides = [2] + [b.nominal_stride for b in self.blocks]
        schedule = tf_atrous_schedule(strides, output_stride)
        set_atrous(self.stem.conv, *schedule[0])
        for block, (stride, rate) in zip(self.blocks, schedule[1:]):
            set_atrous(block.depthwise.conv, stride, rate)
        self.output_stride = output_stride

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        x = self.stem(x)
        low = x
        for i, block in enumerate(self.blocks):
            if i == LOW_LEVEL_BLOCK:
                x, low = block(x, return_hidden=True)
            else:
                x = block(x)
        return {"low_level": low, "out": x}
