"""Heads of the DeepLab versions, and the v3+ decoder.

A version is a composition: backbone + one of these heads (+ decoder) + classifier.

| version | head                                                                  |
|---------|-----------------------------------------------------------------------|
| v1      | ``LargeFOV``: fc6 3x3 atrous (rate 12 at OS 8) -> fc7 1x1, 1024 wide   |
| v2      | ``ASPPSum``: parallel 3x3 atrous convs straight to class scores,       |
|         | summed (rates 6/12/18/24 at OS 8, the DeepLab-v2 ResNet ASPP)          |
| v3      | ``ASPP``: 1x1 + 3x3 atrous (6/12/18 at OS 16) + image pooling, BN,     |
|         | concatenated, projected to 256. No atrous rates = "ASPP-lite"          |
| v3+     | ``ASPP`` + ``Decoder`` fusing the stride-4 low-level feature           |

Atrous rates are given at the output stride the head is built for and scale with it:
``set_output_stride`` halves the stride -> doubles the rates (rounded, at least 1).
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import Tensor, nn

from .layers import ConvBNAct, SeparableConv, resize_bilinear, set_atrous


class _AtrousHead(nn.Module):
    """Keeps the rates given at build time so that stride round trips are exact."""

    def _init_rates(self, rates, output_stride: int) -> None:
        self._base_rates = tuple(int(r) for r in rates)
        self._base_stride = int(output_stride)
        self.output_stride = int(output_stride)

    def rates_at(self, output_stride: int) -> tuple[int, ...]:
        scale = self._base_stride / output_stride
        return tuple(max(1, round(r * scale)) for r in self._base_rates)

    @property
    def rates(self) -> tuple[int, ...]:
        return self.rates_at(self.output_stride)

    def _atrous_convs(self) -> list[nn.Conv2d]:
        raise NotImplementedError

    def set_output_stride(self, output_stride: int) -> None:
        for conv, rate in zip(self._atrous_convs(), self.rates_at(output_stride)):
            set_atrous(conv, 1, rate)
        self.output_stride = output_stride


class LargeFOV(_AtrousHead):
    """DeepLabv1's fc6/fc7 as convolutions: 3x3 atrous -> ReLU -> 1x1 -> ReLU, with dropout."""

    def __init__(
        self,
        in_channels: int,
        *,
        rate: int,
        output_stride: int,
        channels: int = 1024,
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        self.fc6 = nn.Conv2d(in_channels, channels, 3, padding=rate, dilation=rate)
        self.fc7 = nn.Conv2d(channels, channels, 1)
        self.relu = nn.ReLU(inplace=True)
        self.drop = nn.Dropout(dropout)
        self.out_channels = channels
        self._init_rates((rate,), output_stride)

    def _atrous_convs(self) -> list[nn.Conv2d]:
        return [self.fc6]

    def forward(self, x: Tensor) -> Tensor:
        x = self.drop(self.relu(self.fc6(x)))
        return self.drop(self.relu(self.fc7(x)))


class ASPPSum(_AtrousHead):
    """DeepLabv2's ASPP: one 3x3 atrous conv to class scores per rate, outputs summed.

    Its convolutions are the classifier, so ``out_channels == num_classes``.
    """

    def __init__(self, in_channels: int, num_classes: int, *, rates, output_stride: int):
        super().__init__()
        self._init_rates(rates, output_stride)
        self.branches = nn.ModuleList(
            nn.Conv2d(in_channels, num_classes, 3, padding=r, dilation=r) for r in self.rates
        )
        self.out_channels = num_classes

    def _atrous_convs(self) -> list[nn.Conv2d]:
        return list(self.branches)

    def forward(self, x: Tensor) -> Tensor:
        out = self.branches[0](x)
        for branch in self.branches[1:]:
            out = out + branch(x)
        return out


class ImagePooling(nn.Module):
    """Image-level feature: global average -> 1x1 conv + BN + ReLU -> broadcast to HxW."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.conv = ConvBNAct(in_channels, out_channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        # Bilinear resize of a 1x1 map (what TF does) is a broadcast.
        return self.conv(self.pool(x)).expand(-1, -1, x.shape[-2], x.shape[-1])


class ASPP(_AtrousHead):
    """DeepLabv3's ASPP. Branch order follows TF DeepLab: [image pooling, 1x1, atrous...].

    ``rates=()`` gives the "ASPP-lite" of the MobileNetV2 models (1x1 + image pooling).
    """

    def __init__(
        self,
        in_channels: int,
        *,
        rates,
        output_stride: int,
        channels: int = 256,
        image_pooling: bool = True,
        separable: bool = False,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self._init_rates(rates, output_stride)
        self.pooling = ImagePooling(in_channels, channels) if image_pooling else None
        branches: list[nn.Module] = [ConvBNAct(in_channels, channels, 1)]
        for r in self.rates:
            if separable:
                branches.append(SeparableConv(in_channels, channels, 3, dilation=r))
            else:
                branches.append(ConvBNAct(in_channels, channels, 3, dilation=r))
        self.branches = nn.ModuleList(branches)
        n = len(branches) + (1 if image_pooling else 0)
        self.project = ConvBNAct(n * channels, channels, 1)
        self.dropout = nn.Dropout(dropout)
        self.out_channels = channels

    def _atrous_convs(self) -> list[nn.Conv2d]:
        convs = []
        for b in self.branches[1:]:
            convs.append(b.depthwise.conv if isinstance(b, SeparableConv) else b.conv)
        return convs

    def forward(self, x: Tensor) -> Tensor:
        feats = [] if self.pooling is None else [self.pooling(x)]
        feats.extend(branch(x) for branch in self.branches)
        return self.dropout(self.project(torch.cat(feats, dim=1)))


class Decoder(nn.Module):
    """DeepLabv3+ decoder: upsample the encoder output to stride 4, concatenate with the
    projected low-level feature (48 channels), refine with two 3x3 convs (256)."""

    def __init__(
        self,
        in_channels: int,
        low_level_in: int,
        *,
        low_level_channels: int = 48,
        channels: int = 256,
        separable: bool = False,
        upsampling: str = "align_corners",
    ) -> None:
        super().__init__()
        self.low_level = ConvBNAct(low_level_in, low_level_channels, 1)

        def conv3(cin: int) -> nn.Module:
            if separable:
                return SeparableConv(cin, channels, 3)
            return ConvBNAct(cin, channels, 3)

        self.fuse = nn.Sequential(
            OrderedDict(
                conv1=conv3(in_channels + low_level_channels),
                conv2=conv3(channels),
            )
        )
        self.upsampling = upsampling
        self.out_channels = channels

    def forward(self, x: Tensor, low_level: Tensor) -> Tensor:
        low = self.low_level(low_level)
        x = resize_bilinear(x, low.shape[-2:], self.upsampling)
        return self.fuse(torch.cat([x, low], dim=1))


class LogitRefiner(nn.Module):
    """A correction of the class scores at stride 4, from the scores and the stride-4
    low-level feature: ``up(logits) + f(concat(up(logits), low))``.

    Why not the v3+ decoder: that one feeds the classifier with new features, so a model
    that gains it loses what its classifier knew (a checkpoint's, or rows mapped from
    another label set). ``f`` ends in a zero-initialized 1x1 conv, so a model with a fresh
    refiner computes exactly what it did without one, and training learns only the
    correction: sharper edges and the thin things (poles, signs) that a stride-8 or 16
    feature blurs. It works on scores (few channels), not the 256-wide head output, so it
    stays cheap at stride 4: a separable 3x3 and two 1x1 convs.
    """

    def __init__(
        self,
        num_classes: int,
        low_level_in: int,
        *,
        channels: int = 64,
        low_level_channels: int = 48,
        upsampling: str = "align_corners",
    ) -> None:
        super().__init__()
        self.low_level = ConvBNAct(low_level_in, low_level_channels, 1)
        self.fuse = SeparableConv(num_classes + low_level_channels, channels, 3)
        self.out = nn.Conv2d(channels, num_classes, 1)
        self.upsampling = upsampling
        self.channels = channels

    def zero_correction(self) -> None:
        """Make the refiner the identity on the scores (its output conv all zeros)."""
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, logits: Tensor, low_level: Tensor) -> Tensor:
        low = self.low_level(low_level)
        up = resize_bilinear(logits, low.shape[-2:], self.upsampling)
        return up + self.out(self.fuse(torch.cat([up, low], dim=1)))
