"""Small building blocks shared by the backbones and heads.

Every convolution here pads symmetrically by ``dilation * (kernel - 1) // 2``. For the
odd input sizes DeepLab uses (257, 321, 513: ``k * output_stride + 1``) this is exactly
TensorFlow's ``SAME`` padding, so weights trained in TF give the same numbers here.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

BN_EPS = 1e-5
# Bilinear conventions: TF1 DeepLab's align_corners=True; PyTorch's (and TF2's) half-pixel
# centres; TF1's resize with align_corners=False, which maps dst x to src x * in / out.
UPSAMPLING = ("align_corners", "half_pixel", "asymmetric")

Act = Callable[[], nn.Module]


def set_atrous(conv: nn.Conv2d, stride: int, dilation: int) -> None:
    """Switch a convolution's stride and dilation in place, keeping 'same' padding."""
    k = conv.kernel_size[0]
    conv.stride = (stride, stride)
    conv.dilation = (dilation, dilation)
    conv.padding = (dilation * (k - 1) // 2,) * 2


def batch_norm(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS)


class ConvBNAct(nn.Sequential):
    """Conv (no bias) -> BatchNorm -> activation; ``act=None`` leaves the output linear."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 1,
        *,
        stride: int = 1,
        dilation: int = 1,
        groups: int = 1,
        act: Act | None = nn.ReLU,
    ) -> None:
        conv = nn.Conv2d(
            in_channels,
            out_channels,
            kernel_size,
            stride=stride,
            padding=dilation * (kernel_size - 1) // 2,
            dilation=dilation,
            groups=groups,
            bias=False,
        )
        layers = OrderedDict(conv=conv, bn=batch_norm(out_channels))
        if act is not None:
            layers["act"] = act()
        super().__init__(layers)

    @property
    def out_channels(self) -> int:
        return self.conv.out_channels


class SeparableConv(nn.Sequential):
    """Depthwise 3x3 (atrous) -> BN [-> act] -> pointwise 1x1 -> BN [-> act].

    DeepLab puts batch norm after both halves; ``act`` is used after each of them (the
    Xception exit flow, the ASPP and decoder) or nowhere (the rest of Xception, which
    applies ReLU *before* the separable convolution instead).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        *,
        stride: int = 1,
        dilation: int = 1,
        act: Act | None = nn.ReLU,
    ) -> None:
        super().__init__(
            OrderedDict(
                depthwise=ConvBNAct(
                    in_channels,
                    in_channels,
                    kernel_size,
                    stride=stride,
                    dilation=dilation,
                    groups=in_channels,
                    act=act,
                ),
                pointwise=ConvBNAct(in_channels, out_channels, 1, act=act),
            )
        )

    def set_atrous(self, stride: int, dilation: int) -> None:
        set_atrous(self.depthwise.conv, stride, dilation)


def init_weights(module: nn.Module) -> None:
    """He-normal convolutions, unit batch norm; used by every builder for a fresh model."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def init_classifier(conv: nn.Conv2d) -> None:
    nn.init.normal_(conv.weight, std=0.01)
    if conv.bias is not None:
        nn.init.zeros_(conv.bias)


def tf_atrous_schedule(strides: list[int], output_stride: int, start: int = 1) -> list[tuple]:
    """(stride, rate) per unit under TF-slim's rule, as in DeepLab's MobileNet and Xception.

    Units stride normally until the running stride reaches ``output_stride``; from then on
    a unit that would stride runs at stride 1 with the current rate, and the rate is
    multiplied by its stride for the units after it.
    """
    current, rate, out = start, 1, []
    for s in strides:
        if current >= output_stride:
            out.append((1, rate))
            rate *= s
        else:
            out.append((s, 1))
            current *= s
    return out


def resize_bilinear(x: Tensor, size, mode: str = "align_corners") -> Tensor:
    """Bilinear resize of NCHW ``x`` to ``size`` under one of ``UPSAMPLING``.

    PyTorch has no "asymmetric" mode, and graphs exported with TF1's default resize
    (MLPerf's ADE20K model) use it; it is written here as two gathers and lerps per axis.
    """
    size = (int(size[0]), int(size[1]))
    if tuple(x.shape[-2:]) == size:
        return x
    if mode != "asymmetric":
        return F.interpolate(x, size=size, mode="bilinear", align_corners=mode == "align_corners")
    for dim, (n_in, n_out) in ((2, (x.shape[2], size[0])), (3, (x.shape[3], size[1]))):
        src = torch.arange(n_out, device=x.device, dtype=torch.float32) * (n_in / n_out)
        lo = src.floor().clamp_(max=n_in - 1)
        frac = (src - lo).to(x.dtype)
        lo = lo.long()
        hi = (lo + 1).clamp_(max=n_in - 1)
        shape = [1, 1, 1, 1]
        shape[dim] = n_out
        a, b = x.index_select(dim, lo), x.index_select(dim, hi)
        x = a + (b - a) * frac.view(shape)
    return x


class TFSameConv2d(nn.Conv2d):
    """A Conv2d that pads like TensorFlow's SAME: the extra pixel of an even-sized input
    to a strided conv goes at the bottom/right, not the top/left.

    Only models imported from graphs with even input sizes (512x512) need it; for the
    odd sizes DeepLab uses (513, 257) it is the symmetric padding of every conv here.
    ``use_tf_same_padding`` switches a model's convolutions in place.
    """

    def forward(self, x: Tensor) -> Tensor:
        if self.stride == (1, 1):
            return super().forward(x)
        pads = []
        for n, k, s, d in zip(
            reversed(x.shape[-2:]), reversed(self.kernel_size),
            reversed(self.stride), reversed(self.dilation),
        ):  # fmt: skip
            total = max((-(-n // s) - 1) * s + (k - 1) * d + 1 - n, 0)
            pads += [total // 2, total - total // 2]
        if pads[0] == pads[1] == self.padding[1] and pads[2] == pads[3] == self.padding[0]:
            return super().forward(x)
        return F.conv2d(
            F.pad(x, pads), self.weight, self.bias, self.stride, 0, self.dilation, self.groups
        )


def use_tf_same_padding(model: nn.Module) -> nn.Module:
    """Make every Conv2d of ``model`` pad like TF SAME (see ``TFSameConv2d``); in place."""
    for m in model.modules():
        if type(m) is nn.Conv2d:
            m.__class__ = TFSameConv2d
    return model
