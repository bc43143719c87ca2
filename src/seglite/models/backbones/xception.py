"""Xception-65, the DeepLabv3+ backbone (Chen et al. 2018, section 3.2; Chollet 2017).

As modified for segmentation: every max pool is a stride-2 separable convolution, the
middle flow repeats 16 times, and batch norm follows both halves of every separable
convolution. Entry and middle flow apply ReLU *before* each separable conv; the last
exit block applies it after each half, as DeepLab's ``xception_65`` does.

Output stride follows TF-slim's rule (see ``layers.tf_atrous_schedule``); the multi-grid
rates act on the three convolutions of the last exit block. The low-level feature for
the decoder is ``entry_flow/block2``'s second separable conv (256 channels, stride 4).
"""

from __future__ import annotations

from collections import OrderedDict

from torch import Tensor, nn

from ..layers import ConvBNAct, SeparableConv, tf_atrous_schedule

MIDDLE_REPEATS = 16


class XceptionModule(nn.Module):
    """Three separable convs (the last one strides) plus a 'conv', 'sum' or 'none' skip."""

    def __init__(
        self,
        in_channels: int,
        depths: tuple[int, int, int],
        *,
        stride: int = 1,
        skip: str = "conv",
        act_inside: bool = False,
    ) -> None:
        super().__init__()
        self.pre_act = not act_inside
        convs, ch = [], in_channels
        for i, d in enumerate(depths):
            convs.append(
                SeparableConv(
                    ch, d, 3, stride=stride if i == 2 else 1, act=nn.ReLU if act_inside else None
                )
            )
            ch = d
        self.sepconv1, self.sepconv2, self.sepconv3 = convs
        self.relu = nn.ReLU()
        self.skip = skip
        self.shortcut = (
            ConvBNAct(in_channels, depths[-1], 1, stride=stride, act=None)
            if skip == "conv"
            else None
        )
        self.nominal_stride = stride
        self.out_channels = ch

    def set_atrous(self, stride: int, rate: int, unit_rates=(1, 1, 1)) -> None:
        for i, conv in enumerate((self.sepconv1, self.sepconv2, self.sepconv3)):
            conv.set_atrous(stride if i == 2 else 1, rate * unit_rates[i])
        if self.shortcut is not None:
            self.shortcut.conv.stride = (stride, stride)

    def _sep(self, conv: SeparableConv, x: Tensor) -> Tensor:
        return conv(self.relu(x) if self.pre_act else x)

    def forward(self, x: Tensor, return_hidden: bool = False):
        h = self._sep(self.sepconv2, self._sep(self.sepconv1, x))
        y = self._sep(self.sepconv3, h)
        if self.skip == "conv":
            y = y + self.shortcut(x)
        elif self.skip == "sum":
            y = y + x
        return (y, h) if return_hidden else y


class Xception65(nn.Module):
    """Feature extractor: ``forward(x) -> {"low_level": stride 4, "out": stride OS}``."""

    def __init__(self, output_stride: int = 16, multi_grid=(1, 1, 1)) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            OrderedDict(
                conv1=ConvBNAct(3, 32, 3, stride=2),
                conv2=ConvBNAct(32, 64, 3),
            )
        )
        self.entry = nn.Sequential(
            XceptionModule(64, (128, 128, 128), stride=2),
            XceptionModule(128, (256, 256, 256), stride=2),
            XceptionModule(256, (728, 728, 728), stride=2),
        )
        self.middle = nn.Sequential(
            *(XceptionModule(728, (728, 728, 728), skip="sum") for _ in range(MIDDLE_REPEATS))
        )
        self.exit = nn.Sequential(
            XceptionModule(728, (728, 1024, 1024), stride=2),
            XceptionModule(1024, (1536, 1536, 2048), skip="none", act_inside=True),
        )
        self.multi_grid = tuple(int(r) for r in multi_grid)
        self.out_channels = 2048
        self.low_level_channels = 256
        self.output_stride = 32
        self.set_output_stride(output_stride)

    def _units(self) -> list[XceptionModule]:
        return [*self.entry, *self.middle, *self.exit]

    def set_output_stride(self, output_stride: int) -> None:
        units = self._units()
        schedule = tf_atrous_schedule([u.nominal_stride for u in units], output_stride, start=2)
        for k, (unit, (stride, rate)) in enumerate(zip(units, schedule)):
            grid = self.multi_grid if k == len(units) - 1 else (1, 1, 1)
            unit.set_atrous(stride, rate, grid)
        self.output_stride = output_stride

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        x = self.stem(x)
        x = self.entry[0](x)
        x, low = self.entry[1](x, return_hidden=True)
        x = self.entry[2](x)
        x = self.exit(self.middle(x))
        return {"low_level": low, "out": x}
