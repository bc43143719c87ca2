"""Give the identity batch norms of an imported model real statistics before training."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn


@torch.no_grad()
def calibrate_batchnorm(model: nn.Module, images: Iterable[torch.Tensor]) -> nn.Module:
    """Give the identity batch norms of an imported model real statistics.

    For each BatchNorm2d with running mean ``m`` and variance ``v`` measured on
    ``images`` (batches of normalized NCHW tensors), sets scale ``sqrt(v + eps)`` and shift
    ``beta + m``: eval-mode outputs stay the same (up to rounding), while train-mode batch
    statistics now start near the imported function. Returns the model, in eval mode.
    """
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    sums = {bn: [0.0, 0.0, 0] for bn in bns}

    def hook(bn, inputs, _output):
        # The BN input, un-normalized: what the folded conv computes before its bias.
        x = inputs[0].double()
        dims = [0, 2, 3]
        s = sums[bn]
        s[0] = s[0] + x.sum(dims)
        s[1] = s[1] + (x * x).sum(dims)
        s[2] += x.numel() // x.shape[1]

    model.eval()
    handles = [bn.register_forward_hook(hook) for bn in bns]
    try:
        count = 0
        for batch in images:
            model(batch)
            count += 1
    finally:
        for h in handles:
            h.remove()
    if count == 0:
        raise ValueError("calibrate_batchnorm needs at least one batch of images")
    for bn, (s1, s2, n) in sums.items():
        mean = s1 / n
        var = (s2 / n - mean * mean).clamp_min(0)
        # Current affine map: y = (x - m0) / sqrt(v0 + eps) * g0 + b0 = a * x + c.
        a = bn.weight.double() / torch.sqrt(bn.running_var.double() + bn.eps)
        c = bn.bias.double() - a * bn.running_mean.double()
        std = torch.sqrt(var + bn.eps)
        bn.running_mean.copy_(mean)
        bn.running_var.copy_(var)
        bn.weight.copy_(a * std)
        bn.bias.copy_(a * mean + c)
    return model
