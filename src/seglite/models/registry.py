"""The backbone registry: one entry per backbone says everything the builders need.

In the style of segmentation_models_pytorch's encoder table: the class, the names users
may type, which builder options it accepts and their defaults, and the head defaults it
implies. ``deeplab()``, the training loop and the TFLite importer ask this table instead
of each keeping its own list of names and rules; adding a backbone is one entry here and
one module in ``backbones/``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from ..errors import OptionError
from .backbones import MobileNetEdgeTPU, MobileNetV2, ResNet, Xception65


@dataclass(frozen=True)
class BackboneEntry:
    """One backbone.

    ``options``: the builder keywords it takes beyond ``output_stride`` (with defaults);
    ``v3_options``: defaults that change for DeepLab v3/v3+ (ResNet's multi-grid 1, 2, 4);
    ``separable_head``: default for ``aspp_separable`` / ``decoder_separable`` (Xception's
    DeepLab uses separable convs in the head).
    """

    name: str
    make: Callable[..., nn.Module]
    aliases: tuple[str, ...] = ()
    options: dict[str, Any] = field(default_factory=dict)
    v3_options: dict[str, Any] = field(default_factory=dict)
    separable_head: bool = False
    description: str = ""

    def build(self, *, output_stride: int, **options: Any) -> nn.Module:
        """The backbone with ``options`` (unknown ones are ignored: already validated)."""
        kw = {k: options.get(k, v) for k, v in self.options.items()}
        return self.make(output_stride=output_stride, **kw)


BACKBONES: dict[str, BackboneEntry] = {}


def register_backbone(entry: BackboneEntry) -> BackboneEntry:
    if entry.name in BACKBONES:
        raise OptionError(f"backbone {entry.name!r} is already registered")
    BACKBONES[entry.name] = entry
    return entry


def _squash(name: str) -> str:
    return name.strip().lower().replace("-", "").replace("_", "").replace(" ", "")


def backbone_entry(name: str) -> BackboneEntry:
    """The entry for a canonical name or any alias ("mnv2", "MobileNet-V2", "xception")."""
    if not isinstance(name, str):
        raise OptionError(f"backbone must be a string, one of {', '.join(BACKBONES)}; got {name!r}")
    key = _squash(name)
    for entry in BACKBONES.values():
        if key == _squash(entry.name) or key in (_squash(a) for a in entry.aliases):
            return entry
    raise OptionError(f"unknown backbone {name!r}; choose one of {', '.join(BACKBONES)}")


def canonical_backbone(name: str) -> str:
    return backbone_entry(name).name


def build_backbone(name: str, *, output_stride: int, **options: Any) -> nn.Module:
    """A backbone by name or alias; ``options`` as validated by the builder."""
    return backbone_entry(name).build(output_stride=output_stride, **options)


for _entry in (
    BackboneEntry(
        "mobilenet_v2",
        lambda output_stride, depth_multiplier: MobileNetV2(
            depth_multiplier=depth_multiplier, output_stride=output_stride
        ),
        aliases=("mobilenetv2", "mnv2"),
        options={"depth_multiplier": 1.0},
        description="MobileNetV2 (inverted residuals, ReLU6), any depth multiplier",
    ),
    BackboneEntry(
        "mobilenet_edgetpu",
        lambda output_stride, depth_multiplier: MobileNetEdgeTPU(
            depth_multiplier=depth_multiplier, output_stride=output_stride
        ),
        aliases=("mobilenetedgetpu", "edgetpu", "mnedgetpu"),
        options={"depth_multiplier": 1.0},
        description="MobileNet-EdgeTPU (fused inverted bottlenecks, ReLU); Cityscapes: 0.75",
    ),
    BackboneEntry(
        "resnet50",
        lambda output_stride, multi_grid: ResNet(
            "resnet50", output_stride=output_stride, multi_grid=multi_grid
        ),
        options={"multi_grid": (1, 1, 1)},
        v3_options={"multi_grid": (1, 2, 4)},
        description="ResNet-50 v1.5, atrous, multi-grid",
    ),
    BackboneEntry(
        "resnet101",
        lambda output_stride, multi_grid: ResNet(
            "resnet101", output_stride=output_stride, multi_grid=multi_grid
        ),
        options={"multi_grid": (1, 1, 1)},
        v3_options={"multi_grid": (1, 2, 4)},
        description="ResNet-101 v1.5, atrous, multi-grid",
    ),
    BackboneEntry(
        "xception65",
        lambda output_stride, multi_grid: Xception65(
            output_stride=output_stride, multi_grid=multi_grid
        ),
        aliases=("xception",),
        options={"multi_grid": (1, 1, 1)},
        separable_head=True,
        description="Xception-65 as in DeepLabv3+ (separable convs everywhere)",
    ),
):
    register_backbone(_entry)
del _entry
