"""MobileNet-EdgeTPU (Gupta & Akin 2019; TF-slim ``mobilenet_v3.V3_EDGETPU``), as DeepLab uses it.

Read from Coral's ``deeplab_mobilenet_edgetpu_slim_cityscapes_quant.tflite`` and the slim
definition it was exported from. What makes it an Edge TPU network:
- the early stages use *fused* inverted bottlenecks: one full k x k convolution expands
  (and strides), a 1x1 projects; no depthwise convolution until stride 16, because the
  Edge TPU runs full convolutions on few channels faster than depthwise ones;
- ReLU everywhere (no ReLU6, no squeeze-excite, no h-swish);
- expansion widths are ``make_divisible(in_channels * factor, 8)`` and some blocks
  expand 8x; the first block is a lone linear 1x1 projection (expansion 1, fused);
- one block (the first extra stride-16 block of 8x expansion) has no residual even
  though its shapes would allow one;
- it ends with a 1x1 convolution to 1280 channels, which DeepLab keeps as the feature.

The depth multiplier scales block widths (rounded to multiples of 8, never below 90%);
the final 1280 is kept for multipliers up to 1.0 as slim does. The "slim" Cityscapes
model is depth 0.75. With the TF rule for output stride, a striding block past the target
stride runs at stride 1 with its current rate, and the rate grows for the blocks after.

Low-level feature for a v3+ decoder: the expansion output of the last stride-4 block
(96 channels at depth 0.75), the counterpart of MobileNetV2's depthwise output there.
"""

from __future__ import annotations

from collections import OrderedDict

from torch import Tensor, nn

from ..layers import ConvBNAct, set_atrous, tf_atrous_schedule
from .mobilenetv2 import make_divisible

# (fused, expansion, channels, kernel, stride, residual): V3_EDGETPU's spec, in order.
BLOCKS = (
    (True, 1, 16, 3, 1, False),
    (True, 8, 32, 3, 2, False),
    *[(True, 4, 32, 3, 1, True)] * 3,
    (True, 8, 48, 3, 2, False),
    *[(True, 4, 48, 3, 1, True)] * 3,
    (False, 8, 96, 3, 2, False),
    *[(False, 4, 96, 3, 1, True)] * 3,
    (False, 8, 96, 3, 1, False),
    *[(False, 4, 96, 3, 1, True)] * 3,
    (False, 8, 160, 5, 2, False),
    *[(False, 4, 160, 5, 1, True)] * 3,
    (False, 8, 192, 3, 1, False),
)
STEM_CHANNELS = 32
LAST_CHANNELS = 1280
LOW_LEVEL_BLOCK = 4  # the last block at stride 4


def edgetpu_widths(depth_multiplier: float) -> list[int]:
    """Output channels of the stem and of each block, in order (the final 1x1 apart)."""
    return [make_divisible(STEM_CHANNELS * depth_multiplier, 8)] + [
        make_divisible(c * depth_multiplier, 8) for _f, _e, c, _k, _s, _r in BLOCKS
    ]


class EdgeTPUBlock(nn.Module):
    """Fused: k x k expand (strides) -> 1x1 project. Regular: 1x1 expand -> k x k
    depthwise (strides) -> 1x1 project. Linear projection, optional residual."""

    def __init__(self, cin: int, cout: int, *, fused: bool, expansion: int, kernel: int,
                 stride: int, residual: bool) -> None:  # fmt: skip
        super().__init__()
        hidden = make_divisible(cin * expansion, 8)
        self.expand = None
        self.depthwise = None
        if fused:
            if hidden > cin:
                self.expand = ConvBNAct(cin, hidden, kernel, stride=stride, act=nn.ReLU)
            else:
                hidden = cin
        else:
            self.expand = ConvBNAct(cin, hidden, 1, act=nn.ReLU)
            self.depthwise = ConvBNAct(
                hidden, hidden, kernel, stride=stride, groups=hidden, act=nn.ReLU
            )
        self.project = ConvBNAct(hidden, cout, 1, act=None)
        self.nominal_stride = stride
        self.hidden_channels = hidden
        self.use_residual = residual and stride == 1 and cin == cout

    @property
    def strided_conv(self) -> nn.Conv2d:
        """The conv that carries the block's stride (and its atrous rate)."""
        if self.depthwise is not None:
            return self.depthwise.conv
        return self.expand.conv if self.expand is not None else self.project.conv

    def forward(self, x: Tensor, return_hidden: bool = False):
        h = self.expand(x) if self.expand is not None else x
        if self.depthwise is not None:
            h = self.depthwise(h)
        y = self.project(h)
        if self.use_residual:
            y = y + x
        return (y, h) if return_hidden else y


class MobileNetEdgeTPU(nn.Module):
    """Feature extractor: ``forward(x) -> {"low_level": stride-4, "out": stride-OS}``."""

    def __init__(self, depth_multiplier: float = 1.0, output_stride: int = 16) -> None:
        super().__init__()
        widths = edgetpu_widths(depth_multiplier)
        in_ch = widths[0]
        self.stem = ConvBNAct(3, in_ch, 3, stride=2, act=nn.ReLU)
        blocks = []
        for (fused, e, _c, k, s, r), out_ch in zip(BLOCKS, widths[1:]):
            blocks.append(EdgeTPUBlock(in_ch, out_ch, fused=fused, expansion=e, kernel=k,
                                       stride=s, residual=r))  # fmt: skip
            in_ch = out_ch
        self.blocks = nn.Sequential(OrderedDict((str(i), b) for i, b in enumerate(blocks)))
        last = LAST_CHANNELS if depth_multiplier <= 1 else make_divisible(
            LAST_CHANNELS * depth_multiplier, 8
        )  # fmt: skip
        self.last = ConvBNAct(in_ch, last, 1, act=nn.ReLU)
        self.depth_multiplier = depth_multiplier
        self.out_channels = last
        self.low_level_channels = blocks[LOW_LEVEL_BLOCK].hidden_channels
        self.output_stride = 32
        self.set_output_stride(output_stride)

    def set_output_stride(self, output_stride: int) -> None:
        strides = [2] + [b.nominal_stride for b in self.blocks]
        schedule = tf_atrous_schedule(strides, output_stride)
        set_atrous(self.stem.conv, *schedule[0])
        for block, (stride, rate) in zip(self.blocks, schedule[1:]):
            set_atrous(block.strided_conv, stride, rate)
        self.output_stride = output_stride

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        x = self.stem(x)
        low = x
        for i, block in enumerate(self.blocks):
            if i == LOW_LEVEL_BLOCK:
                x, low = block(x, return_hidden=True)
            else:
                x = block(x)
        return {"low_level": low, "out": self.last(x)}
