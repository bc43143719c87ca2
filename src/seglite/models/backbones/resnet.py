"""ResNet-50 / ResNet-101 (He et al. 2016) with atrous convolution and multi-grid.

Bottleneck layout "v1.5": the stride of a downsampling block sits on its 3x3 conv, and
the stem is a 7x7 stride-2 conv plus a 3x3 stride-2 max pool, so the parameter count is
the published one (ResNet-101 without its classifier: 42,500,160).

Output stride (DeepLabv3, section 3.2): a stage whose stride is removed runs all of its
blocks at the accumulated rate; the last stage multiplies that rate by the multi-grid
unit rates, e.g. (1, 2, 4) -> rates 2, 4, 8 at output stride 16 and 4, 8, 16 at 8.
"""

from __future__ import annotations

from collections import OrderedDict

from torch import Tensor, nn

from ..layers import ConvBNAct, set_atrous

DEPTHS = {"resnet50": (3, 4, 6, 3), "resnet101": (3, 4, 23, 3)}
EXPANSION = 4


class Bottleneck(nn.Module):
    def __init__(self, in_channels: int, width: int, stride: int) -> None:
        super().__init__()
        out_channels = width * EXPANSION
        self.conv1 = ConvBNAct(in_channels, width, 1)
        self.conv2 = ConvBNAct(width, width, 3, stride=stride)
        self.conv3 = ConvBNAct(width, out_channels, 1, act=None)
        self.downsample = (
            ConvBNAct(in_channels, out_channels, 1, stride=stride, act=None)
            if stride != 1 or in_channels != out_channels
            else None
        )
        self.relu = nn.ReLU(inplace=True)

    def set_atrous(self, stride: int, rate: int) -> None:
        set_atrous(self.conv2.conv, stride, rate)
        if self.downsample is not None:
            self.downsample.conv.stride = (stride, stride)

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        y = self.conv3(self.conv2(self.conv1(x)))
        return self.relu(y + identity)


class ResNet(nn.Module):
    """Feature extractor: ``forward(x) -> {"low_level": layer1 (stride 4), "out": layer4}``."""

    def __init__(
        self, depth: str = "resnet101", output_stride: int = 16, multi_grid=(1, 2, 4)
    ) -> None:
        super().__init__()
        blocks = DEPTHS[depth]
        self.stem = nn.Sequential(
            OrderedDict(
                conv=ConvBNAct(3, 64, 7, stride=2),
                pool=nn.MaxPool2d(3, stride=2, padding=1),
            )
        )
        in_ch, stages = 64, []
        for i, (n, width) in enumerate(zip(blocks, (64, 128, 256, 512))):
            stride = 1 if i == 0 else 2
            units = []
            for j in range(n):
                units.append(Bottleneck(in_ch, width, stride if j == 0 else 1))
                in_ch = width * EXPANSION
            stages.append(nn.Sequential(*units))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.multi_grid = tuple(int(r) for r in multi_grid)
        self.out_channels = in_ch
        self.low_level_channels = 64 * EXPANSION
        self.output_stride = 32
        self.set_output_stride(output_stride)

    def set_output_stride(self, output_stride: int) -> None:
        current, rate = 4, 1
        for k, layer in enumerate((self.layer2, self.layer3, self.layer4)):
            if current >= output_stride:
                stride, rate = 1, rate * 2
            else:
                stride, current = 2, current * 2
            last = k == 2
            for j, block in enumerate(layer):
                grid = self.multi_grid[j % len(self.multi_grid)] if last else 1
                block.set_atrous(stride if j == 0 else 1, rate * grid)
        self.output_stride = output_stride

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        x = self.stem(x)
        low = self.layer1(x)
        x = self.layer4(self.layer3(self.layer2(low)))
        return {"low_level": low, "out": x}
