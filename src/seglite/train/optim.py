"""SGD as the DeepLab reference runs it, and its poly learning-rate schedule."""

from __future__ import annotations

from .config import TrainConfig


def make_optimizer(model, cfg: TrainConfig):
    """SGD with momentum; weight decay on conv/linear weights only (not BN, not biases),
    as the DeepLab reference applies its L2 regularizer."""
    import torch

    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (decay if p.ndim > 1 else no_decay).append(p)
    return torch.optim.SGD(
        [
            {"params": decay, "weight_decay": cfg.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=cfg.lr,
        momentum=cfg.momentum,
    )


def poly_lr(cfg: TrainConfig, it: int) -> float:
    """Learning rate for optimizer step ``it`` (0-based): linear warmup, then poly decay."""
    if cfg.warmup_iterations and it < cfg.warmup_iterations:
        return cfg.lr * (it + 1) / cfg.warmup_iterations
    return cfg.lr * max(0.0, 1.0 - it / cfg.iterations) ** cfg.lr_power
