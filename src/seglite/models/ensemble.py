"""Several trained DeepLabs of one architecture run as one model, their scores averaged.

Why: runs of one recipe that differ only in their seed land points apart on a drive they
never saw (CamVid: 2 and 5 mIoU over three seeds), and which seed is best differs from
drive to drive. Their average is better than a typical member and never far from the best
one (configs/README.md), at N forward passes.

The members' logits are averaged before the final upsampling: bilinear resizing is
linear, so this equals averaging the upsampled logits, and the model still ends in one
resize that the runtimes can cut or defer (runtime/final_resize.py). Averaging their
probabilities instead scored the same on one unseen CamVid drive (62.0 against 62.05),
and 0.5 more on the other only when done at full resolution, which would give that up.

An ensemble is for inference: train its members, then combine them (``seglite
ensemble``); as a training start it stands for its first member.
"""

from __future__ import annotations

from pathlib import Path

from torch import Tensor, nn

from ..errors import ModelError
from .deeplab import DeepLab


class DeepLabEnsemble(DeepLab):
    """N ``DeepLab`` models of the same architecture and classes, one forward pass each."""

    def __init__(self, members: list[DeepLab]) -> None:
        nn.Module.__init__(self)  # no backbone of its own: each member has one
        if len(members) < 2:
            raise ModelError("an ensemble needs at least two models")
        first = members[0]
        for i, m in enumerate(members):
            if isinstance(m, DeepLabEnsemble):
                raise ModelError(f"member {i} is itself an ensemble: combine its members")
            if m.config != first.config:
                raise ModelError(
                    f"member {i} is another architecture or label set than member 0: "
                    "an ensemble averages models of one architecture"
                )
        self.members = nn.ModuleList(members)
        self.align_corners = first.align_corners
        self.upsampling = first.upsampling
        self.config = {**first.config, "ensemble": len(members)}

    def scores(self, x: Tensor) -> Tensor:
        total = None
        for m in self.members:
            y = m.scores(x)
            total = y if total is None else total + y
        return total / len(self.members)

    @property
    def output_stride(self) -> int:
        return self.members[0].output_stride

    def set_output_stride(self, output_stride: int) -> DeepLabEnsemble:
        for m in self.members:
            m.set_output_stride(output_stride)
        self.config = {**self.members[0].config, "ensemble": len(self.members)}
        return self

    def reset_classifier(self, num_classes: int, *, labels=None) -> DeepLabEnsemble:
        raise ModelError("an ensemble is for inference: train its members, then combine them")

    def add_refiner(self, channels: int = 64) -> DeepLabEnsemble:
        raise ModelError("an ensemble is for inference: train its members, then combine them")

    def parts(self) -> dict[str, nn.Module]:
        return {f"member {i}": m for i, m in enumerate(self.members)}


def _carried_metadata(meta: dict) -> dict:
    """The metadata a derived checkpoint carries over: what save_checkpoint does not write
    itself (format, config, preprocessing) and not the ensemble's own member list."""
    own = ("seglite.format", "seglite.config", "seglite.preprocess", "seglite.members")
    return {k: v for k, v in meta.items() if k.startswith("seglite.") and k not in own}


def combine_checkpoints(paths: list[str | Path], out: str | Path, *, half: bool = False) -> Path:
    """Write one checkpoint that runs the checkpoints in ``paths`` as an ensemble.

    The members must agree on the architecture, the classes and the input size. The
    inference stride is theirs where they agree, else 8; the rest of the metadata
    (``--accurate`` scales, training notes) is the first member's. ``half`` stores the
    weights as float16, half the file; they load back as float32.
    """
    from .checkpoint import load_checkpoint, save_checkpoint

    if len(paths) < 2:
        raise ModelError("give at least two checkpoints to combine")
    models = [load_checkpoint(p) for p in paths]
    metas = [m.checkpoint_metadata for m in models]
    ensemble = DeepLabEnsemble(models)
    sizes = {str(meta.get("seglite.input_size")) for meta in metas}
    if len(sizes) > 1:
        raise ModelError(f"the checkpoints differ in input size ({', '.join(sorted(sizes))})")
    # one stride for all: theirs where they agree, else DeepLab's evaluation stride
    strides = {meta.get("seglite.eval_output_stride") for meta in metas}
    stride = strides.pop() if len(strides) == 1 else 8
    keep = _carried_metadata(metas[0])
    # each member's file and training record, for provenance (the rest is member 0's)
    keep["seglite.members"] = [
        {"file": "/".join(Path(p).parts[-2:]), "train": meta.get("seglite.train")}
        for p, meta in zip(paths, metas, strict=True)
    ]
    if stride is not None:
        keep["seglite.eval_output_stride"] = stride
    if half:
        ensemble = ensemble.half()
    return save_checkpoint(ensemble, out, extra_metadata=keep)


def save_member(path: str | Path, index: int, out: str | Path) -> Path:
    """Write member ``index`` of the ensemble checkpoint at ``path`` as a checkpoint of its
    own (e.g. to export the one-pass model that ``camvid-lite`` is), with the ensemble's
    metadata and that member's training record."""
    from .checkpoint import load_checkpoint, save_checkpoint

    model = load_checkpoint(path)
    if not isinstance(model, DeepLabEnsemble):
        raise ModelError(f"{path}: not an ensemble")
    if not 0 <= index < len(model.members):
        raise ModelError(f"{path}: member {index} out of 0-{len(model.members) - 1}")
    meta = _carried_metadata(model.checkpoint_metadata)
    members = model.checkpoint_metadata.get("seglite.members")
    if isinstance(members, list) and index < len(members) and isinstance(members[index], dict):
        meta["seglite.train"] = members[index].get("train")
    return save_checkpoint(model.members[index].float(), out, extra_metadata=meta)
