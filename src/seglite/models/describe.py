"""Parameter counts and multiply-adds of a model, overall and per part.

Multiply-adds count convolutions and linear layers (one MAC per weight use); batch norm,
activations, pooling and bilinear resizes are left out, as in the papers' tables. The
count runs on a shape-only ("meta") copy of the model, so even ResNet-101 at 513x513
costs no arithmetic.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

from ..errors import OptionError


def count_params(module: nn.Module, *, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


def _conv_macs(module: nn.Module, out: torch.Tensor) -> int:
    if isinstance(module, nn.Conv2d):
        k = module.kernel_size[0] * module.kernel_size[1]
        return out.numel() * (module.in_channels // module.groups) * k
    if isinstance(module, nn.Linear):
        return out.numel() * module.in_features
    return 0


def describe(model: nn.Module, input_size: tuple[int, int] | int = (513, 513)) -> dict[str, Any]:
    """Params and multiply-adds of ``model`` for one image of ``input_size`` (H, W).

    Returns a dict with ``params``, ``macs`` (totals), ``parts`` (per top-level part:
    params and macs), ``input_size``, ``output_stride``, ``feature_size`` (the size of the
    backbone's output) and the model's ``config`` where it has one.
    """
    if isinstance(input_size, int):
        input_size = (input_size, input_size)
    if len(input_size) != 2 or any(
        isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in input_size
    ):
        raise OptionError(f"input_size must be (height, width) in pixels, got {input_size!r}")
    h, w = input_size
    shadow = copy.deepcopy(model).to("meta").eval()
    parts = dict(shadow.parts()) if hasattr(shadow, "parts") else {"model": shadow}
    owner: dict[nn.Module, str] = {}
    for name, part in parts.items():
        for m in part.modules():
            owner.setdefault(m, name)
    macs = dict.fromkeys(parts, 0)
    feature_size: list[int] = []

    def hook(module, _inputs, output):
        if isinstance(output, torch.Tensor) and module in owner:
            macs[owner[module]] += _conv_macs(module, output)

    def backbone_hook(_module, _inputs, output):
        out = output["out"] if isinstance(output, dict) else output
        feature_size[:] = list(out.shape[-2:])

    handles = [m.register_forward_hook(hook) for m in shadow.modules()]
    if hasattr(shadow, "backbone"):
        handles.append(shadow.backbone.register_forward_hook(backbone_hook))
    try:
        with torch.no_grad():
            shadow(torch.empty(1, 3, h, w, device="meta"))
    finally:
        for handle in handles:
            handle.remove()

    real_parts = dict(model.parts()) if hasattr(model, "parts") else {"model": model}
    info: dict[str, Any] = {
        "params": count_params(model),
        "macs": sum(macs.values()),
        "parts": {
            name: {"params": count_params(real_parts[name]), "macs": macs[name]} for name in parts
        },
        "input_size": [h, w],
        "feature_size": feature_size or None,
        "output_stride": getattr(model, "output_stride", None),
    }
    if isinstance(getattr(model, "config", None), dict):
        info["config"] = dict(model.config)
    return info


def format_description(info: dict[str, Any]) -> str:
    """A small text table of ``describe()``'s result, for ``seglite models --describe``."""
    cfg = info.get("config", {})
    title = " ".join(
        str(x)
        for x in (
            "DeepLab" + cfg.get("version", ""),
            cfg.get("backbone", ""),
            f"x{cfg['depth_multiplier']:g}" if cfg.get("depth_multiplier", 1.0) != 1.0 else "",
            f"OS {info.get('output_stride')}",
            f"{cfg.get('num_classes', '?')} classes",
        )
        if x
    )
    h, w = info["input_size"]
    lines = [title, f"input {h}x{w}, feature map {info.get('feature_size')}"]
    lines.append(f"{'part':<12}{'params':>14}{'GMACs':>10}")
    for name, part in info["parts"].items():
        lines.append(f"{name:<12}{part['params']:>14,}{part['macs'] / 1e9:>10.2f}")
    lines.append(f"{'total':<12}{info['params']:>14,}{info['macs'] / 1e9:>10.2f}")
    return "\n".join(lines)


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    fmt = [
        " | ".join(c.rjust(w) if i >= 2 else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths)))
        for r in rows
    ]
    fmt.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(fmt)


def _parse_arch(spec: str) -> nn.Module:
    """'v3+ resnet101', 'v3:mobilenet_v2:x0.5:os8', 'starter', or a .safetensors/.tflite file."""
    from pathlib import Path

    from .deeplab import VERSIONS, deeplab
    from .pretrained import starter_model

    text = spec.strip()
    if text.lower().endswith((".safetensors", ".tflite")):
        if text.lower().endswith(".tflite"):
            from .tflite_import import import_tflite

            return import_tflite(Path(text))[0]
        from .checkpoint import load_checkpoint

        return load_checkpoint(Path(text))
    if text.lower() == "starter":
        return starter_model()
    kwargs: dict[str, Any] = {}
    for token in (t for t in text.replace(",", " ").replace(":", " ").split() if t):
        low = token.lower()
        if low.startswith("os") and low[2:].isdigit():
            kwargs["output_stride"] = int(low[2:])
        elif low[:1] == "x" or low.startswith("dm"):
            try:
                kwargs["depth_multiplier"] = float(low.lstrip("xdm"))
            except ValueError:
                raise OptionError(f"bad depth multiplier {token!r} in {spec!r}") from None
        elif low.removeprefix("deeplab") in (*VERSIONS, "v3plus"):
            kwargs["version"] = low
        else:
            kwargs["backbone"] = token
    if not kwargs:
        raise OptionError(
            f"cannot read architecture {spec!r}; try 'all', 'starter', 'v3+ resnet101 os8', "
            "'v3 mobilenet_v2 x0.5' or a .safetensors / .tflite file"
        )
    return deeplab(**kwargs)


def describe_table(arch: str = "all", input_size: tuple[int, int] | int = (513, 513)) -> str:
    """Text for ``seglite models --describe [ARCH]``.

    ``arch="all"``: every version x backbone at output strides 16 and 8 (21 classes).
    Otherwise one architecture (see ``_parse_arch``), described part by part; the
    starter model and .tflite files are described at their own input size.
    """
    from .deeplab import VERSIONS, deeplab

    if arch.strip().lower() != "all":
        model = _parse_arch(arch)
        info = getattr(model, "import_info", None) or {}
        size = info.get("input_size") or (
            (257, 257) if arch.strip().lower() == "starter" else input_size
        )
        return format_description(describe(model, tuple(size) if len(size) == 2 else size))
    from .registry import BACKBONES

    rows = [["version", "backbone", "params", "GMACs OS16", "GMACs OS8"]]
    with torch.device("meta"):
        for backbone in BACKBONES:
            for version in VERSIONS:
                model = deeplab(version=version, backbone=backbone)
                at16 = describe(model, input_size)
                at8 = describe(model.set_output_stride(8), input_size)
                rows.append(
                    [
                        version,
                        backbone,
                        f"{at16['params']:,}",
                        f"{at16['macs'] / 1e9:.2f}",
                        f"{at8['macs'] / 1e9:.2f}",
                    ]
                )
    h, w = (input_size, input_size) if isinstance(input_size, int) else input_size
    return f"DeepLab family, 21 classes, input {h}x{w}\n" + _table(rows)
