"""Copy one TFLite conv (a ``tflite_units.Node``) into one module, after strict checks.

The module must agree with the graph on weight shape, stride, dilation, padding and
activation; anything else is refused with a ``ModelError`` naming the layer. Batch norm,
folded into the conv by TFLite, is "unfolded" into an identity batch norm (mean 0,
variance 1, scale sqrt(1 + eps), shift = the folded bias), so eval mode computes exactly
the graph's function; ``calibrate_batchnorm`` gives it real statistics before training.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from ..errors import ModelError
from .layers import ConvBNAct
from .tflite_units import Node

_ACTS = {nn.ReLU: "relu", nn.ReLU6: "relu6"}
_CLAMP_SLACK = 1e-3  # an implied clamp may stop a hair above 6 (one quantization step)


def _activation_fits(graph_act: str, clamp_max: float | None, module_act: str) -> bool:
    if graph_act == module_act:
        return True
    if graph_act == "clamp":  # [0, max] from the output quantization
        if module_act == "relu":
            return True
        if module_act == "relu6":
            return clamp_max is not None and clamp_max <= 6.0 * (1 + _CLAMP_SLACK)
    return False


def check_and_copy(module: nn.Module, node: Node, what: str, *, geometry: bool = True) -> None:
    """Check ``module`` against ``node`` and load its weights (``what`` names it in errors).

    ``geometry=False`` skips stride and dilation (a classifier's weights for a backbone
    that trades stride for dilation)."""
    if isinstance(module, ConvBNAct):
        target = module.conv
        act = _ACTS.get(type(module[-1]), "?") if len(module) > 2 else "none"
    elif isinstance(module, nn.Conv2d):
        target, act = module, "none"
    else:
        raise ModelError(f"{what}: maps to {type(module).__name__}, not a convolution")
    problems = []
    if tuple(target.weight.shape) != node.weight.shape:
        problems.append(f"weight {node.weight.shape} vs {tuple(target.weight.shape)}")
    if geometry and target.stride != (node.stride, node.stride):
        problems.append(f"stride {node.stride} vs {target.stride[0]}")
    if geometry and target.dilation != (node.dilation, node.dilation) and node.kernel > 1:
        problems.append(f"dilation {node.dilation} vs {target.dilation[0]}")
    if target.groups != node.groups:
        problems.append(f"groups {node.groups} vs {target.groups}")
    if not _activation_fits(node.act, node.clamp_max, act):
        graph_act = f"clamp [0, {node.clamp_max:.3g}]" if node.act == "clamp" else node.act
        problems.append(f"activation {graph_act} vs {act}")
    if node.padding != "same" and node.kernel > 1:
        problems.append("VALID padding")
    if problems:
        raise ModelError(f"{what} does not match the model: {'; '.join(problems)}")
    bias = node.bias if node.bias is not None else np.zeros(node.weight.shape[0], np.float32)
    with torch.no_grad():
        target.weight.copy_(torch.from_numpy(np.ascontiguousarray(node.weight)))
        if isinstance(module, ConvBNAct):
            bn = module.bn
            bn.running_mean.zero_()
            bn.running_var.fill_(1.0)
            bn.weight.fill_(math.sqrt(1.0 + bn.eps))
            bn.bias.copy_(torch.from_numpy(np.asarray(bias, np.float32)))
        elif target.bias is not None:
            target.bias.copy_(torch.from_numpy(np.asarray(bias, np.float32)))
        else:
            raise ModelError(f"{what}: the model's conv has no bias to load")
