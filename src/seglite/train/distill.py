"""Ensemble distillation: a student trained towards the averaged scores of several models.

Why: runs of one recipe that differ only in their seed land points apart on an unseen
drive, and the average of their class probabilities beats their mean (CamVid: +1.2 and
+2.4 mIoU over three seeds; configs/README.md). Serving several models costs that many
forward passes; a student of the same size trained on the ensemble's soft scores keeps
one pass (Hinton et al., 2015, "Distilling the knowledge in a neural network"). Measured
on CamVid it did not keep the gain on a new drive (configs/README.md, "Three seeds
averaged"), so the zoo ships the ensemble itself; the option stays for other data.

The teachers run on the very crops the student sees, in eval mode and without gradients,
at the student's training output stride; only pixels with a label count, as in the
cross-entropy, so the crops' padding teaches nothing.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import OptionError


class Teachers:
    """Checkpoints whose averaged class probabilities a student learns from."""

    def __init__(self, paths: list[str], *, num_classes: int, output_stride: int,
                 temperature: float, device) -> None:  # fmt: skip
        from ..errors import ModelError
        from ..models.checkpoint import load_checkpoint

        self.temperature = float(temperature)
        self.models = []
        for p in paths:
            if not Path(p).is_file():
                raise OptionError(f"teacher {p}: no such checkpoint")
            try:
                m = load_checkpoint(p, device=str(device))
            except ModelError as exc:
                raise OptionError(f"teacher {exc}") from None
            if m.num_classes != num_classes:
                raise OptionError(
                    f"teacher {p} predicts {m.num_classes} classes, the dataset has {num_classes}"
                )
            m.set_output_stride(output_stride).eval()
            for q in m.parameters():
                q.requires_grad_(False)
            self.models.append(m)

    def probabilities(self, x, autocast_ctx):
        """The teachers' mean softmax(logits / T) on batch ``x``, float32, no gradient."""
        import torch

        with torch.no_grad():
            total = None
            for m in self.models:
                with autocast_ctx():
                    logits = m(x)
                p = torch.softmax(logits.float() / self.temperature, 1)
                total = p if total is None else total + p
            return total / len(self.models)


def distillation_loss(logits, teacher_probs, valid, temperature: float):
    """KL(teacher || student) per labelled pixel, times T^2 so that its gradients keep
    the scale of the cross-entropy's whatever the temperature (Hinton et al.)."""
    import torch

    if not bool(valid.any()):
        return logits.float().sum() * 0.0
    log_student = torch.log_softmax(logits.float() / temperature, 1)
    log_teacher = torch.log(teacher_probs.clamp_min(1e-8))
    per_pixel = (teacher_probs * (log_teacher - log_student)).sum(1)
    return per_pixel[valid].mean() * temperature**2
