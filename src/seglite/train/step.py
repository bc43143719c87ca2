"""One training step's numerics: precision, memory layout and the loss.

Kept apart from the loop so that ``benchmarks/train_speed.py`` times exactly what a run
executes. bf16 autocast on CPU runs the convolutions in oneDNN's bf16 kernels (AVX-512
BF16 / AMX where the CPU has them) while the weights, the optimizer and the loss stay in
float32; channels_last lets oneDNN skip its layout reorders around each convolution.
"""

from __future__ import annotations

import contextlib

from ..errors import OptionError

PRECISIONS = ("fp32", "bf16")
LOSSES = ("ce", "ohem")


def check_numerics(precision: str, loss: str, ohem_threshold: float, ohem_min_kept: int) -> None:
    if precision not in PRECISIONS:
        raise OptionError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if loss not in LOSSES:
        raise OptionError(f"loss must be one of {', '.join(LOSSES)}, got {loss!r}")
    if not 0 < ohem_threshold <= 1 or ohem_min_kept < 0:
        raise OptionError("ohem_threshold must be in (0, 1] and ohem_min_kept >= 0")


def to_layout(t, channels_last: bool):
    """A model or an NCHW batch in the memory format the run trains in."""
    import torch

    return t.to(memory_format=torch.channels_last) if channels_last else t


def autocast(precision: str, device):
    """The context one forward pass and its loss run in."""
    import torch

    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def segmentation_loss(
    logits,
    target,
    *,
    weight=None,
    ignore_index: int = -100,
    loss: str = "ce",
    ohem_threshold: float = 0.7,
    ohem_min_kept: int = 100_000,
):
    """Pixel cross-entropy, or OHEM's: only the pixels the model gets least right.

    OHEM (online hard example mining, as PSPNet / MMSegmentation's pixel sampler use it)
    keeps the pixels whose probability for their true class is below ``ohem_threshold``,
    and at least the ``ohem_min_kept`` hardest, so that the thin classes whose few pixels
    are the ones still wrong are not outvoted by millions of easy road and sky pixels.
    Class weights apply to the kept pixels as in the plain loss.
    """
    import torch
    import torch.nn.functional as F

    logits = logits.float()  # the loss in float32 whatever the forward ran in
    valid = target != ignore_index
    if not bool(valid.any()):  # an all-ignore crop: no signal, but a complete graph for DDP
        return logits.sum() * 0.0
    if loss == "ce":
        return F.cross_entropy(logits, target, weight=weight, ignore_index=ignore_index)
    per_pixel = F.cross_entropy(logits, target, weight=weight, ignore_index=ignore_index,
                                reduction="none")  # fmt: skip
    with torch.no_grad():
        safe = torch.where(valid, target, torch.zeros_like(target))
        p_true = torch.softmax(logits, 1).gather(1, safe.unsqueeze(1)).squeeze(1)
        p_true = torch.where(valid, p_true, torch.full_like(p_true, 2.0))  # never kept
        n_valid = int(valid.sum())
        kept = int(min(n_valid, ohem_min_kept))
        threshold = ohem_threshold
        if kept > 0:
            kth = torch.kthvalue(p_true.flatten(), kept).values.item()
            threshold = max(threshold, kth)  # at least the min_kept hardest
        keep = valid & (p_true <= threshold)
    if weight is None:
        return per_pixel[keep].mean()
    w = weight[safe][keep]
    return per_pixel[keep].sum() / w.sum().clamp_min(1e-12)
