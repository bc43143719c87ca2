"""Batch norm in fine-tuning: which layers stay frozen, and unfolding the identities a
TFLite import leaves into real statistics."""

from __future__ import annotations


def frozen_bn_modules(model, freeze_bn: bool | str) -> list:
    """The batch-norm layers ``freeze_bn`` keeps fixed: all (True), the backbone's and
    head's ("encoder"), or none.

    "encoder" is what an imported TFLite model needs: its batch norms were folded into the
    convolutions and imported as identities, so training them from batch statistics would
    replace the pretrained function by a different one (and the image-pooling branch's
    batch statistics over a handful of pooled vectors do not match its running averages)."""
    import torch

    bn = torch.nn.modules.batchnorm._BatchNorm
    if not freeze_bn:
        return []
    if freeze_bn == "image_pooling":
        return [m for n, m in model.head.named_modules() if "pooling" in n and isinstance(m, bn)]
    roots = [model] if freeze_bn is True else [model.backbone, model.head]
    return [m for r in roots for m in r.modules() if isinstance(m, bn)]


def unfold_batchnorm(model, batches) -> int:
    """Give the encoder's folded batch norms (running mean 0, variance 1: what a TFLite
    import yields) the mean and variance of their inputs over ``batches``, with gamma and
    beta rescaled so that the network computes exactly what it did. Returns how many.

    Training then starts from the pretrained function with batch norms that normalize, as
    in the original model, instead of batch statistics suddenly replacing identities."""
    import torch

    bns = [
        m for r in (model.backbone, model.head) for m in r.modules()
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)
        and torch.all(m.running_mean == 0) and torch.all(m.running_var == 1)
    ]  # fmt: skip
    sums: dict = {}

    def hook(mod, inp, out):
        x = inp[0].detach().transpose(0, 1).flatten(1).double()
        n, s1, s2 = sums.get(mod, (0, 0.0, 0.0))
        sums[mod] = (n + x.shape[1], s1 + x.sum(1), s2 + (x * x).sum(1))

    handles = [m.register_forward_hook(hook) for m in bns]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for x in batches:
                model(x)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    with torch.no_grad():
        for m, (n, s1, s2) in sums.items():
            mean = (s1 / n).float()
            var = (s2 / n - (s1 / n) ** 2).clamp_min(0).float()
            scale = m.weight / torch.sqrt(m.running_var + m.eps)
            shift = m.bias - m.running_mean * scale
            m.weight.copy_(scale * torch.sqrt(var + m.eps))
            m.bias.copy_(shift + mean * scale)
            m.running_mean.copy_(mean)
            m.running_var.copy_(var)
    return len(sums)


def set_train_mode(model, freeze_bn: bool | str) -> None:
    model.train()
    for m in frozen_bn_modules(model, freeze_bn):
        m.eval()
