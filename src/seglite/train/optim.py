"""SGD as the DeepLab reference runs it, and its poly learning-rate schedule."""

from __future__ import annotations

from .config import TrainConfig


def make_optimizer(model, cfg: TrainConfig):
    """SGD with momentum; weight decay on conv/linear weights only (not BN, not biases),
    as the DeepLab reference applies its L2 regularizer. A refiner's parameters learn at
    ``cfg.refiner_lr_mult`` times the rate (``lr_mult`` of their groups): it starts from
    nothing, beside a start tuned at a rate that must not wreck it."""
    import torch

    refiner = getattr(model, "refiner", None)  # the bare model: DDP wraps it after this
    fresh = {id(p) for p in refiner.parameters()} if refiner is not None else set()
    groups: dict[tuple[bool, bool], list] = {}
    for p in model.parameters():
        if p.requires_grad:
            groups.setdefault((p.ndim > 1, id(p) in fresh), []).append(p)
    return torch.optim.SGD(
        [
            {
                "params": params,
                "weight_decay": cfg.weight_decay if decayed else 0.0,
                "lr_mult": cfg.refiner_lr_mult if new else 1.0,
            }
            for (decayed, new), params in groups.items()
        ],
        lr=cfg.lr,
        momentum=cfg.momentum,
    )


def poly_lr(cfg: TrainConfig, it: int) -> float:
    """Learning rate for optimizer step ``it`` (0-based): linear warmup, then poly decay."""
    if cfg.warmup_iterations and it < cfg.warmup_iterations:
        return cfg.lr * (it + 1) / cfg.warmup_iterations
    return cfg.lr * max(0.0, 1.0 - it / cfg.iterations) ** cfg.lr_power
